"""Every Python source of the repository compiles, including the ones no test imports (the
demo's sections, tools, benchmarks): a syntax error there would otherwise surface only when
someone runs `make demo` or the tool."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SKIP = {".venv", ".venv-flink", ".venv-glue", "node_modules", "target", "cdk.out", ".git",
        "__pycache__", "dist", "artifacts"}


def sources() -> list[Path]:
    return [p for p in sorted(REPO.rglob("*.py")) if not SKIP & set(p.relative_to(REPO).parts)]


def test_every_python_source_compiles():
    files = sources()
    assert len(files) > 200 and REPO / "local" / "demo_events.py" in files
    problems = []
    for path in files:
        try:
            compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            problems.append(f"{path.relative_to(REPO)}:{exc.lineno}: {exc.msg}")
    assert problems == []
