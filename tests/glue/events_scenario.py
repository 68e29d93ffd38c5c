"""Generated archives for the events billing tests: clicks (raw/clicks) over the attribution
look-back of day D and events (raw/events: impressions, conversions) around D, a random
background plus hand-placed cases, each written in the archive layouts with the local Firehose
stand-in's writer (local/archiver.to_parquet).

`named` maps a case name to its ids (click_ids for clicks, impression / conversion ids for
events). The clicks of hand-placed cases have users and addresses of their own, so only the
rule a case names can flag them."""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

from common.archive import EVENTS, partition_of
from common.records import EVENT_RECORD_SCHEMA
from local.archiver import to_parquet
from tests.glue.scenario import BOT_UA, DAY_MS, HOUR, Scenario

MIN = 60_000
WINDOW_MS = 7 * DAY_MS  # the attribution window's default (attribution_window_s)


class EventsScenario(Scenario):
    """Scenario's clicks (`rows`) plus `events`: [(record, arrival_ms)]."""

    def __init__(self, day: date, seed: int = 19):
        super().__init__(day, seed)
        self.events: list[tuple[dict, int]] = []
        self._e = 0

    def valid_click(self, event_time, *, ad, name=None, **kw) -> dict:
        """A click no rule flags: a user and an address of its own."""
        self._e += 1
        kw.setdefault("user", f"vu{self._e}")
        kw.setdefault("ip", f"172.16.{self._e // 250}.{self._e % 250}")
        return self.click(event_time, ad=ad, name=name, **kw)

    def _event(self, record: dict, ingest, arrival, name) -> dict:
        ingest = record["event_time"] + self.rng.randint(0, 2_000) if ingest is None else ingest
        arrival = ingest + self.rng.randint(0, 60_000) if arrival is None else arrival
        record = {**dict.fromkeys(EVENT_RECORD_SCHEMA), **record, "ingest_time": ingest, "schema_version": 1,
                  "request_id": f"er{len(self.events)}", "source_ip": "203.0.113.9"}
        self.events.append((record, arrival))
        if name:
            self.named[name].append(record["event_id"])
        return record

    def impression(self, event_time, *, ad, impression_id=None, ingest=None, arrival=None,
                   name=None) -> dict:
        self._e += 1
        iid = impression_id or f"i{self._e:06d}"
        return self._event({"event_type": "impression", "event_id": iid, "ad_id": f"ad-{ad}",
                            "campaign_id": f"k{ad % 3}", "advertiser_id": f"v{ad % 2}",
                            "event_time": event_time, "impression_id": iid,
                            "placement_id": "p1", "publisher_id": "pub1", "user_id": f"eu{self._e}"},
                           ingest, arrival, name)

    def conversion(self, occurred_at, *, click: dict | None = None, click_id=None, token=True,
                   by_click_id=True, value=None, conversion_id=None, ingest=None, arrival=None,
                   name=None, ad=None, impression_id=None) -> dict:
        """A conversion naming `click` (or `click_id`, a click never archived): token=True carries
        the click's ad ids and impression_id (ad / impression_id override them), by_click_id=True
        its click_id (a token conversion may leave it out: then its impression names the click)."""
        self._e += 1
        cid = click_id or (click["click_id"] if click else None)
        record = {"event_type": "conversion", "event_id": conversion_id or f"cv{self._e:06d}",
                  "event_time": occurred_at, "click_id": cid if by_click_id else None,
                  "value_micros": self.rng.randint(1_000_000, 90_000_000) if value is None else value,
                  "currency": "USD", "attributed_by": "token" if token else "click_id"}
        if token:
            ad_n = ad if ad is not None else int(click["ad_id"].split("-")[1])
            record.update({"ad_id": f"ad-{ad_n}", "campaign_id": f"k{ad_n % 3}",
                           "advertiser_id": f"v{ad_n % 2}", "placement_id": "p1", "publisher_id": "pub1",
                           "impression_id": impression_id or (click or {}).get("impression_id")})
        return self._event(record, ingest, arrival, name)

    def resend(self, original: dict, *, ingest=None, arrival=None, name=None, **changes) -> dict:
        """Another copy of an event (same id), ingested later unless given."""
        ingest = original["ingest_time"] + self.rng.randint(1, 120_000) if ingest is None else ingest
        copy = {**original, **changes, "ingest_time": ingest, "request_id": f"er{len(self.events)}"}
        self.events.append((copy, ingest + self.rng.randint(0, 60_000) if arrival is None else arrival))
        if name:
            self.named[name].append(copy["event_id"])
        return copy

    def write_events(self, root: Path) -> dict[tuple[str, str], int]:
        """Events to root/dt=../hr=../ (two objects per partition); rows per partition."""
        parts: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for e, arrival in self.events:
            parts[partition_of(arrival)].append(e)
        for (dt, hr), records in parts.items():
            d = root / f"dt={dt}" / f"hr={hr}"
            d.mkdir(parents=True, exist_ok=True)
            half = (len(records) + 1) // 2
            for i, chunk in enumerate((records[:half], records[half:])):
                if chunk:
                    (d / f"events-{i}.parquet").write_bytes(to_parquet(chunk, EVENTS))
        return {k: len(v) for k, v in parts.items()}


