"""cdk-nag 3 AwsSolutions: the app synthesizes clean, and every acknowledgement says why."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import Validations
from aws_cdk import aws_sns as sns

ACK_METADATA = Validations.ACKNOWLEDGED_RULES_METADATA_KEY


@pytest.fixture(scope="module")
def nag_app(app_factory):
    return app_factory(nag=True)


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
    violations = [v for plugin in report["pluginReports"] for v in plugin["violations"]]
    assert {v["ruleName"] for v in violations} >= {"AwsSolutions-SNS3"}
    paths = {c["constructPath"] for v in violations for c in v["violatingConstructs"]}
    assert paths == {"ClickAgg/Unencrypted/Resource"}  # only the planted topic
