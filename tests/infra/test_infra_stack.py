"""Template assertions on the ingest stack: cdk.json's defaults, and every setting changed."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from infra.settings import StackSettings

KEY_ARN = {"Fn::GetAtt": [Match.string_like_regexp("^EncryptionKey"), "Arn"]}


def only(template: Template, type_: str) -> dict:
    resources = template.find_resources(type_)
    assert len(resources) == 1, f"expected one {type_}, got {list(resources)}"
    return next(iter(resources.values()))["Properties"]


def function_with_handler(template: Template, handler: str) -> dict:
    functions = template.find_resources("AWS::Lambda::Function",
                                        {"Properties": {"Handler": handler}})
    assert len(functions) == 1, f"expected one function with handler {handler}"
    return next(iter(functions.values()))["Properties"]


def ingest_function(template: Template) -> dict:
    return function_with_handler(template, "ingest.handler.lambda_handler")


def ingest_policy_statements(template: Template) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {
        "Roles": [{"Ref": Match.string_like_regexp("^IngestFunctionRole")}]}})
    assert len(policies) == 1
    return next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def api_methods(template: dict) -> dict[tuple[str, str], dict]:
    """(HTTP method, resource path) -> properties, for every API Gateway method of a template
    (its to_json())."""
    resources = template["Resources"]

    def path_of(resource_id: dict) -> str:
        parts = []
        while "Ref" in resource_id:  # the root resource is a GetAtt of the API
            props = resources[resource_id["Ref"]]["Properties"]
            parts.append(props["PathPart"])
            resource_id = props["ParentId"]
        return "/" + "/".join(reversed(parts))

    methods: dict[tuple[str, str], dict] = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::ApiGateway::Method":
            props = resource["Properties"]
            key = (props["HttpMethod"], path_of(props["ResourceId"]))
            assert key not in methods, key
            methods[key] = props
    return methods


def public_methods(template: dict) -> set[tuple[str, str]]:
    """The methods a caller reaches with no credential at all: no authorizer, no API key."""
    return {key for key, props in api_methods(template).items()
            if props["AuthorizationType"] == "NONE" and not props.get("ApiKeyRequired")}


# the configured-origin preflights (infra.constructs.api_cors.ApiCors; by default the dashboard's)
CORS_ROUTES = ("/v1/clicks", "/v1/top", "/v1/ads/{ad_id}/metrics", "/v1/campaigns/{campaign_id}/metrics",
               "/v1/advertisers/{advertiser_id}/metrics", "/v1/quality", "/v1/health", "/v1/reconcile",
               "/v1/campaigns/{campaign_id}/budget", "/v1/campaigns/{campaign_id}/pacing", "/v1/pacing")
# the public POST's own preflight (common.public_route): `*`, whatever origins are configured
PUBLIC_PREFLIGHT = {
    "method.response.header.Access-Control-Allow-Headers": "'Content-Type'",
    "method.response.header.Access-Control-Allow-Origin": "'*'",
    "method.response.header.Access-Control-Allow-Methods": "'POST'",
    "method.response.header.Access-Control-Max-Age": "'600'",
}


# --- encryption -----------------------------------------------------------------------------

def test_key_rotates_and_lets_cloudwatch_logs_and_alarms_use_it(default_template):
    key = only(default_template, "AWS::KMS::Key")
    assert key["EnableKeyRotation"] is True
    principals = json.dumps([s["Principal"] for s in key["KeyPolicy"]["Statement"]])
    assert '"logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"' in principals
    assert "cloudwatch.amazonaws.com" in principals


def test_every_log_group_is_kms_encrypted_with_retention(default_template):
    groups = default_template.find_resources("AWS::Logs::LogGroup")
    # ingest, sink, query and reconcile-API Lambdas, API access logs, Flink application, the two
    # archive Firehoses (clicks, events), refused-items Firehose, billing and reconciliation Glue
    # jobs' output + error, the budget Lambda, the rebuild's application, state machine and three
    # Lambdas; + the dashboard's file deployment when web/dist is built (test_infra_dashboard.py)
    assert len(groups) - sum(name.startswith("DashboardDeployLogs") for name in groups) == 19
    for group in groups.values():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [
            next(iter(default_template.find_resources("AWS::KMS::Key"))), "Arn"]}
        assert group["Properties"]["RetentionInDays"] == 30


# --- stream ---------------------------------------------------------------------------------

def test_stream_on_demand_by_default(default_template):
    default_template.has_resource_properties("AWS::Kinesis::Stream", {
        "Name": "clickagg-clicks",
        "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
        "RetentionPeriodHours": 168,
        "StreamEncryption": {"EncryptionType": "KMS", "KeyId": KEY_ARN},
        "ShardCount": Match.absent(),
    })


def test_stream_provisioned_with_shards_from_context(custom_template):
    custom_template.has_resource_properties("AWS::Kinesis::Stream", {
        "Name": "ca-test-clicks",
        "StreamModeDetails": {"StreamMode": "PROVISIONED"},
        "ShardCount": 7,
        "RetentionPeriodHours": 48,
        "StreamEncryption": {"EncryptionType": "KMS", "KeyId": KEY_ARN},
    })


# --- dedup table ----------------------------------------------------------------------------

@pytest.mark.parametrize("template_fixture,name", [
    ("default_template", "clickagg-click-dedup"), ("custom_template", "ca-test-click-dedup")])
def test_dedup_table(request, template_fixture, name):
    template = request.getfixturevalue(template_fixture)
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "TableName": name,
        "KeySchema": [{"AttributeName": "click_id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "click_id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY_ARN},
    })


# --- ingest Lambda --------------------------------------------------------------------------

def test_lambda_runtime_arch_tracing_and_layer(default_template):
    fn = ingest_function(default_template)
    assert fn["Runtime"] == "python3.12"
    assert fn["Architectures"] == ["arm64"]
    assert fn["Handler"] == "ingest.handler.lambda_handler"
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert fn["Timeout"] == 29
    assert fn["MemorySize"] == 1024
    assert "ReservedConcurrentExecutions" not in fn
    assert "LogGroup" in fn["LoggingConfig"]
    # the layer of requirements/lambda.txt's Powertools release, by Powertools' SSM parameter
    assert fn["Layers"] == [
        "{{resolve:ssm:/aws/service/powertools/python/arm64/python3.12/3.37.0}}"]


def test_powertools_layer_follows_the_pinned_release(repo_root):
    from infra.constructs.python_function import powertools_release

    pins = [line for line in (repo_root / "requirements" / "lambda.txt").read_text().splitlines()
            if line.startswith("aws-lambda-powertools")]
    assert pins == [f"aws-lambda-powertools[parser,tracer]=={powertools_release()}"]


def test_lambda_env_is_ingest_settings_from_context(custom_template, custom_context):
    fn = ingest_function(custom_template)
    env = dict(fn["Environment"]["Variables"])
    # custom enables CORS: its origin + the dashboard's (https://<distribution domain>)
    cors = env.pop("CORS_ALLOWED_ORIGINS")["Fn::Join"][1]
    assert cors[0] == "https://ops.example.com,https://" and "DashboardCdn" in json.dumps(cors[1])
    assert env["DEDUP_TABLE"] == "ca-test-click-dedup"
    assert env["CLICKS_STREAM"] == "ca-test-clicks"
    assert env["DEDUP_TTL_S"] == "3600"
    assert env["HOT_AD_SALTS"] == "ad-1:8,ad-7:4"
    assert env == {**StackSettings(**custom_context).ingest_settings().to_env(),
                   "POWERTOOLS_SERVICE_NAME": "ingest", "POWERTOOLS_METRICS_NAMESPACE": "ClickAgg",
                   "REFUSED_DELIVERY_STREAM": "ca-test-refused"}  # wired by infra.constructs.refused_archive
    assert fn["MemorySize"] == 2048
    assert fn["ReservedConcurrentExecutions"] == 50
    assert "python312-arm64:41" in json.dumps(fn["Layers"])


def test_ingest_role_has_no_managed_policies(default_template):
    roles = default_template.find_resources("AWS::IAM::Role")
    ingest = [r for name, r in roles.items() if name.startswith("IngestFunctionRole")]
    assert len(ingest) == 1 and "ManagedPolicyArns" not in ingest[0]["Properties"]


def test_ingest_policy_is_least_privilege(default_template, custom_template):
    statements = ingest_policy_statements(default_template)
    actions = [a for s in statements for a in as_list(s["Action"])]
    assert "*" not in actions and not any(a.endswith(":*") for a in actions)
    assert sorted(a for a in actions if a.startswith("dynamodb:")) == [
        "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:PutItem"]
    # ingest_dedup_mode mark (the custom template) also reads its check with BatchGetItem
    assert sorted(a for s in ingest_policy_statements(custom_template) for a in as_list(s["Action"])
                  if a.startswith("dynamodb:")) == [
        "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:PutItem"]
    assert sorted(a for a in actions if a.startswith("kinesis:")) == [
        "kinesis:PutRecord", "kinesis:PutRecords"]
    # the refused-items archive: put records on that one delivery stream, nothing else
    [firehose] = [s for s in statements if any(a.startswith("firehose:") for a in as_list(s["Action"]))]
    assert sorted(as_list(firehose["Action"])) == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    assert firehose["Resource"] == {"Fn::GetAtt": [
        next(n for n in default_template.find_resources("AWS::KinesisFirehose::DeliveryStream")
             if n.startswith("RefusedArchiveDeliveryStream")), "Arn"]}
    for statement in statements:
        services = {a.split(":")[0] for a in as_list(statement["Action"])}
        if services & {"dynamodb", "kinesis", "kms", "logs", "secretsmanager", "firehose"}:
            assert "*" not in as_list(statement["Resource"]), statement
        else:  # X-Ray has no resource-level permissions
            assert services == {"xray"}, statement
    resources = json.dumps([s["Resource"] for s in statements])
    for logical_prefix in ("DedupTable", "ClicksStream", "EncryptionKey", "IngestFunctionLogs",
                           "ClickTokenKeysSecret"):
        assert f'"{logical_prefix}' in resources


# --- API ------------------------------------------------------------------------------------

def test_post_clicks_and_events_require_api_key_and_validate_body(default_template):
    posts = default_template.find_resources("AWS::ApiGateway::Method",
                                            {"Properties": {"HttpMethod": "POST"}})
    # + POST /v1/reconcile and POST /v1/pacing (SigV4, test_infra_aggregation.py,
    # test_infra_budget.py) and the keyless POST /v1/public/clicks
    # (test_public_clicks_post_is_keyless_validated_and_on_ingest)
    assert len(posts) == 5
    keyed = {name: m["Properties"] for name, m in posts.items() if m["Properties"].get("ApiKeyRequired")}
    assert sorted(keyed) == [n for n in sorted(posts) if "v1clicksPOST" in n or "v1eventsPOST" in n]
    assert len(keyed) == 2
    for method in keyed.values():
        assert method["HttpMethod"] == "POST"
        assert method["ApiKeyRequired"] is True
        assert method["AuthorizationType"] == "NONE"
        assert method["Integration"]["Type"] == "AWS_PROXY"
        assert "RequestValidatorId" in method and "application/json" in method["RequestModels"]
    paths = {r["Properties"]["PathPart"]
             for r in default_template.find_resources("AWS::ApiGateway::Resource").values()}
    assert paths == {"v1", "clicks", "events", "c", "public", "top", "ads", "{ad_id}", "campaigns", "{campaign_id}",
                     "advertisers", "{advertiser_id}", "metrics", "quality",
                     "health", "reconcile", "budget", "pacing"}
    # + events, click links, public clicks, query, operations, the budget lane
    default_template.has_resource_properties("AWS::ApiGateway::RequestValidator", {
        "ValidateRequestBody": True, "ValidateRequestParameters": True})


def test_click_link_is_a_public_get_on_the_ingest_function(default_template):
    """GET /v1/c?t=TOKEN (issue 17): browsers follow it, so no API key and no authorizer (the
    signed token is the credential); the POST keeps its key."""
    gets = default_template.find_resources("AWS::ApiGateway::Method",
                                           {"Properties": {"HttpMethod": "GET"}})
    [method] = [m["Properties"] for m in gets.values() if m["Properties"]["AuthorizationType"] == "NONE"]
    assert method.get("ApiKeyRequired") in (None, False)
    resources = default_template.to_json()["Resources"]
    link = resources[method["ResourceId"]["Ref"]]["Properties"]
    assert link["PathPart"] == "c"
    assert resources[link["ParentId"]["Ref"]]["Properties"]["PathPart"] == "v1"
    assert method["Integration"]["Type"] == "AWS_PROXY"
    assert "IngestFunction" in json.dumps(method["Integration"]["Uri"])


@pytest.mark.parametrize("template_fixture", ["default_template", "custom_template"])
def test_exactly_these_methods_are_public(request, template_fixture):
    """Issue 17: browsers and apps reach exactly the click link (GET /v1/c) and the public click
    POST (+ its preflight) without a credential; besides those, only the configured-origin CORS
    preflights (MOCK: no backend) are unauthenticated."""
    template = request.getfixturevalue(template_fixture).to_json()
    assert public_methods(template) == {
        ("GET", "/v1/c"), ("POST", "/v1/public/clicks"), ("OPTIONS", "/v1/public/clicks"),
        *(("OPTIONS", route) for route in CORS_ROUTES)}
    methods = api_methods(template)
    for (verb, path) in public_methods(template):
        if verb == "OPTIONS":
            assert methods[verb, path]["Integration"]["Type"] == "MOCK", path
    # every other method needs its API key or SigV4
    for key, props in methods.items():
        if key not in public_methods(template):
            assert props.get("ApiKeyRequired") is True or props["AuthorizationType"] == "AWS_IAM", key


def test_public_clicks_post_is_keyless_validated_and_on_ingest(default_template):
    """POST /v1/public/clicks: no key, no authorizer (the token per click is the credential,
    checked by the ingest Lambda), the same JSON-body validator and model as POST /v1/clicks."""
    methods = api_methods(default_template.to_json())
    public, keyed = methods["POST", "/v1/public/clicks"], methods["POST", "/v1/clicks"]
    assert public["AuthorizationType"] == "NONE" and public["ApiKeyRequired"] is False
    assert public["Integration"]["Type"] == "AWS_PROXY"
    assert public["Integration"]["Uri"] == keyed["Integration"]["Uri"]  # the ingest function
    assert "IngestFunction" in json.dumps(public["Integration"]["Uri"])
    assert public["RequestValidatorId"] == keyed["RequestValidatorId"]
    [model] = default_template.find_resources("AWS::ApiGateway::Model")
    assert public["RequestModels"] == keyed["RequestModels"] == {"application/json": {"Ref": model}}
    outputs = default_template.to_json()["Outputs"]
    assert "/v1/public/clicks" in json.dumps(outputs["PublicIngestUrl"]["Value"])


@pytest.mark.parametrize("template_fixture", ["default_template", "custom_template"])
def test_public_clicks_preflight_answers_any_origin(request, template_fixture):
    """The public POST's preflight answers `*` with or without configured origins (custom: one
    configured + the dashboard's), and exactly the headers the Lambda sends for OPTIONS
    (common.public_route.preflight_headers, tests/integration/test_ingest_public.py)."""
    from common import public_route

    options = api_methods(request.getfixturevalue(template_fixture).to_json())[
        "OPTIONS", "/v1/public/clicks"]
    assert options["AuthorizationType"] == "NONE" and options["Integration"]["Type"] == "MOCK"
    [response] = options["Integration"]["IntegrationResponses"]
    assert response["StatusCode"] == "204" and "ResponseTemplates" not in response
    assert response["ResponseParameters"] == PUBLIC_PREFLIGHT == {
        f"method.response.header.{k}": f"'{v}'" for k, v in public_route.preflight_headers().items()}


def test_body_model_accepts_any_object_or_array(default_template):
    schema = only(default_template, "AWS::ApiGateway::Model")["Schema"]
    assert sorted(schema["type"]) == ["array", "object"]
    assert set(schema) <= {"$schema", "title", "type"}  # nothing the Lambda should judge


def test_stage_logs_traces_and_throttles(default_template):
    stage = only(default_template, "AWS::ApiGateway::Stage")
    assert stage["TracingEnabled"] is True
    assert "DestinationArn" in stage["AccessLogSetting"]
    assert json.loads(stage["AccessLogSetting"]["Format"].replace(
        "$context.error.messageString", '"x"'))  # valid JSON once API Gateway fills it in
    [settings] = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == 10000 and settings["ThrottlingBurstLimit"] == 5000
    assert settings["LoggingLevel"] == "ERROR" and settings["DataTraceEnabled"] is False


@pytest.mark.parametrize("template_fixture,rate,burst", [
    ("default_template", 10000, 5000), ("custom_template", 1234, 567)])
def test_usage_plan_throttle_from_context(request, template_fixture, rate, burst):
    template = request.getfixturevalue(template_fixture)
    plan = only(template, "AWS::ApiGateway::UsagePlan")
    assert plan["Throttle"] == {"RateLimit": rate, "BurstLimit": burst}
    assert len(plan["ApiStages"]) == 1
    [settings] = only(template, "AWS::ApiGateway::Stage")["MethodSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (rate, burst)
    template.resource_count_is("AWS::ApiGateway::UsagePlanKey", 1)
    template.resource_count_is("AWS::ApiGateway::ApiKey", 1)


# --- alarms ---------------------------------------------------------------------------------

def test_alarms_exist_and_notify_the_encrypted_topic(default_template):
    alarms = default_template.find_resources("AWS::CloudWatch::Alarm", {"Properties": {
        "AlarmName": Match.string_like_regexp("^clickagg-ingest-")}})
    metrics = {a["Properties"]["MetricName"] for a in alarms.values()}
    # + refused items the refused-items archive did not take (infra.constructs.refused_archive)
    assert metrics == {"5XXError", "Errors", "Throttles", "WriteProvisionedThroughputExceeded",
                       "RefusedUnarchived"}
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["Threshold"] == 0 and props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["Period"] == 300 and props["Statistic"] == "Sum"
        [action] = props["AlarmActions"]
        assert action["Ref"].startswith("AlarmsTopic")
    default_template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": KEY_ARN})
    policy = only(default_template, "AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    allows = [s for s in policy if s["Effect"] == "Allow"]
    # CloudWatch alarms of this account; EventBridge only for the Glue job-failure rule
    assert [s["Principal"] for s in allows] == [{"Service": "cloudwatch.amazonaws.com"},
                                                {"Service": "events.amazonaws.com"}]
    assert "aws:SourceArn" in allows[0]["Condition"]["ArnLike"]
    rule = next(iter(default_template.find_resources("AWS::Events::Rule")))
    assert allows[1]["Condition"] == {"ArnEquals": {"aws:SourceArn": {
        "Fn::GetAtt": [rule, "Arn"]}}}
    default_template.resource_count_is("AWS::SNS::Subscription", 0)


def test_alarm_email_subscribes(custom_template):
    custom_template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "email", "Endpoint": "oncall@example.com"})


def test_outputs(default_template):
    outputs = default_template.to_json()["Outputs"]
    assert {"IngestUrl", "ApiKeyId", "ClicksStreamName", "DedupTableName"} <= set(outputs)
    assert "/v1/clicks" in json.dumps(outputs["IngestUrl"]["Value"])


def test_ingest_role_covers_every_aws_call_the_ingest_code_makes(default_template, custom_template,
                                                                  repo_root):
    """A new boto3 call in functions/ingest without an IAM grant fails here, not in production.
    BatchGetItem is mark mode's check only: granted in the custom template (mark), not in the
    default one (per_click)."""
    import re

    import botocore.session

    source = "\n".join(p.read_text() for p in (repo_root / "functions" / "ingest").rglob("*.py"))
    called = set(re.findall(r"\.(\w+)\(", source))
    session = botocore.session.get_session()
    needed = {
        f"{service}:{op}"
        for service in ("dynamodb", "kinesis")
        for op in session.get_service_model(service).operation_names
        if botocore.xform_name(op) in called
    }
    mark_only = {"dynamodb:BatchGetItem"}
    assert needed, "expected DynamoDB/Kinesis calls in functions/ingest"
    for template, calls in ((default_template, needed - mark_only), (custom_template, needed)):
        granted = {a for s in ingest_policy_statements(template) for a in as_list(s["Action"])}
        assert calls <= granted, f"not granted: {sorted(calls - granted)}"
    assert mark_only <= needed  # the mark check is still a call the code makes
