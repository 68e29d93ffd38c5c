"""Firehose: a stream -> Parquet objects in the archive bucket, one per raw archive
(common.archive): the clicks stream -> raw/clicks/dt=/hr=/ (table raw_clicks), the events
stream -> raw/events/dt=/hr=/ (table raw_events).

The L1 `CfnDeliveryStream`, not the L2 `DeliveryStream`: the L2's S3 destination grants the
bucket's read/write set (s3:DeleteObject*, s3:List*, ...), kms:ReEncrypt*/GenerateDataKey* and
glue:GetSchemaVersion on '*', more than delivery needs. Here two roles, named actions:
  source role       reads its stream (and decrypts it)
  destination role  puts objects under the two prefixes only, reads the Glue table's schema,
                    uses the key for SSE-KMS, writes its own log stream.
Record format conversion: OpenX JSON (one record per Kinesis record, common.records) -> Parquet
(SNAPPY) with the Glue table's schema; S3 compression must be UNCOMPRESSED then, and buffers at
least 64 MB. Failed conversions/deliveries land under FIREHOSE_ERROR_PREFIX.

There is no server-side encryption setting for a Kinesis-sourced delivery stream (only Direct
PUT has one): records are encrypted in the source stream and SSE-KMS in S3, and Firehose's
transient buffer is the service's own.

Alarm `<name>-DataFreshness`: the oldest record not yet in S3 is older than twice the buffer
interval plus 5 minutes (DeliveryToS3.DataFreshness, maximum over 5 minutes). Delivery stuck
(conversion errors, a role or key problem) would otherwise show only in the nightly billing's
input; Firehose retries for 24 h from the stream, so the alarm comes while nothing is lost yet.
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, ArnFormat, Aws, Duration, RemovalPolicy, Stack, Validations

from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from common.archive import CLICKS, ArchiveLayout
from infra.constructs.alarms import add_alarm
from infra.constructs.archive import RawArchive
from infra.settings import StackSettings

LOG_RETENTION = logs.RetentionDays.ONE_MONTH
SOURCE_STREAM_ACTIONS = ("kinesis:DescribeStream", "kinesis:DescribeStreamSummary",
                         "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards")
BUCKET_ACTIONS = ("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads")
OBJECT_ACTIONS = ("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject")
GLUE_ACTIONS = ("glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions")
DESTINATION_KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


class ArchiveDelivery(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 stream: kinesis.IStream, archive: RawArchive, layout: ArchiveLayout = CLICKS,
                 table_name: str | None = None, name: str | None = None,
                 topic: sns.ITopic | None = None) -> None:
        """`layout`, `table_name`: which archive (default the clicks'); `name`: the delivery
        stream's (default `<prefix>-archive`, the clicks')."""
        super().__init__(scope, id)
        table_name = table_name or archive.table_name
        table = archive.table if table_name == archive.table_name else archive.events_table
        RAW_PREFIX, ERROR_PREFIX = layout.prefix, layout.error_prefix
        stack = Stack.of(self)
        bucket = archive.bucket
        self.log_group = logs.LogGroup(
            self, "Logs", retention=LOG_RETENTION, encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN)
        self.log_stream = logs.LogStream(
            self, "S3Delivery", log_group=self.log_group, removal_policy=RemovalPolicy.RETAIN)

        # No trust condition: which context keys Firehose sets when it assumes the role was not
        # verifiable here (the L2 adds none either); the roles' permissions are the limit.
        firehose_principal = iam.ServicePrincipal("firehose.amazonaws.com")
        self.source_role = iam.Role(
            self, "SourceRole", assumed_by=firehose_principal,
            description=f"clickagg archive Firehose: read the {layout.name} stream")
        stream.grant(self.source_role, *SOURCE_STREAM_ACTIONS)
        key.grant(self.source_role, "kms:Decrypt")

        self.destination_role = iam.Role(
            self, "DestinationRole", assumed_by=firehose_principal,
            description=f"clickagg archive Firehose: write {layout.name} Parquet to the archive bucket")
        object_arns = [bucket.arn_for_objects(f"{RAW_PREFIX}*"),
                       bucket.arn_for_objects(f"{ERROR_PREFIX}*")]
        self.destination_role.add_to_policy(iam.PolicyStatement(
            actions=list(BUCKET_ACTIONS), resources=[bucket.bucket_arn]))
        self.destination_role.add_to_policy(iam.PolicyStatement(
            actions=list(OBJECT_ACTIONS), resources=object_arns))
        key.grant(self.destination_role, *DESTINATION_KMS_ACTIONS)
        self.destination_role.add_to_policy(iam.PolicyStatement(
            actions=list(GLUE_ACTIONS), resources=archive.table_arns(table_name)))
        self.destination_role.add_to_policy(iam.PolicyStatement(
            actions=["logs:PutLogEvents"],
            resources=[stack.format_arn(
                service="logs", resource="log-group",
                resource_name=f"{self.log_group.log_group_name}:log-stream:"
                              f"{self.log_stream.log_stream_name}",
                arn_format=ArnFormat.COLON_RESOURCE_NAME)]))
        Validations.of(self.destination_role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(bucket)}.Arn>/{RAW_PREFIX}*]",
                reason="Firehose names each object itself (dt=/hr= prefix + a generated file "
                       f"name): puts are limited to the {RAW_PREFIX} prefix of this one bucket."),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(bucket)}.Arn>/{ERROR_PREFIX}*]",
                reason="Firehose names each error object itself: puts of failed records are "
                       f"limited to the {ERROR_PREFIX} prefix of this one bucket."),
        )

        D = firehose.CfnDeliveryStream
        self.name = name or f"{settings.prefix}-archive"
        self.delivery_stream = D(
            self, "DeliveryStream",
            delivery_stream_name=self.name,
            delivery_stream_type="KinesisStreamAsSource",
            kinesis_stream_source_configuration=D.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=stream.stream_arn, role_arn=self.source_role.role_arn),
            extended_s3_destination_configuration=D.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=self.destination_role.role_arn,
                prefix=layout.firehose_prefix,
                error_output_prefix=layout.firehose_error_prefix,
                buffering_hints=D.BufferingHintsProperty(
                    size_in_m_bs=settings.firehose_buffer_mb,
                    interval_in_seconds=settings.firehose_buffer_interval_s),
                compression_format="UNCOMPRESSED",  # Parquet compresses (SNAPPY) itself
                encryption_configuration=D.EncryptionConfigurationProperty(
                    kms_encryption_config=D.KMSEncryptionConfigProperty(
                        awskms_key_arn=key.key_arn)),
                cloud_watch_logging_options=D.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=self.log_group.log_group_name,
                    log_stream_name=self.log_stream.log_stream_name),
                data_format_conversion_configuration=D.DataFormatConversionConfigurationProperty(
                    enabled=True,
                    input_format_configuration=D.InputFormatConfigurationProperty(
                        deserializer=D.DeserializerProperty(
                            open_x_json_ser_de=D.OpenXJsonSerDeProperty())),
                    output_format_configuration=D.OutputFormatConfigurationProperty(
                        serializer=D.SerializerProperty(
                            parquet_ser_de=D.ParquetSerDeProperty(compression="SNAPPY"))),
                    schema_configuration=D.SchemaConfigurationProperty(
                        catalog_id=Aws.ACCOUNT_ID,
                        database_name=archive.database_name,
                        table_name=table_name,
                        region=Aws.REGION,
                        role_arn=self.destination_role.role_arn,
                        version_id="LATEST")),
            ),
        )
        # Firehose checks the roles (and the table) when the stream is created: policies first.
        for dependency in (self.source_role, self.destination_role, table):
            self.delivery_stream.node.add_dependency(dependency)
        Validations.of(self.delivery_stream).acknowledge(Acknowledgment(
            id="AwsSolutions-KDF1",
            reason="A Kinesis-sourced delivery stream has no server-side encryption setting "
                   "(Direct PUT only): records are KMS-encrypted in the source stream and "
                   "SSE-KMS (pipeline key) in S3.",
        ))

        self.freshness_threshold_s = 2 * settings.firehose_buffer_interval_s + 300
        self.alarm = None if topic is None else add_alarm(
            self, "DataFreshness", topic=topic, alarm_name=f"{self.name}-DataFreshness",
            description=(f"The {layout.name} archive's oldest record not yet in S3 is older than "
                         f"{self.freshness_threshold_s} s (2 x the buffer interval + 5 min): "
                         f"delivery to {layout.prefix} is stuck. Firehose's error output is "
                         f"under {layout.error_prefix}; its log group says why."),
            metric=cw.Metric(namespace="AWS/Firehose", metric_name="DeliveryToS3.DataFreshness",
                             dimensions_map={"DeliveryStreamName": self.name},
                             statistic="Maximum", period=Duration.minutes(5)),
            threshold=self.freshness_threshold_s)


def _logical_id(bucket: s3.IBucket) -> str:
    """The logical id cdk-nag prints for the bucket (its findings name `<Id.Arn>`)."""
    return Stack.of(bucket).get_logical_id(bucket.node.default_child)
