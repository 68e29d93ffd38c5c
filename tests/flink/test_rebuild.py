"""The rebuild (functions/aggregate/job/rebuild.py: the job's own SQL in Flink batch mode over
the raw Parquet archive) against the brute-force oracle the stream job meets in
test_flink_minicluster.py: every aggregate (per ad, campaign, advertiser; 1m, 5m, 1h, 1d),
leaderboard, late counter and budget-lane spend row of the range equals the oracle's, and so
the stream's own output for the same clicks.

The archive is the MiniCluster test's scenario as Firehose would have written it: every copy
the stream receives (duplicates included), Parquet under raw/<clicks|events>/dt=/hr=/ by
arrival. Arrival = the ingest time the ingest Lambda stamps: batch k of the scenario (published
k-th) arrives in its own second, rows in publish order, so the rebuild's arrival order is the
publish order and its watermark for batch k (newest event time of the batches before it, minus
the delay) lies within the bounds the oracle's lateness decisions hold for (datagen's docstring).
The issued_at of each click moves with its ingest time (the too-fast rule reads the difference)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import datagen
import harness

DAY = 86_400_000


@pytest.fixture(scope="module")
def scenario():
    return datagen.generate(events=True)


@pytest.fixture(scope="module")
def expected(scenario):
    return datagen.oracle(scenario)


def arrivals(batches: list[list[dict]]) -> list[int]:
    """Arrival second (ms) of each batch: at its newest event time, one second after the
    previous batch at least."""
    out, newest = [], None
    for batch in batches:
        top = max((r["event_time"] for r in batch), default=None)
        newest = top if newest is None else max(newest, top or newest)
        s = (newest or datagen.T0) // 1000 * 1000
        out.append(max(s, out[-1] + 1000) if out else s)
    return out


def write_archive(root: Path, scenario) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from common.archive import CLICKS, EVENTS, partition_of

    written = {}
    for layout, batches in ((CLICKS, scenario.batches), (EVENTS, scenario.event_batches)):
        assert all(len(b) < 1000 for b in batches)  # a batch's rows fit in its second
        parts: dict[tuple[str, str], list[dict]] = {}
        for second, batch in zip(arrivals(scenario.batches), batches):
            for i, row in enumerate(batch):
                r = dict(row)
                shift = second + i - r["ingest_time"]
                r["ingest_time"] = second + i
                if r.get("issued_at") is not None and layout is CLICKS:
                    r["issued_at"] += shift
                parts.setdefault(partition_of(second + i), []).append(r)
        types = {"string": pa.string(), "bigint": pa.int64(), "int": pa.int32()}
        schema = pa.schema([(n, types[t]) for n, t in layout.columns])
        for (dt, hr), rows in parts.items():
            d = root / layout.prefix / f"dt={dt}" / f"hr={hr}"
            d.mkdir(parents=True, exist_ok=True)
            table = pa.Table.from_pylist([{n: r.get(n) for n, _ in layout.columns} for r in rows],
                                         schema=schema)
            pq.write_table(table, d / f"{layout.name}-0.parquet", compression="snappy")
        written[layout.name] = sum(len(v) for v in parts.values())
    return written


def settings_for(scenario):
    from aggregate.job.settings import JobSettings

    return JobSettings.from_properties({"clickagg": {
        "aws_region": "us-east-1",
        "clicks_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/clicks",
        "aggregates_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/aggregates",
        "allowed_lateness_s": str(scenario.lateness_s),
        "watermark_delay_s": str(scenario.delay_s),
        "repeat_window_s": str(scenario.repeat_window_s),
        "leaderboard_size": str(scenario.leaderboard_size),
        "parallelism": "2",
    }})


def read_rows(out: Path) -> list[dict]:
    rows = []
    for f in sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return rows


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory, scenario):
    from aggregate.job import rebuild
    from aggregate.job.main import connector_jar_uri

    root = tmp_path_factory.mktemp("archive")
    written = write_archive(root, scenario)
    s = settings_for(scenario)
    day0 = datagen.T0 - datagen.T0 % DAY
    r = rebuild.rebuild_range(day0, day0 + 2 * DAY, now_ms=day0 + 10 * DAY, s=s)
    out = tmp_path_factory.mktemp("rebuilt") / "rows"
    rebuild.run(s, r, root.as_uri(), out.as_uri(), jar_uri=connector_jar_uri())
    rows = read_rows(out)
    m = harness.Materialized()
    for row in rows:
        m.apply({"before": None, "after": row, "op": "c"})
    return {"rows": rows, "m": m, "written": written, "range": r, "archive": root.as_uri()}


def test_archive_holds_every_copy_the_stream_received(rebuilt, scenario):
    assert rebuilt["written"]["clicks"] == sum(len(b) for b in scenario.batches)
    assert rebuilt["written"]["events"] == sum(len(b) for b in scenario.event_batches) > 0


def test_rebuild_equals_the_oracle_for_every_output(rebuilt, expected):
    """Aggregates per ad, campaign and advertiser at every resolution, leaderboards, late
    counters and the budget lane's spend: all equal to the oracle (harness.diff compares each)."""
    assert harness.diff(rebuilt["m"], expected) == []
    m = rebuilt["m"]
    assert len(m.agg) == len(expected.aggs) > 100
    assert sum(r["late_dropped"] for r in m.late.values()) > 0
    assert {k[0] for k in m.rollups} == {"campaign", "advertiser"}
    assert m.spend and m.tops() == expected.tops


