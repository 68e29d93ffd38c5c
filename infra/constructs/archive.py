"""The raw archive: its bucket and its Glue Data Catalog tables, `raw_clicks` and `raw_events`
(impressions and conversions, docs/events.md).

Layouts and schemas come from common.archive (the local archiver writes the same): Parquet
objects under `raw/clicks/` and `raw/events/`, `dt=YYYY-MM-DD/hr=HH/` by arrival time, columns
in record order, partition keys dt/hr. The table's parameters are common.archive.partition_projection(bucket), so Athena
computes partitions from the layout: no crawler, no MSCK REPAIR, no partition writes.

Bucket: SSE-KMS with the pipeline key (clicks carry IPs and user agents), versioned, TLS only,
no public access, access logs to the logs bucket; lifecycle STANDARD -> STANDARD_IA after
`archive_ia_after_days` -> Glacier Instant Retrieval (default: Athena still reads it) or Glacier
Flexible Retrieval (cheaper; Athena cannot read it without a restore) after
`archive_cold_after_days`. Superseded versions expire after 30 days.
"""
from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from common.archive import CLICKS, EVENTS, PARTITION_KEYS, ArchiveLayout, partition_projection
from common.named_queries import TABLE

EVENTS_TABLE = "raw_events"
from infra.constructs.buckets import data_bucket
from infra.settings import StackSettings

COLD_CLASSES = {"glacier_ir": s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                "glacier": s3.StorageClass.GLACIER}
NONCURRENT_RETENTION = Duration.days(30)
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def glue_database_name(prefix: str) -> str:
    """Glue/Athena identifiers: lowercase letters, digits and underscores only."""
    return f"{prefix.replace('-', '_')}_archive"


class RawArchive(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 logs_bucket: s3.IBucket) -> None:
        super().__init__(scope, id)
        self.bucket = data_bucket(
            self, "Bucket", key=key, logs_bucket=logs_bucket, log_prefix="archive/",
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(
                id="Tiering",
                transitions=[
                    s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                                  transition_after=Duration.days(settings.archive_ia_after_days)),
                    s3.Transition(storage_class=COLD_CLASSES[settings.archive_cold_storage_class],
                                  transition_after=Duration.days(settings.archive_cold_after_days)),
                ],
                noncurrent_version_expiration=NONCURRENT_RETENTION,
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )],
        )

        self.database_name = glue_database_name(settings.prefix)
        self.database = glue.CfnDatabase(
            self, "Database", catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description=f"{settings.prefix}: raw click archive (Firehose Parquet)"))
        self.table_name = TABLE
        self.table = self._parquet_table(
            "RawClicks", TABLE, CLICKS, "Raw clicks as archived (at-least-once: dedup by click_id)")
        self.events_table_name = EVENTS_TABLE
        self.events_table = self._parquet_table(
            "RawEvents", EVENTS_TABLE, EVENTS,
            "Raw impressions and conversions as archived (at-least-once: dedup by event_type, "
            "event_id)")

    def _parquet_table(self, id: str, name: str, layout: ArchiveLayout,
                       description: str) -> glue.CfnTable:
        return glue.CfnTable(
            self, id, catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database.ref,  # Ref = database name; orders the creation
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "EXTERNAL": "TRUE",
                    "parquet.compression": "SNAPPY",
                    **partition_projection(self.bucket.bucket_name, prefix=layout.prefix),
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name=key, type=type_)
                                for key, type_ in PARTITION_KEYS],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=column, type=type_)
                             for column, type_ in layout.columns],
                    location=f"s3://{self.bucket.bucket_name}/{layout.prefix}",
                    input_format=PARQUET_INPUT,
                    output_format=PARQUET_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=PARQUET_SERDE,
                        parameters={"serialization.format": "1"}),
                    compressed=False,
                    stored_as_sub_directories=False,
                ),
            ),
        )

    def table_arns(self, table_name: str | None = None) -> list[str]:
        """Catalog, database and table ARNs: what glue:GetTable* authorizes against (default:
        the clicks table)."""
        prefix = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        return [f"{prefix}:catalog",
                f"{prefix}:database/{self.database_name}",
                f"{prefix}:table/{self.database_name}/{table_name or self.table_name}"]
