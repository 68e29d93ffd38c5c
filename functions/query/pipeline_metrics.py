"""CloudWatch -> the ingest outcome counts and the clicks stream's iterator age (AWS edge).

The ingest Lambda publishes ClicksAccepted / ClicksDuplicate / ClicksRejected as EMF metrics
(namespace POWERTOOLS_METRICS_NAMESPACE, dimension service=ingest). One GetMetricData call reads
their per-minute sums (added up over the minutes of the window: a 24 h window is 1,440 points
per metric, far below the call's limit) and the stream's GetRecords.IteratorAgeMilliseconds
(maximum over the last 5 minutes). Locally the stack forwards the handler's EMF lines to moto's
CloudWatch, as CloudWatch Logs does on AWS; nothing publishes Kinesis' own metrics there, so the
iterator age is null locally.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Optional

from query.quality import IngestCounts, PipelineMetrics

INGEST_METRICS = {"accepted": "ClicksAccepted", "duplicates": "ClicksDuplicate", "rejected": "ClicksRejected"}
ITERATOR_AGE_LOOKBACK_MS = 300_000


PERIOD_S = 60  # per-minute datapoints, summed over the minutes of the window


def metric_queries(namespace: str, service: str, stream_name: Optional[str]) -> list[dict]:
    """GetMetricData queries (pure)."""
    queries = [{
        "Id": key, "ReturnData": True,
        "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": name,
                                  "Dimensions": [{"Name": "service", "Value": service}]},
                       "Period": PERIOD_S, "Stat": "Sum"},
    } for key, name in INGEST_METRICS.items()]
    if stream_name:
        queries.append({
            "Id": "iterator_age", "ReturnData": True,
            "MetricStat": {"Metric": {"Namespace": "AWS/Kinesis",
                                      "MetricName": "GetRecords.IteratorAgeMilliseconds",
                                      "Dimensions": [{"Name": "StreamName", "Value": stream_name}]},
                           "Period": PERIOD_S, "Stat": "Maximum"},
        })
    return queries


def _ms(ts) -> int:
    if isinstance(ts, datetime):
        return int(ts.timestamp() * 1000)
    return int(ts)


def counts_from(results: list[dict], start_ms: int, end_ms: int,
                age_since_ms: int) -> tuple[IngestCounts, Optional[int]]:
    """GetMetricData results -> (ingest counts over the datapoints in [start, end), the
    highest iterator age since `age_since_ms`) (pure)."""
    points: dict[str, list[tuple[int, float]]] = {}
    for r in results:
        points.setdefault(r["Id"], []).extend(
            (_ms(t), float(v)) for t, v in zip(r.get("Timestamps") or [], r.get("Values") or []))
    counts = IngestCounts(**{k: int(round(sum(v for t, v in points.get(k, []) if start_ms <= t < end_ms)))
                             for k in INGEST_METRICS})
    ages = [v for t, v in points.get("iterator_age", []) if t >= age_since_ms]
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
        return cls(boto3.client("cloudwatch", config=config),
                   os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ClickAgg"),
                   os.environ.get("INGEST_METRICS_SERVICE", "ingest"),
                   os.environ.get("CLICKS_STREAM_NAME") or None)

    @property
    def source(self) -> str:
        return f"cloudwatch:{self.namespace}/service={self.service}"

    def read(self, start_ms: int, end_ms: int, now_ms: int) -> tuple[PipelineMetrics, int]:
        """(metrics, requests). The ingest sums cover [start, end); the iterator age the last
        5 minutes before now."""
        queries = metric_queries(self.namespace, self.service, self.stream_name)
        age_since = now_ms - ITERATOR_AGE_LOOKBACK_MS
        start = min(start_ms, age_since) if self.stream_name else start_ms
        end = max(end_ms, now_ms + PERIOD_S * 1000)
        results, requests = [], 0
        kwargs = {"MetricDataQueries": queries, "ScanBy": "TimestampDescending",
                  "StartTime": datetime.fromtimestamp(start / 1000, tz=timezone.utc),
                  "EndTime": datetime.fromtimestamp(end / 1000, tz=timezone.utc)}
        while True:
            requests += 1
            page = self._cw.get_metric_data(**kwargs)
            results.extend(page.get("MetricDataResults", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        counts, age = counts_from(results, start_ms, end_ms, age_since)
        return PipelineMetrics(counts, age, self.source), requests
