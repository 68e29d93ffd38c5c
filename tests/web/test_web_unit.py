"""The dashboard's JavaScript unit tests (web/test/unit, node's test runner) and its build."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
pytestmark = pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")


def test_node_unit_tests():
    done = subprocess.run(["node", "--test", "test/unit/"], cwd=WEB, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout


def test_build_is_deterministic_and_stamps_every_local_url(tmp_path):
    if not (WEB / "node_modules" / "uplot").is_dir():
        pytest.skip("web/node_modules missing: run `npm ci` in web/")
    outs = []
    for n in (1, 2):
        out = tmp_path / f"dist{n}"
        subprocess.run(["node", "build.mjs", str(out)], cwd=WEB, check=True, capture_output=True, timeout=60)
        outs.append(out)
    files = sorted(p.relative_to(outs[0]).as_posix() for p in outs[0].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(outs[1]).as_posix() for p in outs[1].rglob("*") if p.is_file())
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    version = json.loads((outs[0] / "build.json").read_text())["version"]
    assert {"index.html", "app.js", "styles.css", "vendor/uPlot.esm.js", "vendor/uPlot.min.css"} <= set(files)
    assert "config.json" not in files  # written at deploy time only: its absence means "local stack"
    html = (outs[0] / "index.html").read_text()
    for ref in ('src="app.js', 'href="styles.css', 'href="vendor/uPlot.min.css'):
        assert f'{ref}?v={version}"' in html
    for js in [f for f in files if f.endswith(".js") and not f.startswith("vendor/")]:
        text = (outs[0] / js).read_text()
        imports = [line for line in text.splitlines() if line.startswith("import ") or "import(" in line]
        for line in imports:
            if '"./' in line:
                assert f'?v={version}"' in line, (js, line)
