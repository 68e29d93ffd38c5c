"""Billing job on generated archive data vs the independent oracle (tests/glue/oracle.py)."""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from glue_jobs.billing.run import read_raw, run_day
from glue_jobs.billing.transform import (
    OUTPUT_COLUMNS, BillingSettings, flag_clicks, input_partitions, transform,
)
from glue_jobs.reconcile import reconcile
from tests.glue.oracle import billing_oracle
from tests.glue.scenario import HOUR, build

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 3, 10)
PREV = DAY - timedelta(days=1)
SETTINGS = BillingSettings()
METRICS = [c for c in OUTPUT_COLUMNS if c not in ("advertiser_id", "campaign_id", "ad_id", "hour",
                                                   "hour_start_ms", "dt")]


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("billing")
    scenario = build(DAY)
    parts = scenario.write(root / "raw" / "clicks")
    raw_path, out_path = str(root / "raw" / "clicks"), str(root / "out")
    stats = run_day(spark, raw_path, out_path, DAY, SETTINGS)
    return {"scenario": scenario, "parts": parts, "raw": raw_path, "out": out_path, "stats": stats,
            "oracle": billing_oracle(scenario.rows, DAY)}


def read_day(out_path: str, table: str, day: date) -> list[dict]:
    part = ds.partitioning(pa.schema([("dt", pa.string())]), flavor="hive")
    data = ds.dataset(f"{out_path}/{table}", format="parquet", partitioning=part)
    return data.to_table(filter=ds.field("dt") == day.isoformat()).to_pylist()


def keyed(rows) -> dict:
    return {(r["advertiser_id"], r["campaign_id"], r["ad_id"], r["hour_start_ms"]): {m: r[m] for m in METRICS}
            for r in rows}


def test_input_partitions_are_listed_explicitly():
    paths = input_partitions("s3://b/raw/clicks/", DAY, 2)
    assert paths[0] == "s3://b/raw/clicks/dt=2026-03-09/hr=23"
    assert paths[1] == "s3://b/raw/clicks/dt=2026-03-10/hr=00"
    assert paths[24] == "s3://b/raw/clicks/dt=2026-03-10/hr=23"
    assert paths[-2:] == ["s3://b/raw/clicks/dt=2026-03-11/hr=00", "s3://b/raw/clicks/dt=2026-03-11/hr=01"]
    assert len(paths) == 27 and len(set(paths)) == 27
    assert len(input_partitions("/x", DAY, 0)) == 25 and len(input_partitions("/x", DAY, 5)) == 30


def test_reads_only_the_day_partitions_and_skips_missing(world, spark):
    present = {f"{world['raw']}/dt={dt}/hr={hr}" for dt, hr in world["parts"]}
    _, paths = read_raw(spark, world["raw"], DAY, SETTINGS)
    wanted = set(input_partitions(world["raw"], DAY, 2))
    assert set(paths) == wanted & present == wanted
    assert present - wanted  # the archive holds partitions the job must not read (D-1 22, D+1 02)
    assert world["stats"]["partitions_read"] == len(paths) == 27
    # a longer cutoff asks for D+1 hr 02..04, of which only hr 02 exists: the others are skipped
    _, paths = read_raw(spark, world["raw"], DAY, BillingSettings(cutoff_hours=5))
    wanted = set(input_partitions(world["raw"], DAY, 5))
    assert set(paths) == wanted & present and len(wanted - present) == 2


def test_hourly_rows_equal_oracle(world):
    rows = read_day(world["out"], "hourly", DAY)
    hourly, _ = world["oracle"]
    assert keyed(rows) == hourly
    assert len(rows) == len(hourly) > 150
    for r in rows:
        assert r["dt"] == DAY.isoformat()
        assert int(r["hour"].timestamp() * 1000) == r["hour_start_ms"]
        assert r["clicks"] == r["billable_clicks"] + r["repeat_clicks"] + r["ip_burst_clicks"]
    assert world["stats"]["billable_clicks"] == sum(m["billable_clicks"] for m in hourly.values())


