"""Top-K merge (pure) against a brute-force oracle over random truth, and its exactness rules:
summed metrics (clicks .. conversion_value) and ratios (ctr, cvr, cpc, cpa, roas)."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from query.ratios import RATIOS
from query.topk import INF, Entry, Leaderboard, format_value, merge_top_ratio, merge_topk, micros_to_decimal
from query.windows import Window, decompose
from tests.query.truth import (HOUR, MIN, DAY, RATIO_FIELDS, assert_item_ivt, assert_top_sound, expected_top_ratio,
                               leaderboards, random_truth)

T0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY - 2 * HOUR  # 22:00 the day before


def boards_for(t, window: Window, m: int) -> list[Leaderboard]:
    d = decompose(window)
    out = []
    for res, buckets in d.by_resolution().items():
        lbs = leaderboards(t, res, m)
        for b in buckets:
            out.append(Leaderboard(res, b, [
                Entry(ad, *v, campaign_id=t.campaign[ad], advertiser_id=t.advertiser[ad]) for ad, v in lbs.get(b, [])]))
    return out


def run(t, window, k, metric, m, campaign=None, advertiser=None):
    r = merge_topk(boards_for(t, window, m), k, metric, m, campaign, advertiser)
    items = [(i.ad_id, i.total, i.upper) for i in r.items]
    assert_top_sound(items, r.exact, r.error_bound, t, window.start, window.end, k, metric, campaign, advertiser,
                     m=m)
    assert_item_ivt([(i.ad_id, i.total, i.upper, i.suspect_clicks, i.invalid_clicks) for i in r.items], t,
                    window.start, window.end, campaign, advertiser, m=m)
    return r


@settings(max_examples=250, deadline=None)
@given(seed=st.integers(0, 10_000), ads=st.integers(1, 12), p=st.floats(0.02, 0.6),
       m=st.integers(1, 8), start=st.integers(0, 200), length=st.integers(1, 240),
       k=st.integers(1, 6), metric=st.sampled_from(["clicks", "billable_clicks", "cost"]),
       filt=st.sampled_from([None, "cmp", "adv"]))
def test_merge_matches_oracle(seed, ads, p, m, start, length, k, metric, filt):
    t = random_truth(seed, T0, 4 * 60, ads=ads, p=p, hot_p=max(p, 0.5), campaigns=2)
    window = Window(T0 + start * MIN, T0 + (start + length) * MIN)
    run(t, window, k, metric, m, campaign="cmp-0" if filt == "cmp" else None,
        advertiser="adv-1" if filt == "adv" else None)


# events on: rows with impressions / conversions beside the clicks, and rows of an ad without
# clicks (entries with clicks = 0); windows of up to 50 h over 76 h of data starting 22:00, so a
# quarter of them hold a whole UTC day (its 1d board)
EVENT_METRICS = ["clicks", "billable_clicks", "cost", "impressions", "conversions", "conversion_value"]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), ads=st.integers(1, 12), p=st.floats(0.02, 0.5),
       m=st.integers(1, 10), start=st.integers(0, 26 * 60), length=st.integers(1, 50 * 60),
       k=st.integers(1, 6), metric=st.sampled_from(EVENT_METRICS), filt=st.sampled_from([None, "cmp", "adv"]))
def test_merge_with_events_matches_oracle(seed, ads, p, m, start, length, k, metric, filt):
    t = random_truth(seed, T0, 76 * 60, ads=ads, p=p / 8, hot_p=p, campaigns=2, events=True)
    window = Window(T0 + start * MIN, T0 + (start + length) * MIN)
    run(t, window, k, metric, m, campaign="cmp-0" if filt == "cmp" else None,
        advertiser="adv-1" if filt == "adv" else None)


def run_ratio(t, window, k, name, min_volume, m, campaign=None, advertiser=None):
    r = merge_top_ratio(boards_for(t, window, m), k, RATIOS[name], min_volume, m, campaign, advertiser)
    items, exact = expected_top_ratio(t, window.start, window.end, k, name, min_volume, m, campaign, advertiser)
    assert [(i.ad_id, i.total, i.upper, i.numerator, i.denominator) for i in r.items] == items
    assert r.exact is exact and (r.error_bound == 0 if exact else r.error_bound == INF)
    assert (r.reason is None) is exact
    assert_item_ivt([(i.ad_id, i.total, i.upper, i.suspect_clicks, i.invalid_clicks) for i in r.items], t,
                    window.start, window.end, campaign, advertiser, m=m)
    return r


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), ads=st.integers(1, 12), p=st.floats(0.02, 0.5),
       m=st.integers(1, 12), start=st.integers(0, 26 * 60), length=st.integers(1, 50 * 60),
       k=st.integers(1, 6), name=st.sampled_from(sorted(RATIO_FIELDS)), min_volume=st.sampled_from([1, 2, 5, 40]),
       filt=st.sampled_from([None, "cmp", "adv"]))
def test_ratio_merge_matches_oracle(seed, ads, p, m, start, length, k, name, min_volume, filt):
    t = random_truth(seed, T0, 76 * 60, ads=ads, p=p / 8, hot_p=p, campaigns=2, events=True)
    window = Window(T0 + start * MIN, T0 + (start + length) * MIN)
    run_ratio(t, window, k, name, min_volume, m, campaign="cmp-0" if filt == "cmp" else None,
              advertiser="adv-1" if filt == "adv" else None)


def test_ratio_exact_over_complete_boards_and_both_outcomes_occur():
    seen = {True: 0, False: 0, "proven_item": 0, "unknown_item": 0}
    for seed in range(30):
        t = random_truth(seed, T0, 4 * 60, ads=6, p=0.3, events=True)
        for m in (3, 7):  # 6 ads <= 0.9*7: every board complete
            for name in RATIO_FIELDS:
                r = run_ratio(t, Window(T0 + 7 * MIN, T0 + 187 * MIN), 3, name, 1, m)
                seen[r.exact] += 1
                assert r.exact is (m == 7)
                for i in r.items:
                    seen["proven_item" if i.upper == i.total else "unknown_item"] += 1
    assert all(seen.values()), seen


def test_complete_leaderboards_are_always_exact():
    for seed in range(40):
        t = random_truth(seed, T0, 4 * 60, ads=4, p=0.5)
        for k in (1, 2, 5):
            for metric in ("clicks", "billable_clicks", "cost"):
                r = run(t, Window(T0 + 7 * MIN, T0 + 187 * MIN), k, metric, m=5)  # 4 ads <= 0.9*5
                assert r.exact and r.error_bound == 0


def lb(res, bucket, *entries):
    return Leaderboard(res, bucket, [Entry(ad, c, c, c * 1_000_000) for ad, c in entries])


def test_unprovable_order_says_inexact_with_a_bound():
    # M=2, both boards full (truncated): 'x' is listed in one, unknown in the other (<= 5 there)
    boards = [lb("1m", 0, ("a", 10), ("x", 9)), lb("1m", MIN, ("a", 8), ("b", 5))]
    r = merge_topk(boards, 2, "clicks", 2)
    assert not r.exact
    assert [(i.ad_id, i.total, i.upper) for i in r.items] == [("a", 18, 18), ("x", 9, 14)]
    # x in [9, 14]; b in [5, 14]; unknown ads <= 9 + 5 = 14 -> rank 2 true total in [9, 14]
    assert r.error_bound == 5


def test_two_truths_with_identical_leaderboards_both_inexact():
    # truth A: x has 5 in minute 2 (unlisted there); truth B: x has 0 there. Same boards.
    boards = [lb("1m", 0, ("a", 10), ("x", 6)), lb("1m", MIN, ("b", 7), ("c", 5))]
    r = merge_topk(boards, 2, "clicks", 2)
    assert not r.exact  # x: 6 or 11; b: 7 or up to 13 -> cannot tell rank 2


def test_exact_when_gap_is_proven_and_tie_rule():
    boards = [lb("1m", 0, ("a", 10), ("b", 9)), lb("1m", MIN, ("a", 10), ("b", 9))]
    r = merge_topk(boards, 2, "clicks", 2)
    # a and b listed everywhere; unknown ads <= 9 + 9 = 18 == b's 18: an unknown id could sort first
    assert not r.exact and r.error_bound == 0
    r = merge_topk(boards, 1, "clicks", 2)
    assert r.exact and [(i.ad_id, i.total) for i in r.items] == [("a", 20)]
    # ties between known ads: ad_id ascending, exact
    boards = [lb("1m", 0, ("b", 5), ("a", 5)), lb("1m", MIN, ("b", 5), ("a", 5), ("c", 1))]
    r = merge_topk(boards, 2, "clicks", 10)
    assert r.exact and [(i.ad_id, i.total) for i in r.items] == [("a", 10), ("b", 10)]
    r = merge_topk(boards, 1, "clicks", 10)
    assert r.exact and [i.ad_id for i in r.items] == ["a"]


def test_fewer_than_k_and_zero_totals():
    r = merge_topk([lb("1m", 0, ("a", 3), ("z", 0))], 5, "clicks", 10)
    assert r.exact and [(i.ad_id, i.total) for i in r.items] == [("a", 3)]
    assert merge_topk([], 3, "clicks", 10).items == []
    r = merge_topk([lb("1m", 0, ("a", 3), ("b", 2))], 5, "clicks", 2)  # truncated: unknown ads <= 2
    assert not r.exact and r.error_bound == 2


def test_unbounded_metrics_over_a_truncated_board():
    """The boards are ordered by clicks: a truncated one bounds nothing about an unlisted ad's
    impressions, conversions or value. Totals stay lower bounds; an ad listed on every truncated
    board has its total proven (upper = total) but the ranking never is."""
    boards = [Leaderboard("1m", 0, [Entry("a", 5, impressions=10), Entry("b", 0, impressions=900)]),
              Leaderboard("1m", MIN, [Entry("a", 1, impressions=7)])]  # complete (1 <= 0.9 * 2)
    r = merge_topk(boards, 2, "impressions", 2)
    assert [(i.ad_id, i.total, i.upper) for i in r.items] == [("b", 900, 900), ("a", 17, 17)]
    assert not r.exact and r.error_bound == INF and "no error bound" in r.reason
    assert format_value("impressions", r.error_bound) is None and format_value("impressions", 17) == 17
    r = merge_topk(boards, 2, "impressions", 3)  # M = 3: both boards complete
    assert r.exact and r.reason is None
    r = merge_topk(boards[1:] + [Leaderboard("1m", 2 * MIN, [Entry("c", 4, impressions=2), Entry("d", 3)])], 1,
                   "impressions", 2)  # d listed with 0 impressions; c on the truncated board only
    assert [(i.ad_id, i.total, i.upper) for i in r.items] == [("a", 7, INF)] and not r.exact
    # clicks over a truncated board whose fewest clicks are 0: an unlisted ad has none there
    r = merge_topk([Leaderboard("1m", 0, [Entry("a", 5), Entry("b", 0, impressions=9)])], 2, "clicks", 2)
    assert r.exact and [(i.ad_id, i.total) for i in r.items] == [("a", 5)]


def test_ratio_rules_by_hand():
    # the click of a ratio is the billable one (Entry's third field): every click here is valid
    # ctr over one complete board: b (2/40) < a (3/50)? 0.05 < 0.06: a first; c below min_volume
    board = Leaderboard("1m", 0, [Entry("a", 3, 3, impressions=50), Entry("b", 2, 2, impressions=40),
                                  Entry("c", 1, 1, impressions=1), Entry("z", 0, 0, impressions=99)])
    r = merge_top_ratio([board], 5, RATIOS["ctr"], 40, 10)
    assert r.exact and [(i.ad_id, i.total, i.numerator, i.denominator) for i in r.items] == [
        ("a", Fraction(3, 50), 3, 50), ("b", Fraction(1, 20), 2, 40)]  # z: ctr 0 never appears
    assert [(i.ad_id, i.total) for i in merge_top_ratio([board], 5, RATIOS["ctr"], 1, 10).items][0] == ("c", 1)
    # equal rounded values keep the exact order: 1/3 vs 333333/1000000 round alike, 1/3 is larger
    board = Leaderboard("1m", 0, [Entry("x", 333_333, 333_333, impressions=1_000_000), Entry("y", 1, 1, impressions=3)])
    r = merge_top_ratio([board], 2, RATIOS["ctr"], 1, 10)
    assert [i.ad_id for i in r.items] == ["y", "x"]
    assert format_value("ctr", r.items[0].total) == format_value("ctr", r.items[1].total) == 0.333333
    # M = 2, both boards truncated: inexact with no bound; a (listed on both) proven, b and c not
    boards = [Leaderboard("1m", 0, [Entry("a", 9, 9, impressions=90), Entry("b", 8, 8, impressions=10)]),
              Leaderboard("1m", MIN, [Entry("a", 1, 1, impressions=10), Entry("c", 1, 1, impressions=10)])]
    r = merge_top_ratio(boards, 3, RATIOS["ctr"], 1, 2)
    assert not r.exact and r.error_bound == INF and "ctr" in r.reason
    assert [(i.ad_id, i.total, i.upper) for i in r.items] == [
        ("b", Fraction(4, 5), INF), ("a", Fraction(1, 10), Fraction(1, 10)), ("c", Fraction(1, 10), INF)]
    # roas: min_volume in whole currency units of spend
    board = Leaderboard("1m", 0, [Entry("a", 1, billable_cost_micros=999_999, conversion_value_micros=5_000_000),
                                  Entry("b", 1, billable_cost_micros=1_000_000, conversion_value_micros=2_000_000)])
    assert [i.ad_id for i in merge_top_ratio([board], 5, RATIOS["roas"], 1, 10).items] == ["b"]
    assert math.isinf(merge_top_ratio(boards, 1, RATIOS["cvr"], 1, 2).error_bound)
    # invalid clicks never count: 10 clicks, 2 of them billable, over 100 impressions: ctr 0.02
    board = Leaderboard("1m", 0, [Entry("a", 10, 2, impressions=100)])
    assert [(i.total, i.numerator) for i in merge_top_ratio([board], 1, RATIOS["ctr"], 1, 10).items] == [
        (Fraction(1, 50), 2)]


def test_billable_and_cost_bounds_use_min_clicks():
    boards = [Leaderboard("1m", 0, [Entry("a", 10, 1, 5), Entry("b", 4, 4, 7)])]
    r = merge_topk(boards, 1, "billable_clicks", 2)  # unlisted ads: billable <= clicks <= 4
    assert [(i.ad_id, i.total, i.upper) for i in r.items] == [("b", 4, 4)] and not r.exact
    r = merge_topk(boards, 1, "cost", 2)
    assert not r.exact and r.error_bound == 4 * 10_000 * 1_000_000 - 7


def test_filters_drop_listed_ads_but_keep_thresholds():
    boards = [Leaderboard("1m", 0, [Entry("a", 10, campaign_id="c1"), Entry("b", 9, campaign_id="c2")])]
    r = merge_topk(boards, 1, "clicks", 10, campaign_id="c2")
    assert r.exact and [i.ad_id for i in r.items] == ["b"]
    r = merge_topk(boards, 1, "clicks", 2, campaign_id="c2")  # truncated: unknown ads <= 9
    assert not r.exact and [i.ad_id for i in r.items] == ["b"] and r.error_bound == 0


def test_ivt_counts_are_the_listed_entries_sums():
    # M=2: a is listed in both boards (exact), x only in the first: its counts are a lower bound
    boards = [Leaderboard("1m", 0, [Entry("a", 10, 7, suspect_clicks=2, invalid_clicks=1),
                                    Entry("x", 9, 9)]),
              Leaderboard("1m", MIN, [Entry("a", 8, 5, suspect_clicks=0, invalid_clicks=3),
                                      Entry("b", 6, 0, suspect_clicks=6)])]
    r = merge_topk(boards, 3, "clicks", 2)
    assert [(i.ad_id, i.total, i.upper, i.suspect_clicks, i.invalid_clicks) for i in r.items] == [
        ("a", 18, 18, 2, 4), ("x", 9, 15, 0, 0), ("b", 6, 15, 6, 0)]
    # a filter drops a listed entry's counts with the entry
    r = merge_topk([Leaderboard("1m", 0, [Entry("a", 3, 1, suspect_clicks=2, campaign_id="c1")])], 1, "clicks", 10,
                   campaign_id="c2")
    assert r.items == []


def test_tombstone_free_count_rule_09m():
    assert Leaderboard("1m", 0, [Entry(str(i), 1) for i in range(9)]).is_complete(10)
    assert not Leaderboard("1m", 0, [Entry(str(i), 1) for i in range(10)]).is_complete(10)
    assert not Leaderboard("1m", 0, [Entry(str(i), 1) for i in range(900)]).is_complete(999)
    assert Leaderboard("1m", 0, [Entry(str(i), 1) for i in range(900)]).is_complete(1000)


@pytest.mark.parametrize("micros,text", [(0, "0.000000"), (12_340_000, "12.340000"), (1, "0.000001"),
                                         (10_000 * 10**6 * 3, "30000.000000")])
def test_cost_decimal(micros, text):
    assert micros_to_decimal(micros) == text and format_value("cost", micros) == text
    assert format_value("clicks", 7) == 7
