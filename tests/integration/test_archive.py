"""Raw archive: the local Firehose stand-in writes exactly the accepted clicks as Parquet in the
shared layout, survives restarts without loss or duplicates, and the named analyst queries
(Athena/DuckDB common subset) give the ground truth on DuckDB.

No test reads the wall clock: partitions come from the records' arrival stamps, which the
`stack` fixture pins (tests/clock.py), and the queries' "now" is passed explicitly."""
from __future__ import annotations

import io
import json
import time
from collections import Counter, defaultdict
from datetime import datetime

import boto3
import pyarrow.parquet as pq
import pytest

from common.archive import RAW_COLUMNS, RAW_PREFIX, partition_of
from common.config import ResourceNames
from common.named_queries import NAMED_QUERIES, athena_parameters, render
from common.records import encode_click
from local.archiver import LocalArchiver
from local.resources import create_all
from tools.analytics import run_duckdb, sync_archive
from tests.clock import FEBRUARY_END, MONTH_END, UTC, Clock, pin_kinesis_arrival

NAMES = ResourceNames()
START = datetime(2026, 11, 18, 17, 30, 12, 345_000, tzinfo=UTC)  # mid-hour; clicks arrive now
NOW = round(START.timestamp() * 1000)


def clicks(n, start=0, dup_every=0):
    out = []
    for i in range(start, start + n):
        out.append({"click_id": f"c{i}", "ad_id": f"ad{i % 7}", "campaign_id": f"k{i % 3}",
                    "advertiser_id": f"v{i % 2}", "user_id": f"u{i}", "event_time": NOW - (i * 7919) % 7_200_000,
                    "cost_micros": 250_000 + i, "ip": None, "user_agent": "ua", "referrer": None,
                    "ingest_time": NOW - 1000, "request_id": "r", "source_ip": "203.0.113.1",
                    # a token's fields on every other click (null without a token)
                    "impression_id": f"imp-{i}" if i % 2 else None,
                    "issued_at": NOW - 60_000 - i if i % 2 else None})
    return out


def put(recs):
    kinesis = boto3.client("kinesis")
    for i in range(0, len(recs), 500):
        kinesis.put_records(StreamName=NAMES.clicks_stream, Records=[
            {"Data": encode_click(r), "PartitionKey": r["ad_id"]} for r in recs[i : i + 500]])


def archived_rows():
    s3 = boto3.client("s3")
    rows = []
    for obj in s3.list_objects_v2(Bucket=NAMES.archive_bucket).get("Contents", []):
        assert obj["Key"].startswith(RAW_PREFIX)
        body = s3.get_object(Bucket=NAMES.archive_bucket, Key=obj["Key"])["Body"].read()
        table = pq.read_table(io.BytesIO(body))
        assert table.schema.names == [c for c, _ in RAW_COLUMNS]
        rows.extend(table.to_pylist())
    return rows


@pytest.fixture
def clock(monkeypatch):
    """The arrival clock of the (in-process) clicks stream, pinned at START."""
    c = Clock(START)
    pin_kinesis_arrival(monkeypatch, c)
    return c


@pytest.fixture
def stack(aws, tmp_path, clock):
    create_all(NAMES)
    return tmp_path


