"""The ingest dedup table (per-click claims or marks, or per-request idempotency records)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from capacity.planner.api import response_bytes
from capacity.planner.assumptions import (
    CLAIM_WCU, CONFIRM_WCU, DDB_TARGET_UTILIZATION, DDB_TROUGH_RATIO, DDB_TTL_DELETE_LAG_S,
    DEDUP_ITEM_BYTES, DEDUP_MARK, DEDUP_PER_CLICK, GIB, HOURS_PER_MONTH,
    IDEMPOTENCY_ITEM_BASE_BYTES, IDEMPOTENCY_PUT_WCU, IDEMPOTENCY_TTL_S, KIB, MARK_READ_RCU,
    SCHEMA_DEDUP_MODES, SECONDS_PER_MONTH,
)
from capacity.planner.dynamodb import (
    capacity_alternatives, capacity_lines, capacity_warnings, ddb_capacity,
)
from capacity.planner.events import event_rates
from capacity.planner.helpers import ceil_div
from capacity.planner.model import Component
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


def dedup_wcu_per_click(dedup: str, batch_size: int) -> float:
    if dedup == DEDUP_MARK:
        return CONFIRM_WCU  # the mark, after the stream write
    if dedup == DEDUP_PER_CLICK:
        return CLAIM_WCU + CONFIRM_WCU
    update_wcu = ceil_div(IDEMPOTENCY_ITEM_BASE_BYTES + response_bytes(batch_size), KIB)
    return (IDEMPOTENCY_PUT_WCU + update_wcu) / batch_size


def dedup_rcu_per_click(dedup: str) -> float:
    """Read units per click: mark mode's check; the other modes read nothing."""
    return MARK_READ_RCU if dedup == DEDUP_MARK else 0.0


def conversion_units(x: Inputs, rate: float) -> tuple[float, float]:
    """(WCU/s, RCU/s) of the conversions' claims at `rate` clicks/s: each conversion_id goes
    through the same dedup store as a click (item 'conversion <id>'): mark mode as a click,
    otherwise claimed and confirmed; impressions are never claimed."""
    conversions_s = event_rates(x, rate)[1]
    if x.dedup == DEDUP_MARK:
        return conversions_s * CONFIRM_WCU, conversions_s * MARK_READ_RCU
    return conversions_s * (CLAIM_WCU + CONFIRM_WCU), 0.0


def read_capacity(c: Component, pb: PriceBook, mode: str, rcu_avg: float,
                  rcu_peak: float) -> tuple[int, int]:
    """Mark mode's reads: billed per read on demand, or provisioned and autoscaled like the
    writes (capacity follows the average at the target utilisation; min for the nightly trough,
    max for the peak), in the table's mode; each capacity alternative gets its own mode's read
    cost. Returns (min, max) RCU for the context."""
    min_rcu = max(1, ceil_div(rcu_avg * DDB_TROUGH_RATIO / DDB_TARGET_UTILIZATION, 1))
    max_rcu = max(min_rcu, ceil_div(rcu_peak / DDB_TARGET_UTILIZATION, 1))
    lines = {"on_demand": ("reads (on-demand)", "ddb_on_demand_rru", rcu_avg * SECONDS_PER_MONTH),
             "provisioned": ("reads (provisioned, autoscaled)", "ddb_provisioned_rcu_hour",
                             rcu_avg / DDB_TARGET_UTILIZATION * HOURS_PER_MONTH)}
    c.alternatives = {k: usd + pb.cost(lines[k][1], lines[k][2]) for k, usd in c.alternatives.items()}
    c.cost(pb, *lines[mode])
    if rcu_peak > pb.quota("ddb_table_max_rcu"):
        c.warnings.append(f"QUOTA: the dedup table's reads peak at {rcu_peak:,.0f} RCU/s, over "
                          f"the table-level default of {pb.quota('ddb_table_max_rcu'):,.0f}: raise "
                          f"'Table-level read throughput limit' in Service Quotas.")
    return min_rcu, max_rcu


