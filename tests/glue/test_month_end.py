"""Billing and reconciliation at a month end, with the jobs' clock pinned 2 s before midnight and
2 s later (tests/clock.py), on an archive written through the archive path itself: clicks go
through (in-process moto) Kinesis, whose arrival stamps follow the same pinned clock, and the
local Firehose stand-in (local/archiver.py) writes them in the raw archive layout.

Expected values come from the independent oracle (tests/glue/oracle.py), a brute-force
partitioning (time.gmtime) and hand-placed cases with hand-written outcomes. Runs in .venv-glue."""
from __future__ import annotations

import time
from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest

from glue_jobs import billing_job
from glue_jobs import reconcile as rc
from glue_jobs.billing.transform import input_partitions
from tests.clock import FEBRUARY_END, MONTH_END, Clock, pin_kinesis_arrival
from tests.glue.oracle import billing_oracle, day_start
from tests.glue.scenario import DAY_MS, HOUR, Scenario
from tests.glue.stream_model import simulated_stream
from tests.glue.test_billing import V, S, keyed, read_day

STREAM, BUCKET, TABLE = "month-end-clicks", "month-end-archive", "month-end-serving"
JOB_ARGS = ["--shuffle-partitions", "2"]


def build(last_day: date) -> Scenario:
    """Clicks around the midnight after `last_day` (D); n0 = that midnight. Arrival times are
    explicit: they decide the archive partitions."""
    s = Scenario(last_day, seed=31)
    rng, n0 = s.rng, s.d0 + DAY_MS
    # background: D 21:00 .. D+1 02:00, and the evening of D-1 (billed on D-1)
    for _ in range(400):
        s.click(n0 - 3 * HOUR + rng.randint(0, 5 * HOUR - 1), ad=rng.randint(0, 5))
    for _ in range(60):
        s.click(s.d0 - 2 * HOUR + rng.randint(0, 2 * HOUR - 1), ad=rng.randint(0, 5), name="prev_evening")
    # a retry across midnight: the copy that arrived first (before midnight) is the click
    a = s.click(n0 - 1_500, ingest=n0 - 1_000, arrival=n0 - 500, ad=1, name="dup_across_midnight")
    s.copy(a, ingest=n0 + 800, arrival=n0 + 1_200)
    # D's last millisecond arrives on D+1; D+1's first millisecond arrives on D (client clock ahead)
    s.click(n0 - 1, ingest=n0 + 300, arrival=n0 + 700, ad=2, name="last_ms_arrives_next_day")
    s.click(n0, ingest=n0 - 200, arrival=n0 - 100, ad=2, name="first_ms_arrives_prev_day")
    s.click(n0 + 180_000, ingest=n0 - 1_000, arrival=n0 - 900, ad=3, name="clock_ahead_into_next_day")
    # repeat rule: 10 s buckets end at midnight
    s.click(n0 - 3_000, ad=4, user="rm", name="repeat_before_midnight")
    s.click(n0 + 1_000, ad=4, user="rm", name="repeat_after_midnight")
    s.click(n0 - 2_000, ad=4, user="rr", name="repeat_winner_last_bucket")
    s.click(n0 - 1_500, ad=4, user="rr", name="repeat_last_bucket")
    # ip bursts (> 10 per ip and second): the last second of D, and 6 + 6 split by midnight
    for i in range(11):
        s.click(n0 - 1_000 + i * 80, ad=5, ip="10.9.9.9", user=f"b{i}", name="burst_last_second")
    for i in range(12):
        s.click(n0 - 900 + i * 100 + (300 if i >= 6 else 0), ad=5, ip="10.9.9.8", user=f"s{i}",
                name="burst_split_by_midnight")
    # beyond the stream's lateness (minute end + 900 s + 5 s) but inside the 2 h arrival cutoff
    s.click(n0 - 20 * 60_000, ingest=n0 + 500, arrival=n0 + 900, ad=0, user="late", name="late_beyond_lateness")
    # the arrival cutoff of D: D+1 hr 00-01 are read, hr 02 is not
    s.click(n0 - 30_000, ingest=n0 + 2 * HOUR - 2_000, arrival=n0 + 2 * HOUR - 1, ad=1, name="cutoff_last_ms")
    s.click(n0 - 40_000, ingest=n0 + 2 * HOUR - 1_000, arrival=n0 + 2 * HOUR, ad=1, name="after_cutoff")
    return s


