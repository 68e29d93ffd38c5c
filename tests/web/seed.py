"""Serving-table contents for the dashboard tests, written the way the sink writes them: every
aggregate, rollup and leaderboard row goes through DynamoDBServingStore.apply (versioned
conditional puts), freshness through advance_freshness. Clicks come from the load generator
(tools.loadgen) and their rows are its brute-force truth (local.oracle.realtime_truth), so no code
under test decides the numbers; impressions and conversions are made here from those clicks
(`events_for`), older days' traffic is given as per-hour counts (`HISTORY`). `add()` can be called
again (more clicks later): changed rows get a newer version, leaderboards are recomputed and ads
that fell off a board get a tombstone, as the Flink job's changelog would do.

Rows are kept per (ad, resolution, bucket) in `rows` (every serving metric, serving.table.METRICS);
a campaign's and an advertiser's rollup is the sum of their ads' rows (written as the job's
'campaign' / 'advertiser' rows). Leaderboards (1m, 1h, 1d) list the top `leaderboard_size` rows
of a bucket by clicks, then ad id, impression- or conversion-only rows (0 clicks) included, as the
job's ROW_NUMBER() does; `boards` records which ads each lists."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from aggregate.changes import ADVERTISER, AGG, CAMPAIGN, TOP, Change
from local.oracle import RES_MS, realtime_truth
from serving.table import METRICS
from serving.write.dynamodb import DynamoDBServingStore

LEADERBOARD_RES = ("1m", "1h", "1d")
WATERMARK_DELAY_MS = 5_000
DAY_MS, HOUR_MS, MINUTE_MS = 86_400_000, 3_600_000, 60_000


@dataclass(frozen=True)
class Hour:
    """One ad's traffic in one hour of an older day: its counts, put in one minute of that hour
    (so every resolution's bucket holds all of it)."""

    days_ago: int
    hour: int
    ad_id: str
    campaign_id: str
    advertiser_id: str
    clicks: int
    billable_clicks: int  # the rest are suspect
    impressions: int
    conversions: int
    conversion_value_micros: int
    cpc_micros: int  # every click's price

    def event_ms(self, today_start_ms: int) -> int:
        return today_start_ms - self.days_ago * DAY_MS + self.hour * HOUR_MS + 17 * MINUTE_MS

    def counters(self) -> dict:
        return {"clicks": self.clicks, "billable_clicks": self.billable_clicks,
                "suspect_clicks": self.clicks - self.billable_clicks, "invalid_clicks": 0,
                "cost_micros": self.clicks * self.cpc_micros,
                "billable_cost_micros": self.billable_clicks * self.cpc_micros,
                "impressions": self.impressions, "conversions": self.conversions,
                "conversion_value_micros": self.conversion_value_micros}


# Older days: 3 days ago is inside 7d and 30d, 20 days ago only inside 30d. These ads outrank the
# load's (its busiest ad has about 700 clicks), so 24h, 7d and 30d rank differently; ad-h01 and
# ad-h05 tie over 30d (1800 clicks: ad_id decides). Every older day has at most 4 ads: its
# boards are complete. cmp-h1's ads: ad-h01, ad-h02 (its 7d and 30d totals differ by day -20).
HISTORY = (
    Hour(3, 9, "ad-h01", "cmp-h1", "adv-h", 1200, 1150, 30_000, 40, 40 * 25_500_000, 400_000),
    Hour(3, 10, "ad-h02", "cmp-h1", "adv-h", 1000, 990, 12_500, 25, 25 * 18_000_000, 350_000),
    Hour(3, 11, "ad-h03", "cmp-h2", "adv-h", 900, 880, 45_000, 9, 9 * 40_000_000, 500_000),
    Hour(3, 12, "ad-0003", "cmp-000", "adv-00", 300, 290, 6_000, 6, 6 * 10_000_000, 250_000),
    Hour(20, 8, "ad-h04", "cmp-h2", "adv-h", 2000, 1900, 80_000, 30, 30 * 22_000_000, 300_000),
    Hour(20, 9, "ad-h05", "cmp-h3", "adv-h2", 1800, 1790, 20_000, 12, 12 * 15_000_000, 450_000),
    Hour(20, 10, "ad-h01", "cmp-h1", "adv-h", 600, 600, 10_000, 5, 5 * 25_500_000, 400_000),
)

# Impressions and conversions of the load's clicks (events_for): each click was served with
# IMPRESSIONS_BASE + (ad number % IMPRESSIONS_SPREAD) impressions at its event time (so CTR differs
# per ad), and every CONVERSION_EVERY-th click (by click_id) converted CONVERSION_DELAY_MS later.
IMPRESSIONS_BASE, IMPRESSIONS_SPREAD = 4, 5
CONVERSION_EVERY, CONVERSION_DELAY_MS = 13, 30_000


def events_for(clicks: list[dict]) -> list[dict]:
    """The impressions and conversions the dashboard test seeds with the load's clicks."""
    events = []
    for i, c in enumerate(sorted(clicks, key=lambda c: c["click_id"])):
        ids = {"ad_id": c["ad_id"], "campaign_id": c["campaign_id"], "advertiser_id": c["advertiser_id"]}
        n = IMPRESSIONS_BASE + int(c["ad_id"].rsplit("-", 1)[1]) % IMPRESSIONS_SPREAD
        events += [{"type": "impression", "event_time": c["event_time"], **ids}] * n
        if i % CONVERSION_EVERY == 0:
            events.append({"type": "conversion", "event_time": c["event_time"] + CONVERSION_DELAY_MS,
                           "value_micros": (i % 40 + 1) * 1_000_000 + 500_000, **ids})
    return events


class ServingSeeder:
    def __init__(self, store: DynamoDBServingStore, leaderboard_size: int):
        self.store, self.m = store, leaderboard_size
        self.rows: dict[tuple[str, str, int], dict] = {}  # (ad, res, bucket) -> METRICS
        self.ids: dict[str, tuple[str, str]] = {}  # ad -> (campaign, advertiser)
        self.versions: dict[tuple, int] = defaultdict(int)
        self.boards: dict[tuple[str, int], set[str]] = {}  # (res, bucket) -> ads listed
        self.newest_ms: int | None = None

    def _version(self, key: tuple) -> int:
        self.versions[key] += 1
        return self.versions[key]

    def _row(self, ad: str, res: str, bucket: int, counters: dict, key: tuple) -> dict:
        campaign, advertiser = self.ids[ad]
        return {"ad_id": ad, "campaign_id": campaign, "advertiser_id": advertiser, "resolution": res,
                "bucket_start": bucket, "version": self._version(key), **counters}

    def rollup(self, level: str, entity: str, res: str, bucket: int) -> dict:
        """A campaign's or advertiser's bucket: the sum of its ads' rows."""
        pos = 0 if level == CAMPAIGN else 1
        out = dict.fromkeys(METRICS, 0)
        for (ad, r, b), row in self.rows.items():
            if r == res and b == bucket and self.ids[ad][pos] == entity:
                for k in METRICS:
                    out[k] += row[k]
        return out

    def add(self, clicks: list[dict] = (), events: list[dict] = (), hours: tuple[Hour, ...] = (),
            today_start_ms: int | None = None) -> int:
        """Fold these clicks, events and older hours in and write every row they change; returns
        the number of writes."""
        delta: dict = defaultdict(lambda: dict.fromkeys(METRICS, 0))
        for c in clicks:
            self.ids[c["ad_id"]] = (c["campaign_id"], c["advertiser_id"])
        if clicks:
            for key, d in realtime_truth(list(clicks), set()).items():
                for k, v in d.items():
                    delta[key][k] += v
        for e in events:
            self.ids.setdefault(e["ad_id"], (e["campaign_id"], e["advertiser_id"]))
            counters = ({"impressions": 1} if e["type"] == "impression"
                        else {"conversions": 1, "conversion_value_micros": e["value_micros"]})
            self._fold(delta, e["ad_id"], e["event_time"], counters)
        for h in hours:
            self.ids[h.ad_id] = (h.campaign_id, h.advertiser_id)
            self._fold(delta, h.ad_id, h.event_ms(today_start_ms), h.counters())

        changes: list[Change] = []
        touched: set[tuple[str, int]] = set()
        rollups: set[tuple[str, str, str, int]] = set()
        for (ad, res, bucket), d in sorted(delta.items()):
            row = self.rows.setdefault((ad, res, bucket), dict.fromkeys(METRICS, 0))
            for k, v in d.items():
                row[k] += v
            changes.append(Change(AGG, True, {"kind": AGG, **self._row(ad, res, bucket, dict(row), ("agg", ad, res, bucket))}))
            rollups.add((CAMPAIGN, self.ids[ad][0], res, bucket))
            rollups.add((ADVERTISER, self.ids[ad][1], res, bucket))
            if res in LEADERBOARD_RES:
                touched.add((res, bucket))
        for level, entity, res, bucket in sorted(rollups):
            campaign, advertiser = (entity, self._advertiser_of(entity)) if level == CAMPAIGN else (None, entity)
            changes.append(Change(level, True, {
                "kind": level, "campaign_id": campaign, "advertiser_id": advertiser, "resolution": res,
                "bucket_start": bucket, "version": self._version((level, entity, res, bucket)),
                **self.rollup(level, entity, res, bucket)}))
        for res, bucket in sorted(touched):
            entries = [(ad, row) for (ad, r, b), row in self.rows.items() if r == res and b == bucket]
            board = sorted(entries, key=lambda e: (-e[1]["clicks"], e[0]))[: self.m]
            listed = {ad for ad, _ in board}
            for ad, row in board:
                changes.append(Change(TOP, True, {"kind": TOP, **self._row(ad, res, bucket, dict(row), ("top", ad, res, bucket))}))
            for ad in sorted(self.boards.get((res, bucket), set()) - listed):  # fell off the board
                row = self.rows[(ad, res, bucket)]
                changes.append(Change(TOP, False, {"kind": TOP, **self._row(ad, res, bucket, dict(row), ("top", ad, res, bucket))}))
            self.boards[(res, bucket)] = listed
        errors = [e for e in self.store.apply_many(changes) if e is not None]
        if errors:
            raise errors[0]
        times = [c["event_time"] for c in clicks] + [e["event_time"] for e in events]
        if times:
            newest = max(times)
            self.newest_ms = max(newest, self.newest_ms or newest)
            self.store.advance_freshness(self.newest_ms - WATERMARK_DELAY_MS, self.newest_ms)
        return len(changes)

    @staticmethod
    def _fold(delta: dict, ad: str, event_ms: int, counters: dict) -> None:
        for res, span in RES_MS.items():
            row = delta[(ad, res, event_ms - event_ms % span)]
            for k, v in counters.items():
                row[k] += v

    def _advertiser_of(self, campaign: str) -> str:
        return next(adv for cmp, adv in self.ids.values() if cmp == campaign)


# Issue 20, the campaign view's budget panel: campaigns with a budget (set by the test through
# PUT /v1/campaigns/{id}/budget on the local API) and today's clicks, whose spend rows and pulse
# are written as the sink writes the Flink job's `spend` and `pulse` rows (docs/budget.md).
@dataclass(frozen=True)
class BudgetCampaign:
    campaign_id: str
    ad_id: str
    advertiser_id: str
    puts: tuple  # the PUT bodies, in order: the last is in force, its revision = len(puts)
    prices: tuple  # one click per price (ingest's `cost`: currency units, up to 6 decimals)

    @property
    def budget(self) -> dict:
        return self.puts[-1]


BUDGET_CAMPAIGNS = (
    # asap, spend far below the daily budget: served (its lifetime budget caps nothing today)
    BudgetCampaign("cmp-b1", "ad-b01", "adv-b",
                   ({"daily_budget_micros": 20_000_000, "pacing": "even"},
                    {"daily_budget_micros": 25_000_000, "lifetime_budget_micros": 500_000_000, "pacing": "asap"}),
                   ("0.250000", "1.337500", "0.125001", "2.500000", "0.999999", "0.400000", "3.000000",
                    "0.050000", "1.234567", "0.750000", "0.333333", "2.000000")),
    # even pacing, today's spend past the daily budget: stopped, nothing remains
    BudgetCampaign("cmp-b2", "ad-b02", "adv-b", ({"daily_budget_micros": 2_000_000},),
                   ("0.800000", "0.900000", "0.700001")),
)
NO_BUDGET_CAMPAIGN = "cmp-000"  # one of the load's campaigns: never given a budget


def budget_clicks(bc: BudgetCampaign, now_ms: int) -> list[dict]:
    """One valid click per price (distinct users, no shared ip or agent: no IVT rule applies),
    spread over the last 3 minutes before `now_ms` and never before today's start (UTC)."""
    day_start = now_ms - now_ms % DAY_MS
    first = max(day_start, now_ms - 3 * MINUTE_MS)
    last = max(first, now_ms - 5_000)
    n = len(bc.prices)
    return [{"click_id": f"{bc.campaign_id}-{i}", "ad_id": bc.ad_id, "campaign_id": bc.campaign_id,
             "advertiser_id": bc.advertiser_id, "user_id": f"u-{bc.campaign_id}-{i}",
             "event_time": first + (last - first) * i // max(n - 1, 1), "cost": price}
            for i, price in enumerate(bc.prices)]


def spend_changes(campaign_id: str, clicks: list[dict]) -> list[Change]:
    """The Flink job's `spend` rows of these (valid) clicks: the campaign's billable cost and clicks
    per UTC day ('1d') and per minute ('1m'), version 1 (written once)."""
    sums: dict = defaultdict(lambda: [0, 0])
    for c in clicks:
        micros = int(Decimal(c["cost"]) * 1_000_000)
        for res, span in (("1d", DAY_MS), ("1m", MINUTE_MS)):
            s = sums[(res, c["event_time"] - c["event_time"] % span)]
            s[0] += 1
            s[1] += micros
    return [Change("spend", True, {"kind": "spend", "resolution": res, "bucket_start": bucket,
                                   "entity_id": campaign_id, "campaign_id": campaign_id,
                                   "billable_clicks": n, "billable_cost_micros": micros, "version": 1})
            for (res, bucket), (n, micros) in sorted(sums.items())]


def pulse_change(at_ms: int) -> Change:
    """The job's pulse row: its processing time, the age of everything the budget lane has seen."""
    return Change("pulse", True, {"kind": "pulse", "entity_id": "pulse", "bucket_start": at_ms, "version": at_ms})
