"""Template assertions on stream aggregation: aggregates stream, Flink application, serving store
(default_template: DynamoDB on demand; custom_template: DynamoDB provisioned + every setting
changed; timestream_parts: the Timestream store with the sink and query Lambdas on a stack of
their own, since the app refuses serving_store=timestream), sink Lambda with its event source
mapping and DLQ, query routes, alarms and the roles' IAM statements."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template

from common.config import AggregationSettings
from infra.settings import StackSettings

KEY_ARN = {"Fn::GetAtt": [Match.string_like_regexp("^EncryptionKey"), "Arn"]}
SINK_HANDLER = "aggregate.sink_handler.lambda_handler"
QUERY_HANDLER = "query.handler.lambda_handler"


def only(template: Template, type_: str) -> dict:
    resources = template.find_resources(type_)
    assert len(resources) == 1, f"expected one {type_}, got {list(resources)}"
    return next(iter(resources.values()))["Properties"]


def function(template: Template, handler: str) -> dict:
    found = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
    assert len(found) == 1
    return next(iter(found.values()))["Properties"]


def logical_id(template: Template, type_: str, prefix: str) -> str:
    ids = [k for k in template.find_resources(type_) if k.startswith(prefix)]
    assert len(ids) == 1, (type_, prefix, ids)
    return ids[0]


def statements_of_role(template: Template, role_prefix: str) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {
        "Roles": [{"Ref": Match.string_like_regexp(f"^{role_prefix}")}]}})
    assert len(policies) == 1, (role_prefix, list(policies))
    return next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def actions_of(statements: list[dict]) -> set[str]:
    return {a for s in statements for a in as_list(s["Action"])}


def assert_no_wildcard_actions(statements: list[dict]) -> None:
    for action in actions_of(statements):
        assert "*" not in action, f"wildcard action {action}"


def star_resource_actions(statements: list[dict]) -> set[str]:
    return {a for s in statements if "*" in as_list(s["Resource"]) for a in as_list(s["Action"])}


# --- aggregates stream ----------------------------------------------------------------------

def test_aggregates_stream_defaults(default_template):
    default_template.has_resource_properties("AWS::Kinesis::Stream", {
        "Name": "clickagg-aggregates",
        "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
        "RetentionPeriodHours": 24,
        "StreamEncryption": {"EncryptionType": "KMS", "KeyId": KEY_ARN},
        "ShardCount": Match.absent(),
    })


def test_aggregates_stream_from_context(custom_template):
    custom_template.has_resource_properties("AWS::Kinesis::Stream", {
        "Name": "ca-test-aggregates",
        "StreamModeDetails": {"StreamMode": "PROVISIONED"},
        "ShardCount": 3,
        "RetentionPeriodHours": 36,
        "StreamEncryption": {"EncryptionType": "KMS", "KeyId": KEY_ARN},
    })


# --- serving store --------------------------------------------------------------------------

def test_dynamodb_store_by_default(default_template):
    default_template.resource_count_is("AWS::Timestream::Database", 0)
    default_template.resource_count_is("AWS::Timestream::Table", 0)
    default_template.resource_count_is("AWS::DynamoDB::Table", 3)  # dedup + serving + budgets
    default_template.has_resource_properties("AWS::DynamoDB::Table", {
        "TableName": "clickagg-serving", "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY_ARN}})


@pytest.mark.parametrize("store", ["timestream", " timestream "])  # -c strings are stripped
def test_timestream_serving_store_is_refused_with_the_reason(app_factory, store):
    """Reconciliation reads only DynamoDB: the app refuses Timestream instead of deploying
    billing without reconciliation and drift alarm."""
    with pytest.raises(ValueError, match=r"serving_store=timestream is refused: the nightly "
                                         r"reconciliation .* cannot read timestream"):
        app_factory(serving_store=store)


def test_timestream_store_construct(timestream_parts):
    template = timestream_parts
    database = only(template, "AWS::Timestream::Database")
    assert database["DatabaseName"] == "clickagg-serving"
    assert database["KmsKeyId"]["Fn::GetAtt"][0].startswith("EncryptionKey")
    table = only(template, "AWS::Timestream::Table")
    assert table["TableName"] == "aggregates"
    assert table["DatabaseName"] == {"Ref": logical_id(
        template, "AWS::Timestream::Database", "ServingDatabase")}
    assert table["RetentionProperties"] == {"MemoryStoreRetentionPeriodInHours": "48",
                                            "MagneticStoreRetentionPeriodInDays": "365"}
    writes = table["MagneticStoreWriteProperties"]
    assert writes["EnableMagneticStoreWrites"] is True
    s3 = writes["MagneticStoreRejectedDataLocation"]["S3Configuration"]
    assert s3["EncryptionOption"] == "SSE_KMS"
    assert s3["KmsKeyId"]["Fn::GetAtt"][0].startswith("EncryptionKey")
    bucket_id = s3["BucketName"]["Ref"]
    bucket = template.to_json()["Resources"][bucket_id]["Properties"]
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    template.resource_count_is("AWS::DynamoDB::Table", 0)


def test_dynamodb_store_when_selected(custom_template):
    custom_template.resource_count_is("AWS::Timestream::Database", 0)
    custom_template.resource_count_is("AWS::Timestream::Table", 0)
    custom_template.has_resource_properties("AWS::DynamoDB::Table", {
        "TableName": "ca-test-serving",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "sk", "AttributeType": "S"},
                                 {"AttributeName": "rk", "AttributeType": "S"}],
        # the leaderboards in rank order (serving.keys.RANK_INDEX: the query API's sorted access)
        "GlobalSecondaryIndexes": [{
            "IndexName": "rank",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": "rk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}],
        # custom: provisioned (capacity details: test_infra_capacity)
        "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 100},
        "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY_ARN},
    })
    serving = custom_template.find_resources("AWS::DynamoDB::Table", {"Properties": {
        "TableName": "ca-test-serving"}})
    assert next(iter(serving.values()))["DeletionPolicy"] == "Retain"


def test_timestream_retention_from_context(cdk_config):
    """The retention settings, on the construct alone (cheap: no Lambda assets)."""
    from infra.constructs.buckets import AccessLogsBucket
    from infra.constructs.encryption import Encryption
    from infra.constructs.serving_store import ServingStore

    stack = Stack(App(context=cdk_config["context"]), "Probe")
    settings = StackSettings(serving_store="timestream", timestream_memory_retention_hours=12,
                             timestream_magnetic_retention_days=30)
    ServingStore(stack, "Serving", settings=settings,
                 key=Encryption(stack, "Encryption", prefix="x").key,
                 logs_bucket=AccessLogsBucket(stack, "Logs").bucket)
    Template.from_stack(stack).has_resource_properties("AWS::Timestream::Table", {
        "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": "12",
                                "MagneticStoreRetentionPeriodInDays": "30"}})


# --- Lambda environments --------------------------------------------------------------------

def test_sink_and_query_env_defaults(default_template):
    table_ref = {"Ref": logical_id(default_template, "AWS::DynamoDB::Table", "ServingTable")}
    store_env = {"SERVING_STORE": "dynamodb", "SERVING_TABLE": table_ref,
                 "FRESHNESS_SLOTS": "16"}
    sink = function(default_template, SINK_HANDLER)["Environment"]["Variables"]
    assert sink == {**store_env, "MINUTE_TTL_S": "691200", "POWERTOOLS_SERVICE_NAME": "sink",
                    "POWERTOOLS_METRICS_NAMESPACE": "ClickAgg"}
    query = dict(function(default_template, QUERY_HANDLER)["Environment"]["Variables"])
    assert "DashboardCdn" in json.dumps(query.pop("CORS_ALLOWED_ORIGINS"))  # the dashboard's origin
    stream_ref = {"Ref": logical_id(default_template, "AWS::Kinesis::Stream", "ClicksStream")}
    assert query == {**store_env, **AggregationSettings().to_env(), "MINUTE_TTL_S": "691200",
                     "CLICKS_STREAM_NAME": stream_ref,  # /v1/quality: its iterator age
                     "IVT_ALERT_PERCENT": "5", "IVT_ALERT_MIN_CLICKS": "100",  # /v1/quality: the IVT alert
                     "POWERTOOLS_SERVICE_NAME": "query",
                     "POWERTOOLS_METRICS_NAMESPACE": "ClickAgg"}


def test_sink_and_query_env_timestream(timestream_parts):
    database_ref = {"Ref": logical_id(timestream_parts, "AWS::Timestream::Database",
                                      "ServingDatabase")}
    store_env = {"SERVING_STORE": "timestream", "TIMESTREAM_DATABASE": database_ref,
                 "TIMESTREAM_TABLE": "aggregates"}
    sink = function(timestream_parts, SINK_HANDLER)["Environment"]["Variables"]
    assert sink == {**store_env, "MINUTE_TTL_S": "691200", "POWERTOOLS_SERVICE_NAME": "sink",
                    "POWERTOOLS_METRICS_NAMESPACE": "ClickAgg"}
    query = dict(function(timestream_parts, QUERY_HANDLER)["Environment"]["Variables"])
    stream_ref = {"Ref": logical_id(timestream_parts, "AWS::Kinesis::Stream", "ClicksStream")}
    assert query == {**store_env, **AggregationSettings().to_env(), "MINUTE_TTL_S": "691200",
                     "CLICKS_STREAM_NAME": stream_ref,  # /v1/quality: its iterator age
                     "IVT_ALERT_PERCENT": "5", "IVT_ALERT_MIN_CLICKS": "100",  # /v1/quality: the IVT alert
                     "POWERTOOLS_SERVICE_NAME": "query",
                     "POWERTOOLS_METRICS_NAMESPACE": "ClickAgg"}


def test_sink_and_query_env_dynamodb(custom_template, custom_context):
    table_ref = {"Ref": logical_id(custom_template, "AWS::DynamoDB::Table", "ServingTable")}
    sink_fn = function(custom_template, SINK_HANDLER)
    sink = sink_fn["Environment"]["Variables"]
    assert sink["SERVING_STORE"] == "dynamodb" and sink["SERVING_TABLE"] == table_ref
    assert sink["MINUTE_TTL_S"] == "86400"
    assert not any(k.startswith("TIMESTREAM_") for k in sink)
    assert sink_fn["MemorySize"] == 1024 and sink_fn["Timeout"] == 60
    query_fn = function(custom_template, QUERY_HANDLER)
    query = query_fn["Environment"]["Variables"]
    assert query["SERVING_STORE"] == "dynamodb" and query["SERVING_TABLE"] == table_ref
    # the sink writes and the query API reads the same freshness slots
    assert sink["FRESHNESS_SLOTS"] == query["FRESHNESS_SLOTS"] == "40"
    assert not any(k.startswith("TIMESTREAM_") for k in query)
    assert query_fn["MemorySize"] == 256 and query_fn["Timeout"] == 29
    expected = StackSettings(**custom_context).aggregation_settings()
    assert (query["ALLOWED_LATENESS_S"], query["LEADERBOARD_SIZE"]) == ("600", "500")
    assert {k: query[k] for k in expected.to_env()} == expected.to_env()


def test_query_env_round_trips_through_the_query_parser(custom_template, monkeypatch):
    query = function(custom_template, QUERY_HANDLER)["Environment"]["Variables"]
    for name, value in query.items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    assert AggregationSettings.from_env() == AggregationSettings(
        allowed_lateness_s=600, leaderboard_size=500, repeat_window_s=5)


@pytest.mark.parametrize("handler", [SINK_HANDLER, QUERY_HANDLER])
def test_new_functions_follow_the_ingest_conventions(default_template, handler):
    fn = function(default_template, handler)
    assert fn["Runtime"] == "python3.12" and fn["Architectures"] == ["arm64"]
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert "LogGroup" in fn["LoggingConfig"]
    assert fn["Layers"] == [
        "{{resolve:ssm:/aws/service/powertools/python/arm64/python3.12/3.37.0}}"]


# --- sink event source mapping + DLQ --------------------------------------------------------

def test_sink_event_source_mapping_defaults(default_template):
    dlq = logical_id(default_template, "AWS::SQS::Queue", "SinkDlq")
    stream = logical_id(default_template, "AWS::Kinesis::Stream", "AggregatesStream")
    mapping = only(default_template, "AWS::Lambda::EventSourceMapping")
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [stream, "Arn"]}
    assert mapping["FunctionName"]["Ref"].startswith("SinkFunction")
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {
        "Fn::GetAtt": [dlq, "Arn"]}}}
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"],
            mapping["ParallelizationFactor"], mapping["MaximumRetryAttempts"]) == (500, 1, 2, 10)


def test_sink_event_source_mapping_from_context(custom_template):
    mapping = only(custom_template, "AWS::Lambda::EventSourceMapping")
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"],
            mapping["ParallelizationFactor"], mapping["MaximumRetryAttempts"]) == (100, 5, 4, 3)
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_dlq_is_kms_encrypted_and_tls_only(default_template):
    dlq = logical_id(default_template, "AWS::SQS::Queue", "SinkDlq")
    queue = default_template.to_json()["Resources"][dlq]["Properties"]
    assert queue["KmsMasterKeyId"]["Fn::GetAtt"][0].startswith("EncryptionKey")
    assert queue["MessageRetentionPeriod"] == 14 * 86400
    policy = only(default_template, "AWS::SQS::QueuePolicy")
    assert policy["Queues"] == [{"Ref": dlq}]
    [deny] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- Flink application ----------------------------------------------------------------------

def flink_app(template: Template) -> dict:
    """The stream job's application (the rebuild's: test_infra_rebuild.py)."""
    found = [r["Properties"] for k, r in
             template.find_resources("AWS::KinesisAnalyticsV2::Application").items()
             if k.startswith("AggregatorApplication")]
    assert len(found) == 1
    return found[0]


def property_groups(app: dict) -> dict[str, dict]:
    groups = app["ApplicationConfiguration"]["EnvironmentProperties"]["PropertyGroups"]
    return {g["PropertyGroupId"]: g["PropertyMap"] for g in groups}


def test_flink_runtime_code_and_run_options(default_template):
    app = flink_app(default_template)
    assert app["RuntimeEnvironment"] == "FLINK-1_20"
    assert app["ApplicationName"] == "clickagg-aggregator"
    assert app["ServiceExecutionRole"]["Fn::GetAtt"][0].startswith("AggregatorRole")
    code = app["ApplicationConfiguration"]["ApplicationCodeConfiguration"]
    assert code["CodeContentType"] == "ZIPFILE"
    assert code["CodeContent"]["S3ContentLocation"]["FileKey"].endswith(".zip")
    groups = property_groups(app)
    assert set(groups) == {"kinesis.analytics.flink.run.options", "clickagg"}
    assert groups["kinesis.analytics.flink.run.options"] == {
        "python": "aggregate/job/main.py", "jarfile": "lib/clickagg-flink-deps.jar"}
    assert app["ApplicationConfiguration"]["ApplicationSnapshotConfiguration"] == {
        "SnapshotsEnabled": True}
    assert app["RunConfiguration"]["ApplicationRestoreConfiguration"] == {
        "ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"}


def test_flink_job_properties(default_template):
    job = property_groups(flink_app(default_template))["clickagg"]
    clicks = logical_id(default_template, "AWS::Kinesis::Stream", "ClicksStream")
    aggregates = logical_id(default_template, "AWS::Kinesis::Stream", "AggregatesStream")
    events = logical_id(default_template, "AWS::Kinesis::Stream", "EventsStream")
    assert job == {
        "environment": "aws",
        "aws_region": {"Ref": "AWS::Region"},
        "clicks_stream_arn": {"Fn::GetAtt": [clicks, "Arn"]},
        "aggregates_stream_arn": {"Fn::GetAtt": [aggregates, "Arn"]},
        "events_stream_arn": {"Fn::GetAtt": [events, "Arn"]},
        "source_init_position": "TRIM_HORIZON",
        "allowed_lateness_s": "900",
        "watermark_delay_s": "5",
        "repeat_window_s": "10",
        "leaderboard_size": "1000",
        "dedup_ttl_s": "1800",
        "minibatch_latency_ms": "2000",
        "changelog_mode": "upsert",
        "budget_emit_interval_ms": "500",
        "ivt_rules": "bot_ua,impression_repeat,too_fast,datacenter_ip,ip_burst,user_repeat",
        "ivt_burst_threshold": "10",
        "ivt_burst_window_ms": "1000",
        "ivt_min_click_delay_ms": "1000",
        "count_from_ms": "0",
    }


def resolve_for_job(value, region="eu-west-1", account="123456789012"):
    """Replace the template's intrinsics with what CloudFormation would put there."""
    if isinstance(value, dict) and value.get("Ref") == "AWS::Region":
        return region
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        name = re.sub(r"Stream[0-9A-F]{8}$", "", value["Fn::GetAtt"][0]).lower()
        return f"arn:aws:kinesis:{region}:{account}:stream/ca-{name}"
    return value


