"""Top-K over a window from per-bucket leaderboards, with proof of exactness or an error bound.

Each bucket of the window (whole UTC days: 1d leaderboards; whole hours: 1h; edge minutes: 1m;
query.windows.decompose) has a leaderboard: the live entries (tombstones dropped) of the at most
M ads with the most clicks in that bucket (ties: ad_id), each with the ad's exact metrics for the
bucket. Since impressions and conversions have rows of their own, an ad without clicks can fill a
free place (an entry with clicks = 0).

Complete or truncated: a leaderboard holding <= 0.9*M entries is taken to hold every ad with a
row in that bucket (its threshold is 0). A fuller one may have dropped ads: an unlisted ad has at
most as many clicks as the fewest-clicks listed entry (`min_clicks`), so its threshold is
  clicks, billable_clicks: min_clicks (billable <= clicks; the board is ordered by clicks)
  cost:                    min_clicks * 10000 currency units (the maximum cost of one click)
  impressions, conversions, conversion_value: unbounded (INF). The order by clicks says nothing
                           about them: an unlisted ad may have any number (conversions are
                           reported at conversion time, not with their click).
The cost bound is honest but loose: a truncated bucket rarely lets a cost ranking be proven; an
unbounded one never lets a ranking be proven (its answers are exact only over complete boards).

Sorted access (serving/read/ranked.py): a board may be read in rank order (most clicks first)
and not to its end (`read_to`): every entry not read has at most `read_to` clicks, and so has an
unlisted ad (the board's fewest clicks are at most those of an unread entry). Its threshold is
then max(its own, read_to x the per-click bound) for clicks, billable_clicks and cost, INF for the
others; a reader stops as soon as the answer below is exact, so an exact answer is the one the
whole boards give.

Threshold-algorithm merge:
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
An unbounded upper or error bound is INF (the API writes null). `reason` says why an answer is
not exact.

Ratios (ctr, cvr, cpc, cpa, roas: query.ratios) by `merge_top_ratio`: an ad's ratio needs both of
its sums, which only a board listing it gives, so nothing bounds an unlisted ad's ratio. A ratio
answer is exact iff every board of the window is complete (then it ranks every ad with a row, by
the exact quotient of its window sums, ties ad_id). Otherwise it ranks the listed ads by the
quotient of their listed sums, `exact` false, error_bound INF; an ad listed on every truncated
board has its true sums, so its ratio is exact (upper = total), any other's is unknown (INF).
Only ads whose denominator reaches the volume floor and whose ratio is above 0 are returned.

Filters (campaign_id, advertiser_id) drop the listed ads whose ids differ (an entry without the
ids counts as differing: the sink always writes them); an unlisted ad cannot be shown to be
outside the filter, so the thresholds stay.

IVT counts of a returned ad (suspect_clicks, invalid_clicks: IVT_COUNTS): the sums over the
entries that list it, whatever the ranked metric. They are the ad's exact counts in the window
whenever its total is proven (lower == upper, so always when `exact`): then every bucket that
does not list it either has a complete board (the ad had no row there) or a truncated one whose
threshold on the ad's clicks is 0 (min_clicks 0: the ad had no clicks there); suspect and invalid
clicks are clicks. Otherwise they are lower bounds, like `total`.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Optional, Union

from query.ratios import RATIOS, Ratio, is_money, micros_to_decimal  # noqa: F401 (micros_to_decimal: API)

MAX_COST_MICROS_PER_CLICK = 10_000 * 1_000_000
INF = math.inf  # an upper or error bound the leaderboards cannot give
IVT_COUNTS = ("suspect_clicks", "invalid_clicks")  # summed per returned ad (module doc)
COMPLETE_FRACTION_NUM, COMPLETE_FRACTION_DEN = 9, 10  # <= 0.9*M entries: complete
# The summed metrics top-K ranks by -> their column (serving.table.METRICS, Entry's fields). Money
# columns (*_micros) are answered like cost.
COUNT_METRICS = {"clicks": "clicks", "billable_clicks": "billable_clicks", "cost": "cost_micros",
                 "impressions": "impressions", "conversions": "conversions",
                 "conversion_value": "conversion_value_micros"}
TOP_METRICS = (*COUNT_METRICS, *RATIOS)
# The most one click adds to a metric in one bucket: what bounds an unlisted ad on a board ordered
# by clicks. A metric not listed here is unbounded there.
PER_CLICK_BOUND = {"clicks": 1, "billable_clicks": 1, "cost": MAX_COST_MICROS_PER_CLICK}

Value = Union[int, Fraction, float]  # a count, a ratio, or INF


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


@dataclass
class Leaderboard:
    resolution: str  # 1m | 1h | 1d
    bucket_start: int
    entries: list[Entry] = field(default_factory=list)
    # read in rank order and stopped (module doc): entries not read have <= read_to clicks (INF:
    # nothing read yet); None: the whole board was read
    read_to: Optional[Union[int, float]] = None

    def is_complete(self, leaderboard_size: int) -> bool:
        return len(self.entries) * COMPLETE_FRACTION_DEN <= leaderboard_size * COMPLETE_FRACTION_NUM

    @property
    def partial(self) -> bool:
        return self.read_to is not None

    def threshold(self, metric: str, leaderboard_size: int) -> Union[int, float]:
        """Largest value an ad not listed here can have in this bucket (INF: no bound)."""
        if not self.entries or self.is_complete(leaderboard_size):
            whole = 0
        elif metric not in PER_CLICK_BOUND:
            return INF
        else:
            whole = min(e.clicks for e in self.entries) * PER_CLICK_BOUND[metric]
        if self.read_to is None:
            return whole
        if metric not in PER_CLICK_BOUND:
            return INF
        return max(whole, self.read_to * PER_CLICK_BOUND[metric])


@dataclass(frozen=True)
class RankedAd:
    ad_id: str
    campaign_id: Optional[str]
    advertiser_id: Optional[str]
    total: Value  # lower bound (the exact total when lower == upper); a ratio: its listed quotient
    upper: Value  # INF: unbounded / unknown
    suspect_clicks: int = 0  # over the buckets listing the ad (exact when total == upper)
    invalid_clicks: int = 0
    numerator: Optional[int] = None  # a ratio's sums over the buckets listing the ad
    denominator: Optional[int] = None


@dataclass(frozen=True)
class TopResult:
    items: list[RankedAd]
    exact: bool
    error_bound: Value
    truncated_buckets: int = 0
    candidates: int = 0
    reason: Optional[str] = None  # why not exact


def _matches(e: Entry, campaign_id: Optional[str], advertiser_id: Optional[str]) -> bool:
    return ((campaign_id is None or e.campaign_id == campaign_id)
            and (advertiser_id is None or e.advertiser_id == advertiser_id))


def _filtered(board: Leaderboard, campaign_id: Optional[str], advertiser_id: Optional[str],
              ids: dict[str, tuple[Optional[str], Optional[str]]],
              only: Optional[set[str]] = None) -> list[Entry]:
    """The board's entries that pass the filters (of the ads in `only`, if given); records each
    ad's first ids seen in `ids`."""
    entries = [e for e in board.entries if (only is None or e.ad_id in only)
               and _matches(e, campaign_id, advertiser_id)]
    for e in entries:
        if e.ad_id not in ids or ids[e.ad_id] == (None, None):
            ids[e.ad_id] = (e.campaign_id, e.advertiser_id)
    return entries


