"""What the dashboard must show, computed from the seeded rows (tests/web/seed.py), never from the
page's or the API's answers: brute force over `ServingSeeder.rows` (an ad's own buckets: what its
series and a campaign's rollup sum) and `ServingSeeder.boards` (which ads each leaderboard lists:
what a top-K merges), with the contract's definitions written out (docs/openapi.yaml):

* a top-K window [from, to) is read from the coarsest buckets that fit: whole UTC days (1d
  leaderboards), whole hours of the rest (1h), the edge minutes (1m); an ad's total is the sum of
  its entries on the boards that list it (exact when every truncated board lists it: a board is
  complete when it holds at most 0.9 x M entries); ranked by total (a ratio: by the exact quotient
  of the summed numerator and denominator, only ads whose denominator reaches min_volume and whose
  ratio is above 0), ties by ad id, totals above 0 only;
* ratios: ctr = billable clicks / impressions, cvr = conversions / billable clicks, cpa = spend /
  conversions, roas = conversion value / spend, spend = billable cost; numbers rounded half up to
  6 decimals, money to the micro; null over 0;
* the page shows a ratio as a percentage with 2 decimals, half up from the API's 6 decimals.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Optional

from tests.web.seed import DAY_MS, HOUR_MS, MINUTE_MS

RES_MS = {"1m": MINUTE_MS, "5m": 5 * MINUTE_MS, "1h": HOUR_MS, "1d": DAY_MS}
COLUMNS = {"clicks": "clicks", "billable_clicks": "billable_clicks", "cost": "cost_micros",
           "impressions": "impressions", "conversions": "conversions",
           "conversion_value": "conversion_value_micros"}
RATIO = {"ctr": ("billable_clicks", "impressions")}  # the ratios the page ranks by


def floor(ms: int, res: str) -> int:
    return ms - ms % RES_MS[res]


def ceil(ms: int, res: str) -> int:
    return -(-ms // RES_MS[res]) * RES_MS[res]


def half_up(q: Fraction) -> int:
    return int((q * 2 + 1) // 2)


def money(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def ratio(num: int, den: int, is_money: bool = False):
    """The API's JSON value of num / den (None over 0)."""
    if den == 0:
        return None
    q = Fraction(num, den)
    return money(half_up(q)) if is_money else half_up(q * 1_000_000) / 1_000_000


def pct_text(value: Optional[float]) -> str:
    """The page's text for a ctr / cvr value: 2 decimals of a percent, half up, from 6 decimals."""
    if value is None:
        return "—"
    micros = round(value * 1_000_000)
    hundredths = (micros + 50) // 100
    if hundredths == 0 and micros > 0:
        return "<0.01 %"
    return f"{hundredths // 100:,}.{hundredths % 100:02d} %"


def int_text(n: int) -> str:
    return f"{n:,}"


def money_text(value: Optional[str]) -> str:
    if value is None:
        return "—"
    micros = int(value.replace(".", ""))
    if micros != 0 and micros < 10_000:
        return value.rstrip("0")
    cents = (micros + 5_000) // 10_000
    return f"{cents // 100:,}.{cents % 100:02d}"


def roas_text(value: Optional[float]) -> str:
    if value is None:
        return "—"
    hundredths = (round(value * 1_000_000) + 5_000) // 10_000
    return f"{hundredths // 100:,}.{hundredths % 100:02d}"


def decompose(from_ms: int, to_ms: int) -> list[tuple[str, int]]:
    """(resolution, bucket start) of every leaderboard a top-K window reads."""
    out = []
    d0, d1 = ceil(from_ms, "1d"), floor(to_ms, "1d")
    days = list(range(d0, d1, DAY_MS)) if d0 < d1 else []
    rest = [(from_ms, d0), (d1, to_ms)] if days else [(from_ms, to_ms)]
    out += [("1d", d) for d in days]
    for a, b in rest:
        h0, h1 = ceil(a, "1h"), floor(b, "1h")
        if h0 < h1:
            out += [("1h", h) for h in range(h0, h1, HOUR_MS)]
            out += [("1m", m) for m in [*range(a, h0, MINUTE_MS), *range(h1, b, MINUTE_MS)]]
        else:
            out += [("1m", m) for m in range(a, b, MINUTE_MS)]
    return out


