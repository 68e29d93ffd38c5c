"""The serving path: aggregates stream (Flink's changelog), sink Lambda, serving store
(DynamoDB, or the Timestream alternative).

Per mini-batch the job emits one update per aggregate key a counted row (click, impression,
conversion) touched: per resolution, the ad's series ('agg') and its campaign's and
advertiser's rollups; plus the changed entries of the 1m, 1h and 1d leaderboards. The budget
lane (budget.py) adds its spend rows (per campaign, 1m and 1d, every budget_emit_interval_ms)
and the pulse to the same stream, sink and table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from capacity.planner.assumptions import RANK_INDEX_WRITES_PER_TOP_UPSERT
from capacity.planner.assumptions import (
    AGGREGATES_RETENTION_HOURS, CHANGELOG_ROW_BYTES, DAYS_PER_MONTH, DEFAULT_FRESHNESS_SLOTS,
    FRESHNESS_WRITES_PER_INVOCATION, GIB, HOURS_PER_MONTH, KIB, KPL_BYTES_PER_SUBRECORD,
    KPL_RECORD_HEADER_BYTES, LEADERBOARD_SIZE, LEADERBOARDS, MAX_FRESHNESS_SLOTS, MINUTE_TTL_S,
    ON_DEMAND_MIN_SHARDS, RESOLUTION_SECONDS, SECONDS_PER_MONTH, SERVING_HORIZON_MONTHS,
    SERVING_ITEM_BYTES, SINK_BATCH_SIZE, SINK_BATCHING_WINDOW_S, SINK_CONCURRENCY_HEADROOM,
    SINK_MEMORY_MB, SINK_WRITES_PER_S_PER_INVOCATION, TIMESTREAM_MEMORY_HOURS,
    TIMESTREAM_RECORD_BYTES,
)
from capacity.planner.budget import spend_load, spend_storage_items
from capacity.planner.dynamodb import (
    capacity_alternatives, capacity_lines, capacity_warnings, ddb_capacity,
)
from capacity.planner.events import counted_rows_s
from capacity.planner.flink import parallelism as flink_parallelism
from capacity.planner.helpers import ceil_div
from capacity.planner.kinesis import StreamLoad, stream_costs, stream_warnings
from capacity.planner.model import Component
from capacity.planner.popularity import level_keys
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


@dataclass(frozen=True)
class ServingLoad:
    interval_s: float  # the mini-batch's length at this rate (emit_interval_s)
    keys_per_batch: float  # distinct ads touched per mini-batch
    rollup_keys_per_batch: float  # distinct campaigns + advertisers touched per mini-batch
    agg_upserts_s: float  # per-ad series updates/s (all resolutions)
    rollup_upserts_s: float  # campaign and advertiser series updates/s (all resolutions)
    top_upserts_s: float  # leaderboard entry updates/s (all boards)
    spend_campaigns_per_interval: float  # budget lane: campaigns with a valid click per emit interval
    spend_upserts_s: float  # budget lane: spend updates/s (1m and 1d per campaign)
    pulse_rows_s: float  # budget lane: pulse rows/s (inserts)
    changelog_rows_s: float  # rows on the aggregates stream
    serving_writes_s: float  # DynamoDB writes (without freshness)


def emit_interval_s(x: Inputs, rate: float) -> float:
    """How often a key emits at `rate` clicks/s: once per mini-batch, which ends at
    minibatch_latency_ms or as soon as an aggregate's instance has buffered minibatch_size input
    rows (each instance sees its subtask's share of the counted rows), whichever comes first."""
    rows_per_task_s = counted_rows_s(x, rate) / flink_parallelism(x)
    return min(x.minibatch_ms / 1000, x.minibatch_size / rows_per_task_s)


def serving_load(x: Inputs, rate: float) -> ServingLoad:
    interval_s = emit_interval_s(x, rate)
    ads, campaigns, advertisers = level_keys(counted_rows_s(x, rate) * interval_s, x.active_ads,
                                             x.ad_skew)
    agg_upserts = len(x.serving_resolutions) * ads / interval_s
    rollup_upserts = len(x.serving_resolutions) * (campaigns + advertisers) / interval_s
    top_upserts = len(LEADERBOARDS) * min(LEADERBOARD_SIZE, ads) / interval_s
    spend = spend_load(x, rate)
    rows_per_update = 2 if x.changelog_update_before else 1
    rows = (agg_upserts + rollup_upserts + top_upserts + spend.upserts_s) * rows_per_update \
        + spend.pulse_rows_s
    # DynamoDB store: series (and spend) retractions are skipped; a leaderboard retraction writes
    # a tombstone; a pulse row raises META#pulse (one conditional update).
    # Every leaderboard upsert also moves its entry in the rank index (serving.keys.RANK_INDEX):
    # the old rk out and the new one in (with -U rows: the tombstone takes it out, the +U puts it
    # back), RANK_INDEX_WRITES_PER_TOP_UPSERT index writes, billed like the table's.
    writes = agg_upserts + rollup_upserts + top_upserts * rows_per_update + spend.upserts_s \
        + spend.pulse_rows_s + top_upserts * RANK_INDEX_WRITES_PER_TOP_UPSERT
    return ServingLoad(interval_s, ads, campaigns + advertisers, agg_upserts, rollup_upserts, top_upserts,
                       spend.campaigns_per_interval, spend.upserts_s, spend.pulse_rows_s, rows,
                       writes)


def components(x: Inputs, pb: PriceBook) -> tuple[Component, Component, Component]:
    avg, peak = serving_load(x, x.rate), serving_load(x, x.peak)
    k = x.changelog_rows_per_record
    record_bytes = CHANGELOG_ROW_BYTES if k == 1 else KPL_RECORD_HEADER_BYTES + k * (
        CHANGELOG_ROW_BYTES + KPL_BYTES_PER_SUBRECORD)

    # sink concurrency needed at peak decides the minimum number of shards (<= 10 lanes/shard)
    sink_conc_peak = peak.serving_writes_s / SINK_WRITES_PER_S_PER_INVOCATION
    lanes = max(1, ceil_div(sink_conc_peak * SINK_CONCURRENCY_HEADROOM, 1))
    max_pf = int(pb.quota("esm_max_parallelization_factor"))

    # --- aggregates stream
    agg = Component("aggregates_stream", "Kinesis aggregates stream")
    load = StreamLoad(avg.changelog_rows_s / k, peak.changelog_rows_s / k, record_bytes, 1, 1)
    sc = stream_costs(agg, pb, load, x.aggregates_kinesis_mode, AGGREGATES_RETENTION_HOURS, False,
                       min_shards=ceil_div(lanes, max_pf))
    shards_in_use = sc.need.shards if sc.mode == "provisioned" else max(
        ON_DEMAND_MIN_SHARDS, ceil_div(max(sc.need.by_write_bytes, sc.need.by_write_records), 1))
    agg.add("mini-batch length (average), s", avg.interval_s)
    agg.add("mini-batch length (peak), s", peak.interval_s)
    agg.add("distinct ads per mini-batch (average)", avg.keys_per_batch)
    agg.add("distinct campaigns + advertisers per mini-batch (average)", avg.rollup_keys_per_batch)
    agg.add("series upserts/s average", avg.agg_upserts_s)
    agg.add("rollup upserts/s average", avg.rollup_upserts_s)
    agg.add("leaderboard upserts/s average", avg.top_upserts_s)
    if x.budget_lane:
        agg.add("campaigns with a valid click per budget emit interval (average)",
                avg.spend_campaigns_per_interval)
        agg.add("spend upserts/s average (budget lane)", avg.spend_upserts_s)
        agg.add("pulse rows/s (budget lane)", avg.pulse_rows_s)
    agg.add("changelog rows/s average", avg.changelog_rows_s)
    agg.add("changelog rows/s peak", peak.changelog_rows_s)
    agg.add("changelog rows per click (average)", avg.changelog_rows_s / x.rate)
    agg.add("rows per record", k)
    agg.add("shards by write bytes", sc.need.by_write_bytes)
    agg.add("shards by write records", sc.need.by_write_records)
    agg.add("binding limit", sc.need.binding)
    agg.add("provisioned shards", sc.need.shards)
    agg.add("shards in use (estimate)", shards_in_use)
    agg.context.update(aggregates_kinesis_mode=sc.mode, aggregates_kinesis_shards=sc.need.shards)
    stream_warnings(agg, pb, load, sc)
    if avg.changelog_rows_s > x.rate:
        per_batch = counted_rows_s(x, x.rate) * avg.interval_s
        agg.warnings.append(
            f"the changelog carries {avg.changelog_rows_s / x.rate:.1f} rows per click: a "
            f"{avg.interval_s:.3g} s mini-batch's {per_batch:,.0f} clicks, impressions and "
            f"conversions touch {avg.keys_per_batch:,.0f} of the {x.active_ads:,} active ads, "
            f"each updating {len(x.serving_resolutions)} series, plus "
            f"{avg.rollup_keys_per_batch:,.0f} campaign and advertiser rollups"
            f"{' (x2 rows with -U)' if x.changelog_update_before else ''}. "
            f"Levers: a longer mini-batch (minibatch_latency_ms), "
            f"{'flink_changelog_mode upsert (no -U rows); ' if x.changelog_update_before else ''}"
            f"modelled, not implemented: coarse resolutions summed at query time, rows packed "
            f"per record.")

    # --- sink Lambda
    sink = Component("sink_lambda", "Sink Lambda (arm64, Kinesis ESM)", f"{SINK_MEMORY_MB} MB")
    pf = min(max_pf, max(1, ceil_div(lanes, shards_in_use)))
    # Full batches when busy; otherwise each lane with rows invokes about once per batching
    # window (+ ~1 s of processing): many lanes on a thin stream mean many small batches.
    invocations_s = max(avg.changelog_rows_s / SINK_BATCH_SIZE,
                        min(shards_in_use * pf, avg.changelog_rows_s) / (SINK_BATCHING_WINDOW_S + 1))
    busy_s = avg.serving_writes_s / SINK_WRITES_PER_S_PER_INVOCATION  # average concurrency
    sink.add("serving writes/s average", avg.serving_writes_s)
    sink.add("serving writes/s peak", peak.serving_writes_s)
    sink.add("concurrency needed at peak", sink_conc_peak)
    sink.add("lanes (shards x parallelization factor)", shards_in_use * pf)
    sink.add("parallelization factor", pf)
    sink.add("invocations/s average", invocations_s)
    sink.cost(pb, "requests", "lambda_requests", invocations_s * SECONDS_PER_MONTH)
    sink.cost(pb, "compute", "lambda_arm_gb_s", busy_s * SINK_MEMORY_MB / 1024 * SECONDS_PER_MONTH)
    sink.context.update(sink_parallelization_factor=pf, sink_batch_size=SINK_BATCH_SIZE,
                        sink_memory_mb=SINK_MEMORY_MB)
    if shards_in_use * pf < sink_conc_peak:
        sink.warnings.append(f"{shards_in_use} shards x {pf} lanes < {sink_conc_peak:,.0f} "
                             f"concurrent invocations needed at peak: add aggregates shards.")
    freshness_s = invocations_s * FRESHNESS_WRITES_PER_INVOCATION
    partition_max = pb.quota("ddb_partition_max_wcu")
    # Freshness writes spread over `slots` items (serving.keys), one per aggregates shard's
    # hash. Enough slots that the busiest takes at most half a partition's writes at peak, with a
    # x2 margin for uneven hashing; a multiple of 8, at least the default, at most one
    # BatchGetItem (every query reads them all: slots x 0.5 RCU).
    freshness_peak_s = freshness_s * x.peak / x.rate
    needed = ceil_div(freshness_peak_s * 2, partition_max / 2)
    slots = min(MAX_FRESHNESS_SLOTS, max(DEFAULT_FRESHNESS_SLOTS, ceil_div(needed, 8) * 8))
    slots_in_use = min(slots, max(1, shards_in_use))  # a shard writes one slot
    per_slot_peak = freshness_peak_s / slots_in_use * 2  # x2: uneven hashing
    sink.add("freshness slots", slots)
    sink.add("freshness updates/s at peak, busiest slot (x2 margin)", per_slot_peak)
    sink.context.update(freshness_slots=slots)
    if x.serving_store == "dynamodb" and per_slot_peak > partition_max / 2:
        sink.warnings.append(f"~{per_slot_peak:,.0f} freshness updates/s at peak on the busiest of "
                             f"{slots_in_use} freshness slots (partition limit {partition_max:,.0f} "
                             f"WCU/s): add aggregates shards (one shard writes one slot) or write "
                             f"only when the watermark moved.")

    # --- serving store
    serving = Component("serving", f"Serving store ({x.serving_store})")
    ddb_wcu_avg = avg.serving_writes_s + freshness_s
    ddb_wcu_peak = peak.serving_writes_s + freshness_s * x.peak / x.rate
    cap = ddb_capacity(pb, ddb_wcu_avg, ddb_wcu_peak, x.serving_capacity)
    storage_gb = serving_storage_items(x) * SERVING_ITEM_BYTES / GIB
    ddb_storage_usd = pb.cost("ddb_storage_gb_month", storage_gb) + pb.cost("ddb_pitr_gb_month", storage_gb)
    ts_lines = timestream_lines(x, avg)
    ts_usd = sum(pb.cost(key, q) for _, key, q in ts_lines)
    serving.add("writes/s average (incl. freshness)", ddb_wcu_avg)
    serving.add("writes/s peak", ddb_wcu_peak)
    serving.add("writes per click (average)", ddb_wcu_avg / x.rate)
    if x.serving_store == "dynamodb":
        serving.mode = f"dynamodb, {cap.mode}"
        serving.add("storage after horizon", storage_gb, "GB")
        capacity_lines(serving, pb, cap, ddb_wcu_avg)
        serving.cost(pb, "storage", "ddb_storage_gb_month", storage_gb)
        serving.cost(pb, "point-in-time recovery", "ddb_pitr_gb_month", storage_gb)
        serving.alternatives = capacity_alternatives(serving, cap, "dynamodb ")
        growth_gb = (sum(buckets_per_day(x, r) for r in x.serving_resolutions if r != "1m")
                     + kept_board_items_per_day()) * DAYS_PER_MONTH * SERVING_ITEM_BYTES / GIB
        serving.notes.append(f"Only 1m items expire (minute_ttl_s): coarser series grow the "
                             f"table by ~{growth_gb:,.0f} GB/month; storage is shown after "
                             f"{SERVING_HORIZON_MONTHS} months.")
        capacity_warnings(serving, pb, cap, ddb_wcu_avg, ddb_wcu_peak, "the serving table")
    else:
        serving.mode = "timestream"
        for item, key, q in ts_lines:
            serving.cost(pb, item, key, q)
        serving.notes.append("Timestream for LiveAnalytics is closed to new AWS customers "
                             "since 2025-06-20.")
        serving.alternatives = {"dynamodb on_demand": cap.on_demand_usd + ddb_storage_usd,
                                "dynamodb provisioned": cap.provisioned_usd + ddb_storage_usd}
    serving.alternatives["timestream"] = ts_usd
    serving.context.update(serving_store=x.serving_store, serving_capacity_mode=cap.mode,
                           serving_min_wcu=cap.min_wcu, serving_max_wcu=cap.max_wcu)
    serving.notes.append("Query API reads are not counted (per query).")
    return agg, sink, serving


def serving_storage_items(x: Inputs) -> float:
    """Serving-table items after SERVING_HORIZON_MONTHS: 1m series (ads and rollups) and 1m
    boards within minute_ttl, coarser series and the 1h and 1d boards kept forever; the budget
    lane's spend items (1m within minute_ttl, 1d forever)."""
    days = SERVING_HORIZON_MONTHS * DAYS_PER_MONTH
    minute_items = (buckets_per_day(x, "1m") / 1440 + LEADERBOARD_SIZE) * MINUTE_TTL_S / 60
    forever = sum(buckets_per_day(x, res) for res in x.serving_resolutions if res != "1m") * days
    return minute_items + forever + kept_board_items_per_day() * days + spend_storage_items(x)


def kept_board_items_per_day() -> float:
    """Leaderboard items one day adds that never expire: M per 1h and per 1d bucket."""
    return LEADERBOARD_SIZE * sum(86400 / RESOLUTION_SECONDS[r] for r in LEADERBOARDS if r != "1m")


def buckets_per_day(x: Inputs, res: str, ads_only: bool = False) -> float:
    """Series items one day adds at resolution `res`: buckets per day x the distinct ads (and,
    unless `ads_only`, campaigns and advertisers) a bucket's counted rows touch."""
    seconds = RESOLUTION_SECONDS[res]
    keys = level_keys(counted_rows_s(x, x.rate) * seconds, x.active_ads, x.ad_skew)
    return 86400 / seconds * (keys[0] if ads_only else sum(keys))


def timestream_lines(x: Inputs, avg: ServingLoad) -> list[tuple[str, str, float]]:
    """Timestream alternative: a write per ad series upsert (its writer stores 'agg' and 'late'
    rows only: no rollups; leaderboards are SQL there), memory store holding
    TIMESTREAM_MEMORY_HOURS of buckets, magnetic store for the horizon."""
    per_day = sum(buckets_per_day(x, res, ads_only=True) for res in x.serving_resolutions)
    memory_gb = per_day * TIMESTREAM_MEMORY_HOURS / 24 * TIMESTREAM_RECORD_BYTES / GIB
    magnetic_gb = per_day * SERVING_HORIZON_MONTHS * DAYS_PER_MONTH * TIMESTREAM_RECORD_BYTES / GIB
    writes = avg.agg_upserts_s * SECONDS_PER_MONTH * ceil_div(TIMESTREAM_RECORD_BYTES, KIB)
    return [("writes (1 KB units)", "timestream_writes", writes),
            ("memory store", "timestream_memory_gb_hour", memory_gb * HOURS_PER_MONTH),
            ("magnetic store after horizon", "timestream_magnetic_gb_month", magnetic_gb)]
