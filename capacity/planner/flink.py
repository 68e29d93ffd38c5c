"""Managed Service for Apache Flink: KPUs by throughput and by state, parallelism."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from capacity.planner.assumptions import (
    AGG_STATE_MARGIN_S, ALLOWED_LATENESS_S, FLINK_DEDUP_STATES, FLINK_EVENT_DEDUP_STATES,
    FLINK_HEADROOM, FLINK_KPU_STORAGE_GB, FLINK_ORCHESTRATION_KPUS, FLINK_PARALLELISM_PER_KPU,
    FLINK_ROWS_PER_KPU_S, FLINK_SNAPSHOTS_RETAINED, FLINK_STATE_BYTES_PER_KEY,
    FLINK_STATE_DISK_FRACTION, GIB, HOURS_PER_MONTH, RESOLUTION_SECONDS,
)
from capacity.planner.budget import spend_flink_rows_s, spend_state_keys
from capacity.planner.events import counted_rows_s, event_rates
from capacity.planner.helpers import ceil_div
from capacity.planner.model import Component
from capacity.planner.popularity import level_keys
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


def agg_state_keys(x: Inputs, rate: float) -> float:
    """Aggregate keys alive in Flink: per resolution, live buckets x the distinct ads, campaigns
    and advertisers a bucket's clicks, impressions and conversions touch."""
    rows_s = counted_rows_s(x, rate)
    total = 0.0
    for res in x.serving_resolutions:
        seconds = RESOLUTION_SECONDS[res]
        live_buckets = math.ceil((seconds + ALLOWED_LATENESS_S + AGG_STATE_MARGIN_S) / seconds)
        total += live_buckets * sum(level_keys(rows_s * seconds, x.active_ads, x.ad_skew))
    return total


def dedup_state_keys(x: Inputs, rate: float) -> tuple[float, float]:
    """(click keys, event keys) the keep-first dedups hold for dedup_ttl_s at `rate` clicks/s."""
    events_s = sum(event_rates(x, rate))
    return (FLINK_DEDUP_STATES * rate * x.flink_dedup_ttl_s,
            FLINK_EVENT_DEDUP_STATES * events_s * x.flink_dedup_ttl_s)


def state_gb(x: Inputs) -> float:
    keys = sum(dedup_state_keys(x, x.peak)) + agg_state_keys(x, x.peak) + spend_state_keys(x, x.peak)
    return keys * FLINK_STATE_BYTES_PER_KEY / GIB


def kpus_by_throughput(x: Inputs) -> float:
    return (counted_rows_s(x, x.peak) + spend_flink_rows_s(x, x.peak)) * FLINK_HEADROOM / FLINK_ROWS_PER_KPU_S


def kpus_by_state(x: Inputs) -> float:
    return state_gb(x) / (FLINK_KPU_STORAGE_GB * FLINK_STATE_DISK_FRACTION)


def kpus(x: Inputs) -> int:
    """KPUs for the peak: by throughput or by local state disk, whichever needs more."""
    return max(1, ceil_div(max(kpus_by_throughput(x), kpus_by_state(x)), 1))


def parallelism(x: Inputs) -> int:
    return kpus(x) * FLINK_PARALLELISM_PER_KPU


def component(x: Inputs, pb: PriceBook) -> Component:
    c = Component("flink", "Managed Service for Apache Flink")
    click_keys, event_keys = dedup_state_keys(x, x.peak)
    agg_keys = agg_state_keys(x, x.peak)
    spend_keys = spend_state_keys(x, x.peak)
    rows_peak = counted_rows_s(x, x.peak)
    spend_rows_peak = spend_flink_rows_s(x, x.peak)
    by_throughput = kpus_by_throughput(x)
    by_state = kpus_by_state(x)
    gb = state_gb(x)
    n_kpus, n_tasks = kpus(x), parallelism(x)  # recomputed from the parts above: arithmetic only
    c.mode = f"{n_kpus} KPU"
    c.add("input rows/s peak (clicks, impressions, conversions)", rows_peak)
    if x.budget_lane:
        c.add("budget lane spend aggregation, row-equivalents/s peak", spend_rows_peak)
    c.add("KPUs by throughput (peak x headroom)", by_throughput)
    c.add("KPUs by state (local disk)", by_state)
    c.add("state: click dedup keys", click_keys)
    c.add("state: event dedup keys", event_keys)
    c.add("state: aggregate keys", agg_keys)
    if x.budget_lane:
        c.add("state: spend keys (budget lane)", spend_keys)
    c.add("state size", gb, "GB")
    c.add("KPUs", n_kpus)
    c.add("parallelism", n_tasks)
    c.cost(pb, "KPU-hours (+1 orchestration KPU)", "flink_kpu_hour",
           (n_kpus + FLINK_ORCHESTRATION_KPUS) * HOURS_PER_MONTH)
    c.cost(pb, "running application storage", "flink_running_storage_gb_month",
           n_kpus * FLINK_KPU_STORAGE_GB)
    c.cost(pb, "snapshots", "flink_backup_gb_month", gb * FLINK_SNAPSHOTS_RETAINED)
    c.context.update(flink_parallelism=n_tasks,
                     flink_parallelism_per_kpu=FLINK_PARALLELISM_PER_KPU,
                     minibatch_latency_ms=x.minibatch_ms)
    if n_kpus > pb.quota("flink_kpus_per_app"):
        c.warnings.append(f"QUOTA: {n_kpus} KPUs exceeds the default {pb.quota('flink_kpus_per_app'):,.0f} "
                          f"KPUs per application: request an increase.")
    c.notes.append(f"Sized for peak: flink_parallelism is also autoscaling's minimum, so the job "
                   f"never scales below it; throughput per KPU ({FLINK_ROWS_PER_KPU_S:,} rows/s, "
                   f"clicks, impressions and conversions alike) is bench/flink.py's RocksDB "
                   f"figure per local core for clicks: the events mix (bench/flink.py --events "
                   f"50) and the service's own KPU are not measured; load-test before trusting it.")
    return c
