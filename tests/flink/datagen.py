"""Deterministic click scenario for the MiniCluster test + a brute-force Python oracle.

The oracle is written from the SPEC, not from the SQL: plain dicts and loops over the clicks in
publish order (files in order, rows in file order).

Watermark model. The job reads the clicks from a Kinesis stream (4 shards, partition key ad_id);
the test publishes one batch ("file") at a time, paced. Flink's SQL watermark for
`rowtime - INTERVAL 'd' SECOND` is max(rowtime seen by a source subtask) - d, over all the shards
that subtask reads, and the late decision sees the minimum over subtasks, so for a row r of
batch k it is only known to lie in [lower, upper]:
  upper(r) = max(event_time of batches <= k + LEAD_FILES) - d   (one of the subtask's shards is
                                                                 read up to a fetch ahead)
  lower(r) = max(event_time of batches <= k - LAG_FILES) - d    (a subtask lags)
The generator places late clicks so that the late rule gives the same answer for both bounds
(`oracle` asserts it for every copy of every click), so the expected result is exact. The tests
keep the fetch size small against the pacing (`getrecords_max_records`) so that a shard cannot
run LEAD_FILES batches ahead of another.
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

# Own copy of common.times.RESOLUTIONS on purpose: an oracle shares no code with what it checks.
MINUTE = 60_000
RESOLUTIONS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000}
LEAD_FILES = 4
LAG_FILES = 12

# IVT traffic (functions/common/ivt.py): crawler agents of the shipped list, addresses inside
# ranges of the shipped data-centre list (the scenario test checks both against the lists)
BOT_UAS = ("Googlebot/2.1 (+http://www.google.com/bot.html)", "python-requests/2.31.0",
           "curl/8.4.0", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)")
DC_IPS = ("3.0.0.5", "3.8.1.1", "52.0.0.1", "::ffff:3.0.0.9")
BURST_THRESHOLD = 10  # ivt_burst_threshold's default
MIN_CLICK_DELAY_MS = 1_000  # ivt_min_click_delay_ms's default

# 2024-03-10 23:15:00 UTC: the stream crosses a UTC day boundary (two 1d buckets)
T0 = 1_710_112_500_000


@dataclass
class Scenario:
    batches: list[list[dict[str, Any]]]
    # the events stream's batches (impressions, conversions), published with the click batch of
    # the same index; empty lists when generated without events
    event_batches: list[list[dict[str, Any]]] = field(default_factory=list)
    lateness_s: int = 900
    delay_s: int = 5
    repeat_window_s: int = 10
    leaderboard_size: int = 3
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(len(b) for b in self.batches)


def generate(
    seed: int = 20241123,
    n_files: int = 80,
    file_span_s: int = 90,
    clicks_per_file: int = 300,
    n_ads: int = 30,
    n_users: int = 150,
    dup_max_files_later: int = 3,
    events: bool = False,
) -> Scenario:
    """`events`: also impressions (most clicks' own, plus some never clicked; resends) and
    conversions (some resent, some naming only a click_id, some far too late) for the events
    stream, drawn from a generator of their own so the clicks are the same either way."""
    rng = random.Random(seed)
    ads = ["ad-hot"] + [f"ad-{i:02d}" for i in range(1, n_ads)]
    campaign = {a: f"cmp-{i % 8}" for i, a in enumerate(ads)}
    # an ad belongs to one campaign, a campaign to one advertiser (the rollups rely on it)
    advertiser = {a: f"adv-{i % 8 % 3}" for i, a in enumerate(ads)}
    cpc = {a: 100_000 + 7_919 * i for i, a in enumerate(ads)}
    cold_weights = [1.0 / (i + 1) ** 0.8 for i in range(n_ads - 1)]  # zipf-ish
    stats: dict[str, int] = defaultdict(int)
    seq = 0

    def pick_ad() -> str:
        if rng.random() < 0.35:
            return "ad-hot"
        return rng.choices(ads[1:], weights=cold_weights)[0]

    def click(ad: str, user: str, t: int, **fields: Any) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        ingest = t + rng.randrange(20, 900)
        return {
            "click_id": f"clk-{seq:07d}",
            "ad_id": ad,
            "campaign_id": campaign[ad],
            "advertiser_id": advertiser[ad],
            "user_id": user,
            "event_time": t,
            # same cost for every click of an ad within a minute: which of two repeat clicks
            # is "first" may depend on task interleaving; their cost must not
            "cost_micros": cpc[ad] + (t // MINUTE % 5) * 10_000,
            "ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
            "user_agent": "Mozilla/5.0 (test)",
            "referrer": "https://example.com/",
            "ingest_time": ingest,
            "request_id": f"req-{seq // 7:06d}",
            "source_ip": "127.0.0.1",
            "impression_id": f"imp-{seq:07d}",
            "issued_at": ingest - rng.randrange(2_000, 120_000),  # served seconds before
            **fields,
        }

    def ivt_user() -> str:
        """A user of its own: an IVT-labelled click never shares a repeat group with another
        click, so which of a group's clicks arrives first cannot change any count."""
        nonlocal seq
        return f"solo-{seq:07d}"

    batches: list[list[dict[str, Any]]] = [[] for _ in range(n_files)]
    deferred_dups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rw = 10_000
    for k in range(n_files):
        start = T0 + k * file_span_s * 1000
        batch = batches[k]
        times = sorted(start + rng.randrange(file_span_s * 1000) for _ in range(clicks_per_file))
        for t in times:
            t = max(start, t - rng.randrange(0, 3000))  # small disorder (< watermark delay)
            r = rng.random()
            if r < 0.02:
                t = t - t % MINUTE  # exactly on a minute boundary
                stats["at_minute_start"] += 1
            elif r < 0.03:
                t = t - t % MINUTE + MINUTE - 1  # last ms of a minute
                stats["at_minute_end"] += 1
            v = rng.random()
            if v < 0.02:  # a declared bot (invalid: bot_ua)
                c = click(pick_ad(), ivt_user(), t, user_agent=rng.choice(BOT_UAS))
                batch.append(c)
                stats["bot"] += 1
                continue
            if v < 0.04:  # from a data-centre range (suspect: datacenter_ip)
                c = click(pick_ad(), ivt_user(), t, ip=rng.choice(DC_IPS))
                batch.append(c)
                stats["datacenter"] += 1
                continue
            if v < 0.05:  # clicked within a second of being served (invalid: too_fast)
                c = click(pick_ad(), ivt_user(), t)
                c["issued_at"] = c["ingest_time"] - rng.randrange(-400, 1000)
                batch.append(c)
                stats["too_fast"] += 1
                continue
            c = click(pick_ad(), f"user-{rng.randrange(n_users):03d}", t)
            batch.append(c)
            if rng.random() < 0.02:  # the same impression clicked again (invalid:
                # impression_repeat), same user and 10 s bucket: whichever copy arrives first,
                # one is valid and one invalid in the same minute
                again = click(c["ad_id"], c["user_id"], rng.randrange(t, t - t % rw + rw),
                              impression_id=c["impression_id"])
                batch.append(again)
                stats["impression_repeat"] += 1
                continue
            u = rng.random()
            if u < 0.05:  # repeat in the same 10 s window (not billable)
                bucket_end = t - t % rw + rw
                for _ in range(rng.choice((1, 1, 2))):
                    batch.append(click(c["ad_id"], c["user_id"], rng.randrange(t, bucket_end)))
                    stats["repeat_same_window"] += 1
            elif u < 0.08:  # repeat in the next window (billable again)
                t2 = t - t % rw + rw + rng.randrange(0, 2000)
                batch.append(click(c["ad_id"], c["user_id"], t2))
                stats["repeat_next_window"] += 1
            d = rng.random()
            if d < 0.02:  # duplicate (retry, same content) later in the same file
                batch.insert(rng.randrange(len(batch) - 1, len(batch) + 1), dict(c))
                stats["dup_same_file"] += 1
            elif d < 0.04 and k + dup_max_files_later < n_files:  # dup in a later file
                deferred_dups[k + rng.randrange(1, dup_max_files_later + 1)].append(dict(c))
                stats["dup_later_file"] += 1
        if k % 10 == 5:  # an IP burst: > threshold clicks of one ip in one second, many ads
            # (suspect: ip_burst); and a bucket with exactly the threshold (not a burst)
            for n, what in ((BURST_THRESHOLD + 1 + k % 4, "burst"), (BURST_THRESHOLD, "no_burst")):
                second = start + rng.randrange(file_span_s - 2) * 1000 + (1000 if what == "no_burst" else 0)
                ip = f"172.16.{k}.{n}"
                for _ in range(n):
                    batch.insert(rng.randrange(len(batch) + 1),
                                 click(pick_ad(), ivt_user(), second + rng.randrange(1000), ip=ip))
                    stats[f"{what}_clicks"] += 1
        head = start
        if k >= 8:  # late but within the allowed lateness: counted
            for _ in range(clicks_per_file // 60):
                t = head - rng.randrange(4 * MINUTE, 6 * MINUTE)
                batch.insert(rng.randrange(len(batch) + 1), click(pick_ad(), f"user-{rng.randrange(n_users):03d}", t))
                stats["late_within_lateness"] += 1
        if head >= T0 + 75 * MINUTE:  # far beyond the lateness: dropped, counted as late
            for _ in range(clicks_per_file // 100):
                t = head - rng.randrange(55 * MINUTE, 65 * MINUTE)
                c = click(pick_ad(), f"user-{rng.randrange(n_users):03d}", t)
                batch.insert(rng.randrange(len(batch) + 1), c)
                stats["late_beyond_lateness"] += 1
                if rng.random() < 0.3:
                    batch.append(dict(c))
                    stats["late_dup"] += 1
        for dup in deferred_dups.pop(k, []):
            batch.insert(rng.randrange(len(batch) + 1), dup)
    event_batches = _events(batches, random.Random(seed + 1), campaign, advertiser, stats) \
        if events else [[] for _ in batches]
    # the hot ad really is hot
    total = sum(len(b) for b in batches)
    stats["hot_share_pct"] = round(100 * sum(c["ad_id"] == "ad-hot" for b in batches for c in b) / total)
    return Scenario(batches=batches, event_batches=event_batches, stats=dict(stats))


def _events(batches: list[list[dict]], rng: random.Random, campaign: dict[str, str],
            advertiser: dict[str, str], stats: dict[str, int]) -> list[list[dict]]:
    """Per click batch, the events batch published with it: the impressions of its clicks (served
    at issued_at) and unclicked ones, resent impressions, conversions of some clicks."""
    out: list[list[dict]] = []
    seq = 0
    ads = sorted({c["ad_id"] for b in batches for c in b})
    seen_impressions: set[str] = set()

    def event(kind: str, **fields: Any) -> dict[str, Any]:
        ad = fields.get("ad_id")
        return {"event_type": kind, "schema_version": 1, "campaign_id": campaign.get(ad),
                "advertiser_id": advertiser.get(ad), "placement_id": "p-1", "publisher_id": "pub-1",
                "user_id": None, "value_micros": None, "currency": None, "click_id": None,
                "attributed_by": None, "request_id": "req-e", "source_ip": "127.0.0.1", **fields}

    for k, clicks in enumerate(batches):
        batch: list[dict] = []
        start = min(c["event_time"] for c in clicks)
        head = max(c["event_time"] for c in clicks)
        for c in clicks:
            # events far from the batch's head only where the late rule is clear-cut (the
            # events' watermark runs ahead of the clicks' by the conversions' delay)
            recent = c["event_time"] >= head - 120_000
            imp = c["impression_id"]
            if imp not in seen_impressions and rng.random() < 0.9:  # its impression (once)
                seen_impressions.add(imp)
                batch.append(event("impression", event_id=imp, impression_id=imp, ad_id=c["ad_id"],
                                   event_time=max(c["issued_at"], head - 120_000),
                                   ingest_time=c["issued_at"] + 50))
                stats["impressions_of_clicks"] += 1
                if rng.random() < 0.03:  # an at-least-once resend of the same impression
                    batch.insert(rng.randrange(len(batch) + 1), dict(batch[-1]))
                    stats["impression_resends"] += 1
            if recent and rng.random() < 0.6:  # served, never clicked
                seq += 1
                ad = rng.choice(ads)
                t = c["event_time"] - rng.randrange(0, 20_000)
                batch.append(event("impression", event_id=f"eimp-{seq:07d}",
                                   impression_id=f"eimp-{seq:07d}", ad_id=ad, event_time=t,
                                   ingest_time=t + 40))
                stats["impressions_unclicked"] += 1
            if recent and rng.random() < 0.04:  # a conversion of this click, minutes later
                seq += 1
                value = rng.choice((0, 1_990_000, 25_000_000, 120_500_000))
                t = c["event_time"] + rng.randrange(1_000, 240_000)
                conv = event("conversion", event_id=f"order-{seq:07d}", ad_id=c["ad_id"],
                             impression_id=c["impression_id"], click_id=c["click_id"],
                             event_time=t, value_micros=value, currency="USD",
                             attributed_by="token", ingest_time=t + 500)
                if rng.random() < 0.15:  # only the click_id named the click: the batch's
                    conv.update(ad_id=None, campaign_id=None, advertiser_id=None,
                                impression_id=None, attributed_by="click_id")
                    stats["conversions_click_id_only"] += 1
                batch.insert(rng.randrange(len(batch) + 1), conv)
                stats["conversions"] += 1
                if rng.random() < 0.1:  # resent after the dedup table forgot it
                    batch.insert(rng.randrange(len(batch) + 1), dict(conv))
                    stats["conversion_resends"] += 1
        if head >= T0 + 80 * MINUTE:  # impressions far beyond the lateness: not counted
            for _ in range(3):
                seq += 1
                t = head - rng.randrange(55 * MINUTE, 65 * MINUTE)
                batch.insert(rng.randrange(len(batch) + 1), event(
                    "impression", event_id=f"limp-{seq:07d}", impression_id=f"limp-{seq:07d}",
                    ad_id=rng.choice(ads), event_time=t, ingest_time=t))
                stats["impressions_late_beyond_lateness"] += 1
        out.append(batch)
    return out


def ivt_verdicts(sc: Scenario) -> dict[str, str]:
    """click_id -> valid | suspect | invalid, from the spec (common/ivt.py's docstring) by brute
    force over the distinct clicks in publish order (late ones included: every engine sees them):
    the agent and address labels are the generator's own lists; a group's first click is the
    first published."""
    first: dict[str, dict] = {}
    for batch in sc.batches:
        for c in batch:
            first.setdefault(c["click_id"], c)
    clicks = list(first.values())
    per_ip_second: dict[tuple, int] = defaultdict(int)
    for c in clicks:
        per_ip_second[(c["ip"], c["event_time"] // 1000)] += 1
    seen_imp: set = set()
    seen_user: set = set()
    out: dict[str, str] = {}
    for c in clicks:
        imp_repeat = c["impression_id"] in seen_imp
        seen_imp.add(c["impression_id"])
        ukey = (c["user_id"], c["ad_id"], c["event_time"] // (sc.repeat_window_s * 1000))
        user_repeat = ukey in seen_user
        seen_user.add(ukey)
        invalid = (c["user_agent"] in BOT_UAS or imp_repeat
                   or c["ingest_time"] - c["issued_at"] < MIN_CLICK_DELAY_MS)
        suspect = (c["ip"] in DC_IPS or user_repeat
                   or per_ip_second[(c["ip"], c["event_time"] // 1000)] > BURST_THRESHOLD)
        out[c["click_id"]] = "invalid" if invalid else "suspect" if suspect else "valid"
    return out


@dataclass
class Expected:
    aggs: dict[tuple[str, int, str], dict[str, Any]]  # (resolution, bucket_start, ad_id)
    tops: dict[tuple[str, int], list[str]]  # (resolution, bucket_start) -> ad_ids in rank order
    late: dict[tuple[int, str], dict[str, Any]]  # (minute_start, ad_id)
    max_event_time: int
    # (kind 'campaign' | 'advertiser', resolution, bucket_start, id): the rollups
    rollups: dict[tuple[str, str, int, str], dict[str, Any]] = field(default_factory=dict)


METRICS = ("clicks", "billable_clicks", "cost_micros", "billable_cost_micros", "suspect_clicks",
           "invalid_clicks", "impressions", "conversions", "conversion_value_micros")


def _late_check(batches: list[list[dict]], delay: int, lateness: int, id_of) -> dict[Any, bool]:
    """Per distinct id, whether its event is late (beyond the lateness) under the watermark
    bounds of the module docstring, computed over `batches` (each stream has its own)."""
    file_max: list[int] = []
    for batch in batches:
        top = max((c["event_time"] for c in batch), default=None)
        prev = file_max[-1] if file_max else None
        file_max.append(prev if top is None else top if prev is None else max(prev, top))
    late: dict[Any, bool] = {}
    for k, batch in enumerate(batches):
        lower = file_max[k - LAG_FILES] - delay if k - LAG_FILES >= 0 and file_max[k - LAG_FILES] is not None else None
        up = file_max[min(k + LEAD_FILES, len(file_max) - 1)]
        upper = up - delay if up is not None else None
        for c in batch:
            minute = c["event_time"] - c["event_time"] % MINUTE
            edge = minute + MINUTE + lateness
            late_upper = upper is not None and upper >= edge
            late_lower = lower is not None and lower >= edge
            key = id_of(c)
            assert late_upper == late_lower, f"ambiguous lateness for {key} in file {k}"
            if key in late:
                assert late[key] == late_upper, f"copies of {key} classify differently"
            late[key] = late_upper
    return late


def oracle(sc: Scenario) -> Expected:
    delay = sc.delay_s * 1000
    lateness = sc.lateness_s * 1000
    file_max: list[int] = []
    for batch in sc.batches:  # running maximum of event time after each batch
        top = max(c["event_time"] for c in batch)
        file_max.append(top if not file_max else max(file_max[-1], top))
    seen_ids: set[str] = set()
    classification: dict[str, bool] = {}
    billable_keys: set[tuple[str, str, int]] = set()
    verdicts = ivt_verdicts(sc)
    aggs: dict[tuple[str, int, str], dict[str, Any]] = {}
    counted: list[tuple[dict, dict[str, int]]] = []  # (event, what it adds), in publish order
    late: dict[tuple[int, str], dict[str, Any]] = {}
    for k, batch in enumerate(sc.batches):
        lower = file_max[k - LAG_FILES] - delay if k - LAG_FILES >= 0 else None
        upper = file_max[min(k + LEAD_FILES, len(file_max) - 1)] - delay
        for c in batch:
            minute = c["event_time"] - c["event_time"] % MINUTE
            edge = minute + MINUTE + lateness
            late_upper = upper is not None and upper >= edge
            late_lower = lower is not None and lower >= edge
            assert late_upper == late_lower, f"ambiguous lateness for {c['click_id']} in file {k}"
            cid = c["click_id"]
            if cid in classification:
                assert classification[cid] == late_upper, f"copies of {cid} classify differently"
            classification[cid] = late_upper
            if cid in seen_ids:
                continue  # duplicate: keep first
            seen_ids.add(cid)
            if late_upper:
                e = late.setdefault(
                    (minute, c["ad_id"]),
                    {"late_dropped": 0, "cost_micros": 0, "max_event_time": 0,
                     "campaign_id": c["campaign_id"], "advertiser_id": c["advertiser_id"]},
                )
                e["late_dropped"] += 1
                e["cost_micros"] += c["cost_micros"]
                e["max_event_time"] = max(e["max_event_time"], c["event_time"])
                continue
            verdict = verdicts[cid]
            add = {"clicks": 1, "cost_micros": c["cost_micros"]}
            if verdict == "valid":
                add.update(billable_clicks=1, billable_cost_micros=c["cost_micros"])
            else:
                add[f"{verdict}_clicks"] = 1
            counted.append((c, add))
    # the events: counted once per (type, id), on time against the events' own watermark,
    # conversions only with an ad (the others are the nightly batch's)
    event_late = _late_check(sc.event_batches, delay, lateness, lambda e: (e["event_type"], e["event_id"]))
    seen_events: set[tuple[str, str]] = set()
    for batch in sc.event_batches:
        for e in batch:
            key = (e["event_type"], e["event_id"])
            if key in seen_events:
                continue
            seen_events.add(key)
            if event_late[key] or e["ad_id"] is None:
                continue
            if e["event_type"] == "impression":
                counted.append((e, {"impressions": 1}))
            else:
                counted.append((e, {"conversions": 1, "conversion_value_micros": e["value_micros"]}))
    rollups: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    for c, add in counted:
        for res, size in RESOLUTIONS.items():
            b = c["event_time"] - c["event_time"] % size
            targets = [aggs.setdefault((res, b, c["ad_id"]), _zero(c)),
                       rollups.setdefault(("campaign", res, b, c["campaign_id"]), _zero(c)),
                       rollups.setdefault(("advertiser", res, b, c["advertiser_id"]), _zero(c))]
            for a in targets:
                for m, v in add.items():
                    a[m] += v
                a["max_event_time"] = max(a["max_event_time"], c["event_time"])
    tops: dict[tuple[str, int], list[str]] = {}
    for res in ("1m", "1h", "1d"):
        per_bucket: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for (r, b, ad), a in aggs.items():
            if r == res:
                per_bucket[b].append((-a["clicks"], ad))
        for b, entries in per_bucket.items():
            tops[(res, b)] = [ad for _, ad in sorted(entries)[: sc.leaderboard_size]]
    for key, r in rollups.items():
        if key[0] == "advertiser":
            r["campaign_id"] = None
    return Expected(aggs=aggs, tops=tops, late=late, max_event_time=file_max[-1], rollups=rollups)


def _zero(c: dict) -> dict[str, Any]:
    return {**dict.fromkeys(METRICS, 0), "max_event_time": 0, "campaign_id": c["campaign_id"],
            "advertiser_id": c["advertiser_id"]}
