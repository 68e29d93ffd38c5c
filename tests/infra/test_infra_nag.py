"""cdk-nag 3 AwsSolutions: the app synthesizes clean (with either serving store), and every
acknowledgement says why."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import Validations
from aws_cdk import aws_sns as sns

ACK_METADATA = Validations.ACKNOWLEDGED_RULES_METADATA_KEY


@pytest.fixture(scope="module", params=["timestream", "dynamodb"])
def nag_app(request, app_factory):
    """One app per serving store: the two build different resources and grants."""
    return app_factory(nag=True, serving_store=request.param)


def acknowledgements(app) -> dict[str, str]:
    found = {}
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == ACK_METADATA:
                for rule, reason in entry.data.items():
                    found[f"{construct.node.path} {rule}"] = reason
    return found


def test_app_passes_aws_solutions_checks(nag_app):
    nag_app.synth()  # cdk-nag 3 raises RuntimeError('ValidationFailed...') on unacknowledged errors


def test_app_passes_with_a_concrete_environment(app_factory, monkeypatch):
    """`cdk synth` with credentials sets the environment: findings then name literal regions
    and partitions, and an acknowledgement written for tokens would no longer match."""
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "123456789012")
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")
    app_factory(nag=True).synth()


def test_every_acknowledgement_is_specific_and_explained(nag_app):
    acks = acknowledgements(nag_app)
    assert acks, "expected the documented acknowledgements"
    for where, reason in acks.items():
        assert len(reason) >= 60, f"{where}: reason too thin: {reason!r}"
        assert "ClickAgg/" in where and where.split()[0] != "ClickAgg", \
            f"{where}: acknowledge on the construct concerned, not the whole stack"


def test_an_unacknowledged_finding_fails_the_synth(app_factory):
    app = app_factory(nag=True)
    sns.Topic(app.node.find_child("ClickAgg"), "Unencrypted")  # AwsSolutions-SNS2/SNS3
    with pytest.raises(RuntimeError, match="ValidationFailed") as failure:
        app.synth()
    report_path = re.search(r"found in: (\S+\.json)", str(failure.value)).group(1)
    report = json.loads(Path(report_path).read_text())
    violations = [v for plugin in report["pluginReports"] for v in plugin["violations"]
                  if v["ruleName"].startswith("AwsSolutions-")]  # not other plugins' warnings
    assert {v["ruleName"] for v in violations} >= {"AwsSolutions-SNS3"}
    paths = {c["constructPath"] for v in violations for c in v["violatingConstructs"]}
    assert paths == {"ClickAgg/Unencrypted/Resource"}  # only the planted topic


def test_only_the_documented_rules_are_acknowledged(nag_app):
    """A new acknowledgement is a decision: add it here, with its reason in the code."""
    rules = {where.split(" ", 1)[1].removeprefix("Annotation::")
             for where in acknowledgements(nag_app)}
    expected = {
        "AwsSolutions-KDS3", "AwsSolutions-IAM5[Resource::*]", "AwsSolutions-L1",
        "AwsSolutions-APIG4", "AwsSolutions-COG4", "AwsSolutions-APIG3",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AmazonAPIGatewayPushToCloudWatchLogs]",
        "AwsSolutions-SQS3", "AwsSolutions-KDF1",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
        "log-group:*]",
    }
    if nag_app.node.find_child("ClickAgg").serving.kind == "timestream":
        expected.add("CloudFormation-Validate::W3697")  # the service's maintenance-mode warning
    prefixed = {r for r in rules if r.startswith("AwsSolutions-IAM5[Resource::<ArchiveBucket")}
    assert {r.split(".Arn>", 1)[1] for r in prefixed} == {"/raw/clicks/*]", "/errors/clicks/*]"}
    assert rules - prefixed == expected
