"""bench/billing.py cannot rot: its --smoke mode (20k clicks, 1M impressions, seconds) runs the
Spark job's run_day and the DuckDB SQL on the same generated archives (clicks: input and lookback
partitions; events: D's input partitions) in child processes, exits 0 and prints its figures
(the headline: Spark's rows per CPU-second and a seed day's time on the planner's workers);
the two engines' hourly, campaign_spend, events_hourly and conversions rows are identical,
checked here again on the files they wrote (independently of the bench's own comparison), and the
generated data exercises every IVT rule, diagnostic, attribution outcome and the budgets (some
campaigns past theirs, some within, some without one). Times are never asserted on.
Runs in .venv-glue (PySpark)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds

from common import ivt
from glue_jobs.billing.events import ATTRIBUTED, NOT_ATTRIBUTED
from glue_jobs.billing.outputs import CAMPAIGN_SPEND_COLUMNS, CONVERSION_COLUMNS, EVENTS_HOURLY_COLUMNS, names
from glue_jobs.billing.transform import OUTPUT_COLUMNS

REPO = Path(__file__).resolve().parents[2]
NUMBER = r"(\d+(?:\.\d+)?)"
COLUMNS = [c for c in OUTPUT_COLUMNS if c not in ("hour", "dt")]


def rows(path: Path, columns=COLUMNS) -> list[dict]:
    table = ds.dataset(str(path), format="parquet").to_table(columns=list(columns))
    return sorted(table.to_pylist(), key=lambda r: tuple((r[c] is None, r[c]) for c in columns))


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
    # the headline: Spark's rows per CPU-second and a seed day on the planner's Glue workers
    read = re.search(rf"^Spark: ([\d,]+) archive rows read \(([\d,]+) clicks in the 27 input \+ 24 lookback hours, "
                     rf"([\d,]+) events\) in {NUMBER} CPU-s: ([\d,]+) rows per CPU-second$", out, re.M)
    assert read, out
    n_read, n_clicks, n_events = (int(read.group(i).replace(",", "")) for i in (1, 2, 3))
    assert n_read == n_clicks + n_events and n_events > 500_000 and 30_000 < n_clicks < 45_000
    day = re.search(rf"^one day at 8.6B clicks/day: {NUMBER}B archive rows = ([\d,]+) CPU-s; on the planner's "
                    rf"(\d+) x G.1X \(python -m capacity plan --rate 99537 --peak 500000; .*\), linear per vCPU: {NUMBER} min; "
                    rf"goal < 30 min: (met|NOT met); (\d+) workers would meet it$", out, re.M)
    assert day and int(day.group(3)) >= 2 and float(day.group(4)) > 0, out
    # the generator wrote the lookback partitions too (D-2 hr 23 .. D-1 hr 22)
    data = tmp_path / "clicks-20000-i50-v4" / "raw" / "clicks"
    assert (data / "dt=2026-03-08" / "hr=23").is_dir() and (data / "dt=2026-03-09" / "hr=22").is_dir()
    events = re.search(r"^impressions=([\d,]+)  conversions=([\d,]+)  events hourly rows=([\d,]+)  "
                       r"identical events results: (True|False)$", out, re.M)
    assert events and events.group(4) == "True", out
    for dataset, columns in (("events_hourly", names(EVENTS_HOURLY_COLUMNS)),
                             ("conversions", names(CONVERSION_COLUMNS))):
        columns = [c for c in columns if c != "hour"]
        spark = rows(tmp_path / "out-spark" / dataset, columns)
        duckdb = rows(tmp_path / "out-duckdb" / f"{dataset}.parquet", columns)
        assert spark == duckdb and spark, dataset
    assert sum(r["impressions"] for r in spark_events(tmp_path)) == int(events.group(1).replace(",", "")) > 500_000
    conversions = rows(tmp_path / "out-duckdb" / "conversions.parquet", names(CONVERSION_COLUMNS))
    assert len(conversions) == int(events.group(2).replace(",", "")) > 200
    outcomes = {r["attribution"] for r in conversions}
    assert outcomes == {ATTRIBUTED, *NOT_ATTRIBUTED}, outcomes  # every outcome, both lookups, both kinds
    assert {r["attributed_by"] for r in conversions} == {"token", "click_id"}
    assert any(r["click_id"] is None and r["matched_click_id"] for r in conversions)  # by impression
    assert any(r["copies"] > 1 for r in conversions)

    spark, duckdb = rows(tmp_path / "out-spark" / "hourly"), rows(tmp_path / "out-duckdb" / "hourly.parquet")
    assert spark == duckdb and len(spark) == n_rows > 1_000
    invalid = [f"{r}_clicks" for r in ivt.REASONS if ivt.TIER[r] == ivt.INVALID]
    suspect = [f"{r}_clicks" for r in ivt.REASONS if ivt.TIER[r] == ivt.SUSPECT]
    for r in spark:  # every click under exactly one verdict (valid: billed or over budget); a verdict needs
        # a reason of its tier
        assert r["clicks"] == (r["billable_clicks"] + r["over_budget_clicks"] + r["suspect_clicks"]
                               + r["invalid_clicks"]) and r["clicks"] > 0
        assert r["invalid_clicks"] <= sum(r[c] for c in invalid) and r["suspect_clicks"] <= sum(r[c] for c in suspect)
        assert all(r[c] <= r["invalid_clicks"] for c in invalid)
        assert r["billable_cost_micros"] <= r["cost_micros"] and r["late_billable_clicks"] <= r["late_clicks"]
    totals = {c: sum(r[c] for r in spark) for c in COLUMNS[4:]}
    # the generated data exercises every rule and every diagnostic of the reconciliation
    assert all(totals[f"{r}_clicks"] > 0 for r in ivt.REASONS), totals
    assert all(totals[c] > 0 for c in ("suspect_clicks", "invalid_clicks", "duplicate_copies", "late_clicks",
                                       "impression_memory_clicks")), totals
    assert totals["election_gain_clicks"] + totals["election_loss_clicks"] > 0, totals

    # budgets: the engines agree campaign by campaign; billed never above a budget
    spend_line = re.search(r"^campaign spend rows=([\d,]+)  budgeted=([\d,]+)  over budget=([\d,]+)  "
                           r"over-budget clicks=([\d,]+)  identical spend results: (True|False)$", out, re.M)
    assert spend_line and spend_line.group(5) == "True", out
    columns = names(CAMPAIGN_SPEND_COLUMNS)
    spend = rows(tmp_path / "out-spark" / "campaign_spend", columns)
    assert spend == rows(tmp_path / "out-duckdb" / "campaign_spend.parquet", columns)
    assert len(spend) == int(spend_line.group(1).replace(",", "")) > 1_000
    budgeted = [r for r in spend if r["budget_micros"] is not None]
    over = [r for r in budgeted if r["over_budget_clicks"]]
    assert len(budgeted) - len(over) > 100 and len(over) > 100 and len(spend) - len(budgeted) > 100
    assert all(r["billed_cost_micros"] <= r["budget_micros"] for r in budgeted)
    assert all(r["over_budget_clicks"] == 0 and r["billed_cost_micros"] == r["valid_cost_micros"]
               for r in spend if r["budget_micros"] is None)
    assert sum(r["over_budget_clicks"] for r in spend) == totals["over_budget_clicks"] > 0
    assert sum(r["billed_clicks"] for r in spend) == totals["billable_clicks"]


def spark_events(tmp_path: Path) -> list[dict]:
    return rows(tmp_path / "out-spark" / "events_hourly", ["ad_id", "hour_start_ms", "impressions"])
