"""Top-K over a window from per-bucket leaderboards, with proof of exactness or an error bound.

Each bucket of the window (whole hours: 1h leaderboards; edge minutes: 1m leaderboards) has a
leaderboard: the live entries (tombstones dropped) of the at most M ads with the most clicks in
that bucket, each with the ad's exact metrics for the bucket.

Complete or truncated: a leaderboard holding <= 0.9*M entries is taken to hold every ad with
clicks in that bucket (its threshold is 0). A fuller one may have dropped ads: an unlisted ad has
at most as many clicks as the fewest-clicks listed entry (`min_clicks`), so its threshold is
  clicks, billable_clicks: min_clicks (billable <= clicks; the board is ordered by clicks)
  cost:                    min_clicks * 10000 currency units (the maximum cost of one click)
The cost bound is honest but loose: a truncated bucket rarely lets a cost ranking be proven.

Threshold-algorithm merge (all entries of every bucket are read; there is no sorted access):
  lower(ad) = sum of the ad's listed values
  upper(ad) = lower(ad) + sum of the thresholds of the buckets that do not list it
  an ad listed nowhere: lower 0, upper = sum of all thresholds (T_all)
Ranking: by lower bound descending, ties by ad_id ascending (code-point order). Only ads with
lower > 0 are returned.

Exact iff every returned ad has lower == upper and every other ad is provably behind the k-th:
its upper < k-th lower, or upper == k-th lower and it is a listed ad whose ad_id sorts after the
k-th (an unlisted ad could have any id, so it must be strictly below). With fewer than k
returned, every other ad must have upper == 0. Exact answers equal a brute-force computation
over the raw aggregates, ranking and totals.

Otherwise `exact` is false and `error_bound` is the largest of
  upper - lower of any returned ad (each returned total is a lower bound of its true total), and
  max over ranks i of (i-th largest upper over all ads) - (i-th returned total)
so every returned total, and the true i-th largest total of the window for every rank i, is
within error_bound of what is returned (the returned total at rank i, 0 past the last one).
error_bound 0 with exact false means the totals per rank are right but a tie at the cut-off
cannot be resolved (an ad with an equal upper bound may sort before the last returned one).

Filters (campaign_id, advertiser_id) drop the listed ads whose ids differ (an entry without the
ids counts as differing: the sink always writes them); an unlisted ad cannot be shown to be
outside the filter, so the thresholds stay.

IVT counts of a returned ad (suspect_clicks, invalid_clicks: IVT_COUNTS): the sums over the
entries that list it, whatever the ranked metric. They are the ad's exact counts in the window
whenever its total is proven (lower == upper, so always when `exact`): then every bucket that
does not list it has threshold 0, i.e. its board is complete (or empty) and the ad had no clicks
there (entries have clicks >= 1, so a truncated board's threshold is never 0). Otherwise they
are lower bounds, like `total`.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Iterable, Optional

MAX_COST_MICROS_PER_CLICK = 10_000 * 1_000_000
IVT_COUNTS = ("suspect_clicks", "invalid_clicks")  # summed per returned ad (module doc)
COMPLETE_FRACTION_NUM, COMPLETE_FRACTION_DEN = 9, 10  # <= 0.9*M entries: complete


@dataclass(frozen=True)
class Entry:
    ad_id: str
    clicks: int
    billable_clicks: int = 0
    cost_micros: int = 0
    billable_cost_micros: int = 0
    suspect_clicks: int = 0
    invalid_clicks: int = 0
    impressions: int = 0
    conversions: int = 0
    conversion_value_micros: int = 0
    campaign_id: Optional[str] = None
    advertiser_id: Optional[str] = None

    def value(self, metric: str) -> int:
        if metric == "clicks":
            return self.clicks
        if metric == "billable_clicks":
            return self.billable_clicks
        if metric == "cost":
            return self.cost_micros
        raise ValueError(f"unknown metric {metric!r}")


@dataclass
class Leaderboard:
    resolution: str  # 1m | 1h
    bucket_start: int
    entries: list[Entry] = field(default_factory=list)

    def is_complete(self, leaderboard_size: int) -> bool:
        return len(self.entries) * COMPLETE_FRACTION_DEN <= leaderboard_size * COMPLETE_FRACTION_NUM

    def threshold(self, metric: str, leaderboard_size: int) -> int:
        """Largest value an ad not listed here can have in this bucket."""
        if not self.entries or self.is_complete(leaderboard_size):
            return 0
        min_clicks = min(e.clicks for e in self.entries)
        return min_clicks * MAX_COST_MICROS_PER_CLICK if metric == "cost" else min_clicks


@dataclass(frozen=True)
class RankedAd:
    ad_id: str
    campaign_id: Optional[str]
    advertiser_id: Optional[str]
    total: int  # lower bound (the exact total when lower == upper)
    upper: int
    suspect_clicks: int = 0  # over the buckets listing the ad (exact when total == upper)
    invalid_clicks: int = 0


@dataclass(frozen=True)
class TopResult:
    items: list[RankedAd]
    exact: bool
    error_bound: int
    truncated_buckets: int = 0
    candidates: int = 0


def _matches(e: Entry, campaign_id: Optional[str], advertiser_id: Optional[str]) -> bool:
    return ((campaign_id is None or e.campaign_id == campaign_id)
            and (advertiser_id is None or e.advertiser_id == advertiser_id))


def merge_topk(leaderboards: Iterable[Leaderboard], k: int, metric: str, leaderboard_size: int,
               campaign_id: Optional[str] = None, advertiser_id: Optional[str] = None) -> TopResult:
    lower: dict[str, int] = {}
    listed_threshold: dict[str, int] = {}  # sum of thresholds of the buckets listing the ad
    ids: dict[str, tuple[Optional[str], Optional[str]]] = {}
    ivt: dict[str, list[int]] = {}  # ad -> IVT_COUNTS sums over its listed entries
    t_all = 0
    truncated = 0
    for board in leaderboards:
        thr = board.threshold(metric, leaderboard_size)
        t_all += thr
        truncated += not board.is_complete(leaderboard_size)
        for e in board.entries:
            if not _matches(e, campaign_id, advertiser_id):
                continue
            lower[e.ad_id] = lower.get(e.ad_id, 0) + e.value(metric)
            listed_threshold[e.ad_id] = listed_threshold.get(e.ad_id, 0) + thr
            sums = ivt.setdefault(e.ad_id, [0] * len(IVT_COUNTS))
            for i, name in enumerate(IVT_COUNTS):
                sums[i] += getattr(e, name)
            if e.ad_id not in ids or ids[e.ad_id] == (None, None):
                ids[e.ad_id] = (e.campaign_id, e.advertiser_id)

    def upper(ad: str) -> int:
        return lower[ad] + t_all - listed_threshold[ad]

    ranked = heapq.nsmallest(k, (ad for ad, v in lower.items() if v > 0), key=lambda ad: (-lower[ad], ad))
    items = [RankedAd(ad, *ids[ad], lower[ad], upper(ad), *ivt[ad]) for ad in ranked]
    chosen = set(ranked)
    outside_uppers = [(upper(ad), ad) for ad in lower if ad not in chosen]

    exact = all(i.total == i.upper for i in items)
    if exact:
        if len(items) < k:
            exact = t_all == 0 and all(u == 0 for u, _ in outside_uppers)
        else:
            last = items[-1]
            exact = (t_all < last.total and all(
                u < last.total or (u == last.total and ad > last.ad_id) for u, ad in outside_uppers))
    if exact:
        return TopResult(items, True, 0, truncated, len(lower))

    # i-th largest upper over all ads: listed ones, plus (unboundedly many) unlisted ones at t_all
    all_uppers = heapq.nlargest(k, [upper(ad) for ad in lower])
    all_uppers = sorted(all_uppers + [t_all] * k, reverse=True)[:k]
    rank_error = max((all_uppers[i] - (items[i].total if i < len(items) else 0)) for i in range(k))
    item_error = max((i.upper - i.total for i in items), default=0)
    return TopResult(items, False, max(rank_error, item_error, 0), truncated, len(lower))


def micros_to_decimal(micros: int) -> str:
    """Exact: 12340000 -> '12.340000'."""
    sign = "-" if micros < 0 else ""
    q, r = divmod(abs(int(micros)), 1_000_000)
    return f"{sign}{q}.{r:06d}"


def format_value(metric: str, value: int):
    """JSON value of a metric: counts as integers, cost as a decimal string of currency units."""
    return micros_to_decimal(value) if metric == "cost" else int(value)
