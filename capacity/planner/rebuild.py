"""The rebuild from the archive (docs/rebuild.md): KPUs for one day within the recompute target.

A rebuild is a transient batch job (a second Managed Flink application, started per range by
the rebuild state machine), so it is sized for its deadline, not for the stream's peak: the
CPU-seconds one day's archive takes at the measured rebuild throughput, spread over enough KPUs
that the job and the first load phase (leaderboards, late counters, 1h and 1d series) finish
within REBUILD_TARGET_S: then the rebuilt day is visible at hour and day resolution and in every
top-K. The second phase (the 1m and 5m series, most of the items) follows at the table's
headroom over the stream. On demand, so not in the monthly total (`counted=False`, as Athena):
the costs shown are per day rebuilt."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from aggregate.job.sql import REBUILD_LATER_RESOLUTIONS
from capacity.planner.assumptions import (
    DDB_TARGET_UTILIZATION, FLINK_ORCHESTRATION_KPUS, FLINK_PARALLELISM_PER_KPU, LEADERBOARD_SIZE,
    LEADERBOARDS, REBUILD_LOAD_WRITES_PER_LAMBDA_S, REBUILD_MAX_FUTURE_SKEW_S,
    REBUILD_ROWS_PER_CPU_S, REBUILD_STARTUP_S, REBUILD_TARGET_S,
    RESOLUTION_SECONDS, SPEND_RESOLUTIONS,
)
from capacity.planner.events import counted_rows_s
from capacity.planner.helpers import ceil_div
from capacity.planner.model import Component
from capacity.planner.popularity import level_keys
from capacity.pricing import PriceBook
from common.schema import default

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs

DAY_S = 86_400


def hours_read_per_day(flink_dedup_ttl_s: int, cutoff_hours: int = default("billing_cutoff_hours")) -> int:
    """Arrival-hour partitions a one-day rebuild reads: the day, the lookback before it (the
    stream's dedup and IVT memory plus clients' clock skew) and the arrival cutoff after it, as
    aggregate.job.rebuild.rebuild_range reads them (a unit test holds the two equal)."""
    return 24 + math.ceil((flink_dedup_ttl_s + REBUILD_MAX_FUTURE_SKEW_S) / 3600) + cutoff_hours


def output_rows_by_phase(x: Inputs) -> tuple[float, float]:
    """Rows a one-day rebuild writes, per load phase (aggregate.job.sql REBUILD_LATER_*): per
    resolution and bucket one per ad, campaign and advertiser with a counted row in it, each
    leaderboard bucket's entries (at most M) and, with the budget lane, one spend row per
    campaign; phase 2 holds the series of the later resolutions, phase 1 the rest. Late
    counters are not counted (one per ad and minute with a late click: few)."""
    rows_s = counted_rows_s(x, x.rate)
    first = later = 0.0
    for res in set(x.serving_resolutions) | (set(SPEND_RESOLUTIONS) if x.budget_lane else set()):
        seconds = RESOLUTION_SECONDS[res]
        keys = level_keys(rows_s * seconds, x.active_ads, x.ad_skew)
        series = sum(keys) if res in x.serving_resolutions else 0.0
        if x.budget_lane and res in SPEND_RESOLUTIONS:
            series += keys[1]  # one spend row per campaign
        boards = min(LEADERBOARD_SIZE, keys[0]) if res in LEADERBOARDS else 0.0
        if res in REBUILD_LATER_RESOLUTIONS:
            later += DAY_S / seconds * series
            first += DAY_S / seconds * boards
        else:
            first += DAY_S / seconds * (series + boards)
    return first, later


def load_rate(serving: Component, pb: PriceBook) -> float:
    """Writes/s the load may add to the serving table's: what the table already takes (its
    default quota, or the stream's peak it is sized and its quota raised for) minus the
    stream's average: a rebuild runs outside the stream's peak and needs no quota of its own."""
    avg, peak = serving.metric("writes/s average (incl. freshness)"), serving.metric("writes/s peak")
    return max(pb.quota("ddb_table_max_wcu"), peak) - avg


def first_phase_rate(serving: Component, rate: float) -> float:
    """Writes/s of phase 1, which runs before a provisioned table's autoscaling can react (it
    follows in minutes): the capacity already there at the stream's average (average / target
    utilisation) minus that average. On-demand takes 2x its previous peak at once: `rate`."""
    if serving.context["serving_capacity_mode"] != "provisioned":
        return rate
    avg = serving.metric("writes/s average (incl. freshness)")
    return max(min(rate, avg / DDB_TARGET_UTILIZATION - avg), REBUILD_LOAD_WRITES_PER_LAMBDA_S)


def component(x: Inputs, pb: PriceBook, serving: Component) -> Component:
    """`serving`: the serving store's component (the stream's writes into the table)."""
    c = Component("rebuild", "Rebuild of one day from the archive (Managed Flink, on demand)",
                  counted=False)
    hours = hours_read_per_day(x.flink_dedup_ttl_s)
    rows_read = counted_rows_s(x, x.rate) * 3600 * hours  # every archived copy, events included
    cpu_s = rows_read / REBUILD_ROWS_PER_CPU_S
    first, later = output_rows_by_phase(x)
    dynamodb = x.serving_store == "dynamodb"
    headroom = load_rate(serving, pb) if dynamodb else 0.0
    rate = max(headroom, REBUILD_LOAD_WRITES_PER_LAMBDA_S)  # none: one Lambda, against the stream
    concurrency = ceil_div(rate, REBUILD_LOAD_WRITES_PER_LAMBDA_S)
    first_rate = first_phase_rate(serving, rate) if dynamodb else rate
    first_s = first / first_rate if dynamodb else 0.0
    # the job gets what the target leaves after its start-up and phase 1's load; if that load
    # takes over half of it, the target is out of reach (warned): sized as if it took none
    compute_s = REBUILD_TARGET_S - REBUILD_STARTUP_S
    if first_s <= compute_s / 2:
        compute_s -= first_s
    kpus = max(1, ceil_div(cpu_s / compute_s, 1))  # 1 vCPU per KPU
    run_s = cpu_s / kpus + REBUILD_STARTUP_S
    c.mode = f"{kpus} KPU"
    c.add("archive hours read per day rebuilt", hours)
    c.add("archive rows read per day rebuilt", rows_read)
    c.add("CPU-seconds per day rebuilt", cpu_s)
    c.add("KPUs (to finish within the target)", kpus)
    c.add("rebuild job time per day", run_s / 60, "min")
    c.add("target", REBUILD_TARGET_S / 60, "min")
    c.add("output rows per day (serving items)", first + later)
    c.add("load phase 1 items (boards, late, 1h/1d series)", first)
    c.add("load phase 2 items (1m/5m series)", later)
    c.cost(pb, "KPU-hours per day rebuilt (+1 orchestration KPU)", "flink_kpu_hour",
           (kpus + FLINK_ORCHESTRATION_KPUS) * run_s / 3600)
    c.context.update(rebuild_parallelism=kpus * FLINK_PARALLELISM_PER_KPU)
    if dynamodb:
        visible_s, done_s = run_s + first_s, run_s + first_s + later / rate
        c.add("load rate, phase 1 (capacity already provisioned)", first_rate, "writes/s")
        c.add("load rate (table headroom over the stream's average)", rate, "writes/s")
        c.add("load Lambdas at once", concurrency)
        c.add("recompute visible (job + phase 1 load)", visible_s / 60, "min")
        c.add("recompute complete (+ phase 2 load)", done_s / 60, "min")
        items = first + later
        if serving.context["serving_capacity_mode"] == "on_demand":
            c.cost(pb, "load writes per day rebuilt (on-demand)", "ddb_on_demand_wru", items)
        else:  # autoscaled capacity follows the load at the target utilisation
            c.cost(pb, "load writes per day rebuilt (provisioned, autoscaled)",
                   "ddb_provisioned_wcu_hour", items / DDB_TARGET_UTILIZATION / 3600)
        c.context.update(rebuild_load_concurrency=concurrency)
        if headroom < REBUILD_LOAD_WRITES_PER_LAMBDA_S:
            c.warnings.append(f"The serving table has {headroom:,.0f} writes/s of headroom over "
                              f"the stream's average: the load's writes compete with the "
                              f"stream's; raise the table's write quota.")
        if visible_s > REBUILD_TARGET_S:
            fix = (f"raise the table's provisioned minimum to "
                   f"{ceil_div(serving.metric('writes/s average (incl. freshness)') + rate, 1):,} "
                   f"WCU before a rebuild (phase 1 then takes {first / rate / 60:,.1f} min)"
                   if first_rate < rate else "raise the table's write quota")
            c.warnings.append(f"A rebuilt day is visible after {visible_s / 60:,.0f} min, over the "
                              f"{REBUILD_TARGET_S / 60:.0f} min target: its phase 1 "
                              f"({first:,.0f} items) takes {first_s / 60:,.0f} min at "
                              f"{first_rate:,.0f} writes/s; {fix}.")
        c.notes.append(f"Load: one conditional write per item at an assumed "
                       f"{REBUILD_LOAD_WRITES_PER_LAMBDA_S:,} writes/s per Lambda (unmeasured), "
                       f"using the table's headroom over the stream's average: phase 1 within "
                       f"the capacity provisioned for that average, phase 2 once autoscaling "
                       f"has followed (minutes; throttled writes are retried).")
    else:
        c.notes.append("The rebuild loads the DynamoDB serving store only (docs/rebuild.md).")
    if kpus > pb.quota("flink_kpus_per_app"):
        c.warnings.append(f"QUOTA: the rebuild's {kpus} KPUs exceed the default "
                          f"{pb.quota('flink_kpus_per_app'):,.0f} KPUs per application: request an "
                          f"increase for the rebuild application, or accept a longer rebuild "
                          f"({cpu_s / pb.quota('flink_kpus_per_app') / 60 + REBUILD_STARTUP_S / 60:,.0f} "
                          f"min at the default).")
    c.notes.append(f"Throughput {REBUILD_ROWS_PER_CPU_S:,} archive rows per CPU-second measured by "
                   f"bench/rebuild.py (10M clicks, 2 local cores, clicks only), taken to scale "
                   f"linearly per KPU; start-up ({REBUILD_STARTUP_S / 60:.0f} min) and the "
                   f"application's behaviour on AWS are assumptions: neither has run there.")
    return c
