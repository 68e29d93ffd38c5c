"""The ingest dedup table (per-click claims or per-request idempotency records)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from capacity.planner.api import response_bytes
from capacity.planner.assumptions import (
    CLAIM_WCU, CONFIRM_WCU, DDB_TARGET_UTILIZATION, DDB_TTL_DELETE_LAG_S, DEDUP_ITEM_BYTES, GIB,
    IDEMPOTENCY_ITEM_BASE_BYTES, IDEMPOTENCY_PUT_WCU, IDEMPOTENCY_TTL_S, KIB,
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
    if dedup == "per_click":
        return CLAIM_WCU + CONFIRM_WCU
    update_wcu = ceil_div(IDEMPOTENCY_ITEM_BASE_BYTES + response_bytes(batch_size), KIB)
    return (IDEMPOTENCY_PUT_WCU + update_wcu) / batch_size


def conversion_wcu(x: Inputs, rate: float) -> float:
    """WCU/s of the conversions' claims at `rate` clicks/s: claimed and confirmed like a click
    (item 'conversion <id>'), whatever the clicks' dedup mode; impressions are never claimed."""
    return event_rates(x, rate)[1] * (CLAIM_WCU + CONFIRM_WCU)


def component(x: Inputs, pb: PriceBook) -> Component:
    c = Component("dedup", "DynamoDB dedup table")
    per_click = dedup_wcu_per_click(x.dedup, x.batch_size)
    wcu_avg = x.rate * per_click + conversion_wcu(x, x.rate)
    wcu_peak = x.peak * per_click + conversion_wcu(x, x.peak)
    cap = ddb_capacity(pb, wcu_avg, wcu_peak, x.dedup_capacity)
    c.mode = f"{x.dedup}, {cap.mode}"
    c.add("dedup", x.dedup)
    c.add("WCU per click", per_click)
    c.add("conversion claims WCU/s average", conversion_wcu(x, x.rate))
    c.add("WCU/s average", wcu_avg)
    c.add("WCU/s peak", wcu_peak)
    if x.dedup == "per_click":
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
    capacity_warnings(c, pb, cap, wcu_avg, wcu_peak, "the dedup table")
    c.context.update(ingest_dedup_mode=x.dedup, dedup_ttl_s=x.dedup_ttl_s,
                     dedup_capacity_mode=cap.mode, dedup_min_wcu=cap.min_wcu,
                     dedup_max_wcu=cap.max_wcu,
                     dynamodb_target_utilization_pct=int(round(DDB_TARGET_UTILIZATION * 100)))
    if x.dedup == "per_request":
        c.notes.append("Per-request idempotency only catches a replay of a whole request; "
                       "re-sent clicks in other requests are left to Flink (30 min) and the "
                       "nightly batch (the day).")
    return c
