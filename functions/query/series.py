"""Per-ad series: stored buckets -> a zero-filled series over the window, plus totals (pure).

A point (and the totals) carries every metric of the serving store (serving.table.METRICS): counts
as integers, `*_cost_micros` as money strings named without `_micros` (cost, billable_cost).
IVT verdicts: billable_clicks are the valid clicks, suspect_clicks and invalid_clicks the others
(clicks = billable_clicks + suspect_clicks + invalid_clicks for rows the verdict-aware job wrote;
buckets stored before it have no suspect/invalid counts: 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Mapping, Optional

from query.topk import micros_to_decimal
from query.windows import SeriesRequest, iso
from serving.table import METRICS

MICROS = "_micros"

# One stored bucket: an int field (default 0) per metric, in METRICS order.
Bucket = make_dataclass("Bucket", [(m, int, field(default=0)) for m in METRICS], frozen=True)
Bucket.__module__ = __name__  # (make_dataclass's own `module=` needs Python 3.12)


@dataclass
class SeriesData:
    """What a store read for one ad: buckets by start (ms), the ad's ids if seen."""

    buckets: dict[int, Bucket] = field(default_factory=dict)
    campaign_id: Optional[str] = None
    advertiser_id: Optional[str] = None


def metrics_json(values) -> dict:
    """A bucket (or anything with the METRICS attributes) -> the API's metric fields."""
    out = {}
    for m in METRICS:
        v = getattr(values, m)
        if m.endswith(MICROS):
            out[m.removesuffix(MICROS)] = micros_to_decimal(v)
        else:
            out[m] = int(v)
    return out


def build_series(req: SeriesRequest, data: SeriesData) -> dict:
    """Every bucket of the window in order; buckets the store does not have are zeros. Buckets
    outside the window (a store returning more than asked) are ignored."""
    points = []
    sums = dict.fromkeys(METRICS, 0)
    for start in req.window.buckets:
        b = data.buckets.get(start, Bucket())
        for m in METRICS:
            sums[m] += getattr(b, m)
        points.append({"bucket_start": iso(start), "bucket_start_ms": start, **metrics_json(b)})
    totals = Bucket(**sums)
    return {
        "ad_id": req.ad_id,
        "campaign_id": data.campaign_id,
        "advertiser_id": data.advertiser_id,
        "resolution": req.resolution,
        "window": window_json(req.window.start, req.window.end),
        "points": points,
        "totals": metrics_json(totals),
    }


def window_json(start: int, end: int) -> dict:
    return {"from": iso(start), "to": iso(end), "from_ms": start, "to_ms": end}


def bucket_from(values: Mapping[str, Optional[int]]) -> Bucket:
    """A bucket from {metric: value} (absent or null: 0)."""
    return Bucket(*(int(values.get(m) or 0) for m in METRICS))
