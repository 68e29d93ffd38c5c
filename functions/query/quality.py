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
  reconciliation   serving store (`R#reconciliation`): the latest reconciled day's summary (the
                   billable clicks', the events' and, since the budget lane, the spend's:
                   realtime spend vs the batch's valid cost per campaign-day)
  corrections      the same summary's `corrections` section (glue_jobs/corrections.py): the day's
                   1h buckets corrected to the batch truth (how many, by which runs, the net change
                   per metric), what this reconciliation applied or left pending; no extra request
  ivt              serving store: clicks per IVT verdict (common/ivt.py) in two recent windows
                   (below), the rate of each class and whether it is above the alert threshold
Window: `last` (default 1h, at most 24h: not the 30 days of /v1/top) or `from`/`to`, floored to the
minute, as in /v1/top.

IVT windows (not the request's window: a rate is only worth alerting on while it is recent).
Anchor A = min(the window's end, the start of the current minute), so by default the current,
still-filling minute is left out and `to` moves the windows back in time:
  last_5m    the five 1m buckets [A - 5 min, A)                       (1m aggregates)
  last_hour  the last whole hour before A, [floor_h(A) - 1 h, floor_h(A))  (the 1h aggregate)
Per window: clicks, billable_clicks (= valid), suspect_clicks, invalid_clicks summed over every ad,
  rates  suspect = suspect_clicks / clicks, invalid = invalid_clicks / clicks,
         both = (suspect_clicks + invalid_clicks) / clicks   (null when clicks = 0)
  alert  (suspect_clicks + invalid_clicks) / clicks * 100 > ivt_alert_percent (QualitySettings,
         env IVT_ALERT_PERCENT; the CloudWatch alarm uses the same setting), compared in integers
  final  every bucket of the window is final (watermark >= end + allowed lateness)
  complete  every ad with clicks in the window is counted. The DynamoDB store reads the buckets'
         leaderboards (the only items that hold every ad of a bucket; one Query per partition, so
         at most 3 for both windows): a board holding <= 0.9*M entries lists every ad (as in
         /v1/top), a fuller one only the top M by clicks, and then the figures are those of the
         top ads (complete: false). Timestream sums the aggregates of all ads: always complete.
Rows written before the verdicts existed count no suspect/invalid clicks (read as 0). Any window
alerting adds an alert and, unless drift already did, `status: ivt`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from common.times import HOUR_MS, MINUTE_MS, floor_to
from query.series import window_json
from query.windows import DAY_MS, QueryError, Window, iso, minute_window

STATUS_OK, STATUS_DRIFT, STATUS_IVT = "ok", "drift", "ivt"
IVT_LAST_MINUTES = 5


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


@dataclass(frozen=True)
class IvtWindow:
    """One window of the ivt section: [start, end) in buckets of `resolution` (1m | 1h)."""

    name: str
    resolution: str
    start: int
    end: int


@dataclass(frozen=True)
class VerdictTotals:
    """Clicks per verdict summed over the ads a store counted in one IvtWindow."""

    clicks: int = 0
    billable_clicks: int = 0  # valid
    suspect_clicks: int = 0
    invalid_clicks: int = 0
    complete: bool = True  # every ad with clicks in the window is counted


def ivt_windows(window_end_ms: int, now_ms: int) -> tuple[IvtWindow, IvtWindow]:
    """The last 5 whole minutes and the last whole hour before the anchor (module doc)."""
    anchor = min(window_end_ms, floor_to(now_ms, MINUTE_MS))
    minute, hour = floor_to(anchor, MINUTE_MS), floor_to(anchor, HOUR_MS)
    return (IvtWindow("last_5m", "1m", minute - IVT_LAST_MINUTES * MINUTE_MS, minute),
            IvtWindow("last_hour", "1h", hour - HOUR_MS, hour))


def ivt_alerting(t: VerdictTotals, alert_percent: int, min_clicks: int = 1) -> bool:
    """(suspect + invalid) / clicks * 100 > alert_percent, exactly (integers), in a window of at
    least `min_clicks` (>= 1) clicks."""
    return t.clicks >= max(1, min_clicks) and \
        100 * (t.suspect_clicks + t.invalid_clicks) > alert_percent * t.clicks


def ivt_rates(t: VerdictTotals) -> dict[str, Optional[float]]:
    if t.clicks <= 0:
        return {"suspect": None, "invalid": None, "both": None}
    return {"suspect": t.suspect_clicks / t.clicks, "invalid": t.invalid_clicks / t.clicks,
            "both": (t.suspect_clicks + t.invalid_clicks) / t.clicks}


def ivt_json(windows: Sequence[IvtWindow], totals: Sequence[VerdictTotals], alert_percent: int,
             final: Mapping[str, bool], min_clicks: int = 1) -> dict:
    """The ivt section: alert_percent, alert_min_clicks, alert (any window), one object per window."""
    out: dict = {"alert_percent": alert_percent, "alert_min_clicks": min_clicks, "alert": False}
    for w, t in zip(windows, totals, strict=True):
        alert = ivt_alerting(t, alert_percent, min_clicks)
        out["alert"] = out["alert"] or alert
        out[w.name] = {**window_json(w.start, w.end), "resolution": w.resolution,
                       "clicks": t.clicks, "billable_clicks": t.billable_clicks,
                       "suspect_clicks": t.suspect_clicks, "invalid_clicks": t.invalid_clicks,
                       "rates": ivt_rates(t), "alert": alert, "complete": t.complete,
                       "final": bool(final.get(w.name))}
    return out


def ivt_alerts(ivt: Mapping) -> list[str]:
    """One alert text per alerting window of an ivt section."""
    out = []
    for name, label in (("last_5m", "the last 5 minutes"), ("last_hour", "the last whole hour")):
        w = ivt.get(name)
        if w and w["alert"]:
            out.append(f"IVT in {label} ({w['from']} to {w['to']}): {w['rates']['both']:.2%} of "
                       f"{w['clicks']} clicks suspect or invalid, above {ivt['alert_percent']}%")
    return out


def parse_quality(params: Mapping[str, str], now_ms: int) -> QualityRequest:
    unknown = sorted(set(params) - {"last", "from", "to"})
    if unknown:
        raise QueryError(f"unknown parameter(s) {', '.join(unknown)}: /v1/quality takes last, from, to")
    return QualityRequest(minute_window(params, now_ms, DAY_MS))


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


# the events' sections of a reconciliation summary (glue_jobs/reconcile.py summarize_events)
EVENT_RECONCILIATION = ("impressions", "conversions")
EVENT_RECONCILIATION_KEYS = ("batch", "realtime", "total_diff", "total_drift", "worst_drift",
                             "worst_ad_id", "threshold", "flag", "classes", "explained",
                             "unexplained")


# the spend section (glue_jobs/reconcile.py reconcile_spend; docs/budget.md "Batch truth")
SPEND_RECONCILIATION_KEYS = ("batch", "realtime", "total_diff", "total_drift", "worst_drift",
                             "worst_campaign_id", "threshold", "flag", "campaigns",
                             "drifting_campaigns", "drifting", "budgeted_campaigns",
                             "billed_cost_micros", "over_budget_cost_micros", "over_budget_clicks",
                             "over_budget_campaigns")


# the corrections section (glue_jobs/corrections.summarize; docs/corrections.md)
CORRECTIONS_KEYS = ("requested", "skipped", "fields", "pending", "applied", "conflicts",
                    "already_applied", "run_id", "ad_hours", "runs", "delta", "ledger")


def reconciliation_json(summary: Optional[Mapping], finished_at_ms: Optional[int]) -> Optional[dict]:
    """The stored summary of the latest reconciled day -> the API's view of it."""
    if summary is None:
        return None
    keys = ("day", "total_drift", "worst_drift", "worst_ad_id", "threshold", "flag",
            "batch_billable", "realtime_billable", "total_diff", "rows", "classes",
            "explained_clicks", "unexplained_clicks", "report")
    out = {k: summary.get(k) for k in keys}
    for metric in EVENT_RECONCILIATION:  # issue 19: null in summaries of before it
        section = summary.get(metric)
        out[metric] = ({k: section.get(k) for k in EVENT_RECONCILIATION_KEYS}
                       if isinstance(section, Mapping) else None)
    spend = summary.get("spend")  # the budget lane: null in summaries of before it
    out["spend"] = ({k: spend.get(k) for k in SPEND_RECONCILIATION_KEYS}
                    if isinstance(spend, Mapping) else None)
    corrections = summary.get("corrections")  # null in summaries of before corrections
    out["corrections"] = ({k: corrections.get(k) for k in CORRECTIONS_KEYS}
                          if isinstance(corrections, Mapping) else None)
    out["finished_at"] = iso(finished_at_ms) if finished_at_ms is not None else None
    out["finished_at_ms"] = finished_at_ms
    return out


def quality_body(req: QualityRequest, now_ms: int, freshness: dict, metrics: PipelineMetrics,
                 late_dropped: int, reconciliation: Optional[dict], ivt: Optional[dict] = None) -> dict:
    """The answer; `ivt`: the section ivt_json made (None: left out, e.g. a caller without it)."""
    counts = metrics.ingest
    ingest = ({"accepted": counts.accepted, "duplicates": counts.duplicates,
               "rejected": counts.rejected, "duplicate_rate": duplicate_rate(counts)}
              if counts is not None else
              {"accepted": None, "duplicates": None, "rejected": None, "duplicate_rate": None})
    alerts = []
    if reconciliation and reconciliation.get("flag"):
        corrected = (reconciliation.get("corrections") or {}).get("ad_hours")
        alerts.append(f"reconciliation of {reconciliation['day']}: total drift "
                      f"{reconciliation['total_drift']:.4%} is above {reconciliation['threshold']:.2%}"
                      + (f" (corrected to the batch truth: {corrected} ad-hours)" if corrected else ""))
    status = STATUS_DRIFT if alerts else STATUS_OK
    # the events' and the spend's drift is reported, but `status` stays the billable clicks', as
    # the TotalDrift alarm does
    for metric in (*EVENT_RECONCILIATION, "spend"):
        section = (reconciliation or {}).get(metric)
        if section and section.get("flag"):
            alerts.append(f"reconciliation of {reconciliation['day']}: {metric} drift "
                          f"{section['total_drift']:.4%} is above {section['threshold']:.2%}")
    ivt_texts = ivt_alerts(ivt) if ivt else []
    if ivt_texts and status == STATUS_OK:
        status = STATUS_IVT
    alerts += ivt_texts
    body = {
        "status": status,
        "alerts": alerts,
        "window": window_json(req.window.start, req.window.end),
        "lag": lag(freshness, now_ms, metrics.clicks_stream_iterator_age_ms),
        "freshness": freshness,
        "ingest": {**ingest, "source": metrics.source},
        "late_dropped": late_dropped,
        "reconciliation": reconciliation,
    }
    if ivt is not None:
        body["ivt"] = ivt
    return body
