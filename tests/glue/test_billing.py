"""Billing job on generated archive data vs the independent oracle (tests/glue/oracle.py), and
the IVT verdicts click by click against common/ivt.py's reference (`ivt.evaluate`)."""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import re
import sys
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from common import ivt
from glue_jobs.billing.run import read_raw, run_day
from glue_jobs.billing.transform import (
    FLAGGED_COLUMNS, OUTPUT_COLUMNS, BillingSettings, flag_clicks, input_partitions,
    lookback_partitions, transform,
)
from glue_jobs.reconcile import reconcile
from tests.glue.oracle import billing_oracle, day_start
from tests.glue.scenario import DAY_MS, HOUR, build, build_ivt_batch
from tests.glue.stream_model import simulated_stream

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


def verdicts_of(df) -> dict:
    """{click_id: (verdict, reasons)} of flag_clicks' (or the flagged output's) rows."""
    return {r.click_id: (r.verdict, r.reasons) for r in df.select("click_id", "verdict", "reasons").collect()}


def test_input_partitions_are_listed_explicitly():
    paths = input_partitions("s3://b/raw/clicks/", DAY, 2)
    assert paths[0] == "s3://b/raw/clicks/dt=2026-03-09/hr=23"
    assert paths[1] == "s3://b/raw/clicks/dt=2026-03-10/hr=00"
    assert paths[24] == "s3://b/raw/clicks/dt=2026-03-10/hr=23"
    assert paths[-2:] == ["s3://b/raw/clicks/dt=2026-03-11/hr=00", "s3://b/raw/clicks/dt=2026-03-11/hr=01"]
    assert len(paths) == 27 and len(set(paths)) == 27
    assert len(input_partitions("/x", DAY, 0)) == 25 and len(input_partitions("/x", DAY, 5)) == 30


def test_lookback_partitions_bound():
    """Token max age 86400 s + 2 x clock skew 300 s + future event skew 300 s = 24 h 15 min before
    D 00:00 (the schema's defaults): from D-2 hr 23 up to the input partitions' first, D-1 hr 23."""
    assert SETTINGS.impression_lookback_ms == (86_400 + 600 + 300) * 1000
    paths = lookback_partitions("s3://b/raw/clicks/", DAY, SETTINGS.impression_lookback_ms)
    assert paths[0] == "s3://b/raw/clicks/dt=2026-03-08/hr=23"
    assert paths[1] == "s3://b/raw/clicks/dt=2026-03-09/hr=00"
    assert paths[-1] == "s3://b/raw/clicks/dt=2026-03-09/hr=22"
    assert len(paths) == 24 and not set(paths) & set(input_partitions("s3://b/raw/clicks", DAY))
    assert lookback_partitions("/x", DAY, 3_600_000) == []  # an hour: D-1 hr 23 is input already
    assert lookback_partitions("/x", DAY, 3_600_001) == ["/x/dt=2026-03-09/hr=22"]


def test_reads_only_the_day_partitions_and_skips_missing(world, spark):
    present = {f"{world['raw']}/dt={dt}/hr={hr}" for dt, hr in world["parts"]}
    _, paths = read_raw(spark, world["raw"], DAY, SETTINGS)
    wanted = set(input_partitions(world["raw"], DAY, 2))
    back = set(lookback_partitions(world["raw"], DAY, SETTINGS.impression_lookback_ms))
    assert set(paths) == (wanted | back) & present and wanted <= present
    assert present - wanted - back  # the archive holds partitions the job must not read (D-2 22, D+1 02)
    assert world["stats"]["partitions_read"] == 27
    assert world["stats"]["lookback_partitions_read"] == len(back & present) == 3  # D-2 23, D-1 20, D-1 22
    # a longer cutoff asks for D+1 hr 02..04, of which only hr 02 exists: the others are skipped
    _, paths = read_raw(spark, world["raw"], DAY, BillingSettings(cutoff_hours=5))
    wanted = set(input_partitions(world["raw"], DAY, 5))
    assert set(paths) - back == wanted & present and len(wanted - present) == 2


