"""Fixtures for the CDK tests: apps built with cdk.json's context (feature flags included), so the
tested template is the one `cdk synth` produces. Tests get helpers as fixtures, never by
importing this module (another tests/ directory may have its own conftest).

The default and custom apps are built once per session (each takes seconds: assets, jsii); tests
only read them. A test that adds constructs builds its own app with `app_factory`."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# A region-agnostic stack, as in CI without credentials.
os.environ.pop("CDK_DEFAULT_ACCOUNT", None)
os.environ.pop("CDK_DEFAULT_REGION", None)

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_TMP_PREFIX = "clickagg-cdk-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def session_cdk_tmp() -> Path:
    """The directory the CDK writes everything it is not told where to write: each App without
    an outdir makes `cdk.out*` at construction and stages its assets there on synth (the Flink
    zip: 84 MB per synthesized app), custom resource providers copy their code to
    `cdk-custom-resource*`. All of it goes through Node's os.tmpdir() in the jsii kernel (one
    Node process per session, started by the first aws_cdk import below), which reads TMPDIR.
    The kernel cleans up only when it exits normally (not when terminated, not when pytest is
    killed): this directory is removed at exit, and those of dead sessions when a session starts."""
    base = Path(tempfile.gettempdir())
    for stale in base.glob(f"{CDK_TMP_PREFIX}*"):
        pid = stale.name[len(CDK_TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=f"{CDK_TMP_PREFIX}{os.getpid()}-", dir=base))
    # registered before the kernel starts: atexit runs last-in first-out, so jsii's own exit
    # hook (stop the kernel) runs first, then this
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


CDK_TMP = session_cdk_tmp()
_tmpdir = os.environ.get("TMPDIR")
os.environ["TMPDIR"] = str(CDK_TMP)  # for the jsii kernel's process only: restored below
try:
    from aws_cdk import App  # noqa: E402
    from aws_cdk.assertions import Template  # noqa: E402
finally:
    if _tmpdir is None:
        os.environ.pop("TMPDIR")
    else:
        os.environ["TMPDIR"] = _tmpdir
if Path(App().outdir).parent != CDK_TMP:  # the kernel was started earlier, by another import
    raise RuntimeError(f"the jsii kernel does not write under {CDK_TMP}: an aws_cdk/constructs import "
                       "ran before tests/infra/conftest.py, so CDK output would be left in the system "
                       "temporary directory")


def cdk_json() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())


def make_app(nag: bool = False, **overrides) -> App:
    """app.build_app on an App whose context is cdk.json's plus overrides (explicit context,
    like `-c key=value`)."""
    from app import build_app

    return build_app(App(context={**cdk_json()["context"], **overrides}), nag=nag)


def stack_of(app: App):
    return app.node.find_child("ClickAgg")


def template_of(app: App) -> Template:
    return Template.from_stack(stack_of(app))


# Non-default values for every setting the template depends on.
CUSTOM = {
    "prefix": "ca-test",
    "ingest_rate_limit": 1234,
    "ingest_burst_limit": 567,
    "kinesis_mode": "provisioned",
    "kinesis_shards": 7,
    "kinesis_retention_hours": 48,
    "dedup_ttl_s": 3600,
    "ingest_dedup_mode": "mark",  # the default is per_click: this template covers the other
    "hot_ad_salts": "ad-1:8,ad-7:4",
    "ingest_memory_mb": 2048,
    "ingest_reserved_concurrency": 50,
    "powertools_layer_version": 41,  # a literal layer version instead of the release's SSM
    "alarm_email": "oncall@example.com",
    # aggregation (serving_store: dynamodb is the default and the only one the stack deploys;
    # timestream is refused, see timestream_parts below)
    "aggregates_kinesis_mode": "provisioned",
    "aggregates_kinesis_shards": 3,
    "aggregates_retention_hours": 36,
    "allowed_lateness_s": 600,
    "leaderboard_size": 500,
    "repeat_window_s": 5,
    "watermark_delay_s": 10,
    "flink_dedup_ttl_s": 3600,
    "minibatch_latency_ms": 1000,
    "flink_parallelism": 4,
    "flink_parallelism_per_kpu": 2,
    "flink_autoscaling": False,
    "flink_checkpoint_interval_ms": 30000,
    "flink_min_pause_between_checkpoints_ms": 2000,
    "rebuild_parallelism": 16,
    "rebuild_load_concurrency": 37,
    # flink_app_zip: the real Maven zip here too; another zip path: test_infra_asset.py
    "sink_batch_size": 100,
    "sink_max_batching_window_s": 5,
    "sink_parallelization_factor": 4,
    "sink_retry_attempts": 3,
    "sink_memory_mb": 1024,
    "query_memory_mb": 256,
    "minute_ttl_s": 86400,
    "freshness_slots": 40,
    "timestream_memory_retention_hours": 12,  # unused with dynamodb: see timestream_parts
    "timestream_magnetic_retention_days": 30,
    "iterator_age_alarm_ms": 120000,
    # archive
    "archive_ia_after_days": 45,
    "archive_cold_after_days": 180,
    "archive_cold_storage_class": "glacier",
    "firehose_buffer_mb": 64,
    "firehose_buffer_interval_s": 120,
    "athena_bytes_scanned_cutoff": 1073741824,
    "athena_results_retention_days": 7,
    # DynamoDB capacity: dedup on demand with a cap (+ warm throughput), serving provisioned
    "dedup_capacity_mode": "on_demand",
    "dedup_min_wcu": 10,  # unused on demand
    "dedup_max_wcu": 6000,
    "serving_capacity_mode": "provisioned",
    "serving_min_wcu": 100,
    "serving_max_wcu": 2000,
    "serving_min_rcu": 10,
    "serving_max_rcu": 500,
    "dynamodb_target_utilization_pct": 60,
    # billing
    "billing_glue_worker_type": "G.2X",
    "billing_glue_workers": 4,
    "billing_glue_timeout_min": 90,
    "billing_schedule": "cron(15 4 * * ? *)",
    "billing_cutoff_hours": 3,
    "ivt_burst_threshold": 20,
    "ivt_alert_percent": 7,
    # API edge
    "cors_allowed_origins": "https://ops.example.com",
    "waf_enabled": True,
    "waf_rate_limit_per_5min": 50000,
}


@pytest.fixture(scope="session")
def custom_context() -> dict:
    return dict(CUSTOM)


@pytest.fixture(scope="session")
def cdk_config() -> dict:
    return cdk_json()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def app_factory():
    return make_app


@pytest.fixture(scope="session")
def default_app() -> App:
    return make_app()


@pytest.fixture(scope="session")
def default_template(default_app) -> Template:
    return template_of(default_app)


@pytest.fixture(scope="session")
def custom_app() -> App:
    return make_app(**CUSTOM)


@pytest.fixture(scope="session")
def custom_template(custom_app) -> Template:
    return template_of(custom_app)


PROFILES = ("small", "medium", "large")


@pytest.fixture(scope="session")
def profile_apps() -> dict[str, App]:
    """One app per capacity profile (`-c profile=<name>`), built once, with cdk-nag: the nag
    tests synthesize them, the template tests read them."""
    return {name: make_app(nag=True, profile=name) for name in PROFILES}


@pytest.fixture(scope="session")
def profile_templates(profile_apps) -> dict[str, Template]:
    return {name: template_of(app) for name, app in profile_apps.items()}


@pytest.fixture(scope="session")
def all_templates(default_template, custom_template, profile_templates) -> dict[str, Template]:
    """Every variant the tests build: defaults, every setting changed, each profile."""
    return {"default": default_template, "custom": custom_template, **profile_templates}


@pytest.fixture(scope="session")
def timestream_parts() -> Template:
    """The Timestream serving store with the sink and query Lambdas it is wired to, on a stack
    of their own: the app refuses serving_store=timestream (no reconciliation can read it), so
    these constructs are reachable only this way."""
    from aws_cdk import Stack
    from aws_cdk import aws_apigateway as apigw

    from infra.constructs.aggregates_stream import AggregatesStream
    from infra.constructs.buckets import AccessLogsBucket
    from infra.constructs.click_stream import ClickStream
    from infra.constructs.encryption import Encryption
    from infra.constructs.query_api import QueryApi
    from infra.constructs.serving_store import ServingStore
    from infra.constructs.sink_function import SinkFunction
    from infra.settings import StackSettings

    settings = StackSettings(serving_store="timestream")
    stack = Stack(App(context=cdk_json()["context"]), "TimestreamParts")
    key = Encryption(stack, "Encryption", prefix=settings.prefix).key
    store = ServingStore(stack, "Serving", settings=settings, key=key,
                         logs_bucket=AccessLogsBucket(stack, "AccessLogs").bucket)
    SinkFunction(stack, "Sink", settings=settings, key=key, store=store,
                 stream=AggregatesStream(stack, "Aggregates", settings=settings, key=key).stream)
    api = apigw.RestApi(stack, "Api")
    QueryApi(stack, "Query", settings=settings, key=key, store=store, api=api,
             v1=api.root.add_resource("v1"),
             clicks_stream=ClickStream(stack, "Clicks", settings=settings, key=key).stream)
    return Template.from_stack(stack)
