"""The rebuild on AWS (infra/constructs/rebuild.py): the second Managed Flink application, its
role, the three Lambdas and their grants, the state machine's states in the order its definition
runs them. cdk-nag: test_infra_nag.py synthesizes the whole app (this construct included)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from common import schema
from infra.settings import StackSettings

APP = "AWS::KinesisAnalyticsV2::Application"
HANDLERS = "serving.rebuild.handlers"


def render(value) -> str:
    """A CloudFormation value as text, logical ids without their hash: `RebuildBucket.Arn/...`."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(render(v) for v in value)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{value['Fn::GetAtt'][0]}.{value['Fn::GetAtt'][1]}>"
    if "Fn::Join" in value:
        return "".join(render(v) for v in value["Fn::Join"][1])
    if "Fn::Select" in value:
        return "<select>"
    return json.dumps(value)


def unhash(text: str) -> str:
    return re.sub(r"([A-Za-z])[0-9A-F]{8}(?=[.>])", r"\1", text)


def statements(template, role_prefix: str) -> set[tuple[tuple[str, ...], str]]:
    """(sorted actions, resource) of every statement of the role's policies."""
    out = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = [r["Ref"] for r in policy["Properties"]["Roles"]]
        if not any(r.startswith(role_prefix) for r in roles):
            continue
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert s["Effect"] == "Allow" and "Condition" not in s
            actions = tuple(sorted(s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            for r in resources:
                out.add((actions, unhash(render(r))))
    return out


def apps(template) -> dict[str, dict]:
    return {k: r["Properties"] for k, r in template.find_resources(APP).items()}


def rebuild_app(template) -> dict:
    [app] = [p for k, p in apps(template).items() if k.startswith("RebuildApplication")]
    return app


def groups(app: dict) -> dict[str, dict]:
    return {g["PropertyGroupId"]: g["PropertyMap"]
            for g in app["ApplicationConfiguration"]["EnvironmentProperties"]["PropertyGroups"]}


def test_rebuild_application_runs_the_stream_jobs_zip_with_its_settings(default_template):
    app = rebuild_app(default_template)
    [stream] = [p for k, p in apps(default_template).items() if k.startswith("AggregatorApplication")]
    assert (app["ApplicationName"], app["RuntimeEnvironment"]) == ("clickagg-rebuild", "FLINK-1_20")
    code = app["ApplicationConfiguration"]["ApplicationCodeConfiguration"]
    assert code == stream["ApplicationConfiguration"]["ApplicationCodeConfiguration"]  # one zip
    assert code["CodeContentType"] == "ZIPFILE"
    g = groups(app)
    assert set(g) == {"kinesis.analytics.flink.run.options", "clickagg", "rebuild"}
    assert g["kinesis.analytics.flink.run.options"] == {
        "python": "aggregate/job/rebuild_main.py", "jarfile": "lib/clickagg-flink-deps.jar"}
    assert g["clickagg"] == groups(stream)["clickagg"]  # the same SQL's settings
    assert g["rebuild"] == {"generation": "0"}  # idle until prepare sets a run
    flink = app["ApplicationConfiguration"]["FlinkApplicationConfiguration"]
    assert flink["ParallelismConfiguration"] == {
        "ConfigurationType": "CUSTOM", "Parallelism": 4, "ParallelismPerKPU": 1,
        "AutoScalingEnabled": False}
    assert flink["CheckpointConfiguration"] == {"ConfigurationType": "CUSTOM",
                                                "CheckpointingEnabled": False}
    assert app["ApplicationConfiguration"]["ApplicationSnapshotConfiguration"] == {
        "SnapshotsEnabled": False}
    assert app["RunConfiguration"] == {"ApplicationRestoreConfiguration": {
        "ApplicationRestoreType": "SKIP_RESTORE_FROM_SNAPSHOT"}}


def test_rebuild_parallelism_and_name_follow_the_context(custom_template):
    app = rebuild_app(custom_template)
    assert app["ApplicationName"] == "ca-test-rebuild"
    assert app["ApplicationConfiguration"]["FlinkApplicationConfiguration"][
        "ParallelismConfiguration"]["Parallelism"] == 16
    assert groups(app)["clickagg"]["allowed_lateness_s"] == "600"
    [sm] = custom_template.find_resources("AWS::StepFunctions::StateMachine").values()
    states = json.loads(unhash(render(sm["Properties"]["DefinitionString"])))["States"]
    assert [states[f"LoadPhase{p}"]["MaxConcurrency"] for p in (1, 2)] == [37, 37]


def test_the_entry_is_packed_in_the_zip_both_applications_deploy(repo_root):
    with zipfile.ZipFile(repo_root / StackSettings().flink_app_zip) as archive:
        packed = archive.read("aggregate/job/rebuild_main.py")
    assert packed == (repo_root / "functions/aggregate/job/rebuild_main.py").read_bytes()


def test_the_application_role_reads_raw_and_its_code_and_writes_only_rebuild(default_template):
    got = statements(default_template, "RebuildRole")
    logs = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
    expected = {
        (("s3:GetBucketLocation", "s3:ListBucket"), "<ArchiveBucket.Arn>"),
        (("s3:GetBucketLocation", "s3:ListBucket"), "<RebuildBucket.Arn>"),
        (("s3:GetObject",), "<ArchiveBucket.Arn>/raw/clicks/*"),
        (("s3:GetObject",), "<ArchiveBucket.Arn>/raw/events/*"),
        (("s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"),
         "<RebuildBucket.Arn>/rebuild/*"),
        (("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"), "<EncryptionKey.Arn>"),
        (("logs:DescribeLogGroups",), f"{logs}*"),
        (("logs:DescribeLogStreams",), "<RebuildLogs.Arn>"),
        (("logs:PutLogEvents",), f"{logs}<RebuildLogs>:log-stream:<RebuildLogStream>"),
    }
    code = {s for s in got if s[0] == ("s3:GetObject", "s3:GetObjectVersion")}
    assert len(code) == 1 and next(iter(code))[1].endswith(".zip")  # the code object only
    assert got - code == expected


def test_the_lambda_roles_have_exactly_their_grants(default_template):
    table, key = "<ServingTable.Arn>", "<EncryptionKey.Arn>"
    kms = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
    app = "arn:<AWS::Partition>:kinesisanalytics:<AWS::Region>:<AWS::AccountId>:application/clickagg-rebuild"

    def own(prefix):  # without the log group write and X-Ray every function has
        return {s for s in statements(default_template, prefix)
                if not s[0][0].startswith(("logs:", "xray:"))}

    assert own("RebuildPrepareFunctionRole") == {
        (("dynamodb:UpdateItem",), table), (kms, key),
        (("kinesisanalytics:DescribeApplication", "kinesisanalytics:StartApplication",
          "kinesisanalytics:UpdateApplication"), app)}
    assert own("RebuildLoadFileFunctionRole") == {
        (("dynamodb:PutItem", "dynamodb:UpdateItem"), table), (kms, key),
        (("s3:GetObject",), "<RebuildBucket.Arn>/rebuild/*")}
    assert own("RebuildCommitFunctionRole") == {
        (("dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Query"), table), (kms, key)}


def function(template, handler: str) -> dict:
    [fn] = [r["Properties"] for r in template.find_resources("AWS::Lambda::Function").values()
            if r["Properties"]["Handler"] == f"{HANDLERS}.{handler}"]
    return fn


def test_the_lambdas_environment_is_the_schemas_rebuild_view(default_template):
    env = function(default_template, "prepare")["Environment"]["Variables"]
    assert {k: unhash(render(v)) for k, v in env.items()} == {
        "SERVING_TABLE": "<ServingTable>", "MINUTE_TTL_S": str(schema.default("minute_ttl_s")),
        "FRESHNESS_SLOTS": "16", "BILLING_CUTOFF_HOURS": "2",
        "REBUILD_APPLICATION": "clickagg-rebuild", "REBUILD_BUCKET": "<RebuildBucket>",
        "ARCHIVE_BUCKET": "<ArchiveBucket>", "POWERTOOLS_SERVICE_NAME": "rebuild",
        "POWERTOOLS_METRICS_NAMESPACE": "ClickAgg"}
    for handler, timeout, memory in (("prepare", 120, 256), ("load_file", 900, 1024),
                                     ("commit", 900, 512)):
        fn = function(default_template, handler)
        assert (fn["Timeout"], fn["MemorySize"]) == (timeout, memory), handler
        assert fn["Environment"] == function(default_template, "prepare")["Environment"]


def test_the_lambda_asset_holds_what_the_handlers_import(default_app, default_template, tmp_path):
    key = function(default_template, "load_file")["Code"]["S3Key"]
    asset = Path(default_app.synth().directory) / f"asset.{key.removesuffix('.zip')}"
    files = {str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file()}
    assert {f.split("/")[0] for f in files} == {"common", "aggregate", "serving"}
    assert {f for f in files if f.startswith("aggregate/job/")} == {
        "aggregate/job/__init__.py", "aggregate/job/rebuild.py", "aggregate/job/settings.py",
        "aggregate/job/sql.py"}  # the range rules, not the Flink pipeline or its entries
    assert not any(f.startswith("serving/read/") for f in files)
    # the asset alone imports (the Powertools layer's libraries come from this venv)
    probe = subprocess.run([sys.executable, "-c", f"import {HANDLERS}"], cwd=tmp_path,
                           env={"PYTHONPATH": str(asset), "AWS_DEFAULT_REGION": "us-east-1",
                                "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr


# --- the state machine ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def machine(default_template) -> dict:
    [sm] = [r["Properties"] for r in default_template.find_resources(
        "AWS::StepFunctions::StateMachine").values()]
    sm["Definition"] = json.loads(unhash(render(sm["DefinitionString"])))
    return sm


def test_states_run_in_order_and_failures_after_the_start_stop_the_application(machine):
    states = machine["Definition"]["States"]
    assert machine["Definition"]["StartAt"] == "Prepare"

    def path(start: str) -> list[str]:
        out, name = [], start
        while name and name not in out:
            out.append(name)
            name = states[name].get("Next")
        return out

    assert path("Prepare") == ["Prepare", "StartPolling", "WaitForJob", "FindSuccess", "JobFinished?"]
    finished = states["JobFinished?"]
    assert finished["Choices"] == [{"Variable": "$.success.count", "NumericGreaterThan": 0,
                                    "Next": "StopApplication"}]
    # phase 1 loaded and committed (the day visible at 1h/1d and in every top-K), then phase 2
    assert path("StopApplication") == ["StopApplication", "LoadPhase1", "CommitPhase1", "LoadPhase2",
                                       "CommitPhase2", "Rebuilt"]
    assert finished["Default"] == "CountPoll"
    assert path("CountPoll") == ["CountPoll", "WithinTimeLimit?"]
    assert states["WithinTimeLimit?"]["Choices"] == [{
        "Variable": "$.polls.count", "NumericGreaterThanEquals": 360, "Next": "TimedOut"}]
    assert states["WithinTimeLimit?"]["Default"] == "ApplicationStatus"
    assert states["ApplicationStatus"]["Next"] == "StillRunning?"
    assert states["StillRunning?"]["Choices"][0]["Next"] == "WaitForJob"  # the loop
    assert [c["StringEquals"] for c in states["StillRunning?"]["Choices"][0]["Or"]] == [
        "STARTING", "RUNNING", "UPDATING", "AUTOSCALING"]
    assert states["JobEndedWithoutSuccess"]["Next"] == states["TimedOut"]["Next"] == "StopAfterFailure"
    assert path("StopAfterFailure") == ["StopAfterFailure", "Failed"]
    assert states["Failed"] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
    # prepare refusing: nothing started, fail at once; everything after the start: stop first
    assert [c["Next"] for c in states["Prepare"]["Catch"]] == ["Refused"]
    for name in ("FindSuccess", "ApplicationStatus", "StopApplication", "LoadPhase1", "CommitPhase1",
                 "LoadPhase2", "CommitPhase2"):
        assert states[name]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                                          "Next": "StopAfterFailure"}], name
    assert states["StopAfterFailure"]["Catch"][0]["Next"] == "Failed"
    assert states["WaitForJob"]["Seconds"] == 60


def test_the_aws_calls_name_the_rebuild_application_and_bucket_only(machine):
    states = machine["Definition"]["States"]
    for name in ("StopApplication", "StopAfterFailure"):
        assert states[name]["Resource"].endswith(":states:::aws-sdk:kinesisanalyticsv2:stopApplication")
        assert states[name]["Parameters"] == {"ApplicationName": "clickagg-rebuild", "Force": True}
    assert states["ApplicationStatus"]["Parameters"] == {"ApplicationName": "clickagg-rebuild"}
    assert states["FindSuccess"]["Resource"].endswith(":states:::aws-sdk:s3:listObjectsV2")
    assert states["FindSuccess"]["Parameters"] == {
        "Bucket": "<RebuildBucket>", "Prefix.$": "$.run.success_key", "MaxKeys": 1}
    for phase in (1, 2):
        load = states[f"LoadPhase{phase}"]
        assert load["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
        assert load["ItemReader"]["Resource"].endswith(":states:::s3:listObjectsV2")
        assert load["ItemReader"]["Parameters"] == {"Bucket": "<RebuildBucket>",
                                                    "Prefix.$": f"$.run.phase{phase}_prefix"}
        assert load["ItemSelector"] == {"bucket": "<RebuildBucket>", "key.$": "$$.Map.Item.Value.Key",
                                        "generation.$": "$.run.generation", "start_ms.$": "$.run.start_ms",
                                        "end_ms.$": "$.run.end_ms"}
        assert load["MaxConcurrency"] == schema.default("rebuild_load_concurrency") == 20
        assert load["ResultPath"] is None
        [inner] = load["ItemProcessor"]["States"].values()
        assert inner["Resource"] == "<RebuildLoadFileFunction.Arn>"
        assert {"RuntimeError", "ClientError", "Sandbox.Timedout"} <= {
            e for r in inner["Retry"] for e in r["ErrorEquals"]}
        commit = states[f"CommitPhase{phase}"]
        assert commit["Resource"] == "<RebuildCommitFunction.Arn>"
        assert commit["Parameters"] == {"generation.$": "$.run.generation",
                                        "start_ms.$": "$.run.start_ms", "end_ms.$": "$.run.end_ms"}
    assert states["Prepare"]["Resource"] == "<RebuildPrepareFunction.Arn>"


def test_the_state_machine_logs_to_an_encrypted_group_and_traces(default_template, machine):
    assert machine["StateMachineName"] == "clickagg-rebuild"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    [dest] = machine["LoggingConfiguration"]["Destinations"]
    group = dest["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert group.startswith("RebuildStateMachineLogs")
    props = default_template.find_resources("AWS::Logs::LogGroup")[group]["Properties"]
    assert props["KmsKeyId"]["Fn::GetAtt"][0].startswith("EncryptionKey")
    role = statements(default_template, "RebuildStateMachineRole")
    flink_calls = {s for s in role if s[0][0].startswith("kinesisanalytics:")}
    assert flink_calls == {(("kinesisanalytics:DescribeApplication", "kinesisanalytics:StopApplication"),
                            "arn:<AWS::Partition>:kinesisanalytics:<AWS::Region>:<AWS::AccountId>:"
                            "application/clickagg-rebuild")}


def test_the_rebuild_bucket_is_encrypted_and_expires_its_scratch(default_template):
    [bucket] = [r["Properties"] for k, r in default_template.find_resources("AWS::S3::Bucket").items()
                if k.startswith("RebuildBucket")]
    [sse] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 14
