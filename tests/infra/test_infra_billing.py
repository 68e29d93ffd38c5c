"""Nightly billing recompute + reconciliation: Glue jobs, workflow and triggers, catalog tables,
security configuration, roles, failure events and the drift alarm.
default_template: cdk.json's defaults; custom_template: every billing setting changed. Both
reconcile: the only serving store the stack deploys is DynamoDB, the one reconciliation reads."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from glue_jobs.reconcile import DRIFT_THRESHOLD, REPORT_COLUMNS
from glue_jobs.billing.outputs import CAMPAIGN_SPEND_COLUMNS, CONVERSION_COLUMNS, EVENTS_HOURLY_COLUMNS
from infra.constructs.billing import (DRIFT_COLUMNS, FLAGGED_COLUMNS, HOURLY_COLUMNS,
                                      StageGlueLibrary)

KEY_ARN = {"Fn::GetAtt": ["EncryptionKey3A692D6E", "Arn"]}



_JSON: dict[int, tuple[Template, dict]] = {}  # holds the template: its id stays unique


def template_json(template: Template) -> dict:
    """Template.to_json() once per template (each call crosses into jsii)."""
    if id(template) not in _JSON:
        _JSON[id(template)] = (template, template.to_json())
    return _JSON[id(template)][1]

def resources(template: Template, type_: str) -> dict[str, dict]:
    return {k: v for k, v in template_json(template)["Resources"].items() if v["Type"] == type_}


def job(template: Template, suffix: str) -> dict:
    [found] = [v["Properties"] for v in resources(template, "AWS::Glue::Job").values()
               if v["Properties"]["Name"].endswith(suffix)]
    return found


def logical(template: Template, type_: str, prefix: str) -> str:
    [found] = [k for k in resources(template, type_) if k.startswith(prefix)]
    return found


def statements(template: Template, role_prefix: str) -> list[dict]:
    [policy] = [v["Properties"] for v in resources(template, "AWS::IAM::Policy").values()
                if v["Properties"]["Roles"] == [{"Ref": logical(template, "AWS::IAM::Role",
                                                                role_prefix)}]]
    return policy["PolicyDocument"]["Statement"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def by_action(stmts: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in stmts:
        for a in as_list(s["Action"]):
            out.setdefault(a, []).append(s)
    return out


def s3_url(bucket_id: str, path: str) -> dict:
    return {"Fn::Join": ["", ["s3://", {"Ref": bucket_id}, path]]}


# --- jobs -----------------------------------------------------------------------------------

def test_billing_job_defaults(default_template):
    billing = job(default_template, "-billing")
    assert billing["Name"] == "clickagg-billing"
    assert billing["GlueVersion"] == "5.0"
    assert billing["Command"]["Name"] == "glueetl" and billing["Command"]["PythonVersion"] == "3"
    assert billing["Command"]["ScriptLocation"]["Fn::Sub"].endswith(".py")
    assert (billing["WorkerType"], billing["NumberOfWorkers"]) == ("G.1X", 6)
    assert (billing["Timeout"], billing["MaxRetries"]) == (180, 1)
    assert billing["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    assert billing["SecurityConfiguration"] == {"Ref": logical(
        default_template, "AWS::Glue::SecurityConfiguration", "BillingSecurityConfiguration")}
    args = billing["DefaultArguments"]
    archive = logical(default_template, "AWS::S3::Bucket", "ArchiveBucket")
    bucket = logical(default_template, "AWS::S3::Bucket", "BillingBucket")
    assert args["--job-bookmark-option"] == "job-bookmark-disable"
    assert args["--day"] == "auto"
    assert args["--raw_path"] == s3_url(archive, "/raw/clicks")
    assert args["--events_path"] == s3_url(archive, "/raw/events")
    assert args["--out_path"] == s3_url(bucket, "/billing")
    assert args["--budgets_table"] == {"Ref": logical(default_template, "AWS::DynamoDB::Table", "BudgetsTable")}
    assert args["--attribution_window_s"] == "604800"
    assert (args["--cutoff_hours"], args["--repeat_window_s"], args["--burst_threshold"],
            args["--write_flagged"]) == ("2", "10", "10", "true")
    assert (args["--allowed_lateness_s"], args["--watermark_delay_s"]) == ("900", "5")
    assert args["--extra-py-files"]["Fn::Sub"].endswith(".zip")
    assert args["--custom-logGroup-prefix"] == "/aws-glue/jobs/clickagg-billing"


def test_billing_job_from_context(custom_template):
    billing = job(custom_template, "-billing")
    assert billing["Name"] == "ca-test-billing"
    assert (billing["WorkerType"], billing["NumberOfWorkers"], billing["Timeout"]) == (
        "G.2X", 4, 90)
    args = billing["DefaultArguments"]
    # the stream's repeat window (shared setting), the billing-only knobs
    assert (args["--cutoff_hours"], args["--repeat_window_s"], args["--burst_threshold"]) == (
        "3", "5", "20")
    # the stream's late rule follows the same context as the Flink job's
    assert (args["--allowed_lateness_s"], args["--watermark_delay_s"]) == ("600", "10")


def test_job_arguments_are_the_ones_the_billing_job_reads(default_template, repo_root):
    """Underscore names the job resolves (billing_job.REQUIRED + OPTIONAL), plus Glue's own.
    OPTIONAL holds `*BillingSettings.__settings__`: the schema's billing-job settings."""
    from common.schema import GLUE, view_settings

    def literal(node: ast.expr) -> list:
        out = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                assert ast.unparse(element) == "*BillingSettings.__settings__"
                out += list(view_settings(GLUE))
            else:
                out.append(ast.literal_eval(element))
        return out

    tree = ast.parse((repo_root / "glue_jobs" / "billing_job.py").read_text())
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("REQUIRED", "OPTIONAL"):
            names[node.targets[0].id] = literal(node.value)
    ours = {k.removeprefix("--") for k in job(default_template, "-billing")["DefaultArguments"]}
    glue_own = {"job-language", "job-bookmark-option", "extra-py-files", "custom-logGroup-prefix"}
    assert set(names["REQUIRED"]) <= ours
    assert ours - glue_own <= set(names["REQUIRED"]) | set(names["OPTIONAL"])