def test_old_archive_files_read_impression_columns_as_null(world, spark):
    """Objects written before impression_id / issued_at existed lack those columns: read as null,
    in the same partitions as objects that have them."""
    assert world["scenario"].legacy_objects > 10
    legacy = [f for f in Path(world["raw"]).rglob("*.parquet")
              if "impression_id" not in pq.read_schema(f).names]
    assert len(legacy) == world["scenario"].legacy_objects
    raw, _ = read_raw(spark, world["raw"], DAY, SETTINGS)
    rows = raw.where(raw.click_id.isin(
        pq.read_table(legacy[0]).column("click_id").to_pylist())).collect()
    assert rows and all(r.impression_id is None and r.issued_at is None for r in rows)


def test_hourly_rows_equal_oracle(world):
    rows = read_day(world["out"], "hourly", DAY)
    hourly, _ = world["oracle"]
    assert keyed(rows) == hourly
    assert len(rows) == len(hourly) > 150
    for r in rows:
        assert r["dt"] == DAY.isoformat()
        assert int(r["hour"].timestamp() * 1000) == r["hour_start_ms"]
        assert r["clicks"] == r["billable_clicks"] + r["suspect_clicks"] + r["invalid_clicks"]
        assert r["suspect_clicks"] + r["invalid_clicks"] <= sum(r[f"{x}_clicks"] for x in ivt.REASONS)
    assert world["stats"]["billable_clicks"] == sum(m["billable_clicks"] for m in hourly.values())
    assert (world["stats"]["suspect_clicks"], world["stats"]["invalid_clicks"]) == (
        sum(m["suspect_clicks"] for m in hourly.values()), sum(m["invalid_clicks"] for m in hourly.values()))


@pytest.fixture(scope="module")
def job_flags(world, spark) -> dict:
    """The job's own per-click decisions (flag_clicks, as run_day computes them):
    {click_id: (verdict, reasons, late)} for every deduplicated click of D."""
    raw, _ = read_raw(spark, world["raw"], DAY, SETTINGS)
    return {r.click_id: (r.verdict, r.reasons, r.late)
            for r in flag_clicks(raw, DAY, SETTINGS).select("click_id", "verdict", "reasons", "late").collect()}


def test_per_click_verdicts_equal_oracle(world, job_flags):
    _, verdicts = world["oracle"]
    assert {cid: flags[:2] for cid, flags in job_flags.items()} == verdicts
    flagged = read_day(world["out"], "flagged", DAY)
    assert {r["click_id"]: (r["verdict"], r["reasons"]) for r in flagged} == {
        k: v for k, v in verdicts.items() if v[0] != "valid"}
    assert [c for c in flagged[0] if c != "dt"] == [c for c in FLAGGED_COLUMNS if c != "dt"]
    assert world["stats"]["flagged_clicks"] == len(flagged) > 50


V = ("valid", "")  # a billable click


def S(*reasons):  # noqa: N802  a suspect click with these reasons
    return ("suspect", ",".join(reasons))


def I(*reasons):  # noqa: N802, E743  an invalid click with these reasons
    return ("invalid", ",".join(reasons))