def test_per_click_flags_equal_oracle(world, spark):
    raw, _ = read_raw(spark, world["raw"], DAY, SETTINGS)
    got = {r.click_id: r.reason for r in flag_clicks(raw, DAY, SETTINGS).select("click_id", "reason").collect()}
    _, reasons = world["oracle"]
    assert got == reasons
    flagged = {r["click_id"]: r["reason"] for r in read_day(world["out"], "flagged", DAY)}
    assert flagged == {k: v for k, v in reasons.items() if v is not None}


@pytest.fixture(scope="module")
def job_flags(world, spark) -> dict:
    """The job's own per-click decisions (flag_clicks, as run_day computes them):
    {click_id: (reason, late)} for every deduplicated click of D."""
    raw, _ = read_raw(spark, world["raw"], DAY, SETTINGS)
    return {r.click_id: (r.reason, r.late)
            for r in flag_clicks(raw, DAY, SETTINGS).select("click_id", "reason", "late").collect()}


@pytest.mark.parametrize("source", ["job", "oracle"])
def test_edge_cases(world, job_flags, source):
    """Hand-computed outcomes of the hand-placed cases (scenario.build), checked against the
    billing job's per-click reasons and, separately, against the oracle's: the oracle is itself
    under test here, not the reference."""
    if source == "job":
        reasons = {cid: flags[0] for cid, flags in job_flags.items()}
    else:
        _, reasons = world["oracle"]
    named = world["scenario"].named
    billed = lambda name: [reasons.get(cid, "absent") for cid in named[name]]  # noqa: E731
    # duplicates: one billed click per click_id; first copy decides, across midnight too
    assert billed("midnight_first_in_prev") == [None]
    assert billed("prev_event_copy_in_day") == ["absent"]
    assert billed("first_copy_prev_day_event") == ["absent"]
    # bursts: exactly N is fine, N+1 flags all, counted after dedup, per one-second bucket
    assert billed("burst_exactly_n") == [None] * 10
    assert billed("burst_n_plus_1") == ["ip_burst"] * 11  # incl. one that is also a repeat
    assert billed("burst_boundary_in") == [None] * 10 and billed("burst_boundary_next_second") == [None]
    assert billed("burst_n_with_copy") == [None] * 10
    assert billed("burst_n_plus_1_with_copy") == ["ip_burst"] * 11
    assert billed("null_ip_not_burst") == [None] * 12
    assert billed("burst_other_second") == [None]
    # repeat rule at the 10 s boundary; earliest event wins, then ingest, then click_id
    assert billed("repeat_winner") + billed("repeat_9999") + billed("repeat_next_bucket") == [None, "repeat", None]
    assert billed("repeat_arrived_first_but_later_event") == ["repeat"]
    assert billed("repeat_earlier_event_arrived_later") == [None]
    assert dict(zip(named["repeat_tie_event"], billed("repeat_tie_event"))) == {
        "zz-ru3-a": None, "zz-ru3-b": "repeat", "zz-ru3-c": "repeat"}
    assert billed("repeat_midnight") == [None] and billed("repeat_last_ms") == [None]
    # late arrivals: after the cutoff not in this run; just before it billed
    assert billed("late_after_cutoff") == billed("late_at_cutoff") == ["absent"]
    assert billed("late_just_before_cutoff") == [None] and billed("late_beyond_lateness") == [None]
    assert billed("late_minute_not_hour") == [None]
    assert billed("late_edge_minus_1ms") == billed("late_edge") == [None]
    # other days' events are never billed on D
    for name in ("prev_day", "next_day", "prev_hr22", "repeat_prev_day_side", "repeat_next_day_side"):
        assert set(billed(name)) == {"absent"}, name


# The late diagnostic by hand: only these billable clicks were first ingested at or after their
# minute's end + 900 s lateness + 5 s watermark delay. The background's clicks are ingested
# 0-2 s after their event time (or before it: clock_ahead); a retry's first copy is the original.
LATE_CASES = ("late_beyond_lateness", "late_minute_not_hour", "late_just_before_cutoff", "late_edge")
# ip_burst clicks the stream bills (repeat winners, not late), by hand: burst_n_plus_1 has 11 clicks
# of which two share a user (b2-same) in one 10 s repeat bucket, so 10 winners; each of the 11
# clicks of burst_n_plus_1_with_copy has its own user (its retry is deduplicated away): 11.
STREAM_BILLED_BURST = 10 + 11