def partition_by_gmtime(arrival_ms: int) -> tuple[str, str]:
    """Brute-force oracle for common.archive.partition_of: the C library's UTC calendar."""
    t = time.gmtime(arrival_ms // 1000)
    return time.strftime("%Y-%m-%d", t), time.strftime("%H", t)


def archived_by_partition() -> dict[tuple[str, str], list[str]]:
    """{(dt, hr): sorted click_ids (copies included)} as the archive holds them, from object keys."""
    s3, out = boto3.client("s3"), defaultdict(list)
    for obj in s3.list_objects_v2(Bucket=NAMES.archive_bucket).get("Contents", []):
        key = obj["Key"]
        assert key.startswith(RAW_PREFIX) and key.endswith(".parquet"), key
        dt, hr = (part.split("=", 1)[1] for part in key[len(RAW_PREFIX):].split("/")[:2])
        body = s3.get_object(Bucket=NAMES.archive_bucket, Key=key)["Body"].read()
        out[(dt, hr)].extend(pq.read_table(io.BytesIO(body)).column("click_id").to_pylist())
    return {k: sorted(v) for k, v in out.items()}


def test_archive_holds_exactly_the_stream(stack, clock):
    put(clicks(1200))
    archiver = LocalArchiver(NAMES.clicks_stream, NAMES.archive_bucket, stack, page_limit=300)
    clock.advance(3600)  # archived an hour later: the partition is still the arrival hour
    while archiver.drain_once():
        pass
    rows = archived_rows()
    assert sorted(r["click_id"] for r in rows) == sorted(f"c{i}" for i in range(1200))
    assert {r["click_id"]: r for r in rows}["c5"] == {k: v for k, v in clicks(1, 5)[0].items()}
    assert partition_of(NOW) == partition_by_gmtime(NOW) == ("2026-11-18", "17")
    assert archived_by_partition() == {("2026-11-18", "17"): sorted(f"c{i}" for i in range(1200))}


@pytest.mark.parametrize("start,before,after", [
    (MONTH_END, ("2026-12-31", "23"), ("2027-01-01", "00")),     # year, month and day end
    (FEBRUARY_END, ("2027-02-28", "23"), ("2027-03-01", "00")),  # a 28-day February
], ids=["2026-12-31", "2027-02-28"])
def test_archive_partitions_across_the_month_boundary(stack, clock, start, before, after, tmp_path):
    """Clicks arrive from 23:59:58.000 on, one batch of 5 every 100 ms (20 batches before
    midnight, 20 after, plus 3 retried copies after it). The archiver crashes after writing a
    page that straddles midnight but before checkpointing it, and restarts 5 s later: every
    record sits in the partition of its arrival time exactly once, the pre-crash objects are
    replaced in place. Checked against a brute-force oracle and hand-computed counts."""
    clock.set(start)
    t0 = clock.ms()
    kinesis = boto3.client("kinesis")
    arrival: dict[str, list[int]] = defaultdict(list)
    sent: list[dict] = []

    def put_batches(batches: range) -> None:
        for b in batches:
            batch = []
            for i in range(b * 5, b * 5 + 5):
                event = clock.ms() - (i * 37) % 3_000 + (200_000 if i % 50 == 7 else 0)  # some clocks ahead
                batch.append({"click_id": f"m{i:03d}", "ad_id": f"ad{i % 4}", "campaign_id": "k",
                              "advertiser_id": f"v{i % 3}", "user_id": f"u{i}", "event_time": event,
                              "cost_micros": 1000 + i, "ip": None, "user_agent": "ua", "referrer": None,
                              "ingest_time": clock.ms() - 5, "request_id": "r", "source_ip": "203.0.113.1"})
            sent.extend(batch)
            if b == 25:  # client retries, after midnight, of clicks first accepted before it
                batch += [dict(c, request_id="retry") for c in sent[10:13]]
            kinesis.put_records(StreamName=NAMES.clicks_stream, Records=[
                {"Data": encode_click(c), "PartitionKey": c["ad_id"]} for c in batch])
            for c in batch:
                arrival[c["click_id"]].append(clock.ms())
            clock.advance(ms=100)

    def keys() -> set[str]:
        return {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=NAMES.archive_bucket).get("Contents", [])}

    put_batches(range(0, 15))
    archiver = LocalArchiver(NAMES.clicks_stream, NAMES.archive_bucket, stack, page_limit=30)
    while archiver.drain_once():
        pass
    assert clock.ms() == t0 + 1_500
    put_batches(range(15, 30))
    before_crash = keys()

    def crash(*_):
        raise RuntimeError("killed between writing the objects and saving the position")

    archiver.checkpoints.save = crash
    with pytest.raises(RuntimeError):
        archiver.drain_once()
    written = keys() - before_crash
    assert {tuple(p.split("=")[1] for p in k[len(RAW_PREFIX):].split("/")[:2]) for k in written} == {before, after}

    clock.advance(5)  # restarted 5 s later; more clicks meanwhile
    put_batches(range(30, 40))
    restarted = LocalArchiver(NAMES.clicks_stream, NAMES.archive_bucket, stack, page_limit=30)
    while restarted.drain_once():
        pass
    assert written <= keys()

    oracle: dict[tuple[str, str], list[str]] = defaultdict(list)
    for cid, times in arrival.items():
        for t in times:
            oracle[partition_by_gmtime(t)].append(cid)
    archived = archived_by_partition()
    assert archived == {k: sorted(v) for k, v in oracle.items()}
    assert {k: len(v) for k, v in archived.items()} == {before: 100, after: 103}  # 20 / 20 batches + 3 copies

    # the named queries over the month end (DuckDB), now = after the last arrival
    root = tmp_path / "archive"
    sync_archive(NAMES.archive_bucket, root)
    sql, binds = render("duplicate_rate_per_hour", now_ms=clock.ms())
    _, rows = run_duckdb(sql, root, binds)
    assert rows == [(*before, 100, 100, 0), (*after, 103, 103, 0)]
    sql, binds = render("clicks_per_advertiser_per_day", {"n": "1"}, now_ms=clock.ms() + 300_000)
    _, rows = run_duckdb(sql, root, binds)
    per_day: Counter = Counter()
    for c in sent:
        per_day[(c["advertiser_id"], time.strftime("%Y-%m-%d", time.gmtime(c["event_time"] // 1000)))] += 1
    assert sorted((adv, time.strftime("%Y-%m-%d", time.gmtime(day_ms // 1000)), n) for adv, day_ms, n, _ in rows) \
        == sorted((adv, day, n) for (adv, day), n in per_day.items())
    assert {day for _, day in per_day} == {before[0], after[0]}


def test_restart_resumes_without_loss_or_duplicates(stack):
    put(clicks(900))
    a1 = LocalArchiver(NAMES.clicks_stream, NAMES.archive_bucket, stack, page_limit=200)
    a1.drain_once()
    # crash between writing objects and checkpointing: roll the checkpoint file back
    ckpt = stack / f"archiver-{NAMES.clicks_stream}.json"
    saved = json.loads(ckpt.read_text())
    ckpt.write_text(json.dumps({k: v for k, v in list(saved.items())[:1]}))
    put(clicks(600, start=900))  # more clicks arrive while it is down
    a2 = LocalArchiver(NAMES.clicks_stream, NAMES.archive_bucket, stack, page_limit=200)
    while a2.drain_once():
        pass
    ids = Counter(r["click_id"] for r in archived_rows())
    assert len(ids) == 1500 and max(ids.values()) == 1


def test_named_queries_on_duckdb_match_oracle(stack, tmp_path):
    data = clicks(3000)
    put(data + data[:40])  # 40 copies reach the archive (at-least-once): queries must not count them
    archiver = LocalArchiver(NAMES.clicks_stream, NAMES.archive_bucket, stack, page_limit=1000)
    while archiver.drain_once():
        pass
    root = tmp_path / "archive"
    assert sync_archive(NAMES.archive_bucket, root) > 0

    sql, binds = render("top_k_last_n_hours", {"n": "1", "k": "5"}, now_ms=NOW)
    cols, rows = run_duckdb(sql, root, binds)
    in_window = [c for c in data if NOW - 3_600_000 <= c["event_time"] <= NOW]
    oracle = sorted(Counter(c["ad_id"] for c in in_window).items(), key=lambda t: (-t[1], t[0]))[:5]
    assert cols == ["ad_id", "clicks"] and rows == oracle

    sql, binds = render("clicks_per_advertiser_per_day", {"n": "24"}, now_ms=NOW)
    _, rows = run_duckdb(sql, root, binds)
    per = Counter()
    cost = Counter()
    for c in data:
        key = (c["advertiser_id"], c["event_time"] - c["event_time"] % 86_400_000)
        per[key] += 1
        cost[key] += c["cost_micros"]
    assert sorted(rows, key=lambda r: (r[1], r[0])) == sorted(
        [(k[0], k[1], per[k], cost[k]) for k in per], key=lambda r: (r[1], r[0]))

    sql, binds = render("duplicate_rate_per_hour", now_ms=NOW)
    _, rows = run_duckdb(sql, root, binds)
    assert sum(r[2] for r in rows) == 3040 and sum(r[3] for r in rows) == 3000 and sum(r[4] for r in rows) == 40

    sql, binds = render("late_arrival_distribution", now_ms=NOW)
    _, rows = run_duckdb(sql, root, binds)
    lags = Counter()
    for c in data:
        lag = c["ingest_time"] - c["event_time"]
        lags["0-1m" if lag < 60_000 else "1-5m" if lag < 300_000 else "5-15m" if lag < 900_000
             else "15-60m" if lag < 3_600_000 else "60m+"] += 1
    assert {r[0]: r[1] for r in rows} == dict(lags)


def test_named_query_parameters_are_validated():
    with pytest.raises(ValueError):
        render("top_k_last_n_hours", {"n": "1; DROP TABLE x"})
    with pytest.raises(ValueError):
        render("top_k_last_n_hours", {"bogus": "1"})
    with pytest.raises(ValueError):
        render("nope")
    assert athena_parameters(["2026-01-01", 5]) == ["'2026-01-01'", "5"]
    assert set(NAMED_QUERIES) == {"top_k_last_n_hours", "clicks_per_advertiser_per_day",
                                  "duplicate_rate_per_hour", "late_arrival_distribution",
                                  "refused_clicks_by_reason", "ctr_per_campaign_per_day",
                                  "conversions_per_campaign_per_day", "spend_vs_budget_per_campaign_per_day"}
    # tests/glue/test_billing_budget.py runs the spend report on the billing job's output
    # the billing reports: tests/glue/test_billing_events.py runs them on the billing job's output
    assert {q.name for q in NAMED_QUERIES.values() if "billing_hourly" in q.tables} == {
        "ctr_per_campaign_per_day", "conversions_per_campaign_per_day"}
    assert {q.name for q in NAMED_QUERIES.values() if q.table == "refused_clicks"} == {
        "refused_clicks_by_reason"}  # tests/integration/test_refused_archive.py runs it
