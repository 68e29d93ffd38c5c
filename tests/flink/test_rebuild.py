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

from pathlib import Path

import pytest

import datagen
import harness

DAY = 86_400_000
HOUR = 3_600_000
DAY1 = datagen.T0 - datagen.T0 % DAY + DAY  # the scenario runs from 23:15 into this day
# the rebuilt range: from 23:00 (every click of the scenario is at or after 23:15) to the end of
# DAY1, so it owns every 1m/5m/1h bucket and DAY1's 1d bucket, but not the day before's
START, END = DAY1 - HOUR, DAY1 + DAY


def restricted(exp, keep):
    """The oracle's expectation for the buckets `keep(resolution, bucket_start)` accepts."""
    from dataclasses import replace

    return replace(exp, aggs={k: v for k, v in exp.aggs.items() if keep(k[0], k[1])},
                   tops={k: v for k, v in exp.tops.items() if keep(*k)},
                   late={k: v for k, v in exp.late.items() if keep("1m", k[0])},
                   rollups={k: v for k, v in exp.rollups.items() if keep(k[1], k[2])})


def owned(resolution: str, bucket_start: int) -> bool:
    return bucket_start >= START and bucket_start + datagen.RESOLUTIONS[resolution] <= END


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


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory, scenario):
    from aggregate.job import rebuild
    from aggregate.job.main import connector_jar_uri
    from serving.rebuild.loader import read_rows

    root = tmp_path_factory.mktemp("archive")
    written = write_archive(root, scenario)
    s = settings_for(scenario)
    r = rebuild.rebuild_range(START, END, now_ms=END + 10 * DAY, s=s)
    out = tmp_path_factory.mktemp("rebuilt") / "rows"
    rebuild.run(s, r, root.as_uri(), out.as_uri(), jar_uri=connector_jar_uri())
    rows = list(read_rows(out))  # the loader's own reader of the job's output
    m = harness.Materialized()
    for row in rows:
        m.apply({"before": None, "after": row, "op": "c"})
    return {"rows": rows, "m": m, "written": written, "range": r, "archive": root.as_uri(),
            "out": out}


def test_archive_holds_every_copy_the_stream_received(rebuilt, scenario):
    assert rebuilt["written"]["clicks"] == sum(len(b) for b in scenario.batches)
    assert rebuilt["written"]["events"] == sum(len(b) for b in scenario.event_batches) > 0


def test_rebuild_equals_the_oracle_for_every_output_it_owns(rebuilt, expected):
    """Aggregates per ad, campaign and advertiser at every resolution, leaderboards, late
    counters and the budget lane's spend: equal to the oracle's (harness.diff compares each)
    for every bucket wholly inside the range, and nothing else: the day before's 1d bucket,
    which the range covers only from 23:00, has no row."""
    want = restricted(expected, owned)
    assert harness.diff(rebuilt["m"], want) == []
    m = rebuilt["m"]
    assert len(m.agg) == len(want.aggs) > 100 and len(want.aggs) < len(expected.aggs)
    assert {b for (res, b, _) in m.agg if res == "1d"} == {DAY1}
    assert all(START <= row["bucket_start"] < END for row in rebuilt["rows"])
    assert sum(r["late_dropped"] for r in m.late.values()) > 0
    assert {k[0] for k in m.rollups} == {"campaign", "advertiser"}
    assert m.spend and m.tops() == want.tops


def test_one_final_row_per_key_with_the_streams_final_version(rebuilt):
    """Batch output is final: one row per key (no changelog), and its version is the key's
    COUNT(*) (the stream's last emission carries the same)."""
    keys = [(r["kind"], r["resolution"], r["bucket_start"], r["entity_id"]) for r in rebuilt["rows"]]
    assert len(keys) == len(set(keys))
    for (res, b, ad), row in rebuilt["m"].top.items():  # an entry is a copy of its agg row
        assert row["version"] == rebuilt["m"].agg[(res, b, ad)]["version"]
    assert not any(r["kind"] == "pulse" for r in rebuilt["rows"])