@pytest.mark.parametrize("source", ["job", "oracle"])
def test_edge_cases(world, job_flags, source):
    """Hand-computed outcomes of the hand-placed cases (scenario.build), checked against the
    billing job's per-click verdicts and, separately, against the oracle's: the oracle is itself
    under test here, not the reference."""
    if source == "job":
        verdicts = {cid: flags[:2] for cid, flags in job_flags.items()}
    else:
        _, verdicts = world["oracle"]
    named = world["scenario"].named
    got = lambda name: [verdicts.get(cid, "absent") for cid in named[name]]  # noqa: E731
    # duplicates: one click per click_id; first copy decides, across midnight too
    assert got("midnight_first_in_prev") == [V]
    assert got("prev_event_copy_in_day") == ["absent"]
    assert got("first_copy_prev_day_event") == ["absent"]
    # bursts: exactly N is fine, N+1 flags all, counted after dedup, per one-second bucket
    assert got("burst_exactly_n") == [V] * 10
    n_plus_1 = got("burst_n_plus_1")  # two of them share a user in one 10 s window
    assert sorted(n_plus_1) == [S("ip_burst")] * 10 + [S("ip_burst", "user_repeat")]
    assert got("burst_boundary_in") == [V] * 10 and got("burst_boundary_next_second") == [V]
    assert got("burst_n_with_copy") == [V] * 10
    assert got("burst_n_plus_1_with_copy") == [S("ip_burst")] * 11
    assert got("null_ip_not_burst") == [V] * 12
    assert got("burst_other_second") == [V]
    assert got("burst_across_ads") == [S("ip_burst")] * 11  # keyed by ip alone
    assert got("burst_straddling") == [V] * 11  # 6 + 5 in two fixed seconds
    # user_repeat at the 10 s boundary; earliest event wins, then ingest, then click_id
    assert got("repeat_winner") + got("repeat_9999") + got("repeat_next_bucket") == [V, S("user_repeat"), V]
    assert got("repeat_arrived_first_but_later_event") == [S("user_repeat")]
    assert got("repeat_earlier_event_arrived_later") == [V]
    assert dict(zip(named["repeat_tie_event"], got("repeat_tie_event"))) == {
        "zz-ru3-a": V, "zz-ru3-b": S("user_repeat"), "zz-ru3-c": S("user_repeat")}
    assert got("repeat_midnight") == [V] and got("repeat_last_ms") == [V]
    assert got("user_null") == [V] * 3
    # bot_ua (crawler list; Python's / UNIX_LINES line ends)
    assert got("bot_googlebot") == got("bot_curl_newline") == got("bot_ssl_labs_end") == [I("bot_ua")]
    assert got("bot_not_cr") == got("bot_not_u2028") == got("not_bot_browser") == got("bot_null_ua") == [V]
    # datacenter_ip: first and last address of a range, IPv4-mapped IPv6, whitespace
    for name in ("dc_first", "dc_last", "dc_mapped", "dc_mapped_hex", "dc_spaces"):
        assert got(name) == [S("datacenter_ip")], name
    for name in ("not_dc_after", "not_dc_leading_zero", "not_dc_ipv6", "not_dc_garbage"):
        assert got(name) == [V], name
    # too_fast: ingest_time - issued_at < 1000 ms
    assert got("fast_999") == got("fast_negative") == [I("too_fast")]
    assert got("fast_1000") == got("fast_no_issued_at") == [V]
    # impression_repeat: first by event time, ingest time, click_id; earlier days through the lookback
    assert got("imp_three") == [V, I("impression_repeat"), I("impression_repeat")]
    assert dict(zip(named["imp_tie"], got("imp_tie"))) == {
        "zz-imp-a": V, "zz-imp-b": I("impression_repeat"), "zz-imp-c": I("impression_repeat")}
    assert got("imp_order_first_event") == [V] and got("imp_order_first_arrival") == [I("impression_repeat")]
    for name in ("imp_prev_day_lookback", "imp_prev_day_input", "imp_lookback_first_hour"):
        assert got(name) == [I("impression_repeat")] and got(f"{name}_first") == ["absent"], name
    assert got("imp_beyond_lookback") == [V]  # its first click arrived before the lookback
    assert got("imp_memory_first") + got("imp_memory_repeat") == [V, I("impression_repeat")]
    assert got("imp_within_memory_first") + got("imp_within_memory") == [V, I("impression_repeat")]
    assert got("imp_null") == [V, V]
    # late arrivals: after the cutoff not in this run; just before it billed
    assert got("late_after_cutoff") == got("late_at_cutoff") == ["absent"]
    assert got("late_just_before_cutoff") == [V] and got("late_beyond_lateness") == [V]
    assert got("late_minute_not_hour") == [V]
    assert got("late_edge_minus_1ms") == got("late_edge") == [V]
    # other days' events are never billed on D
    for name in ("prev_day", "next_day", "prev_hr22", "repeat_prev_day_side", "repeat_next_day_side"):
        assert set(got(name)) == {"absent"}, name


