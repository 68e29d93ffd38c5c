"""bench/billing.py cannot rot: its --smoke mode (20k clicks, seconds) runs the Spark job's
transform and the DuckDB SQL on the same generated archive in child processes, exits 0 and
prints its figures; the two engines' hourly rows are identical, checked here again on the
files they wrote (independently of the bench's own comparison). Times are never asserted on.
Runs in .venv-glue (PySpark)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds

REPO = Path(__file__).resolve().parents[2]
NUMBER = r"(\d+(?:\.\d+)?)"
COLUMNS = ["advertiser_id", "campaign_id", "ad_id", "hour_start_ms", "clicks", "billable_clicks",
           "repeat_clicks", "ip_burst_clicks", "cost_micros", "billable_cost_micros", "duplicate_copies",
           "late_billable_clicks", "ip_burst_stream_billable_clicks"]


def rows(path: Path) -> list[tuple]:
    table = ds.dataset(str(path), format="parquet").to_table(columns=COLUMNS)
    return sorted(zip(*(table.column(c).to_pylist() for c in COLUMNS)))


def test_billing_bench_smoke(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "billing.py"), "--smoke", "--cache", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out[-3000:]}\n{done.stderr[-3000:]}"
    summary = re.search(r"^clicks=20,000  day=2026-03-10  hourly rows=([\d,]+)  identical results: (True|False)$",
                        out, re.M)
    assert summary and summary.group(2) == "True", out
    n_rows = int(summary.group(1).replace(",", ""))
    for engine in ("spark", "duckdb"):
        run = re.search(rf"^\[run\] {engine}: total {NUMBER}s \(start-up {NUMBER}s, work {NUMBER}s\), "
                        rf"CPU {NUMBER}s, peak RSS {NUMBER} GiB$", out, re.M)
        assert run and all(float(v) >= 0 for v in run.groups()) and float(run.group(1)) > 0, (engine, out)
    ratio = re.search(rf"^ratio\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}   \(spark / duckdb\)$", out, re.M)
    assert ratio and all(float(v) > 0 for v in ratio.groups()), out

    spark, duckdb = rows(tmp_path / "out-spark" / "hourly"), rows(tmp_path / "out-duckdb")
    assert spark == duckdb and len(spark) == n_rows > 1_000
    for r in spark:  # every click counted under exactly one of billable / repeat / ip_burst
        clicks, billable, repeat, burst = r[4:8]
        assert clicks == billable + repeat + burst and clicks > 0
    assert sum(r[7] for r in spark) > 0 and sum(r[6] for r in spark) > 0 and sum(r[10] for r in spark) > 0