def test_rows_are_split_into_the_load_phases_by_directory(rebuilt):
    """phase=1/: leaderboards, late counters, 1h and 1d series; phase=2/: the 1m and 5m series
    (spend included), loaded after (docs/rebuild.md "Load phases"). Written out here, not taken
    from the job's rule."""
    from serving.rebuild.loader import parse_lines

    by_phase = {}
    for f in rebuilt["out"].rglob("*"):
        if f.is_file() and not f.name.startswith("."):
            assert f.parent.parent == rebuilt["out"] and f.parent.name.startswith("phase=")
            by_phase.setdefault(f.parent.name, []).extend(parse_lines(f.read_text().splitlines()))
    assert sorted(by_phase) == ["phase=1", "phase=2"]
    for phase, rows in by_phase.items():
        for row in rows:
            later = row["kind"] in ("agg", "campaign", "advertiser", "spend") and row["resolution"] in ("1m", "5m")
            assert phase == ("phase=2" if later else "phase=1"), row
    first = {(r["kind"], r["resolution"]) for r in by_phase["phase=1"]}
    assert {("top", "1m"), ("late", "1m"), ("agg", "1h"), ("agg", "1d"), ("spend", "1d")} <= first
    assert sum(map(len, by_phase.values())) == len(rebuilt["rows"])


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
    with pytest.raises(Exception, match="count_from_ms: must be a UTC day start"):
        s.with_overrides(count_from_ms=day + HOUR)
    assert s.with_overrides(count_from_ms=day).count_from_ms == day
    r = rebuild.rebuild_range(day, day + DAY, now_ms=day + DAY + 2 * 3_600_000, s=s)
    # from the stream's dedup memory + the future skew before the start to the cutoff after the end
    assert s.dedup_ttl_s == 1800 and r.read_from_ms == day - 2_100_000
    assert r.partitions[0] == ("2024-03-09", "23") and r.partitions[-1] == ("2024-03-11", "01")
    assert len(r.partitions) == 1 + 24 + 2