# Hand-placed clicks each rule flags (scenario.build); background clicks may add user repeats.
HAND_FLAGGED = {
    "bot_ua": {"bot_googlebot": 1, "bot_curl_newline": 1, "bot_ssl_labs_end": 1},
    "impression_repeat": {"imp_three": 2, "imp_tie": 2, "imp_order_first_arrival": 1,
                          "imp_prev_day_lookback": 1, "imp_prev_day_input": 1,
                          "imp_lookback_first_hour": 1, "imp_memory_repeat": 1, "imp_within_memory": 1},
    "too_fast": {"fast_999": 1, "fast_negative": 1},
    "datacenter_ip": {"dc_first": 1, "dc_last": 1, "dc_mapped": 1, "dc_mapped_hex": 1, "dc_spaces": 1},
    "ip_burst": {"burst_n_plus_1": 11, "burst_n_plus_1_with_copy": 11, "burst_across_ads": 11},
    "user_repeat": {"burst_n_plus_1": 1, "repeat_9999": 1, "repeat_arrived_first_but_later_event": 1,
                    "repeat_tie_event": 2},
}


@pytest.mark.parametrize("rule", ivt.REASONS)
def test_each_rule_exact_counts(world, job_flags, rule):
    """Per rule: the job's flagged clicks = the oracle's, the hourly <rule>_clicks add up to them,
    and the hand-placed ones are exactly those counted by hand."""
    _, verdicts = world["oracle"]
    job = {cid for cid, (_, reasons, _) in job_flags.items() if rule in reasons.split(",")}
    oracle = {cid for cid, (_, reasons) in verdicts.items() if rule in reasons.split(",")}
    assert job == oracle
    assert sum(r[f"{rule}_clicks"] for r in read_day(world["out"], "hourly", DAY)) == len(job)
    named = world["scenario"].named
    hand = {name: len(set(named[name]) & job) for name in HAND_FLAGGED[rule]}
    assert hand == HAND_FLAGGED[rule]
    placed = {cid for ids in named.values() for cid in ids}
    extra = job - placed  # flagged background clicks: only chance user repeats
    assert len(extra) == (1 if rule == "user_repeat" else 0)
    assert len(job) == sum(HAND_FLAGGED[rule].values()) + len(extra)


# The late diagnostic by hand: only these billable clicks were first ingested at or after their
# minute's end + 900 s lateness + 5 s watermark delay. The background's clicks are ingested
# 0-2 s after their event time (or before it: clock_ahead); a retry's first copy is the original.
LATE_CASES = ("late_beyond_lateness", "late_minute_not_hour", "late_just_before_cutoff", "late_edge")
# The stream's elections by arrival (by hand): imp_order's first arrival is not its first event;
# repeat_arrived_first_but_later_event (ru2) likewise: each a click the stream bills and the batch
# not (gain) and the other way round (loss). Impression repeats ingested > 1800 s after their
# impression's first arrival, with no other reason: imp_memory_repeat and the three D clicks of
# impressions first clicked on D-1 / D-2.
ELECTION_GAIN = ("imp_order_first_arrival", "repeat_arrived_first_but_later_event")
ELECTION_LOSS = ("imp_order_first_event", "repeat_earlier_event_arrived_later")
IMPRESSION_MEMORY = ("imp_memory_repeat", "imp_prev_day_lookback", "imp_prev_day_input",
                     "imp_lookback_first_hour")