def archive_through_the_stream(rows: list[tuple[dict, int]], clock: Clock, state_dir,
                               raw_root) -> list[tuple[dict, int]]:
    """Put the rows on an in-process Kinesis stream in arrival order, archive them with the local
    Firehose stand-in, copy the archive bucket to raw_root. Returns the rows with the arrival
    time the stream stamped. One PutRecords per arrival hour and 100 rows, the clock set to the
    first arrival of each: an arrival time only matters through its hour (the partition)."""
    import boto3
    from moto import mock_aws

    from common.records import encode_click
    from tools.analytics import sync_archive
    from local.archiver import LocalArchiver

    with mock_aws(), pytest.MonkeyPatch.context() as mp:
        pin_kinesis_arrival(mp, clock)
        kinesis = boto3.client("kinesis")
        kinesis.create_stream(StreamName=STREAM, ShardCount=2)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        archiver = LocalArchiver(STREAM, BUCKET, state_dir, page_limit=100)
        chunks: list[list[tuple[dict, int]]] = []
        for click, arrival in sorted(rows, key=lambda r: r[1]):
            if not chunks or len(chunks[-1]) == 100 or chunks[-1][0][1] // HOUR != arrival // HOUR:
                chunks.append([])
            chunks[-1].append((click, arrival))
        stamped = []
        for chunk in chunks:
            clock.set(datetime.fromtimestamp(chunk[0][1] / 1000, tz=clock.now().tzinfo))
            kinesis.put_records(StreamName=STREAM, Records=[
                {"Data": encode_click(c), "PartitionKey": c["ad_id"]} for c, _ in chunk])
            stamped += [(c, clock.ms()) for c, _ in chunk]
            archiver.drain_once()
        while archiver.drain_once():
            pass
        assert sync_archive(BUCKET, raw_root) > 0
    return stamped


@pytest.fixture(scope="module", params=[MONTH_END, FEBRUARY_END], ids=["2026-12-31", "2027-02-28"])
def world(request, spark, tmp_path_factory):
    start = request.param
    day = start.date()
    root = tmp_path_factory.mktemp(f"month-end-{day}")
    scenario = build(day)
    (root / "archiver-state").mkdir()
    stamped = archive_through_the_stream(scenario.rows, Clock(start), root / "archiver-state", root)
    assert sorted(gm_partition(a) for _, a in stamped) == sorted(gm_partition(a) for _, a in scenario.rows)
    scenario.rows = stamped
    raw, out = str(root / "raw" / "clicks"), str(root / "billing")
    # D's billing, for the reconciliation (the billing tests below run the job themselves)
    stats = billing_job.main_local(["--day", day.isoformat(), "--raw-path", raw, "--out-path", out, *JOB_ARGS])
    return {"start": start, "day": day, "next": day + timedelta(days=1), "prev": day - timedelta(days=1),
            "scenario": scenario, "root": root, "raw": raw, "out": out, "stats": stats}




def gm_partition(ms: int) -> tuple[str, str]:
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%d", t), time.strftime("%H", t)


def test_archive_partitions_are_the_arrival_hours(world):
    """What the billing job reads: each row in the partition of its arrival (brute force)."""
    import pyarrow.parquet as pq

    want: dict[tuple[str, str], list[str]] = defaultdict(list)
    for click, arrival in world["scenario"].rows:
        want[gm_partition(arrival)].append(click["click_id"])
    got: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in (world["root"] / "raw" / "clicks").rglob("*.parquet"):
        dt, hr = f.parent.parent.name.split("=")[1], f.parent.name.split("=")[1]
        got[(dt, hr)].extend(pq.read_table(f).column("click_id").to_pylist())
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
    n = world["next"].isoformat()
    d = world["day"].isoformat()
    assert {(d, "23"), (n, "00"), (n, "01"), (n, "02")} <= set(got)


