"""Measure click-posted -> visible-in-the-serving-store latency while a load runs.

A sampler reads one ad's 1-minute series every `interval_s`. The i-th accepted click of a
bucket (in posting order) is visible at the first sample where the stored count of that bucket
is >= i; its freshness is that sample's time minus the time it was posted (an upper bound by
at most one sampling interval)."""
from __future__ import annotations

import statistics
import threading
import time

from local.readback import read_series


class FreshnessSampler:
    def __init__(self, table: str, ad_id: str, interval_s: float = 0.25):
        self.table, self.ad_id, self.interval_s = table, ad_id, interval_s
        self.samples: list[tuple[float, dict[int, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="freshness", daemon=True)

    def start(self) -> "FreshnessSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.time()
            try:
                series = read_series(self.table, self.ad_id, "1m")
                self.samples.append((t, {b: v.get("clicks", 0) for b, v in series.items()}))
            except Exception:
                pass
            self._stop.wait(self.interval_s)

    def latencies(self, posted: list[tuple[float, int]]) -> list[float]:
        """posted: (post time, bucket_start) of this ad's accepted clicks."""
        rank: dict[int, int] = {}
        out = []
        for post_time, bucket in sorted(posted):
            rank[bucket] = rank.get(bucket, 0) + 1
            seen = next((t for t, counts in self.samples if counts.get(bucket, 0) >= rank[bucket]), None)
            if seen is not None:
                out.append(max(0.0, seen - post_time))
        return out


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else [values[0]] * 99
    return {"p50": q[49], "p95": q[94], "p99": q[98], "max": max(values)}
