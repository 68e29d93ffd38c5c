"""Brute-force ground truth from the load generator's clicks: what the realtime view must show.

Written independently of the Flink SQL: plain loops over the distinct clicks.
"""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

# Its own copy of common.times.RESOLUTIONS on purpose: an oracle shares no code with what it checks.
RES_MS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000}


def realtime_truth(clicks: list[dict], excluded_ids: set[str], repeat_window_s: int = 10) -> dict:
    """{(ad_id, resolution, bucket_start): {clicks, billable_clicks, cost_micros, billable_cost_micros}}
    for the distinct clicks not in `excluded_ids` (those later than the lateness horizon)."""
    out: dict = defaultdict(lambda: {"clicks": 0, "billable_clicks": 0, "cost_micros": 0, "billable_cost_micros": 0})
    seen_repeat_keys: set = set()
    for c in sorted(clicks, key=lambda c: c["event_time"]):
        if c["click_id"] in excluded_ids:
            continue
        cost = int(Decimal(str(c["cost"])) * 1_000_000) if "cost" in c else c["cost_micros"]
        repeat_key = (c["user_id"], c["ad_id"], c["event_time"] // (repeat_window_s * 1000))
        billable = repeat_key not in seen_repeat_keys
        seen_repeat_keys.add(repeat_key)
        for res, span in RES_MS.items():
            row = out[(c["ad_id"], res, c["event_time"] - c["event_time"] % span)]
            row["clicks"] += 1
            row["cost_micros"] += cost
            if billable:
                row["billable_clicks"] += 1
                row["billable_cost_micros"] += cost
    return dict(out)