def test_tie_break_costs_and_diagnostics(world, job_flags):
    rows = read_day(world["out"], "hourly", DAY)
    hourly, _ = world["oracle"]
    cid = world["scenario"].named["tie_lower_cost_wins"][0]
    copies = [c for c, _ in world["scenario"].rows if c["click_id"] == cid]
    assert sorted(c["cost_micros"] for c in copies) == [100, 999]
    assert sum(r["cost_micros"] for r in rows) == sum(m["cost_micros"] for m in hourly.values())
    late = sum(r["late_billable_clicks"] for r in rows)
    assert late == len(LATE_CASES) == sum(m["late_billable_clicks"] for m in hourly.values())
    assert sum(r["late_clicks"] for r in rows) == late  # no late click is flagged here
    named = world["scenario"].named
    late_ids = {cid for cid, (verdict, _, is_late) in job_flags.items() if verdict == "valid" and is_late}
    assert late_ids == {cid for name in LATE_CASES for cid in named[name]}
    # the late diagnostic's edge: first ingested at minute end + lateness + watermark delay
    edge_rows = [r for r in rows if r["ad_id"] == "ad-9" and r["hour_start_ms"] == day_start(DAY) + 6 * HOUR]
    assert [(r["billable_clicks"], r["late_billable_clicks"]) for r in edge_rows] == [(2, 1)]
    for column, names in (("election_gain_clicks", ELECTION_GAIN), ("election_loss_clicks", ELECTION_LOSS),
                          ("impression_memory_clicks", IMPRESSION_MEMORY)):
        assert sum(r[column] for r in rows) == len(names) == sum(m[column] for m in hourly.values()), column


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


def test_plan_shuffles(world, spark):
    """Four hash exchanges of the click rows (was two before the IVT rules: dedup by click_id and
    ad_id for both rules and the aggregate). Now the impression election needs its own key, and
    ip_burst, keyed by ip alone, can no longer ride on the ad_id exchange; the hourly aggregate
    still needs none of its own. Plus the distinct user agents' aggregate (bot_ua, one rlike per
    distinct string) and two broadcasts. See transform.py's docstring."""
    raw, _ = read_raw(spark, world["raw"], DAY, SETTINGS)
    plan = transform(raw, DAY, SETTINGS)._jdf.queryExecution().executedPlan().toString()
    lines = plan.splitlines()
    shuffles = [line for line in lines if "Exchange hashpartitioning" in line]
    assert len(shuffles) == 5, plan
    # top to bottom: ad_id (user_repeat + aggregate), ip, impression, click_id; the user agents
    assert "hashpartitioning(ad_id" in shuffles[0] and "REPARTITION_BY_COL" in shuffles[0]
    assert "hashpartitioning(_hb#" in shuffles[1] and ", ip#" in shuffles[1]
    assert "hashpartitioning(_hi#" in shuffles[2] and ", impression_id#" in shuffles[2]
    assert "hashpartitioning(_h#" in shuffles[3] and ", click_id#" in shuffles[3]
    assert "hashpartitioning(user_agent#" in shuffles[4]
    assert len([line for line in lines if "BroadcastExchange" in line]) == 2
    assert sum("Exchange" in line for line in lines) == 5 + 2
    # bot_ua's regex runs after the distinct user agents' aggregate, not per row at the scan
    [rlike] = [i for i, line in enumerate(lines) if "RLIKE(_bot_ua" in line]
    assert "HashAggregate(keys=[user_agent" in lines[rlike + 1] and "functions=[count(1)]" in lines[rlike + 1]
    assert sum("RLIKE(" in line and "(?d)" in line for line in lines) == 1
    scans = [line for line in lines if "FileScan parquet" in line]
    assert len(scans) == 3  # input partitions (all columns used), lookback (fewer), user agents
    columns = [re.sub(r"#\d+L?", "", re.search(r"FileScan parquet \[([^]]*)\]", s).group(1)) for s in scans]
    assert columns == [
        "click_id,ad_id,campaign_id,advertiser_id,user_id,event_time,cost_micros,ip,user_agent,"
        "ingest_time,impression_id,issued_at",
        "click_id,ad_id,campaign_id,advertiser_id,user_id,event_time,cost_micros,ip,ingest_time,"
        "impression_id",
        "user_agent"]
    assert "referrer" not in plan and "request_id" not in plan  # column pruning at the scan


