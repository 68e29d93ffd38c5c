"""Rebuild from the archive on AWS (docs/rebuild.md "On AWS"): a second Managed Flink application
that runs the rebuild job for one range at a time, and the state machine that drives a run.

Application `<prefix>-rebuild` (FLINK-1_20): the SAME code asset as the stream job (one zip,
FlinkAggregator.code), run options `python = aggregate/job/rebuild_main.py` and the same jar; the
`clickagg` property group equal to the stream job's (the same SQL's settings), a `rebuild` group
that `prepare` replaces per run (idle: generation 0). Parallelism `rebuild_parallelism`, one task
per KPU (the sort aggregates are CPU-bound), no autoscaling, no checkpoints and no snapshots (a
batch job: a failed run is rerun as a new generation). Logs to its own KMS log group. Its role
reads the archive's raw/clicks/ and raw/events/ and its code, and writes only rebuild/ of the
rebuild bucket; no stream, no table.

Rebuild bucket: a dedicated bucket (SSE-KMS with the pipeline key, TLS only, access-logged),
not the archive's: the archive is the truth (versioned, tiered to cold storage, read by billing),
a rebuild's rows are scratch that expires after OUTPUT_RETENTION, and the application's role
then needs no write access to the archive bucket at all.

State machine `<prefix>-rebuild` (input {"start": "2026-12-05", "end": "2026-12-06"}):
    Prepare (Lambda: range final? generation, `rebuild` group, StartApplication)
    -> poll every POLL for <out>_SUCCESS (ListObjectsV2), at most MAX_POLLS times; between polls
       the application must still be STARTING/RUNNING/UPDATING/AUTOSCALING
    -> StopApplication (the finished job does not end the application)
    -> LoadPhase1: Distributed Map over <out>rows/phase=1/ (leaderboards, late counters, 1h
       and 1d series; one load_file Lambda per file, at most `rebuild_load_concurrency` at once;
       results to the bucket's rebuild/map-results/)
    -> CommitPhase1 (Lambda: markers, late sweep, run record): the day is visible at hour and
       day resolution and in every top-K
    -> LoadPhase2 over <out>rows/phase=2/ (the 1m and 5m series) -> CommitPhase2 (the run
       record's final counts) -> Rebuilt
Prepare refusing (not final, application busy, bad input) fails at once: nothing was started.
Any failure after the start stops the application (force) and fails with the cause. The
Lambdas are invoked synchronously by the state machine (no asynchronous edge, so no DLQ: a
failure is the execution's, retried per state and reported by it).
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, ArnFormat, Duration, RemovalPolicy, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisanalyticsv2 as flink
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from aggregate.job.rebuild import IDLE_GENERATION, PHASES, REBUILD_GROUP
from common.archive import CLICKS, EVENTS
from common.schema import REBUILD
from infra.constructs.aggregator import (CODE_ACTIONS, JAR_IN_ZIP, JOB_GROUP, LOG_RETENTION,
                                         RUN_OPTIONS, build_application,
                                         grant_application_logging)
from infra.constructs.archive import RawArchive
from infra.constructs.buckets import data_bucket, expire_rule
from infra.constructs.python_function import asset_exclude, build_python_function
from infra.constructs.serving_store import WRITE_KMS_ACTIONS, ServingStore
from infra.settings import StackSettings

ENTRY = "aggregate/job/rebuild_main.py"
OUT_PREFIX = "rebuild/"  # rebuild/gen=<generation>/rows/part-*, rebuild/gen=<generation>/_SUCCESS
MAP_RESULTS_PREFIX = "rebuild/map-results"
OUTPUT_RETENTION = Duration.days(14)
POLL = Duration.seconds(60)
MAX_POLLS = 360  # 6 h: a day at the default parallelism takes ~30 min (docs/rebuild.md)
RUNNING_STATES = ("STARTING", "RUNNING", "UPDATING", "AUTOSCALING")

HANDLERS = "serving.rebuild.handlers"
# the loader and the sink's store (serving core + write), the job's range rules
# (aggregate/job/rebuild.py and the pure modules it imports), not the Flink pipeline itself
ASSET_EXCLUDE = asset_exclude(
    "common", "aggregate/*.py", "aggregate/job/__init__.py", "aggregate/job/rebuild.py",
    "aggregate/job/settings.py", "aggregate/job/sql.py", "serving/*.py", "serving/write",
    "serving/rebuild")
BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation")
READ_OBJECT_ACTIONS = ("s3:GetObject",)
WRITE_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
OUTPUT_KMS_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
PREPARE_FLINK_ACTIONS = ("kinesisanalytics:DescribeApplication",
                         "kinesisanalytics:UpdateApplication",
                         "kinesisanalytics:StartApplication")
COMMIT_TABLE_ACTIONS = ("dynamodb:PutItem", "dynamodb:Query", "dynamodb:DeleteItem")


def rebuild_property_groups(job_group: dict[str, str]) -> dict[str, dict[str, str]]:
    """The application's groups: run options, the stream job's settings, an idle run."""
    return {RUN_OPTIONS: {"python": ENTRY, "jarfile": JAR_IN_ZIP},
            JOB_GROUP: dict(job_group),
            REBUILD_GROUP: {"generation": str(IDLE_GENERATION)}}


class ArchiveRebuild(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 code: s3_assets.Asset, job_group: dict[str, str], archive: RawArchive,
                 store: ServingStore, logs_bucket: s3.IBucket) -> None:
        """`code`: the stream job's zip asset (FlinkAggregator.code); `job_group`: its
        `clickagg` property group (FlinkAggregator.property_groups)."""
        super().__init__(scope, id)
        if store.table is None:
            raise ValueError("the rebuild loads into the DynamoDB serving store only")
        stack = Stack.of(self)
        self.application_name = f"{settings.prefix}-rebuild"
        self.application_arn = stack.format_arn(
            service="kinesisanalytics", resource="application", resource_name=self.application_name)
        self.bucket = data_bucket(
            self, "Bucket", key=key, logs_bucket=logs_bucket, log_prefix="rebuild/",
            versioned=False, lifecycle_rules=[expire_rule(OUTPUT_RETENTION)])
        self._application(settings, key, code, job_group, archive)
        self._functions(settings, key, archive, store)
        self._state_machine(settings, key)

    # --- the Managed Flink application --------------------------------------------------------
    def _application(self, settings: StackSettings, key: kms.IKey, code: s3_assets.Asset,
                     job_group: dict[str, str], archive: RawArchive) -> None:
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, encryption_key=key,
                                       removal_policy=RemovalPolicy.RETAIN)
        log_stream = logs.LogStream(self, "LogStream", log_group=self.log_group,
                                    removal_policy=RemovalPolicy.RETAIN)
        log_stream_arn = Stack.of(self).format_arn(
            service="logs", resource="log-group",
            resource_name=f"{self.log_group.log_group_name}:log-stream:{log_stream.log_stream_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("kinesisanalytics.amazonaws.com"),
            description="clickagg rebuild application: read the raw archive, write rebuild/ rows")
        role = self.role
        for bucket in (archive.bucket, self.bucket):
            role.add_to_policy(iam.PolicyStatement(actions=list(BUCKET_ACTIONS),
                                                   resources=[bucket.bucket_arn]))
        raw = [archive.bucket.arn_for_objects(f"{CLICKS.prefix}*"),
               archive.bucket.arn_for_objects(f"{EVENTS.prefix}*")]
        role.add_to_policy(iam.PolicyStatement(actions=list(READ_OBJECT_ACTIONS), resources=raw))
        role.add_to_policy(iam.PolicyStatement(
            actions=list(WRITE_OBJECT_ACTIONS),
            resources=[self.bucket.arn_for_objects(f"{OUT_PREFIX}*")]))
        key.grant(role, *OUTPUT_KMS_ACTIONS)  # archive reads, output writes (one pipeline key)
        role.add_to_policy(iam.PolicyStatement(
            actions=list(CODE_ACTIONS), resources=[code.bucket.arn_for_objects(code.s3_object_key)]))
        grant_application_logging(role, self.log_group, log_stream_arn)
        archive_id = _logical_id(archive.bucket)
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{archive_id}.Arn>/{CLICKS.prefix}*]",
                reason="The rebuild reads the arrival partitions (dt=/hr=) of the range it "
                       "recomputes: object reads are limited to the raw/clicks/ prefix."),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{archive_id}.Arn>/{EVENTS.prefix}*]",
                reason="The rebuild reads the events archive's arrival partitions of its range: "
                       "object reads are limited to the raw/events/ prefix."),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id(self.bucket)}.Arn>/{OUT_PREFIX}*]",
                reason="Flink's file sink names its part files and writes _SUCCESS per run: "
                       "writes are limited to the rebuild/ prefix of the dedicated rebuild bucket."),
        )

        self.application, _ = build_application(
            self, name=self.application_name,
            description="clickagg: rebuild a range from the raw archive (batch, started per "
                        "range by the rebuild state machine)",
            role=role, code=code, property_groups=rebuild_property_groups(job_group),
            log_stream_arn=log_stream_arn,
            # a batch job: nothing to checkpoint or snapshot; a failed run is rerun
            checkpoints=flink.CfnApplication.CheckpointConfigurationProperty(
                configuration_type="CUSTOM", checkpointing_enabled=False),
            parallelism=flink.CfnApplication.ParallelismConfigurationProperty(
                configuration_type="CUSTOM", parallelism=settings.rebuild_parallelism,
                parallelism_per_kpu=1, auto_scaling_enabled=False),
            snapshots=False,
            run=flink.CfnApplication.RunConfigurationProperty(
                application_restore_configuration=flink.CfnApplication
                .ApplicationRestoreConfigurationProperty(
                    application_restore_type="SKIP_RESTORE_FROM_SNAPSHOT")))

    # --- the Lambdas ----------------------------------------------------------------------------
    def _function(self, id: str, settings: StackSettings, key: kms.IKey, *, handler: str,
                  description: str, role_description: str, memory_mb: int, timeout: Duration,
                  environment: dict[str, str]) -> lambda_.Function:
        scope = Construct(self, id)
        built = build_python_function(
            scope, settings=settings, key=key, handler=f"{HANDLERS}.{handler}",
            exclude=ASSET_EXCLUDE, description=description, role_description=role_description,
            service="rebuild", memory_mb=memory_mb, timeout=timeout, environment=environment)
        return built.function

    def _functions(self, settings: StackSettings, key: kms.IKey, archive: RawArchive,
                   store: ServingStore) -> None:
        table = store.table
        env = settings.lambda_env(REBUILD, **store.wiring, rebuild_application=self.application_name,
                                  rebuild_bucket=self.bucket.bucket_name,
                                  archive_bucket=archive.bucket.bucket_name)
        self.prepare = self._function(
            "PrepareFunction", settings, key, handler="prepare",
            description="Rebuild: check the range, take a generation, start the application",
            role_description="clickagg rebuild prepare: generation counter, the rebuild "
                             "application's properties and start",
            memory_mb=256, timeout=Duration.minutes(2), environment=env)
        iam.Grant.add_to_principal(grantee=self.prepare, actions=["dynamodb:UpdateItem"],
                                   resource_arns=[table.table_arn])
        key.grant(self.prepare, *WRITE_KMS_ACTIONS)
        self.prepare.add_to_role_policy(iam.PolicyStatement(
            actions=list(PREPARE_FLINK_ACTIONS), resources=[self.application_arn]))

        self.load_file = self._function(
            "LoadFileFunction", settings, key, handler="load_file",
            description="Rebuild: load one output file into the serving table",
            role_description="clickagg rebuild load: read rebuild/ rows, write the serving table",
            memory_mb=1024, timeout=Duration.minutes(15), environment=env)
        store.grant_write(self.load_file)  # the sink's store writes + the per-file record
        self.load_file.add_to_role_policy(iam.PolicyStatement(
            actions=list(READ_OBJECT_ACTIONS),
            resources=[self.bucket.arn_for_objects(f"{OUT_PREFIX}*")]))
        Validations.of(self.load_file.role).acknowledge(Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::<{_logical_id(self.bucket)}.Arn>/{OUT_PREFIX}*]",
            reason="One invocation per output file of a run, whose names Flink chooses: reads "
                   "are limited to the rebuild/ prefix of the dedicated rebuild bucket."))

        self.commit = self._function(
            "CommitFunction", settings, key, handler="commit",
            description="Rebuild: commit markers, late sweep, run record",
            role_description="clickagg rebuild commit: markers, stale late counters, run record",
            memory_mb=512, timeout=Duration.minutes(15), environment=env)
        iam.Grant.add_to_principal(grantee=self.commit, actions=list(COMMIT_TABLE_ACTIONS),
                                   resource_arns=[table.table_arn])
        key.grant(self.commit, *WRITE_KMS_ACTIONS)

    # --- the state machine ----------------------------------------------------------------------
    def _state_machine(self, settings: StackSettings, key: kms.IKey) -> None:
        failed = sfn.Fail(self, "Failed", error_path="$.error.Error", cause_path="$.error.Cause")
        stop_after_failure = tasks.CallAwsService(
            self, "StopAfterFailure", service="kinesisanalyticsv2", action="stopApplication",
            parameters={"ApplicationName": self.application_name, "Force": True},
            iam_resources=[self.application_arn], iam_action="kinesisanalytics:StopApplication",
            result_path=sfn.JsonPath.DISCARD)
        # stopping fails when the application is not running any more: fail with the cause
        stop_after_failure.add_catch(failed, result_path="$.stop_error").next(failed)

        def on_failure(state) -> None:
            state.add_catch(stop_after_failure, result_path="$.error")

        prepare = tasks.LambdaInvoke(self, "Prepare", lambda_function=self.prepare,
                                     payload_response_only=True, result_path="$.run")
        prepare.add_catch(sfn.Fail(self, "Refused", error_path="$.error.Error",
                                   cause_path="$.error.Cause"), result_path="$.error")
        start_polling = sfn.Pass(self, "StartPolling", result=sfn.Result.from_object({"count": 0}),
                                 result_path="$.polls")
        wait = sfn.Wait(self, "WaitForJob", time=sfn.WaitTime.duration(POLL))
        find_success = tasks.CallAwsService(
            self, "FindSuccess", service="s3", action="listObjectsV2",
            parameters={"Bucket": self.bucket.bucket_name,
                        "Prefix": sfn.JsonPath.string_at("$.run.success_key"), "MaxKeys": 1},
            iam_resources=[self.bucket.bucket_arn], iam_action="s3:ListBucket",
            result_selector={"count.$": "$.KeyCount"}, result_path="$.success")
        on_failure(find_success)
        count_poll = sfn.Pass(self, "CountPoll", parameters={
            "count.$": "States.MathAdd($.polls.count, 1)"}, result_path="$.polls")
        timed_out = sfn.Pass(self, "TimedOut", result=sfn.Result.from_object({
            "Error": "RebuildTimedOut",
            "Cause": f"no _SUCCESS after {MAX_POLLS} polls of {POLL.to_seconds()} s"}),
            result_path="$.error")
        status = tasks.CallAwsService(
            self, "ApplicationStatus", service="kinesisanalyticsv2", action="describeApplication",
            parameters={"ApplicationName": self.application_name},
            iam_resources=[self.application_arn],
            iam_action="kinesisanalytics:DescribeApplication",
            result_selector={"status.$": "$.ApplicationDetail.ApplicationStatus"},
            result_path="$.application")
        on_failure(status)
        ended = sfn.Pass(self, "JobEndedWithoutSuccess", parameters={
            "Error": "RebuildJobFailed",
            "Cause.$": "States.Format('the application is {} and wrote no _SUCCESS: see its "
                       "log group', $.application.status)"}, result_path="$.error")
        stop = tasks.CallAwsService(
            self, "StopApplication", service="kinesisanalyticsv2", action="stopApplication",
            parameters={"ApplicationName": self.application_name, "Force": True},
            iam_resources=[self.application_arn], iam_action="kinesisanalytics:StopApplication",
            result_path=sfn.JsonPath.DISCARD)
        on_failure(stop)
        # phase 1 (boards, late counters, 1h/1d series), committed: the day is visible at hour
        # and day resolution and in every top-K; then phase 2 (1m/5m series), committed again
        # (the run record's final counts; its markers are already there)
        load = self._load_phase(PHASES[0], settings, on_failure)
        tail = load
        for phase in PHASES:
            commit = tasks.LambdaInvoke(
                self, f"CommitPhase{phase}", lambda_function=self.commit,
                payload_response_only=True, payload=sfn.TaskInput.from_object({
                    "generation": sfn.JsonPath.number_at("$.run.generation"),
                    "start_ms": sfn.JsonPath.number_at("$.run.start_ms"),
                    "end_ms": sfn.JsonPath.number_at("$.run.end_ms")}),
                result_path="$.result")
            on_failure(commit)
            tail = tail.next(commit)
            if phase != PHASES[-1]:
                tail = tail.next(self._load_phase(phase + 1, settings, on_failure))
        tail.next(sfn.Succeed(self, "Rebuilt"))

        definition = (prepare.next(start_polling).next(wait).next(find_success).next(
            sfn.Choice(self, "JobFinished?")
            .when(sfn.Condition.number_greater_than("$.success.count", 0),
                  stop.next(load))
            .otherwise(count_poll.next(
                sfn.Choice(self, "WithinTimeLimit?")
                .when(sfn.Condition.number_greater_than_equals("$.polls.count", MAX_POLLS),
                      timed_out.next(stop_after_failure))
                .otherwise(status.next(
                    sfn.Choice(self, "StillRunning?")
                    .when(sfn.Condition.or_(*(sfn.Condition.string_equals("$.application.status", s)
                                              for s in RUNNING_STATES)), wait)
                    .otherwise(ended.next(stop_after_failure))))))))

        self.state_machine_log_group = logs.LogGroup(
            self, "StateMachineLogs", retention=LOG_RETENTION, encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine", state_machine_name=f"{settings.prefix}-rebuild",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            logs=sfn.LogOptions(destination=self.state_machine_log_group, level=sfn.LogLevel.ALL),
            tracing_enabled=True,
            # the job's polls, then the load and the commit
            timeout=Duration.seconds(POLL.to_seconds() * MAX_POLLS).plus(Duration.hours(6)))
        # the map's result files in the KMS bucket
        key.grant(self.state_machine, "kms:Decrypt", "kms:GenerateDataKey")
        self._acknowledge_state_machine_grants()

    def _load_phase(self, phase: int, settings: StackSettings, on_failure) -> sfn.DistributedMap:
        """One load phase: a Distributed Map over the phase's rows, one load_file per file,
        `rebuild_load_concurrency` at once (the capacity planner sizes it for the table's
        headroom over the stream's writes)."""
        load_file = tasks.LambdaInvoke(self, f"LoadFilePhase{phase}", lambda_function=self.load_file,
                                       payload_response_only=True)
        # a throttled or timed-out file is loaded again (idempotent); bad data is not retried
        load_file.add_retry(errors=["RuntimeError", "ClientError", "Sandbox.Timedout"],
                            interval=Duration.seconds(30), max_attempts=3, backoff_rate=2)
        load = sfn.DistributedMap(
            self, f"LoadPhase{phase}",
            item_reader=sfn.S3ObjectsItemReader(
                bucket=self.bucket, prefix=sfn.JsonPath.string_at(f"$.run.phase{phase}_prefix")),
            item_selector={"bucket": self.bucket.bucket_name,
                           "key": sfn.JsonPath.string_at("$$.Map.Item.Value.Key"),
                           "generation": sfn.JsonPath.number_at("$.run.generation"),
                           "start_ms": sfn.JsonPath.number_at("$.run.start_ms"),
                           "end_ms": sfn.JsonPath.number_at("$.run.end_ms")},
            max_concurrency=settings.rebuild_load_concurrency,
            result_writer_v2=sfn.ResultWriterV2(bucket=self.bucket, prefix=MAP_RESULTS_PREFIX),
            result_path=sfn.JsonPath.DISCARD)
        load.item_processor(load_file)
        on_failure(load)
        return load

    def _acknowledge_state_machine_grants(self) -> None:
        """The wildcards CDK's own grants give the state machine's role (LambdaInvoke,
        ResultWriterV2, DistributedMap, logging and tracing), each on this construct's
        resources only."""
        stack = Stack.of(self)
        machine = stack.get_logical_id(self.state_machine.node.default_child)
        # the finding names literal values when the stack has a concrete environment
        partition, region, account = (
            f"<AWS::{name}>" if Token.is_unresolved(value) else value
            for name, value in (("Partition", stack.partition), ("Region", stack.region),
                                ("AccountId", stack.account)))
        executions = (f'arn:{partition}:states:{region}:{account}:execution:'
                      f'{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{machine}"}}]}}]}}')
        acks = [Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(fn.node.default_child)}.Arn>:*]",
            reason="CDK's LambdaInvoke grant: this one function and its versions/aliases "
                   "(ARN:*); the state machine invokes nothing else.")
            for fn in (self.prepare, self.load_file, self.commit)]
        acks += [
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<{_logical_id(self.bucket)}>/*]",
                reason="The Distributed Map's result writer (ResultWriterV2's grant) writes its "
                       "manifests into the dedicated rebuild bucket, which holds only scratch "
                       "output of rebuild runs (rows, _SUCCESS, map results) that expires."),
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Logging to CloudWatch (logs:*LogDelivery, DescribeLogGroups, "
                       "DescribeResourcePolicies, PutResourcePolicy) and X-Ray tracing "
                       "(xray:Put*, GetSampling*) support no resource-level permissions; CDK "
                       "adds them for the state machine's logs and tracing."),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{executions}:*]",
                reason="A Distributed Map runs child executions of this state machine; their "
                       "ARNs are generated per run: describe/stop only this machine's."),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{executions}/*:*]",
                reason="Redriving the Distributed Map's child executions of this state machine "
                       "(CDK's grant): their ARNs are generated per run."),
        ]
        Validations.of(self.state_machine).acknowledge(*acks)


def _logical_id(bucket: s3.IBucket) -> str:
    """The logical id cdk-nag prints for the bucket (its findings name `<Id.Arn>`)."""
    return Stack.of(bucket).get_logical_id(bucket.node.default_child)