def test_tie_break_and_costs(world, job_flags):
    rows = read_day(world["out"], "hourly", DAY)
    hourly, _ = world["oracle"]
    cid = world["scenario"].named["tie_lower_cost_wins"][0]
    copies = [c for c, _ in world["scenario"].rows if c["click_id"] == cid]
    assert sorted(c["cost_micros"] for c in copies) == [100, 999]
    assert sum(r["cost_micros"] for r in rows) == sum(m["cost_micros"] for m in hourly.values())
    late = sum(r["late_billable_clicks"] for r in rows)
    assert late == len(LATE_CASES) == sum(m["late_billable_clicks"] for m in hourly.values())
    named = world["scenario"].named
    late_ids = {cid for cid, (reason, is_late) in job_flags.items() if reason is None and is_late}
    assert late_ids == {cid for name in LATE_CASES for cid in named[name]}
    # the late diagnostic's edge: first ingested at minute end + lateness + watermark delay
    edge_rows = [r for r in rows if r["ad_id"] == "ad-9"]
    assert [(r["billable_clicks"], r["late_billable_clicks"]) for r in edge_rows] == [(2, 1)]


def test_rerun_is_idempotent_and_other_days_survive(world, spark):
    out = world["out"]
    run_day(spark, world["raw"], out, PREV, SETTINGS)
    prev_dir = f"{out}/hourly/dt={PREV.isoformat()}"
    prev_files = {f: os.stat(os.path.join(prev_dir, f)).st_mtime_ns for f in os.listdir(prev_dir)}
    prev_rows = read_day(out, "hourly", PREV)
    before = (read_day(out, "hourly", DAY), read_day(out, "flagged", DAY))
    stats = run_day(spark, world["raw"], out, DAY, SETTINGS)
    after = (read_day(out, "hourly", DAY), read_day(out, "flagged", DAY))
    key = lambda r: tuple(str(v) for v in r.values())  # noqa: E731
    assert [sorted(t, key=key) for t in before] == [sorted(t, key=key) for t in after]
    assert stats["billable_clicks"] == world["stats"]["billable_clicks"]
    assert {f: os.stat(os.path.join(prev_dir, f)).st_mtime_ns for f in os.listdir(prev_dir)} == prev_files
    assert read_day(out, "hourly", PREV) == prev_rows and prev_rows
    parquet = [f for f in os.listdir(f"{out}/hourly/dt={DAY.isoformat()}") if f.endswith(".parquet")]
    assert len(parquet) == 1
    # D-1's own billing equals the oracle for D-1 on the same archive
    assert keyed(prev_rows) == billing_oracle(world["scenario"].rows, PREV)[0]


def test_day_without_clicks_replaces_stale_partition(world, spark, tmp_path):
    out = str(tmp_path / "out")
    empty_day = DAY + timedelta(days=30)
    stale = tmp_path / "out" / "hourly" / f"dt={empty_day.isoformat()}"
    stale.mkdir(parents=True)
    (stale / "part-old.parquet").write_bytes(b"stale")
    stats = run_day(spark, world["raw"], out, empty_day, SETTINGS)
    assert stats["partitions_read"] == 0 and stats["hourly_rows"] == 0
    assert not stale.exists()


def test_plan_has_two_shuffles_and_no_more(world, spark):
    raw, _ = read_raw(spark, world["raw"], DAY, SETTINGS)
    plan = transform(raw, DAY, SETTINGS)._jdf.queryExecution().executedPlan().toString()
    exchanges = [line for line in plan.splitlines() if "Exchange" in line]
    assert len(exchanges) == 2, plan
    assert "hashpartitioning(_h" in exchanges[1] and "hashpartitioning(ad_id" in exchanges[0], plan
    assert "FileScan parquet" in plan and "ReadSchema: struct<click_id:string,ad_id:string" in plan
    assert "user_agent" not in plan and "referrer" not in plan  # column pruning at the scan


