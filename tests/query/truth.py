"""Ground truth for the query tests: random per-(ad, minute) aggregates, the serving items the
sink would hold for them (series at 1m/5m/1h/1d per ad, campaign and advertiser, 1m, 1h and 1d
leaderboards truncated to M, some tombstones, META), and brute-force oracles computed from the
truth alone (own copies of every rule: ratios, rounding, thresholds, window decomposition)."""
from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

from aggregate.changes import ADVERTISER, AGG, CAMPAIGN, TOP, Change
from serving.keys import freshness_key
from serving.write.dynamodb import item_for

# Own copies of common.times' units/RESOLUTIONS on purpose: an oracle shares no code with what it checks.
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
RES = {"1m": MIN, "5m": 5 * MIN, "1h": HOUR, "1d": DAY}
FIELDS = ("clicks", "billable_clicks", "cost_micros", "billable_cost_micros", "suspect_clicks", "invalid_clicks",
          "impressions", "conversions", "conversion_value_micros")
ZERO = (0,) * len(FIELDS)
METRIC_FIELD = {"clicks": "clicks", "billable_clicks": "billable_clicks", "cost": "cost_micros",
                "impressions": "impressions", "conversions": "conversions",
                "conversion_value": "conversion_value_micros"}
# the ratios as issue 19 defines them: (numerator, denominator, money per unit); spend = billable cost
RATIO_FIELDS = {"ctr": ("billable_clicks", "impressions", False),
                "cvr": ("conversions", "billable_clicks", False),
                "cpc": ("billable_cost_micros", "billable_clicks", True),
                "cpa": ("billable_cost_micros", "conversions", True),
                "roas": ("conversion_value_micros", "billable_cost_micros", False)}
LEVELS = {"campaign": CAMPAIGN, "advertiser": ADVERTISER}


@dataclass
class Truth:
    """minute[(ad, minute_start)] = (clicks, billable, cost_micros, billable_cost_micros, suspect,
    invalid, impressions, conversions, conversion_value_micros) (FIELDS): billable = the valid
    clicks, so clicks = billable + suspect + invalid (random_truth keeps it; hand-made truths may
    not, the store does not check it). A key is a row the job would have: an ad with only
    impressions or conversions in a minute has one too (clicks 0)."""

    minute: dict[tuple[str, int], tuple[int, ...]] = field(default_factory=dict)
    campaign: dict[str, str] = field(default_factory=dict)
    advertiser: dict[str, str] = field(default_factory=dict)
    watermark: int | None = None
    newest_event: int | None = None
    # rollups and leaderboards already computed (the oracles ask for them per request); add()
    # clears it. Write minutes through add() only.
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    def add(self, ad: str, minute: int, clicks: int, billable: int, cost: int, bcost: int,
            suspect: int = 0, invalid: int = 0, impressions: int = 0, conversions: int = 0,
            value: int = 0) -> None:
        old = self.minute.get((ad, minute), ZERO)
        new = (clicks, billable, cost, bcost, suspect, invalid, impressions, conversions, value)
        self.minute[(ad, minute)] = tuple(a + b for a, b in zip(old, new))
        self.memo.clear()

    def owner(self, level: str, ad: str) -> str:
        """The ad's campaign or advertiser."""
        return (self.campaign if level == "campaign" else self.advertiser)[ad]

    def rollup(self, resolution: str) -> dict[tuple[str, int], tuple[int, ...]]:
        if ("rollup", resolution) not in self.memo:
            step = RES[resolution]
            out: dict = defaultdict(lambda: ZERO)
            for (ad, m), v in self.minute.items():
                key = (ad, m - m % step)
                out[key] = tuple(a + b for a, b in zip(out[key], v))
            self.memo[("rollup", resolution)] = dict(out)
        return dict(self.memo[("rollup", resolution)])


