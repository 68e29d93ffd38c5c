"""Raw archive: the local Firehose stand-in writes exactly the accepted clicks as Parquet in the
shared layout, survives restarts without loss or duplicates, and the named analyst queries
(Athena/DuckDB common subset) give the ground truth on DuckDB."""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from common.archive import RAW_COLUMNS, RAW_PREFIX, partition_of
from common.config import ResourceNames
from common.named_queries import NAMED_QUERIES, athena_parameters, render
from common.records import encode_click
from local.analytics import run_duckdb, sync_archive
from local.archiver import LocalArchiver
from local.resources import create_all

NAMES = ResourceNames()
NOW = int(time.time() * 1000)


def clicks(n, start=0, dup_every=0):
    out = []
    for i in range(start, start + n):
        out.append({"click_id": f"c{i}", "ad_id": f"ad{i % 7}", "campaign_id": f"k{i % 3}",
                    "advertiser_id": f"v{i % 2}", "user_id": f"u{i}", "event_time": NOW - (i * 7919) % 7_200_000,
                    "cost_micros": 250_000 + i, "ip": None, "user_agent": "ua", "referrer": None,
                    "ingest_time": NOW - 1000, "request_id": "r", "source_ip": "203.0.113.1"})
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
        table = pq.read_table(__import__("io").BytesIO(body))
        assert table.schema.names == [c for c, _ in RAW_COLUMNS]
        rows.extend(table.to_pylist())
    return rows


@pytest.fixture
def stack(aws, tmp_path):
    create_all(NAMES)
    return tmp_path


def test_archive_holds_exactly_the_stream(stack):
    put(clicks(1200))
    archiver = LocalArchiver(NAMES.clicks_stream, NAMES.archive_bucket, stack, page_limit=300)
    while archiver.drain_once():
        pass
    rows = archived_rows()
    assert sorted(r["click_id"] for r in rows) == sorted(f"c{i}" for i in range(1200))
    assert {r["click_id"]: r for r in rows}["c5"] == {k: v for k, v in clicks(1, 5)[0].items()}
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=NAMES.archive_bucket)["Contents"]]
    dt, hr = partition_of(NOW)
    assert all(f"dt={dt}/hr=" in k or "dt=" in k for k in keys) and any(f"dt={dt}/hr={hr}/" in k for k in keys)


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
                                  "duplicate_rate_per_hour", "late_arrival_distribution"}
