"""Shared fixtures: fake credentials (never real AWS), in-process moto, API Gateway events."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import boto3
import pytest

os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
})
os.environ.pop("AWS_ENDPOINT_URL", None)

_REPO = Path(__file__).resolve().parents[1]
# the repo's packages that hold Powertools metrics objects: the functions' and the local stack's
_CODE_PACKAGES = frozenset({p.name for p in (_REPO / "functions").iterdir() if (p / "__init__.py").is_file()}
                           | {"local"})


def reset_powertools_metrics() -> None:
    """Drop every metric, dimension and metadata value Powertools holds in this process.

    With POWERTOOLS_METRICS_DISABLED (set above) `flush_metrics` neither prints nor clears, so
    what one test's in-process handler calls recorded stays: in the class attributes shared by
    every `Metrics` object (aws_lambda_powertools.metrics.metrics.Metrics._metrics, _dimensions,
    _metadata, _default_dimensions), and in the handlers' module-level `EphemeralMetrics`. The
    reset uses Powertools' own API: clear_default_dimensions() + clear_metrics() on a `Metrics`
    (which clears the shared sets) and clear_metrics() on each metrics object of the repo's
    modules (functions/, local/)."""
    powertools = sys.modules.get("aws_lambda_powertools.metrics.metrics")
    if powertools is None:  # never imported here (or not installed: Glue/Flink venvs): no state
        return
    shared = powertools.Metrics()
    shared.clear_default_dimensions()
    shared.clear_metrics()
    kinds = (powertools.Metrics, powertools.EphemeralMetrics)
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] not in _CODE_PACKAGES or module is None:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, kinds):
                value.clear_metrics()


@pytest.fixture(autouse=True)
def fresh_powertools_metrics():
    """Every test starts with no Powertools metrics left by an earlier one (see
    reset_powertools_metrics; tests/unit/test_metrics_isolation.py fails without this). Only while
    metrics are disabled: that is when nothing clears them. While they are enabled (a local stack
    of this process is running: it sets POWERTOOLS_METRICS_DISABLED=false), every invocation
    flushes and clears its own, and a reset could race a handler running in a stack thread."""
    if "aws_lambda_powertools.metrics.metrics" in sys.modules:
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled

        if is_metrics_disabled():
            reset_powertools_metrics()
    yield


@pytest.fixture
def aws():
    """In-process moto for one test: every AWS call in the test goes to a fresh fake account."""
    from moto import mock_aws

    with mock_aws():
        yield


def api_event(body, path: str = "/v1/clicks", method: str = "POST", headers: dict | None = None,
              resource: str | None = None, query: str = "", source_ip: str = "203.0.113.9") -> dict:
    """A real API Gateway REST proxy event (same builder the local HTTP server uses)."""
    from local.apigw import build_event

    raw = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    raw = raw.encode() if isinstance(raw, str) else (raw or b"")
    hdrs = {"Content-Type": "application/json", "User-Agent": "sdk/1.0"} if headers is None else headers
    return build_event(method, path + (f"?{query}" if query else ""), hdrs, raw, source_ip,
                       resource or path, {})


def pytest_terminal_summary(terminalreporter, config):
    """Tests run in random order (pytest-randomly, reseeding `random` per test too); `-q` hides the
    plugin's header, so say how to replay this run's order."""
    if config.pluginmanager.hasplugin("randomly"):
        terminalreporter.write_line(f"test order: -p randomly --randomly-seed={config.getoption('randomly_seed')}")


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`-n 2 --dist loadfile` (make test-main, test-flink): modules as units, the main suite's
    Flink-stack ones together (tests/xdist_scheduling.py); any other --dist mode is xdist's own."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.xdist_scheduling import make_scheduler

    return make_scheduler(config, log)
