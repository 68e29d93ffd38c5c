"""Independent oracle for the events part of the billing job (glue_jobs/billing/events.py): plain
Python over the generated archive rows, written from the rules in docs/events.md ("Billing and
attribution"), sharing no code with the Spark job. Clicks' verdicts come from tests/glue/oracle.py
(billing_oracle: the clicks' own brute force) run for each billed day, so "the verdict the
click's day's billing decided" is literally that day's decision, whatever partitions it read.

Inputs: events [(record, arrival_ms)], clicks [(click, arrival_ms)].
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta

from tests.glue.oracle import DAY, HOUR, batch_of, billing_oracle, day_start, first_copies, read_window

REASONS = ("unknown_click", "outside_window", "invalid_click", "unverified_click")
WINDOW_S = 7 * 24 * 3600
FUTURE_SKEW_MS = 300_000  # ingest's max_future_skew_s


def _nulls_last(value):
    return (value is None, value if value is not None else 0)


def _first_by_ingest(copies: list[dict]) -> dict:
    """The copy ingested first (ties: event time, then the record's other fields in a fixed
    order; the generated copies that tie on ingest time are identical)."""
    return min(copies, key=lambda e: (_nulls_last(e["ingest_time"]), _nulls_last(e["event_time"]),
                                      str(sorted((k, str(v)) for k, v in e.items()))))


def read_events(events, day, cutoff_hours=2) -> list[dict]:
    d0 = day_start(day)
    return [e for e, arrival in events if d0 - HOUR <= arrival < d0 + DAY + cutoff_hours * HOUR]


def dedup(read: list[dict], event_type: str) -> tuple[dict[str, dict], Counter]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for e in read:
        if e["event_type"] == event_type and e["event_id"] is not None:
            groups[e["event_id"]].append(e)
    return {k: _first_by_ingest(v) for k, v in groups.items()}, Counter({k: len(v) for k, v in groups.items()})


def click_verdicts(clicks, billed_days, **billing_args) -> dict[date, tuple[dict, dict]]:
    """For each billed day: (its clicks by click_id, their verdicts), as its own run decided."""
    out = {}
    for d in billed_days:
        first, _ = first_copies(read_window(clicks, d, billing_args.get("cutoff_hours", 2)))
        day_clicks, _ = batch_of(first, d)
        _, verdicts = billing_oracle(clicks, d, **billing_args)
        out[d] = ({c["click_id"]: c for c in day_clicks}, {cid: v for cid, (v, _) in verdicts.items()})
    return out


def attribution_index(clicks, day, billed: dict, window_s=WINDOW_S, cutoff_hours=2) -> dict[str, dict]:
    """click_id -> {fields, verdict (None: unknown)} of every click a D conversion may name:
    D's as D's run decided them, and the clicks of the window before D from the archive, with
    their own day's decision if that day was billed and its run saw them."""
    d0 = day_start(day)
    lo = (d0 - window_s * 1000 - FUTURE_SKEW_MS) // HOUR * HOUR
    hi = d0 + DAY + cutoff_hours * HOUR
    copies: dict[str, list[dict]] = defaultdict(list)
    for c, arrival in clicks:
        if lo <= arrival < hi and c["click_id"] is not None:
            copies[c["click_id"]].append(c)
    index = {}
    for cid, cs in copies.items():
        c = min(cs, key=lambda x: tuple(_nulls_last(x[k]) for k in (
            "ingest_time", "event_time", "cost_micros", "ad_id", "campaign_id", "advertiser_id", "user_id", "ip")))
        if not d0 - window_s * 1000 <= c["event_time"] < d0:
            continue
        x = date.fromordinal(date(1970, 1, 1).toordinal() + c["event_time"] // DAY)
        verdict = billed[x][1].get(cid) if x in billed else None
        index[cid] = {**c, "verdict": verdict}
    today_clicks, today_verdicts = billed[day]
    for cid, c in today_clicks.items():
        index[cid] = {**c, "verdict": today_verdicts[cid]}
    return index


def events_oracle(events, clicks, day, billed: dict, window_s=WINDOW_S, cutoff_hours=2,
                  allowed_lateness_s=900, watermark_delay_s=5):
    """(hourly {(advertiser, campaign, ad, hour): metrics}, conversions {conversion_id: detail})
    for day D. `billed`: click_verdicts of the billed days (D among them)."""
    d0 = day_start(day)
    read = read_events(events, day, cutoff_hours)
    impressions, imp_copies = dedup(read, "impression")
    conversions, conv_copies = dedup(read, "conversion")
    index = attribution_index(clicks, day, billed, window_s, cutoff_hours)
    by_impression: dict[str, list[dict]] = defaultdict(list)
    for c in index.values():
        if c["impression_id"] is not None:
            by_impression[c["impression_id"]].append(c)

    def late(e) -> bool:
        minute = e["event_time"] // 60_000 * 60_000
        return e["ingest_time"] >= minute + 60_000 + (allowed_lateness_s + watermark_delay_s) * 1000

    hourly: dict[tuple, Counter] = defaultdict(Counter)
    for iid, e in impressions.items():
        if not d0 <= e["event_time"] < d0 + DAY or e["ad_id"] is None:
            continue
        m = hourly[(e["advertiser_id"], e["campaign_id"], e["ad_id"], e["event_time"] // HOUR * HOUR)]
        m["impressions"] += 1
        m["duplicate_impression_copies"] += imp_copies[iid] - 1
        m["late_impressions"] += late(e)

    detail = {}
    for cid, e in conversions.items():
        if not d0 <= e["event_time"] < d0 + DAY:
            continue
        if e["click_id"] is not None:
            click = index.get(e["click_id"])
        else:
            named = by_impression.get(e["impression_id"], [])
            click = min(named, key=lambda c: (c["event_time"], _nulls_last(c["ingest_time"]), c["click_id"]),
                        default=None)
        if click is None:
            attribution = "unknown_click"
        elif not 0 <= e["event_time"] - click["event_time"] <= window_s * 1000:
            attribution = "outside_window"
        elif click["verdict"] is None:
            attribution = "unverified_click"
        elif click["verdict"] != "valid":
            attribution = "invalid_click"
        else:
            attribution = "attributed"
        ids = (e["advertiser_id"], e["campaign_id"], e["ad_id"]) if e["ad_id"] is not None else (
            (click["advertiser_id"], click["campaign_id"], click["ad_id"]) if click else (None, None, None))
        value = e["value_micros"] or 0
        detail[cid] = {"attribution": attribution, "ids": ids, "matched_click_id": click and click["click_id"],
                       "click_verdict": click and click["verdict"], "value_micros": e["value_micros"],
                       "event_time": e["event_time"], "copies": conv_copies[cid]}
        if ids[2] is None:
            continue
        m = hourly[(*ids, e["event_time"] // HOUR * HOUR)]
        m["conversions"] += 1
        m["conversion_value_micros"] += value
        if attribution == "attributed":
            m["attributed_conversions"] += 1
            m["attributed_value_micros"] += value
        else:
            m[f"{attribution}_conversions"] += 1
        if e["ad_id"] is not None:
            m["token_conversions"] += 1
            m["token_conversion_value_micros"] += value
            m["duplicate_token_conversion_copies"] += conv_copies[cid] - 1
            m["late_token_conversions"] += late(e)
    return {k: {m: n for m, n in v.items() if n} for k, v in hourly.items()}, detail


def billed_days_before(day, n: int) -> list[date]:
    return [day - timedelta(days=i) for i in range(n, -1, -1)]
