"""Nightly billing recompute (Glue 5.0) and its reconciliation with the serving store.

Workflow `<prefix>-billing` (runs one at a time):
  Schedule  SCHEDULED trigger, `billing_schedule` (default cron(30 2 * * ? *) = 02:30 UTC: after
            the job's 2 h arrival cutoff and the archive's buffering) -> billing job with
            `--day auto`.
  Billing   glue_jobs/billing_job.py: reads the raw archive (arrival partitions of D-1 23h .. D+1
            cutoff, and for impression repeats the ~24 h before, under the same raw/clicks/
            prefix), applies the IVT rules (common/ivt.py) and replaces day D's partitions of
            `<billing bucket>/billing/{hourly,flagged}/`; with `--events_path` (raw/events/:
            impressions, conversions) also D's `billing/{events_hourly,conversions}/`, the
            conversions attributed to the clicks of the attribution window before D (raw/clicks/,
            and the earlier days' billing/{flagged,hourly}/: their verdicts). With
            `--budgets_table` (the budgets table, read on the driver: one Scan of its history)
            each campaign-day's billed cost is capped at its daily budget, the excess clicks
            flagged over_budget, and D's `billing/campaign_spend/` written (docs/budget.md).
  Reconcile CONDITIONAL trigger on the billing job SUCCEEDED -> glue_jobs/reconcile.py with
            `--day auto`: batch hourly rows vs the serving table's 1h series, the batch's
            campaign_spend vs the realtime lane's SB#<campaign>#1d spend, Parquet drift report
            under `reconciliation/drift/dt=D/`, metrics ClickAgg/TotalDrift and WorstDrift (and
            Impressions/Conversions/SpendTotalDrift, no alarm).
            Always there: reconciliation reads the realtime side from the DynamoDB serving
            table, and has no Timestream reader, so a Timestream serving store is refused
            (require_reconciliation: the stack raises) instead of deploying billing without
            reconciliation or drift alarm.

`--day auto`: a Glue trigger passes fixed arguments and cannot compute "yesterday", so both jobs
take `auto` to mean yesterday in UTC at the time the job starts (a manual rerun passes
`--day YYYY-MM-DD`). Job arguments use underscores (Glue's getResolvedOptions resolves those).

Both jobs: Glue 5.0 Spark (glueetl, Python 3.11), worker type/count from context for billing
(the planner's), 2 x G.1X for the reconciliation (a few thousand DynamoDB queries, no Spark).
Code: the script is an S3 asset of its .py file; the billing job gets `--extra-py-files` = a zip
staged at synth of glue_jobs/__init__.py + glue_jobs/billing/ (+ functions/common as `common`,
with its IVT data files common/ivt_data/*, which the billing job reads through the package
loader, and the serving store's core functions/serving/*.py as `serving`: the reconciliation
reads the serving table with its keys, item attributes and Queries).
Bookmarks are off (each run names its day; a rerun replaces the day). One security
configuration encrypts S3 writes (SSE-KMS), CloudWatch logs and bookmarks (CSE-KMS) with the
pipeline key; logs go to pre-created KMS log groups `/aws-glue/jobs/<prefix>-<job>/{output,error}`
(Glue 5.0's `--custom-logGroup-prefix`) with the pipeline's retention.

Output: its own bucket (SSE-KMS, versioned: a bad rerun can be undone for 30 days), so the
raw archive's cold-storage lifecycle never applies to billing data and the billing role never
writes to the raw archive. Glue catalog tables (Parquet, partition projection on dt) in the
archive database: billing_hourly, billing_flagged, billing_events_hourly, billing_conversions,
billing_campaign_spend (glue_jobs/billing/outputs.py), billing_drift.

Roles, one per job, named actions only: billing reads raw/clicks/ and raw/events/, reads the
budgets table (grant_read_data: its Scan) and writes billing*; reconciliation reads
billing/hourly/, billing/events_hourly/ and billing/campaign_spend/, writes reconciliation/,
Queries the serving table, puts
the day's summary item there (PutItem limited to partition key `R#reconciliation`, read by
GET /v1/quality), corrects on request (PutItem/UpdateItem limited to partition keys `S#*` and
`ADJ#*`: ads' series and the adjustments ledger, docs/corrections.md) and may put metrics in the
ClickAgg namespace only. Both may read their
workflow run's properties (`day`, set by POST /v1/reconcile; glue_jobs/workflow_day.py) and
import the same --extra-py-files zip. Both use the key, write their two log groups and
read their own code objects.

Failures: an EventBridge rule on "Glue Job State Change" (FAILED, TIMEOUT, ERROR) of these jobs
publishes to the alarm topic; alarm `<prefix>-billing-TotalDrift` fires when the day's total
drift exceeds glue_jobs.reconcile.DRIFT_THRESHOLD (0.1 %).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import jsii
from aws_cdk import (Acknowledgment, ArnFormat, AssetHashType, Aws, BundlingOptions, DockerImage,
                     Duration, ILocalBundling, RemovalPolicy, Stack, Validations)
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from common.archive import EVENTS, RAW_PREFIX
from glue_jobs.billing.outputs import (CAMPAIGN_SPEND, CAMPAIGN_SPEND_COLUMNS, CONVERSION_COLUMNS,
                                       CONVERSIONS, EVENTS_HOURLY, EVENTS_HOURLY_COLUMNS, FLAGGED,
                                       FLAGGED_COLUMNS, HOURLY, HOURLY_COLUMNS)
from glue_jobs.reconcile import DRIFT_THRESHOLD, METRICS_NAMESPACE, RECONCILIATION_PK
from glue_jobs.corrections import CORRECTION_LEADING_KEYS
from infra import FUNCTIONS_DIR, REPO_ROOT
from infra.constructs.archive import (PARQUET_INPUT, PARQUET_OUTPUT, PARQUET_SERDE, RawArchive)
from infra.constructs.buckets import data_bucket
from infra.constructs.serving_store import ServingStore
from infra.settings import StackSettings

GLUE_VERSION = "5.0"
GLUE_JOBS_DIR = REPO_ROOT / "glue_jobs"
BILLING_SCRIPT = GLUE_JOBS_DIR / "billing_job.py"
RECONCILE_SCRIPT = GLUE_JOBS_DIR / "reconcile.py"
DAY_AUTO = "auto"  # the jobs read it as yesterday (UTC) at start: see the module docstring
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
NONCURRENT_RETENTION = Duration.days(30)

# Layout of the billing bucket.
BILLING_PREFIX = "billing"  # --out_path; the job writes billing/<dataset>/ (outputs.TABLES)
REPORT_PREFIX = "reconciliation"  # the drift report: reconciliation/drift/dt=D/
DRIFT = "drift"

# The reconciliation: a small, fixed job (Queries per ad, no Spark work).
RECONCILE_WORKER_TYPE, RECONCILE_WORKERS = "G.1X", 2
RECONCILE_TIMEOUT_MIN = 60
BILLING_MAX_RETRIES = 1  # idempotent: a retry replaces the same day's partitions
RECONCILE_MAX_RETRIES = 0  # a retry of a flagged day only repeats the flag
FAILED_STATES = ("FAILED", "TIMEOUT", "ERROR")
DRIFT_ALARM_PERIOD = Duration.days(1)  # one datapoint per night: the alarm holds for a day

CODE_ACTIONS = ("s3:GetObject",)
BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation")
READ_OBJECT_ACTIONS = ("s3:GetObject",)
WRITE_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                        "s3:AbortMultipartUpload")
KMS_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:AssociateKmsKey", "logs:CreateLogStream",
               "logs:PutLogEvents")
SERVING_READ_ACTIONS = ("dynamodb:Query",)  # glue_jobs/reconcile.py queries, never scans
# the billing outputs the reconciliation reads (glue_jobs/reconcile.py run)
RECONCILED_DATASETS = (HOURLY, EVENTS_HOURLY, CAMPAIGN_SPEND)

# Catalog schemas: the billing job's datasets are glue_jobs/billing/outputs.py's (HOURLY_COLUMNS,
# FLAGGED_COLUMNS, ... imported above: tests/infra keep them equal to transform.py's literals);
# the drift report is glue_jobs/reconcile.py write_report's. dt is the partition.
DRIFT_COLUMNS = [
    ("ad_id", "string"), ("hour_start_ms", "bigint"), ("hour", "string"),
    ("batch_billable", "bigint"), ("realtime_billable", "bigint"), ("diff", "bigint"),
    ("batch_suspect", "bigint"), ("realtime_suspect", "bigint"), ("diff_suspect", "bigint"),
    ("batch_invalid", "bigint"), ("realtime_invalid", "bigint"), ("diff_invalid", "bigint"),
    ("drift_ratio", "double"), ("class", "string"), ("explained_late", "bigint"),
    ("explained_election", "bigint"), ("explained_impression_memory", "bigint"),
    ("explained_duplicates", "bigint"), ("unexplained", "bigint"),
    *[(f"{metric}_{column}", type_) for metric in ("impressions", "conversions") for column, type_ in (
        ("batch", "bigint"), ("realtime", "bigint"), ("diff", "bigint"), ("drift_ratio", "double"),
        ("class", "string"), ("explained_late", "bigint"), ("explained_duplicates", "bigint"),
        ("unexplained", "bigint"))],
    ("batch_conversion_value_micros", "bigint"), ("realtime_conversion_value_micros", "bigint"),
    ("diff_conversion_value_micros", "bigint"),
]
PROJECTION_START = "2026-01-01"  # = the raw table's (common.archive.partition_projection)
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


@jsii.implements(ILocalBundling)
class StageGlueLibrary:
    """The --extra-py-files zip: glue_jobs/{__init__,workflow_day}.py + glue_jobs/billing/ +
    common/ (its data files included: common/ivt_data/*, the IVT rules' lists) + serving/*.py
    (both jobs import glue_jobs.workflow_day and common; the billing job glue_jobs.billing; the
    reconciliation serving.keys and serving.table). Only the serving store's core, not its
    read/ and write/ sides (they import the query API and the sink)."""

    def __init__(self, glue_jobs_dir: Path, functions_dir: Path) -> None:
        self.glue_jobs_dir, self.functions_dir = glue_jobs_dir, functions_dir

    def try_bundle(self, output_dir: str, *args, **kwargs) -> bool:
        out = Path(output_dir)
        (out / "glue_jobs").mkdir(parents=True, exist_ok=True)
        for module in ("__init__.py", "workflow_day.py"):
            if (self.glue_jobs_dir / module).exists():
                shutil.copy2(self.glue_jobs_dir / module, out / "glue_jobs" / module)
        billing = self.glue_jobs_dir / "billing"
        if billing.is_dir():
            shutil.copytree(billing, out / "glue_jobs" / "billing", ignore=_IGNORE)
        shutil.copytree(self.functions_dir / "common", out / "common", ignore=_IGNORE)
        (out / "serving").mkdir(exist_ok=True)
        for module in sorted((self.functions_dir / "serving").glob("*.py")):
            shutil.copy2(module, out / "serving" / module.name)
        return True


@jsii.implements(events.IRuleTarget)
class AlarmTopicTarget:
    """Like aws_events_targets.SnsTopic, without its grant: that one lets any EventBridge rule
    publish (no SourceArn condition) and grants kms:GenerateDataKey*. Here the topic policy
    admits this rule only, and the key policy (infra.constructs.encryption) EventBridge."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self.topic, self.message = topic, message

    def bind(self, rule: events.IRule, id: Optional[str] = None) -> events.RuleTargetConfig:
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowBillingJobFailureEvents",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
        ))
        return events.RuleTargetConfig(arn=self.topic.topic_arn, input=self.message)


def _catalog_table(scope: Construct, id: str, *, archive: RawArchive, name: str,
                   description: str, columns: list[tuple[str, str]], location: str
                   ) -> glue.CfnTable:
    root = location.rstrip("/")
    table = glue.CfnTable(
        scope, id, catalog_id=Aws.ACCOUNT_ID,
        database_name=archive.database.ref,  # Ref = database name; orders the creation
        table_input=glue.CfnTable.TableInputProperty(
            name=name, description=description, table_type="EXTERNAL_TABLE",
            parameters={
                "classification": "parquet", "EXTERNAL": "TRUE",
                "projection.enabled": "true",
                "projection.dt.type": "date",
                "projection.dt.format": "yyyy-MM-dd",
                "projection.dt.range": f"{PROJECTION_START},NOW",
                "projection.dt.interval": "1",
                "projection.dt.interval.unit": "DAYS",
                "storage.location.template": f"{root}/dt=${{dt}}/",
            },
            partition_keys=[glue.CfnTable.ColumnProperty(name="dt", type="string")],
            storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in columns],
                location=f"{root}/",
                input_format=PARQUET_INPUT, output_format=PARQUET_OUTPUT,
                serde_info=glue.CfnTable.SerdeInfoProperty(
                    serialization_library=PARQUET_SERDE,
                    parameters={"serialization.format": "1"}),
                compressed=False, stored_as_sub_directories=False),
        ),
    )
    return table


class GlueJobLogs(Construct):
    """The two log groups Glue 5.0 writes with `--custom-logGroup-prefix`, KMS + retention."""

    def __init__(self, scope: Construct, id: str, *, prefix: str, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.prefix = prefix
        self.groups = [
            logs.LogGroup(self, kind.title(), log_group_name=f"{prefix}/{kind}",
                          retention=LOG_RETENTION, encryption_key=key,
                          removal_policy=RemovalPolicy.RETAIN)
            for kind in ("output", "error")]

    def grant(self, role: iam.IRole) -> None:
        stack = Stack.of(self)
        resources = []
        for group in self.groups:
            resources.append(group.log_group_arn)  # ...:log-group:NAME:* (its streams)
            resources.append(stack.format_arn(  # ...:log-group:NAME (group-level actions)
                service="logs", resource="log-group", resource_name=group.log_group_name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=list(LOG_ACTIONS), resources=resources))


# The serving stores glue_jobs/reconcile.py reads the realtime side from (DynamoDB Query).
RECONCILED_STORES = ("dynamodb",)


def require_reconciliation(serving_store: str) -> None:
    """Refuse a serving store the nightly reconciliation cannot read: reconciliation (and its
    drift alarm) is never silently absent."""
    if serving_store not in RECONCILED_STORES:
        raise ValueError(
            f"serving_store={serving_store} is refused: the nightly reconciliation "
            "(glue_jobs/reconcile.py) reads the realtime side from the DynamoDB serving table and "
            f"cannot read {serving_store}, so billing would deploy without reconciliation and "
            "drift alarm. Deploy serving_store=dynamodb (the default; Timestream for "
            "LiveAnalytics is closed to new AWS customers since 2025-06-20).")


class NightlyBilling(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 logs_bucket: s3.IBucket, archive: RawArchive, serving: ServingStore,
                 topic: sns.ITopic, budgets: dynamodb.ITable) -> None:
        require_reconciliation(serving.kind)
        super().__init__(scope, id)
        prefix = settings.prefix
        self.key = key
        self.bucket = data_bucket(
            self, "Bucket", key=key, logs_bucket=logs_bucket, log_prefix="billing/",
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(
                id="ExpireReplaced", noncurrent_version_expiration=NONCURRENT_RETENTION,
                abort_incomplete_multipart_upload_after=Duration.days(1))])
        self.out_path = f"s3://{self.bucket.bucket_name}/{BILLING_PREFIX}"
        self.report_path = f"s3://{self.bucket.bucket_name}/{REPORT_PREFIX}/{DRIFT}"
        self.raw_path = f"s3://{archive.bucket.bucket_name}/{RAW_PREFIX.rstrip('/')}"
        self.events_path = f"s3://{archive.bucket.bucket_name}/{EVENTS.prefix.rstrip('/')}"

        self.tables = {
            "billing_hourly": _catalog_table(
                self, "HourlyTable", archive=archive, name="billing_hourly",
                description="Nightly billing recompute: billable clicks/cost per ad and hour",
                columns=HOURLY_COLUMNS, location=f"{self.out_path}/{HOURLY}"),
            "billing_flagged": _catalog_table(
                self, "FlaggedTable", archive=archive, name="billing_flagged",
                description="Nightly billing recompute: clicks not billed (suspect / invalid "
                            "verdict and reasons, common/ivt.py)",
                columns=FLAGGED_COLUMNS, location=f"{self.out_path}/{FLAGGED}"),
            "billing_events_hourly": _catalog_table(
                self, "EventsHourlyTable", archive=archive, name="billing_events_hourly",
                description="Nightly billing recompute: impressions, conversions (attributed and "
                            "not, per reason) per ad and hour (docs/events.md)",
                columns=EVENTS_HOURLY_COLUMNS, location=f"{self.out_path}/{EVENTS_HOURLY}"),
            "billing_conversions": _catalog_table(
                self, "ConversionsTable", archive=archive, name="billing_conversions",
                description="Nightly billing recompute: every conversion with its click and "
                            "attribution (attributed, or why not)",
                columns=CONVERSION_COLUMNS, location=f"{self.out_path}/{CONVERSIONS}"),
            "billing_campaign_spend": _catalog_table(
                self, "CampaignSpendTable", archive=archive, name="billing_campaign_spend",
                description="Nightly billing recompute: per campaign and day, the daily budget, "
                            "valid (uncapped) and billed cost, over-budget clicks (docs/budget.md)",
                columns=CAMPAIGN_SPEND_COLUMNS, location=f"{self.out_path}/{CAMPAIGN_SPEND}"),
        }

        self.security_configuration = glue.CfnSecurityConfiguration(
            self, "SecurityConfiguration",
            name=f"{prefix}-billing",
            encryption_configuration=glue.CfnSecurityConfiguration
            .EncryptionConfigurationProperty(
                s3_encryptions=[glue.CfnSecurityConfiguration.S3EncryptionProperty(
                    s3_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn)],
                cloud_watch_encryption=glue.CfnSecurityConfiguration
                .CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration
                .JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=key.key_arn)))

        self.library = s3_assets.Asset(
            self, "BillingLibrary",
            path=str(GLUE_JOBS_DIR),
            asset_hash_type=AssetHashType.OUTPUT,
            bundling=BundlingOptions(
                image=DockerImage.from_registry("unused-local-bundling-only"),
                local=StageGlueLibrary(GLUE_JOBS_DIR, FUNCTIONS_DIR)))
        self.billing_job, self.billing_role = self._billing_job(settings, archive, budgets)
        self.workflow = glue.CfnWorkflow(
            self, "Workflow", name=f"{prefix}-billing", max_concurrent_runs=1,
            description="Nightly: billing recompute of yesterday (UTC), then reconciliation; "
                        "POST /v1/reconcile starts a run with run property day=YYYY-MM-DD")
        self.workflow_arn = Stack.of(self).format_arn(
            service="glue", resource="workflow", resource_name=self.workflow.ref,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME)
        self._grant_run_properties(self.billing_role)
        self.schedule = glue.CfnTrigger(
            self, "Schedule",
            name=f"{prefix}-billing-nightly",
            description="Starts the billing recompute of yesterday (--day auto)",
            type="SCHEDULED", schedule=settings.billing_schedule, start_on_creation=True,
            workflow_name=self.workflow.ref,
            actions=[glue.CfnTrigger.ActionProperty(
                job_name=self.billing_job.ref, arguments={"--day": DAY_AUTO})])

        self._reconciliation(settings, archive, serving, topic)
        self._failure_events(topic)

    # --- jobs -------------------------------------------------------------------------------

    def _role(self, id: str, description: str, job_logs: GlueJobLogs,
              code: list[s3_assets.Asset]) -> iam.Role:
        role = iam.Role(self, id, assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
                        description=description)
        self.key.grant(role, *KMS_ACTIONS)
        job_logs.grant(role)
        role.add_to_policy(iam.PolicyStatement(  # its code objects only, not the asset bucket
            actions=list(CODE_ACTIONS),
            resources=[a.bucket.arn_for_objects(a.s3_object_key) for a in code]))
        return role

    def _job(self, id: str, *, name: str, description: str, role: iam.Role,
             script: s3_assets.Asset, job_logs: GlueJobLogs, worker_type: str, workers: int,
             timeout_min: int, max_retries: int, arguments: dict[str, str]) -> glue.CfnJob:
        job = glue.CfnJob(
            self, id,
            name=name, description=description,
            role=role.role_arn,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=script.s3_object_url),
            glue_version=GLUE_VERSION,
            worker_type=worker_type, number_of_workers=workers,
            timeout=timeout_min, max_retries=max_retries,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            security_configuration=self.security_configuration.ref,
            default_arguments={
                "--job-language": "python",
                "--job-bookmark-option": "job-bookmark-disable",
                "--custom-logGroup-prefix": job_logs.prefix,
                "--day": DAY_AUTO,
                **arguments,
            },
        )
        # Glue checks the role when the job is created and reads code at run: policies first.
        job.node.add_dependency(role)
        return job

    def _grant_run_properties(self, role: iam.IRole) -> None:
        """The jobs read the day a run was started for (glue_jobs/workflow_day.py)."""
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["glue:GetWorkflowRunProperties"], resources=[self.workflow_arn]))

    def _billing_job(self, settings: StackSettings, archive: RawArchive, budgets: dynamodb.ITable
                     ) -> tuple[glue.CfnJob, iam.Role]:
        if not BILLING_SCRIPT.is_file():
            raise ValueError(f"{BILLING_SCRIPT} is missing: the billing job's entry point")
        script = s3_assets.Asset(self, "BillingScript", path=str(BILLING_SCRIPT))
        library = self.library
        job_logs = GlueJobLogs(self, "BillingLogs", key=self.key,
                               prefix=f"/aws-glue/jobs/{settings.prefix}-billing")
        role = self._role("BillingRole",
                          "clickagg billing Glue job: read the raw archive, write billing/",
                          job_logs, [script, library])
        raw_objects = archive.bucket.arn_for_objects(f"{RAW_PREFIX}*")
        events_objects = archive.bucket.arn_for_objects(f"{EVENTS.prefix}*")
        # EMRFS writes `<dir>_$folder$` markers next to directories: billing* covers billing/
        # and its marker, in the dedicated billing bucket.
        billing_objects = self.bucket.arn_for_objects(f"{BILLING_PREFIX}*")
        for bucket in (archive.bucket, self.bucket):
            role.add_to_policy(iam.PolicyStatement(
                actions=list(BUCKET_ACTIONS), resources=[bucket.bucket_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=list(READ_OBJECT_ACTIONS), resources=[raw_objects, events_objects]))
        role.add_to_policy(iam.PolicyStatement(
            actions=list(WRITE_OBJECT_ACTIONS), resources=[billing_objects]))
        # the budget history (glue_jobs/billing/budgets.py: one Scan on the driver); the table's
        # key is the pipeline key the role already uses
        budgets.grant_read_data(role)
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(archive.bucket)}.Arn>/"
                   f"{RAW_PREFIX}*]",
                reason="The job reads the arrival partitions (dt=/hr=) of the day it recomputes: "
                       "object reads are limited to the raw/clicks/ prefix of the archive."),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(archive.bucket)}.Arn>/"
                   f"{EVENTS.prefix}*]",
                reason="The job reads the events archive's arrival partitions (dt=/hr=) of the "
                       "day it recomputes: object reads are limited to its raw/events/ prefix."),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(self.bucket)}.Arn>/"
                   f"{BILLING_PREFIX}*]",
                reason="Spark names its output files (part-*, _temporary/, EMRFS _$folder$ "
                       "markers) and replaces a day's partition: writes/deletes are limited to "
                       "the billing prefix of the dedicated billing bucket."),
        )
        job = self._job(
            "BillingJob", name=f"{settings.prefix}-billing",
            description="Billing recompute of one UTC day from the raw archive "
                        "(--day YYYY-MM-DD | auto = yesterday)",
            role=role, script=script, job_logs=job_logs,
            worker_type=settings.billing_glue_worker_type, workers=settings.billing_glue_workers,
            timeout_min=settings.billing_glue_timeout_min, max_retries=BILLING_MAX_RETRIES,
            arguments={
                "--extra-py-files": library.s3_object_url,
                "--raw_path": self.raw_path,
                "--events_path": self.events_path,
                "--out_path": self.out_path,
                "--budgets_table": budgets.table_name,
                # common.schema's settings of the job (BillingSettings): cutoff_hours,
                # burst_threshold and the stream's repeat window, lateness and watermark delay
                # (the late rule, for the reconciliation's late_beyond_lateness class)
                **settings.glue_arguments(),
                "--write_flagged": "true",
            })
        self.billing_logs = job_logs
        return job, role

    def _reconciliation(self, settings: StackSettings, archive: RawArchive,
                        serving: ServingStore, topic: sns.ITopic) -> None:
        assert serving.table is not None
        self.tables["billing_drift"] = _catalog_table(
            self, "DriftTable", archive=archive, name="billing_drift",
            description="Reconciliation: billing recompute vs the realtime store, per ad/hour",
            columns=DRIFT_COLUMNS, location=self.report_path)
        script = s3_assets.Asset(self, "ReconcileScript", path=str(RECONCILE_SCRIPT))
        job_logs = GlueJobLogs(self, "ReconcileLogs", key=self.key,
                               prefix=f"/aws-glue/jobs/{settings.prefix}-reconcile")
        role = self._role("ReconcileRole",
                          "clickagg reconciliation Glue job: billing rows vs serving table",
                          job_logs, [script, self.library])
        self._grant_run_properties(role)
        hourly_objects = [self.bucket.arn_for_objects(f"{BILLING_PREFIX}/{dataset}/*")
                          for dataset in RECONCILED_DATASETS]
        report_objects = self.bucket.arn_for_objects(f"{REPORT_PREFIX}/*")
        role.add_to_policy(iam.PolicyStatement(
            actions=list(BUCKET_ACTIONS), resources=[self.bucket.bucket_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=list(READ_OBJECT_ACTIONS), resources=hourly_objects))
        role.add_to_policy(iam.PolicyStatement(
            actions=list(WRITE_OBJECT_ACTIONS), resources=[report_objects]))
        # the table only: the reconciliation reads whole boards (the L2 grant would add index/*,
        # and the rank index is the query API's)
        role.add_to_policy(iam.PolicyStatement(
            actions=list(SERVING_READ_ACTIONS), resources=[serving.table.table_arn]))
        # the day's summary for GET /v1/quality: one put, only under its own partition key
        role.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:PutItem"], resources=[serving.table.table_arn],
            conditions={"ForAllValues:StringEquals": {
                "dynamodb:LeadingKeys": [RECONCILIATION_PK]}}))
        # corrections on request (glue_jobs/corrections.py): a TransactWriteItems per ad whose
        # Update/Put are authorised as UpdateItem/PutItem, only on ads' series partitions
        # (S#<ad>#<res>: not SC#/SV#/SB#, leaderboards, META) and the adjustments ledger (ADJ#<day>)
        role.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:PutItem", "dynamodb:UpdateItem"], resources=[serving.table.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(CORRECTION_LEADING_KEYS)}}))
        role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}))
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="cloudwatch:PutMetricData has no resource-level permissions; the "
                       f"statement is limited to the {METRICS_NAMESPACE} namespace by its "
                       "cloudwatch:namespace condition. Every other statement names ARNs."),
            *[Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(self.bucket)}.Arn>/"
                   f"{BILLING_PREFIX}/{dataset}/*]",
                reason=f"The reconciliation reads the billing job's {dataset} rows of its day "
                       f"(Spark-named part files): reads are limited to billing/{dataset}/.")
              for dataset in RECONCILED_DATASETS],
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(self.bucket)}.Arn>/"
                   f"{REPORT_PREFIX}/*]",
                reason="The reconciliation replaces its day's drift report (dt=D/drift.parquet "
                       "+ summary): writes are limited to the reconciliation/ prefix."),
        )
        self.reconcile_role = role
        self.reconcile_job = self._job(
            "ReconcileJob", name=f"{settings.prefix}-reconcile",
            description="Reconciliation of one UTC day's billing recompute with the serving "
                        "store (--day YYYY-MM-DD | auto = yesterday)",
            role=role, script=script, job_logs=job_logs,
            worker_type=RECONCILE_WORKER_TYPE, workers=RECONCILE_WORKERS,
            timeout_min=RECONCILE_TIMEOUT_MIN, max_retries=RECONCILE_MAX_RETRIES,
            arguments={
                "--extra-py-files": self.library.s3_object_url,
                "--out_path": self.out_path,
                "--report_path": self.report_path,
                "--table": serving.table.table_name,
                "--threshold": str(DRIFT_THRESHOLD),
                "--emit_metrics": "true",
                "--publish": "true",
            })
        self.reconcile_logs = job_logs
        self.after_billing = glue.CfnTrigger(
            self, "AfterBilling",
            name=f"{settings.prefix}-billing-reconcile",
            description="Reconciles the day once its billing recompute succeeded",
            type="CONDITIONAL", start_on_creation=True,
            workflow_name=self.workflow.ref,
            predicate=glue.CfnTrigger.PredicateProperty(conditions=[
                glue.CfnTrigger.ConditionProperty(
                    job_name=self.billing_job.ref, logical_operator="EQUALS",
                    state="SUCCEEDED")]),
            actions=[glue.CfnTrigger.ActionProperty(
                job_name=self.reconcile_job.ref, arguments={"--day": DAY_AUTO})])

        self.drift_alarm = cw.Alarm(
            self, "TotalDriftAlarm",
            alarm_name=f"{settings.prefix}-billing-TotalDrift",
            alarm_description=(
                f"{METRICS_NAMESPACE}/TotalDrift > {DRIFT_THRESHOLD}: the realtime billable "
                "total of a day differs from the nightly recompute by more than 0.1 %; see the "
                "day's drift report (Athena table billing_drift)"),
            metric=self.total_drift_metric(),
            threshold=DRIFT_THRESHOLD, evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
        self.drift_alarm.add_alarm_action(cw_actions.SnsAction(topic))

    @staticmethod
    def total_drift_metric(period: Duration = DRIFT_ALARM_PERIOD) -> cw.Metric:
        return cw.Metric(namespace=METRICS_NAMESPACE, metric_name="TotalDrift",
                         statistic="Maximum", period=period)

    @staticmethod
    def worst_drift_metric(period: Duration = DRIFT_ALARM_PERIOD) -> cw.Metric:
        return cw.Metric(namespace=METRICS_NAMESPACE, metric_name="WorstDrift",
                         statistic="Maximum", period=period)

    # --- failures ---------------------------------------------------------------------------

    @property
    def job_names(self) -> list[str]:
        return [job.name for job in (self.billing_job, self.reconcile_job) if job.name]

    def _failure_events(self, topic: sns.ITopic) -> None:
        job = events.EventField.from_path("$.detail.jobName")
        state = events.EventField.from_path("$.detail.state")
        run = events.EventField.from_path("$.detail.jobRunId")
        message = events.EventField.from_path("$.detail.message")
        self.failure_rule = events.Rule(
            self, "JobFailed",
            description="Billing/reconciliation Glue job run failed or timed out -> alarm topic",
            event_pattern=events.EventPattern(
                source=["aws.glue"], detail_type=["Glue Job State Change"],
                detail={"jobName": self.job_names, "state": list(FAILED_STATES)}),
            targets=[AlarmTopicTarget(topic, events.RuleTargetInput.from_text(
                f"Glue job {job} run {run} ended {state}: {message}. The day's billing "
                "output (or drift report) was not replaced; rerun with --day YYYY-MM-DD."))],
        )


def _logical_id(bucket: s3.IBucket) -> str:
    """The logical id cdk-nag prints for the bucket (its findings name `<Id.Arn>`)."""
    return Stack.of(bucket).get_logical_id(bucket.node.default_child)
