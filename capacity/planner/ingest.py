"""The ingest Lambda: duration, concurrency, reserved concurrency."""
from __future__ import annotations

from typing import TYPE_CHECKING

from capacity.planner.api import requests_per_s
from capacity.planner.assumptions import (
    IDEMPOTENCY_MS, INGEST_BASE_MS, INGEST_MEMORY_MB, INGEST_MIN_RESERVED,
    INGEST_PER_CLICK_MS, INGEST_PER_CLICK_MS_NO_CLAIM, LAMBDA_CONCURRENCY_HEADROOM,
    SECONDS_PER_MONTH,
)
from capacity.planner.helpers import ceil_div
from capacity.planner.model import Component
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


def ingest_duration_ms(batch_size: int, dedup: str) -> float:
    if dedup == "per_click":
        return INGEST_BASE_MS + INGEST_PER_CLICK_MS * batch_size
    return INGEST_BASE_MS + IDEMPOTENCY_MS + INGEST_PER_CLICK_MS_NO_CLAIM * batch_size


def component(x: Inputs, pb: PriceBook) -> Component:
    c = Component("ingest_lambda", "Ingest Lambda (arm64)", f"{INGEST_MEMORY_MB} MB")
    req_s, req_peak = requests_per_s(x)
    duration_s = ingest_duration_ms(x.batch_size, x.dedup) / 1000
    conc_avg, conc_peak = req_s * duration_s, req_peak * duration_s
    invocations = req_s * SECONDS_PER_MONTH
    gb_s = invocations * duration_s * INGEST_MEMORY_MB / 1024
    reserved = max(INGEST_MIN_RESERVED, ceil_div(conc_peak * LAMBDA_CONCURRENCY_HEADROOM, 1))
    c.add("duration per request", duration_s * 1000, "ms")
    c.add("concurrency average", conc_avg)
    c.add("concurrency peak", conc_peak)
    c.add("reserved concurrency", reserved)
    c.add("invocations per month", invocations)
    c.cost(pb, "requests", "lambda_requests", invocations)
    c.cost(pb, "compute", "lambda_arm_gb_s", gb_s)
    c.context.update(ingest_reserved_concurrency=reserved, ingest_memory_mb=INGEST_MEMORY_MB)
    c.notes.append("Duration is an assumption (INGEST_BASE_MS + per click), not a measurement: "
                   "run bench/ingest.py against AWS and replace it.")
    return c
