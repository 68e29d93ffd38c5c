"""Athena over the raw archive: a workgroup that enforces its settings, and the named queries.

The workgroup enforces its configuration (clients cannot override the result location or
encryption): results go SSE-KMS (pipeline key) to a dedicated results bucket and expire after
`athena_results_retention_days`; each query may scan at most `athena_bytes_scanned_cutoff`
bytes. Named queries are common.named_queries.NAMED_QUERIES with `{table}` -> the Glue table and
`{k}` -> 10; their `?` stay, as Athena execution parameters (see named_queries.render). Each
query names its tables (`NamedQuery.tables`: raw_clicks, refused_clicks of
infra.constructs.refused_archive, the billing tables of infra.constructs.billing); all are in
the archive's Glue database, and each named query depends on the tables it reads.
"""
from __future__ import annotations

from typing import Mapping

from aws_cdk import Aws, Duration
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from common.named_queries import NAMED_QUERIES
from infra.constructs.archive import RawArchive
from infra.constructs.buckets import data_bucket, expire_rule
from infra.settings import StackSettings

RESULTS_PREFIX = "results/"
DEFAULT_K = 10
ENGINE_VERSION = "Athena engine version 3"


def named_query_sql(sql: str, table: str) -> str:
    return sql.format(table=table, k=DEFAULT_K)


class AthenaAnalytics(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 logs_bucket: s3.IBucket, archive: RawArchive,
                 tables: Mapping[str, glue.CfnTable]) -> None:
        """`tables`: the Glue tables of the archive database by name (every NamedQuery.tables)."""
        super().__init__(scope, id)
        self.results_bucket = data_bucket(
            self, "Results", key=key, logs_bucket=logs_bucket, log_prefix="athena-results/",
            versioned=False,
            lifecycle_rules=[expire_rule(Duration.days(settings.athena_results_retention_days))])

        self.workgroup_name = f"{settings.prefix}-analytics"
        W = athena.CfnWorkGroup
        self.workgroup = W(
            self, "WorkGroup",
            name=self.workgroup_name,
            description=f"{settings.prefix}: queries over the raw click archive",
            state="ENABLED",
            recursive_delete_option=False,
            work_group_configuration=W.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=settings.athena_bytes_scanned_cutoff,
                engine_version=W.EngineVersionProperty(selected_engine_version=ENGINE_VERSION),
                result_configuration=W.ResultConfigurationProperty(
                    output_location=f"s3://{self.results_bucket.bucket_name}/{RESULTS_PREFIX}",
                    expected_bucket_owner=Aws.ACCOUNT_ID,
                    encryption_configuration=W.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn)),
            ),
        )

        self.named_queries: dict[str, athena.CfnNamedQuery] = {}
        for query in NAMED_QUERIES.values():
            named = athena.CfnNamedQuery(
                self, "".join(part.title() for part in query.name.split("_")),
                name=query.name,
                description=query.description,
                database=archive.database_name,
                query_string=named_query_sql(query.sql, query.table),
                work_group=self.workgroup.ref,  # Ref = workgroup name; orders the creation
            )
            for table in query.tables:
                named.node.add_dependency(tables[table])
            self.named_queries[query.name] = named
