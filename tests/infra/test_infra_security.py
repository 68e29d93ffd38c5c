"""Security properties over EVERY template variant (defaults, every setting changed, each
capacity profile): least privilege across all roles, encryption at rest everywhere, TLS-only
buckets; and the API edge: CORS only for configured origins and the dashboard's, WAF only when
enabled.

Exceptions, each for one named resource of infra/constructs/dashboard_site.py and no other:
- BucketDeployment's provider Lambda role (aws-cdk-lib's singleton "Custom::CDKBucketDeployment",
  runs at deploy time only): AWSLambdaBasicExecutionRole, and the S3/KMS action wildcards of
  aws-cdk-lib's bucket grants, on the assets bucket, the dashboard bucket and the pipeline key
  only (never Resource '*', no CloudFront invalidation grant).
- DashboardViewerRole: trusted by the Cognito identity pool (Federated, this pool's
  authenticated identities), not by a service.
- DashboardCdnLogs: SSE-S3 like the access-logs bucket (an AWS log delivery writes it:
  CloudFront standard logs); the dashboard's site bucket itself is SSE-KMS.
"""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from infra.constructs.dashboard_site import HANDLER_KMS_ACTION_WILDCARDS, HANDLER_S3_ACTION_WILDCARDS
from infra.settings import StackSettings
from query.routes import ROUTES as QUERY_ROUTES
from tests.infra.test_infra_stack import PUBLIC_PREFLIGHT, api_methods

# Actions that only exist on Resource '*', with why (each role that has one carries an
# AwsSolutions-IAM5[Resource::*] acknowledgement: test_infra_nag).
STAR_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "timestream:DescribeEndpoints": "Timestream endpoint discovery",
    "cloudwatch:PutMetricData": "no resource-level permissions; namespace condition instead",
    "cloudwatch:GetMetricData": "no resource-level permissions (GET /v1/quality reads metrics)",
    # the rebuild state machine's logging (CloudWatch Logs vended delivery) and tracing: CDK's
    # grants for LogOptions and tracing_enabled; none of them has resource-level permissions
    **{f"logs:{a}": "Step Functions log delivery: no resource-level permissions"
       for a in ("CreateLogDelivery", "DeleteLogDelivery", "GetLogDelivery", "ListLogDeliveries",
                 "UpdateLogDelivery", "DescribeLogGroups", "DescribeResourcePolicies",
                 "PutResourcePolicy")},
    "xray:GetSamplingRules": "X-Ray has no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray has no resource-level permissions",
}
VARIANTS = ("default", "custom", "small", "medium", "large")
# aws-cdk-lib's BucketDeployment provider (the dashboard's files): logical ids of its role/policy
DEPLOY_HANDLER = "CustomCDKBucketDeployment"
DEPLOY_HANDLER_ACTION_WILDCARDS = {*HANDLER_S3_ACTION_WILDCARDS, *HANDLER_KMS_ACTION_WILDCARDS}



_JSON: dict[int, tuple[Template, dict]] = {}  # holds the template: its id stays unique


def template_json(template: Template) -> dict:
    """Template.to_json() once per template (each call crosses into jsii)."""
    if id(template) not in _JSON:
        _JSON[id(template)] = (template, template.to_json())
    return _JSON[id(template)][1]

