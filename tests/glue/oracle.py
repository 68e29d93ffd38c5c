"""Independent oracle for the billing job: plain Python over the generated rows, written from the
rules (glue_jobs/billing/transform.py docstring), sharing no code with the Spark job.

Input: every generated archive row with the arrival time that decides its partition.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone

# Own time units, not common.times, on purpose: an oracle shares no code with what it checks.
HOUR = 3_600_000
DAY = 24 * HOUR


def _nulls_last(value):
    return (value is None, value if value is not None else 0)


def day_start(day) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * 1000


def billing_oracle(rows: list[tuple[dict, int]], day, repeat_window_s=10, burst_threshold=10,
                   cutoff_hours=2, allowed_lateness_s=900, watermark_delay_s=5):
    """rows: [(click, arrival_ms)]. Returns (hourly {key: metrics}, reasons {click_id: reason})."""
    d0 = day_start(day)
    # 1. arrival hours read: [D 00:00 - 1 h, D 24:00 + cutoff h)
    lo, hi = d0 - HOUR, d0 + DAY + cutoff_hours * HOUR
    read = [c for c, arrival in rows if lo <= arrival < hi]

    # 2. first arrival per click_id
    def rank(c):
        return tuple(_nulls_last(c[k]) for k in ("ingest_time", "event_time", "cost_micros", "ad_id",
                                                   "campaign_id", "advertiser_id", "user_id", "ip"))
    copies: dict[str, list[dict]] = defaultdict(list)
    for c in read:
        copies[c["click_id"]].append(c)
    first = {cid: min(cs, key=rank) for cid, cs in copies.items()}

    # 3. event day D
    clicks = [c for c in first.values() if c["event_time"] is not None and d0 <= c["event_time"] < d0 + DAY]

    # 4. repeat winners
    w = repeat_window_s * 1000
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in clicks:
        groups[(c["user_id"], c["ad_id"], c["event_time"] // w)].append(c)
    winners = {min(g, key=lambda c: (c["event_time"], _nulls_last(c["ingest_time"]), c["click_id"]))["click_id"]
               for g in groups.values()}

    # 5. ip bursts: fixed one-second buckets, > threshold clicks, ip known
    per_second: dict[tuple, int] = defaultdict(int)
    for c in clicks:
        if c["ip"] is not None:
            per_second[(c["ip"], c["ad_id"], c["event_time"] // 1000)] += 1

    hourly: dict[tuple, dict] = {}
    reasons: dict[str, str | None] = {}
    for c in clicks:
        burst = c["ip"] is not None and per_second[(c["ip"], c["ad_id"], c["event_time"] // 1000)] > burst_threshold
        winner = c["click_id"] in winners
        reason = "ip_burst" if burst else (None if winner else "repeat")
        reasons[c["click_id"]] = reason
        hour = c["event_time"] // HOUR * HOUR
        # the stream drops a click once its watermark (~ ingest time - delay) passed its minute's end + lateness
        minute_end = c["event_time"] // 60_000 * 60_000 + 60_000
        late = (c["ingest_time"] is not None
                and c["ingest_time"] - watermark_delay_s * 1000 >= minute_end + allowed_lateness_s * 1000)
        m = hourly.setdefault((c["advertiser_id"], c["campaign_id"], c["ad_id"], hour), dict(
            clicks=0, billable_clicks=0, repeat_clicks=0, ip_burst_clicks=0, cost_micros=0,
            billable_cost_micros=0, duplicate_copies=0, late_billable_clicks=0,
            ip_burst_stream_billable_clicks=0))
        cost = c["cost_micros"] or 0
        m["clicks"] += 1
        m["cost_micros"] += cost
        m["duplicate_copies"] += len(copies[c["click_id"]]) - 1
        if reason is None:
            m["billable_clicks"] += 1
            m["billable_cost_micros"] += cost
            m["late_billable_clicks"] += late
        elif reason == "repeat":
            m["repeat_clicks"] += 1
        else:
            m["ip_burst_clicks"] += 1
            m["ip_burst_stream_billable_clicks"] += winner and not late
    return hourly, reasons
