"""cfn-lint (CloudFormation's own resource schemas, bundled with the PyPI package) on every
template variant the infra tests synthesize: wrong property names, types and values in the L1
resources (the Flink application, Glue jobs, Timestream) that CDK assertions cannot see, without
an AWS account. An error fails; so does any warning not listed in IGNORED with its reason.

Variants: default, custom (every setting changed: provisioned streams/tables, WAF, CORS), each
capacity profile (small/medium/large), and the contexts other tests build: WAF + two CORS
origins (test_infra_nag "edge"), two CORS origins alone (test_infra_security), no dashboard
site (test_infra_dashboard), a concrete account/region (test_infra_nag), and the Timestream
serving store's constructs (conftest timestream_parts: the app refuses serving_store=timestream).
"""
from __future__ import annotations

import json

import pytest
from cfnlint.api import ManualArgs, lint

# Region the schemas are read for: us-east-1 (cfn-lint's default); the concrete_env variant,
# synthesized for eu-west-1 (the other region the capacity planner prices), in that region.
REGION = {"concrete_env": "eu-west-1"}

# Rule id -> why it is ignored, in every variant.
IGNORED = {
    "W3005": "CDK adds DependsOn on a Lambda/Glue/Flink/Firehose role next to its default "
             "policy (the dependency that matters); the role's half repeats the GetAtt's order.",
}
# Rule id -> why it is ignored, only in the variants named.
IGNORED_IN = {
    ("timestream_parts", "W3697"): "Timestream for LiveAnalytics is in maintenance mode "
                                   "(closed to new customers): the reason the app refuses it.",
}

EXTRA_CONTEXTS = {
    "edge": {"waf_enabled": True,
             "cors_allowed_origins": "https://ops.example.com,http://localhost:5173"},
    "two_origins": {"cors_allowed_origins": "https://a.example.com,http://localhost:5173"},
    "no_dashboard": {"dashboard_site": False},
}
SESSION_VARIANTS = ("default", "custom", "small", "medium", "large")
VARIANTS = (*SESSION_VARIANTS, *EXTRA_CONTEXTS, "concrete_env", "timestream_parts")


@pytest.fixture(scope="module")
def variant_template(request, all_templates, app_factory, monkeypatch_module):
    def build(name: str) -> dict:
        if name in SESSION_VARIANTS:
            return all_templates[name].to_json()
        if name == "timestream_parts":
            return request.getfixturevalue("timestream_parts").to_json()
        if name == "concrete_env":
            monkeypatch_module.setenv("CDK_DEFAULT_ACCOUNT", "123456789012")
            monkeypatch_module.setenv("CDK_DEFAULT_REGION", "eu-west-1")
            try:
                return _template(app_factory())
            finally:
                monkeypatch_module.delenv("CDK_DEFAULT_ACCOUNT")
                monkeypatch_module.delenv("CDK_DEFAULT_REGION")
        return _template(app_factory(**EXTRA_CONTEXTS[name]))
    return build


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _template(app) -> dict:
    from aws_cdk.assertions import Template

    return Template.from_stack(app.node.find_child("ClickAgg")).to_json()


def findings(template: dict, region: str = "us-east-1") -> list:
    return lint(json.dumps(template), config=ManualArgs(regions=[region]))


def describe(match) -> str:
    return f"{match.rule.id} {'/'.join(map(str, match.path))}: {match.message}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_template_passes_cfn_lint(variant_template, variant):
    template = variant_template(variant)
    assert template["Resources"], variant
    unexplained = [describe(m) for m in findings(template, REGION.get(variant, "us-east-1"))
                   if m.rule.id not in IGNORED and (variant, m.rule.id) not in IGNORED_IN]
    assert not unexplained, "\n".join(unexplained)


def test_cfn_lint_finds_a_wrong_l1_property():
    """The check can fail: a misspelt Flink checkpoint property and a bad enum value are errors."""
    template = {"Resources": {"App": {
        "Type": "AWS::KinesisAnalyticsV2::Application",
        "Properties": {
            "RuntimeEnvironment": "FLINK-1_20",
            "ServiceExecutionRole": "arn:aws:iam::123456789012:role/r",
            "ApplicationConfiguration": {"FlinkApplicationConfiguration": {
                "CheckpointConfiguration": {"ConfigurationType": "CUSTOMISED",
                                            "CheckpointIntervalMs": 10000}}}}}}}
    errors = {m.rule.id for m in findings(template) if m.rule.id.startswith("E")}
    assert errors >= {"E3002", "E3030"}, errors


def test_cfn_lint_is_the_pinned_version(repo_root):
    from importlib.metadata import version

    pins = [line.split("==", 1)[1].split("#")[0].strip()
            for line in (repo_root / "requirements" / "dev.txt").read_text().splitlines()
            if line.startswith("cfn-lint==")]
    assert pins == [version("cfn-lint")]
