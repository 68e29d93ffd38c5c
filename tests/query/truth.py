"""Ground truth for the query tests: random per-(ad, minute) aggregates, the serving items the
sink would hold for them (series at 1m/5m/1h/1d, 1m and 1h leaderboards truncated to M, some
tombstones, META), and brute-force oracles computed from the truth alone."""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from aggregate.changes import AGG, TOP, Change
from serving.keys import freshness_key
from serving.write.dynamodb import item_for

# Own copies of common.times' units/RESOLUTIONS on purpose: an oracle shares no code with what it checks.
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
RES = {"1m": MIN, "5m": 5 * MIN, "1h": HOUR, "1d": DAY}
FIELDS = ("clicks", "billable_clicks", "cost_micros", "billable_cost_micros", "suspect_clicks", "invalid_clicks")
ZERO = (0,) * len(FIELDS)
METRIC_FIELD = {"clicks": "clicks", "billable_clicks": "billable_clicks", "cost": "cost_micros"}


@dataclass
class Truth:
    """minute[(ad, minute_start)] = (clicks, billable, cost_micros, billable_cost_micros, suspect,
    invalid): billable = the valid clicks, so clicks = billable + suspect + invalid (random_truth
    keeps it; hand-made truths may not, the store does not check it)."""

    minute: dict[tuple[str, int], tuple[int, ...]] = field(default_factory=dict)
    campaign: dict[str, str] = field(default_factory=dict)
    advertiser: dict[str, str] = field(default_factory=dict)
    watermark: int | None = None
    newest_event: int | None = None

    def add(self, ad: str, minute: int, clicks: int, billable: int, cost: int, bcost: int,
            suspect: int = 0, invalid: int = 0) -> None:
        old = self.minute.get((ad, minute), ZERO)
        self.minute[(ad, minute)] = tuple(a + b for a, b in zip(old, (clicks, billable, cost, bcost, suspect, invalid)))

    def rollup(self, resolution: str) -> dict[tuple[str, int], tuple[int, ...]]:
        step = RES[resolution]
        out: dict = defaultdict(lambda: ZERO)
        for (ad, m), v in self.minute.items():
            key = (ad, m - m % step)
            out[key] = tuple(a + b for a, b in zip(out[key], v))
        return dict(out)


def random_truth(seed: int, start: int, minutes: int, ads: int = 20, hot_p: float = 0.9,
                 p: float = 0.1, campaigns: int = 3) -> Truth:
    rng = random.Random(seed)
    verdicts = random.Random(seed * 7919 + 17)  # its own stream: rng's sequence stays as before
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
    t.watermark = start + minutes * MIN - 5_000
    t.newest_event = start + minutes * MIN - 1_000
    return t


def _row(t: Truth, ad: str, res: str, bucket: int, v: tuple, version: int = 1) -> dict:
    return {"ad_id": ad, "campaign_id": t.campaign[ad], "advertiser_id": t.advertiser[ad],
            "resolution": res, "bucket_start": bucket, "version": version,
            **dict(zip(FIELDS, v))}


def leaderboards(t: Truth, resolution: str, m: int) -> dict[int, list[tuple[str, tuple]]]:
    """bucket -> the top-M (ad, values) by clicks desc, ad_id asc (what the Flink job keeps)."""
    by_bucket: dict[int, list] = defaultdict(list)
    for (ad, b), v in t.rollup(resolution).items():
        if v[0] > 0:
            by_bucket[b].append((ad, v))
    return {b: sorted(e, key=lambda x: (-x[1][0], x[0]))[:m] for b, e in by_bucket.items()}


def serving_items(t: Truth, m: int, tombstones: bool = True, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    changes: list[Change] = []
    rollups = {res: t.rollup(res) for res in RES}
    for res in RES:
        for (ad, b), v in rollups[res].items():
            changes.append(Change(AGG, True, {"kind": AGG, **_row(t, ad, res, b, v)}))
    for res in ("1m", "1h"):
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


def to_micros(value) -> int:
    """API value -> integer (cost strings '12.340000' -> micros)."""
    if isinstance(value, str):
        whole, _, frac = value.partition(".")
        return int(whole) * 1_000_000 + int(frac.ljust(6, "0"))
    return int(value)


def oracle_series(t: Truth, ad: str, res: str, frm: int, to: int) -> list[tuple]:
    """[(bucket_start, clicks, billable, cost_micros, billable_cost_micros, suspect, invalid)] of
    every bucket the window [frm, to) touches, zero-filled: what a series answer must hold."""
    step = RES[res]
    start, end = frm - frm % step, -(-to // step) * step
    roll = t.rollup(res)
    return [(s, *roll.get((ad, s), ZERO)) for s in range(start, end, step)]


def answered_series(body: dict) -> list[tuple]:
    """The same tuples from a series answer's points (money back in micros)."""
    return [(p["bucket_start_ms"], p["clicks"], p["billable_clicks"], to_micros(p["cost"]),
             to_micros(p["billable_cost"]), p["suspect_clicks"], p["invalid_clicks"]) for p in body["points"]]


def window_boards(t: Truth, start: int, end: int, m: int) -> list[list[tuple[str, tuple]]]:
    """The leaderboards a top-K over the minute-aligned window [start, end) has to read, found
    minute by minute: a minute whose whole hour lies in the window is answered by that hour's 1h
    board (once), every other minute by its own 1m board. A bucket without clicks: empty board."""
    hours, minutes = [], []
    for minute in range(start, end, MIN):
        hour = minute - minute % HOUR
        if start <= hour and hour + HOUR <= end:
            if hour not in hours:
                hours.append(hour)
        else:
            minutes.append(minute)
    boards = {res: leaderboards(t, res, m) for res in ("1h", "1m")}
    return [boards["1h"].get(h, []) for h in hours] + [boards["1m"].get(mn, []) for mn in minutes]


MAX_COST_MICROS_PER_CLICK = 10_000 * 1_000_000  # ingest refuses a click that costs more than 10000


def oracle_bounds(t: Truth, start: int, end: int, m: int, metric: str, campaign=None,
                  advertiser=None) -> tuple[dict[str, int], dict[str, int], int]:
    """What the window's leaderboards alone prove about each ad's total, brute force:
    (lower, upper, unlisted). A board with at most 0.9*M entries lists every ad of its bucket; a
    fuller one may have dropped ads, each with at most the board's fewest clicks (for cost: that
    many clicks at the highest cost a click may have). lower[ad]: the ad's listed values;
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
            room.append(fewest * MAX_COST_MICROS_PER_CLICK if metric == "cost" else fewest)
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