def _ivt_add(ivt: dict[str, list[int]], e: Entry) -> None:
    sums = ivt.setdefault(e.ad_id, [0] * len(IVT_COUNTS))
    for i, name in enumerate(IVT_COUNTS):
        sums[i] += getattr(e, name)


def _truncated_reason(truncated: int, boards: int, leaderboard_size: int) -> str:
    return (f"{truncated} of {boards} bucket leaderboards are truncated (they keep the top "
            f"{leaderboard_size} ads by clicks) or were read only in part")


def _listed_details(boards: list[Leaderboard], ads: set[str], campaign_id: Optional[str],
                    advertiser_id: Optional[str]) -> tuple[dict, dict]:
    """(ids, IVT sums) of `ads` over the boards' entries that pass the filters: a second pass
    for the few ads returned, cheaper than keeping both for every listed ad."""
    ids: dict[str, tuple[Optional[str], Optional[str]]] = {}
    ivt: dict[str, list[int]] = {ad: [0] * len(IVT_COUNTS) for ad in ads}
    for board in boards:
        for e in _filtered(board, campaign_id, advertiser_id, ids, ads):
            _ivt_add(ivt, e)
    return ids, ivt


def merge_topk(leaderboards: Iterable[Leaderboard], k: int, metric: str, leaderboard_size: int,
               campaign_id: Optional[str] = None, advertiser_id: Optional[str] = None) -> TopResult:
    """Top-k by a summed metric (COUNT_METRICS); the module doc's rules. The per-entry loop is
    plain dict arithmetic (a 30-day merge sees ~4,000 entries a round, within 10 ms: issue 22):
    a sum of thresholds is kept as its finite part and its number of INF terms, so removing the
    thresholds of the boards listing an ad never computes INF - INF."""
    if metric not in COUNT_METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    column = COUNT_METRICS[metric]
    boards_seen = list(leaderboards)
    filtered = campaign_id is not None or advertiser_id is not None
    lower: dict[str, int] = {}
    listed_finite: dict[str, int] = {}  # finite thresholds of the buckets listing the ad
    listed_inf: dict[str, int] = {}  # how many of them are INF
    all_finite = all_inf = truncated = 0
    for board in boards_seen:
        thr = board.threshold(metric, leaderboard_size)
        fin, inf = (0, 1) if thr == INF else (thr, 0)
        all_finite += fin
        all_inf += inf
        truncated += board.partial or not board.is_complete(leaderboard_size)
        entries = [e for e in board.entries if _matches(e, campaign_id, advertiser_id)] \
            if filtered else board.entries
        for e in entries:
            ad = e.ad_id
            if ad in lower:
                lower[ad] += getattr(e, column)
                listed_finite[ad] += fin
                listed_inf[ad] += inf
            else:
                lower[ad] = getattr(e, column)
                listed_finite[ad] = fin
                listed_inf[ad] = inf
    boards = len(boards_seen)

    def upper(ad: str) -> Union[int, float]:
        return lower[ad] + (INF if all_inf > listed_inf[ad] else all_finite - listed_finite[ad])

    t_unlisted = INF if all_inf else all_finite
    ranked = heapq.nsmallest(k, (ad for ad, v in lower.items() if v > 0), key=lambda ad: (-lower[ad], ad))
    chosen = set(ranked)
    ids, ivt = _listed_details(boards_seen, chosen, campaign_id, advertiser_id)
    items = [RankedAd(ad, *ids[ad], lower[ad], upper(ad), *ivt[ad]) for ad in ranked]
    outside_uppers = [(upper(ad), ad) for ad in lower if ad not in chosen]

    exact = all(i.total == i.upper for i in items)
    if exact:
        if len(items) < k:
            exact = t_unlisted == 0 and all(u == 0 for u, _ in outside_uppers)
        else:
            last = items[-1]
            exact = (t_unlisted < last.total and all(
                u < last.total or (u == last.total and ad > last.ad_id) for u, ad in outside_uppers))
    if exact:
        return TopResult(items, True, 0, truncated, len(lower))

    # i-th largest upper over all ads: listed ones, plus (unboundedly many) unlisted ones at T_all
    all_uppers = heapq.nlargest(k, [upper(ad) for ad in lower])
    all_uppers = sorted(all_uppers + [t_unlisted] * k, reverse=True)[:k]
    rank_error = max((all_uppers[i] - (items[i].total if i < len(items) else 0)) for i in range(k))
    item_error = max((i.upper - i.total for i in items), default=0)
    bound = max(rank_error, item_error, 0)
    reason = _truncated_reason(truncated, boards, leaderboard_size) + (
        f", which bounds nothing about an unlisted ad's {metric}: totals are lower bounds, with no "
        "error bound" if bound == INF else
        ": each total is a lower bound, within error_bound of the truth, and so is the true total "
        "at each rank" + (" (a tie at the cut-off cannot be resolved)" if bound == 0 else ""))
    return TopResult(items, False, bound, truncated, len(lower), reason)


