"""Entry point of the nightly billing job: one UTC day (default: yesterday) from the raw archive.

On AWS Glue 5.0 (awsglue importable) parameters come from the job run; Glue resolves only
underscore names (`getResolvedOptions` docs), so the job arguments are
  --day YYYY-MM-DD --raw_path s3://BUCKET/raw/clicks --out_path s3://BUCKET/billing
  [--events_path s3://BUCKET/raw/events]   (impressions, conversions and their attribution;
                                            without it the job bills clicks only)
  [--budgets_table <prefix>-budgets]       (the budgets table: each campaign's daily budget caps
                                            its billed cost, docs/budget.md "Batch truth"; read
                                            only when given: without it nothing is over budget)
  [--cutoff_hours 2] [--write_flagged true] [--attribution_window_s 604800]
  [--ivt_rules bot_ua,impression_repeat,too_fast,datacenter_ip,ip_burst,user_repeat]
  [--burst_threshold 10] [--burst_window_ms 1000] [--min_click_delay_ms 1000]
  [--repeat_window_s 10]                               (the IVT rules: the stream's settings)
  [--allowed_lateness_s 900] [--watermark_delay_s 5]   (the stream's; for the late diagnostic)
(every setting of common.schema's `glue` view: BillingSettings.__settings__)
and the `glue_jobs` package is shipped with `--extra-py-files glue_jobs.zip`.
Locally (no awsglue) the same options are accepted with dashes or underscores:
  .venv-glue/bin/python glue_jobs/billing_job.py --day 2026-03-10 --raw-path /tmp/a/raw/clicks \
      --out-path /tmp/a/billing
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, datetime, timedelta, timezone
from typing import Callable

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:  # local runs: make the glue_jobs package importable
    sys.path.insert(0, _REPO)

from glue_jobs.billing.transform import BillingSettings  # noqa: E402
from glue_jobs.workflow_day import WORKFLOW_ARGS, requested_day  # noqa: E402

try:  # AWS Glue runtime
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    HAVE_GLUE = True
except ImportError:
    HAVE_GLUE = False

REQUIRED = ("raw_path", "out_path")
OPTIONAL = ("day", *BillingSettings.__settings__, "write_flagged", "events_path")  # settings: common.schema `glue`


def utc_now() -> datetime:
    """The jobs' clock (an aware UTC datetime); entry points take a `now` callable defaulting to it."""
    return datetime.now(timezone.utc)


def _yesterday(now: Callable[[], datetime] = utc_now) -> date:
    return (now().astimezone(timezone.utc) - timedelta(days=1)).date()


def _truthy(value) -> bool:
    return str(value).strip().lower() not in ("false", "0", "no", "")


def settings_from(args: dict, now: Callable[[], datetime] = utc_now) -> tuple[date, BillingSettings, bool]:
    """`now`: the clock that resolves `--day auto` (yesterday, UTC). The settings' names,
    defaults and rules are common.schema's (BillingSettings.from_args)."""
    # the nightly trigger passes "auto": Glue triggers cannot compute "yesterday"
    day = date.fromisoformat(args["day"]) if args.get("day") not in (None, "", "auto") else _yesterday(now)
    return day, BillingSettings.from_args(args), _truthy(args.get("write_flagged", "true"))


def parse_local(argv: list[str]) -> dict:
    p = argparse.ArgumentParser(description="clickagg billing recompute for one UTC day (local Spark)")
    for name in ("day",) + REQUIRED + OPTIONAL[1:]:
        flags = sorted({f"--{name}", f"--{name.replace('_', '-')}"})
        p.add_argument(*flags, dest=name, required=name in REQUIRED)
    for name in WORKFLOW_ARGS:  # set by Glue (or the local workflow runner) inside a workflow run
        p.add_argument(f"--{name}", dest=name)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--shuffle-partitions", type=int, default=8)
    p.add_argument("--driver-memory", default="2g")
    return vars(p.parse_args(argv))


def budget_history(args: dict) -> list | None:
    """The budget history (glue_jobs.billing.budgets.read_history) when `--budgets_table` names
    a table, else None. The argument as given, not the setting's default name: a run without it
    (tests, a backfill of clicks only) must not reach for a table."""
    from glue_jobs.billing.budgets import read_history

    table = (args.get("budgets_table") or "").strip()
    return read_history(table) if table else None


def main_glue(now: Callable[[], datetime] = utc_now) -> dict:
    from pyspark.context import SparkContext

    from glue_jobs.billing.run import run_day

    # Glue resolves only the names asked for and fails on a missing one: ask for the optional ones
    # present, as `--name value` or `--name=value` (argparse, which Glue uses, takes both)
    wanted = ["JOB_NAME", *REQUIRED] + [o for o in OPTIONAL
                                        if any(a == f"--{o}" or a.startswith(f"--{o}=") for a in sys.argv)]
    args = getResolvedOptions(sys.argv, wanted)
    args["day"] = requested_day(sys.argv) or args.get("day")
    day, settings, write_flagged = settings_from(args, now)
    glue = GlueContext(SparkContext.getOrCreate())
    job = Job(glue)
    job.init(args["JOB_NAME"], args)
    stats = run_day(glue.spark_session, args["raw_path"], args["out_path"], day, settings, write_flagged,
                    events_path=args.get("events_path") or None, budgets=budget_history(args))
    print(json.dumps(stats))
    job.commit()
    return stats


def main_local(argv: list[str] | None = None, now: Callable[[], datetime] = utc_now) -> dict:
    from glue_jobs.billing.run import local_spark, run_day

    argv = sys.argv[1:] if argv is None else argv
    args = parse_local(argv)
    args["day"] = requested_day(argv) or args.get("day")
    day, settings, write_flagged = settings_from(args, now)
    spark = local_spark(master=args["master"], shuffle_partitions=args["shuffle_partitions"],
                        driver_memory=args["driver_memory"])
    stats = run_day(spark, args["raw_path"], args["out_path"], day, settings, write_flagged,
                    events_path=args.get("events_path") or None, budgets=budget_history(args))
    print(json.dumps(stats))
    return stats


if __name__ == "__main__":
    main_glue() if HAVE_GLUE else main_local()
