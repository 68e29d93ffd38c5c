"""Generated archive data for the billing tests: a random background plus hand-placed edge
cases, written in the archive layout with the local Firehose stand-in's writer."""
from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path

from common.archive import partition_of
from local.archiver import to_parquet

HOUR, SEC = 3_600_000, 1_000
DAY_MS = 24 * HOUR


def ms(day: date, h=0, m=0, s=0, milli=0) -> int:
    base = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * 1000
    return base + h * HOUR + m * 60_000 + s * SEC + milli


class Scenario:
    """rows: [(click, arrival_ms)]; `named` maps a case name to its click_ids."""

    def __init__(self, day: date, seed: int = 7):
        self.day, self.rng = day, random.Random(seed)
        self.d0 = ms(day)
        self.rows: list[tuple[dict, int]] = []
        self.named: dict[str, list[str]] = defaultdict(list)
        self._n = 0

    def click(self, event_time, *, ingest=None, arrival=None, ad=0, user=None, ip=None, cost=None,
              click_id=None, name=None, request_id=None) -> dict:
        self._n += 1
        cid = click_id or f"c{self._n:06d}"
        ingest = event_time + self.rng.randint(0, 2_000) if ingest is None else ingest
        arrival = ingest + self.rng.randint(0, 60_000) if arrival is None else arrival
        c = {"click_id": cid, "ad_id": f"ad-{ad}", "campaign_id": f"k{ad % 3}", "advertiser_id": f"v{ad % 2}",
             "user_id": user or f"u{self.rng.randint(0, 39)}", "event_time": event_time,
             "cost_micros": self.rng.randint(10_000, 2_000_000) if cost is None else cost,
             "ip": ip if ip is not None else f"192.168.{self.rng.randint(0, 2)}.{self.rng.randint(0, 99)}",
             "user_agent": "sdk/1.0", "referrer": None, "ingest_time": ingest,
             "request_id": request_id or f"r{self._n}", "source_ip": "203.0.113.1"}
        if ip == "":  # explicit null ip
            c["ip"] = None
        self.rows.append((c, arrival))
        if name:
            self.named[name].append(cid)
        return c

    def copy(self, original: dict, *, ingest=None, arrival=None, name=None, **changes) -> dict:
        """A retry of `original`: same fields, later ingest (unless given), new request id."""
        self._n += 1
        c = dict(original, request_id=f"r{self._n}", **changes)
        c["ingest_time"] = original["ingest_time"] + self.rng.randint(1, 120_000) if ingest is None else ingest
        self.rows.append((c, c["ingest_time"] + self.rng.randint(0, 60_000) if arrival is None else arrival))
        if name:
            self.named[name].append(c["click_id"])
        return c

    def write(self, raw_root: Path) -> dict[tuple[str, str], int]:
        """Write rows to raw_root/dt=../hr=../ (two objects per partition, as Firehose would
        deliver several). Returns rows per partition."""
        parts: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for c, arrival in self.rows:
            parts[partition_of(arrival)].append(c)
        for (dt, hr), clicks in parts.items():
            d = raw_root / f"dt={dt}" / f"hr={hr}"
            d.mkdir(parents=True, exist_ok=True)
            half = (len(clicks) + 1) // 2
            for i, chunk in enumerate((clicks[:half], clicks[half:])):
                if chunk:
                    (d / f"clicks-{i}.parquet").write_bytes(to_parquet(chunk))
        return {k: len(v) for k, v in parts.items()}


