"""The browser test's oracle (tests/web/expected.py) on hand-computed cases: a window's leaderboard
buckets, the page's texts for ratios and money, and a top-K over a few hand-made boards."""
from __future__ import annotations

from datetime import datetime, timezone

from tests.web import expected as X
from tests.web.seed import Hour


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp() * 1000)


def test_decompose_30_days_off_the_hour():
    buckets = X.decompose(_ms("2026-01-01T10:30:00"), _ms("2026-01-31T10:30:00"))
    by = {res: [b for r, b in buckets if r == res] for res in ("1d", "1h", "1m")}
    assert (len(by["1d"]), len(by["1h"]), len(by["1m"])) == (29, 23, 60)  # 01-02..01-30; 11-23h + 0-9h; 2 x 30 min
    assert by["1d"][0] == _ms("2026-01-02T00:00:00") and by["1d"][-1] == _ms("2026-01-30T00:00:00")
    assert by["1m"][0] == _ms("2026-01-01T10:30:00") and by["1m"][-1] == _ms("2026-01-31T10:29:00")


def test_decompose_inside_one_hour_and_one_day():
    assert X.decompose(_ms("2026-01-01T10:05:00"), _ms("2026-01-01T10:08:00")) == [
        ("1m", _ms("2026-01-01T10:05:00")), ("1m", _ms("2026-01-01T10:06:00")), ("1m", _ms("2026-01-01T10:07:00"))]
    got = X.decompose(_ms("2026-01-01T09:59:00"), _ms("2026-01-01T12:01:00"))
    assert got == [("1h", _ms("2026-01-01T10:00:00")), ("1h", _ms("2026-01-01T11:00:00")),
                   ("1m", _ms("2026-01-01T09:59:00")), ("1m", _ms("2026-01-01T12:00:00"))]


def test_texts():
    assert X.pct_text(0.052632) == "5.26 %" and X.pct_text(0.05265) == "5.27 %" and X.pct_text(None) == "—"
    assert X.pct_text(0.000049) == "<0.01 %" and X.pct_text(12.5) == "1,250.00 %"
    assert X.money_text("11.805000") == "11.81" and X.money_text("0.000250") == "0.00025" and X.money_text("0.000000") == "0.00"
    assert X.money_text("1234567.995000") == "1,234,568.00"
    assert X.roas_text(3.125) == "3.13" and X.roas_text(None) == "—"
    assert X.ratio(1, 3) == 0.333333 and X.ratio(2, 3) == 0.666667 and X.ratio(1, 0) is None
    assert X.ratio(10_000_001, 3, is_money=True) == "3.333334"


class _Seeder:  # the two things expected.top reads: rows and which ads each board lists
    def __init__(self, m: int):
        self.m, self.rows, self.boards = m, {}, {}

    def board(self, res: str, bucket: int, rows: dict, listed: set):
        for ad, (clicks, billable, imps, conv) in rows.items():
            self.rows[(ad, res, bucket)] = {"clicks": clicks, "billable_clicks": billable, "impressions": imps,
                                            "conversions": conv, "cost_micros": clicks * 500_000,
                                            "conversion_value_micros": 0}
        self.boards[(res, bucket)] = listed


def test_top_over_a_truncated_and_a_complete_board():
    s = _Seeder(m=2)  # complete with at most 1 entry (0.9 x 2)
    t0 = _ms("2026-01-01T10:00:00")
    # minute 1: truncated (a, b listed; c not: at most b's 3 clicks); minute 2: complete (c alone)
    s.board("1m", t0, {"a": (9, 8, 100, 1), "b": (3, 3, 50, 0), "c": (2, 2, 10, 5)}, {"a", "b"})
    s.board("1m", t0 + 60_000, {"c": (4, 4, 20, 1)}, {"c"})
    items, cut = X.top(s, t0, t0 + 120_000, "clicks", 3)
    assert cut == 1
    assert items == [{"ad_id": "a", "rank": 1, "total": 9, "upper": 9},
                     {"ad_id": "c", "rank": 2, "total": 4, "upper": 7},  # + 3 from the truncated minute
                     {"ad_id": "b", "rank": 3, "total": 3, "upper": 3}]
    conv, _ = X.top(s, t0, t0 + 120_000, "conversions", 3)
    assert conv == [{"ad_id": "a", "rank": 1, "total": 1, "upper": 1},
                    {"ad_id": "c", "rank": 2, "total": 1, "upper": None}]  # unbounded on the truncated board
    ctr, _ = X.top(s, t0, t0 + 120_000, "ctr", 3, min_volume=20)
    assert ctr == [{"ad_id": "c", "rank": 1, "total": 0.2, "upper": None},  # 4 / 20 over its listed bucket only
                   {"ad_id": "a", "rank": 2, "total": 0.08, "upper": 0.08}, {"ad_id": "b", "rank": 3, "total": 0.06, "upper": 0.06}]
    assert X.top(s, t0, t0 + 120_000, "cost", 1)[0] == [{"ad_id": "a", "rank": 1, "total": "4.500000", "upper": "4.500000"}]


