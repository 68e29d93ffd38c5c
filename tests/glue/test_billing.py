"""Billing job on generated archive data vs the independent oracle (tests/glue/oracle.py)."""
from __future__ import annotations

import os
from collections import defaultdict
from datetime import date, timedelta

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


def test_edge_cases(world):
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
    assert set(billed("burst_n_plus_1_with_copy")) == {"ip_burst"}
    assert billed("null_ip_not_burst") == [None] * 12
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
    # other days' events are never billed on D
    for name in ("prev_day", "next_day", "prev_hr22", "repeat_prev_day_side", "repeat_next_day_side"):
        assert set(billed(name)) == {"absent"}, name


def test_tie_break_and_costs(world):
    rows = read_day(world["out"], "hourly", DAY)
    hourly, _ = world["oracle"]
    cid = world["scenario"].named["tie_lower_cost_wins"][0]
    copies = [c for c, _ in world["scenario"].rows if c["click_id"] == cid]
    assert sorted(c["cost_micros"] for c in copies) == [100, 999]
    assert sum(r["cost_micros"] for r in rows) == sum(m["cost_micros"] for m in hourly.values())
    late = sum(r["late_billable_clicks"] for r in rows)
    assert late >= 3  # late_beyond_lateness, late_minute_not_hour, late_just_before_cutoff (+ random)
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
    assert late >= 3 and flagged >= 2
    # every click arriving after the 2 h cutoff is also beyond the lateness, so both miss it.
    # late_edge (ingested exactly at minute end + lateness + delay) is late by the diagnostic, but
    # the simulated watermark (newest event time seen - 5 s) trails its ingest time: not dropped.
    assert summary["total_diff"] == flagged - (late - 1)
    assert summary["explained_clicks"]["late"] == late - 1
    assert {r["class"] for r in rows} >= {"none", "late_beyond_lateness", "flagged_difference"}
    assert summary["total_drift"] == pytest.approx(abs(summary["total_diff"]) / summary["batch_billable"])