def build(day: date, seed: int = 7, background: int = 2_500) -> Scenario:
    s = Scenario(day, seed)
    rng, d0 = s.rng, s.d0

    # --- background: clicks all over D, plus D-1 evening and D+1 morning
    base = [s.click(d0 + rng.randint(0, DAY_MS - 1), ad=rng.randint(0, 7)) for _ in range(background)]
    for _ in range(150):
        s.click(d0 - rng.randint(1, 2 * HOUR), ad=rng.randint(0, 7), name="prev_day")
    for _ in range(150):
        s.click(d0 + DAY_MS + rng.randint(0, 2 * HOUR - 120_000), ad=rng.randint(0, 7), name="next_day")
    # client clocks ahead of ingest (allowed up to 5 min)
    for _ in range(30):
        e = d0 + rng.randint(0, DAY_MS - 1)
        s.click(e, ingest=e - rng.randint(0, 300_000), ad=rng.randint(0, 7), name="clock_ahead")

    # --- 2% duplicates (retries: same fields, later ingest), some exact Firehose re-deliveries
    for c in rng.sample(base, len(base) // 50):
        s.copy(c, name="dup")
    for c in rng.sample(base, 5):
        s.copy(c, ingest=c["ingest_time"], name="dup_exact")

    # --- across midnight
    a = s.click(d0 + 30_000, ingest=d0 - 10_000, arrival=d0 - 5_000, ad=5, name="midnight_first_in_prev")
    s.copy(a, ingest=d0 + 40_000, arrival=d0 + 45_000)
    b = s.click(d0 - 2_000, ingest=d0 - 1_500, arrival=d0 - 1_000, ad=5, name="prev_event_copy_in_day")
    s.copy(b, ingest=d0 + 20_000, arrival=d0 + 25_000)
    # copies that differ: the first arrival's fields win, even its (previous-day) event time
    c = s.click(d0 - 500, ingest=d0 - 400, arrival=d0 - 300, ad=6, name="first_copy_prev_day_event")
    s.copy(c, ingest=d0 + 1_000, arrival=d0 + 2_000, event_time=d0 + 500)
    e = s.click(d0 + 7 * HOUR, ingest=d0 + 7 * HOUR + 100, ad=6, cost=100, name="tie_lower_cost_wins")
    s.copy(e, ingest=e["ingest_time"], cost_micros=999)

    # --- IP bursts (threshold 10), each on its own ip
    t = d0 + 9 * HOUR + 17 * SEC
    for i in range(10):
        s.click(t + i * 90, ad=1, ip="10.0.0.1", user=f"b1-{i}", name="burst_exactly_n")
    for i in range(11):
        s.click(t + i * 90, ad=2, ip="10.0.0.2", user="b2-same" if i in (3, 7) else f"b2-{i}", name="burst_n_plus_1")
    for i in range(10):
        s.click(t + i * 99, ad=3, ip="10.0.0.3", user=f"b3-{i}", name="burst_boundary_in")
    s.click(t + 1_000, ad=3, ip="10.0.0.3", user="b3-x", name="burst_boundary_next_second")
    burst_dups = [s.click(t + 5 * SEC + i * 50, ad=1, ip="10.0.0.4", user=f"b4-{i}", name="burst_n_with_copy")
                  for i in range(10)]
    s.copy(burst_dups[0])
    for i in range(11):
        s.click(t + 9 * SEC + i * 50, ad=1, ip="10.0.0.5", user=f"b5-{i}", name="burst_n_plus_1_with_copy")
    s.copy(s.rows[-1][0])
    for i in range(12):
        s.click(t + 13 * SEC + i * 50, ad=1, ip="", user=f"b6-{i}", name="null_ip_not_burst")
    s.click(t + 1 * SEC + 3, ad=2, ip="10.0.0.2", user="b2-other-ad", name="burst_other_second")

    # --- repeat rule at the window boundary (10 s buckets aligned to the epoch)
    r = d0 + 11 * HOUR + 40 * SEC  # a bucket start
    assert r % 10_000 == 0
    s.click(r, ad=4, user="ru1", name="repeat_winner")
    s.click(r + 9_999, ad=4, user="ru1", name="repeat_9999")
    s.click(r + 10_000, ad=4, user="ru1", name="repeat_next_bucket")
    s.click(r + 5_000, ingest=r + 5_100, ad=4, user="ru2", name="repeat_arrived_first_but_later_event")
    s.click(r + 3_000, ingest=r + 8_000, ad=4, user="ru2", name="repeat_earlier_event_arrived_later")
    s.click(r + 2_000, ingest=r + 2_500, ad=4, user="ru3", click_id="zz-ru3-b", name="repeat_tie_event")
    s.click(r + 2_000, ingest=r + 2_400, ad=4, user="ru3", click_id="zz-ru3-c", name="repeat_tie_event")
    s.click(r + 2_000, ingest=r + 2_400, ad=4, user="ru3", click_id="zz-ru3-a", name="repeat_tie_event")
    s.click(d0 - 1, ad=4, user="ru4", name="repeat_prev_day_side")
    s.click(d0, ad=4, user="ru4", name="repeat_midnight")
    s.click(d0 + DAY_MS - 1, ad=4, user="ru5", name="repeat_last_ms")
    s.click(d0 + DAY_MS, ad=4, user="ru5", name="repeat_next_day_side")

    # --- late arrivals
    s.click(d0 + 22 * HOUR, ingest=d0 + DAY_MS + 2 * HOUR + 30 * 60_000, ad=7, name="late_after_cutoff")
    s.click(d0 + 10 * HOUR, ingest=d0 + DAY_MS + 2 * HOUR - 5_000, arrival=d0 + DAY_MS + 2 * HOUR,
            ad=7, name="late_at_cutoff")
    s.click(d0 + 23 * HOUR + 50 * 60_000, ingest=d0 + DAY_MS + 2 * HOUR - 2_000,
            arrival=d0 + DAY_MS + 2 * HOUR - 1, ad=7, name="late_just_before_cutoff")
    s.click(d0 + 23 * HOUR + 10 * 60_000, ingest=d0 + DAY_MS + 30 * 60_000, ad=7, name="late_beyond_lateness")
    # the stream decides lateness per minute: 15 min (+ 5 s watermark delay) after the minute's end,
    # not the hour's; so a click of 23:10 ingested at 00:14 is late (the hour rule would say on time)
    s.click(d0 + 23 * HOUR + 10 * 60_000, ingest=d0 + DAY_MS + 14 * 60_000, ad=7, name="late_minute_not_hour")
    # the diagnostic's edge on an ad of its own (ad 9, hour 6): minute end 06:31 + 900 s + 5 s
    edge = d0 + 6 * HOUR + 31 * 60_000 + 905_000
    s.click(d0 + 6 * HOUR + 30 * 60_000 + 1, ingest=edge - 1, ad=9, user="le1", name="late_edge_minus_1ms")
    s.click(d0 + 6 * HOUR + 30 * 60_000 + 2, ingest=edge, ad=9, user="le2", name="late_edge")
    # D-1 hr 22 holds only previous-day events; it is never read
    s.click(d0 - 2 * HOUR + 60_000, ad=7, arrival=d0 - 2 * HOUR + 120_000, name="prev_hr22")
    return s