def test_settings_are_the_streams():
    from common.archive import RAW_COLUMNS
    from common.config import AggregationSettings
    from glue_jobs.billing import transform as t

    assert t.RAW_COLUMNS == RAW_COLUMNS
    agg = AggregationSettings()
    assert (SETTINGS.repeat_window_s, SETTINGS.allowed_lateness_s) == (agg.repeat_window_s, agg.allowed_lateness_s)
    with pytest.raises(ValueError):
        BillingSettings(repeat_window_s=7)  # must divide a day


def test_other_thresholds_match_oracle(world, spark):
    settings = BillingSettings(repeat_window_s=60, burst_threshold=3, cutoff_hours=0)
    raw, _ = read_raw(spark, world["raw"], DAY, settings)
    got = keyed([r.asDict() for r in transform(raw, DAY, settings).collect()])
    want, _ = billing_oracle(world["scenario"].rows, DAY, repeat_window_s=60, burst_threshold=3, cutoff_hours=0)
    assert got == want


def test_local_entry_point(world, tmp_path):
    from glue_jobs import billing_job

    out = str(tmp_path / "job")
    stats = billing_job.main_local(["--day", DAY.isoformat(), "--raw_path", world["raw"], "--out-path", out,
                                    "--shuffle-partitions", "2", "--write-flagged", "false"])
    assert stats["billable_clicks"] == world["stats"]["billable_clicks"]
    assert keyed(read_day(out, "hourly", DAY)) == world["oracle"][0]
    assert not os.path.exists(f"{out}/flagged")
    day, settings, flagged = billing_job.settings_from({"day": "2026-01-02", "cutoff_hours": "0",
                                                        "burst_threshold": "4"})
    assert (day, settings.cutoff_hours, settings.burst_threshold, flagged) == (date(2026, 1, 2), 0, 4, True)
    assert (settings.allowed_lateness_s, settings.watermark_delay_s) == (900, 5)
    _, settings, _ = billing_job.settings_from({"allowed_lateness_s": "600", "watermark_delay_s": "0"})
    assert (settings.allowed_lateness_s, settings.watermark_delay_s, settings.late_after_ms) == (600, 0, 660_000)