@pytest.mark.parametrize("template_fixture", ["default_template", "custom_template"])
def test_flink_properties_are_accepted_by_the_jobs_own_parser(request, template_fixture):
    """The job's contract (functions/aggregate/job/settings.py): what it would read on AWS."""
    job_settings = pytest.importorskip("aggregate.job.settings")
    template = request.getfixturevalue(template_fixture)
    groups = [{"PropertyGroupId": gid, "PropertyMap": {k: resolve_for_job(v)
                                                        for k, v in props.items()}}
              for gid, props in property_groups(flink_app(template)).items()]
    parsed = job_settings.JobSettings.from_properties(groups)
    assert parsed.environment == "aws" and parsed.source_init_position == "TRIM_HORIZON"
    assert parsed.clicks_stream_arn.endswith("/ca-clicks")
    assert parsed.aggregates_stream_arn.endswith("/ca-aggregates")
    assert parsed.events_stream_arn.endswith("/ca-events")


def test_flink_checkpointing_parallelism_defaults(default_template):
    """Seed 001: a checkpoint every 10 s (EXACTLY_ONCE and RocksDB are the service's own)."""
    flink = flink_app(default_template)["ApplicationConfiguration"][
        "FlinkApplicationConfiguration"]
    assert flink["CheckpointConfiguration"] == {
        "ConfigurationType": "CUSTOM", "CheckpointingEnabled": True,
        "CheckpointInterval": 10000, "MinPauseBetweenCheckpoints": 5000}
    assert flink["ParallelismConfiguration"] == {
        "ConfigurationType": "CUSTOM", "Parallelism": 2, "ParallelismPerKPU": 1,
        "AutoScalingEnabled": True}
    assert flink["MonitoringConfiguration"]["ConfigurationType"] == "CUSTOM"


