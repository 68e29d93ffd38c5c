"""GET /v1/quality: is the realtime view trustworthy right now? (pure: no AWS, no clock)

One answer from four sources, each named in the body so an operator knows where a figure
comes from and what it means:
  lag / freshness  serving store's freshness item (newest event time, watermark)
  ingest           CloudWatch (the ingest Lambda's EMF metrics ClicksAccepted/Duplicate/Rejected,
                   summed over the window): duplicate_rate = duplicates / (accepted + duplicates),
                   i.e. the share of well-formed clicks that were retries of a click already taken
  late_dropped     serving store (`L#<day>` items): clicks the stream dropped because they came
                   after their minute's watermark + allowed lateness, for minute buckets in the
                   window (event time); billing still counts them, reconciliation explains them
  reconciliation   serving store (`R#reconciliation`): the latest reconciled day's summary
Window: `last` (default 1h, at most 24h) or `from`/`to`, floored to the minute, as in /v1/top.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from query.series import window_json
from query.windows import QueryError, Window, iso, minute_window

STATUS_OK, STATUS_DRIFT = "ok", "drift"


@dataclass(frozen=True)
class QualityRequest:
    window: Window


@dataclass(frozen=True)
class IngestCounts:
    """Clicks per outcome in the window, from the ingest Lambda's metrics."""

    accepted: int
    duplicates: int
    rejected: int


@dataclass(frozen=True)
class PipelineMetrics:
    ingest: Optional[IngestCounts]  # None: the metrics source is not configured
    clicks_stream_iterator_age_ms: Optional[int]  # None: no datapoint (or not configured)
    source: str


def parse_quality(params: Mapping[str, str], now_ms: int) -> QualityRequest:
    unknown = sorted(set(params) - {"last", "from", "to"})
    if unknown:
        raise QueryError(f"unknown parameter(s) {', '.join(unknown)}: /v1/quality takes last, from, to")
    return QualityRequest(minute_window(params, now_ms))


def duplicate_rate(counts: Optional[IngestCounts]) -> Optional[float]:
    """duplicates / (accepted + duplicates); None when no click arrived (rate undefined)."""
    if counts is None or counts.accepted + counts.duplicates == 0:
        return None
    return counts.duplicates / (counts.accepted + counts.duplicates)


def lag(freshness: Mapping, now_ms: int, iterator_age_ms: Optional[int]) -> dict:
    newest, watermark = freshness.get("newest_event_time_ms"), freshness.get("watermark_ms")
    return {
        "end_to_end_ms": max(0, now_ms - newest) if newest is not None else None,
        "watermark_ms": max(0, now_ms - watermark) if watermark is not None else None,
        "clicks_stream_iterator_age_ms": iterator_age_ms,
    }


def reconciliation_json(summary: Optional[Mapping], finished_at_ms: Optional[int]) -> Optional[dict]:
    """The stored summary of the latest reconciled day -> the API's view of it."""
    if summary is None:
        return None
    keys = ("day", "total_drift", "worst_drift", "worst_ad_id", "threshold", "flag",
            "batch_billable", "realtime_billable", "total_diff", "rows", "classes",
            "explained_clicks", "unexplained_clicks", "report")
    out = {k: summary.get(k) for k in keys}
    out["finished_at"] = iso(finished_at_ms) if finished_at_ms is not None else None
    out["finished_at_ms"] = finished_at_ms
    return out


def quality_body(req: QualityRequest, now_ms: int, freshness: dict, metrics: PipelineMetrics,
                 late_dropped: int, reconciliation: Optional[dict]) -> dict:
    counts = metrics.ingest
    ingest = ({"accepted": counts.accepted, "duplicates": counts.duplicates,
               "rejected": counts.rejected, "duplicate_rate": duplicate_rate(counts)}
              if counts is not None else
              {"accepted": None, "duplicates": None, "rejected": None, "duplicate_rate": None})
    alerts = []
    if reconciliation and reconciliation.get("flag"):
        alerts.append(f"reconciliation of {reconciliation['day']}: total drift "
                      f"{reconciliation['total_drift']:.4%} is above {reconciliation['threshold']:.2%}")
    return {
        "status": STATUS_DRIFT if alerts else STATUS_OK,
        "alerts": alerts,
        "window": window_json(req.window.start, req.window.end),
        "lag": lag(freshness, now_ms, metrics.clicks_stream_iterator_age_ms),
        "freshness": freshness,
        "ingest": {**ingest, "source": metrics.source},
        "late_dropped": late_dropped,
        "reconciliation": reconciliation,
    }
