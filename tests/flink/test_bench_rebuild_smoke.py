"""bench/rebuild.py cannot rot: its --smoke run (10k clicks and 1 impression per click from
bench/billing.py's archive generator; the rebuild of one day by aggregate.job.rebuild in Flink
batch mode, and the plain scan baseline) completes, prints its figures, the ratio and the
extrapolation, and its output counts what a brute force over the archive counts. Times are
never asserted on."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import harness

DAY_MS = 86_400_000


def test_bench_rebuild_smoke(tmp_path):
    done = subprocess.run(
        [sys.executable, str(harness.REPO / "bench" / "rebuild.py"), "--smoke", "--cache", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(harness.FUNCTIONS)}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    modes = {m.group(1): json.loads(m.group(2)) for m in map(re.compile(r"^(scan|rebuild|check) +(\{.*)$").match, lines)
             if m}
    for mode in ("scan", "rebuild"):  # (no warm-up in --smoke: an empty run may cost more than the run)
        assert modes[mode]["cpu_s"] > 0 and modes[mode]["empty_cpu_s"] > 0
    summary = json.loads(lines[-1])
    read = summary["rows_read"]
    assert read["clicks"] > 9_000 and read["events"] > 5_000  # D-1 23 .. D+1 01: ~10k clicks
    assert modes["scan"]["rows_read"] == modes["rebuild"]["rows_read"] == read["clicks"] + read["events"]
    assert summary["check_ok"] and modes["check"]["ok"]
    assert {"ratio_rebuild_over_scan_cpu", "extrapolated", "parallelism"} <= summary.keys()
    assert any(line.startswith("rows per CPU-second: rebuild ") for line in lines)

    # independently of the bench's own check: every distinct click of D (with an ad and a time)
    # in the read window is counted once, either in the day's 1d aggregates or as late
    rows = []
    for f in (tmp_path / "rebuild-work" / "rows").rglob("*"):
        if f.is_file() and not f.name.startswith("."):
            rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    assert summary["output_rows"] == len(rows) > 1_000
    day0 = min(r["bucket_start"] for r in rows if r["resolution"] == "1d")
    counted = sum(r["clicks"] for r in rows if (r["kind"], r["resolution"], r["bucket_start"]) == ("agg", "1d", day0))
    late = sum(r["late_dropped"] for r in rows if r["kind"] == "late" and day0 <= r["bucket_start"] < day0 + DAY_MS)
    assert late > 0 and counted == sum(r["clicks"] for r in rows if r["kind"] == "agg" and r["resolution"] == "1m")
    assert counted + late == len(distinct_clicks(tmp_path, day0)) > 8_000
    impressions = sum(r["impressions"] for r in rows if (r["kind"], r["resolution"], r["bucket_start"]) == ("agg", "1d", day0))
    assert impressions > 5_000


def distinct_clicks(cache: Path, day0: int) -> set[str]:
    import pyarrow.parquet as pq

    from aggregate.job import rebuild
    from aggregate.job.settings import JobSettings

    s = JobSettings.from_properties({"clickagg": {
        "aws_region": "us-east-1", "clicks_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/a",
        "aggregates_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/b"}})
    r = rebuild.rebuild_range(day0, day0 + DAY_MS, now_ms=day0 + 10 * DAY_MS, s=s)
    (data,) = cache.glob("clicks-10000-i1-v*")
    ids = set()
    for dt, hr in r.partitions:
        for f in (data / "raw" / "clicks" / f"dt={dt}" / f"hr={hr}").glob("*.parquet"):
            for row in pq.read_table(f, columns=["click_id", "ad_id", "event_time"]).to_pylist():
                if row["click_id"] and row["ad_id"] and row["event_time"] is not None and \
                        day0 <= row["event_time"] < day0 + DAY_MS:
                    ids.add(row["click_id"])
    return ids