def test_flink_checkpoint_mode_and_backend_are_left_to_the_service(all_templates):
    """Managed Flink fixes EXACTLY_ONCE and RocksDB and ignores attempts to change them: no
    variant pretends to set them through the job's properties."""
    for name, template in all_templates.items():
        text = json.dumps(property_groups(flink_app(template))).lower()
        for ignored in ("checkpointing.mode", "state.backend", "at_least_once"):
            assert ignored not in text, (name, ignored)


def test_flink_checkpoint_interval_is_the_local_jobs(default_template):
    """The local runner checkpoints at the job's default interval: the same 10 s as on AWS."""
    job = pytest.importorskip("aggregate.job.settings").JobSettings()
    flink = flink_app(default_template)["ApplicationConfiguration"][
        "FlinkApplicationConfiguration"]
    assert flink["CheckpointConfiguration"]["CheckpointInterval"] == job.checkpoint_interval_ms


def test_flink_settings_from_context(custom_template):
    app = flink_app(custom_template)
    flink = app["ApplicationConfiguration"]["FlinkApplicationConfiguration"]
    assert flink["CheckpointConfiguration"]["CheckpointInterval"] == 30000
    assert flink["CheckpointConfiguration"]["MinPauseBetweenCheckpoints"] == 2000
    assert flink["ParallelismConfiguration"] == {
        "ConfigurationType": "CUSTOM", "Parallelism": 4, "ParallelismPerKPU": 2,
        "AutoScalingEnabled": False}
    job = property_groups(app)["clickagg"]
    assert (job["allowed_lateness_s"], job["watermark_delay_s"], job["repeat_window_s"],
            job["leaderboard_size"], job["dedup_ttl_s"], job["minibatch_latency_ms"]) == (
        "600", "10", "5", "500", "3600", "1000")
    assert app["ApplicationName"] == "ca-test-aggregator"


