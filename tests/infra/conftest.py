"""Fixtures for the CDK tests: apps built with cdk.json's context (feature flags included), so the
tested template is the one `cdk synth` produces. Tests get helpers as fixtures, never by
importing this module (another tests/ directory may have its own conftest)."""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# A region-agnostic stack, as in CI without credentials.
os.environ.pop("CDK_DEFAULT_ACCOUNT", None)
os.environ.pop("CDK_DEFAULT_REGION", None)

import pytest  # noqa: E402
from aws_cdk import App  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]


def cdk_json() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())


def make_app(nag: bool = False, **overrides) -> App:
    """app.build_app on an App whose context is cdk.json's plus overrides."""
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
    "hot_ad_salts": "ad-1:8,ad-7:4",
    "ingest_memory_mb": 2048,
    "ingest_reserved_concurrency": 50,
    "powertools_layer_version": 41,
    "alarm_email": "oncall@example.com",
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


@pytest.fixture(scope="module")
def default_app() -> App:
    return make_app()


@pytest.fixture(scope="module")
def default_template(default_app) -> Template:
    return template_of(default_app)


@pytest.fixture(scope="module")
def custom_app() -> App:
    return make_app(**CUSTOM)


@pytest.fixture(scope="module")
def custom_template(custom_app) -> Template:
    return template_of(custom_app)