def random_truth(seed: int, start: int, minutes: int, ads: int = 20, hot_p: float = 0.9,
                 p: float = 0.1, campaigns: int = 3, events: bool = False) -> Truth:
    """`events`: rows also get impressions (at least their clicks), conversions and conversion
    value, and ads without clicks in a minute get rows of impressions / conversions alone (their
    own random stream: the clicks stay those of events=False)."""
    rng = random.Random(seed)
    verdicts = random.Random(seed * 7919 + 17)  # its own stream: rng's sequence stays as before
    ev = random.Random(seed * 104_729 + 3)
    t = Truth()
    names = [f"ad-{i:03d}" for i in range(ads)]
    names[-1] = "ad'q"  # an id with a quote (printable ASCII)
    for i, ad in enumerate(names):
        t.campaign[ad] = f"cmp-{i % campaigns}"
        t.advertiser[ad] = f"adv-{i % 2}"
    for m in range(minutes):
        ms = start + m * MIN
        for i, ad in enumerate(names):
            if rng.random() < (hot_p if i == 0 else p):
                clicks = rng.randint(1, 40 if i == 0 else 12)
                billable = rng.randint(0, clicks)
                unit = rng.choice([0, 1, 250_000, 1_500_000, 10_000_000])
                suspect = verdicts.randint(0, clicks - billable)  # the rest of the non-valid: invalid
                t.add(ad, ms, clicks, billable, clicks * unit, billable * unit, suspect, clicks - billable - suspect)
                if events:
                    t.add(ad, ms, 0, 0, 0, 0, *_events(ev, clicks + ev.choice([0, 1, 5, 30, 200])))
            elif events and ev.random() < p:
                t.add(ad, ms, 0, 0, 0, 0, *_events(ev, ev.choice([0, 1, 3, 40])))
    t.watermark = start + minutes * MIN - 5_000
    t.newest_event = start + minutes * MIN - 1_000
    return t


def _events(ev: random.Random, impressions: int) -> tuple[int, int, int, int, int]:
    """(suspect, invalid, impressions, conversions, conversion value) of one row's events."""
    conversions = ev.choice([0, 0, 0, 1, 2]) if impressions or ev.random() < 0.5 else 0
    if not impressions and not conversions:
        impressions = 1
    return 0, 0, impressions, conversions, conversions * ev.choice([1, 999_999, 12_500_000])


