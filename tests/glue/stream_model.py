"""What the realtime path counts per (ad, hour) and verdict, modelled independently of the batch
job and of its reconciliation diagnostics (functions/aggregate/job/sql.py describes the stream):

- every copy in arrival order (ingest_time, then event_time, click_id, cost: a deterministic
  stand-in for the Kinesis order);
- a watermark = newest event time seen - delay (every copy moves it, as at the Flink source);
  the first copy of a click_id is kept; it is dropped as late (not counted) when the watermark
  before it has passed its minute's end + lateness;
- per-click rules as common/ivt.py's (the same matchers);
- group rules in ARRIVAL order over every kept click, late ones included: a click that is not
  the first arrival of its impression (an impression is forgotten `memory_ms` after its last
  click), or of its (user, ad, repeat window) is a repeat; more than N clicks in an (ip, burst
  window) flags all of them.
"""
from __future__ import annotations

from collections import defaultdict

from common import ivt

HOUR = 3_600_000


def simulated_stream(rows, day_start_ms: int, lateness_ms=900_000, delay_ms=5_000, window_ms=10_000,
                     burst_threshold=10, burst_window_ms=1_000, min_delay_ms=1_000,
                     memory_ms=1_800_000) -> list[dict]:
    """rows: [(click, arrival)] -> [{ad_id, hour_start_ms, clicks, billable_clicks,
    suspect_clicks, invalid_clicks}] of the clicks with event time in the day."""
    first, wm = {}, None
    order = sorted((c for c, _ in rows), key=lambda c: (c["ingest_time"], c["event_time"], c["click_id"],
                                                         c["cost_micros"]))
    for c in order:
        minute_end = c["event_time"] // 60_000 * 60_000 + 60_000
        if c["click_id"] not in first:
            first[c["click_id"]] = (c, wm is not None and wm >= minute_end + lateness_ms)
        candidate = c["event_time"] - delay_ms
        wm = candidate if wm is None else max(wm, candidate)

    bots, dcs = ivt.default_bot_matcher(), ivt.default_datacenters()
    reasons: dict[str, set] = {cid: set() for cid in first}
    impressions: dict[str, int] = {}  # impression -> ingest time of its last click
    users: set = set()
    bursts: dict[tuple, list[str]] = defaultdict(list)
    for cid, (c, _) in first.items():  # in arrival order (dicts keep insertion order)
        if bots.matches(c.get("user_agent")):
            reasons[cid].add(ivt.BOT_UA)
        if dcs.provider(c.get("ip")) is not None:
            reasons[cid].add(ivt.DATACENTER_IP)
        if c.get("issued_at") is not None and c["ingest_time"] - c["issued_at"] < min_delay_ms:
            reasons[cid].add(ivt.TOO_FAST)
        imp = c.get("impression_id")
        if imp is not None:
            last = impressions.get(imp)
            if last is not None and c["ingest_time"] - last <= memory_ms:
                reasons[cid].add(ivt.IMPRESSION_REPEAT)
            impressions[imp] = c["ingest_time"]
        if c["user_id"] is not None:
            key = (c["user_id"], c["ad_id"], c["event_time"] // window_ms)
            if key in users:
                reasons[cid].add(ivt.USER_REPEAT)
            users.add(key)
        if c["ip"] is not None:
            bursts[(c["ip"], c["event_time"] // burst_window_ms)].append(cid)
    for members in bursts.values():
        if len(members) > burst_threshold:
            for cid in members:
                reasons[cid].add(ivt.IP_BURST)

    out: dict[tuple, dict] = defaultdict(lambda: dict(clicks=0, billable_clicks=0, suspect_clicks=0,
                                                      invalid_clicks=0))
    for cid, (c, late) in first.items():
        if late or not day_start_ms <= c["event_time"] < day_start_ms + 24 * HOUR:
            continue
        verdict = ivt.verdict_of(reasons[cid]).verdict
        m = out[(c["ad_id"], c["event_time"] // HOUR * HOUR)]
        m["clicks"] += 1
        m["billable_clicks" if verdict == ivt.VALID else f"{verdict}_clicks"] += 1
    return [{"ad_id": a, "hour_start_ms": h, **m} for (a, h), m in out.items()]


def simulated_events_stream(events, day_start_ms: int, lateness_ms=900_000, delay_ms=5_000,
                            ttl_ms=1_800_000) -> list[dict]:
    """What the stream counts of the events stream (functions/aggregate/job/sql.py
    classify_events_query), modelled on its own: events: [(record, arrival)] ->
    [{ad_id, hour_start_ms, impressions, conversions, conversion_value_micros}] of the events
    with event time in the day.

    - every copy in arrival order (ingest_time, then event_time, event_id: a stand-in for the
      Kinesis order), the events' own watermark = newest event time seen - delay (every copy
      moves it);
    - records without an ad are not the stream's (a conversion that named only a click_id);
    - keep-first per (event_type, event_id); the kept state expires `ttl_ms` after it was
      written (processing time: the copy's ingest time), then a copy counts again;
    - a kept copy is dropped as late when the watermark before it passed its minute's end +
      lateness."""
    wm, kept = None, {}
    out: dict[tuple, dict] = defaultdict(lambda: dict(impressions=0, conversions=0, conversion_value_micros=0))
    for e in sorted((e for e, _ in events), key=lambda e: (e["ingest_time"], e["event_time"], e["event_id"])):
        before, candidate = wm, e["event_time"] - delay_ms
        wm = candidate if wm is None else max(wm, candidate)
        if e.get("ad_id") is None or e["event_id"] is None:
            continue
        key = (e["event_type"], e["event_id"])
        if key in kept and e["ingest_time"] - kept[key] <= ttl_ms:
            continue
        kept[key] = e["ingest_time"]
        minute_end = e["event_time"] // 60_000 * 60_000 + 60_000
        if before is not None and before >= minute_end + lateness_ms:
            continue
        if not day_start_ms <= e["event_time"] < day_start_ms + 24 * HOUR:
            continue
        m = out[(e["ad_id"], e["event_time"] // HOUR * HOUR)]
        if e["event_type"] == "impression":
            m["impressions"] += 1
        else:
            m["conversions"] += 1
            m["conversion_value_micros"] += e.get("value_micros") or 0
    return [{"ad_id": a, "hour_start_ms": h, **m} for (a, h), m in out.items()]
