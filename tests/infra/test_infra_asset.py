"""The ingest Lambda's code asset holds functions/common and functions/ingest and nothing else."""
from __future__ import annotations

from pathlib import Path

from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

from infra.constructs.ingest_function import ASSET_EXCLUDE


def staged_files(source: Path, outdir: Path) -> set[str]:
    app = App(outdir=str(outdir))
    stack = Stack(app, "AssetProbe")
    lambda_.Function(stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="x.handler",
                     code=lambda_.Code.from_asset(str(source), exclude=ASSET_EXCLUDE))
    assembly = app.synth()
    [asset_dir] = [p for p in Path(assembly.directory).iterdir() if p.name.startswith("asset.")]
    return {str(p.relative_to(asset_dir)) for p in asset_dir.rglob("*") if p.is_file()}


def test_exclude_keeps_only_common_and_ingest(tmp_path):
    source = tmp_path / "functions"
    for rel in ["common/__init__.py", "common/config.py", "ingest/__init__.py",
                "ingest/handler.py", "ingest/sub/deep.py",
                "common/__pycache__/config.cpython-312.pyc", "ingest/stale.pyc",
                "aggregate/job.py", "query/handler.py", "README.md", "requirements.txt"]:
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text("# test\n")
    assert staged_files(source, tmp_path / "out") == {
        "common/__init__.py", "common/config.py", "ingest/__init__.py", "ingest/handler.py",
        "ingest/sub/deep.py"}


def test_real_asset_has_the_handler_and_common(default_app):
    assembly = default_app.synth()
    [asset_dir] = [p for p in Path(assembly.directory).iterdir() if p.name.startswith("asset.")]
    files = {str(p.relative_to(asset_dir)) for p in asset_dir.rglob("*") if p.is_file()}
    assert {"ingest/handler.py", "common/config.py", "common/__init__.py"} <= files
    assert {f.split("/")[0] for f in files} == {"common", "ingest"}