def truncated(seeder, res: str, bucket: int) -> bool:
    return len(seeder.boards.get((res, bucket), ())) * 10 > seeder.m * 9


# how much an ad a truncated board does not list can have, per listed entry's fewest clicks (the
# board is ordered by clicks; one click costs at most 10000 currency units); None: no bound
PER_CLICK = {"clicks": 1, "billable_clicks": 1, "cost_micros": 10_000 * 1_000_000}


def top(seeder, from_ms: int, to_ms: int, metric: str, k: int, min_volume: int = 100) -> tuple[list[dict], int]:
    """([{ad_id, rank, total, upper}], truncated boards in the window): the top-K the leaderboards
    give, `total` and `upper` as the API writes them (int, money string, ratio number; `upper`
    None when nothing bounds it, for a ratio: when its ratio is not proven)."""
    columns = RATIO.get(metric) or (COLUMNS[metric],)
    sums: dict[str, dict[str, int]] = {}
    slack: dict[str, list] = {}  # ad -> thresholds of the truncated boards not listing it
    cut = []
    for res, bucket in decompose(from_ms, to_ms):
        listed = seeder.boards.get((res, bucket), set())
        for ad in listed:
            row = seeder.rows[(ad, res, bucket)]
            s = sums.setdefault(ad, dict.fromkeys(columns, 0))
            for c in columns:
                s[c] += row[c]
        if truncated(seeder, res, bucket):
            fewest = min(seeder.rows[(ad, res, bucket)]["clicks"] for ad in listed)
            per_click = PER_CLICK.get(columns[0])  # (a ratio's bound is not used)
            cut.append((listed, None if per_click is None else fewest * per_click))

    def upper(ad: str):
        bounds = [t for listed, t in cut if ad not in listed]
        return None if None in bounds else sum(bounds)

    if metric in RATIO:
        num, den = columns
        q = {ad: Fraction(s[num], s[den]) for ad, s in sums.items() if s[den] >= min_volume and s[num] > 0}
        ranked = sorted(q, key=lambda ad: (-q[ad], ad))[:k]
        out = []
        for i, ad in enumerate(ranked):
            value = ratio(sums[ad][num], sums[ad][den])
            out.append({"ad_id": ad, "rank": i + 1, "total": value,
                        "upper": value if all(ad in listed for listed, _ in cut) else None})
        return out, len(cut)
    col = columns[0]
    as_api = (lambda v: money(v)) if col.endswith("_micros") else (lambda v: v)
    ranked = sorted((ad for ad, s in sums.items() if s[col] > 0), key=lambda ad: (-sums[ad][col], ad))[:k]
    out = []
    for i, ad in enumerate(ranked):
        extra = upper(ad)
        out.append({"ad_id": ad, "rank": i + 1, "total": as_api(sums[ad][col]),
                    "upper": None if extra is None else as_api(sums[ad][col] + extra)})
    return out, len(cut)


def series_totals(seeder, res: str, from_ms: int, to_ms: int, *, ad: Optional[str] = None,
                  campaign: Optional[str] = None) -> dict:
    """An ad's (or a campaign's: its ads') metrics over [from, to) at `res`, as the API's totals."""
    s: dict[str, int] = {}
    for (a, r, b), row in seeder.rows.items():
        if r != res or not from_ms <= b < to_ms:
            continue
        if (ad is not None and a != ad) or (campaign is not None and seeder.ids[a][0] != campaign):
            continue
        for c, v in row.items():
            s[c] = s.get(c, 0) + v
    return totals_json(s)


