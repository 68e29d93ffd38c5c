"""Generated click load with a known ground truth: zipf-skewed ads with one hot ad, retried
duplicates, repeat clicks, and optionally clicks later than the stream's lateness horizon.

The generator only decides *what is sent*; counts are derived from `truth` by oracles
(local.oracle), never by the code under test.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

HOT_AD = "ad-0000"


@dataclass(frozen=True)
class LoadSpec:
    clicks: int = 10_000  # distinct clicks (the ground truth)
    ads: int = 100
    hot_ad_share: float = 0.35  # share of distinct clicks on HOT_AD
    zipf_s: float = 1.2  # skew among the other ads
    users: int = 2_000
    duplicate_rate: float = 0.02  # retried copies: same click_id and fields, sent later
    repeat_rate: float = 0.03  # same user + ad again within seconds (a new click_id)
    late_count: int = 0  # clicks older than the lateness horizon, sent last
    late_by_s: int = 3600  # how far behind the newest event time those are
    span_s: int = 1800  # event times cover [end - span, end]
    iso_share: float = 0.2  # share of timestamps sent as ISO-8601 instead of epoch ms
    seed: int = 42


@dataclass
class Load:
    spec: LoadSpec
    sends: list[dict]  # payloads in send order (duplicates included)
    truth: list[dict]  # one entry per distinct click: the fields the server will store
    duplicate_ids: list[str] = field(default_factory=list)
    late_ids: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return len(self.duplicate_ids)


def ad_catalog(n_ads: int, rng: random.Random) -> list[dict]:
    """Ads with their campaign, advertiser and fixed cost per click."""
    return [
        {
            "ad_id": f"ad-{i:04d}",
            "campaign_id": f"cmp-{i // 5:03d}",
            "advertiser_id": f"adv-{i // 20:02d}",
            "cost": Decimal(rng.randint(5, 250)) / 100,
        }
        for i in range(n_ads)
    ]


def _pick_ads(spec: LoadSpec, rng: random.Random, n: int) -> list[int]:
    weights = [1 / (rank ** spec.zipf_s) for rank in range(1, spec.ads)]
    others = rng.choices(range(1, spec.ads), weights=weights, k=n)
    return [0 if rng.random() < spec.hot_ad_share else other for other in others]


def _timestamp(ms: int, rng: random.Random, iso_share: float):
    if rng.random() < iso_share:
        dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return ms


def generate(spec: LoadSpec, end_ms: int) -> Load:
    rng = random.Random(spec.seed)
    ads = ad_catalog(spec.ads, rng)
    start_ms = end_ms - spec.span_s * 1000
    n_repeat = int(spec.clicks * spec.repeat_rate)
    n_base = spec.clicks - n_repeat - spec.late_count

    truth: list[dict] = []

    def make(i: int, ad: dict, user: str, event_ms: int) -> dict:
        click = {
            "click_id": f"c-{spec.seed}-{i:08d}",
            "ad_id": ad["ad_id"], "campaign_id": ad["campaign_id"],
            "advertiser_id": ad["advertiser_id"], "user_id": user,
            "event_time": event_ms, "cost": ad["cost"],
        }
        truth.append(click)
        return click

    base = [
        make(i, ads[a], f"u-{rng.randrange(spec.users):05d}", rng.randrange(start_ms, end_ms))
        for i, a in enumerate(_pick_ads(spec, rng, n_base))
    ]
    ads_by_id = {a["ad_id"]: a for a in ads}
    for j in range(n_repeat):  # the same user clicking the same ad again a few seconds later
        orig = rng.choice(base)
        ad = ads_by_id[orig["ad_id"]]
        make(n_base + j, ad, orig["user_id"], min(end_ms - 1, orig["event_time"] + rng.randint(0, 12_000)))
    ordered = sorted(truth, key=lambda c: c["event_time"] + rng.randint(0, 2_000))
    late = []
    for k in range(spec.late_count):
        ad = ads[_pick_ads(spec, rng, 1)[0]]
        late.append(make(n_base + n_repeat + k, ad, f"u-{rng.randrange(spec.users):05d}",
                         end_ms - spec.late_by_s * 1000 - rng.randrange(0, 600_000)))

    def payload(c: dict) -> dict:
        user_no = int(c["user_id"][2:])  # each user clicks from its own address
        return {**{k: v for k, v in c.items() if k not in ("event_time", "cost")},
                "timestamp": _timestamp(c["event_time"], rng, spec.iso_share), "cost": str(c["cost"]),
                "ip": f"10.{user_no // 65536}.{user_no // 256 % 256}.{user_no % 256}"}

    keyed = [(float(i), payload(c)) for i, c in enumerate(ordered)]
    duplicate_ids = []
    for i in rng.sample(range(len(ordered)), int(spec.clicks * spec.duplicate_rate)):
        # the retry goes out a few hundred clicks later: in a later request, like an SDK retry
        keyed.append((i + rng.randint(150, 600) + 0.5, payload(ordered[i])))
        duplicate_ids.append(ordered[i]["click_id"])
    keyed.sort(key=lambda t: t[0])
    sends = [p for _, p in keyed] + [payload(c) for c in late]
    return Load(spec, sends, truth, duplicate_ids, [c["click_id"] for c in late])
