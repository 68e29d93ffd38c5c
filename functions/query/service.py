"""One query request end to end: parameters -> store read -> merge -> response body (no HTTP).

The store is injected, so the same code runs in Lambda, the local stack and tests.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping, Optional

from botocore.exceptions import BotoCoreError, ClientError

from common.config import AggregationSettings, QualitySettings
from query.freshness import freshness
from query.quality import (PipelineMetrics, ivt_json, ivt_windows, parse_quality, quality_body,
                           reconciliation_json)
from query.ratios import RATIOS
from query.series import build_series, window_json
from query.topk import IVT_COUNTS, format_value
from query.windows import parse_series, parse_top
from serving.types import QueryStore, StoreFreshness


class QueryService:
    def __init__(self, store: QueryStore, settings: Optional[AggregationSettings] = None,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 pipeline_metrics=None, quality: Optional[QualitySettings] = None):
        """`pipeline_metrics`: CloudWatch reader for GET /v1/quality (None: not configured);
        `quality`: its settings (ivt_alert_percent; default: the schema's)."""
        self.store, self.settings, self.clock_ms = store, settings or AggregationSettings(), clock_ms
        self.pipeline_metrics = pipeline_metrics
        self.quality_settings = quality or QualitySettings()
        self._pool = ThreadPoolExecutor(5, thread_name_prefix="quality")

    def _freshness(self, f: StoreFreshness, now_ms: int, range_end: Optional[int]) -> dict:
        return freshness(f.watermark_ms, f.newest_event_ms, now_ms,
                         self.settings.allowed_lateness_s * 1000, range_end)

    def top(self, params: Mapping[str, str]) -> dict:
        now = self.clock_ms()
        req = parse_top(params, now, self.store.minute_retention_ms)
        answer = self.store.top(req)
        r, d = answer.result, req.decomposition
        ratio = RATIOS.get(req.metric)
        return {
            "metric": req.metric,
            "k": req.k,
            "min_volume": req.min_volume,
            "window": {**window_json(req.window.start, req.window.end), "buckets": d.counts()},
            "filters": {"campaign_id": req.campaign_id, "advertiser_id": req.advertiser_id},
            "exact": r.exact,
            "error_bound": format_value(req.metric, r.error_bound),
            "inexact_reason": None if r.exact else r.reason,
            "items": [{"rank": i + 1, "ad_id": a.ad_id, "campaign_id": a.campaign_id,
                       "advertiser_id": a.advertiser_id, "total": format_value(req.metric, a.total),
                       "total_upper": format_value(req.metric, a.upper),
                       **{name: getattr(a, name) for name in IVT_COUNTS},
                       **({} if ratio is None else {
                           "numerator": format_value(ratio.numerator, a.numerator),
                           "denominator": format_value(ratio.denominator, a.denominator)})}
                      for i, a in enumerate(r.items)],
            "freshness": self._freshness(answer.freshness, now, req.window.end),
            "debug": {"store": self.store.kind, "requests": answer.requests, **answer.debug},
        }

    def series(self, entity_id: str, params: Mapping[str, str], level: str = "ad") -> dict:
        """The series of an ad, a campaign or an advertiser (`level`: query.windows.SERIES_LEVELS)."""
        now = self.clock_ms()
        req = parse_series(entity_id, params, now, level, self.store.minute_retention_ms)
        answer = self.store.series(req)
        return {**build_series(req, answer.data),
                "freshness": self._freshness(answer.freshness, now, req.window.end),
                "debug": {"store": self.store.kind, "requests": answer.requests, **answer.debug}}

    def health(self) -> dict:
        now = self.clock_ms()
        f, requests = self.store.freshness()
        return {"status": "ok", "store": self.store.kind, "freshness": self._freshness(f, now, None),
                "debug": {"requests": requests}}

    def _metrics(self, start_ms: int, end_ms: int, now_ms: int) -> tuple[PipelineMetrics, int]:
        """CloudWatch is an optional source: its failure degrades the ingest figures to null
        (named in `source`) instead of failing the whole answer."""
        if self.pipeline_metrics is None:
            return PipelineMetrics(None, None, "not configured"), 0
        try:
            return self.pipeline_metrics.read(start_ms, end_ms, now_ms)
        except (ClientError, BotoCoreError) as exc:
            code = exc.response["Error"].get("Code") if isinstance(exc, ClientError) else type(exc).__name__
            return PipelineMetrics(None, None, f"{self.pipeline_metrics.source} unavailable: {code}"), 1

    def quality(self, params: Mapping[str, str]) -> dict:
        now = self.clock_ms()
        req = parse_quality(params, now)
        w = req.window
        fresh_f = self._pool.submit(self.store.freshness)
        late_f = self._pool.submit(self.store.late_dropped, w.start, w.end)
        rec_f = self._pool.submit(self.store.last_reconciliation)
        metrics_f = self._pool.submit(self._metrics, w.start, w.end, now)
        windows = ivt_windows(w.end, now)
        ivt_f = self._pool.submit(self.store.verdict_totals, windows)
        (f, r1), (late, r2), (summary, finished, r3), (metrics, r4), (totals, r5) = (
            fresh_f.result(), late_f.result(), rec_f.result(), metrics_f.result(), ivt_f.result())
        final = {iw.name: self._freshness(f, now, iw.end)["final"] for iw in windows}
        ivt = ivt_json(windows, totals, self.quality_settings.ivt_alert_percent, final,
                       self.quality_settings.ivt_alert_min_clicks)
        body = quality_body(req, now, self._freshness(f, now, None), metrics, late,
                            reconciliation_json(summary, finished), ivt)
        store_requests = r1 + r2 + r3 + r5
        body["debug"] = {"store": self.store.kind, "requests": store_requests + r4,
                         "store_requests": store_requests, "metrics_requests": r4}
        return body