def test_billing_auto_day_two_seconds_before_midnight(world, tmp_path):
    """--day auto at 23:59:58 of the month's last day is the day before it."""
    clock = Clock(world["start"])
    out = str(tmp_path / "billing")
    stats = billing_job.main_local(["--day", "auto", "--raw-path", world["raw"], "--out-path", out, *JOB_ARGS],
                                   now=clock.now)
    prev = world["prev"]
    assert stats["day"] == prev.isoformat()
    hourly, _ = billing_oracle(world["scenario"].rows, prev)
    assert keyed(read_day(out, "hourly", prev)) == hourly and len(hourly) > 10
    present = {str(p) for p in (world["root"] / "raw" / "clicks").glob("dt=*/hr=*")}
    assert stats["partitions_read"] == len(set(input_partitions(world["raw"], prev, 2)) & present)


def test_billing_across_the_month_boundary(world, tmp_path):
    """2 s later --day auto is the month's last day; then the new month's first day: each equals
    the oracle, and the hand-placed cases around midnight land where they must."""
    clock = Clock(world["start"]).advance(2)
    assert clock.now().day == 1 and clock.now().hour == 0 and clock.ms() % DAY_MS == 0
    out = str(tmp_path / "billing")
    day, nxt, scenario = world["day"], world["next"], world["scenario"]
    stats = billing_job.main_local(["--day", "auto", "--raw-path", world["raw"], "--out-path", out, *JOB_ARGS],
                                   now=clock.now)
    assert stats["day"] == day.isoformat()
    present = {str(p) for p in (world["root"] / "raw" / "clicks").glob("dt=*/hr=*")}
    wanted = input_partitions(world["raw"], day, 2)  # D-1 hr 23, D's 24 hours, D+1 hr 00-01
    assert {wanted[0], wanted[-2], wanted[-1]} <= present  # across the month boundary
    assert stats["partitions_read"] == len(set(wanted) & present)
    billing_job.main_local(["--day", nxt.isoformat(), "--raw-path", world["raw"], "--out-path", out, *JOB_ARGS])

    verdicts = {}
    for d in (day, nxt):
        hourly, why = billing_oracle(scenario.rows, d)
        assert keyed(read_day(out, "hourly", d)) == hourly, d
        assert {r["click_id"]: (r["verdict"], r["reasons"]) for r in read_day(out, "flagged", d)} == {
            k: v for k, v in why.items() if v != V}
        assert not set(verdicts) & set(why)  # a click is billed on one day only
        verdicts.update({cid: (d, v) for cid, v in why.items()})

    def outcome(name):
        return [verdicts.get(cid, "absent") for cid in scenario.named[name]]
    billable_on = lambda d: (d, V)  # noqa: E731
    assert outcome("dup_across_midnight") == [billable_on(day)]  # the copy arrived on D+1
    assert outcome("last_ms_arrives_next_day") == [billable_on(day)]
    assert outcome("first_ms_arrives_prev_day") == [billable_on(nxt)]
    assert outcome("clock_ahead_into_next_day") == [billable_on(nxt)]
    assert outcome("repeat_before_midnight") + outcome("repeat_after_midnight") == [billable_on(day), billable_on(nxt)]
    assert outcome("repeat_winner_last_bucket") + outcome("repeat_last_bucket") == [
        billable_on(day), (day, S("user_repeat"))]
    assert outcome("burst_last_second") == [(day, S("ip_burst"))] * 11
    assert outcome("burst_split_by_midnight") == [billable_on(day)] * 6 + [billable_on(nxt)] * 6
    assert outcome("late_beyond_lateness") == [billable_on(day)] and outcome("cutoff_last_ms") == [billable_on(day)]
    assert outcome("after_cutoff") == ["absent"]
    late = sum(r["late_billable_clicks"] for r in read_day(out, "hourly", day))
    assert late >= 2  # late_beyond_lateness, cutoff_last_ms
    copies = sum(r["duplicate_copies"] for r in read_day(out, "hourly", day) if r["ad_id"] == "ad-1")
    assert copies >= 1