def totals_json(s: dict) -> dict:
    g = lambda c: s.get(c, 0)  # noqa: E731
    spend = g("billable_cost_micros")
    return {"clicks": g("clicks"), "billable_clicks": g("billable_clicks"), "cost": money(g("cost_micros")),
            "billable_cost": money(spend), "impressions": g("impressions"), "conversions": g("conversions"),
            "conversion_value": money(g("conversion_value_micros")),
            "ctr": ratio(g("billable_clicks"), g("impressions")), "cvr": ratio(g("conversions"), g("billable_clicks")),
            "cpa": ratio(spend, g("conversions"), is_money=True), "roas": ratio(g("conversion_value_micros"), spend)}


def history_totals(hours, today_start_ms: int, from_ms: int, to_ms: int, *, ad: Optional[str] = None,
                   campaign: Optional[str] = None) -> dict:
    """The same totals straight from seed.HISTORY's hours (for ads and campaigns that only have those)."""
    s: dict[str, int] = {}
    for h in hours:
        if not from_ms <= h.event_ms(today_start_ms) < to_ms:
            continue
        if (ad is not None and h.ad_id != ad) or (campaign is not None and h.campaign_id != campaign):
            continue
        for c, v in h.counters().items():
            s[c] = s.get(c, 0) + v
    return totals_json(s)


# ---- issue 20: the campaign budget panel (docs/budget.md), from the test's own clicks and budgets

def price_micros(cost: str) -> int:
    """A click's `cost` (currency units, up to 6 decimals) in micros, exactly."""
    whole, _, frac = cost.partition(".")
    return int(whole) * 1_000_000 + int((frac + "000000")[:6])


def fraction_text(f: float) -> str:
    """The page's serve fraction: a percentage, 2 decimals unless whole ("100 %", "52.08 %")."""
    hundredths = round(f * 10_000)
    return f"{hundredths // 100} %" if hundredths % 100 == 0 else f"{hundredths / 100:.2f} %"


STALE_AFTER_MS, EMIT_INTERVAL_MS, CACHE_TTL_MS = 10_000, 500, 1_000  # BudgetSettings' defaults (the local stack's)


def budget_panel(bc, clicks: list[dict], day_start_ms: int) -> dict:
    """What the panel must show for a budgeted campaign with a fresh figure: today's spend (its valid
    clicks' prices), what remains of the budget in force (the last PUT: its revision is the number
    of PUTs), and the decision where the time of day cannot change it: `stop` / `exhausted` once
    nothing remains; `serve` / `asap` for an asap campaign whose remainder exceeds any margin its
    spend could make (docs/budget.md: margin = velocity x (age + emit interval + cache); velocity is
    at most today's spend over 60 s, since every rate window spans at least a minute). None for an
    even campaign with money left: its decision depends on the time of day."""
    spent = sum(price_micros(c["cost"]) for c in clicks
                if c["campaign_id"] == bc.campaign_id and day_start_ms <= c["event_time"] < day_start_ms + DAY_MS)
    budget = bc.budget
    daily, lifetime = budget["daily_budget_micros"], budget.get("lifetime_budget_micros")
    remaining = daily - spent
    if lifetime is not None:  # the campaign spent only today
        remaining = min(remaining, lifetime - spent)
    pacing = budget.get("pacing", "even")
    worst_margin = -(-spent * (STALE_AFTER_MS + EMIT_INTERVAL_MS + CACHE_TTL_MS) // 60_000)
    if remaining <= 0:
        decision = ("stop", 0, "exhausted")
    elif pacing == "asap" and remaining > worst_margin:
        decision = ("serve", 1, "asap")
    else:
        decision = None
    return {"spent": spent, "remaining": max(remaining, 0), "daily": daily, "lifetime": lifetime,
            "pacing": pacing, "revision": len(bc.puts), "decision": decision}
