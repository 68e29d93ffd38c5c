"""Series of one ad, campaign or advertiser: stored buckets -> a zero-filled series over the
window, plus totals (pure).

A point (and the totals) carries every metric of the serving store (serving.table.METRICS): counts
as integers, `*_micros` as money strings named without `_micros` (cost, billable_cost,
conversion_value); then the ratios of its own counts (query.ratios: ctr, cvr, cpc, cpa, roas;
null when their denominator is 0), so the totals' ratios are those of the window's sums, not
an average of the points'.
IVT verdicts: billable_clicks are the valid clicks, suspect_clicks and invalid_clicks the others
(clicks = billable_clicks + suspect_clicks + invalid_clicks for rows the verdict-aware job wrote;
buckets stored before it have no suspect/invalid counts, before issue 19 no impressions,
conversions or conversion value: 0).
A campaign's or advertiser's bucket is the job's rollup of its ads' rows (the same metrics, summed
in the same job version), so it equals the sum of their ad series.
Corrections (docs/corrections.md): every point has `corrected` (true: the bucket was set to the
nightly batch truth after reconciliation; an ad's 1h and 1d buckets only) and, when true,
`correction` (the run, when, and the stream's own values of the corrected metrics). A campaign's
or advertiser's rollup and 1m/5m buckets are not corrected: inside a corrected hour they keep the
stream's figures, so there they no longer sum to the corrected ad hours.
"""
from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Mapping, Optional

from query.ratios import MONEY_SUFFIX, is_money, micros_to_decimal, ratios_json
from query.windows import SeriesRequest, iso
from serving.table import METRICS

# One stored bucket: an int field (default 0) per metric, in METRICS order.
Bucket = make_dataclass("Bucket", [(m, int, field(default=0)) for m in METRICS], frozen=True)
Bucket.__module__ = __name__  # (make_dataclass's own `module=` needs Python 3.12)


@dataclass
class SeriesData:
    """What a store read for one series: buckets by start (ms), the ids its rows carry (an ad's
    campaign and advertiser, a campaign's advertiser) if seen."""

    buckets: dict[int, Bucket] = field(default_factory=dict)
    campaign_id: Optional[str] = None
    advertiser_id: Optional[str] = None
    # bucket start -> serving.table.correction_of's marker (run_id, applied_at_ms, realtime)
    corrections: dict[int, dict] = field(default_factory=dict)


def metrics_json(values) -> dict:
    """A bucket (or anything with the METRICS attributes) -> the API's metric fields, then the
    ratios of those counts."""
    out = {}
    counts = {m: int(getattr(values, m)) for m in METRICS}
    for m, v in counts.items():
        if is_money(m):
            out[m.removesuffix(MONEY_SUFFIX)] = micros_to_decimal(v)
        else:
            out[m] = v
    return {**out, **ratios_json(counts)}


def ids_json(req: SeriesRequest, data: SeriesData) -> dict:
    """The series' own id, then the ids above it its rows carry (null if none was read)."""
    if req.level == "ad":
        return {"ad_id": req.entity_id, "campaign_id": data.campaign_id, "advertiser_id": data.advertiser_id}
    if req.level == "campaign":
        return {"campaign_id": req.entity_id, "advertiser_id": data.advertiser_id}
    return {"advertiser_id": req.entity_id}


def build_series(req: SeriesRequest, data: SeriesData) -> dict:
    """Every bucket of the window in order; buckets the store does not have are zeros. Buckets
    outside the window (a store returning more than asked) are ignored."""
    points = []
    sums = dict.fromkeys(METRICS, 0)
    for start in req.window.buckets:
        b = data.buckets.get(start, Bucket())
        for m in METRICS:
            sums[m] += getattr(b, m)
        point = {"bucket_start": iso(start), "bucket_start_ms": start, "corrected": start in data.corrections,
                 **metrics_json(b)}
        if start in data.corrections:
            point["correction"] = correction_json(data.corrections[start])
        points.append(point)
    totals = Bucket(**sums)
    return {
        **ids_json(req, data),
        "resolution": req.resolution,
        "window": window_json(req.window.start, req.window.end),
        "points": points,
        "corrected_buckets": sum(1 for p in points if p["corrected"]),
        "totals": metrics_json(totals),
    }


def correction_json(marker: Mapping) -> dict:
    """A corrected bucket's marker -> the point's `correction` (money as the metrics' strings)."""
    realtime = {}
    for m, v in (marker.get("realtime") or {}).items():
        if is_money(m):
            realtime[m.removesuffix(MONEY_SUFFIX)] = micros_to_decimal(v)
        else:
            realtime[m] = v
    at = marker.get("applied_at_ms")
    return {"run_id": marker.get("run_id"), "applied_at": iso(at) if at else None, "realtime": realtime}


def window_json(start: int, end: int) -> dict:
    return {"from": iso(start), "to": iso(end), "from_ms": start, "to_ms": end}


def bucket_from(values: Mapping[str, Optional[int]]) -> Bucket:
    """A bucket from {metric: value} (absent or null: 0)."""
    return Bucket(*(int(values.get(m) or 0) for m in METRICS))
