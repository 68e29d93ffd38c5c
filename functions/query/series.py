"""Per-ad series: stored buckets -> a zero-filled series over the window, plus totals (pure)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

from query.topk import micros_to_decimal
from query.windows import SeriesRequest, iso

SERIES_METRICS = ("clicks", "billable_clicks", "cost_micros", "billable_cost_micros")


@dataclass(frozen=True)
class Bucket:
    clicks: int = 0
    billable_clicks: int = 0
    cost_micros: int = 0
    billable_cost_micros: int = 0


@dataclass
class SeriesData:
    """What a store read for one ad: buckets by start (ms), the ad's ids if seen."""

    buckets: dict[int, Bucket] = field(default_factory=dict)
    campaign_id: Optional[str] = None
    advertiser_id: Optional[str] = None


def _metrics(b: Bucket) -> dict:
    return {"clicks": b.clicks, "billable_clicks": b.billable_clicks,
            "cost": micros_to_decimal(b.cost_micros), "billable_cost": micros_to_decimal(b.billable_cost_micros)}


def build_series(req: SeriesRequest, data: SeriesData) -> dict:
    """Every bucket of the window in order; buckets the store does not have are zeros. Buckets
    outside the window (a store returning more than asked) are ignored."""
    points = []
    sums = dict.fromkeys(SERIES_METRICS, 0)
    for start in req.window.buckets:
        b = data.buckets.get(start, Bucket())
        for m in SERIES_METRICS:
            sums[m] += getattr(b, m)
        points.append({"bucket_start": iso(start), "bucket_start_ms": start, **_metrics(b)})
    totals = Bucket(**sums)
    return {
        "ad_id": req.ad_id,
        "campaign_id": data.campaign_id,
        "advertiser_id": data.advertiser_id,
        "resolution": req.resolution,
        "window": window_json(req.window.start, req.window.end),
        "points": points,
        "totals": _metrics(totals),
    }


def window_json(start: int, end: int) -> dict:
    return {"from": iso(start), "to": iso(end), "from_ms": start, "to_ms": end}


def bucket_from(values: Mapping[str, Optional[int]]) -> Bucket:
    return Bucket(*(int(values.get(m) or 0) for m in SERIES_METRICS))
