"""bench/budget.py's simulator, piece by piece, with expectations worked out by hand: deterministic
runs (requests at a fixed rate, every served request clicked at once at a fixed price, fixed
freshness) against the real query.pacing.decide, the demand curve, the stream-stopped bound, the
freshness distributions and the measurement's visibility rule."""
from __future__ import annotations

from dataclasses import replace

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from query.pacing import ASAP, EVEN, PacingPolicy

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("budget_bench", REPO / "bench" / "budget.py")
bench = sys.modules.setdefault("budget_bench", importlib.util.module_from_spec(_spec))  # dataclasses look it up
_spec.loader.exec_module(bench)

REACTIVE, PREDICTIVE = PacingPolicy(predictive=False), PacingPolicy()
PRICE = 1_000  # micros per click


def market(budget: int) -> "bench.Market":
    """One ad server, every served request a click, at once, at exactly PRICE."""
    return bench.Market(daily_budget_micros=budget, price_median_micros=PRICE, price_sigma=0.0, ctr=1.0,
                        click_delay_median_ms=0, click_delay_sigma=0.0, ad_servers=1)


def steady(budget: int, rps: float, pacing: str = ASAP, stop_s=None) -> "bench.Scenario":
    """`rps` requests per second: the demand as a multiple of what the budget pays for."""
    affordable = budget / PRICE / 86_400
    return bench.Scenario("t", "test", bench.Demand(multiple=rps / affordable), pacing, stream_stop_s=stop_s)


def run(budget, policy, spend_ms, pulse_age_ms, span_s, rps=10.0, pacing=ASAP, stop_s=None):
    return bench.simulate(steady(budget, rps, pacing, stop_s), market(budget), policy,
                          bench.Freshness.fixed(spend_ms, pulse_age_ms), seed=3, span_s=span_s,
                          arrivals="uniform")


def test_uniform_arrivals_one_request_per_step():
    # 10 requests/s in 100 ms steps: one per step; a budget that is never reached
    r = run(10**9, REACTIVE, 0, 0, span_s=60)
    assert r.days[0].requests_served == r.days[0].clicks == 600
    assert r.days[0].spent_micros == 600 * PRICE
    assert r.days[0].last_served_ms == bench.DAY0_MS + 59_900
    # one ask per second (the answer is kept pacing_cache_ttl_ms = 1000 ms)
    assert sum(r.decisions.values()) == 60 and r.overspend_pct(0) == 0


def test_no_latency_overspends_by_one_cache_period():
    # budget 9,500: the asks at 0 s (nothing spent) serve steps 0..900 ms: 10 clicks = 10,000 micros,
    # seen at once; the ask at 1 s stops (exhausted). Overspend 500 / 9,500 of the budget.
    r = run(9_500, REACTIVE, 0, 0, span_s=10)
    assert (r.days[0].clicks, r.days[0].spent_micros) == (10, 10_000)
    assert r.overspend_pct(0) == pytest.approx(500 * 100 / 9_500)
    assert r.decisions == {"asap": 1, "exhausted": 9}


def test_reactive_with_latency():
    # 10 clicks/s, each seen 2 s after it: at the ask at t s the figure shows the clicks at
    # 0, 0.1, ..., t - 2 s: 10 (t - 2) + 1 of them. Budget 3,000 clicks: 10 t - 19 >= 3,000 first at
    # t = 302 s (301 s shows 2,991). Served: every step before 302 s = 3,020 clicks, 20 too many.
    r = run(3_000_000, REACTIVE, 2_000, 2_000, span_s=400)
    assert r.days[0].clicks == 3_020
    assert r.days[0].spent_micros == 3_020_000
    assert r.overspend_pct(0) == pytest.approx(20_000 * 100 / 3_000_000)
    assert r.days[0].last_served_ms == bench.DAY0_MS + 301_900


def test_predictive_stops_before_the_budget_with_latency():
    # Same run, the API's policy. The figure's time is the pulse: t - 2 s. Velocity (the short
    # window: from the previous minute's start m0 - 60 s to the figure) at t = 298 s: figure
    # 296 s, m0 = 240 s, window 116 s holding the clicks at 180.0 .. 296.0 s = 1,161 ->
    # 1,161,000 micros / 116 s = 10,008.62/s; unseen window 2,000 + 500 + 1,000 ms: margin
    # ceil(35,030.17) = 35,031; remaining 3,000,000 - 2,961 clicks = 39,000 > margin: serve.
    # t = 299 s: remaining 29,000, margin ceil(1,171,000 / 117 x 3.5) = 35,030: stop
    # (predicted_exhaustion). Served: steps before 299 s = 2,990 clicks, 10 under the budget.
    # (clicks arrive as served here: no click-delay allowance, click_delay_ms=0)
    r = run(3_000_000, replace(PREDICTIVE, click_delay_ms=0), 2_000, 2_000, span_s=400)
    assert r.days[0].clicks == 2_990
    assert r.days[0].spent_micros == 2_990_000 and r.overspend_pct(0) == 0
    assert r.days[0].last_served_ms == bench.DAY0_MS + 298_900
    # it stays stopped: the figure never shows the budget spent (10,000 left) but the long window's
    # velocity keeps the margin above that until the end (at 400 s: 2,390 clicks over 338 s, margin
    # 24,749)
    assert r.decisions["predicted_exhaustion"] == 101 and "exhausted" not in r.decisions