def _put_realtime(ddb, rows: list[dict]) -> None:
    from aggregate.changes import Change
    from serving.write.dynamodb import item_for

    for r in rows:
        row = {"kind": "agg", "ad_id": r["ad_id"], "resolution": "1h", "bucket_start": r["hour_start_ms"],
               "version": 1, "clicks": r["billable_clicks"], "billable_clicks": r["billable_clicks"],
               "cost_micros": 0, "billable_cost_micros": 0, "campaign_id": "k", "advertiser_id": "v"}
        ddb.put_item(TableName=TABLE, Item=item_for(Change("agg", True, row), 86400))


def test_reconcile_across_the_month_boundary(world, aws, tmp_path):
    """The nightly reconciliation with --day auto at 23:59:58 and 2 s later: the day is the one
    before the clock's, the realtime side (a simulated stream, tests/glue/test_billing.py) against
    the batch gives exactly the oracle's differences, and the published summary and the drift
    metrics carry the pinned time."""
    import boto3

    from tests.glue.test_reconcile import _serving_table

    ddb = _serving_table(TABLE)
    day, scenario = world["day"], world["scenario"]
    realtime = simulated_stream(scenario.rows, day_start(day))
    _put_realtime(ddb, realtime)
    cw = boto3.client("cloudwatch")
    args = ["--day", "auto", "--out-path", world["out"], "--report-path", str(tmp_path / "report"),
            "--table", TABLE, "--emit-metrics", "true", "--JOB_ID", "j_1"]

    clock = Clock(world["start"])
    early = rc.main(args, now=clock.now)  # the previous day: no billing output there, no realtime rows
    assert early["day"] == world["prev"].isoformat() and early["rows"] == 0

    clock.advance(2)
    summary = rc.main(args, now=clock.now)
    assert summary["day"] == day.isoformat()
    hourly, _ = billing_oracle(scenario.rows, day)
    batch: dict[tuple[str, int], int] = defaultdict(int)
    for (_, _, ad, hour), m in hourly.items():
        batch[(ad, hour)] += m["billable_clicks"]
    stream = {(r["ad_id"], r["hour_start_ms"]): r["billable_clicks"] for r in realtime}
    diffs = {k: stream.get(k, 0) - batch.get(k, 0) for k in set(batch) | set(stream)}
    assert summary["batch_billable"] == sum(batch.values()) == world["stats"]["billable_clicks"]
    assert summary["realtime_billable"] == sum(stream.values())
    assert summary["total_diff"] == sum(diffs.values()) and summary["rows"] == len(diffs)
    assert summary["classes"].get("none", 0) == sum(1 for v in diffs.values() if v == 0)
    assert summary["explained_clicks"]["late"] >= 1 and summary["unexplained_clicks"] == 0
    # the stream has the batch's rules: the last second's burst is suspect on both sides, and no
    # election or impression tells them apart here (no impressions; one arrival order per repeat)
    assert summary["explained_clicks"] == {"late": summary["explained_clicks"]["late"], "election": 0,
                                           "impression_memory": 0, "duplicates": 0}
    assert summary["diff_by_verdict"]["valid"] == summary["total_diff"] < 0

    item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": rc.RECONCILIATION_PK}, "sk": {"S": day.isoformat()}})["Item"]
    assert int(item["fin"]["N"]) == clock.ms()
    # one datapoint per run, at the pinned times: 23:59:58 (the early run) and 00:00:00
    for name in ("TotalDrift", "WorstDrift"):
        for lo, hi in ((-30_000, -1_000), (-1_000, 30_000)):
            points = cw.get_metric_statistics(
                Namespace=rc.METRICS_NAMESPACE, MetricName=name, Period=60, Statistics=["SampleCount"],
                StartTime=clock.now() + timedelta(milliseconds=lo), EndTime=clock.now() + timedelta(milliseconds=hi))
            assert sum(p["SampleCount"] for p in points["Datapoints"]) == 1.0, (name, lo)