def test_flink_logging_option_and_log_group(default_template):
    app_id = logical_id(default_template, "AWS::KinesisAnalyticsV2::Application",
                        "AggregatorApplication")
    [option] = [r["Properties"] for r in default_template.find_resources(
        "AWS::KinesisAnalyticsV2::ApplicationCloudWatchLoggingOption").values()
        if r["Properties"]["ApplicationName"] == {"Ref": app_id}]
    assert option["ApplicationName"] == {"Ref": app_id}
    arn = json.dumps(option["CloudWatchLoggingOption"]["LogStreamARN"])
    assert ':log-group:", {"Ref": "AggregatorLogs' in arn
    assert ':log-stream:", {"Ref": "AggregatorLogStream' in arn
    group = logical_id(default_template, "AWS::Logs::LogGroup", "AggregatorLogs")
    props = default_template.to_json()["Resources"][group]["Properties"]
    assert props["KmsKeyId"]["Fn::GetAtt"][0].startswith("EncryptionKey")


# --- IAM ------------------------------------------------------------------------------------

def test_flink_role_is_least_privilege(default_template):
    statements = statements_of_role(default_template, "AggregatorRole")
    assert_no_wildcard_actions(statements)
    for s in statements:
        assert "*" not in as_list(s["Resource"]), s
    by_action = {a: s for s in statements for a in as_list(s["Action"])}
    clicks = logical_id(default_template, "AWS::Kinesis::Stream", "ClicksStream")
    aggregates = logical_id(default_template, "AWS::Kinesis::Stream", "AggregatesStream")
    events = logical_id(default_template, "AWS::Kinesis::Stream", "EventsStream")
    readers = [s for s in statements if "kinesis:GetRecords" in as_list(s["Action"])]
    assert sorted(json.dumps(r) for s in readers for r in as_list(s["Resource"])) == sorted(
        json.dumps({"Fn::GetAtt": [stream, "Arn"]}) for stream in (clicks, events))
    assert by_action["kinesis:PutRecords"]["Resource"] == {"Fn::GetAtt": [aggregates, "Arn"]}
    for source in (clicks, events):
        assert "kinesis:PutRecords" not in actions_of(
            [s for s in statements if {"Fn::GetAtt": [source, "Arn"]} in as_list(s["Resource"])])
    assert {a for a in actions_of(statements) if a.startswith("s3:")} == {
        "s3:GetObject", "s3:GetObjectVersion"}
    code_arn = json.dumps(by_action["s3:GetObject"]["Resource"])
    assert "cdk-hnb659fds-assets" in code_arn and code_arn.endswith('.zip"]]}')
    assert json.dumps(by_action["logs:DescribeLogGroups"]["Resource"]).endswith(
        ':log-group:*"]]}')  # the one acknowledged wildcard resource
    assert {a for a in actions_of(statements) if a.startswith("kms:")} == {
        "kms:Decrypt", "kms:GenerateDataKey"}


