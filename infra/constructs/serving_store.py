"""The serving store the sink writes and the query API reads: Timestream or DynamoDB (context
`serving_store`), behind one interface: `wiring` (the store's resource names, for
StackSettings.lambda_env), `env` (what every user of the store reads: common.config
ServingSettings, functions/serving), `grant_write` (sink) and `grant_read` (query).

DynamoDB is the default and the only store the stack deploys: the nightly reconciliation reads
the realtime side from it, so ClickAggStack refuses `serving_store=timestream`
(infra.constructs.billing.require_reconciliation). The Timestream branch is kept for the day the
reconciliation can read Timestream; tests build it on this construct alone.

Timestream for LiveAnalytics: database `<prefix>-serving`, table `aggregates`,
KMS with the pipeline key. The memory store keeps `timestream_memory_retention_hours` (default
48 h, so a 1d bucket still upserts in memory until it is final), the magnetic store
`timestream_magnetic_retention_days`. Magnetic-store writes are on (a Flink replay writes
buckets older than the memory window); records rejected asynchronously there are reported to an
encrypted bucket. NOTE: Timestream for LiveAnalytics is closed to new AWS customers since
2025-06-20.

DynamoDB: table `<prefix>-serving`, string keys pk/sk (serving.keys), the global secondary
index `rank` (pk, rk: the leaderboards in rank order; the query API reads it, the sink's
writes maintain it with no grant of their own), TTL on `ttl` (1m
rows and late counters), point-in-time recovery, KMS with the pipeline key. Capacity from
context (infra.constructs.table_capacity): on-demand by default, provisioned with write and
read autoscaling (`serving_min_rcu`..`serving_max_rcu`) where the planner says so.
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_timestream as timestream
from constructs import Construct

from infra.constructs.buckets import data_bucket, expire_rule
from serving.keys import RANK_ATTR, RANK_INDEX
from infra.constructs.table_capacity import TableCapacity
from infra.settings import StackSettings

TIMESTREAM_TABLE = "aggregates"
TTL_ATTRIBUTE = "ttl"
REJECTED_PREFIX = "timestream-rejected/"
REJECTED_RETENTION = Duration.days(90)
# Writers/readers of a CMK-encrypted store: named KMS actions (no GenerateDataKey*/ReEncrypt*).
WRITE_KMS_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
READ_KMS_ACTIONS = ("kms:Decrypt",)
DYNAMODB_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem")
DYNAMODB_READ_ACTIONS = ("dynamodb:Query", "dynamodb:BatchGetItem")  # BatchGetItem: freshness slots
# Timestream's SDK discovers its cell endpoint first; DescribeEndpoints takes only Resource '*'.
DESCRIBE_ENDPOINTS_REASON = ("timestream:DescribeEndpoints (endpoint discovery, called by every "
                             "Timestream SDK client before any read/write) supports only "
                             "Resource '*'.")


class ServingStore(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 logs_bucket: s3.IBucket) -> None:
        super().__init__(scope, id)
        self.kind = settings.serving_store
        self.key = key
        self.table: dynamodb.Table | None = None
        self.timestream_database: timestream.CfnDatabase | None = None
        self.timestream_table: timestream.CfnTable | None = None
        self.rejected_bucket: s3.Bucket | None = None
        if self.kind == "dynamodb":
            self._dynamodb(settings)
        else:
            self._timestream(settings, logs_bucket)

    # --- the two stores ---------------------------------------------------------------------

    def _dynamodb(self, settings: StackSettings) -> None:
        self.capacity = TableCapacity(
            mode=settings.serving_capacity_mode, min_wcu=settings.serving_min_wcu,
            max_wcu=settings.serving_max_wcu,
            target_utilization_pct=settings.dynamodb_target_utilization_pct,
            min_rcu=settings.serving_min_rcu, max_rcu=settings.serving_max_rcu)
        self.table = dynamodb.Table(
            self, "Table",
            table_name=settings.names.serving_table,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            removal_policy=RemovalPolicy.RETAIN,
            **self.capacity.table_props(),
        )
        # leaderboard entries in rank order (serving.keys: sorted access for top-K); only live
        # entries and commit markers carry rk, so the index holds nothing else
        self.table.add_global_secondary_index(
            index_name=RANK_INDEX,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=RANK_ATTR, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL)
        self.capacity.autoscale(self.table)
        # FRESHNESS_SLOTS: the sink writes and the query API reads the same slots (serving.keys)
        self.wiring = {"serving_table": self.table.table_name}
        self.env = settings.env_of("serving_store", "freshness_slots", **self.wiring)

    def _timestream(self, settings: StackSettings, logs_bucket: s3.IBucket) -> None:
        self.rejected_bucket = data_bucket(
            self, "RejectedRecords", key=self.key, logs_bucket=logs_bucket,
            log_prefix="timestream-rejected/", versioned=False,
            lifecycle_rules=[expire_rule(REJECTED_RETENTION)])
        database = timestream.CfnDatabase(
            self, "Database", database_name=settings.names.serving_table,
            kms_key_id=self.key.key_arn)
        table = timestream.CfnTable(
            self, "Table",
            database_name=database.ref,  # Ref = database name; also orders the creation
            table_name=TIMESTREAM_TABLE,
            retention_properties={  # CloudFormation takes them as strings
                "MemoryStoreRetentionPeriodInHours":
                    str(settings.timestream_memory_retention_hours),
                "MagneticStoreRetentionPeriodInDays":
                    str(settings.timestream_magnetic_retention_days),
            },
            magnetic_store_write_properties={
                "EnableMagneticStoreWrites": True,
                "MagneticStoreRejectedDataLocation": {"S3Configuration": {
                    "BucketName": self.rejected_bucket.bucket_name,
                    "ObjectKeyPrefix": REJECTED_PREFIX,
                    "EncryptionOption": "SSE_KMS",
                    "KmsKeyId": self.key.key_arn,
                }},
            },
        )
        for resource in (database, table):
            resource.apply_removal_policy(RemovalPolicy.RETAIN)
            Validations.of(resource).acknowledge(Acknowledgment(
                id="CloudFormation-Validate::W3697",
                reason="Timestream for LiveAnalytics is in maintenance mode (closed to new "
                       "customers since 2025-06-20): kept for accounts that have it, though "
                       "the stack refuses it until reconciliation can read it.",
            ))
        self.timestream_database, self.timestream_table = database, table
        self.wiring = {"timestream_database": database.ref, "timestream_table": TIMESTREAM_TABLE}
        self.env = settings.env_of("serving_store", **self.wiring)

    # --- grants -----------------------------------------------------------------------------

    @property
    def star_resource_reasons(self) -> tuple[str, ...]:
        """Why a grantee's role has a Resource '*' statement (see build_python_function)."""
        return (DESCRIBE_ENDPOINTS_REASON,) if self.kind == "timestream" else ()

    def grant_write(self, grantee: iam.IGrantable) -> None:
        """The sink: version-conditional puts + freshness updates, or Timestream WriteRecords."""
        if self.table is not None:  # the table only: DynamoDB maintains the rank index itself
            iam.Grant.add_to_principal(grantee=grantee, actions=list(DYNAMODB_WRITE_ACTIONS),
                                       resource_arns=[self.table.table_arn])
        else:
            self._grant_timestream(grantee, "timestream:WriteRecords")
        self.key.grant(grantee, *WRITE_KMS_ACTIONS)

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """The query API: Query/BatchGetItem, or Timestream SELECT on the one table."""
        if self.table is not None:  # the table and its rank index (serving.read.ranked)
            iam.Grant.add_to_principal(grantee=grantee, actions=list(DYNAMODB_READ_ACTIONS), resource_arns=[
                self.table.table_arn, f"{self.table.table_arn}/index/{RANK_INDEX}"])
        else:
            self._grant_timestream(grantee, "timestream:Select")
        self.key.grant(grantee, *READ_KMS_ACTIONS)

    def _grant_timestream(self, grantee: iam.IGrantable, action: str) -> None:
        assert self.timestream_table is not None
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=[action], resources=[self.timestream_table.attr_arn]))
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["timestream:DescribeEndpoints"], resources=["*"]))

