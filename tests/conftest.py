"""Shared fixtures: fake credentials (never real AWS), in-process moto, API Gateway events."""
from __future__ import annotations

import json
import os

import boto3
import pytest

os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
})
os.environ.pop("AWS_ENDPOINT_URL", None)


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