def resources(template: Template, type_: str) -> dict[str, dict]:
    return {k: v for k, v in template_json(template)["Resources"].items() if v["Type"] == type_}


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def all_role_statements(template: Template) -> list[tuple[str, dict]]:
    """(where, statement) of every identity policy: AWS::IAM::Policy, inline role policies,
    customer managed policies."""
    out = []
    for name, policy in resources(template, "AWS::IAM::Policy").items():
        out += [(name, s) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    for name, policy in resources(template, "AWS::IAM::ManagedPolicy").items():
        out += [(name, s) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    for name, role in resources(template, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            out += [(name, s) for s in inline["PolicyDocument"]["Statement"]]
    return out


def key_arn(template: Template) -> dict:
    [key] = resources(template, "AWS::KMS::Key")
    return {"Fn::GetAtt": [key, "Arn"]}


@pytest.fixture(params=VARIANTS)
def template(request, all_templates) -> Template:
    return all_templates[request.param]


# --- least privilege ------------------------------------------------------------------------

def test_no_wildcard_action_in_any_role(template):
    statements = all_role_statements(template)
    assert len(statements) > 30  # the walk found the roles' policies
    for where, statement in statements:
        for action in as_list(statement["Action"]):
            if where.startswith(DEPLOY_HANDLER) and action in DEPLOY_HANDLER_ACTION_WILDCARDS:
                continue  # aws-cdk-lib's grants; resources checked below
            assert "*" not in action, f"{where}: wildcard action {action}"
        assert "NotAction" not in statement and "NotResource" not in statement, where


def test_deploy_handler_wildcards_stay_on_the_dashboard_bucket_assets_and_key(template):
    """The one exception above: its wildcard actions act on named resources only."""
    handler = [s for where, s in all_role_statements(template) if where.startswith(DEPLOY_HANDLER)]
    assert handler  # the dashboard is on in every variant
    allowed = ("DashboardBucket", "cdk-hnb659fds-assets-", "EncryptionKey")
    for statement in handler:
        for resource in as_list(statement["Resource"]):
            assert resource != "*"
            assert any(a in json.dumps(resource) for a in allowed), resource
        assert not any(a.startswith("cloudfront:") for a in as_list(statement["Action"]))


def test_star_resource_only_where_the_service_has_no_resource_arns(template):
    for where, statement in all_role_statements(template):
        if "*" not in as_list(statement["Resource"]):
            continue
        actions = set(as_list(statement["Action"]))
        assert actions <= set(STAR_RESOURCE_ACTIONS), f"{where}: {actions} on '*'"
        if "cloudwatch:PutMetricData" in actions:
            assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace":
                                                               "ClickAgg"}}, where


def test_no_role_uses_aws_managed_policies_except_the_api_gateway_logging_role(template):
    for name, role in resources(template, "AWS::IAM::Role").items():
        managed = role["Properties"].get("ManagedPolicyArns", [])
        if managed and name.startswith(DEPLOY_HANDLER):  # deploy-time only, its own logs
            assert managed == [{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                                  ":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]]}]
        elif managed:
            assert name.startswith("IngestApiCloudWatchRole"), name
            assert "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(managed)


def test_every_role_trusts_one_service(template):
    for name, role in resources(template, "AWS::IAM::Role").items():
        [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        if name.startswith("DashboardViewerRole"):  # the identity pool's signed-in users
            [pool] = resources(template, "AWS::Cognito::IdentityPool")
            assert statement["Principal"] == {"Federated": "cognito-identity.amazonaws.com"}
            assert statement["Condition"]["StringEquals"] == {
                "cognito-identity.amazonaws.com:aud": {"Ref": pool}}
            assert statement["Condition"]["ForAnyValue:StringLike"] == {
                "cognito-identity.amazonaws.com:amr": "authenticated"}
            continue
        assert list(statement["Principal"]) == ["Service"], name


# --- encryption at rest ---------------------------------------------------------------------

def test_every_stream_is_kms_encrypted(template):
    streams = resources(template, "AWS::Kinesis::Stream")
    assert sorted(s["Properties"]["Name"].rsplit("-", 1)[1] for s in streams.values()) == [
        "aggregates", "clicks", "events"]
    for name, stream in streams.items():
        assert stream["Properties"]["StreamEncryption"] == {
            "EncryptionType": "KMS", "KeyId": key_arn(template)}, name


def test_every_table_is_kms_encrypted(template):
    tables = resources(template, "AWS::DynamoDB::Table")
    assert tables
    for name, table in tables.items():
        assert table["Properties"]["SSESpecification"] == {
            "SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn(template)}, name
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True}, name
    for name, database in resources(template, "AWS::Timestream::Database").items():
        assert database["Properties"]["KmsKeyId"] == key_arn(template), name


def test_every_bucket_is_encrypted_and_tls_only(template):
    buckets = resources(template, "AWS::S3::Bucket")
    tls_only = set()
    for policy in resources(template, "AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if (statement["Effect"] == "Deny" and statement["Action"] == "s3:*"
                    and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}):
                tls_only.add(policy["Properties"]["Bucket"]["Ref"])
    assert tls_only == set(buckets)
    for name, bucket in buckets.items():
        [rule] = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        sse = rule["ServerSideEncryptionByDefault"]
        if name.startswith(("AccessLogsBucket", "DashboardCdnLogs")):  # log deliveries: SSE-S3
            assert sse == {"SSEAlgorithm": "AES256"}
        else:
            assert sse == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn(template)}, name


def test_every_log_group_is_kms_encrypted(template):
    groups = resources(template, "AWS::Logs::LogGroup")
    assert len(groups) >= 8
    for name, group in groups.items():
        assert group["Properties"]["KmsKeyId"] == key_arn(template), name
        assert group["Properties"]["RetentionInDays"] == 30, name


def test_every_queue_and_topic_is_kms_encrypted(template):
    for type_, prop in (("AWS::SQS::Queue", "KmsMasterKeyId"),
                        ("AWS::SNS::Topic", "KmsMasterKeyId")):
        found = resources(template, type_)
        assert found
        for name, resource in found.items():
            assert resource["Properties"][prop] == key_arn(template), name


def test_glue_jobs_use_the_encrypting_security_configuration(template):
    [config] = resources(template, "AWS::Glue::SecurityConfiguration")
    for name, job in resources(template, "AWS::Glue::Job").items():
        assert job["Properties"]["SecurityConfiguration"] == {"Ref": config}, name


# --- API edge: CORS -------------------------------------------------------------------------

def options_methods(template: Template) -> dict[str, dict]:
    """The configured-origin preflights (ApiCors), by logical id: the public click POST's own
    preflight (always `*`, test_infra_stack.py) is not one of them."""
    public = api_methods(template.to_json())["OPTIONS", "/v1/public/clicks"]
    return {k: v["Properties"] for k, v in resources(template, "AWS::ApiGateway::Method").items()
            if v["Properties"]["HttpMethod"] == "OPTIONS" and v["Properties"] != public}


def dashboard_origin(template: Template, quoted: bool = False) -> dict:
    """https://<the dashboard distribution's domain>, as the template spells it."""
    [cdn] = resources(template, "AWS::CloudFront::Distribution")
    q = "'" if quoted else ""
    return {"Fn::Join": ["", [f"{q}https://", {"Fn::GetAtt": [cdn, "DomainName"]}, *([q] if q else [])]]}


def lambda_envs(template: Template) -> dict[str, dict]:
    return {fn["Properties"]["Handler"]: fn["Properties"].get("Environment", {}).get("Variables", {})
            for fn in resources(template, "AWS::Lambda::Function").values()}


def test_by_default_cors_only_for_the_dashboard(default_template, profile_templates):
    """No configured origins: exactly one, the dashboard's (context dashboard_site=false: none,
    test_infra_dashboard.py)."""
    for template in (default_template, *profile_templates.values()):
        preflights = options_methods(template)
        # /v1/clicks + the query routes + /v1/reconcile + the budget Lambda's three resources
        assert len(preflights) == 2 + len(QUERY_ROUTES) + 3
        for method in preflights.values():
            assert method["AuthorizationType"] == "NONE"
            assert method["Integration"]["Type"] == "MOCK"
            response = method["Integration"]["IntegrationResponses"][0]
            assert response["ResponseParameters"][
                "method.response.header.Access-Control-Allow-Origin"] == dashboard_origin(template, True)
            assert response["ResponseParameters"]["method.response.header.Vary"] == "'Origin'"
            assert "ResponseTemplates" not in response  # one origin: nothing else is echoed
        responses = {r["Properties"]["ResponseType"]: r["Properties"] for r in resources(
            template, "AWS::ApiGateway::GatewayResponse").values()}
        for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
            assert responses[kind]["ResponseParameters"][
                "gatewayresponse.header.Access-Control-Allow-Origin"] == dashboard_origin(template, True)
        assert "ResponseParameters" not in responses["BAD_REQUEST_BODY"]  # configured origins only
        envs = lambda_envs(template)
        for handler in ("ingest.handler.lambda_handler", "query.handler.lambda_handler",
                        "query.reconcile_handler.lambda_handler", "query.budget.handler.lambda_handler"):
            assert envs[handler]["CORS_ALLOWED_ORIGINS"] == dashboard_origin(template), handler
        assert sum("CORS_ALLOWED_ORIGINS" in env for env in envs.values()) == 4


def test_cors_for_one_configured_origin_and_the_dashboard(custom_template):
    preflights = options_methods(custom_template)
    # /v1/clicks + the query routes + /v1/reconcile + the budget Lambda's three resources
    assert len(preflights) == 2 + len(QUERY_ROUTES) + 3
    for method in preflights.values():
        assert method["AuthorizationType"] == "NONE"
        assert method["Integration"]["Type"] == "MOCK"
        response = method["Integration"]["IntegrationResponses"][0]
        params = response["ResponseParameters"]
        assert params["method.response.header.Access-Control-Allow-Origin"] == \
            "'https://ops.example.com'"
        assert params["method.response.header.Vary"] == "'Origin'"
        # the mapping template echoes a request Origin only when it is the dashboard's
        [echo] = response["ResponseTemplates"].values()
        parts = echo["Fn::Join"][1]
        assert parts[0].endswith('#if($origin == "https://') and parts[2].startswith('")')
        assert parts[1] == dashboard_origin(custom_template)["Fn::Join"][1][1]
    allowed = sorted(m["Integration"]["IntegrationResponses"][0]["ResponseParameters"][
        "method.response.header.Access-Control-Allow-Methods"] for m in preflights.values())
    # + the budget Lambda's: GET,PUT budget, GET pacing, POST /v1/pacing
    assert allowed == sorted(["'GET'"] * len(QUERY_ROUTES) + ["'POST'", "'POST'"]
                             + ["'GET,PUT'", "'GET'", "'POST'"])
    responses = {r["Properties"]["ResponseType"]: r["Properties"] for r in resources(
        custom_template, "AWS::ApiGateway::GatewayResponse").values()}
    # two origins: API Gateway's own 4XX/5XX cannot choose one (api_cors.py); the ingest API's
    # bad-body answer names the configured origin (infra/constructs/ingest_api.py)
    assert "DEFAULT_4XX" not in responses and "DEFAULT_5XX" not in responses
    assert responses["BAD_REQUEST_BODY"]["ResponseParameters"][
        "gatewayresponse.header.Access-Control-Allow-Origin"] == "'https://ops.example.com'"
    envs = lambda_envs(custom_template)
    both = {"Fn::Join": ["", ["https://ops.example.com,https://",
                              dashboard_origin(custom_template)["Fn::Join"][1][1]]]}
    assert envs["ingest.handler.lambda_handler"]["CORS_ALLOWED_ORIGINS"] == both
    assert envs["query.handler.lambda_handler"]["CORS_ALLOWED_ORIGINS"] == both
    assert envs["query.reconcile_handler.lambda_handler"]["CORS_ALLOWED_ORIGINS"] == both
    assert "CORS_ALLOWED_ORIGINS" not in envs["aggregate.sink_handler.lambda_handler"]


@pytest.fixture(scope="module")
def two_origins_template(app_factory) -> Template:
    app = app_factory(cors_allowed_origins="https://a.example.com,http://localhost:5173")
    return Template.from_stack(app.node.find_child("ClickAgg"))


def test_cors_for_several_origins_answers_only_listed_ones(two_origins_template):
    preflights = options_methods(two_origins_template)
    assert len(preflights) == 2 + len(QUERY_ROUTES) + 3  # + the budget Lambda's three resources
    for method in preflights.values():
        response = method["Integration"]["IntegrationResponses"][0]
        # the first origin is the static header, the mapping template swaps in a request
        # Origin only when it is one of the others
        assert response["ResponseParameters"][
            "method.response.header.Access-Control-Allow-Origin"] == "'https://a.example.com'"
        template = json.dumps(response["ResponseTemplates"])
        assert "http://localhost:5173" in template and "$input.params" in template
    # the public click POST's preflight is not theirs: `*`, whatever origins are configured
    [public] = api_methods(two_origins_template.to_json())["OPTIONS", "/v1/public/clicks"][
        "Integration"]["IntegrationResponses"]
    assert public["ResponseParameters"] == PUBLIC_PREFLIGHT and "ResponseTemplates" not in public
    kinds = {r["Properties"]["ResponseType"] for r in resources(
        two_origins_template, "AWS::ApiGateway::GatewayResponse").values()}
    assert kinds == {"BAD_REQUEST_BODY"}  # no static origin fits several: no CORS headers
    [bad_body] = resources(two_origins_template, "AWS::ApiGateway::GatewayResponse").values()
    assert "ResponseParameters" not in bad_body["Properties"]


# --- API edge: WAF --------------------------------------------------------------------------

def test_no_waf_by_default(default_template, profile_templates):
    for template in (default_template, *profile_templates.values()):
        assert not resources(template, "AWS::WAFv2::WebACL")
        assert not resources(template, "AWS::WAFv2::WebACLAssociation")


def test_waf_rate_limit_on_the_stage_when_enabled(custom_template):
    [(acl_id, acl)] = resources(custom_template, "AWS::WAFv2::WebACL").items()
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    [rule] = props["Rules"]
    assert rule["Action"] == {"Block": {}}
    assert rule["Statement"]["RateBasedStatement"] == {
        "Limit": 50000, "AggregateKeyType": "IP", "EvaluationWindowSec": 300}
    assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
    [association] = resources(custom_template, "AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    [stage_id] = resources(custom_template, "AWS::ApiGateway::Stage")
    assert stage_id in association["DependsOn"]
    assert "/stages/" in json.dumps(association["Properties"]["ResourceArn"])


def test_waf_default_limit_follows_the_ingest_rate():
    assert StackSettings(ingest_rate_limit=10_000).waf_rate_limit == 3_000_000
    assert StackSettings(ingest_rate_limit=10_000_000).waf_rate_limit == 2_000_000_000  # WAF max
