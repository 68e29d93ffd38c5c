"""Template assertions on the raw archive: buckets, Glue table, Firehose, Athena
(default_template: cdk.json's defaults; custom_template: every setting changed)."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from common.archive import (FIREHOSE_ERROR_PREFIX, FIREHOSE_PREFIX, PARTITION_KEYS, RAW_COLUMNS,
                            partition_projection)
from common.named_queries import NAMED_QUERIES

KEY_ARN = {"Fn::GetAtt": [Match.string_like_regexp("^EncryptionKey"), "Arn"]}


def only(template: Template, type_: str) -> dict:
    resources = template.find_resources(type_)
    assert len(resources) == 1, f"expected one {type_}, got {list(resources)}"
    return next(iter(resources.values()))["Properties"]


def resource(template: Template, type_: str, prefix: str) -> tuple[str, dict]:
    found = {k: v for k, v in template.find_resources(type_).items() if k.startswith(prefix)}
    assert len(found) == 1, (type_, prefix, list(found))
    [(logical_id, value)] = found.items()
    return logical_id, value["Properties"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def statements_of_role(template: Template, role_prefix: str) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {
        "Roles": [{"Ref": Match.string_like_regexp(f"^{role_prefix}")}]}})
    assert len(policies) == 1, (role_prefix, list(policies))
    return next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]


# --- buckets --------------------------------------------------------------------------------

def test_every_bucket_blocks_public_access_and_denies_plain_http(default_template):
    buckets = default_template.find_resources("AWS::S3::Bucket")
    # access logs, archive, Athena results, billing, the dashboard's site + its CloudFront logs,
    # the rebuild's output
    assert len(buckets) == 7
    policies = default_template.find_resources("AWS::S3::BucketPolicy")
    tls_only = set()
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if (statement["Effect"] == "Deny" and statement["Condition"] ==
                    {"Bool": {"aws:SecureTransport": "false"}} and statement["Action"] == "s3:*"):
                tls_only.add(policy["Properties"]["Bucket"]["Ref"])
    assert tls_only == set(buckets)
    for props in (b["Properties"] for b in buckets.values()):
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True,
            "IgnorePublicAcls": True, "RestrictPublicBuckets": True}


def test_data_buckets_are_kms_encrypted_and_access_logged(default_template):
    logs_id, logs = resource(default_template, "AWS::S3::Bucket", "AccessLogsBucket")
    assert logs["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]  # log delivery: SSE-S3
    for name, props in default_template.find_resources("AWS::S3::Bucket").items():
        if name == logs_id or name.startswith("DashboardCdnLogs"):
            continue  # CloudFront log delivery: SSE-S3 too (test_infra_security.py)
        [rule] = props["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", name
        assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0] \
            .startswith("EncryptionKey")
        assert rule["BucketKeyEnabled"] is True
        assert props["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
            "Ref": logs_id}


def test_archive_bucket_versioning_and_lifecycle(default_template):
    _, bucket = resource(default_template, "AWS::S3::Bucket", "ArchiveBucket")
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": 30},
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 90}]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}


def test_archive_lifecycle_from_context(custom_template):
    _, bucket = resource(custom_template, "AWS::S3::Bucket", "ArchiveBucket")
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": 45},
        {"StorageClass": "GLACIER", "TransitionInDays": 180}]


# --- Glue -----------------------------------------------------------------------------------

def test_glue_database_and_table(default_template):
    db_id, database = resource(default_template, "AWS::Glue::Database", "ArchiveDatabase")
    assert database["DatabaseInput"]["Name"] == "clickagg_archive"
    _, table = resource(default_template, "AWS::Glue::Table", "ArchiveRawClicks")
    assert table["DatabaseName"] == {"Ref": db_id}
    table_input = table["TableInput"]
    assert table_input["Name"] == "raw_clicks"
    assert table_input["TableType"] == "EXTERNAL_TABLE"
    columns = [(c["Name"], c["Type"]) for c in table_input["StorageDescriptor"]["Columns"]]
    assert columns == list(RAW_COLUMNS)
    assert [(c["Name"], c["Type"]) for c in table_input["PartitionKeys"]] == list(PARTITION_KEYS)
    storage = table_input["StorageDescriptor"]
    assert storage["SerdeInfo"]["SerializationLibrary"] == \
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert storage["InputFormat"].endswith("MapredParquetInputFormat")
    assert storage["OutputFormat"].endswith("MapredParquetOutputFormat")
    bucket_id, _ = resource(default_template, "AWS::S3::Bucket", "ArchiveBucket")
    assert storage["Location"] == {"Fn::Join": ["", ["s3://", {"Ref": bucket_id}, "/raw/clicks/"]]}


def test_glue_table_uses_partition_projection(default_template):
    parameters = resource(default_template, "AWS::Glue::Table", "ArchiveRawClicks")[1][
        "TableInput"]["Parameters"]
    bucket_id, _ = resource(default_template, "AWS::S3::Bucket", "ArchiveBucket")
    expected = partition_projection("BUCKET")
    template_key = "storage.location.template"
    for key, value in expected.items():
        if key != template_key:
            assert parameters[key] == value, key
    before, after = expected[template_key].split("BUCKET")
    assert parameters[template_key] == {"Fn::Join": ["", [before, {"Ref": bucket_id}, after]]}
    assert parameters["classification"] == "parquet"


# --- Firehose -------------------------------------------------------------------------------

def test_firehose_reads_the_clicks_stream_and_writes_parquet(default_template):
    _, stream = resource(default_template, "AWS::KinesisFirehose::DeliveryStream", "ArchiveDelivery")
    assert stream["DeliveryStreamType"] == "KinesisStreamAsSource"
    source = stream["KinesisStreamSourceConfiguration"]
    assert source["KinesisStreamARN"]["Fn::GetAtt"][0].startswith("ClicksStream")
    assert source["RoleARN"]["Fn::GetAtt"][0].startswith("ArchiveDeliverySourceRole")
    s3 = stream["ExtendedS3DestinationConfiguration"]
    bucket_id, _ = resource(default_template, "AWS::S3::Bucket", "ArchiveBucket")
    assert s3["BucketARN"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    assert s3["RoleARN"]["Fn::GetAtt"][0].startswith("ArchiveDeliveryDestinationRole")
    assert s3["Prefix"] == FIREHOSE_PREFIX
    assert s3["ErrorOutputPrefix"] == FIREHOSE_ERROR_PREFIX
    assert s3["BufferingHints"] == {"SizeInMBs": 128, "IntervalInSeconds": 300}
    assert s3["CompressionFormat"] == "UNCOMPRESSED"
    assert s3["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"]["Fn::GetAtt"][0] \
        .startswith("EncryptionKey")
    assert s3["CloudWatchLoggingOptions"]["Enabled"] is True
    conversion = s3["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert conversion["InputFormatConfiguration"] == {"Deserializer": {"OpenXJsonSerDe": {}}}
    assert conversion["OutputFormatConfiguration"] == {
        "Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}}
    schema = conversion["SchemaConfiguration"]
    assert (schema["DatabaseName"], schema["TableName"], schema["VersionId"]) == (
        "clickagg_archive", "raw_clicks", "LATEST")
    assert schema["RoleARN"] == s3["RoleARN"]


def test_firehose_buffering_from_context(custom_template):
    s3 = resource(custom_template, "AWS::KinesisFirehose::DeliveryStream", "ArchiveDelivery")[1][
        "ExtendedS3DestinationConfiguration"]
    assert s3["BufferingHints"] == {"SizeInMBs": 64, "IntervalInSeconds": 120}


def test_firehose_roles_are_least_privilege(default_template):
    source = statements_of_role(default_template, "ArchiveDeliverySourceRole")
    destination = statements_of_role(default_template, "ArchiveDeliveryDestinationRole")
    for statements in (source, destination):
        for s in statements:
            assert not any("*" in a for a in as_list(s["Action"])), s
            assert "*" not in as_list(s["Resource"]), s
    source_actions = {a for s in source for a in as_list(s["Action"])}
    assert source_actions == {"kinesis:DescribeStream", "kinesis:DescribeStreamSummary",
                              "kinesis:GetShardIterator", "kinesis:GetRecords",
                              "kinesis:ListShards", "kms:Decrypt"}
    [objects] = [s for s in destination if "s3:PutObject" in as_list(s["Action"])]
    resources = json.dumps(objects["Resource"])
    assert '"/raw/clicks/*"' in resources and '"/errors/clicks/*"' in resources
    assert len(as_list(objects["Resource"])) == 2  # the two prefixes, not the whole bucket
    actions = {a for s in destination for a in as_list(s["Action"])}
    assert not any(a.startswith("s3:Delete") for a in actions)
    [glue] = [s for s in destination if "glue:GetTableVersions" in as_list(s["Action"])]
    assert ":table/clickagg_archive/raw_clicks" in json.dumps(glue["Resource"])


def test_the_events_archive_is_its_own_table_firehose_and_prefixes(default_template):
    """Impressions and conversions (docs/events.md): the events stream -> raw/events/ Parquet
    with table raw_events, columns EVENTS.columns (common.archive), roles on those prefixes only."""
    from common.archive import EVENTS
    db_id, _ = resource(default_template, "AWS::Glue::Database", "ArchiveDatabase")
    _, table = resource(default_template, "AWS::Glue::Table", "ArchiveRawEvents")
    table_input = table["TableInput"]
    assert (table["DatabaseName"], table_input["Name"]) == ({"Ref": db_id}, "raw_events")
    assert [(c["Name"], c["Type"]) for c in table_input["StorageDescriptor"]["Columns"]] == EVENTS.columns
    assert [(c["Name"], c["Type"]) for c in table_input["PartitionKeys"]] == list(PARTITION_KEYS)
    bucket_id, _ = resource(default_template, "AWS::S3::Bucket", "ArchiveBucket")
    assert table_input["StorageDescriptor"]["Location"] == {
        "Fn::Join": ["", ["s3://", {"Ref": bucket_id}, "/raw/events/"]]}
    template_key = table_input["Parameters"]["storage.location.template"]
    assert template_key == {"Fn::Join": ["", ["s3://", {"Ref": bucket_id}, "/raw/events/dt=${dt}/hr=${hr}/"]]}

    _, stream = resource(default_template, "AWS::KinesisFirehose::DeliveryStream", "EventsArchiveDelivery")
    assert stream["DeliveryStreamName"] == "clickagg-events-archive"
    assert stream["KinesisStreamSourceConfiguration"]["KinesisStreamARN"]["Fn::GetAtt"][0].startswith("EventsStream")
    s3 = stream["ExtendedS3DestinationConfiguration"]
    assert (s3["Prefix"], s3["ErrorOutputPrefix"]) == (EVENTS.firehose_prefix, EVENTS.firehose_error_prefix)
    schema = s3["DataFormatConversionConfiguration"]["SchemaConfiguration"]
    assert (schema["DatabaseName"], schema["TableName"]) == ("clickagg_archive", "raw_events")
    destination = statements_of_role(default_template, "EventsArchiveDeliveryDestinationRole")
    [objects] = [s for s in destination if "s3:PutObject" in as_list(s["Action"])]
    resources = json.dumps(objects["Resource"])
    assert '"/raw/events/*"' in resources and '"/errors/events/*"' in resources
    assert len(as_list(objects["Resource"])) == 2
    [glue] = [s for s in destination if "glue:GetTableVersions" in as_list(s["Action"])]
    assert ":table/clickagg_archive/raw_events" in json.dumps(glue["Resource"])


def test_archive_tables_only_grow_at_the_end():
    """Parquet readers map columns by name, Glue's schema versions by position: a column is
    only ever added after the last one. These are the columns as first published."""
    from common.archive import CLICKS, EVENTS
    clicks_v1 = ["click_id", "ad_id", "campaign_id", "advertiser_id", "user_id", "event_time",
                 "cost_micros", "ip", "user_agent", "referrer", "ingest_time", "request_id",
                 "source_ip", "impression_id", "issued_at"]
    events_v1 = ["event_type", "event_id", "schema_version", "ad_id", "campaign_id", "advertiser_id",
                 "event_time", "impression_id", "click_id", "placement_id", "publisher_id", "user_id",
                 "value_micros", "currency", "attributed_by", "ingest_time", "request_id", "source_ip"]
    for layout, published in ((CLICKS, clicks_v1), (EVENTS, events_v1)):
        names = [name for name, _ in layout.columns]
        assert names[:len(published)] == published, layout.name


# --- Athena ---------------------------------------------------------------------------------

def test_athena_workgroup_enforces_encrypted_results_and_a_scan_limit(default_template):
    workgroup = only(default_template, "AWS::Athena::WorkGroup")
    assert workgroup["Name"] == "clickagg-analytics"
    config = workgroup["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == 10 * 1024**3
    results = config["ResultConfiguration"]
    assert results["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert results["EncryptionConfiguration"]["KmsKey"]["Fn::GetAtt"][0].startswith(
        "EncryptionKey")
    results_id, results_bucket = resource(default_template, "AWS::S3::Bucket", "AnalyticsResults")
    assert results["OutputLocation"] == {"Fn::Join": ["", ["s3://", {"Ref": results_id},
                                                          "/results/"]]}
    [rule] = results_bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 30


def test_athena_settings_from_context(custom_template):
    config = only(custom_template, "AWS::Athena::WorkGroup")["WorkGroupConfiguration"]
    assert config["BytesScannedCutoffPerQuery"] == 1073741824
    _, results_bucket = resource(custom_template, "AWS::S3::Bucket", "AnalyticsResults")
    assert results_bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 7


def test_named_queries(default_template):
    queries = default_template.find_resources("AWS::Athena::NamedQuery")
    assert len(queries) == len(NAMED_QUERIES)
    workgroup_id = next(iter(default_template.find_resources("AWS::Athena::WorkGroup")))
    by_name = {q["Properties"]["Name"]: q["Properties"] for q in queries.values()}
    assert set(by_name) == set(NAMED_QUERIES)
    for name, query in NAMED_QUERIES.items():
        props = by_name[name]
        assert props["QueryString"] == query.sql.format(table=query.table, k=10)
        assert set(query.tables) <= {"raw_clicks", "refused_clicks", "billing_hourly", "billing_events_hourly",
                                     "billing_campaign_spend"}
        for table in query.tables:  # created after the tables it reads
            table_id = next(k for k, t in default_template.find_resources("AWS::Glue::Table").items()
                            if t["Properties"]["TableInput"]["Name"] == table)
            [query_id] = [k for k, q in queries.items() if q["Properties"]["Name"] == name]
            assert table_id in queries[query_id]["DependsOn"], (name, table)
        assert props["QueryString"].count("?") == len(query.binds)  # execution parameters
        assert "{" not in props["QueryString"]
        assert props["Database"] == "clickagg_archive"
        assert props["WorkGroup"] == {"Ref": workgroup_id}


@pytest.mark.parametrize("output", ["ArchiveBucketName", "GlueDatabase", "AthenaWorkGroup"])
def test_archive_outputs(default_template, output):
    assert output in default_template.to_json()["Outputs"]


@pytest.mark.parametrize("stream,archive", [("clickagg-archive", "clicks"), ("clickagg-events-archive", "events")])
def test_a_stuck_archive_delivery_pages(default_template, stream, archive):
    """DeliveryToS3.DataFreshness (max over 5 min) above 2 x the buffer interval (300 s by
    default) + 5 min, on the alarm topic, for each archive's Firehose."""
    [alarm] = [a["Properties"] for a in default_template.find_resources("AWS::CloudWatch::Alarm").values()
               if a["Properties"]["AlarmName"] == f"{stream}-DataFreshness"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == (
        "AWS/Firehose", "DeliveryToS3.DataFreshness", "Maximum", 300)
    assert alarm["Dimensions"] == [{"Name": "DeliveryStreamName", "Value": stream}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        900, "GreaterThanThreshold", "notBreaching")
    assert alarm["AlarmActions"][0]["Ref"].startswith("AlarmsTopic")
    assert f"raw/{archive}/" in alarm["AlarmDescription"]