def test_history_hour_counters():
    h = Hour(3, 9, "ad-x", "cmp-x", "adv-x", 10, 8, 200, 2, 5_000_000, 250_000)
    today = _ms("2026-01-10T00:00:00")
    assert h.event_ms(today) == _ms("2026-01-07T09:17:00")
    assert h.counters() == {"clicks": 10, "billable_clicks": 8, "suspect_clicks": 2, "invalid_clicks": 0,
                            "cost_micros": 2_500_000, "billable_cost_micros": 2_000_000, "impressions": 200,
                            "conversions": 2, "conversion_value_micros": 5_000_000}
    t = X.history_totals([h], today, today - 7 * X.DAY_MS, today, campaign="cmp-x")
    assert (t["clicks"], t["ctr"], t["cpa"], t["roas"]) == (10, 0.04, "1.000000", 2.5)


def test_budget_panel_expectations_by_hand():
    from tests.web.seed import BUDGET_CAMPAIGNS, budget_clicks, spend_changes

    b1, b2 = BUDGET_CAMPAIGNS
    now = _ms("2026-12-06T10:00:30")
    clicks = budget_clicks(b1, now) + budget_clicks(b2, now)
    assert X.price_micros("0.125001") == 125_001 and X.price_micros("3") == 3_000_000 and X.price_micros("0.5") == 500_000
    assert X.fraction_text(1) == "100 %" and X.fraction_text(0) == "0 %" and X.fraction_text(0.5208) == "52.08 %"
    # cmp-b1: 12 prices summing to 12.980400; 25.00 daily (its second PUT), lifetime 500.00 spent only today
    assert X.budget_panel(b1, clicks, _ms("2026-12-06T00:00:00")) == {
        "spent": 12_980_400, "remaining": 12_019_600, "daily": 25_000_000, "lifetime": 500_000_000, "pacing": "asap",
        "revision": 2, "decision": ("serve", 1, "asap")}  # worst margin 12,980,400 x 11.5 s / 60 s = 2,487,910
    assert X.budget_panel(b2, clicks, _ms("2026-12-06T00:00:00")) == {
        "spent": 2_400_001, "remaining": 0, "daily": 2_000_000, "lifetime": None, "pacing": "even", "revision": 1,
        "decision": ("stop", 0, "exhausted")}
    assert X.budget_panel(b1, clicks, _ms("2026-12-07T00:00:00"))["spent"] == 0  # another day's spend
    # the clicks lie in the last 3 minutes, today; just after midnight they start at midnight
    assert all(now - 3 * 60_000 <= c["event_time"] <= now - 5_000 for c in clicks)
    early = budget_clicks(b2, _ms("2026-12-06T00:01:00"))
    assert min(c["event_time"] for c in early) == _ms("2026-12-06T00:00:00")
    # the spend rows: one day row, one row per minute, the same total
    rows = [c.row for c in spend_changes("cmp-b2", budget_clicks(b2, now))]
    assert [r["resolution"] for r in rows].count("1d") == 1
    assert sum(r["billable_cost_micros"] for r in rows if r["resolution"] == "1m") == 2_400_001
    assert all(r["kind"] == "spend" and r["entity_id"] == "cmp-b2" for r in rows)