# ----------------------------------------------------------------- loading into the serving table
def _serving(kinesis, name: str):
    import boto3

    from serving.write.dynamodb import DynamoDBServingStore

    from local.resources import create_serving_table

    ddb = boto3.client("dynamodb", endpoint_url=kinesis.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    create_serving_table(ddb, name)
    return ddb, DynamoDBServingStore(ddb, name, concurrency=4)


def _table_view(ddb, table: str) -> dict:
    """What readers see, from a full Scan (independent of the loader's code): series / late /
    spend items by key with their numbers, and each leaderboard bucket's entries of its
    committed generation (serving.generations.committed, the query API's rule)."""
    from serving import generations

    items = [i for page in ddb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    series, boards = {}, {}
    by_partition = {}
    for i in items:
        pk = i["pk"]["S"]
        if pk.startswith("T#"):
            by_partition.setdefault(pk, []).append(i)
        elif pk.startswith(("S", "L#")):
            series[(pk, i["sk"]["S"])] = int(i["c"]["N"]) if "c" in i else int(i.get("ld", i.get("bk", {"N": "-1"}))["N"])
    for pk, part in by_partition.items():
        for e in generations.committed(part):
            if "del" in e:
                continue
            res = pk.split("#")[1]
            bucket, _, ad = e["sk"]["S"].partition("#")
            boards.setdefault((res, int(bucket)), []).append((-int(e["c"]["N"]), ad))
    return {"series": series, "tops": {k: [ad for _, ad in sorted(v)] for k, v in boards.items()}}


def test_a_corrupted_serving_table_is_repaired_by_loading_the_rebuild(kinesis, rebuilt, expected):
    """The table as the stream left it, then corrupted: values changed, items deleted, a stale
    leaderboard entry added. Loading the rebuild (a new generation) restores what readers see to
    exactly the oracle's; loading it again changes nothing; the stream cannot write over it."""
    import random

    from aggregate.changes import Change
    from serving.rebuild.loader import RebuildLoader

    # the hour before midnight (moto writes ~150 items/s: the whole range would take minutes):
    # a rebuild of a sub-range is the range's rows of the buckets wholly inside it
    lo, hi = DAY1 - HOUR, DAY1
    inside = lambda res, b: lo <= b and b + datagen.RESOLUTIONS[res] <= hi  # noqa: E731
    rows = [row for row in rebuilt["rows"] if inside(row["resolution"], row["bucket_start"])]
    ddb, store = _serving(kinesis, "rebuild-repair")
    stream_rows = [Change(row["kind"], True, row) for row in rows]
    assert all(e is None for e in store.apply_many(stream_rows))
    healthy = _table_view(ddb, "rebuild-repair")
    assert healthy["tops"] == restricted(expected, inside).tops and len(rows) > 1000

    rng = random.Random(7)
    series_keys = sorted(healthy["series"])
    for pk, sk in rng.sample(series_keys, 40):  # wrong numbers (a bad deploy)
        ddb.update_item(TableName="rebuild-repair", Key={"pk": {"S": pk}, "sk": {"S": sk}},
                        UpdateExpression="SET c = :c, ld = :c, bk = :c", ExpressionAttributeValues={":c": {"N": "999"}})
    for pk, sk in rng.sample(series_keys, 40):  # lost items
        ddb.delete_item(TableName="rebuild-repair", Key={"pk": {"S": pk}, "sk": {"S": sk}})
    (res, bucket), board = sorted(restricted(expected, inside).tops.items())[0]
    from serving.keys import top_key
    ghost = top_key(res, bucket, "ad-ghost")
    ddb.put_item(TableName="rebuild-repair", Item={"pk": {"S": ghost["pk"]}, "sk": {"S": ghost["sk"]},
                                                   "v": {"N": "5"}, "c": {"N": "100000"}})
    from serving.keys import late_key
    spurious = late_key(bucket, "ad-ghost")  # a late counter the stream never had
    ddb.put_item(TableName="rebuild-repair", Item={"pk": {"S": spurious["pk"]}, "sk": {"S": spurious["sk"]},
                                                   "v": {"N": "3"}, "ld": {"N": "77"}})
    corrupted = _table_view(ddb, "rebuild-repair")
    assert corrupted != healthy and corrupted["tops"][(res, bucket)][0] == "ad-ghost"

    loader = RebuildLoader(ddb, "rebuild-repair", store)
    stats = loader.load(iter(rows), lo, hi)
    assert stats["generation"] == 1 and stats["written"] == stats["rows"] == len(rows)
    assert stats["markers"] == 60 + 1  # every leaderboard bucket of the range (1m, 1h)
    assert stats["late_swept"] == 1  # the spurious late counter
    assert _table_view(ddb, "rebuild-repair") == healthy  # = the oracle (checked above)

    again = loader.load(iter(rows), lo, hi, generation=1)  # a resumed load
    assert (again["written"], again["unchanged"], again["markers"], again["late_swept"]) == (
        0, len(rows), 0, 0)
    # the stream, replaying an old checkpoint, cannot write over a rebuilt bucket
    store.applied = 0
    store.apply_many([Change(c.kind, True, {**c.row, "version": c.version + 10}) for c in stream_rows[:50]])
    assert store.applied == 0 and _table_view(ddb, "rebuild-repair") == healthy


# ------------------------------------------------------------------------ bootstrap hand-over
def test_bootstrap_hand_over_at_a_day_start_leaves_no_gap_and_no_overlap(
        tmp_path_factory, kinesis, scenario, expected, rebuilt):
    """A deployment bootstrapped at DAY1 (00:00 UTC): the stream job runs with
    stream_count_from_ms = DAY1, reading the clicks stream from its start (its dedup and IVT
    elections see the earlier clicks, it counts none of them); the rebuild fills every bucket
    before DAY1 from the archive. Each bucket has exactly one writer, and together they equal the
    oracle, the clicks at 23:59:59.999 and at 00:00:00.000 included."""
    after = lambda res, b: b >= DAY1 and owned(res, b)  # noqa: E731
    run = harness.run_local_runner(tmp_path_factory.mktemp("handover"), kinesis, scenario.batches,
                                   restricted(expected, after), overrides={"count_from_ms": DAY1},
                                   event_batches=scenario.event_batches)
    assert run.returncode == 0 and run.converged_after_s is not None, run.problems
    keyed = lambda rows: {(r["kind"], r["resolution"], r["bucket_start"], r["entity_id"])  # noqa: E731
                          for r in rows if r["kind"] != "pulse"}
    streamed = keyed(r["after"] or r["before"] for r in run.records)
    before = [row for row in rebuilt["rows"] if row["bucket_start"] < DAY1]
    assert streamed and min(k[2] for k in streamed) == DAY1  # the stream wrote nothing before
    assert keyed(before) and not keyed(before) & streamed  # no bucket has two writers
    together = harness.Materialized()
    for row in before:
        together.apply({"before": None, "after": row, "op": "c"})
    for rec in run.records:
        together.apply(rec)
    assert harness.diff(together, restricted(expected, owned)) == []
    edge = [c for b in scenario.batches for c in b if DAY1 - 1000 <= c["event_time"] < DAY1 + 1000]
    assert {c["event_time"] < DAY1 for c in edge} == {True, False}  # clicks on both sides
