"""The Managed Service for Apache Flink application (runtime FLINK-1_20, PyFlink SQL job).

There is no stable L2 for Managed Flink (the alpha package is not a dependency), so this is the
L1 `CfnApplication` plus our own least-privilege service execution role.

Code: EXACTLY the application zip Maven builds (`make setup`: `mvn -q -B -f
functions/aggregate/pom.xml package`, layout in functions/aggregate/assembly.xml), deployed as
one file asset (no staging here, so what is deployed is what Maven packed and tests/flink runs):
    aggregate/__init__.py, aggregate/job/*.py   the job (entry aggregate/job/main.py)
    common/*.py                                  shared pure code (record schema, config)
    lib/clickagg-flink-deps.jar                  connector uber-jar (shade output)
named in the `kinesis.analytics.flink.run.options` property group (python + jarfile), as the
aws-samples PyFlink examples do. Context `flink_app_zip` is its path. Synth FAILS (raises
FlinkApplicationZipError) when the zip is missing, lacks the entry point or the jar, or is stale:
older than, or not byte-equal to, the Python sources it packs (then run `make setup`).

Runtime properties (flink_property_groups below) follow the job's contract in
functions/aggregate/job/settings.py: one group `clickagg` keyed by JobSettings' field names,
derived from the one schema (common.schema: every context setting with a `flink` name -
lateness, watermark delay, repeat window, leaderboard size, click_id TTL, mini-batch latency,
the shared ones the same values the query API gets) plus this deployment's wiring
(environment=aws, region, clicks/aggregates stream ARNs, TRIM_HORIZON on a start without
snapshot). Checkpoints, snapshots and parallelism are the service's (CUSTOM, from context); logs
go to a KMS-encrypted log group.

Checkpoints (seed 001): every `flink_checkpoint_interval_ms` (10 s) with at least
`flink_min_pause_between_checkpoints_ms` (5 s) between the end of one and the start of the next.
Their mode is EXACTLY_ONCE and the state backend RocksDB (incremental, asynchronous snapshots):
both are fixed by Managed Flink (not modifiable: no CheckpointConfiguration property exists for
them, and setting them in the job's code has no effect), as are one concurrent checkpoint and a
60 min timeout (Managed Flink developer guide, "Apache Flink settings").

CloudFormation creates the application but does not start it (Managed Flink has no
"start on create" property): after the first deploy run
`aws kinesisanalyticsv2 start-application --application-name <prefix>-aggregator`.
Running-application storage and snapshots use Managed Flink's AWS-owned key; a customer-managed
key (ApplicationEncryptionConfiguration) needs key-policy statements for two Managed Flink
service principals and is left for a follow-up.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from aws_cdk import Acknowledgment, ArnFormat, Aws, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisanalyticsv2 as flink
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from common import schema
from infra import FUNCTIONS_DIR, REPO_ROOT
from infra.settings import StackSettings

RUNTIME = "FLINK-1_20"
ENTRY = "aggregate/job/main.py"
JAR_IN_ZIP = "lib/clickagg-flink-deps.jar"
RUN_OPTIONS = "kinesis.analytics.flink.run.options"
JOB_GROUP = schema.FLINK_PROPERTY_GROUP  # the one group the job reads
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# Reading a KMS stream needs Decrypt; producing to one needs GenerateDataKey (named actions,
# instead of grant_write's kms:GenerateDataKey*/kms:ReEncrypt* wildcards).
SINK_STREAM_ACTIONS = ("kinesis:PutRecord", "kinesis:PutRecords", "kinesis:ListShards",
                       "kinesis:DescribeStream", "kinesis:DescribeStreamSummary")
SINK_KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
CODE_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
BUILD_COMMAND = "mvn -q -B -f functions/aggregate/pom.xml package"
_COLON_RESOURCE_NAME = ArnFormat.COLON_RESOURCE_NAME  # arn:...:log-group:NAME (not /NAME)


class FlinkApplicationZipError(ValueError):
    """The application zip cannot be deployed as it is: synth stops with this message."""


def application_zip_sources(functions_dir: Path = FUNCTIONS_DIR) -> dict[str, Path]:
    """Zip member -> the source file assembly.xml packs into it (the Python part of the zip)."""
    aggregate, common = functions_dir / "aggregate", functions_dir / "common"
    packed = [aggregate / "__init__.py", *aggregate.glob("job/*.py"), *common.glob("*.py")]
    return {p.relative_to(functions_dir).as_posix(): p for p in sorted(packed) if p.is_file()}


def verify_application_zip(path: Path, functions_dir: Path = FUNCTIONS_DIR) -> None:
    """Raise FlinkApplicationZipError unless `path` is a current build of the application zip:
    it exists, holds the entry point and the connector jar, is not older than any source it
    packs (the Makefile's rebuild rule) and its Python files are exactly today's sources (also
    catches a deleted or renamed module, which make's timestamps miss)."""
    rebuild = f"run `make setup` (or `{BUILD_COMMAND}`)"
    if not path.is_file():
        raise FlinkApplicationZipError(
            f"Managed Flink application zip {path} not found: {rebuild} to build it "
            "(context flink_app_zip names it)")
    if not zipfile.is_zipfile(path):
        raise FlinkApplicationZipError(f"{path} is not a zip file: {rebuild}")
    with zipfile.ZipFile(path) as archive:
        infos = {i.filename: i for i in archive.infolist() if not i.is_dir()}
        for member, what in ((ENTRY, "the job's entry point"),
                             (JAR_IN_ZIP, "the connector jar")):
            if member not in infos or infos[member].file_size == 0:
                raise FlinkApplicationZipError(
                    f"{path} lacks {member} ({what}): the application would not start; "
                    f"{rebuild}")
        sources = application_zip_sources(functions_dir)
        built = path.stat().st_mtime
        newer = sorted(m for m, src in sources.items() if src.stat().st_mtime > built)
        if newer:
            raise FlinkApplicationZipError(
                f"{path} is stale: older than {', '.join(newer)}; {rebuild}")
        packed = {m for m in infos if m.endswith(".py")}
        differ = sorted((packed ^ set(sources))
                        | {m for m in packed & set(sources)
                           if archive.read(m) != sources[m].read_bytes()})
        if differ:
            raise FlinkApplicationZipError(
                f"{path} is stale: its {', '.join(differ)} differ from functions/ "
                f"(changed, added or deleted); {rebuild}")


def flink_property_groups(settings: StackSettings, source: kinesis.IStream,
                          sink: kinesis.IStream,
                          events: kinesis.IStream | None = None) -> dict[str, dict[str, str]]:
    """Group id -> properties (all values strings). The job reads the one group JOB_GROUP,
    keyed by its JobSettings field names, and rejects unknown keys there. Its settings come
    from the schema (StackSettings.flink_properties: every context setting the job has, e.g.
    allowed_lateness_s, flink_dedup_ttl_s as dedup_ttl_s); here only the deployment's wiring.
    Parallelism and checkpoints are the service's (see below), not job properties."""
    return {
        RUN_OPTIONS: {"python": ENTRY, "jarfile": JAR_IN_ZIP},
        JOB_GROUP: settings.flink_properties(
            environment="aws",
            aws_region=Aws.REGION,
            clicks_stream_arn=source.stream_arn,
            aggregates_stream_arn=sink.stream_arn,
            **({"events_stream_arn": events.stream_arn} if events is not None else {}),
            source_init_position="TRIM_HORIZON",  # a start without snapshot reads it all
        ),
    }


def build_application(scope: Construct, *, name: str, description: str, role: iam.IRole,
                      code: s3_assets.Asset, property_groups: dict[str, dict[str, str]],
                      log_stream_arn: str, checkpoints, parallelism, snapshots: bool,
                      run) -> tuple[flink.CfnApplication, flink.CfnApplicationCloudWatchLoggingOption]:
    """One Managed Flink application of the project's zip (the stream job's here, the rebuild's
    in infra.constructs.rebuild): runtime, code, property groups, monitoring and its log stream,
    as children "Application" and "Logging" of `scope`; the caller chooses checkpoints,
    parallelism, snapshots and how a start restores."""
    application = flink.CfnApplication(
        scope, "Application",
        application_name=name,
        application_description=description,
        runtime_environment=RUNTIME,
        service_execution_role=role.role_arn,
        application_configuration=flink.CfnApplication.ApplicationConfigurationProperty(
            application_code_configuration=flink.CfnApplication
            .ApplicationCodeConfigurationProperty(
                code_content_type="ZIPFILE",
                code_content=flink.CfnApplication.CodeContentProperty(
                    s3_content_location=flink.CfnApplication.S3ContentLocationProperty(
                        bucket_arn=code.bucket.bucket_arn, file_key=code.s3_object_key))),
            environment_properties=flink.CfnApplication.EnvironmentPropertiesProperty(
                property_groups=[
                    flink.CfnApplication.PropertyGroupProperty(
                        property_group_id=group, property_map=properties)
                    for group, properties in property_groups.items()]),
            flink_application_configuration=flink.CfnApplication
            .FlinkApplicationConfigurationProperty(
                checkpoint_configuration=checkpoints,
                parallelism_configuration=parallelism,
                monitoring_configuration=flink.CfnApplication.MonitoringConfigurationProperty(
                    configuration_type="CUSTOM", log_level="INFO", metrics_level="APPLICATION")),
            application_snapshot_configuration=flink.CfnApplication
            .ApplicationSnapshotConfigurationProperty(snapshots_enabled=snapshots),
        ),
        run_configuration=run,
    )
    # Managed Flink checks at create time that the role can read the code: policy first.
    application.node.add_dependency(role)
    logging_option = flink.CfnApplicationCloudWatchLoggingOption(
        scope, "Logging",
        application_name=application.ref,  # Ref = application name; orders creation
        cloud_watch_logging_option=flink.CfnApplicationCloudWatchLoggingOption
        .CloudWatchLoggingOptionProperty(log_stream_arn=log_stream_arn))
    return application, logging_option


class FlinkAggregator(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 source: kinesis.IStream, sink: kinesis.IStream,
                 events: kinesis.IStream | None = None) -> None:
        """`source`: clicks; `events`: impressions and conversions (POST /v1/events)."""
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.application_name = f"{settings.prefix}-aggregator"

        self.zip_path = REPO_ROOT / settings.flink_app_zip  # an absolute path stays as is
        verify_application_zip(self.zip_path)
        # A .zip file is uploaded as it is (packaging FILE), keyed by its content hash.
        self.code = s3_assets.Asset(self, "Code", path=str(self.zip_path))

        self.log_group = logs.LogGroup(
            self, "Logs", retention=LOG_RETENTION, encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN)
        self.log_stream = logs.LogStream(
            self, "LogStream", log_group=self.log_group, removal_policy=RemovalPolicy.RETAIN)
        log_stream_arn = stack.format_arn(
            service="logs", resource="log-group",
            resource_name=f"{self.log_group.log_group_name}:log-stream:"
                          f"{self.log_stream.log_stream_name}",
            arn_format=_COLON_RESOURCE_NAME)

        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("kinesisanalytics.amazonaws.com"),
            description="clickagg Flink aggregator: read clicks and events, write aggregates, "
                        "read its code")
        self._grant(key=key, sources=[source] + ([events] if events is not None else []),
                    sink=sink, log_stream_arn=log_stream_arn)
        # also the rebuild application's (infra.constructs.rebuild): the same job settings
        self.property_groups = flink_property_groups(settings, source, sink, events)

        self.application, self.logging_option = build_application(
            self, name=self.application_name,
            description="clickagg: event-time windowed click aggregation (PyFlink)",
            role=self.role, code=self.code, property_groups=self.property_groups,
            log_stream_arn=log_stream_arn,
            # Mode EXACTLY_ONCE and the RocksDB state backend are the service's fixed values (no
            # property for either); CUSTOM makes it take the two below.
            checkpoints=flink.CfnApplication.CheckpointConfigurationProperty(
                configuration_type="CUSTOM",
                checkpointing_enabled=True,
                checkpoint_interval=settings.flink_checkpoint_interval_ms,
                min_pause_between_checkpoints=settings.flink_min_pause_between_checkpoints_ms),
            parallelism=flink.CfnApplication.ParallelismConfigurationProperty(
                configuration_type="CUSTOM",
                parallelism=settings.flink_parallelism,
                parallelism_per_kpu=settings.flink_parallelism_per_kpu,
                auto_scaling_enabled=settings.flink_autoscaling),
            snapshots=True,
            run=flink.CfnApplication.RunConfigurationProperty(
                application_restore_configuration=flink.CfnApplication
                .ApplicationRestoreConfigurationProperty(
                    application_restore_type="RESTORE_FROM_LATEST_SNAPSHOT"),
                flink_run_configuration=flink.CfnApplication.FlinkRunConfigurationProperty(
                    allow_non_restored_state=False)))

    def _grant(self, *, key: kms.IKey, sources: list[kinesis.IStream], sink: kinesis.IStream,
               log_stream_arn: str) -> None:
        for source in sources:
            source.grant_read(self.role)  # kinesis reads + kms:Decrypt on the stream's key
        sink.grant(self.role, *SINK_STREAM_ACTIONS)
        key.grant(self.role, *SINK_KMS_ACTIONS)
        # The code zip only (not the whole bootstrap bucket), as Managed Flink's docs grant it.
        self.role.add_to_policy(iam.PolicyStatement(
            actions=list(CODE_ACTIONS),
            resources=[self.code.bucket.arn_for_objects(self.code.s3_object_key)]))
        grant_application_logging(self.role, self.log_group, log_stream_arn)


def grant_application_logging(role: iam.Role, log_group: logs.ILogGroup, log_stream_arn: str) -> None:
    """Managed Flink's documented logging permissions (this application's and the rebuild's):
    find the group, then its stream, then write to that stream only."""
    # Managed Flink's documented logging permissions: find the group, then its stream.
    # Pseudo parameters, not stack.region/account: the ARN (and so the acknowledged finding
    # below) reads the same whether or not the stack has a concrete environment.
    role.add_to_policy(iam.PolicyStatement(
        actions=["logs:DescribeLogGroups"],
        resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"]))
    role.add_to_policy(iam.PolicyStatement(
        actions=["logs:DescribeLogStreams"], resources=[log_group.log_group_arn]))
    role.add_to_policy(iam.PolicyStatement(
        actions=["logs:PutLogEvents"], resources=[log_stream_arn]))
    Validations.of(role).acknowledge(Acknowledgment(
        id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
           "<AWS::AccountId>:log-group:*]",
        reason="logs:DescribeLogGroups, which Managed Flink calls to find its log group, "
               "authorizes only on log-group:* (it lists); it reveals names, not events.",
    ))