def merge_top_ratio(leaderboards: Iterable[Leaderboard], k: int, ratio: Ratio, min_volume: int,
                    leaderboard_size: int, campaign_id: Optional[str] = None,
                    advertiser_id: Optional[str] = None) -> TopResult:
    """Top-k by a ratio (query.ratios) of ads whose denominator reaches `min_volume`; exact iff
    every board is complete (module doc)."""
    sums: dict[str, list[int]] = {}  # ad -> [numerator, denominator] over its listed entries
    on_truncated: dict[str, int] = {}  # ad -> truncated boards listing it
    ivt: dict[str, list[int]] = {}
    truncated = boards = 0
    ids: dict[str, tuple[Optional[str], Optional[str]]] = {}
    for board in leaderboards:
        boards += 1
        cut = not board.is_complete(leaderboard_size)
        truncated += cut
        for e in _filtered(board, campaign_id, advertiser_id, ids):
            s = sums.setdefault(e.ad_id, [0, 0])
            s[0] += getattr(e, ratio.numerator)
            s[1] += getattr(e, ratio.denominator)
            on_truncated[e.ad_id] = on_truncated.get(e.ad_id, 0) + cut
            _ivt_add(ivt, e)
    floor = ratio.volume_floor(min_volume)
    quotient = {ad: Fraction(n, d) for ad, (n, d) in sums.items() if d >= floor and d > 0 and n > 0}
    ranked = heapq.nsmallest(k, quotient, key=lambda ad: (-quotient[ad], ad))
    items = [RankedAd(ad, *ids[ad], quotient[ad],
                      quotient[ad] if on_truncated.get(ad, 0) == truncated else INF,
                      *ivt[ad], *sums[ad]) for ad in ranked]
    if truncated == 0:
        return TopResult(items, True, 0, 0, len(sums))
    reason = (_truncated_reason(truncated, boards, leaderboard_size)
              + f": an ad's {ratio.name} is known only when every truncated leaderboard lists it "
              "(then total_upper = total); the others' and the ranking are estimates from the "
              "listed buckets")
    return TopResult(items, False, INF, truncated, len(sums), reason)


def format_value(metric: str, value: Value):
    """JSON value of a metric: counts as integers, money (cost, conversion_value, cpc, cpa) as a
    decimal string of currency units, ctr/cvr/roas as numbers (query.ratios); INF as null."""
    if value == INF:
        return None
    if metric in RATIOS:
        return RATIOS[metric].to_json(Fraction(value))
    column = COUNT_METRICS.get(metric, metric)
    return micros_to_decimal(value) if is_money(column) else int(value)