def test_stream_stopped_serves_nothing_past_the_bound():
    # The stream stops at 60 s; the pulse stays at 60 s - 500 ms (the drawn age). Stale once
    # now - 59.5 s > 10 s: the asks at 60..69 s still serve (the figure's age 9.5 s at 69 s), the ask
    # at 70 s stops. Blind: the steps 60.0 .. 69.9 s = 100 requests; the bound (last pulse +
    # stale_after + cache ttl) is 70.5 s and nothing is served at or after it.
    for policy in (REACTIVE, PREDICTIVE):
        r = run(10**9, policy, 1_000, 500, span_s=120, stop_s=60)
        assert (r.stop_ms, r.bound_ms) == (bench.DAY0_MS + 60_000, bench.DAY0_MS + 70_500)
        assert (r.blind_requests, r.blind_clicks, r.blind_micros) == (100, 100, 100 * PRICE)
        assert (r.after_bound_requests, r.after_bound_micros) == (0, 0)
        assert r.days[0].clicks == 700 and r.days[0].last_served_ms == bench.DAY0_MS + 69_900
        assert r.decisions["stale"] == 50  # the asks at 70 .. 119 s


def test_even_pacing_keeps_spend_within_the_band_of_plan():
    # 10 requests/s against a budget that pays for 1 request/s over the day: the reactive
    # baseline serves everything; even pacing throttles. It serves only while spend + v (U + H)
    # - plan(now + H) is below the band B (1 % of the daily budget), so after 30 minutes the
    # spend is at most plan(30 min + 60 s) + B + one answer's clicks (10).
    budget = 86_400 * PRICE
    even = run(budget, PREDICTIVE, 0, 0, span_s=1_800, pacing=EVEN)
    flat = run(budget, REACTIVE, 0, 0, span_s=1_800, pacing=EVEN)
    assert flat.days[0].clicks == 18_000 and set(flat.decisions) == {"asap"}
    assert even.decisions["ahead_of_plan"] > 0
    assert 1_800 * PRICE <= even.days[0].spent_micros <= (1_860 + 864 + 10) * PRICE


def test_demand_curve():
    d = bench.Demand(multiple=2.0, viral_multiple=100.0, viral_start_s=1_000, ramp_s=300, hold_s=600, decay_s=200)
    assert d.factor(999) == 1.0
    assert d.factor(1_000) == 1.0
    assert d.factor(1_150) == pytest.approx(10.0)  # halfway up an exponential ramp to 100
    assert d.factor(1_300) == d.factor(1_899) == 100.0
    assert d.factor(2_000) == pytest.approx(10.0)  # halfway down
    assert d.factor(2_100) == 1.0
    assert bench.Demand(3.0).factor(1_150) == 1.0


def test_affordable_rate():
    m = bench.Market(daily_budget_micros=86_400_000_000, price_median_micros=1_000_000, price_sigma=0.0, ctr=0.5)
    assert m.mean_price_micros == 1_000_000
    assert m.affordable_rps() == pytest.approx(2.0)  # 1 USD a click, 1 click in 2 requests, 1 USD a second


def test_poisson_and_binomial():
    rng = random.Random(1)
    assert bench.poisson(rng, 0.0) == 0
    draws = [bench.poisson(rng, 45.0) for _ in range(4_000)]  # the split above 30 keeps the mean
    assert sum(draws) / len(draws) == pytest.approx(45.0, rel=0.02)
    assert bench.binomial(rng, 7, 1.0) == 7 and bench.binomial(rng, 7, 0.0) == 0


def test_overspend_and_worst_day():
    r = bench.RunResult(1_000, [bench.DayResult(spent_micros=900), bench.DayResult(spent_micros=1_025)])
    assert (r.overspend_pct(0), r.overspend_pct(1), r.worst_day()) == (0, 2.5, 1)


def test_freshness_quantiles_and_design_scaling():
    assert bench.quantile([1, 2, 3, 4], 0.5) == 2.5
    assert bench.quantile(list(range(101)), 0.95) == 95
    local = bench.Freshness("local", tuple(range(0, 10_001, 100)), (100.0, 300.0))
    design = local.scaled(2_000, "design")
    assert bench.quantile(design.spend_ms, 0.95) == pytest.approx(2_000)
    assert design.pulse_age_ms == pytest.approx((100 * 2_000 / 9_500, 300 * 2_000 / 9_500))


def test_visibility_rule_ranks_clicks_by_cost():
    # campaign A: clicks of 5 and 7 sent at 10.0 and 10.5 s; the samples show bk 5 at 11.0 s and
    # 12 at 12.0 s; campaign B's click is never seen
    samples = [(10.2, {}, None), (11.0, {"A": 5}, 1), (12.0, {"A": 12}, 2), (13.0, {"A": 12}, 3)]
    clicks = [(10.5, "A", 7), (10.0, "A", 5), (10.7, "B", 3)]
    assert bench.visibility_s(samples, clicks) == [pytest.approx(1.0), pytest.approx(1.5), None]


def test_the_committed_measurement_loads():
    f = bench.Freshness.load()
    assert len(f.spend_ms) > 100 and len(f.pulse_age_ms) > 100
    assert all(v >= 0 for v in f.spend_ms + f.pulse_age_ms)
