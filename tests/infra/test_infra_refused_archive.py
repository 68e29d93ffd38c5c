"""Template assertions on the refused-items archive (issue 17, infra.constructs.refused_archive):
the Direct PUT delivery stream (encrypted, gzip JSON, the layout of common.refused), its
least-privilege role, the Glue table with partition projection, the ingest Lambda's one grant and
its variable, the named query, the alarm. cdk-nag and cfn-lint cover it with the whole app
(test_infra_nag.py, test_infra_cfn_lint.py)."""
from __future__ import annotations

import json

from aws_cdk.assertions import Template

from common import refused
from common.archive import PARTITION_KEYS
from common.named_queries import NAMED_QUERIES


def resource(template: Template, type_: str, prefix: str) -> tuple[str, dict]:
    found = {k: v for k, v in template.find_resources(type_).items() if k.startswith(prefix)}
    assert len(found) == 1, (type_, prefix, list(found))
    [(logical_id, value)] = found.items()
    return logical_id, value


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def key_id(template: Template) -> str:
    return next(iter(template.find_resources("AWS::KMS::Key")))


def test_delivery_stream_is_direct_put_encrypted_gzip_json_in_the_layout(default_template):
    stream_id, stream = resource(default_template, "AWS::KinesisFirehose::DeliveryStream",
                                 "RefusedArchiveDeliveryStream")
    props = stream["Properties"]
    assert props["DeliveryStreamName"] == "clickagg-refused"
    assert props["DeliveryStreamType"] == "DirectPut"
    assert props["DeliveryStreamEncryptionConfigurationInput"] == {
        "KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": {"Fn::GetAtt": [key_id(default_template), "Arn"]}}
    s3 = props["ExtendedS3DestinationConfiguration"]
    bucket_id, _ = resource(default_template, "AWS::S3::Bucket", "ArchiveBucket")
    role_id, _ = resource(default_template, "AWS::IAM::Role", "RefusedArchiveDeliveryRole")
    assert s3["BucketARN"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    assert s3["RoleARN"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert s3["Prefix"] == "refused/clicks/dt=!{timestamp:yyyy-MM-dd}/hr=!{timestamp:HH}/"
    assert s3["ErrorOutputPrefix"] == \
        "errors/refused/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
    assert (s3["CompressionFormat"], s3["FileExtension"]) == ("GZIP", ".json.gz")
    assert s3["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 300}
    assert s3["EncryptionConfiguration"] == {"KMSEncryptionConfig": {
        "AWSKMSKeyARN": {"Fn::GetAtt": [key_id(default_template), "Arn"]}}}
    assert s3["CloudWatchLoggingOptions"]["Enabled"] is True
    assert s3["CloudWatchLoggingOptions"]["LogGroupName"]["Ref"].startswith("RefusedArchiveLogs")
    assert "DataFormatConversionConfiguration" not in s3  # JSON as ingest wrote it
    assert any(d.startswith("RefusedArchiveDeliveryRoleDefaultPolicy") for d in stream["DependsOn"])


def test_delivery_role_is_least_privilege(default_template):
    _, policy = resource(default_template, "AWS::IAM::Policy", "RefusedArchiveDeliveryRoleDefaultPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = sorted(a for s in statements for a in as_list(s["Action"]))
    assert actions == sorted([
        "s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads",
        "s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject",
        "kms:Decrypt", "kms:GenerateDataKey", "logs:PutLogEvents"])
    for s in statements:
        assert "*" not in as_list(s["Resource"]), s
    [objects] = [s for s in statements if "s3:PutObject" in as_list(s["Action"])]
    bucket_id, _ = resource(default_template, "AWS::S3::Bucket", "ArchiveBucket")
    assert sorted(objects["Resource"], key=json.dumps) == [
        {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/errors/refused/*"]]},
        {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/refused/clicks/*"]]}]
    _, role = resource(default_template, "AWS::IAM::Role", "RefusedArchiveDeliveryRole")
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "firehose.amazonaws.com"}


def test_glue_table_reads_the_layout_with_partition_projection(default_template):
    db_id, _ = resource(default_template, "AWS::Glue::Database", "ArchiveDatabase")
    bucket_id, _ = resource(default_template, "AWS::S3::Bucket", "ArchiveBucket")
    _, table = resource(default_template, "AWS::Glue::Table", "RefusedArchiveTable")
    assert table["Properties"]["DatabaseName"] == {"Ref": db_id}
    table_input = table["Properties"]["TableInput"]
    assert (table_input["Name"], table_input["TableType"]) == ("refused_clicks", "EXTERNAL_TABLE")
    storage = table_input["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == refused.COLUMNS
    assert [(c["Name"], c["Type"]) for c in table_input["PartitionKeys"]] == list(PARTITION_KEYS)
    assert storage["SerdeInfo"] == {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
                                    "Parameters": {"ignore.malformed.json": "FALSE"}}
    assert storage["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert storage["Location"] == {"Fn::Join": ["", ["s3://", {"Ref": bucket_id}, "/refused/clicks/"]]}
    parameters = table_input["Parameters"]
    expected = refused.table_projection("BUCKET")
    for key, value in expected.items():
        if key != "storage.location.template":
            assert parameters[key] == value, key
    before, after = expected["storage.location.template"].split("BUCKET")
    assert (before, after) == ("s3://", "/refused/clicks/dt=${dt}/hr=${hr}/")
    assert parameters["storage.location.template"] == {"Fn::Join": ["", [before, {"Ref": bucket_id}, after]]}
    assert parameters["classification"] == "json"


def test_only_the_ingest_function_may_put_refused_items(default_template):
    stream_id, _ = resource(default_template, "AWS::KinesisFirehose::DeliveryStream",
                            "RefusedArchiveDeliveryStream")
    writers = {}
    for name, policy in default_template.find_resources("AWS::IAM::Policy").items():
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            if any(a.startswith("firehose:") for a in as_list(s["Action"])):
                writers[name] = (sorted(as_list(s["Action"])), s["Resource"])
    [(name, grant)] = writers.items()
    assert name.startswith("IngestFunctionRole")
    assert grant == (["firehose:PutRecord", "firehose:PutRecordBatch"], {"Fn::GetAtt": [stream_id, "Arn"]})


def test_ingest_function_names_the_stream(default_template, custom_template):
    for template, name in ((default_template, "clickagg-refused"), (custom_template, "ca-test-refused")):
        [env] = [f["Properties"]["Environment"]["Variables"]
                 for f in template.find_resources("AWS::Lambda::Function").values()
                 if f["Properties"].get("Handler") == "ingest.handler.lambda_handler"]
        assert env[refused.STREAM_ENV] == name
        [stream] = [s["Properties"] for k, s in template.find_resources(
            "AWS::KinesisFirehose::DeliveryStream").items() if k.startswith("RefusedArchive")]
        assert stream["DeliveryStreamName"] == name


def test_named_query_over_the_refused_table(default_template):
    _, table = resource(default_template, "AWS::Glue::Table", "RefusedArchiveTable")
    query_id, query = resource(default_template, "AWS::Athena::NamedQuery",
                               "AnalyticsRefusedClicksByReason")
    props = query["Properties"]
    expected = NAMED_QUERIES["refused_clicks_by_reason"]
    assert props["Name"] == "refused_clicks_by_reason"
    assert props["QueryString"] == expected.sql.format(table="refused_clicks", k=10)
    assert "FROM refused_clicks CROSS JOIN UNNEST(reason_codes)" in props["QueryString"]
    assert props["QueryString"].count("?") == 3 and props["Database"] == "clickagg_archive"
    table_id = next(k for k in default_template.find_resources("AWS::Glue::Table")
                    if k.startswith("RefusedArchiveTable"))
    assert table_id in query["DependsOn"]


def test_unarchived_refusals_page(default_template):
    [alarm] = [a["Properties"] for a in default_template.find_resources("AWS::CloudWatch::Alarm").values()
               if a["Properties"]["AlarmName"] == "clickagg-ingest-RefusedUnarchived"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "ClickAgg", "RefusedUnarchived", "Sum")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "ingest"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        0, "GreaterThanThreshold", "notBreaching")
    [action] = alarm["AlarmActions"]
    assert action["Ref"].startswith("AlarmsTopic")
    outputs = default_template.to_json()["Outputs"]
    assert outputs["RefusedDeliveryStreamName"]["Value"] == "clickagg-refused"
    assert "refused_clicks_by_reason" in json.dumps(outputs["RefusedDeliveryStreamName"])
