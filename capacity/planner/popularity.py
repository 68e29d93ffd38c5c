"""Ad popularity (Zipf): how many distinct ads a number of clicks touches, the top ad's share."""
from __future__ import annotations

import math
from functools import lru_cache

from capacity.planner.assumptions import ADS_PER_CAMPAIGN, CAMPAIGNS_PER_ADVERTISER


@lru_cache(maxsize=64)
def _popularity_bins(ads: int, skew: float) -> tuple[tuple[int, float], ...]:
    """(number of ads, click probability of each) bins of a Zipf(skew) popularity over `ads` ads:
    ranks 1..1000 exactly, the tail in ~400 geometric bins (integral of x^-s per bin)."""
    exact = min(ads, 1000)
    raw: list[tuple[int, float]] = [(1, float(i) ** -skew) for i in range(1, exact + 1)]
    if ads > exact:
        edges = sorted({int(round(exact * (ads / exact) ** (k / 400))) for k in range(401)})
        edges[0], edges[-1] = exact, ads
        for lo, hi in zip(edges, edges[1:]):
            a, b = lo + 1, hi  # ranks a..b inclusive
            if b < a:
                continue
            if abs(skew - 1.0) < 1e-12:
                weight = math.log((b + 0.5) / (a - 0.5))
            else:
                weight = ((b + 0.5) ** (1 - skew) - (a - 0.5) ** (1 - skew)) / (1 - skew)
            raw.append((b - a + 1, weight / (b - a + 1)))
    total = sum(n * w for n, w in raw)
    return tuple((n, w / total) for n, w in raw)


def top_ad_share(ads: int, skew: float) -> float:
    """Fraction of all clicks that go to the most popular ad."""
    return 1.0 / ads if skew == 0 else _popularity_bins(ads, skew)[0][1]


def distinct_ads(clicks: float, ads: int, skew: float) -> float:
    """Expected number of distinct ads among `clicks` (Poisson) clicks over `ads` ads with Zipf
    popularity (skew 0 = uniform: ads x (1 - e^(-clicks/ads)))."""
    if clicks <= 0:
        return 0.0
    if skew == 0:
        return ads * -math.expm1(-clicks / ads)
    return sum(n * -math.expm1(-clicks * p) for n, p in _popularity_bins(ads, skew))


def rollup_entities(active_ads: int) -> tuple[int, int]:
    """(campaigns, advertisers) the `active_ads` ads belong to (ADS_PER_CAMPAIGN,
    CAMPAIGNS_PER_ADVERTISER; at least one of each)."""
    campaigns = max(1, active_ads // ADS_PER_CAMPAIGN)
    return campaigns, max(1, campaigns // CAMPAIGNS_PER_ADVERTISER)


def level_keys(rows: float, active_ads: int, skew: float) -> tuple[float, float, float]:
    """Distinct (ads, campaigns, advertisers) among `rows` counted rows: the aggregate keys those
    rows update per resolution (the job's 'agg' rows and its 'campaign' / 'advertiser' rollups).
    Campaigns and advertisers are taken as Zipf(skew) popular like the ads."""
    campaigns, advertisers = rollup_entities(active_ads)
    return (distinct_ads(rows, active_ads, skew), distinct_ads(rows, campaigns, skew),
            distinct_ads(rows, advertisers, skew))