def test_settings_are_the_streams():
    from common.archive import RAW_COLUMNS
    from common.config import AggregationSettings
    from glue_jobs.billing import transform as t

    assert t.RAW_COLUMNS == RAW_COLUMNS
    agg = AggregationSettings()
    assert (SETTINGS.repeat_window_s, SETTINGS.allowed_lateness_s) == (agg.repeat_window_s, agg.allowed_lateness_s)
    assert SETTINGS.ivt_config() == ivt.IvtConfig()  # the schema's IVT defaults, as the reference's
    with pytest.raises(ValueError):
        BillingSettings(repeat_window_s=7)  # must divide a day
    with pytest.raises(ValueError):
        BillingSettings(repeat_window_s=120).ivt_config()  # divides a day, not a minute


@pytest.mark.parametrize("settings, oracle_args", [
    (BillingSettings(repeat_window_s=60, burst_threshold=3, cutoff_hours=0), {}),
    (BillingSettings(burst_window_ms=60_000, burst_threshold=2, min_click_delay_ms=0,
                     ivt_rules="impression_repeat,ip_burst,datacenter_ip"),
     {"rules": ("impression_repeat", "ip_burst", "datacenter_ip")}),
    (BillingSettings(ivt_rules=""), {"rules": ()}),
], ids=["window-threshold-cutoff", "some-rules-burst-minute", "no-rules"])
def test_other_settings_match_oracle(world, spark, settings, oracle_args):
    raw, _ = read_raw(spark, world["raw"], DAY, settings)
    flagged = flag_clicks(raw, DAY, settings).cache()
    got = keyed([r.asDict() for r in aggregate(flagged)])
    args = {"repeat_window_s": settings.repeat_window_s, "burst_threshold": settings.burst_threshold,
            "cutoff_hours": settings.cutoff_hours, "burst_window_ms": settings.burst_window_ms,
            "min_click_delay_ms": settings.min_click_delay_ms, **oracle_args}
    want, verdicts = billing_oracle(world["scenario"].rows, DAY, **args)
    assert got == want
    assert verdicts_of(flagged) == verdicts
    flagged.unpersist()
    if not oracle_args.get("rules", True):
        assert {v for v in verdicts.values()} == {V}


def aggregate(flagged):
    from glue_jobs.billing.transform import aggregate_hourly
    return aggregate_hourly(flagged, DAY).collect()


def test_local_entry_point(world, tmp_path):
    from glue_jobs import billing_job

    out = str(tmp_path / "job")
    stats = billing_job.main_local(["--day", DAY.isoformat(), "--raw_path", world["raw"], "--out-path", out,
                                    "--shuffle-partitions", "2", "--write-flagged", "false"])
    assert stats["billable_clicks"] == world["stats"]["billable_clicks"]
    assert keyed(read_day(out, "hourly", DAY)) == world["oracle"][0]
    assert not os.path.exists(f"{out}/flagged")
    day, settings, flagged = billing_job.settings_from({"day": "2026-01-02", "cutoff_hours": "0",
                                                        "burst_threshold": "4", "ivt_rules": "bot_ua",
                                                        "burst_window_ms": "500", "min_click_delay_ms": "0"})
    assert (day, settings.cutoff_hours, settings.burst_threshold, flagged) == (date(2026, 1, 2), 0, 4, True)
    assert settings.ivt_config() == ivt.IvtConfig(rules=frozenset({"bot_ua"}), burst_threshold=4,
                                                  burst_window_ms=500, min_click_delay_ms=0)
    assert (settings.allowed_lateness_s, settings.watermark_delay_s) == (900, 5)
    _, settings, _ = billing_job.settings_from({"allowed_lateness_s": "600", "watermark_delay_s": "0"})
    assert (settings.allowed_lateness_s, settings.watermark_delay_s, settings.late_after_ms) == (600, 0, 660_000)


