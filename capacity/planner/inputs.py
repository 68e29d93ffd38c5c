"""The planner's inputs (one frozen record) and their validation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from capacity.planner.assumptions import (
    APIS, BUDGET_EMIT_INTERVAL_MS, DDB_CHOICES, DEDUP_MODES, KINESIS_CHOICES, MAX_BATCH,
    MAX_RECORD_BYTES, MINIBATCH_SIZE, PACING_CACHE_TTL_MS, RESOLUTION_SECONDS, SERVING_STORES,
)
from capacity.planner.kinesis import kpl_record_bytes
from common.schema import BY_NAME


@dataclass(frozen=True)
class Inputs:
    rate: float
    peak: float
    click_bytes: int
    batch_size: int
    region: str
    api: str
    dedup: str
    clicks_per_record: int
    active_ads: int
    ad_skew: float
    minibatch_ms: int
    changelog_rows_per_record: int
    changelog_update_before: bool
    serving_resolutions: tuple[str, ...]
    kinesis_mode: str
    aggregates_kinesis_mode: str
    dedup_capacity: str
    serving_capacity: str
    serving_store: str
    kinesis_retention_hours: int
    dedup_ttl_s: int
    flink_dedup_ttl_s: int
    efo: bool
    archive_months: int
    impressions_per_click: float
    conversions_per_click: float
    events_kinesis_mode: str
    budget_lane: bool = True
    budget_emit_interval_ms: int = BUDGET_EMIT_INTERVAL_MS
    pacing_cache_ttl_ms: int = PACING_CACHE_TTL_MS
    ad_servers: Optional[int] = None  # None: one per AD_SERVER_CLICKS_S average clicks/s
    pacing_campaigns: Optional[int] = None  # None: the campaigns an instance serves per TTL (popularity)
    minibatch_size: int = MINIBATCH_SIZE


def validate(x: Inputs) -> None:
    if x.rate <= 0:
        raise ValueError("rate must be > 0 clicks/s")
    if x.peak < x.rate:
        raise ValueError("peak must be >= rate (rate is the average)")
    if not 1 <= x.batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be within 1..{MAX_BATCH} (the API's MAX_BATCH)")
    if x.click_bytes < 1:
        raise ValueError("click_bytes must be >= 1")
    if x.clicks_per_record < 1 or kpl_record_bytes(x.click_bytes, x.clicks_per_record) > MAX_RECORD_BYTES:
        raise ValueError("clicks_per_record must be >= 1 and fit a 1 MiB Kinesis record")
    if x.changelog_rows_per_record < 1:
        raise ValueError("changelog_rows_per_record must be >= 1")
    for name, value, allowed in (("api", x.api, APIS), ("dedup", x.dedup, DEDUP_MODES),
                                 ("kinesis_mode", x.kinesis_mode, KINESIS_CHOICES),
                                 ("aggregates_kinesis_mode", x.aggregates_kinesis_mode, KINESIS_CHOICES),
                                 ("events_kinesis_mode", x.events_kinesis_mode, KINESIS_CHOICES),
                                 ("dedup_capacity", x.dedup_capacity, DDB_CHOICES),
                                 ("serving_capacity", x.serving_capacity, DDB_CHOICES),
                                 ("serving_store", x.serving_store, SERVING_STORES)):
        if value not in allowed:
            raise ValueError(f"{name} {value!r}: expected one of {allowed}")
    if x.active_ads < 1 or x.ad_skew < 0:
        raise ValueError("active_ads must be >= 1 and ad_skew >= 0")
    if x.minibatch_ms < 1 or x.minibatch_size < 1:
        raise ValueError("minibatch_ms and minibatch_size must be >= 1")
    if not set(x.serving_resolutions) <= set(RESOLUTION_SECONDS) or not {"1m", "1h"} <= set(
            x.serving_resolutions):
        raise ValueError("serving_resolutions: a subset of 1m, 5m, 1h, 1d with 1m and 1h "
                         "(the top-K queries read 1m and 1h buckets)")
    if not 24 <= x.kinesis_retention_hours <= 8760:
        raise ValueError("kinesis_retention_hours must be within 24..8760")
    if x.archive_months < 1:
        raise ValueError("archive_months must be >= 1")
    if x.impressions_per_click < 0 or x.conversions_per_click < 0:
        raise ValueError("impressions_per_click and conversions_per_click must be >= 0")
    emit = BY_NAME["budget_emit_interval_ms"]
    if not emit.ge <= x.budget_emit_interval_ms <= emit.le:
        raise ValueError(f"budget_emit_interval_ms must be within {emit.ge}..{emit.le} (the setting's range)")
    ttl = BY_NAME["pacing_cache_ttl_ms"]
    if not 1 <= x.pacing_cache_ttl_ms <= ttl.le:
        raise ValueError(f"pacing_cache_ttl_ms must be within 1..{ttl.le}: ad servers ask once per "
                         f"TTL (0, no cache, would be a call per served ad: not modelled)")
    if x.ad_servers is not None and x.ad_servers < 1:
        raise ValueError("ad_servers must be >= 1")
    if x.pacing_campaigns is not None and x.pacing_campaigns < 1:
        raise ValueError("pacing_campaigns must be >= 1")


def as_dict(x: Inputs) -> dict[str, Any]:
    return {k: getattr(x, k) for k in Inputs.__dataclass_fields__}