def sparse_truth(seed: int, start: int, days: int, ads: int = 12, rows_per_day: int = 40,
                 campaigns: int = 3) -> Truth:
    """Events on `rows_per_day` random (ad, minute) pairs per day over `days` days: long windows
    without a row for every minute."""
    rng = random.Random(seed)
    t = Truth()
    names = [f"ad-{i:03d}" for i in range(ads)]
    for i, ad in enumerate(names):
        t.campaign[ad], t.advertiser[ad] = f"cmp-{i % campaigns}", f"adv-{i % 2}"
    for day in range(days):
        for _ in range(rows_per_day):
            ad = names[min(int(rng.expovariate(0.4)), ads - 1)]  # skewed: the first ads lead
            minute = start + day * DAY + rng.randrange(DAY // MIN) * MIN
            clicks = rng.choice([0, 1, 2, 5, 20])
            billable = rng.randint(0, clicks)
            unit = rng.choice([1, 250_000, 1_500_000])
            impressions = clicks + rng.choice([0, 3, 50, 400])
            conversions = rng.choice([0, 0, 1, 3]) if clicks or impressions else 1
            t.add(ad, minute, clicks, billable, clicks * unit, billable * unit, 0, clicks - billable,
                  impressions, conversions, conversions * rng.choice([1, 4_000_000]))
    t.watermark = start + days * DAY - 5_000
    t.newest_event = start + days * DAY - 1_000
    return t


def _row(t: Truth, ad: str, res: str, bucket: int, v: tuple, version: int = 1) -> dict:
    return {"ad_id": ad, "campaign_id": t.campaign[ad], "advertiser_id": t.advertiser[ad],
            "resolution": res, "bucket_start": bucket, "version": version,
            **dict(zip(FIELDS, v))}


def level_rollup(t: Truth, level: str, resolution: str) -> dict[tuple[str, int], tuple[int, ...]]:
    """(campaign or advertiser, bucket) -> the sums of its ads' rows."""
    out: dict = defaultdict(lambda: ZERO)
    for (ad, b), v in t.rollup(resolution).items():
        key = (t.owner(level, ad), b)
        out[key] = tuple(a + c for a, c in zip(out[key], v))
    return dict(out)


def rollup_advertiser(t: Truth, resolution: str, campaign: str, bucket: int) -> str:
    """A campaign row's advertiser_id: the job's MAX over its ads' rows in the bucket."""
    step = RES[resolution]
    return max(t.advertiser[ad] for (ad, mn) in t.minute if t.campaign[ad] == campaign and mn - mn % step == bucket)


def leaderboards(t: Truth, resolution: str, m: int) -> dict[int, list[tuple[str, tuple]]]:
    """bucket -> the top-M (ad, values) by clicks desc, ad_id asc over every ad with a row in the
    bucket, clicks or not (what the Flink job keeps)."""
    if ("boards", resolution, m) not in t.memo:
        by_bucket: dict[int, list] = defaultdict(list)
        for (ad, b), v in t.rollup(resolution).items():
            by_bucket[b].append((ad, v))
        t.memo[("boards", resolution, m)] = {b: sorted(e, key=lambda x: (-x[1][0], x[0]))[:m]
                                             for b, e in by_bucket.items()}
    return {b: list(e) for b, e in t.memo[("boards", resolution, m)].items()}


def serving_items(t: Truth, m: int, tombstones: bool = True, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    changes: list[Change] = []
    rollups = {res: t.rollup(res) for res in RES}
    for res in RES:
        for (ad, b), v in rollups[res].items():
            changes.append(Change(AGG, True, {"kind": AGG, **_row(t, ad, res, b, v)}))
        for level, kind in LEVELS.items():
            for (entity, b), v in level_rollup(t, level, res).items():
                ids = ({"campaign_id": entity, "advertiser_id": rollup_advertiser(t, res, entity, b)}
                       if level == "campaign" else {"advertiser_id": entity})
                changes.append(Change(kind, True, {"kind": kind, "entity_id": entity, **ids, "resolution": res,
                                                   "bucket_start": b, "version": 1, **dict(zip(FIELDS, v))}))
    for res in ("1m", "1h", "1d"):
        for b, entries in leaderboards(t, res, m).items():
            listed = {ad for ad, _ in entries}
            for ad, v in entries:
                changes.append(Change(TOP, True, {"kind": TOP, **_row(t, ad, res, b, v, 3)}))
            if tombstones:  # ads that were on the board earlier and left it
                for ad in sorted(t.campaign):
                    if ad not in listed and rng.random() < 0.15:
                        v = rollups[res].get((ad, b), (1,) * len(FIELDS))
                        changes.append(Change(TOP, False, {"kind": TOP, **_row(t, ad, res, b, v, 2)}))
    items = [item_for(c, 8 * 86400) for c in changes]
    meta = {k: {"S": v} for k, v in freshness_key(0).items()}
    if t.watermark is not None:
        meta["wm"] = {"N": str(t.watermark)}
    if t.newest_event is not None:
        meta["me"] = {"N": str(t.newest_event)}
    items.append(meta)
    return items


def load(ddb, table: str, items: list[dict]) -> None:
    for i in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": it}} for it in items[i : i + 25]]
        while batch:
            resp = ddb.batch_write_item(RequestItems={table: batch})
            batch = resp.get("UnprocessedItems", {}).get(table, [])


def oracle_totals(t: Truth, start: int, end: int, metric: str, campaign: str | None = None,
                  advertiser: str | None = None) -> dict[str, int]:
    idx = FIELDS.index(METRIC_FIELD[metric])
    totals: dict[str, int] = defaultdict(int)
    for (ad, mnt), v in t.minute.items():
        if start <= mnt < end and (campaign is None or t.campaign[ad] == campaign) \
                and (advertiser is None or t.advertiser[ad] == advertiser):
            totals[ad] += v[idx]
    return dict(totals)


def oracle_top(t: Truth, start: int, end: int, k: int, metric: str, campaign=None, advertiser=None):
    totals = oracle_totals(t, start, end, metric, campaign, advertiser)
    ranked = sorted(((ad, v) for ad, v in totals.items() if v > 0), key=lambda x: (-x[1], x[0]))
    return ranked[:k], totals


def to_micros(value):
    """API value -> integer (cost strings '12.340000' -> micros); null (no bound) -> inf."""
    if value is None:
        return math.inf
    if isinstance(value, str):
        whole, _, frac = value.partition(".")
        return int(whole) * 1_000_000 + int(frac.ljust(6, "0"))
    return int(value)


def oracle_series(t: Truth, ad: str, res: str, frm: int, to: int, level: str = "ad") -> list[tuple]:
    """[(bucket_start, *FIELDS)] of every bucket the window [frm, to) touches, zero-filled: what a
    series answer of the ad (or, by `level`, of the campaign / advertiser: the sums of its ads'
    rows) must hold."""
    step = RES[res]
    start, end = frm - frm % step, -(-to // step) * step
    roll = t.rollup(res) if level == "ad" else level_rollup(t, level, res)
    return [(s, *roll.get((ad, s), ZERO)) for s in range(start, end, step)]


def answered_series(body: dict) -> list[tuple]:
    """The same tuples from a series answer's points (money back in micros)."""
    return [(p["bucket_start_ms"], *(to_micros(p[f.removesuffix("_micros")]) for f in FIELDS))
            for p in body["points"]]


def ratio_of(name: str, values: tuple) -> Fraction | None:
    """A ratio of FIELDS values, exact; None when its denominator is 0."""
    num, den, _ = RATIO_FIELDS[name]
    d = values[FIELDS.index(den)]
    return Fraction(values[FIELDS.index(num)], d) if d else None


def ratio_json(name: str, q: Fraction | None):
    """What the API must write for a ratio: null; money ratios rounded half up to the micro as a
    '0.250000' string; the others rounded half up to 6 decimals as a number (Decimal arithmetic:
    not the code's integer rounding)."""
    if q is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        exact = Decimal(q.numerator) / Decimal(q.denominator)
        if RATIO_FIELDS[name][2]:  # micros per unit
            micros = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
            return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
        return float(exact.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def point_ratios(values: tuple) -> dict:
    """Every ratio a point (or the totals) with these FIELDS values must carry."""
    return {name: ratio_json(name, ratio_of(name, values)) for name in RATIO_FIELDS}


def assert_series_ratios(body: dict, expected: list[tuple]) -> None:
    """Each point's ratios are those of its own counts, the totals' those of the sums."""
    for p, e in zip(body["points"], expected, strict=True):
        assert {n: p[n] for n in RATIO_FIELDS} == point_ratios(e[1:]), (p, e)
    sums = tuple(sum(e[i] for e in expected) for i in range(1, len(FIELDS) + 1))
    assert {n: body["totals"][n] for n in RATIO_FIELDS} == point_ratios(sums)
    assert tuple(to_micros(body["totals"][f.removesuffix("_micros")]) for f in FIELDS) == sums


def window_boards(t: Truth, start: int, end: int, m: int) -> list[list[tuple[str, tuple]]]:
    """The leaderboards a top-K over the minute-aligned window [start, end) has to read, found
    minute by minute: a minute whose whole UTC day lies in the window is answered by that day's
    1d board (once), else a minute whose whole hour lies in it by that hour's 1h board (once),
    every other minute by its own 1m board. A bucket without rows: empty board."""
    days, hours, minutes = [], [], []
    for minute in range(start, end, MIN):
        day, hour = minute - minute % DAY, minute - minute % HOUR
        if start <= day and day + DAY <= end:
            if day not in days:
                days.append(day)
        elif start <= hour and hour + HOUR <= end:
            if hour not in hours:
                hours.append(hour)
        else:
            minutes.append(minute)
    boards = {res: leaderboards(t, res, m) for res in ("1d", "1h", "1m")}
    return ([boards["1d"].get(d, []) for d in days] + [boards["1h"].get(h, []) for h in hours]
            + [boards["1m"].get(mn, []) for mn in minutes])


def decomposition_counts(start: int, end: int) -> dict[str, int]:
    """{"1d", "1h", "1m"}: how many buckets of each the window [start, end) is answered from."""
    days = {mn - mn % DAY for mn in range(start, end, MIN) if start <= mn - mn % DAY <= end - DAY}
    hours = {mn - mn % HOUR for mn in range(start, end, MIN)
             if mn - mn % DAY not in days and start <= mn - mn % HOUR <= end - HOUR}
    minutes = [mn for mn in range(start, end, MIN) if mn - mn % DAY not in days and mn - mn % HOUR not in hours]
    return {"1d": len(days), "1h": len(hours), "1m": len(minutes)}


MAX_COST_MICROS_PER_CLICK = 10_000 * 1_000_000  # ingest refuses a click that costs more than 10000


def oracle_bounds(t: Truth, start: int, end: int, m: int, metric: str, campaign=None,
                  advertiser=None) -> tuple[dict[str, int], dict[str, int], int]:
    """What the window's leaderboards alone prove about each ad's total, brute force:
    (lower, upper, unlisted). A board with at most 0.9*M entries lists every ad of its bucket; a
    fuller one may have dropped ads, each with at most the board's fewest clicks (for cost: that
    many clicks at the highest cost a click may have; impressions, conversions and conversion
    value: anything, inf). lower[ad]: the ad's listed values;
    upper[ad]: lower + the most it can have in the boards that do not list it; unlisted: the most
    an ad listed nowhere can have. Listed ads outside the filters are left out (an ad listed
    nowhere may pass them)."""
    idx = FIELDS.index(METRIC_FIELD[metric])
    boards = window_boards(t, start, end, m)
    room = []  # per board: the most an ad it does not list can have in its bucket
    for board in boards:
        if len(board) * 10 <= m * 9:
            room.append(0)
        else:
            fewest = min(v[0] for _, v in board)
            room.append(fewest * MAX_COST_MICROS_PER_CLICK if metric == "cost" else
                        fewest if metric in ("clicks", "billable_clicks") else math.inf)
    lower: dict[str, int] = defaultdict(int)
    listed_in: dict[str, set[int]] = defaultdict(set)
    for i, board in enumerate(boards):
        for ad, v in board:
            if (campaign is None or t.campaign[ad] == campaign) and (advertiser is None or t.advertiser[ad] == advertiser):
                lower[ad] += v[idx]
                listed_in[ad].add(i)
    upper = {ad: lower[ad] + sum(r for i, r in enumerate(room) if i not in listed_in[ad]) for ad in lower}
    return dict(lower), upper, sum(room)


def expected_top(t: Truth, start: int, end: int, k: int, metric: str, m: int, campaign=None,
                 advertiser=None) -> tuple[list[tuple[str, int, int]], bool, int]:
    """The answer the leaderboards allow, brute force: (items, exact, error_bound).
    items: the ads with the k largest lower bounds (ties: ad_id ascending; only lower > 0), as
    (ad, lower, upper). exact: the bounds prove ranking and totals: every returned ad's bounds
    are equal and no other ad can reach the k-th (an equal upper bound only for a listed ad whose
    id sorts after the k-th: an ad listed nowhere could have any id); with fewer than k returned,
    no other ad can have anything. error_bound (0 when exact): the largest of (upper - lower) of a
    returned ad and, per rank i, the i-th largest total any ad could have (k ads listed nowhere
    could each reach `unlisted`) minus the i-th returned total (0 past the last)."""
    lower, upper, unlisted = oracle_bounds(t, start, end, m, metric, campaign, advertiser)
    ranked = sorted((ad for ad in lower if lower[ad] > 0), key=lambda ad: (-lower[ad], ad))[:k]
    items = [(ad, lower[ad], upper[ad]) for ad in ranked]
    others = [ad for ad in lower if ad not in ranked]
    if len(ranked) < k:
        proven = unlisted == 0 and all(upper[ad] == 0 for ad in others)
    else:
        last = ranked[-1]
        proven = unlisted < lower[last] and all(
            upper[ad] < lower[last] or (upper[ad] == lower[last] and ad > last) for ad in others)
    if proven and all(lower[ad] == upper[ad] for ad in ranked):
        return items, True, 0
    best = sorted([upper[ad] for ad in lower] + [unlisted] * k, reverse=True)[:k]
    returned = [lower[ad] for ad in ranked] + [0] * (k - len(ranked))
    bound = max([b - r for b, r in zip(best, returned)] + [upper[ad] - lower[ad] for ad in ranked] + [0])
    return items, False, bound


def assert_top_sound(items: list[tuple[str, int, int]], exact: bool, error_bound: int, t: Truth,
                     start: int, end: int, k: int, metric: str, campaign=None, advertiser=None,
                     *, m: int | None = None) -> None:
    """items = [(ad_id, total, total_upper)] as returned. Exact: identical to the oracle's
    ranking and totals. Not exact: every returned total within error_bound of the truth (and a
    lower bound of it), and the oracle's i-th total within error_bound of the i-th returned.
    Given the leaderboard size `m` (the store holds `leaderboards(t, res, m)`), the answer must
    also be exactly what those leaderboards allow (expected_top): the same items and bounds,
    `exact` whenever the bounds prove the answer, and an error_bound no looser than they allow."""
    expected, totals = oracle_top(t, start, end, k, metric, campaign, advertiser)
    ctx = f"window [{start}, {end}) k={k} metric={metric} cmp={campaign} adv={advertiser} m={m}"
    if m is not None:
        lower, upper, unlisted = oracle_bounds(t, start, end, m, metric, campaign, advertiser)
        for ad, total in totals.items():  # the bounds hold for every ad's true total
            assert lower.get(ad, 0) <= total <= upper.get(ad, unlisted), (ctx, ad, total)
        assert (items, exact, error_bound) == expected_top(t, start, end, k, metric, m, campaign, advertiser), ctx
    if exact:
        assert [(a, v) for a, v, _ in items] == expected, ctx
        assert error_bound == 0 and all(v == u for _, v, u in items), ctx
        return
    assert error_bound >= 0
    for ad, v, upper in items:
        truth = totals.get(ad, 0)
        assert v <= truth <= upper, (ctx, ad, v, truth, upper)
        assert truth - v <= error_bound, (ctx, ad)
        assert v > 0
    assert [v for _, v, _ in items] == sorted((v for _, v, _ in items), reverse=True), ctx
    for i, (_, true_v) in enumerate(expected):
        returned = items[i][1] if i < len(items) else 0
        assert abs(true_v - returned) <= error_bound, (ctx, i, true_v, returned, error_bound)


def listed_ivt(t: Truth, start: int, end: int, m: int, campaign=None, advertiser=None) -> dict[str, tuple[int, int]]:
    """ad -> (suspect, invalid) summed over the entries that list it on the window's leaderboards
    (brute force, as oracle_bounds finds them): what a top-K item must carry."""
    out: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    s_idx, i_idx = FIELDS.index("suspect_clicks"), FIELDS.index("invalid_clicks")
    for board in window_boards(t, start, end, m):
        for ad, v in board:
            if (campaign is None or t.campaign[ad] == campaign) and (advertiser is None or t.advertiser[ad] == advertiser):
                out[ad] = (out[ad][0] + v[s_idx], out[ad][1] + v[i_idx])
    return dict(out)


def oracle_ivt_totals(t: Truth, start: int, end: int) -> tuple[int, int, int, int]:
    """(clicks, billable, suspect, invalid) of every ad over the minutes in [start, end)."""
    idx = [FIELDS.index(f) for f in ("clicks", "billable_clicks", "suspect_clicks", "invalid_clicks")]
    sums = [0, 0, 0, 0]
    for (_, mnt), v in t.minute.items():
        if start <= mnt < end:
            for j, i in enumerate(idx):
                sums[j] += v[i]
    return tuple(sums)


def oracle_ad_ivt(t: Truth, start: int, end: int) -> dict[str, tuple[int, int]]:
    """ad -> its true (suspect, invalid) over the minutes in [start, end)."""
    out: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    s_idx, i_idx = FIELDS.index("suspect_clicks"), FIELDS.index("invalid_clicks")
    for (ad, mnt), v in t.minute.items():
        if start <= mnt < end:
            out[ad] = (out[ad][0] + v[s_idx], out[ad][1] + v[i_idx])
    return dict(out)


def assert_item_ivt(items: list[tuple[str, int, int, int, int]], t: Truth, start: int, end: int,
                    campaign=None, advertiser=None, *, m: int | None = None) -> None:
    """items = [(ad_id, total, total_upper, suspect_clicks, invalid_clicks)] as returned. With the
    leaderboard size `m`: each ad's counts are the sums over the entries listing it, and its true
    counts whenever its total is proven (total == upper). Without (a store summing every row):
    always the true counts."""
    truth = oracle_ad_ivt(t, start, end)
    listed = listed_ivt(t, start, end, m, campaign, advertiser) if m is not None else truth
    for ad, total, upper, suspect, invalid in items:
        ctx = (ad, start, end, m, campaign, advertiser)
        assert (suspect, invalid) == listed.get(ad, (0, 0)), ctx
        if total == upper:
            assert (suspect, invalid) == truth.get(ad, (0, 0)), ctx


# --- top-K by a ratio ---------------------------------------------------------------------------

def volume_floor(name: str, min_volume: int) -> int:
    """min_volume in the denominator's unit: spend (roas) is given in whole currency units."""
    return min_volume * 1_000_000 if RATIO_FIELDS[name][1].endswith("_micros") else min_volume


def _passes(t: Truth, ad: str, campaign, advertiser) -> bool:
    return (campaign is None or t.campaign[ad] == campaign) and (advertiser is None or t.advertiser[ad] == advertiser)


def oracle_top_ratio(t: Truth, start: int, end: int, k: int, name: str, min_volume: int, campaign=None,
                     advertiser=None) -> list[tuple[str, Fraction, int, int]]:
    """Brute force over the minute truth: [(ad, ratio, numerator, denominator)] of the k ads with
    the largest ratio (ties: ad_id) among those whose denominator reaches the floor, ratio > 0."""
    num_i, den_i = (FIELDS.index(f) for f in RATIO_FIELDS[name][:2])
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (ad, mnt), v in t.minute.items():
        if start <= mnt < end and _passes(t, ad, campaign, advertiser):
            sums[ad][0] += v[num_i]
            sums[ad][1] += v[den_i]
    floor = volume_floor(name, min_volume)
    rows = [(ad, Fraction(n, d), n, d) for ad, (n, d) in sums.items() if d >= floor and n > 0]
    return sorted(rows, key=lambda r: (-r[1], r[0]))[:k]


def expected_top_ratio(t: Truth, start: int, end: int, k: int, name: str, min_volume: int, m: int,
                       campaign=None, advertiser=None) -> tuple[list[tuple], bool]:
    """What the window's leaderboards allow, brute force: ([(ad, ratio, upper, numerator,
    denominator)], exact). Exact iff every board is complete (<= 0.9 M entries): then the
    oracle's. Otherwise the listed sums ranked the same way; upper = the ratio for an ad listed on
    every truncated board (its sums are then its true ones), else inf (unknown)."""
    boards = window_boards(t, start, end, m)
    truncated = [i for i, b in enumerate(boards) if len(b) * 10 > m * 9]
    num_i, den_i = (FIELDS.index(f) for f in RATIO_FIELDS[name][:2])
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    listed_in: dict[str, set[int]] = defaultdict(set)
    for i, board in enumerate(boards):
        for ad, v in board:
            if _passes(t, ad, campaign, advertiser):
                sums[ad][0] += v[num_i]
                sums[ad][1] += v[den_i]
                listed_in[ad].add(i)
    floor = volume_floor(name, min_volume)
    rows = sorted(((ad, Fraction(n, d), n, d) for ad, (n, d) in sums.items() if d >= floor and n > 0),
                  key=lambda r: (-r[1], r[0]))[:k]
    items = [(ad, q, q if set(truncated) <= listed_in[ad] else math.inf, n, d) for ad, q, n, d in rows]
    if not truncated:
        assert [(ad, q, n, d) for ad, q, _, n, d in items] == oracle_top_ratio(
            t, start, end, k, name, min_volume, campaign, advertiser)
    return items, not truncated


def assert_top_ratio(body: dict, t: Truth, *, m: int | None) -> None:
    """A top-K answer by a ratio: with the leaderboard size `m`, exactly what the leaderboards
    allow (expected_top_ratio); without (a store summing every row), the oracle's, exact. Values as
    the API must write them (ratio_json); numerator and denominator as their metrics are written."""
    w, name = body["window"], body["metric"]
    args = (t, w["from_ms"], w["to_ms"], body["k"], name, body["min_volume"])
    filters = (body["filters"]["campaign_id"], body["filters"]["advertiser_id"])
    if m is None:
        items, exact = [(ad, q, q, n, d) for ad, q, n, d in oracle_top_ratio(*args, *filters)], True
    else:
        items, exact = expected_top_ratio(*args, m, *filters)
    assert body["exact"] is exact, body
    assert (body["error_bound"] is None) is (not exact) and (body["inexact_reason"] is None) is exact
    assert [(i["ad_id"], i["total"], i["total_upper"], to_micros(i["numerator"]), to_micros(i["denominator"]))
            for i in body["items"]] == [
        (ad, ratio_json(name, q), None if u == math.inf else ratio_json(name, u), n, d) for ad, q, u, n, d in items]
    if exact:
        assert body["error_bound"] in (0, 0.0, "0.000000")
    for i in body["items"]:  # the window's own ids
        assert (i["campaign_id"], i["advertiser_id"]) == (t.campaign[i["ad_id"]], t.advertiser[i["ad_id"]])
