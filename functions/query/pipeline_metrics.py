"""CloudWatch -> the ingest outcome counts and the clicks stream's iterator age (AWS edge).

The ingest Lambda publishes ClicksAccepted / ClicksDuplicate / ClicksRejected as EMF metrics
(namespace POWERTOOLS_METRICS_NAMESPACE, dimension service=ingest). One GetMetricData call reads
their sums over the window (one period = the window) and the stream's
GetRecords.IteratorAgeMilliseconds (maximum over the window). Locally the stack forwards the handler's EMF lines to moto's
CloudWatch, as CloudWatch Logs does on AWS; nothing publishes Kinesis' own metrics there, so the
iterator age is null locally.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Optional

from common.config import QualitySettings, ResourceNames
from query.quality import IngestCounts, PipelineMetrics

INGEST_METRICS = {"accepted": "ClicksAccepted", "duplicates": "ClicksDuplicate", "rejected": "ClicksRejected"}


def period_for(start_ms: int, end_ms: int) -> int:
    """One datapoint per query for the whole window (minute-aligned, <= 24 h): the period is
    the window itself. (Per-minute points over 24 h made moto's GetMetricData loop 1,440 times
    per query and starve the emulator; on AWS one point is also the cheapest answer.)"""
    return max(60, (end_ms - start_ms) // 1000 // 60 * 60)


def metric_queries(namespace: str, service: str, stream_name: Optional[str], period_s: int) -> list[dict]:
    """GetMetricData queries (pure): ingest sums and the stream's maximum iterator age."""
    queries = [{
        "Id": key, "ReturnData": True,
        "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": name,
                                  "Dimensions": [{"Name": "service", "Value": service}]},
                       "Period": period_s, "Stat": "Sum"},
    } for key, name in INGEST_METRICS.items()]
    if stream_name:
        queries.append({
            "Id": "iterator_age", "ReturnData": True,
            "MetricStat": {"Metric": {"Namespace": "AWS/Kinesis",
                                      "MetricName": "GetRecords.IteratorAgeMilliseconds",
                                      "Dimensions": [{"Name": "StreamName", "Value": stream_name}]},
                           "Period": period_s, "Stat": "Maximum"},
        })
    return queries


def _ms(ts) -> int:
    if isinstance(ts, datetime):
        return int(ts.timestamp() * 1000)
    return int(ts)


def counts_from(results: list[dict], start_ms: int, end_ms: int) -> tuple[IngestCounts, Optional[int]]:
    """GetMetricData results -> (ingest counts over the datapoints in [start, end), the highest
    iterator age among them) (pure)."""
    points: dict[str, list[tuple[int, float]]] = {}
    for r in results:
        points.setdefault(r["Id"], []).extend(
            (_ms(t), float(v)) for t, v in zip(r.get("Timestamps") or [], r.get("Values") or []))
    inside = {k: [v for t, v in pts if start_ms <= t < end_ms] for k, pts in points.items()}
    counts = IngestCounts(**{k: int(round(sum(inside.get(k, [])))) for k in INGEST_METRICS})
    ages = inside.get("iterator_age") or []
    return counts, int(max(ages)) if ages else None


class CloudWatchPipelineMetrics:
    def __init__(self, client, namespace: str, service: str = "ingest",
                 stream_name: Optional[str] = None):
        self._cw, self.namespace, self.service, self.stream_name = client, namespace, service, stream_name

    @classmethod
    def from_env(cls) -> "CloudWatchPipelineMetrics":
        import boto3
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5)
        settings = QualitySettings.from_env()  # INGEST_METRICS_SERVICE, CLICKS_STREAM_NAME
        return cls(boto3.client("cloudwatch", config=config),
                   # Powertools' own variable (infra sets it on every function)
                   os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or ResourceNames().metrics_namespace,
                   settings.ingest_metrics_service, settings.clicks_stream_name or None)

    @property
    def source(self) -> str:
        return f"cloudwatch:{self.namespace}/service={self.service}"

    def read(self, start_ms: int, end_ms: int, now_ms: int) -> tuple[PipelineMetrics, int]:
        """(metrics, requests): the ingest sums and the maximum iterator age over [start, end)."""
        queries = metric_queries(self.namespace, self.service, self.stream_name,
                                 period_for(start_ms, end_ms))
        start, end = start_ms, end_ms
        results, requests = [], 0
        pages = self._cw.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, ScanBy="TimestampDescending",
            StartTime=datetime.fromtimestamp(start / 1000, tz=timezone.utc),
            EndTime=datetime.fromtimestamp(end / 1000, tz=timezone.utc))
        for page in pages:  # one page = one GetMetricData request
            requests += 1
            results.extend(page.get("MetricDataResults", []))
        counts, age = counts_from(results, start_ms, end_ms)
        return PipelineMetrics(counts, age, self.source), requests
