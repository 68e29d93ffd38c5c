"""How fresh the serving store is, and whether a window's numbers can still change (pure).

A bucket is final once the stream's watermark has passed its end by the allowed lateness
(bucket_end + lateness <= watermark): after that no late click can change it. `final` is true
iff every bucket of the range is final, i.e. range_end + lateness <= watermark.
"""
from __future__ import annotations

from typing import Optional

from query.windows import iso


def freshness(watermark_ms: Optional[int], newest_event_ms: Optional[int], now_ms: int,
              lateness_ms: int, range_end_ms: Optional[int] = None) -> dict:
    """`lag_ms`: now - newest event time reflected in the store (null when nothing is)."""
    out = {
        "newest_event_time": iso(newest_event_ms) if newest_event_ms is not None else None,
        "newest_event_time_ms": newest_event_ms,
        "watermark": iso(watermark_ms) if watermark_ms is not None else None,
        "watermark_ms": watermark_ms,
        "lag_ms": max(0, now_ms - newest_event_ms) if newest_event_ms is not None else None,
        "allowed_lateness_ms": lateness_ms,
    }
    if range_end_ms is not None:
        out["final"] = watermark_ms is not None and range_end_ms + lateness_ms <= watermark_ms
    return out