def simulated_stream(rows, day, lateness_ms=900_000, delay_ms=5_000, window_ms=10_000):
    """What the realtime path bills per (ad, hour), modelled independently of the batch's
    late diagnostic: every copy in ingest order; a watermark = newest event time seen - delay
    (every copy moves it, as at the Flink source); the first copy of a click_id is dropped as late
    when the watermark before it has passed its minute's end + lateness; the repeat rule among
    the on-time clicks; no burst rule."""
    first, wm = {}, None
    for c, _ in sorted(rows, key=lambda ca: (ca[0]["ingest_time"], ca[0]["event_time"], ca[0]["cost_micros"])):
        minute_end = c["event_time"] // 60_000 * 60_000 + 60_000
        if c["click_id"] not in first:
            first[c["click_id"]] = (c, wm is not None and wm >= minute_end + lateness_ms)
        candidate = c["event_time"] - delay_ms
        wm = candidate if wm is None else max(wm, candidate)
    d0 = int(DAY_START(day))
    kept = [c for c, late in first.values() if d0 <= c["event_time"] < d0 + 24 * HOUR and not late]
    groups = defaultdict(list)
    for c in kept:
        groups[(c["user_id"], c["ad_id"], c["event_time"] // window_ms)].append(c)
    out = defaultdict(int)
    for g in groups.values():
        w = min(g, key=lambda c: (c["event_time"], c["ingest_time"], c["click_id"]))
        out[(w["ad_id"], w["event_time"] // HOUR * HOUR)] += 1
    return [{"ad_id": a, "hour_start_ms": h, "billable_clicks": n} for (a, h), n in out.items()]


def DAY_START(day):  # noqa: N802
    from tests.glue.oracle import day_start
    return day_start(day)


def test_reconcile_against_simulated_stream_is_fully_explained(world):
    batch = read_day(world["out"], "hourly", DAY)
    # the stream only sees what reached it: everything ingested, including after the cutoff
    realtime = simulated_stream(world["scenario"].rows, DAY)
    rows, summary = reconcile(batch, realtime)
    assert summary["unexplained_clicks"] == 0, [r for r in rows if r["unexplained"]]
    late = sum(r["late_billable_clicks"] for r in batch)
    flagged = sum(r["ip_burst_stream_billable_clicks"] for r in batch)
    assert (late, flagged) == (len(LATE_CASES), STREAM_BILLED_BURST)
    hourly, _ = world["oracle"]
    assert (late, flagged) == (sum(m["late_billable_clicks"] for m in hourly.values()),
                               sum(m["ip_burst_stream_billable_clicks"] for m in hourly.values()))
    # every click arriving after the 2 h cutoff is also beyond the lateness, so both miss it.
    # late_edge (ingested exactly at minute end + lateness + delay) is late by the diagnostic, but
    # the simulated watermark (newest event time seen - 5 s) trails its ingest time: not dropped.
    assert summary["total_diff"] == flagged - (late - 1)
    assert summary["explained_clicks"]["late"] == late - 1
    assert {r["class"] for r in rows} >= {"none", "late_beyond_lateness", "flagged_difference"}
    assert summary["total_drift"] == pytest.approx(abs(summary["total_diff"]) / summary["batch_billable"])


# --- the AWS Glue entry point (billing_job.main_glue) ------------------------------------------
# On Glue, awsglue is importable and main_glue resolves the job arguments with awsglue's own
# getResolvedOptions. That function runs here for real: the `awsglue-dev` package
# (requirements/glue-libs.txt, installed by `make setup` into .venv-glue/awsglue-libs, outside the
# venv's site-packages so that local runs keep taking main_local) ships awsglue/utils.py
# byte-identical to awslabs/aws-glue-libs branch glue-5.0 (commit 23918d0038663555dcfc696c44c0efbe497e0705;
# the file last changed in 446695e55cf6d59fa329c52896961b24f1f226a6): checked by hash below.
# GlueContext and Job need Glue's JVM classes, which exist only on Glue: they are stood in for by
# GlueRuntime, which has their glue-5.0 interface as main_glue uses it (GlueContext(sc).spark_session,
# Job(glue_context).init(name, args), job.commit()) and records the calls. So everything up to
# and around them is the job's real code; what Glue's JVM does with init/commit is not tested.
AWSGLUE_LIBS = Path(sys.prefix) / "awsglue-libs"
GLUE_50_UTILS_SHA256 = "d326a6328f673e39be0385683c98baed2789a08252f35414e541805ae8fcd1b4"
AFTER_MIDNIGHT = datetime(2026, 3, 11, 0, 0, 5, tzinfo=timezone.utc)  # --day auto = DAY
TEMP_DIR = "s3://aws-glue-assets-123456789012-us-east-1/temporary/"


@pytest.fixture
def glue_billing_job(monkeypatch):
    """glue_jobs/billing_job.py loaded as on Glue (awsglue importable), as a module of its own:
    the shared `glue_jobs.billing_job` (HAVE_GLUE False here) is left as it is."""
    utils = AWSGLUE_LIBS / "awsglue" / "utils.py"
    if not utils.is_file():
        pytest.fail(f"{utils} missing: `make setup` installs requirements/glue-libs.txt there")
    assert hashlib.sha256(utils.read_bytes()).hexdigest() == GLUE_50_UTILS_SHA256, \
        "awsglue/utils.py is not the glue-5.0 one"
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(AWSGLUE_LIBS))
    spec = importlib.util.spec_from_file_location("billing_job_on_glue", REPO / "glue_jobs" / "billing_job.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.HAVE_GLUE
    assert Path(inspect.getfile(module.getResolvedOptions)) == utils
    yield module
    for name in set(sys.modules) - before:
        if name == "awsglue" or name.startswith("awsglue."):
            del sys.modules[name]


class GlueRuntime:
    """Stand-ins for awsglue.context.GlueContext and awsglue.job.Job (see above), recording calls."""

    def __init__(self, spark):
        self.calls: list[tuple] = []
        runtime = self

        class GlueContext:
            def __init__(self, sc):
                runtime.calls.append(("GlueContext", sc))
                self.spark_session = spark  # glue-5.0: self.spark_session = self.sparkSession

        class Job:
            def __init__(self, glue_context):
                runtime.calls.append(("Job", type(glue_context).__name__))

            def init(self, job_name, args):
                runtime.calls.append(("init", job_name, dict(args)))

            def commit(self):
                runtime.calls.append(("commit",))

        self.GlueContext, self.Job = GlueContext, Job

    def install(self, monkeypatch, module):
        monkeypatch.setattr(module, "GlueContext", self.GlueContext)
        monkeypatch.setattr(module, "Job", self.Job)


def glue_argv(raw: str, out: str, *extra: str, day: str = "auto") -> list[str]:
    """sys.argv of a Glue 5.0 job run of the billing job as infra/constructs/billing.py defines it:
    Glue's own run arguments, the job's DefaultArguments (underscore names), the trigger's --day."""
    return ["/tmp/billing_job.py", "--JOB_ID", "j_0f1e2d", "--JOB_RUN_ID", "jr_a1b2c3",
            "--job-bookmark-option", "job-bookmark-disable", "--TempDir", TEMP_DIR,
            "--job-language", "python", "--custom-logGroup-prefix", "/aws-glue/clickagg-billing",
            "--extra-py-files", "s3://assets/glue_jobs.zip", "--raw_path", raw, "--out_path", out,
            *extra, "--day", day, "--JOB_NAME", "clickagg-billing"]


GLUE_OWN_RESOLVED = {  # what getResolvedOptions adds of Glue's own, for glue_argv's arguments
    "JOB_ID": "j_0f1e2d", "JOB_RUN_ID": "jr_a1b2c3", "JOB_NAME": "clickagg-billing",
    "job_bookmark_option": "job-bookmark-disable", "job_bookmark_from": None, "job_bookmark_to": None,
    "SECURITY_CONFIGURATION": None, "encryption_type": None, "enable_data_lineage": None,
    "TempDir": TEMP_DIR, "RedshiftTempDir": TEMP_DIR,
}


@pytest.fixture
def recorded_run_day(monkeypatch):
    """run_day replaced by a recorder: argument resolution only, no Spark job."""
    from glue_jobs.billing import run

    calls = []

    def record(spark, raw_path, out_path, day, settings, write_flagged):
        calls.append((spark, raw_path, out_path, day, settings, write_flagged))
        return {"day": day.isoformat()}

    monkeypatch.setattr(run, "run_day", record)
    return calls


@pytest.mark.parametrize("options, settings, write_flagged", [
    # infra's defaults (test_infra_billing: default_template)
    (["--cutoff_hours", "2", "--repeat_window_s", "10", "--allowed_lateness_s", "900",
      "--watermark_delay_s", "5", "--burst_threshold", "10", "--write_flagged", "true"],
     BillingSettings(), True),
    # every option away from its default (cutoff 0 included: a falsy-looking value)
    (["--cutoff_hours", "0", "--repeat_window_s", "5", "--allowed_lateness_s", "600",
      "--watermark_delay_s", "10", "--burst_threshold", "20", "--write_flagged", "false"],
     BillingSettings(repeat_window_s=5, burst_threshold=20, cutoff_hours=0, allowed_lateness_s=600,
                     watermark_delay_s=10), False),
    # none of the optional ones
    ([], BillingSettings(), True),
], ids=["infra-defaults", "all-custom", "no-options"])
def test_glue_entry_resolves_glue_arguments(glue_billing_job, recorded_run_day, spark, monkeypatch,
                                            options, settings, write_flagged):
    runtime = GlueRuntime(spark)
    runtime.install(monkeypatch, glue_billing_job)
    monkeypatch.setattr(sys, "argv", glue_argv("s3://b/raw/clicks", "s3://b/billing", *options))
    stats = glue_billing_job.main_glue(now=lambda: AFTER_MIDNIGHT)
    assert stats == {"day": "2026-03-10"}
    assert recorded_run_day == [(spark, "s3://b/raw/clicks", "s3://b/billing", DAY, settings, write_flagged)]
    resolved = {**GLUE_OWN_RESOLVED, "raw_path": "s3://b/raw/clicks", "out_path": "s3://b/billing",
                "day": "auto", **dict(zip(options[::2], options[1::2]))}
    resolved = {k.removeprefix("--"): v for k, v in resolved.items()}
    assert runtime.calls == [("GlueContext", spark.sparkContext), ("Job", "GlueContext"),
                             ("init", "clickagg-billing", resolved), ("commit",)]


def test_glue_entry_takes_name_equals_value_options(glue_billing_job, recorded_run_day, spark, monkeypatch):
    """`--name=value` is an argparse spelling too: such an option is resolved, not silently dropped."""
    runtime = GlueRuntime(spark)
    runtime.install(monkeypatch, glue_billing_job)
    monkeypatch.setattr(sys, "argv", glue_argv("r", "o", "--cutoff_hours=0", "--repeat_window_s=5",
                                               "--write_flagged=false"))
    glue_billing_job.main_glue(now=lambda: AFTER_MIDNIGHT)
    assert recorded_run_day == [(spark, "r", "o", DAY, BillingSettings(repeat_window_s=5, cutoff_hours=0), False)]


def test_glue_entry_explicit_day_and_workflow_run_day(glue_billing_job, recorded_run_day, spark,
                                                      monkeypatch, aws):
    runtime = GlueRuntime(spark)
    runtime.install(monkeypatch, glue_billing_job)
    now = lambda: AFTER_MIDNIGHT  # noqa: E731
    monkeypatch.setattr(sys, "argv", glue_argv("r", "o", day="2026-02-28"))
    glue_billing_job.main_glue(now=now)
    # a run of POST /v1/reconcile?day=D: the workflow run's property names the day, over --day auto
    import boto3

    glue = boto3.client("glue")
    glue.create_workflow(Name="clickagg-billing-wf")
    with_day = glue.start_workflow_run(Name="clickagg-billing-wf", RunProperties={"day": "2026-03-07"})["RunId"]
    nightly = glue.start_workflow_run(Name="clickagg-billing-wf")["RunId"]
    for run_id in (with_day, nightly):
        monkeypatch.setattr(sys, "argv", glue_argv("r", "o", "--WORKFLOW_NAME", "clickagg-billing-wf",
                                                   "--WORKFLOW_RUN_ID", run_id))
        glue_billing_job.main_glue(now=now)
    assert [call[3] for call in recorded_run_day] == [date(2026, 2, 28), date(2026, 3, 7), DAY]
    assert [c[2]["day"] for c in runtime.calls if c[0] == "init"] == ["2026-02-28", "2026-03-07", "auto"]


def test_glue_entry_wants_underscore_names(glue_billing_job, recorded_run_day, spark, monkeypatch):
    """Glue resolves only the names asked for: dashed ones (accepted locally) are not them."""
    from awsglue.utils import GlueArgumentError

    runtime = GlueRuntime(spark)
    runtime.install(monkeypatch, glue_billing_job)
    argv = glue_argv("r", "o")
    argv[argv.index("--raw_path")] = "--raw-path"
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(GlueArgumentError, match=r"^the following arguments are required: --raw_path$"):
        glue_billing_job.main_glue(now=lambda: AFTER_MIDNIGHT)
    assert recorded_run_day == [] and runtime.calls == []


def test_glue_entry_runs_the_day(glue_billing_job, world, spark, monkeypatch, tmp_path):
    """The nightly run end to end on the test archive: day auto, the job's output = the oracle."""
    runtime = GlueRuntime(spark)
    runtime.install(monkeypatch, glue_billing_job)
    out = str(tmp_path / "billing")
    monkeypatch.setattr(sys, "argv", glue_argv(world["raw"], out, "--write_flagged", "false"))
    stats = glue_billing_job.main_glue(now=lambda: AFTER_MIDNIGHT)
    drop = lambda s: {k: v for k, v in s.items() if k not in ("seconds", "flagged_clicks")}  # noqa: E731
    assert drop(stats) == drop(world["stats"]) and stats["flagged_clicks"] is None
    assert keyed(read_day(out, "hourly", DAY)) == world["oracle"][0]
    assert not os.path.exists(f"{out}/flagged")
    assert [c[0] for c in runtime.calls] == ["GlueContext", "Job", "init", "commit"]
