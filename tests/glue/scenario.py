"""Generated archive data for the billing tests: a random background plus hand-placed edge
cases, written in the archive layout with the local Firehose stand-in's writer; and a larger
generated IVT batch (`build_ivt_batch`) for the cross-engine test."""
from __future__ import annotations

import io
import ipaddress
import random
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq

from common import ivt
from common.archive import partition_of
from local.archiver import to_parquet

# The archive's columns before impression_id / issued_at existed (files written then lack them).
NEW_COLUMNS = ("impression_id", "issued_at")

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
              click_id=None, name=None, request_id=None, ua="sdk/1.0", impression=None,
              issued_at=None) -> dict:
        """user="" / ip="": null; ingest="": null (then give arrival)."""
        self._n += 1
        cid = click_id or f"c{self._n:06d}"
        ingest = event_time + self.rng.randint(0, 2_000) if ingest is None else ingest
        arrival = ingest + self.rng.randint(0, 60_000) if arrival is None else arrival
        c = {"click_id": cid, "ad_id": f"ad-{ad}", "campaign_id": f"k{ad % 3}", "advertiser_id": f"v{ad % 2}",
             "user_id": user or f"u{self.rng.randint(0, 39)}", "event_time": event_time,
             "cost_micros": self.rng.randint(10_000, 2_000_000) if cost is None else cost,
             "ip": ip if ip is not None else f"192.168.{self.rng.randint(0, 2)}.{self.rng.randint(0, 99)}",
             "user_agent": ua, "referrer": None, "ingest_time": ingest,
             "request_id": request_id or f"r{self._n}", "source_ip": "203.0.113.1",
             "impression_id": impression, "issued_at": issued_at}
        if ip == "":  # explicit null ip
            c["ip"] = None
        if user == "":
            c["user_id"] = None
        if ingest == "":
            c["ingest_time"] = None
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
        deliver several). An object none of whose clicks has impression_id or issued_at is
        written as before those columns existed (without them). Returns rows per partition."""
        parts: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for c, arrival in self.rows:
            parts[partition_of(arrival)].append(c)
        self.legacy_objects = 0
        for (dt, hr), clicks in parts.items():
            d = raw_root / f"dt={dt}" / f"hr={hr}"
            d.mkdir(parents=True, exist_ok=True)
            half = (len(clicks) + 1) // 2
            for i, chunk in enumerate((clicks[:half], clicks[half:])):
                if chunk:
                    data = to_parquet(chunk)
                    if all(c.get(k) is None for c in chunk for k in NEW_COLUMNS):
                        table = pq.read_table(io.BytesIO(data)).drop_columns(list(NEW_COLUMNS))
                        buf = io.BytesIO()
                        pq.write_table(table, buf, compression="snappy")
                        data = buf.getvalue()
                        self.legacy_objects += 1
                    (d / f"clicks-{i}.parquet").write_bytes(data)
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
    # D-1 hr 22 holds only previous-day events; it is read (lookback) for impressions only
    s.click(d0 - 2 * HOUR + 60_000, ad=7, arrival=d0 - 2 * HOUR + 120_000, name="prev_hr22")
    add_ivt_cases(s)
    return s


BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/124.0.0.0 Safari/537.36")


def add_ivt_cases(s: Scenario) -> None:
    """Hand-placed cases of the six IVT rules (common/ivt.py) on ads 10-15, hours 12-20 of D,
    each on its own users and ips; outcomes written by hand in test_billing.test_edge_cases."""
    d0 = s.d0
    # bot_ua: a crawler, an anchored pattern (^curl, a '\n' at the end still matches: Python's
    # and UNIX_LINES' '$'), Python-only line ends that java.util.regex without UNIX_LINES would
    # treat as one ('SSL Labs$' + '\r' / '\u2028': no bot), a browser, no user agent
    t = d0 + 12 * HOUR
    for i, (name, ua) in enumerate([("bot_googlebot", BOT_UA), ("bot_curl_newline", "curl/8\n"),
                                    ("bot_not_cr", "SSL Labs\r"), ("bot_not_u2028", "SSL Labs\u2028"),
                                    ("bot_ssl_labs_end", "SSL Labs"), ("not_bot_browser", CHROME),
                                    ("bot_null_ua", None)]):
        s.click(t + i * 60_000, ad=10, user=f"ua{i}", ua=ua, name=name)
    # datacenter_ip: 3.0.0.0 - 3.1.255.255 is an Amazon AWS range of datacenter_ipv4.csv, the
    # next one starts at 3.8.0.0
    t = d0 + 13 * HOUR
    for i, (name, ip) in enumerate([("dc_first", "3.0.0.0"), ("dc_last", "3.1.255.255"),
                                    ("dc_mapped", "::ffff:3.0.0.1"), ("dc_mapped_hex", "::FFFF:300:4"),
                                    ("dc_spaces", " 3.0.0.2\t"), ("not_dc_after", "3.2.0.0"),
                                    ("not_dc_leading_zero", "03.0.0.3"), ("not_dc_ipv6", "2600:1f18::1"),
                                    ("not_dc_garbage", "3.0.0.x")]):
        s.click(t + i * 60_000, ad=11, user=f"dc{i}", ip=ip, name=name)
    # too_fast: ingest_time - issued_at < 1000 ms (negative included); no issued_at: no flag
    t = d0 + 14 * HOUR
    for i, (name, delay) in enumerate([("fast_999", 999), ("fast_1000", 1000), ("fast_negative", -5_000),
                                       ("fast_no_issued_at", None)]):
        e = t + i * 60_000
        s.click(e, ingest=e + 200, ad=12, user=f"tf{i}", name=name,
                issued_at=None if delay is None else e + 200 - delay)
    # impression_repeat: first by (event_time, ingest_time, click_id), all days read
    t = d0 + 15 * HOUR
    for i in range(3):
        s.click(t + i * 30_000, ad=13, user=f"im3-{i}", impression="imp-three", name="imp_three")
    s.click(t + 100_000, ingest=t + 100_500, ad=13, user="imt-0", impression="imp-tie", name="imp_tie",
            click_id="zz-imp-b")
    s.click(t + 100_000, ingest=t + 100_400, ad=13, user="imt-1", impression="imp-tie", name="imp_tie",
            click_id="zz-imp-c")
    s.click(t + 100_000, ingest=t + 100_400, ad=13, user="imt-2", impression="imp-tie", name="imp_tie",
            click_id="zz-imp-a")
    # the earlier event arrives later: the batch elects it, the stream (arrival order) the other
    s.click(t + 300_000 + 10_000, ingest=t + 300_000 + 11_000, ad=13, user="imo-0", impression="imp-order",
            name="imp_order_first_arrival")
    s.click(t + 300_000 + 5_000, ingest=t + 300_000 + 30_000, ad=13, user="imo-1", impression="imp-order",
            name="imp_order_first_event")
    # first click on D-1 20:00, arrived D-1 hr 20 (a lookback partition); first click on
    # D-1 23:58 (arrived in D-1 hr 23, an input partition); first click arrived at D-2 23:30 (the
    # first lookback hour); first click arrived at D-2 22:59 (not read: its D click is the first)
    for name, first, arrival in [("imp_prev_day_lookback", d0 - 4 * HOUR, d0 - 4 * HOUR + 30_000),
                                 ("imp_prev_day_input", d0 - 120_000, d0 - 60_000),
                                 ("imp_lookback_first_hour", d0 - 24 * HOUR - 30 * 60_000,
                                  d0 - 24 * HOUR - 30 * 60_000),
                                 ("imp_beyond_lookback", d0 - 25 * HOUR - 60_000, d0 - 25 * HOUR - 60_000)]:
        s.click(first, ingest=arrival - 1, arrival=arrival, ad=14, user=f"{name}-0", impression=name,
                name=f"{name}_first")
        s.click(t + HOUR, ad=14, user=f"{name}-1", impression=name, name=name)
    # the stream forgets an impression 1800 s (flink_dedup_ttl_s) after its last click: a repeat
    # ingested 1800.001 s after the first click is billed there, one at 1800 s is not
    e = t + 2 * HOUR
    s.click(e, ingest=e + 100, ad=13, user="imm-0", impression="imp-memory", name="imp_memory_first")
    s.click(e + 1_800_001, ingest=e + 100 + 1_800_001, ad=13, user="imm-1", impression="imp-memory",
            name="imp_memory_repeat")
    e = t + 2 * HOUR + 5 * 60_000
    s.click(e, ingest=e + 100, ad=13, user="imw-0", impression="imp-within", name="imp_within_memory_first")
    s.click(e + 1_800_000, ingest=e + 100 + 1_800_000, ad=13, user="imw-1", impression="imp-within",
            name="imp_within_memory")
    s.click(t + 2 * HOUR + 60_000, ad=13, user="imn-0", name="imp_null")
    s.click(t + 2 * HOUR + 60_000, ad=13, user="imn-1", name="imp_null")
    # ip_burst keyed by ip alone: 11 clicks of one ip on 11 ads in one second; 11 clicks within
    # one second that straddle a second boundary (fixed windows: no burst, a known gap)
    t = d0 + 17 * HOUR
    for i in range(11):
        s.click(t + i * 80, ad=i, ip="10.7.0.1", user=f"ba-{i}", name="burst_across_ads")
    for i in range(11):
        s.click(t + 10_000 + 500 + i * 90, ad=15, ip="10.7.0.2", user=f"bs-{i}", name="burst_straddling")
    # user_repeat: a null user never repeats
    t = d0 + 18 * HOUR
    for i in range(3):
        s.click(t + i * 1_000, ad=15, user="", name="user_null")


def literal_bot_names(patterns) -> list[str]:
    """Patterns of the crawler list that are plain text (no regex syntax): a user agent that
    contains one is a bot by construction."""
    return [p for p in patterns if not any(ch in p for ch in "\\^$.|?*+()[]{}")]


def build_ivt_batch(day: date, seed: int = 17, n: int = 3_000) -> Scenario:
    """A generated batch for the cross-engine test: ~n clicks around day D, one copy each
    (unique click_ids: ivt.evaluate takes them as they are), every arrival inside the partitions
    the job reads (D-2 hr 23 .. D+1 hr 01), mixing bots from the real pattern list, data-centre
    ips from the real CSV (plain, IPv4-mapped, padded with whitespace), ip bursts across ads,
    impression repeats (across midnight too, first clicks in lookback partitions), too-fast
    clicks, user repeats and nulls in every optional field."""
    s = Scenario(day, seed)
    rng, d0 = s.rng, s.d0
    bots = literal_bot_names(ivt.load_bot_patterns())
    ranges = ivt.load_datacenter_ranges()

    def ua() -> str | None:
        x = rng.random()
        if x < 0.08:
            return f"Mozilla/5.0 (compatible; {rng.choice(bots)}/{rng.randint(1, 9)}.0)"
        if x < 0.10:
            return rng.choice(["curl/8.4.0", "curl/7\n", "x\ncurl/1", "SSL Labs", "SSL Labs\r",
                               "SSL Labs\u2028", "AdsBot-Google\u2028", "AdsBot-Google-Mobile",
                               "python-requests/2.31", "Wget/1.21", "wget", "\u00e9 Googlebot/2.1"])
        if x < 0.13:
            return None
        return rng.choice([CHROME, CHROME + " Edg/124.0", "sdk/1.0", "sdk/1.1 (Android 14)",
                           f"app/{rng.randint(1, 40)}"])

    def ip() -> str | None:
        x = rng.random()
        if x < 0.10:
            first, last, _ = rng.choice(ranges)
            a = ipaddress.IPv4Address(rng.choice([first, last, rng.randint(first, last)]))
            return rng.choice([str(a), str(a), f"::ffff:{a}", f" {a}\n", f"\u00a0{a}\u3000", f"\x1f{a}\x85",
                               f"::ffff:{int(a) >> 16:x}:{int(a) & 0xffff:x}",
                               f"0:0:0:0:0:FFFF:{a}", f"::ffff:{a}%eth0"])
        if x < 0.12:
            first, last, _ = rng.choice(ranges)
            return str(ipaddress.IPv4Address(rng.choice([first - 1, last + 1]) % 2**32))
        if x < 0.14:
            return rng.choice(["2600:1f18::1", "::1", "03.0.0.1", "3.0.0", "", "::ffff:3.0.0.1%"])
        if x < 0.17:
            return None
        return f"100.{rng.randint(64, 127)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"

    def one(event, *, ingest=None, arrival=None, ad=None, user=None, ip_=None, ua_=None,
            impression=None, issued=None):
        ingest = event + rng.randint(-1_000, 3_000) if ingest is None else ingest
        if rng.random() < 0.2:
            issued = ingest - rng.choice([rng.randint(-3_000, 999), 1_000, rng.randint(1_001, 600_000)]) \
                if issued is None else issued
        c = s.click(event, ingest=ingest, arrival=ingest + rng.randint(0, 30_000) if arrival is None else arrival,
                    ad=rng.randint(0, 11) if ad is None else ad,
                    user=f"u{rng.randint(0, 299)}" if user is None else user,
                    ip=(ip() if ip_ is None else ip_) or "", ua=ua() if ua_ is None else ua_,
                    impression=impression, issued_at=issued)
        return c

    day_ms = lambda: d0 + rng.randint(0, DAY_MS - 1)  # noqa: E731
    for _ in range(n * 6 // 10):  # background
        one(day_ms())
    for g in range(25):  # ip bursts across ads, 8-14 clicks in one fixed second
        t, addr = day_ms() // 1000 * 1000, f"198.18.{g}.7"
        for _ in range(rng.randint(8, 14)):
            one(t + rng.randint(0, 999), ip_=addr)
    for g in range(150):  # impressions clicked 1-4 times, some first on D-1 (lookback / input)
        imp, where = f"imp-{g}", rng.random()
        if where < 0.1:  # first click in a lookback partition (D-1 01:00 .. 20:00)
            t, gap = d0 - rng.randint(4 * HOUR, 23 * HOUR), 20 * HOUR
        elif where < 0.3:  # around midnight
            t, gap = d0 - rng.randint(60_000, 3 * HOUR), 3 * HOUR
        else:
            t, gap = day_ms(), 3 * HOUR
        issued = t - rng.randint(1_000, 60_000)
        for k in range(rng.randint(1, 4)):
            offset = rng.choice([rng.randint(-60_000, 300_000), rng.randint(-60_000, gap)])
            e = min(t if k == 0 else t + offset, d0 + DAY_MS + HOUR)
            # arrival order is often not event order (a later event can be ingested first)
            one(e, ingest=max(e, issued + 1_000) + rng.choice([0, 0, rng.randint(0, 2_000), rng.randint(0, 300_000)]),
                impression=imp, issued=issued, ad=100 + g % 5)
    for g in range(150):  # user repeats: one user, one ad, within seconds (some across windows)
        t, user, ad = day_ms(), f"rep-{g}", rng.randint(0, 11)
        for _ in range(rng.randint(2, 4)):
            one(t + rng.randint(0, 12_000), user=user, ad=ad)
    for _ in range(40):  # nulls: user, ingest_time; null users / ips together (never a group)
        one(day_ms(), user="")
    for _ in range(10):
        t, ad = day_ms() // 10_000 * 10_000, rng.randint(0, 11)
        for _ in range(3):
            one(t + rng.randint(0, 9_999), user="", ad=ad)
    for _ in range(3):
        t = day_ms() // 1000 * 1000
        for _ in range(12):
            one(t + rng.randint(0, 999), ip_="")
    for _ in range(10):
        e = day_ms()
        s.click(e, ingest="", arrival=e + 1_000, ad=3, user=f"ni-{e}")
    for _ in range(60):  # the days around D (not billed, but read)
        one(d0 - rng.randint(1, HOUR - 120_000))
        one(d0 + DAY_MS + rng.randint(0, HOUR))
    return s
