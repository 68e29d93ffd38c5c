"""Code assets: each Lambda gets functions/common + its own package and nothing else; the Flink
application's asset is exactly the zip Maven builds (functions/aggregate/assembly.xml), and synth
refuses a missing, incomplete or stale zip."""
from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_

from infra.constructs.aggregator import (ENTRY, JAR_IN_ZIP, FlinkAggregator,
                                         FlinkApplicationZipError, application_zip_sources,
                                         verify_application_zip)
from infra.settings import StackSettings
from infra.constructs.ingest_function import ASSET_EXCLUDE as INGEST_EXCLUDE
from infra.constructs.query_api import ASSET_EXCLUDE as QUERY_EXCLUDE
from infra.constructs.sink_function import ASSET_EXCLUDE as SINK_EXCLUDE

SOURCE_FILES = [
    "common/__init__.py", "common/config.py", "ingest/__init__.py", "ingest/handler.py",
    "ingest/sub/deep.py", "common/__pycache__/config.cpython-312.pyc", "ingest/stale.pyc",
    "aggregate/__init__.py", "aggregate/sink_handler.py", "aggregate/changes.py",
    "serving/__init__.py", "serving/keys.py", "serving/read/__init__.py", "serving/read/dynamodb.py",
    "serving/write/__init__.py", "serving/write/dynamodb.py",
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


SERVING_CORE = {"serving/__init__.py", "serving/keys.py"}


def test_sink_exclude_keeps_common_the_sink_modules_and_the_serving_writers(source, tmp_path):
    """Not the Flink job, nor the query side's readers."""
    assert staged_files(source, tmp_path, SINK_EXCLUDE) == COMMON | SERVING_CORE | {
        "aggregate/__init__.py", "aggregate/sink_handler.py", "aggregate/changes.py",
        "serving/write/__init__.py", "serving/write/dynamodb.py"}


def test_query_exclude_keeps_common_query_and_the_serving_readers(source, tmp_path):
    assert staged_files(source, tmp_path, QUERY_EXCLUDE) == COMMON | SERVING_CORE | {
        "query/__init__.py", "query/handler.py", "serving/read/__init__.py", "serving/read/dynamodb.py"}


# --- the Flink application zip: what synth accepts -----------------------------------------

def build_zip(path: Path, source: Path, *, skip=(), extra=None) -> Path:
    """A zip laid out like assembly.xml's from `source` (a functions/ tree)."""
    with zipfile.ZipFile(path, "w") as archive:
        for member, src in application_zip_sources(source).items():
            if member not in skip:
                archive.write(src, member)
        if JAR_IN_ZIP not in skip:
            archive.writestr(JAR_IN_ZIP, b"PK-not-really-a-jar")
        for member, data in (extra or {}).items():
            archive.writestr(member, data)
    return path


def age(path: Path, seconds: int) -> None:
    """Move a file's mtime `seconds` into the past."""
    stat = path.stat()
    os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


def test_zip_sources_are_what_assembly_xml_packs(source):
    assert set(application_zip_sources(source)) == COMMON | {
        "aggregate/__init__.py", "aggregate/job/__init__.py", ENTRY}


def test_a_current_zip_is_accepted(source, tmp_path):
    verify_application_zip(build_zip(tmp_path / "app.zip", source), source)


@pytest.mark.parametrize("skip,message", [
    ((ENTRY,), "lacks aggregate/job/main.py"),
    ((JAR_IN_ZIP,), "lacks lib/clickagg-flink-deps.jar"),
])
def test_a_zip_without_entry_point_or_jar_is_refused(source, tmp_path, skip, message):
    path = build_zip(tmp_path / "app.zip", source, skip=skip)
    with pytest.raises(FlinkApplicationZipError, match=re.escape(message) + ".*make setup"):
        verify_application_zip(path, source)


def test_a_missing_or_broken_zip_is_refused(source, tmp_path):
    with pytest.raises(FlinkApplicationZipError, match="not found: run `make setup`"):
        verify_application_zip(tmp_path / "missing.zip", source)
    (tmp_path / "broken.zip").write_text("not a zip")
    with pytest.raises(FlinkApplicationZipError, match="not a zip file"):
        verify_application_zip(tmp_path / "broken.zip", source)


def test_a_zip_older_than_a_source_is_stale(source, tmp_path):
    path = build_zip(tmp_path / "app.zip", source)
    age(path, 60)
    with pytest.raises(FlinkApplicationZipError,
                       match=r"is stale: older than aggregate/__init__.py, .*run `make setup`"):
        verify_application_zip(path, source)


def test_a_zip_whose_python_differs_from_the_sources_is_stale(source, tmp_path):
    changed = build_zip(tmp_path / "changed.zip", source, skip=(ENTRY,),
                        extra={ENTRY: "# another main\n"})
    with pytest.raises(FlinkApplicationZipError, match=r"its aggregate/job/main.py differ"):
        verify_application_zip(changed, source)
    deleted = build_zip(tmp_path / "deleted.zip", source, extra={"aggregate/job/gone.py": ""})
    with pytest.raises(FlinkApplicationZipError, match=r"its aggregate/job/gone.py differ"):
        verify_application_zip(deleted, source)


def probe_aggregator(zip_path: Path) -> FlinkAggregator:
    stack = Stack(App(), "Probe")
    key = kms.Key(stack, "Key")
    streams = [kinesis.Stream(stack, name, encryption_key=key) for name in ("In", "Out")]
    return FlinkAggregator(stack, "Aggregator", settings=StackSettings(flink_app_zip=str(zip_path)),
                           key=key, source=streams[0], sink=streams[1])


def test_the_construct_deploys_the_named_zip_as_it_is(tmp_path):
    """Asset = the file itself (packaging FILE, byte-equal), from context flink_app_zip."""
    path = build_zip(tmp_path / "elsewhere.zip", Path("functions").resolve())
    aggregator = probe_aggregator(path)
    assert aggregator.code.is_zip_archive and aggregator.code.is_file
    assert aggregator.code.s3_object_key.endswith(".zip")
    assembly = aggregator.node.root.synth()
    [staged] = Path(assembly.directory).glob("asset.*.zip")
    assert staged.read_bytes() == path.read_bytes()


def test_synth_of_the_app_fails_on_a_missing_or_stale_zip(app_factory, tmp_path):
    """Not a warning: the app cannot be built, with the reason and the fix."""
    with pytest.raises(FlinkApplicationZipError, match="not found: run `make setup`"):
        app_factory(flink_app_zip=str(tmp_path / "missing.zip"))
    stale = build_zip(tmp_path / "stale.zip", Path("functions").resolve())
    age(stale, 10 * 365 * 86400)
    with pytest.raises(FlinkApplicationZipError, match="is stale: .*run `make setup`"):
        app_factory(flink_app_zip=str(stale))


# --- the real app's assets ------------------------------------------------------------------

def asset_files_of(app: App, s3_key: str) -> set[str]:
    assembly = app.synth()
    asset_dir = Path(assembly.directory) / f"asset.{s3_key.removesuffix('.zip')}"
    return {str(p.relative_to(asset_dir)) for p in asset_dir.rglob("*") if p.is_file()}


def function_code_key(template, handler: str) -> str:
    [fn] = template.find_resources("AWS::Lambda::Function",
                                   {"Properties": {"Handler": handler}}).values()
    return fn["Properties"]["Code"]["S3Key"]


@pytest.mark.parametrize("handler,packages,serving_side", [
    ("ingest.handler.lambda_handler", {"common", "ingest"}, None),
    ("aggregate.sink_handler.lambda_handler", {"common", "aggregate", "serving"}, "write"),
    ("query.handler.lambda_handler", {"common", "query", "serving"}, "read"),
])
def test_real_lambda_assets(default_app, default_template, handler, packages, serving_side):
    files = asset_files_of(default_app, function_code_key(default_template, handler))
    assert {f.split("/")[0] for f in files} == packages
    if serving_side:  # the serving store's core and this Lambda's side of it, not the other side
        other = {"read": "write", "write": "read"}[serving_side]
        assert {"serving/__init__.py", "serving/keys.py", f"serving/{serving_side}/dynamodb.py",
                f"serving/{serving_side}/timestream.py"} <= files
        assert not any(f.startswith(f"serving/{other}/") for f in files)
    assert "common/config.py" in files
    module = handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
    if Path("functions", module).exists():  # query/ is being written alongside
        assert module in files
    assert not any(f.startswith("aggregate/job/") for f in files)


def test_real_flink_asset_is_exactly_the_maven_zip(default_app, default_template, repo_root):
    # the stream job's; the rebuild application deploys the same asset (test_infra_rebuild.py)
    [application] = [r for k, r in default_template.find_resources(
        "AWS::KinesisAnalyticsV2::Application").items() if k.startswith("AggregatorApplication")]
    key = application["Properties"]["ApplicationConfiguration"]["ApplicationCodeConfiguration"][
        "CodeContent"]["S3ContentLocation"]["FileKey"]
    built = repo_root / StackSettings().flink_app_zip
    assembly = default_app.synth()
    staged = Path(assembly.directory) / f"asset.{key}"
    assert staged.is_file() and staged.read_bytes() == built.read_bytes()
    manifest = json.loads(next(Path(assembly.directory).glob("*.assets.json")).read_text())
    assert manifest["files"][key.removesuffix(".zip")]["source"] == {
        "path": f"asset.{key}", "packaging": "file"}
    with zipfile.ZipFile(built) as archive:
        files = {i.filename for i in archive.infolist() if not i.is_dir()}
    assert files == set(application_zip_sources()) | {JAR_IN_ZIP}
    assert ENTRY in files and "common/records.py" in files
    assert not any(f.startswith(("serving/", "aggregate/sink")) for f in files)


def test_the_makefile_builds_the_zip_synth_deploys(repo_root):
    """One path: the Makefile's FLINK_APP target is the setting's default."""
    [target] = re.findall(r"^FLINK_APP\s*:=\s*(\S+)$", (repo_root / "Makefile").read_text(),
                          re.MULTILINE)
    assert target == StackSettings().flink_app_zip