def build(day: date, seed: int = 19, background: int = 500) -> EventsScenario:
    s = EventsScenario(day, seed)
    rng, d0 = s.rng, s.d0

    # --- clicks: background on D-1 and D (billed), a few on the look-back days
    for start in (d0 - DAY_MS, d0):
        for _ in range(background):
            s.click(start + rng.randint(0, DAY_MS - 1), ad=rng.randint(0, 7), impression=f"bi{s._n + 1}",
                    name="background_click")
    # --- impressions: background around D (5 % resent), the impressions of the background clicks
    for c, _ in list(s.rows):
        if c["event_time"] >= d0 - 2 * HOUR and rng.random() < 0.5:
            s.impression(c["event_time"] - rng.randint(1_000, 60_000), ad=int(c["ad_id"][3:]),
                         impression_id=c["impression_id"], name="background_impression")
    for _ in range(background * 6):
        imp = s.impression(d0 - 2 * HOUR + rng.randint(0, DAY_MS + 3 * HOUR), ad=rng.randint(0, 7),
                           name="background_impression")
        if rng.random() < 0.05:
            s.resend(imp, name="background_impression_resent")
    # --- conversions of background clicks (token or click_id only; 10 % resent)
    background_clicks = [c for c, _ in s.rows]
    for c in rng.sample(background_clicks, background // 5):
        conv = s.conversion(c["event_time"] + rng.randint(0, 3 * HOUR), click=c,
                            token=rng.random() < 0.6, by_click_id=rng.random() < 0.7,
                            name="background_conversion")
        if conv["click_id"] is None and conv.get("impression_id") is None:  # names nothing: name the click
            conv["click_id"] = c["click_id"]
        if rng.random() < 0.1:
            s.resend(conv)

    _impression_cases(s)
    _conversion_cases(s)
    return s


def _impression_cases(s: EventsScenario) -> None:
    d0 = s.d0
    t = d0 + 9 * HOUR
    a = s.impression(t, ad=20, name="imp_resent_twice")  # three copies: counted once
    s.resend(a, ingest=a["ingest_time"] + 5_000)
    s.resend(a, ingest=a["ingest_time"] + 9_000)
    # a later copy claims another ad and hour: the first by ingest_time decides
    b = s.impression(t + 60_000, ad=20, ingest=t + 61_000, name="imp_first_copy_wins")
    s.resend(b, ingest=t + 90_000, ad_id="ad-21", event_time=t - 60_000)
    # an earlier copy by ingest time that arrived later still wins
    c = s.impression(t + 120_000, ad=20, ingest=t + 121_000, arrival=t + 30 * MIN, name="imp_ingest_not_arrival")
    s.resend(c, ingest=t + 125_000, arrival=t + 126_000, ad_id="ad-21")
    # other days and the cutoff
    s.impression(d0 - 30_000, ad=20, ingest=d0 + 10_000, arrival=d0 + 20_000, name="imp_prev_day")
    s.impression(d0 + DAY_MS + 30_000, ad=20, ingest=d0 + DAY_MS - 10_000, arrival=d0 + DAY_MS - 5_000,
                 name="imp_next_day")  # arrives on D (clock ahead), served on D+1
    s.impression(d0 + DAY_MS - 1, ad=20, ingest=d0 + DAY_MS + 500, arrival=d0 + DAY_MS + 2 * HOUR - 1,
                 name="imp_last_ms_before_cutoff")
    s.impression(d0 + DAY_MS - 2, ad=20, ingest=d0 + DAY_MS + 400, arrival=d0 + DAY_MS + 2 * HOUR,
                 name="imp_after_cutoff")
    # late for the stream (first ingested >= minute end + 900 s + 5 s): counted here, flagged late
    e = d0 + 10 * HOUR + 30_000
    s.impression(e, ad=22, ingest=e - 30_000 + 60_000 + 905_000, name="imp_late_edge")
    s.impression(e + 1, ad=22, ingest=e - 30_000 + 60_000 + 904_999, name="imp_not_late")
    s.impression(e + 2, ad=22, ingest=e + 25 * MIN, name="imp_late")  # the stream drops it
    # resent long after: the stream forgot it (its state TTL) and counts it again
    f = s.impression(d0 + 11 * HOUR, ad=22, name="imp_resent_after_ttl")
    s.resend(f, ingest=f["ingest_time"] + 2 * HOUR)


def _conversion_cases(s: EventsScenario) -> None:
    d0 = s.d0
    prev = d0 - DAY_MS
    t = d0 + 12 * HOUR
    # attributed through a valid click of D: by the token (+ click_id), by click_id only (the
    # click's ad), by the token's impression alone (its first click)
    ok = s.valid_click(t, ad=30, impression="imp-ok", name="click_ok")
    s.conversion(t + HOUR, click=ok, name="conv_token_attributed")
    ok2 = s.valid_click(t + MIN, ad=31, name="click_ok2")
    s.conversion(t + 2 * HOUR, click=ok2, token=False, name="conv_click_id_only_attributed")
    first = s.valid_click(t + 2 * MIN, ad=32, impression="imp-two", name="click_imp_first")
    s.valid_click(t + 3 * MIN, ad=32, impression="imp-two", name="click_imp_repeat")  # impression_repeat
    s.conversion(t + HOUR, click=first, by_click_id=False, name="conv_token_impression_only")
    s.conversion(t + HOUR, click=first, click_id=s.named["click_imp_repeat"][0],
                 name="conv_names_impression_repeat")  # the repeat click: invalid
    # the impression's first click is a bot: invalid_click
    bot = s.valid_click(t + 4 * MIN, ad=33, impression="imp-bot", ua=BOT_UA, name="click_bot")
    s.valid_click(t + 5 * MIN, ad=33, impression="imp-bot", name="click_bot_imp_second")
    s.conversion(t + HOUR, click=bot, by_click_id=False, name="conv_impression_first_click_bot")
    s.conversion(t + HOUR, click=bot, token=False, name="conv_click_id_bot")
    dc = s.valid_click(t + 6 * MIN, ad=33, ip="3.0.0.1", name="click_datacenter")  # suspect
    s.conversion(t + HOUR, click=dc, name="conv_suspect_click")
    # unknown clicks: a click_id never archived (only a click_id: no ad, no hourly row; with a
    # token: the token's ad), an impression nobody clicked
    s.conversion(t + HOUR, click_id="never-archived", token=False, name="conv_unknown_click_id_only")
    s.conversion(t + HOUR, click_id="never-archived-2", ad=34, impression_id="imp-x",
                 name="conv_unknown_token")
    s.conversion(t + HOUR, ad=34, impression_id="imp-unclicked", by_click_id=False, name="conv_unclicked_impression")
    # window edges with a click of D: 0 ms after the click, 1 ms before it
    z = s.valid_click(t + 10 * MIN, ad=35, name="click_gap_zero")
    s.conversion(z["event_time"], click=z, name="conv_gap_zero")
    m = s.valid_click(t + 11 * MIN, ad=35, name="click_gap_minus_1")
    s.conversion(m["event_time"] - 1, click=m, name="conv_gap_minus_1")
    # the impression's first click after the conversion: outside the window
    later = s.valid_click(t + 2 * HOUR, ad=35, impression="imp-later", name="click_after_conversion")
    s.conversion(t + HOUR, click=later, by_click_id=False, name="conv_impression_clicked_after")

    # --- across the day boundary: clicks of D-1 (billed: its own run's verdicts)
    c1 = s.valid_click(d0 - 10 * MIN, ad=36, impression="imp-prev", name="click_prev_day")
    s.conversion(d0 + 10 * MIN, click=c1, token=False, name="conv_prev_day_click_id_only")
    s.conversion(d0 + 20 * MIN, click=c1, by_click_id=False, name="conv_prev_day_impression")
    c2 = s.valid_click(prev + 5 * HOUR, ad=36, ua=BOT_UA, name="click_prev_day_bot")
    s.conversion(d0 + HOUR, click=c2, token=False, name="conv_prev_day_bot")
    # a D-1 click that reached the archive after D-1's cutoff (D 02:00): D-1's run never judged it
    c3 = s.valid_click(prev + 10 * HOUR, ad=36, ingest=d0 + 5 * HOUR, arrival=d0 + 5 * HOUR + 1_000,
                       name="click_prev_day_after_its_cutoff")
    s.conversion(d0 + 6 * HOUR, click=c3, token=False, name="conv_click_after_its_cutoff")
    # an impression clicked on D-1 and again on D: the D-1 click is its first (D's a repeat)
    c4 = s.valid_click(d0 - 30 * MIN, ad=37, impression="imp-span", name="click_span_first")
    s.valid_click(d0 + 30 * MIN, ad=37, impression="imp-span", name="click_span_repeat")
    s.conversion(d0 + HOUR, click=c4, by_click_id=False, name="conv_impression_span")

    # --- the look-back's far end (D-2 .. D-8 not billed: verdicts unknown)
    c5 = s.valid_click(d0 - 2 * DAY_MS + 3 * HOUR, ad=38, name="click_unbilled_day")
    s.conversion(d0 + 3 * HOUR, click=c5, token=False, name="conv_unbilled_day")
    edge = d0 + 30 * MIN
    c6 = s.valid_click(edge - WINDOW_MS, ad=38, name="click_window_edge")  # D-7 00:30: arrives D-7
    s.conversion(edge, click=c6, token=False, name="conv_window_edge")  # gap = window: in it
    c7 = s.valid_click(edge - WINDOW_MS - 1, ad=38, name="click_window_edge_minus_1")
    s.conversion(edge, click=c7, name="conv_window_edge_plus_1")  # outside (precedes unverified)
    # clock 5 min ahead: a click of D-7 00:02 that arrived at D-8 23:58 (the first partition read)
    c8 = s.valid_click(d0 - WINDOW_MS + 2 * MIN, ad=38, ingest=d0 - WINDOW_MS - 2 * MIN,
                       arrival=d0 - WINDOW_MS - 2 * MIN, name="click_first_partition")
    s.conversion(d0 + 60_000, click=c8, token=False, name="conv_first_partition")
    c9 = s.valid_click(d0 - WINDOW_MS - 12 * HOUR, ad=38, name="click_beyond_look_back")
    s.conversion(d0 + HOUR, click=c9, name="conv_beyond_look_back")  # unknown (token ad kept)

    # --- duplicates: resent conversions count once; the first copy by ingest time decides
    d = s.valid_click(t + 20 * MIN, ad=39, name="click_dup")
    conv = s.conversion(t + HOUR, click=d, name="conv_resent", value=7_000_000)
    s.resend(conv, ingest=conv["ingest_time"] + 60_000, value_micros=9_000_000)
    s.resend(conv, ingest=d0 + DAY_MS + 30 * MIN, arrival=d0 + DAY_MS + 31 * MIN)  # next day, read
    s.resend(conv, ingest=d0 + DAY_MS + 3 * HOUR)  # after the cutoff: not read
    s.resend(conv, ingest=conv["ingest_time"] + 3 * HOUR)  # after the stream's TTL: counted again there
    # late for the stream
    e = d0 + 8 * HOUR + 30_000
    lc = s.valid_click(e - 10 * MIN, ad=39, name="click_late_conv")
    s.conversion(e, click=lc, ingest=e - 30_000 + 60_000 + 905_000, name="conv_late_edge")
    s.conversion(e + 1, click=lc, ingest=e + 25 * MIN, name="conv_late")  # the stream drops it
    # other days
    s.conversion(d0 - 60_000, click=c1, token=False, ingest=d0 + 1_000, name="conv_prev_day_occurred")
    s.conversion(d0 + DAY_MS + 60_000, click=lc, token=False, ingest=d0 + DAY_MS + 61_000,
                 name="conv_next_day_occurred")