def test_reconcile_against_simulated_stream_is_fully_explained(world):
    """The stream modelled independently (tests/glue/stream_model.py: arrival order, watermark,
    the same rules with arrival-order elections and an impression memory of 1800 s) against the
    batch's hourly rows: every difference explained, by the causes placed by hand."""
    batch = read_day(world["out"], "hourly", DAY)
    # the stream only sees what reached it: everything ingested, including after the cutoff
    realtime = simulated_stream(world["scenario"].rows, day_start(DAY))
    rows, summary = reconcile(batch, realtime)
    assert summary["unexplained_clicks"] == 0, [r for r in rows if r["unexplained"]]
    hourly, _ = world["oracle"]
    totals = Counter()
    for m in hourly.values():
        totals.update(m)
    assert (totals["late_billable_clicks"], totals["election_gain_clicks"], totals["election_loss_clicks"],
            totals["impression_memory_clicks"]) == (len(LATE_CASES), 2, 2, 4)
    # every click arriving after the 2 h cutoff is also beyond the lateness, so both miss it.
    # late_edge (ingested exactly at minute end + lateness + delay) is late by the diagnostic, but
    # the simulated watermark (newest event time seen - 5 s) trails its ingest time: not dropped.
    # The two elections lost and won are within one (ad, hour) each: no difference there. The
    # stream forgot the four remembered-by-the-batch impressions: it bills those repeats.
    assert summary["total_diff"] == 4 - (len(LATE_CASES) - 1)
    assert summary["explained_clicks"] == {"late": len(LATE_CASES) - 1, "election": 0,
                                           "impression_memory": 4, "duplicates": 0}
    # rows: the three stream-dropped late clicks are ad-7's hour 23; the repeats ad-13 hour 18 (1)
    # and ad-14 hour 16 (3)
    assert summary["classes"]["late_beyond_lateness"] == 1 and summary["classes"]["impression_memory"] == 2
    assert set(summary["classes"]) == {"none", "late_beyond_lateness", "impression_memory"}
    # per verdict: the stream's four billed impression repeats are invalid in the batch
    assert summary["diff_by_verdict"] == {"valid": summary["total_diff"], "suspect": 0, "invalid": -4}
    assert summary["batch_by_verdict"] == {"valid": totals["billable_clicks"],
                                           "suspect": totals["suspect_clicks"], "invalid": totals["invalid_clicks"]}
    assert summary["total_drift"] == pytest.approx(abs(summary["total_diff"]) / summary["batch_billable"])


