"""The rebuild from the archive (docs/rebuild.md): KPUs for one day within the recompute target.

A rebuild is a transient batch job (a second Managed Flink application, started per range by
the rebuild state machine), so it is sized for its deadline, not for the stream's peak: the
CPU-seconds one day's archive takes at the measured rebuild throughput, spread over enough KPUs
to finish within REBUILD_TARGET_S after the application's start-up. The load of its rows into the
serving table is a separate step bounded by the table's write throughput, shown beside it. On
demand, so not in the monthly total (`counted=False`, as Athena): the cost shown is per day
rebuilt."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from capacity.planner.assumptions import (
    FLINK_ORCHESTRATION_KPUS, FLINK_PARALLELISM_PER_KPU, LEADERBOARD_SIZE, LEADERBOARDS,
    REBUILD_MAX_FUTURE_SKEW_S, REBUILD_ROWS_PER_CPU_S, REBUILD_STARTUP_S, REBUILD_TARGET_S,
    RESOLUTION_SECONDS,
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


def output_rows_per_day(x: Inputs) -> float:
    """Rows a one-day rebuild writes: per resolution and bucket, one per ad, campaign and
    advertiser with a counted row in it, plus each leaderboard bucket's entries (at most M)."""
    rows_s = counted_rows_s(x, x.rate)
    total = 0.0
    for res in x.serving_resolutions:
        seconds = RESOLUTION_SECONDS[res]
        keys = level_keys(rows_s * seconds, x.active_ads, x.ad_skew)
        total += DAY_S / seconds * sum(keys)
        if res in LEADERBOARDS:
            total += DAY_S / seconds * min(LEADERBOARD_SIZE, keys[0])
    return total


def component(x: Inputs, pb: PriceBook) -> Component:
    c = Component("rebuild", "Rebuild of one day from the archive (Managed Flink, on demand)",
                  counted=False)
    hours = hours_read_per_day(x.flink_dedup_ttl_s)
    rows_read = counted_rows_s(x, x.rate) * 3600 * hours  # every archived copy, events included
    cpu_s = rows_read / REBUILD_ROWS_PER_CPU_S
    compute_s = REBUILD_TARGET_S - REBUILD_STARTUP_S
    kpus = max(1, ceil_div(cpu_s / compute_s, 1))  # 1 vCPU per KPU
    run_s = cpu_s / kpus + REBUILD_STARTUP_S
    out_rows = output_rows_per_day(x)
    load_s = out_rows / pb.quota("ddb_table_max_wcu")  # one write per row (generation-versioned put)
    c.mode = f"{kpus} KPU"
    c.add("archive hours read per day rebuilt", hours)
    c.add("archive rows read per day rebuilt", rows_read)
    c.add("CPU-seconds per day rebuilt", cpu_s)
    c.add("KPUs (to finish within the target)", kpus)
    c.add("rebuild job time per day", run_s / 60, "min")
    c.add("target", REBUILD_TARGET_S / 60, "min")
    c.add("output rows per day (serving items)", out_rows)
    c.add("load into the serving table at its write quota", load_s / 60, "min")
    c.cost(pb, "KPU-hours per day rebuilt (+1 orchestration KPU)", "flink_kpu_hour",
           (kpus + FLINK_ORCHESTRATION_KPUS) * run_s / 3600)
    c.context.update(rebuild_parallelism=kpus * FLINK_PARALLELISM_PER_KPU)
    if kpus > pb.quota("flink_kpus_per_app"):
        c.warnings.append(f"QUOTA: the rebuild's {kpus} KPUs exceed the default "
                          f"{pb.quota('flink_kpus_per_app'):,.0f} KPUs per application: request an "
                          f"increase for the rebuild application, or accept a longer rebuild "
                          f"({cpu_s / pb.quota('flink_kpus_per_app') / 60 + REBUILD_STARTUP_S / 60:,.0f} "
                          f"min at the default).")
    if load_s > REBUILD_TARGET_S:
        c.warnings.append(f"The load of a rebuilt day ({out_rows:,.0f} items) takes "
                          f"{load_s / 60:,.0f} min at the table's default "
                          f"{pb.quota('ddb_table_max_wcu'):,.0f} writes/s: raise the table's "
                          f"write quota, or rebuild the hours that need it.")
    c.notes.append(f"Throughput {REBUILD_ROWS_PER_CPU_S:,} archive rows per CPU-second measured by "
                   f"bench/rebuild.py (10M clicks, 2 local cores, clicks only), taken to scale "
                   f"linearly per KPU; start-up ({REBUILD_STARTUP_S / 60:.0f} min) and the "
                   f"application's behaviour on AWS are assumptions: neither has run there.")
    return c