def test_one_final_row_per_key_with_the_streams_final_version(rebuilt):
    """Batch output is final: one row per key (no changelog), and its version is the key's
    COUNT(*) (the stream's last emission carries the same)."""
    keys = [(r["kind"], r["resolution"], r["bucket_start"], r["entity_id"]) for r in rebuilt["rows"]]
    assert len(keys) == len(set(keys))
    for (res, b, ad), row in rebuilt["m"].top.items():  # an entry is a copy of its agg row
        assert row["version"] == rebuilt["m"].agg[(res, b, ad)]["version"]
    assert not any(r["kind"] == "pulse" for r in rebuilt["rows"])


def test_a_range_owns_only_buckets_wholly_inside_it(tmp_path, scenario, expected, rebuilt):
    """The range's last hour before midnight only: no 1d row (the day is not wholly inside),
    and exactly the oracle's 1m/5m/1h rows of that hour."""
    from aggregate.job import rebuild
    from aggregate.job.main import connector_jar_uri

    s = settings_for(scenario)
    day1 = datagen.T0 - datagen.T0 % DAY + DAY
    r = rebuild.rebuild_range(day1 - 3_600_000, day1, now_ms=day1 + 10 * DAY, s=s)
    rebuild.run(s, r, rebuilt["archive"], (tmp_path / "rows").as_uri(), jar_uri=connector_jar_uri())
    rows = read_rows(tmp_path / "rows")
    assert rows and all(r.start_ms <= row["bucket_start"] < r.end_ms for row in rows)
    assert not any(row["resolution"] == "1d" for row in rows)
    got = {(row["resolution"], row["bucket_start"], row["ad_id"]): row["clicks"]
           for row in rows if row["kind"] == "agg"}
    want = {k: a["clicks"] for k, a in expected.aggs.items()
            if k[0] != "1d" and r.start_ms <= k[1] < r.end_ms}
    assert got == want and len(got) > 10


def test_refuses_a_range_the_stream_still_owns(scenario):
    from aggregate.job import rebuild

    s = settings_for(scenario)
    day = 1_710_028_800_000
    with pytest.raises(rebuild.RebuildError, match="not final"):
        rebuild.rebuild_range(day, day + DAY, now_ms=day + DAY + 3_600_000, s=s)
    with pytest.raises(rebuild.RebuildError, match="whole minutes"):
        rebuild.rebuild_range(day + 1, day + DAY, now_ms=day + 9 * DAY, s=s)
    with pytest.raises(rebuild.RebuildError, match="empty"):
        rebuild.rebuild_range(day, day, now_ms=day + 9 * DAY, s=s)
    r = rebuild.rebuild_range(day, day + DAY, now_ms=day + DAY + 2 * 3_600_000, s=s)
    # from the stream's dedup memory + the future skew before the start to the cutoff after the end
    assert s.dedup_ttl_s == 1800 and r.read_from_ms == day - 2_100_000
    assert r.partitions[0] == ("2024-03-09", "23") and r.partitions[-1] == ("2024-03-11", "01")
    assert len(r.partitions) == 1 + 24 + 2
