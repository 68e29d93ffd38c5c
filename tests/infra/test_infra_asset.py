"""Code assets: each Lambda gets functions/common + its own package and nothing else; the Flink
application zip is staged as aggregate/job + common + lib/<deps jar>."""
from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

from infra.constructs.aggregator import ENTRY, JAR_IN_ZIP, StageFlinkApplication
from infra.constructs.ingest_function import ASSET_EXCLUDE as INGEST_EXCLUDE
from infra.constructs.query_api import ASSET_EXCLUDE as QUERY_EXCLUDE
from infra.constructs.sink_function import ASSET_EXCLUDE as SINK_EXCLUDE

SOURCE_FILES = [
    "common/__init__.py", "common/config.py", "ingest/__init__.py", "ingest/handler.py",
    "ingest/sub/deep.py", "common/__pycache__/config.cpython-312.pyc", "ingest/stale.pyc",
    "aggregate/__init__.py", "aggregate/sink_handler.py", "aggregate/changes.py",
    "aggregate/serving/__init__.py", "aggregate/serving/dynamodb_store.py",
    "aggregate/job/__init__.py", "aggregate/job/main.py", "aggregate/pom.xml",
    "aggregate/target/clickagg-flink-deps.jar", "query/__init__.py", "query/handler.py",
    "README.md", "requirements.txt",
]
COMMON = {"common/__init__.py", "common/config.py"}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("src") / "functions"
    for rel in SOURCE_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("# test\n")
    return root


def staged_files(source: Path, outdir: Path, exclude: list[str]) -> set[str]:
    app = App(outdir=str(outdir))
    stack = Stack(app, "AssetProbe")
    lambda_.Function(stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="x.handler",
                     code=lambda_.Code.from_asset(str(source), exclude=exclude))
    assembly = app.synth()
    [asset_dir] = [p for p in Path(assembly.directory).iterdir() if p.name.startswith("asset.")]
    return {str(p.relative_to(asset_dir)) for p in asset_dir.rglob("*") if p.is_file()}


def test_ingest_exclude_keeps_only_common_and_ingest(source, tmp_path):
    assert staged_files(source, tmp_path, INGEST_EXCLUDE) == COMMON | {
        "ingest/__init__.py", "ingest/handler.py", "ingest/sub/deep.py"}


def test_sink_exclude_keeps_common_and_the_sink_modules_not_the_flink_job(source, tmp_path):
    assert staged_files(source, tmp_path, SINK_EXCLUDE) == COMMON | {
        "aggregate/__init__.py", "aggregate/sink_handler.py", "aggregate/changes.py",
        "aggregate/serving/__init__.py", "aggregate/serving/dynamodb_store.py"}


def test_query_exclude_keeps_only_common_and_query(source, tmp_path):
    assert staged_files(source, tmp_path, QUERY_EXCLUDE) == COMMON | {
        "query/__init__.py", "query/handler.py"}


def test_flink_zip_layout(source, tmp_path):
    jar = source / "aggregate/target/clickagg-flink-deps.jar"
    out = tmp_path / "zip"
    out.mkdir()
    assert StageFlinkApplication(source, jar).try_bundle(str(out)) is True
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert files == COMMON | {"aggregate/__init__.py", "aggregate/job/__init__.py", ENTRY,
                              JAR_IN_ZIP}


def test_flink_zip_without_jar_or_job_still_stages(source, tmp_path):
    (tmp_path / "functions").mkdir()
    for rel in ("common/__init__.py", "aggregate/__init__.py"):
        (tmp_path / "functions" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "functions" / rel).write_text("")
    out = tmp_path / "zip"
    out.mkdir()
    StageFlinkApplication(tmp_path / "functions", tmp_path / "missing.jar").try_bundle(str(out))
    assert {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} == {
        "common/__init__.py", "aggregate/__init__.py"}


# --- the real app's assets ------------------------------------------------------------------

def asset_files_of(app: App, s3_key: str) -> set[str]:
    assembly = app.synth()
    asset_dir = Path(assembly.directory) / f"asset.{s3_key.removesuffix('.zip')}"
    return {str(p.relative_to(asset_dir)) for p in asset_dir.rglob("*") if p.is_file()}


def function_code_key(template, handler: str) -> str:
    [fn] = template.find_resources("AWS::Lambda::Function",
                                   {"Properties": {"Handler": handler}}).values()
    return fn["Properties"]["Code"]["S3Key"]


@pytest.mark.parametrize("handler,packages", [
    ("ingest.handler.lambda_handler", {"common", "ingest"}),
    ("aggregate.sink_handler.lambda_handler", {"common", "aggregate"}),
    ("query.handler.lambda_handler", {"common", "query"}),
])
def test_real_lambda_assets(default_app, default_template, handler, packages):
    files = asset_files_of(default_app, function_code_key(default_template, handler))
    assert {f.split("/")[0] for f in files} == packages
    assert "common/config.py" in files
    module = handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
    if Path("functions", module).exists():  # query/ is being written alongside
        assert module in files
    assert not any(f.startswith("aggregate/job/") for f in files)


def test_real_flink_asset(default_app, default_template):
    [application] = default_template.find_resources(
        "AWS::KinesisAnalyticsV2::Application").values()
    key = application["Properties"]["ApplicationConfiguration"]["ApplicationCodeConfiguration"][
        "CodeContent"]["S3ContentLocation"]["FileKey"]
    files = asset_files_of(default_app, key)
    assert {f.split("/")[0] for f in files} <= {"common", "aggregate", "lib"}
    assert "common/records.py" in files and "aggregate/__init__.py" in files
    assert not any(f.startswith(("aggregate/serving", "aggregate/sink")) for f in files)
