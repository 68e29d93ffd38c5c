"""Recompute a range of days, one after the other, in one local Spark session.

    .venv-glue/bin/python glue_jobs/backfill.py --start 2026-03-01 --end 2026-03-07 \
        --raw-path /data/raw/clicks --out-path /data/billing [--events-path /data/raw/events] \
        [--budgets-table clickagg-budgets]

Days run sequentially (each is an idempotent partition replace, so an interrupted backfill is
simply rerun), oldest first: a day's conversions take their clicks' verdicts from the earlier
days' outputs (glue_jobs/billing/events.py, 3.); one progress line per day on stderr, a JSON
summary on stdout. With a budgets table, its history is read once and each day gets the
budgets in force on it (glue_jobs/billing/budgets.py).
On AWS, run the Glue job once per day instead (same code path: glue_jobs.billing.run.run_day).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date, timedelta

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from glue_jobs.billing.transform import BillingSettings  # noqa: E402


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def backfill(spark, raw_path: str, out_path: str, start: date, end: date,
             settings: BillingSettings = BillingSettings(), write_flagged: bool = True,
             out=sys.stderr, events_path: str | None = None, budgets=None) -> list[dict]:
    from glue_jobs.billing.run import run_day

    days = days_between(start, end)
    results, t0 = [], time.monotonic()
    for i, day in enumerate(days, 1):
        stats = run_day(spark, raw_path, out_path, day, settings, write_flagged, events_path=events_path,
                        budgets=budgets)
        results.append(stats)
        elapsed = time.monotonic() - t0
        eta = elapsed / i * (len(days) - i)
        print(f"[{i}/{len(days)}] {day} partitions={stats['partitions_read']} "
              f"rows={stats['hourly_rows']} clicks={stats['clicks']} billable={stats['billable_clicks']} "
              f"{stats['seconds']:.1f}s (elapsed {elapsed:.0f}s, eta {eta:.0f}s)", file=out, flush=True)
    return results


def main(argv: list[str] | None = None) -> list[dict]:
    from glue_jobs.billing.run import local_spark

    p = argparse.ArgumentParser(description="clickagg billing backfill over a range of UTC days")
    p.add_argument("--start", required=True, type=date.fromisoformat)
    p.add_argument("--end", required=True, type=date.fromisoformat, help="inclusive")
    p.add_argument("--raw-path", "--raw_path", dest="raw_path", required=True)
    p.add_argument("--out-path", "--out_path", dest="out_path", required=True)
    p.add_argument("--events-path", "--events_path", dest="events_path",
                   help="the events archive (raw/events): impressions, conversions, attribution")
    d = BillingSettings()
    p.add_argument("--cutoff-hours", "--cutoff_hours", dest="cutoff_hours", type=int, default=d.cutoff_hours)
    p.add_argument("--repeat-window-s", "--repeat_window_s", dest="repeat_window_s", type=int,
                   default=d.repeat_window_s)
    p.add_argument("--burst-threshold", "--burst_threshold", dest="burst_threshold", type=int,
                   default=d.burst_threshold)
    p.add_argument("--budgets-table", "--budgets_table", dest="budgets_table",
                   help="the budgets table (DynamoDB): cap each campaign-day's billed cost")
    p.add_argument("--no-flagged", action="store_true", help="skip the flagged-clicks detail")
    p.add_argument("--master", default="local[2]")
    p.add_argument("--shuffle-partitions", type=int, default=8)
    p.add_argument("--driver-memory", default="2g")
    a = p.parse_args(argv)
    settings = BillingSettings(repeat_window_s=a.repeat_window_s, burst_threshold=a.burst_threshold,
                               cutoff_hours=a.cutoff_hours)
    spark = local_spark(master=a.master, shuffle_partitions=a.shuffle_partitions,
                        driver_memory=a.driver_memory)
    from glue_jobs.billing.budgets import read_history

    results = backfill(spark, a.raw_path, a.out_path, a.start, a.end, settings, not a.no_flagged,
                       events_path=a.events_path,
                       budgets=read_history(a.budgets_table) if a.budgets_table else None)
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