@pytest.mark.parametrize("variant", ["default", "custom", "small", "medium", "large"])
def test_every_variant_reconciles(all_templates, variant):
    """Reconciliation is never silently absent: job, trigger, drift table and alarm."""
    template = all_templates[variant]
    assert sorted(v["Properties"]["Name"].rsplit("-", 1)[1]
                  for v in resources(template, "AWS::Glue::Job").values()) == [
        "billing", "reconcile"]
    assert [a for a in resources(template, "AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("MetricName") == "TotalDrift"]
    assert {v["Properties"]["Type"] for v in resources(template, "AWS::Glue::Trigger")
            .values()} == {"SCHEDULED", "CONDITIONAL"}
    tables = {v["Properties"]["TableInput"]["Name"]
              for v in resources(template, "AWS::Glue::Table").values()}
    assert tables == {"raw_clicks", "raw_events", "refused_clicks", "billing_hourly",
                      "billing_flagged", "billing_events_hourly", "billing_conversions",
                      "billing_campaign_spend", "billing_drift"}


def test_billing_refuses_a_store_reconciliation_cannot_read():
    from infra.constructs.billing import RECONCILED_STORES, require_reconciliation

    assert RECONCILED_STORES == ("dynamodb",)
    require_reconciliation("dynamodb")
    with pytest.raises(ValueError, match="timestream is refused.*serving_store=dynamodb"):
        require_reconciliation("timestream")


def test_reconcile_job_with_dynamodb(custom_template):
    reconcile = job(custom_template, "-reconcile")
    assert reconcile["GlueVersion"] == "5.0" and reconcile["Command"]["Name"] == "glueetl"
    assert (reconcile["WorkerType"], reconcile["NumberOfWorkers"], reconcile["MaxRetries"]) == (
        "G.1X", 2, 0)
    args = reconcile["DefaultArguments"]
    bucket = logical(custom_template, "AWS::S3::Bucket", "BillingBucket")
    assert args["--day"] == "auto"
    assert args["--out_path"] == s3_url(bucket, "/billing")
    assert args["--report_path"] == s3_url(bucket, "/reconciliation/drift")
    assert args["--table"] == {"Ref": logical(custom_template, "AWS::DynamoDB::Table",
                                              "ServingTable")}
    assert args["--threshold"] == str(DRIFT_THRESHOLD) and args["--emit_metrics"] == "true"
    # the same library zip as the billing job: glue_jobs.workflow_day (the run's `day`)
    assert args["--extra-py-files"] == job(custom_template, "-billing")["DefaultArguments"]["--extra-py-files"]
    assert reconcile["SecurityConfiguration"] == job(custom_template, "-billing")[
        "SecurityConfiguration"]


def test_security_configuration_encrypts_everything_with_the_pipeline_key(default_template):
    [config] = [v["Properties"] for v in resources(
        default_template, "AWS::Glue::SecurityConfiguration").values()]
    encryption = config["EncryptionConfiguration"]
    assert encryption["S3Encryptions"] == [{"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": KEY_ARN}]
    assert encryption["CloudWatchEncryption"] == {"CloudWatchEncryptionMode": "SSE-KMS",
                                                  "KmsKeyArn": KEY_ARN}
    assert encryption["JobBookmarksEncryption"] == {"JobBookmarksEncryptionMode": "CSE-KMS",
                                                    "KmsKeyArn": KEY_ARN}


def test_job_log_groups_are_pre_created_encrypted(custom_template):
    groups = {v["Properties"]["LogGroupName"]: v["Properties"]
              for v in resources(custom_template, "AWS::Logs::LogGroup").values()
              if "LogGroupName" in v["Properties"]}
    for name in ("ca-test-billing", "ca-test-reconcile"):
        prefix = job(custom_template, name.removeprefix("ca-test"))["DefaultArguments"][
            "--custom-logGroup-prefix"]
        assert prefix == f"/aws-glue/jobs/{name}"
        for kind in ("output", "error"):
            assert groups[f"{prefix}/{kind}"]["KmsKeyId"] == KEY_ARN
            assert groups[f"{prefix}/{kind}"]["RetentionInDays"] == 30


# --- workflow -------------------------------------------------------------------------------

def test_workflow_schedule_and_conditional_reconciliation(custom_template):
    [workflow_id] = resources(custom_template, "AWS::Glue::Workflow")
    triggers = {v["Properties"]["Type"]: v["Properties"]
                for v in resources(custom_template, "AWS::Glue::Trigger").values()}
    assert set(triggers) == {"SCHEDULED", "CONDITIONAL"}
    billing_ref = {"Ref": logical(custom_template, "AWS::Glue::Job", "BillingBillingJob")}
    reconcile_ref = {"Ref": logical(custom_template, "AWS::Glue::Job", "BillingReconcileJob")}
    schedule = triggers["SCHEDULED"]
    assert schedule["Schedule"] == "cron(15 4 * * ? *)"
    assert schedule["StartOnCreation"] is True
    assert schedule["WorkflowName"] == {"Ref": workflow_id}
    assert schedule["Actions"] == [{"JobName": billing_ref, "Arguments": {"--day": "auto"}}]
    after = triggers["CONDITIONAL"]
    assert after["WorkflowName"] == {"Ref": workflow_id} and after["StartOnCreation"] is True
    assert after["Predicate"] == {"Conditions": [{"JobName": billing_ref,
                                                  "LogicalOperator": "EQUALS",
                                                  "State": "SUCCEEDED"}]}
    assert after["Actions"] == [{"JobName": reconcile_ref, "Arguments": {"--day": "auto"}}]


def test_default_schedule_is_0230_utc(default_template):
    [trigger] = [v["Properties"] for v in resources(default_template, "AWS::Glue::Trigger")
                 .values() if v["Properties"]["Type"] == "SCHEDULED"]
    assert trigger["Schedule"] == "cron(30 2 * * ? *)" and trigger["Type"] == "SCHEDULED"


# --- catalog --------------------------------------------------------------------------------

def _python_constant(path: Path, name: str):
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not in {path}")


def test_catalog_columns_are_what_the_jobs_write(repo_root):
    """transform.py imports pyspark (not in this venv): read its constants from the source.
    events.py writes outputs.py's columns (EVENTS_HOURLY / CONVERSION_DETAIL are built from
    them: tests/glue checks the written files)."""
    transform = repo_root / "glue_jobs" / "billing" / "transform.py"
    output = [c for c in _python_constant(transform, "OUTPUT_COLUMNS") if c != "dt"]
    flagged = [c for c in _python_constant(transform, "FLAGGED_COLUMNS") if c != "dt"]
    assert [n for n, _ in HOURLY_COLUMNS] == output
    assert [n for n, _ in FLAGGED_COLUMNS] == flagged
    assert [n for n, _ in DRIFT_COLUMNS] == list(REPORT_COLUMNS)
    # the drift report's columns as first published stay its prefix (columns only grow at the end)
    first = ["ad_id", "hour_start_ms", "hour", "batch_billable", "realtime_billable", "diff",
             "batch_suspect", "realtime_suspect", "diff_suspect", "batch_invalid", "realtime_invalid",
             "diff_invalid", "drift_ratio", "class", "explained_late", "explained_election",
             "explained_impression_memory", "explained_duplicates", "unexplained"]
    assert [n for n, _ in DRIFT_COLUMNS][:len(first)] == first


@pytest.mark.parametrize("name,columns,path", [
    ("billing_hourly", HOURLY_COLUMNS, "/billing/hourly"),
    ("billing_flagged", FLAGGED_COLUMNS, "/billing/flagged"),
    ("billing_drift", DRIFT_COLUMNS, "/reconciliation/drift"),
    ("billing_events_hourly", EVENTS_HOURLY_COLUMNS, "/billing/events_hourly"),
    ("billing_conversions", CONVERSION_COLUMNS, "/billing/conversions"),
    ("billing_campaign_spend", CAMPAIGN_SPEND_COLUMNS, "/billing/campaign_spend"),
])
def test_billing_tables_are_parquet_partitioned_by_dt(custom_template, name, columns, path):
    [table] = [v["Properties"] for v in resources(custom_template, "AWS::Glue::Table").values()
               if v["Properties"]["TableInput"]["Name"] == name]
    assert table["DatabaseName"] == {"Ref": logical(custom_template, "AWS::Glue::Database",
                                                    "ArchiveDatabase")}
    table_input = table["TableInput"]
    assert [(c["Name"], c["Type"]) for c in table_input["StorageDescriptor"]["Columns"]] == \
        columns
    assert table_input["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    storage = table_input["StorageDescriptor"]
    assert storage["InputFormat"].endswith("MapredParquetInputFormat")
    assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    bucket = logical(custom_template, "AWS::S3::Bucket", "BillingBucket")
    assert storage["Location"] == s3_url(bucket, f"{path}/")
    parameters = table_input["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.dt.type"] == "date"
    assert parameters["storage.location.template"] == s3_url(bucket, f"{path}/dt=${{dt}}/")


def test_library_zip_layout(tmp_path):
    glue_jobs = tmp_path / "glue_jobs"
    for rel in ("__init__.py", "billing_job.py", "reconcile.py", "backfill.py",
                "billing/__init__.py", "billing/run.py", "billing/__pycache__/run.cpython.pyc"):
        (glue_jobs / rel).parent.mkdir(parents=True, exist_ok=True)
        (glue_jobs / rel).write_text("")
    functions = tmp_path / "functions"
    for rel in ("common/__init__.py", "common/ivt_data/crawler_user_agents.json",
                "common/ivt_data/datacenter_ipv4.csv", "common/ivt_data/PROVENANCE.md",
                "common/__pycache__/ivt.cpython.pyc", "serving/__init__.py", "serving/keys.py",
                "serving/table.py", "serving/read/__init__.py", "serving/read/dynamodb.py",
                "serving/write/dynamodb.py"):
        (functions / rel).parent.mkdir(parents=True, exist_ok=True)
        (functions / rel).write_text("")
    out = tmp_path / "out"
    out.mkdir()
    assert StageGlueLibrary(glue_jobs, functions).try_bundle(str(out))
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    # the serving store's core only: its read/ and write/ sides import the query API and the sink
    assert files == {"glue_jobs/__init__.py", "glue_jobs/billing/__init__.py",
                     "glue_jobs/billing/run.py", "common/__init__.py",
                     "common/ivt_data/crawler_user_agents.json", "common/ivt_data/datacenter_ipv4.csv",
                     "common/ivt_data/PROVENANCE.md",
                     "serving/__init__.py", "serving/keys.py", "serving/table.py"}


def test_billing_job_reads_ivt_data_from_the_library_zip(repo_root, tmp_path):
    """On Glue `common` is imported from the --extra-py-files zip, where its ivt_data/ files are
    inside a zip file (no path open() can read): the billing job's loader (glue_jobs/billing/
    ivt_inputs.py) must find them there. The real tree staged as infra stages it, zipped, and
    imported from the zip alone in a fresh interpreter."""
    import subprocess
    import sys
    import zipfile

    from infra import FUNCTIONS_DIR
    from infra.constructs.billing import GLUE_JOBS_DIR

    staged = tmp_path / "staged"
    staged.mkdir()
    assert StageGlueLibrary(GLUE_JOBS_DIR, FUNCTIONS_DIR).try_bundle(str(staged))
    library = tmp_path / "glue_jobs.zip"
    with zipfile.ZipFile(library, "w") as zf:
        for f in sorted(p for p in staged.rglob("*") if p.is_file()):
            zf.write(f, f.relative_to(staged).as_posix())
    assert {"common/ivt_data/crawler_user_agents.json", "common/ivt_data/datacenter_ipv4.csv"} <= set(
        zipfile.ZipFile(library).namelist())
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from common import ivt\n"
        "from glue_jobs.billing import ivt_inputs as x\n"
        "assert ivt.__file__.startswith(sys.argv[1]) and not ivt.DATA_DIR.is_dir(), ivt.__file__\n"
        "print(len(x.bot_patterns()), len(x.datacenter_ranges()), len(x.datacenter_blocks()),"
        " x.data_dir() != ivt.DATA_DIR, x.bot_regex().startswith('(?d)(?:'))\n")
    done = subprocess.run([sys.executable, "-I", "-c", code, str(library)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1504", "3429", "4326", "True", "True"]


# --- roles ----------------------------------------------------------------------------------

def test_billing_role_reads_raw_and_writes_billing_only(custom_template):
    stmts = statements(custom_template, "BillingBillingRole")
    actions = by_action(stmts)
    archive = logical(custom_template, "AWS::S3::Bucket", "ArchiveBucket")
    bucket = logical(custom_template, "AWS::S3::Bucket", "BillingBucket")
    put = actions["s3:PutObject"]
    assert [s["Resource"] for s in put] == [
        {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/billing*"]]}]
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert archive not in json.dumps([s["Resource"] for s in actions[action]])
    for prefix in ("/raw/clicks/*", "/raw/events/*"):
        raw = {"Fn::Join": ["", [{"Fn::GetAtt": [archive, "Arn"]}, prefix]]}
        assert any(raw in as_list(s["Resource"]) for s in actions["s3:GetObject"]), prefix
    reads = json.dumps([s["Resource"] for s in actions["s3:GetObject"]])
    assert "/refused/" not in reads and reads.count("/raw/") == 2
    assert set(actions) >= {"kms:Decrypt", "kms:GenerateDataKey", "logs:PutLogEvents",
                            "logs:AssociateKmsKey"}
    assert not any(a.startswith("cloudwatch:") for a in actions)
    # DynamoDB: reads of the budgets table only (its history: one Scan on the driver)
    budgets = logical(custom_template, "AWS::DynamoDB::Table", "BudgetsTable")
    dynamodb = [s for s in stmts if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert [s["Resource"] for s in dynamodb] == [{"Fn::GetAtt": [budgets, "Arn"]}]
    [read] = dynamodb
    assert "dynamodb:Scan" in read["Action"] and not any(
        a in read["Action"] for a in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                      "dynamodb:BatchWriteItem"))
    code = json.dumps([s["Resource"] for s in actions["s3:GetObject"]])
    assert "cdk-hnb659fds-assets" in code and code.count(".zip") == 1 and code.count(".py") == 1


def test_reconcile_role_queries_the_serving_table_and_puts_clickagg_metrics(custom_template):
    stmts = statements(custom_template, "BillingReconcileRole")
    actions = by_action(stmts)
    table = logical(custom_template, "AWS::DynamoDB::Table", "ServingTable")
    assert {a for a in actions if a.startswith("dynamodb:")} == {"dynamodb:Query", "dynamodb:PutItem",
                                                                 "dynamodb:UpdateItem"}  # corrections
    assert actions["dynamodb:Query"][0]["Resource"] == {"Fn::GetAtt": [table, "Arn"]}
    [metrics] = actions["cloudwatch:PutMetricData"]
    assert metrics["Resource"] == "*"
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "ClickAgg"}}
    writes = json.dumps([s["Resource"] for s in actions["s3:PutObject"]])
    assert '"/reconciliation/*"' in writes and "billing" not in writes.replace("Billing", "")
    reads = json.dumps([s["Resource"] for s in actions["s3:GetObject"]])
    assert '"/billing/hourly/*"' in reads and '"/billing/events_hourly/*"' in reads
    assert '"/billing/campaign_spend/*"' in reads  # the spend reconciliation
    assert "ArchiveBucket" not in reads and "/billing/conversions" not in reads


def test_job_roles_trust_glue_only(custom_template):
    for prefix in ("BillingBillingRole", "BillingReconcileRole"):
        role = resources(custom_template, "AWS::IAM::Role")[logical(
            custom_template, "AWS::IAM::Role", prefix)]["Properties"]
        [statement] = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "glue.amazonaws.com"}
        assert "ManagedPolicyArns" not in role


def test_reconcile_role_covers_the_aws_calls_of_reconcile_py(custom_template, repo_root):
    """A new boto3 call in glue_jobs/reconcile.py (or the serving store's core, whose Queries it
    makes) without an IAM grant fails here."""
    import botocore.session

    source = "\n".join([(repo_root / "glue_jobs" / f).read_text()
                        for f in ("reconcile.py", "workflow_day.py", "corrections.py")]
                       + [p.read_text() for p in sorted((repo_root / "functions" / "serving").glob("*.py"))])
    called = set(re.findall(r"\.(\w+)\(", source))
    called |= set(re.findall(r"""get_paginator\(["'](\w+)["']\)""", source))
    session = botocore.session.get_session()
    needed = {f"{service}:{op}" for service in ("dynamodb", "glue")
              for op in session.get_service_model(service).operation_names
              if botocore.xform_name(op) in called}
    needed |= {"cloudwatch:PutMetricData"} if "put_metric_data" in called else set()
    granted = set(by_action(statements(custom_template, "BillingReconcileRole")))
    # a transaction's Put/Update are authorised as PutItem/UpdateItem (no IAM action of its own)
    if "dynamodb:TransactWriteItems" in needed:
        needed = (needed - {"dynamodb:TransactWriteItems"}) | {"dynamodb:PutItem", "dynamodb:UpdateItem"}
    assert {"dynamodb:Query", "dynamodb:PutItem", "glue:GetWorkflowRunProperties"} <= needed
    assert needed <= granted, sorted(needed - granted)


def test_reconcile_role_puts_only_its_summary_items(custom_template):
    """PutItem on the serving table only under the reconciliation partition key: the job can
    never overwrite an aggregate the sink wrote."""
    from serving.keys import RECONCILIATION_PK
    from glue_jobs.reconcile import RECONCILIATION_PK as JOB_PK

    assert JOB_PK == RECONCILIATION_PK
    [put, correct] = [s for s in statements(custom_template, "BillingReconcileRole")
                      if "dynamodb:PutItem" in as_list(s["Action"])]
    assert as_list(put["Action"]) == ["dynamodb:PutItem"]
    assert put["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [RECONCILIATION_PK]}}
    # corrections (glue_jobs/corrections.py): ads' series and the adjustments ledger only, never
    # campaign/advertiser rollups, spend, leaderboards or META
    from serving.keys import ADJUSTMENTS_PREFIX, SERIES_PREFIX

    assert sorted(as_list(correct["Action"])) == ["dynamodb:PutItem", "dynamodb:UpdateItem"]
    assert correct["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [
        f"{SERIES_PREFIX['agg']}#*", f"{ADJUSTMENTS_PREFIX}*"]}}


@pytest.mark.parametrize("role", ["BillingBillingRole", "BillingReconcileRole"])
def test_jobs_may_read_their_workflow_run_properties_only(custom_template, role):
    [stmt] = [s for s in statements(custom_template, role)
              if "glue:GetWorkflowRunProperties" in as_list(s["Action"])]
    assert as_list(stmt["Action"]) == ["glue:GetWorkflowRunProperties"]
    workflow = logical(custom_template, "AWS::Glue::Workflow", "BillingWorkflow")
    resource = json.dumps(stmt["Resource"])
    assert ":workflow/" in resource and {"Ref": workflow} in stmt["Resource"]["Fn::Join"][1]


# --- failures and drift ---------------------------------------------------------------------

def test_job_failures_notify_the_alarm_topic(custom_template):
    [(rule_id, rule)] = resources(custom_template, "AWS::Events::Rule").items()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.glue"]
    assert pattern["detail-type"] == ["Glue Job State Change"]
    assert pattern["detail"] == {"jobName": ["ca-test-billing", "ca-test-reconcile"],
                                 "state": ["FAILED", "TIMEOUT", "ERROR"]}
    [target] = rule["Properties"]["Targets"]
    topic = logical(custom_template, "AWS::SNS::Topic", "AlarmsTopic")
    assert target["Arn"] == {"Ref": topic}
    assert "<detail-jobName>" in target["InputTransformer"]["InputTemplate"]
    [policy] = resources(custom_template, "AWS::SNS::TopicPolicy").values()
    [allow] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
               if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {
        "Fn::GetAtt": [rule_id, "Arn"]}}}
    [key] = resources(custom_template, "AWS::KMS::Key").values()
    [kms] = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
             if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert sorted(as_list(kms["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_total_drift_alarm(custom_template):
    [alarm] = [a["Properties"] for a in resources(custom_template, "AWS::CloudWatch::Alarm")
               .values() if a["Properties"].get("MetricName") == "TotalDrift"]
    assert alarm["AlarmName"] == "ca-test-billing-TotalDrift"
    assert (alarm["Namespace"], alarm["Statistic"], alarm["Period"]) == (
        "ClickAgg", "Maximum", 86400)
    assert alarm["Threshold"] == DRIFT_THRESHOLD == 0.001
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert "Dimensions" not in alarm  # reconcile.emit_metrics puts no dimensions
    [action] = alarm["AlarmActions"]
    assert action == {"Ref": logical(custom_template, "AWS::SNS::Topic", "AlarmsTopic")}


def test_billing_bucket(default_template):
    bucket_id = logical(default_template, "AWS::S3::Bucket", "BillingBucket")
    bucket = resources(default_template, "AWS::S3::Bucket")[bucket_id]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert "Transitions" not in rule  # billing data stays queryable (no cold storage)
    outputs = template_json(default_template)["Outputs"]
    assert {"BillingBucketName", "BillingWorkflowName", "BillingJobName"} <= set(outputs)