def test_flink_role_trusts_managed_flink(default_template):
    role_id = logical_id(default_template, "AWS::IAM::Role", "AggregatorRole")
    role = default_template.to_json()["Resources"][role_id]["Properties"]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "kinesisanalytics.amazonaws.com"}
    assert "ManagedPolicyArns" not in role


def test_sink_role_timestream(timestream_parts):
    statements = statements_of_role(timestream_parts, "SinkRole")
    assert_no_wildcard_actions(statements)
    assert star_resource_actions(statements) == {
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "timestream:DescribeEndpoints"}
    table = logical_id(timestream_parts, "AWS::Timestream::Table", "ServingTable")
    [write] = [s for s in statements if "timestream:WriteRecords" in as_list(s["Action"])]
    assert as_list(write["Action"]) == ["timestream:WriteRecords"]
    assert write["Resource"] == {"Fn::GetAtt": [table, "Arn"]}
    assert not any(a.startswith("dynamodb:") for a in actions_of(statements))
    dlq = logical_id(timestream_parts, "AWS::SQS::Queue", "SinkDlq")
    [send] = [s for s in statements if "sqs:SendMessage" in as_list(s["Action"])]
    assert send["Resource"] == {"Fn::GetAtt": [dlq, "Arn"]}


def test_sink_role_dynamodb(custom_template):
    statements = statements_of_role(custom_template, "SinkRole")
    assert_no_wildcard_actions(statements)
    assert star_resource_actions(statements) == {"xray:PutTraceSegments",
                                                 "xray:PutTelemetryRecords"}
    table = logical_id(custom_template, "AWS::DynamoDB::Table", "ServingTable")
    dynamo = [s for s in statements if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert actions_of(dynamo) == {"dynamodb:PutItem", "dynamodb:UpdateItem"}
    for s in dynamo:
        assert {"Fn::GetAtt": [table, "Arn"]} in as_list(s["Resource"])
        assert "*" not in as_list(s["Resource"])
    assert not any(a.startswith("timestream:") for a in actions_of(statements))


def test_query_role_is_read_only(timestream_parts, custom_template):
    ts = statements_of_role(timestream_parts, "QueryRole")
    assert_no_wildcard_actions(ts)
    assert {a for a in actions_of(ts) if a.startswith("timestream:")} == {
        "timestream:Select", "timestream:DescribeEndpoints"}
    table = logical_id(timestream_parts, "AWS::Timestream::Table", "ServingTable")
    [select] = [s for s in ts if "timestream:Select" in as_list(s["Action"])]
    assert select["Resource"] == {"Fn::GetAtt": [table, "Arn"]}
    ddb = statements_of_role(custom_template, "QueryRole")
    assert_no_wildcard_actions(ddb)
    assert {a for a in actions_of(ddb) if a.startswith("dynamodb:")} == {
        "dynamodb:Query", "dynamodb:BatchGetItem"}
    for statements in (ts, ddb):
        assert {a for a in actions_of(statements) if a.startswith("kms:")} == {"kms:Decrypt"}
        assert not any(a.startswith(("sqs:", "kinesis:")) for a in actions_of(statements))


def boto3_calls(repo_root: Path, *packages: str) -> set[str]:
    """Operations called in `packages`: directories under functions/ (every .py below) or globs
    of files ("serving/*.py"); a call through a paginator counts as its operation."""
    functions = repo_root / "functions"
    source = "\n".join(p.read_text() for package in packages
                       for p in ((functions / package).rglob("*.py") if (functions / package).is_dir()
                                 else functions.glob(package)))
    return set(re.findall(r"\.(\w+)\(", source)) | set(
        re.findall(r"""get_paginator\(["'](\w+)["']\)""", source))


# IAM action of an operation, where it is not "<service>:<Operation>".
IAM_ACTION = {("timestream-query", "Query"): "timestream:Select",
              # a transaction is authorized per item action (its Puts here)
              ("dynamodb", "TransactWriteItems"): "dynamodb:PutItem"}
IAM_PREFIX = {"monitoring": "cloudwatch"}  # CloudWatch signs as "monitoring", IAM says cloudwatch


def needed_actions(called: set[str], services: tuple[str, ...]) -> set[str]:
    import botocore.session

    session = botocore.session.get_session()
    needed = set()
    for service in services:
        model = session.get_service_model(service)
        prefix = model.metadata.get("signingName", model.endpoint_prefix)
        for op in model.operation_names:
            if botocore.xform_name(op) in called:
                needed.add(IAM_ACTION.get((service, op), f"{IAM_PREFIX.get(prefix, prefix)}:{op}"))
    return needed


@pytest.mark.parametrize("template_fixture,role,packages,services", [
    ("timestream_parts", "SinkRole", ("serving/write",), ("timestream-write",)),
    ("custom_template", "SinkRole", ("serving/write",), ("dynamodb",)),
    ("timestream_parts", "QueryRole", ("query/*.py", "serving/read", "serving/*.py"), ("timestream-query",)),
    ("custom_template", "QueryRole", ("query/*.py", "serving/read", "serving/*.py"), ("dynamodb",)),
    ("default_template", "QueryRole", ("query/*.py",), ("cloudwatch",)),
    ("default_template", "ReconcileApiRole", ("query/*.py",), ("glue",)),
    ("default_template", "BudgetApiRole", ("query/budget", "query/*.py", "serving/*.py"), ("dynamodb",)),
])
def test_roles_cover_every_aws_call_the_code_makes(request, repo_root, template_fixture, role,
                                                   packages, services):
    """A new boto3 call without an IAM grant fails here, not in production."""
    if not (repo_root / "functions" / packages[0]).is_dir():
        pytest.skip(f"functions/{packages[0]} not written yet")
    template = request.getfixturevalue(template_fixture)
    needed = needed_actions(boto3_calls(repo_root, *packages), services)
    granted = actions_of(statements_of_role(template, role))
    assert needed, f"expected {services} calls in {packages}"
    assert needed <= granted, f"not granted: {sorted(needed - granted)}"


# --- query routes ---------------------------------------------------------------------------

def test_query_routes_are_iam_authorized_gets(default_template):
    gets = default_template.find_resources("AWS::ApiGateway::Method",
                                           {"Properties": {"HttpMethod": "GET",
                                                           "AuthorizationType": "AWS_IAM"}})
    query_fn = logical_id(default_template, "AWS::Lambda::Function", "QueryFunction")
    # the query Lambda's (the budget Lambda's GETs: test_infra_budget.py)
    gets = {k: m for k, m in gets.items() if query_fn in json.dumps(m["Properties"]["Integration"]["Uri"])}
    assert len(gets) == 6  # + the public GET /v1/c click link (test_infra_stack.py)
    for method in gets.values():
        props = method["Properties"]
        assert props["AuthorizationType"] == "AWS_IAM"
        assert props.get("ApiKeyRequired") in (None, False)
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert query_fn in json.dumps(props["Integration"]["Uri"])
    resources = default_template.to_json()["Resources"]
    paths = set()
    for method in gets.values():
        parts, ref = [], method["Properties"]["ResourceId"]["Ref"]
        while True:
            resource = resources[ref]["Properties"]
            parts.insert(0, resource["PathPart"])
            parent = resource["ParentId"]
            if "Ref" not in parent:
                break
            ref = parent["Ref"]
        paths.add("/" + "/".join(parts))
    assert paths == {"/v1/top", "/v1/ads/{ad_id}/metrics", "/v1/campaigns/{campaign_id}/metrics",
                     "/v1/advertisers/{advertiser_id}/metrics", "/v1/quality", "/v1/health"}
    for method in gets.values():  # the series routes' id is a required path parameter
        params = method["Properties"].get("RequestParameters", {})
        assert params in ({}, *({f"method.request.path.{p}": True} for p in ("ad_id", "campaign_id", "advertiser_id")))


def test_reconcile_route_is_an_iam_authorized_post_to_its_own_function(default_template):
    posts = default_template.find_resources("AWS::ApiGateway::Method",
                                            {"Properties": {"HttpMethod": "POST"}})
    fn = logical_id(default_template, "AWS::Lambda::Function", "ReconcileApiFunction")
    [reconcile] = [m["Properties"] for m in posts.values()
                   if fn in json.dumps(m["Properties"]["Integration"]["Uri"])]
    assert reconcile["AuthorizationType"] == "AWS_IAM"
    assert reconcile["RequestParameters"] == {"method.request.querystring.day": True}


def test_reconcile_role_may_only_start_the_billing_workflow(default_template):
    stmts = statements_of_role(default_template, "ReconcileApiRole")
    non_logs = [s for s in stmts if not any(a.startswith(("logs:", "xray:")) for a in _actions(s))]
    [start] = non_logs
    assert _actions(start) == ["glue:StartWorkflowRun"]
    workflow = logical_id(default_template, "AWS::Glue::Workflow", "BillingWorkflow")
    assert {"Ref": workflow} in start["Resource"]["Fn::Join"][1]


def test_query_role_reads_metrics_but_writes_none(default_template):
    actions = actions_of(statements_of_role(default_template, "QueryRole"))
    assert "cloudwatch:GetMetricData" in actions
    assert not any(a.startswith("cloudwatch:Put") for a in actions)


def _actions(statement: dict) -> list[str]:
    a = statement["Action"]
    return a if isinstance(a, list) else [a]


# --- alarms ---------------------------------------------------------------------------------

def test_aggregation_alarms(default_template):
    alarms = default_template.find_resources("AWS::CloudWatch::Alarm", {"Properties": {
        "AlarmName": Match.string_like_regexp("^clickagg-aggregation-")}})
    by_name = {a["Properties"]["AlarmName"].removeprefix("clickagg-aggregation-"): a["Properties"]
               for a in alarms.values()}
    assert {n: (p["MetricName"], p["Threshold"]) for n, p in by_name.items()} == {
        "FlinkDowntime": ("downtime", 0),
        "FlinkFailedCheckpoints": ("numberOfFailedCheckpoints", 0),
        "ClicksIteratorAge": ("GetRecords.IteratorAgeMilliseconds", 60000),
        "AggregatesIteratorAge": ("GetRecords.IteratorAgeMilliseconds", 60000),
        "SinkErrors": ("Errors", 0),
        "SinkDlqMessages": ("ApproximateNumberOfMessagesVisible", 0),
    }
    assert by_name["FlinkDowntime"]["Namespace"] == "AWS/KinesisAnalytics"
    assert by_name["FlinkDowntime"]["Dimensions"] == [
        {"Name": "Application", "Value": "clickagg-aggregator"}]
    for props in by_name.values():
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        [action] = props["AlarmActions"]
        assert action["Ref"].startswith("AlarmsTopic")


def test_iterator_age_threshold_from_context(custom_template):
    custom_template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "AlarmName": "ca-test-aggregation-ClicksIteratorAge", "Threshold": 120000})