def component(x: Inputs, pb: PriceBook) -> Component:
    c = Component("dedup", "DynamoDB dedup table")
    per_click = dedup_wcu_per_click(x.dedup, x.batch_size)
    reads_per_click = dedup_rcu_per_click(x.dedup)
    (conv_wcu_avg, conv_rcu_avg), (conv_wcu_peak, conv_rcu_peak) = (
        conversion_units(x, x.rate), conversion_units(x, x.peak))
    wcu_avg = x.rate * per_click + conv_wcu_avg
    wcu_peak = x.peak * per_click + conv_wcu_peak
    rcu_avg = x.rate * reads_per_click + conv_rcu_avg
    rcu_peak = x.peak * reads_per_click + conv_rcu_peak
    cap = ddb_capacity(pb, wcu_avg, wcu_peak, x.dedup_capacity)
    c.mode = f"{x.dedup}, {cap.mode}"
    c.add("dedup", x.dedup)
    c.add("WCU per click", per_click)
    c.add("conversion claims WCU/s average", conv_wcu_avg)
    c.add("WCU/s average", wcu_avg)
    c.add("WCU/s peak", wcu_peak)
    if rcu_avg:
        c.add("RCU per click (mark: eventually consistent check)", reads_per_click)
        c.add("RCU/s average", rcu_avg)
        c.add("RCU/s peak", rcu_peak)
    if x.dedup in SCHEMA_DEDUP_MODES:  # an item per click (per_request: per request)
        items = x.rate * (x.dedup_ttl_s + DDB_TTL_DELETE_LAG_S)
        item_bytes = DEDUP_ITEM_BYTES
    else:
        items = x.rate / x.batch_size * (IDEMPOTENCY_TTL_S + DDB_TTL_DELETE_LAG_S)
        item_bytes = IDEMPOTENCY_ITEM_BASE_BYTES + response_bytes(x.batch_size)
    conversion_items = event_rates(x, x.rate)[1] * (x.dedup_ttl_s + DDB_TTL_DELETE_LAG_S)
    storage_gb = (items * item_bytes + conversion_items * DEDUP_ITEM_BYTES) / GIB
    items += conversion_items
    c.add("items stored", items)
    c.add("storage", storage_gb, "GB")
    capacity_lines(c, pb, cap, wcu_avg)
    c.cost(pb, "storage", "ddb_storage_gb_month", storage_gb)
    c.cost(pb, "point-in-time recovery", "ddb_pitr_gb_month", storage_gb)
    c.alternatives = capacity_alternatives(c, cap)
    if rcu_avg:
        min_rcu, max_rcu = read_capacity(c, pb, cap.mode, rcu_avg, rcu_peak)
        c.context.update(dedup_min_rcu=min_rcu, dedup_max_rcu=max_rcu)
    capacity_warnings(c, pb, cap, wcu_avg, wcu_peak, "the dedup table")
    c.context.update(ingest_dedup_mode=x.dedup, dedup_ttl_s=x.dedup_ttl_s,
                     dedup_capacity_mode=cap.mode, dedup_min_wcu=cap.min_wcu,
                     dedup_max_wcu=cap.max_wcu,
                     dynamodb_target_utilization_pct=int(round(DDB_TARGET_UTILIZATION * 100)))
    if x.dedup == DEDUP_MARK:
        c.notes.append("mark: one eventually consistent read before the stream write and one "
                       "write after it per click (per_click: a conditional claim before and a "
                       "confirm after). Two copies of a click in flight at once both reach the "
                       "stream, where the Flink job's click_id dedup drops the second.")
    if x.dedup == "per_request":
        c.notes.append("Per-request idempotency only catches a replay of a whole request; "
                       "re-sent clicks in other requests are left to Flink (30 min) and the "
                       "nightly batch (the day).")
    return c
