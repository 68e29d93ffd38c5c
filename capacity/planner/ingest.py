"""The ingest Lambda: duration per request kind, concurrency, reserved concurrency."""
from __future__ import annotations

from typing import TYPE_CHECKING

from capacity.planner.api import CLICKS, IMPRESSIONS, RequestKind, request_kinds
from capacity.planner.assumptions import (
    DEDUP_MARK, DEDUP_PER_CLICK, IDEMPOTENCY_MS, INGEST_BASE_MS, INGEST_MEMORY_MB, INGEST_MIN_RESERVED,
    INGEST_PER_CLICK_MS, INGEST_PER_CLICK_MS_MARK, INGEST_PER_CLICK_MS_NO_CLAIM,
    INGEST_PER_UNCLAIMED_EVENT_MS,
    LAMBDA_CONCURRENCY_HEADROOM, SECONDS_PER_MONTH,
)
from capacity.planner.helpers import ceil_div
from capacity.planner.model import Component
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


PER_CLAIMED_ITEM_MS = {DEDUP_MARK: INGEST_PER_CLICK_MS_MARK, DEDUP_PER_CLICK: INGEST_PER_CLICK_MS}


def ingest_duration_ms(batch_size: int, dedup: str) -> float:
    if dedup in PER_CLAIMED_ITEM_MS:
        return INGEST_BASE_MS + PER_CLAIMED_ITEM_MS[dedup] * batch_size
    return INGEST_BASE_MS + IDEMPOTENCY_MS + INGEST_PER_CLICK_MS_NO_CLAIM * batch_size


def request_duration_ms(kind: RequestKind, dedup: str) -> float:
    """Clicks per the dedup mode; impressions unclaimed; conversions through the same dedup
    store as clicks (per_request, which the code does not implement, still claims them)."""
    if kind.name == CLICKS:
        return ingest_duration_ms(kind.per_request, dedup)
    per_item = (INGEST_PER_UNCLAIMED_EVENT_MS if kind.name == IMPRESSIONS
                else PER_CLAIMED_ITEM_MS.get(dedup, INGEST_PER_CLICK_MS))
    return INGEST_BASE_MS + per_item * kind.per_request


def component(x: Inputs, pb: PriceBook) -> Component:
    c = Component("ingest_lambda", "Ingest Lambda (arm64)", f"{INGEST_MEMORY_MB} MB")
    kinds = request_kinds(x)
    durations_s = [request_duration_ms(k, x.dedup) / 1000 for k in kinds]
    conc_avg = sum(k.requests_s * d for k, d in zip(kinds, durations_s))
    conc_peak = sum(k.peak_requests_s * d for k, d in zip(kinds, durations_s))
    invocations = sum(k.requests_s for k in kinds) * SECONDS_PER_MONTH
    gb_s = conc_avg * SECONDS_PER_MONTH * INGEST_MEMORY_MB / 1024
    reserved = max(INGEST_MIN_RESERVED, ceil_div(conc_peak * LAMBDA_CONCURRENCY_HEADROOM, 1))
    for k, d in zip(kinds, durations_s):
        c.add(f"duration per request ({k.name})", d * 1000, "ms")
    c.add("concurrency average", conc_avg)
    c.add("concurrency peak", conc_peak)
    c.add("reserved concurrency", reserved)
    c.add("invocations per month", invocations)
    c.cost(pb, "requests", "lambda_requests", invocations)
    c.cost(pb, "compute", "lambda_arm_gb_s", gb_s)
    c.context.update(ingest_reserved_concurrency=reserved, ingest_memory_mb=INGEST_MEMORY_MB)
    c.notes.append("Durations are assumptions (INGEST_BASE_MS + per item), not AWS measurements: "
                   "the per-impression time and mark mode's per-click time relative to per_click "
                   "come from bench/ingest.py against moto in-process; run it against AWS and "
                   "replace them.")
    return c