# --- cross-engine: the job's verdict of every click = common/ivt.py's reference ------------------
@pytest.fixture(scope="module")
def ivt_world(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("ivt-batch")
    batch = build_ivt_batch(DAY)
    batch.write(root / "raw" / "clicks")
    return {"batch": batch, "raw": str(root / "raw" / "clicks")}


def test_cross_engine_verdicts_equal_ivt_evaluate(ivt_world, spark):
    """A generated batch (bots from the real pattern list, data-centre ips from the real CSV in
    several notations, bursts across ads, impression repeats also across midnight with first
    clicks in lookback partitions, too-fast clicks, user repeats, nulls): the Spark verdict and
    reasons of every click of D equal `ivt.evaluate` over the same clicks (unique click_ids, every
    arrival in a partition the job reads, so nothing here depends on the job's windows)."""
    clicks = [c for c, _ in ivt_world["batch"].rows]
    assert len({c["click_id"] for c in clicks}) == len(clicks)
    d0 = day_start(DAY)
    reference = ivt.evaluate(clicks)
    want = {c["click_id"]: reference[c["click_id"]] for c in clicks if d0 <= c["event_time"] < d0 + DAY_MS}
    raw, _ = read_raw(spark, ivt_world["raw"], DAY, SETTINGS)
    got = verdicts_of(flag_clicks(raw, DAY, SETTINGS))
    assert got == {cid: (v.verdict, ivt.encode_reasons(v.reasons)) for cid, v in want.items()}
    # the batch exercises every rule, alone and together, every verdict, and the nulls
    per_reason = Counter(r for v in want.values() for r in v.reasons)
    assert all(per_reason[r] >= 100 for r in ivt.REASONS), per_reason
    assert len({v.reasons for v in want.values() if len(v.reasons) > 1}) >= 10
    assert Counter(v.verdict for v in want.values())["valid"] > len(want) // 2
    day_clicks = [c for c in clicks if c["click_id"] in want]
    for field in ("user_agent", "ip", "user_id", "impression_id", "issued_at", "ingest_time"):
        assert any(c[field] is None for c in day_clicks), field
    earlier = {c["impression_id"] for c in clicks if c["event_time"] < d0 and c["impression_id"]}
    assert sum(1 for c in day_clicks if c["impression_id"] in earlier
               and ivt.IMPRESSION_REPEAT in want[c["click_id"]].reasons) >= 10


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

    def record(spark, raw_path, out_path, day, settings, write_flagged, events_path=None, budgets=None):
        calls.append((spark, raw_path, out_path, day, settings, write_flagged, events_path, budgets))
        return {"day": day.isoformat()}

    monkeypatch.setattr(run, "run_day", record)
    return calls


@pytest.mark.parametrize("options, settings, write_flagged, events_path", [
    # infra's defaults (test_infra_billing: default_template)
    (["--cutoff_hours", "2", "--repeat_window_s", "10", "--allowed_lateness_s", "900",
      "--watermark_delay_s", "5", "--burst_threshold", "10", "--write_flagged", "true",
      "--ivt_rules", "bot_ua,impression_repeat,too_fast,datacenter_ip,ip_burst,user_repeat",
      "--burst_window_ms", "1000", "--min_click_delay_ms", "1000", "--attribution_window_s", "604800",
      "--events_path", "s3://b/raw/events"],
     BillingSettings(), True, "s3://b/raw/events"),
    # every option away from its default (cutoff 0 included: a falsy-looking value)
    (["--cutoff_hours", "0", "--repeat_window_s", "5", "--allowed_lateness_s", "600",
      "--watermark_delay_s", "10", "--burst_threshold", "20", "--write_flagged", "false",
      "--ivt_rules", "too_fast,ip_burst", "--burst_window_ms", "2000", "--min_click_delay_ms", "0",
      "--attribution_window_s", "86400"],
     BillingSettings(repeat_window_s=5, burst_threshold=20, cutoff_hours=0, allowed_lateness_s=600,
                     watermark_delay_s=10, ivt_rules="too_fast,ip_burst", burst_window_ms=2000,
                     min_click_delay_ms=0, attribution_window_s=86400), False, None),
    # none of the optional ones
    ([], BillingSettings(), True, None),
], ids=["infra-defaults", "all-custom", "no-options"])
def test_glue_entry_resolves_glue_arguments(glue_billing_job, recorded_run_day, spark, monkeypatch,
                                            options, settings, write_flagged, events_path):
    runtime = GlueRuntime(spark)
    runtime.install(monkeypatch, glue_billing_job)
    monkeypatch.setattr(sys, "argv", glue_argv("s3://b/raw/clicks", "s3://b/billing", *options))
    stats = glue_billing_job.main_glue(now=lambda: AFTER_MIDNIGHT)
    assert stats == {"day": "2026-03-10"}
    assert recorded_run_day == [(spark, "s3://b/raw/clicks", "s3://b/billing", DAY, settings, write_flagged,
                                 events_path, None)]  # no --budgets_table: no budgets read
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
    assert recorded_run_day == [(spark, "r", "o", DAY, BillingSettings(repeat_window_s=5, cutoff_hours=0), False,
                                 None, None)]


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
