"""The refused-items archive (issue 17, "nothing is lost"): items ingest refuses, with their
reasons, in the archive bucket under their own prefix, readable by Athena.

Layout, columns and file format come from common.refused (the local writer and the ingest
Lambda use the same): gzip JSON Lines under `refused/clicks/dt=YYYY-MM-DD/hr=HH/*.json.gz`, a
Glue table `refused_clicks` in the archive's database with partition projection (nothing to
crawl), the named query refused_clicks_by_reason (common.named_queries; registered by
infra.constructs.analytics).

Delivery: a Firehose Direct PUT stream (the L1, as infra.constructs.archive_delivery, for the
same reason: the L2's S3 destination grants more than delivery needs), server-side encrypted
with the pipeline key, objects SSE-KMS with the same key, failures under
`errors/refused/<error type>/dt=/`. Its role may only put objects under those two prefixes of the
archive bucket, use the key and write its own log stream. The ingest Lambda may only
firehose:PutRecord/PutRecordBatch on this stream (iam.Grant, nothing else) and learns its name
from REFUSED_DELIVERY_STREAM (setting refused_delivery_stream). Alarm: RefusedUnarchived > 0, refused
items ingest could not archive (their records are then in the ingest Lambda's log group only).
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, ArnFormat, Aws, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from common import refused
from common.archive import PARTITION_KEYS
from infra.constructs.alarms import PERIOD, add_alarm
from infra.constructs.archive import RawArchive
from infra.constructs.archive_delivery import (BUCKET_ACTIONS, DESTINATION_KMS_ACTIONS,
                                               LOG_RETENTION, OBJECT_ACTIONS, _logical_id)
from infra.settings import StackSettings

PRODUCER_ACTIONS = ("firehose:PutRecord", "firehose:PutRecordBatch")
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"


class RefusedArchive(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 archive: RawArchive, producer: lambda_.Function, topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        bucket = archive.bucket
        self.log_group = logs.LogGroup(
            self, "Logs", retention=LOG_RETENTION, encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN)
        self.log_stream = logs.LogStream(
            self, "S3Delivery", log_group=self.log_group, removal_policy=RemovalPolicy.RETAIN)

        # -- the Glue table (Athena reads the JSON Lines with the OpenX SerDe, gzip by extension)
        self.table_name = refused.TABLE
        self.table = glue.CfnTable(
            self, "Table", catalog_id=Aws.ACCOUNT_ID,
            database_name=archive.database.ref,
            table_input=glue.CfnTable.TableInputProperty(
                name=self.table_name,
                description="Items refused at ingest, with their reasons (common.refused)",
                table_type="EXTERNAL_TABLE",
                parameters={"classification": "json", "EXTERNAL": "TRUE",
                            "compressionType": "gzip",
                            **refused.table_projection(bucket.bucket_name)},
                partition_keys=[glue.CfnTable.ColumnProperty(name=name, type=type_)
                                for name, type_ in PARTITION_KEYS],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=name, type=type_)
                             for name, type_ in refused.COLUMNS],
                    location=f"s3://{bucket.bucket_name}/{refused.REFUSED_PREFIX}",
                    input_format=TEXT_INPUT,
                    output_format=TEXT_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=JSON_SERDE,
                        # a malformed line fails the query rather than vanish from an answer
                        parameters={"ignore.malformed.json": "FALSE"}),
                    compressed=True,
                    stored_as_sub_directories=False,
                ),
            ),
        )

        # -- delivery role: the two prefixes, the key, its own log stream
        self.role = iam.Role(
            self, "DeliveryRole", assumed_by=iam.ServicePrincipal("firehose.amazonaws.com"),
            description="clickagg refused-items Firehose: write JSON to the archive bucket")
        self.role.add_to_policy(iam.PolicyStatement(
            actions=list(BUCKET_ACTIONS), resources=[bucket.bucket_arn]))
        self.role.add_to_policy(iam.PolicyStatement(
            actions=list(OBJECT_ACTIONS),
            resources=[bucket.arn_for_objects(f"{refused.REFUSED_PREFIX}*"),
                       bucket.arn_for_objects(f"{refused.REFUSED_ERROR_PREFIX}*")]))
        key.grant(self.role, *DESTINATION_KMS_ACTIONS)
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["logs:PutLogEvents"],
            resources=[stack.format_arn(
                service="logs", resource="log-group",
                resource_name=f"{self.log_group.log_group_name}:log-stream:"
                              f"{self.log_stream.log_stream_name}",
                arn_format=ArnFormat.COLON_RESOURCE_NAME)]))
        bucket_id = _logical_id(bucket)
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{refused.REFUSED_PREFIX}*]",
                reason="Firehose names each object itself (dt=/hr= prefix + a generated file "
                       "name): puts are limited to the refused/clicks/ prefix of this one bucket."),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{refused.REFUSED_ERROR_PREFIX}*]",
                reason="Firehose names each error object itself: puts of failed records are "
                       "limited to the errors/refused/ prefix of this one bucket."),
        )

        # -- the delivery stream
        D = firehose.CfnDeliveryStream
        self.stream_name = refused.delivery_stream_name(settings.prefix)
        self.delivery_stream = D(
            self, "DeliveryStream",
            delivery_stream_name=self.stream_name,
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=D.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="CUSTOMER_MANAGED_CMK", key_arn=key.key_arn),
            extended_s3_destination_configuration=D.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=self.role.role_arn,
                prefix=refused.FIREHOSE_PREFIX,
                error_output_prefix=refused.FIREHOSE_ERROR_PREFIX,
                buffering_hints=D.BufferingHintsProperty(
                    size_in_m_bs=refused.BUFFER_MB,
                    interval_in_seconds=refused.BUFFER_INTERVAL_S),
                compression_format="GZIP",
                file_extension=refused.FILE_EXTENSION,
                encryption_configuration=D.EncryptionConfigurationProperty(
                    kms_encryption_config=D.KMSEncryptionConfigProperty(
                        awskms_key_arn=key.key_arn)),
                cloud_watch_logging_options=D.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=self.log_group.log_group_name,
                    log_stream_name=self.log_stream.log_stream_name),
            ),
        )
        # Firehose checks the role when the stream is created: its policy first.
        self.delivery_stream.node.add_dependency(self.role)

        # -- the producer: the ingest Lambda puts records on this stream, nothing else
        iam.Grant.add_to_principal(grantee=producer, actions=list(PRODUCER_ACTIONS),
                                   resource_arns=[self.delivery_stream.attr_arn])
        producer.add_environment(refused.STREAM_ENV, self.stream_name)

        self.alarms: dict[str, cw.Alarm] = {"RefusedUnarchived": add_alarm(
            self, "RefusedUnarchived", topic=topic,
            alarm_name=f"{settings.prefix}-ingest-RefusedUnarchived",
            description="Ingest RefusedUnarchived > 0: refused items the refused-items archive "
                        "did not take (Firehose throttled or down); their records are in the "
                        "ingest Lambda's log group only ('refused item not archived')",
            metric=cw.Metric(namespace=settings.names.metrics_namespace,
                             metric_name="RefusedUnarchived", statistic="Sum", period=PERIOD,
                             dimensions_map={"service": "ingest"}))}
