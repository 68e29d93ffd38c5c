"""cdk-nag 3 AwsSolutions: the app synthesizes clean (defaults, each capacity profile, WAF + CORS
on), and every acknowledgement says why. serving_store=timestream is refused before any check
(test_infra_aggregation.py), so there is no Timestream variant here."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import Validations
from aws_cdk import aws_sns as sns

ACK_METADATA = Validations.ACKNOWLEDGED_RULES_METADATA_KEY


NAG_VARIANTS = {
    "default": {},  # DynamoDB serving store + reconciliation job, no WAF, no CORS
    "small": {"profile": "small"},  # provisioned tables + autoscaling, provisioned streams
    "medium": {"profile": "medium"},
    "large": {"profile": "large"},
    "edge": {"waf_enabled": True,  # web ACL instead of the APIG3 acknowledgement
             "cors_allowed_origins": "https://ops.example.com,http://localhost:5173"},
}


@pytest.fixture(scope="module", params=list(NAG_VARIANTS))
def nag_app(request, app_factory):
    """One app per variant: each builds different resources and grants."""
    context = NAG_VARIANTS[request.param]
    if set(context) == {"profile"}:  # conftest builds the profile apps with cdk-nag already
        return request.getfixturevalue("profile_apps")[context["profile"]]
    return app_factory(nag=True, **context)


_ACKS: dict[int, tuple[object, dict[str, str]]] = {}


def acknowledgements(app) -> dict[str, str]:
    """'<construct path> <rule>' -> reason, over the whole app (walked once per app)."""
    if id(app) not in _ACKS:
        _ACKS[id(app)] = (app, _walk_acknowledgements(app))
    return _ACKS[id(app)][1]


def _walk_acknowledgements(app) -> dict[str, str]:
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
    # the dashboard site's own (incl. aws-cdk-lib's BucketDeployment provider): exactly listed
    # in test_infra_dashboard.py
    dashboard = ("ClickAgg/Dashboard/", "ClickAgg/Custom::CDKBucketDeployment")
    rules = {where.split(" ", 1)[1].removeprefix("Annotation::")
             for where in acknowledgements(nag_app) if not where.startswith(dashboard)}
    stack = nag_app.node.find_child("ClickAgg")
    expected = {
        "AwsSolutions-KDS3", "AwsSolutions-IAM5[Resource::*]", "AwsSolutions-L1",
        "AwsSolutions-APIG4", "AwsSolutions-COG4",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AmazonAPIGatewayPushToCloudWatchLogs]",
        "AwsSolutions-SQS3", "AwsSolutions-KDF1",
        "AwsSolutions-SMG4",  # click-token keys: manual rotation (infra.constructs.click_token_keys)
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
        "log-group:*]",
    }
    if not stack.settings.waf_enabled:
        expected.add("AwsSolutions-APIG3")  # no web ACL on the stage
    archive = {r for r in rules if r.startswith("AwsSolutions-IAM5[Resource::<ArchiveBucket")}
    # the raw archives' Firehoses (clicks, events) and the refused-items one, each on its own
    # two prefixes
    assert {r.split(".Arn>", 1)[1] for r in archive} == {
        "/raw/clicks/*]", "/errors/clicks/*]", "/raw/events/*]", "/errors/events/*]",
        "/refused/clicks/*]", "/errors/refused/*]"}
    events_role = {where.split(" ", 1)[1].split(".Arn>", 1)[1]
                   for where in acknowledgements(nag_app)
                   if where.startswith("ClickAgg/EventsArchiveDelivery/DestinationRole ")}
    assert events_role == {"/raw/events/*]", "/errors/events/*]"}
    refused_role = {where.split(" ", 1)[1].split(".Arn>", 1)[1]
                    for where in acknowledgements(nag_app)
                    if where.startswith("ClickAgg/RefusedArchive/DeliveryRole ")}
    assert refused_role == {"/refused/clicks/*]", "/errors/refused/*]"}
    billing_job = {where.split(" ", 1)[1].split(".Arn>", 1)[1]
                   for where in acknowledgements(nag_app) if where.startswith("ClickAgg/Billing/BillingRole ")}
    assert billing_job == {"/raw/clicks/*]", "/raw/events/*]", "/billing*]"}  # reads both archives
    billing = {r for r in rules if r.startswith("AwsSolutions-IAM5[Resource::<BillingBucket")}
    assert {r.split(".Arn>", 1)[1] for r in billing} == {
        "/billing*]", "/billing/hourly/*]", "/billing/events_hourly/*]", "/billing/campaign_spend/*]",
        "/reconciliation/*]"}
    # the rebuild (infra.constructs.rebuild): its output prefix, CDK's state machine grants
    rebuild = {r for r in rules if r.startswith(("AwsSolutions-IAM5[Resource::<Rebuild",
                                                 "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<Rebuild",
                                                 "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:"))}
    assert {re.sub(r"[0-9A-F]{8}(?=[.>\"])", "", r) for r in rebuild} == {
        "AwsSolutions-IAM5[Resource::<RebuildBucket.Arn>/rebuild/*]",
        "AwsSolutions-IAM5[Resource::<RebuildPrepareFunction.Arn>:*]",
        "AwsSolutions-IAM5[Resource::<RebuildLoadFileFunction.Arn>:*]",
        "AwsSolutions-IAM5[Resource::<RebuildCommitFunction.Arn>:*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<RebuildBucket>/*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
        'execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"RebuildStateMachine"}]}]}:*]',
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
        'execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"RebuildStateMachine"}]}]}/*:*]'}
    assert rules - archive - billing - rebuild == expected


def test_waf_replaces_the_apig3_acknowledgement(nag_app):
    stack = nag_app.node.find_child("ClickAgg")
    stage_acks = [rule.removeprefix("Annotation::")
                  for where, rule in (k.split(" ", 1) for k in acknowledgements(nag_app))
                  if where == stack.api.api.deployment_stage.node.path]
    assert ("AwsSolutions-APIG3" in stage_acks) is (not stack.settings.waf_enabled)


def test_star_resources_are_acknowledged_only_where_the_service_needs_them(nag_app):
    """IAM5[Resource::*] sits on the roles whose statements need it, with their reasons."""
    where = {k.split(" ", 1)[0] for k in acknowledgements(nag_app)
             if k.endswith("AwsSolutions-IAM5[Resource::*]")}
    roles = {path.rsplit("/", 1)[0] for path in where}
    # X-Ray on every function; the query role also cloudwatch:GetMetricData (/v1/quality); the
    # reconciliation job's cloudwatch:PutMetricData (namespace condition)
    # the rebuild's three functions (X-Ray) and its state machine (log delivery, X-Ray)
    assert roles == {"ClickAgg/IngestFunction", "ClickAgg/Sink", "ClickAgg/Query",
                     "ClickAgg/ReconcileApi", "ClickAgg/BudgetApi", "ClickAgg/Billing",
                     "ClickAgg/Rebuild/PrepareFunction", "ClickAgg/Rebuild/LoadFileFunction",
                     "ClickAgg/Rebuild/CommitFunction", "ClickAgg/Rebuild"}
