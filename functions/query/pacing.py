"""Pacing decisions (docs/budget.md): `serve`, `throttle` (a fraction of requests) or `stop` for
one campaign, from its budget, its realtime spend and the age of that figure.

Pure: no AWS, no clock (the budget Lambda, bench/budget.py and the tests call `decide` with the
figures and the time). Money is integer micros; velocity is micros per second (a float: it is an
estimate, and every figure derived from it for a stop is rounded up).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional

from common.times import DAY_MS, MINUTE_MS, floor_to

SERVE, THROTTLE, STOP = "serve", "throttle", "stop"
EVEN, ASAP = "even", "asap"
PACING_MODES = (EVEN, ASAP)
# reasons
NO_BUDGET, STALE, EXHAUSTED, PREDICTED = "no_budget", "stale", "exhausted", "predicted_exhaustion"
AHEAD, ON_PLAN, UNPACED = "ahead_of_plan", "on_plan", "asap"

VELOCITY_MINUTES = 6  # the long velocity window: the current minute and the 5 before it
SHORT_MINUTES = 2  # the short one: the current and the previous minute
CURRENT_MINUTE_MIN_MS = 10_000  # the current minute alone once it is this far along (a ramp)
HORIZON_MS = 60_000  # even pacing compares spend and plan this far ahead
BAND_PER_MILLE = 10  # even pacing: the controller's band B = 1 % of the daily budget


@dataclass(frozen=True)
class Budget:
    campaign_id: str
    daily_micros: int
    lifetime_micros: Optional[int] = None
    pacing: str = EVEN
    revision: int = 1
    set_at_ms: int = 0
    set_by: str = ""


@dataclass(frozen=True)
class SpendFigures:
    """What the serving store holds for one campaign: today's spend, the spend of recent minutes
    (minute start -> micros; absent = nothing spent), the lifetime spend (None: not read) and the
    newest pulse (None: none ever landed)."""
    day_start_ms: int
    spent_today_micros: int = 0
    minute_spend: Mapping[int, int] = field(default_factory=dict)
    lifetime_spent_micros: Optional[int] = None
    pulse_ms: Optional[int] = None
    # the budget revision a stop for exhaustion was recorded under today (None: none): the
    # campaign stays stopped for the UTC day unless its budget changes (see `decide`)
    stopped_revision: Optional[int] = None


@dataclass(frozen=True)
class PacingPolicy:
    """The deployment's pacing settings (common.schema, BudgetSettings)."""
    stale_after_ms: int = 10_000
    stale_serve_percent: int = 0
    cache_ttl_ms: int = 1_000
    emit_interval_ms: int = 500
    click_delay_ms: int = 15_000
    # False: the reactive baseline bench/budget.py compares with (no margin, no plan: serve
    # until the figure shows the budget spent); the API always decides predictively
    predictive: bool = True

    @classmethod
    def from_settings(cls, settings) -> "PacingPolicy":
        return cls(settings.budget_stale_after_ms, settings.budget_stale_serve_percent,
                   settings.pacing_cache_ttl_ms, settings.budget_emit_interval_ms,
                   settings.budget_click_delay_ms)


@dataclass(frozen=True)
class Decision:
    campaign_id: str
    decision: str
    serve_fraction: float
    reason: str
    budget: Optional[Budget]
    day_start_ms: int
    spent_today_micros: Optional[int] = None
    remaining_micros: Optional[int] = None
    lifetime_spent_micros: Optional[int] = None
    planned_spend_micros: Optional[int] = None
    velocity_micros_per_s: Optional[float] = None
    margin_micros: Optional[int] = None
    projected_exhaustion_ms: Optional[int] = None
    figure_age_ms: Optional[int] = None


def velocity(minute_spend: Mapping[int, int], figure_ms: int) -> float:
    """Spend per second: the largest of the current minute's rate (once CURRENT_MINUTE_MIN_MS
    of it have passed), the short (this and the previous minute) and the long (the last
    VELOCITY_MINUTES minutes) rate, each over the time from its first minute's start to
    `figure_ms` (the time the figures are complete up to). The largest: a rising (viral)
    campaign is judged by its newest rate, a bursty one by its longer history."""
    m0 = floor_to(figure_ms, MINUTE_MS)
    rates = []
    if figure_ms - m0 >= CURRENT_MINUTE_MIN_MS:
        rates.append(minute_spend.get(m0, 0) * 1000 / (figure_ms - m0))
    for n in (SHORT_MINUTES, VELOCITY_MINUTES):
        first = m0 - (n - 1) * MINUTE_MS
        spent = sum(minute_spend.get(first + i * MINUTE_MS, 0) for i in range(n))
        rates.append(spent * 1000 / max(figure_ms - first, 1))
    return max(rates)


def planned_spend(daily_micros: int, day_start_ms: int, at_ms: int) -> int:
    """Even pacing: the share of the daily budget due by `at_ms` (capped at the day's end)."""
    elapsed = min(max(at_ms - day_start_ms, 0), DAY_MS)
    return daily_micros * elapsed // DAY_MS


def holds_for_the_day(d: "Decision") -> bool:
    """A stop the budget Lambda records for the day (SpendFigures.stopped_revision)."""
    return d.budget is not None and d.reason in (EXHAUSTED, PREDICTED)


def decide(budget: Optional[Budget], figures: SpendFigures, now_ms: int,
           policy: PacingPolicy = PacingPolicy(), campaign_id: str = "") -> Decision:
    """The decision for one campaign at `now_ms` (docs/budget.md, "Pacing decision")."""
    cid = budget.campaign_id if budget else campaign_id
    day = figures.day_start_ms
    if budget is None:
        return Decision(cid, STOP, 0.0, NO_BUDGET, None, day)
    age = None if figures.pulse_ms is None else max(now_ms - figures.pulse_ms, 0)
    stale = age is None or age > policy.stale_after_ms
    figure_ms = now_ms if figures.pulse_ms is None else min(figures.pulse_ms, now_ms)
    v = velocity(figures.minute_spend, figure_ms)
    spent = figures.spent_today_micros
    remaining = budget.daily_micros - spent
    if budget.lifetime_micros is not None and figures.lifetime_spent_micros is not None:
        remaining = min(remaining, budget.lifetime_micros - figures.lifetime_spent_micros)
    # spend the figure cannot show yet: its age, the job's mini-batch, the caller's cache, and
    # the clicks of ads already served that have not arrived yet
    unseen_ms = (age if age is not None else policy.stale_after_ms) \
        + policy.emit_interval_ms + policy.cache_ttl_ms + policy.click_delay_ms
    margin = math.ceil(v * unseen_ms / 1000) if policy.predictive else 0
    exhaustion = (figure_ms if remaining <= 0 else
                  figure_ms + math.ceil(remaining / v * 1000) if v > 0 else None)
    plan = planned_spend(budget.daily_micros, day, now_ms) if budget.pacing == EVEN else None
    common = dict(budget=budget, day_start_ms=day, spent_today_micros=spent,
                  remaining_micros=max(remaining, 0),
                  lifetime_spent_micros=figures.lifetime_spent_micros,
                  planned_spend_micros=plan, velocity_micros_per_s=round(v, 3),
                  margin_micros=margin, projected_exhaustion_ms=exhaustion, figure_age_ms=age)
    stale_fraction = policy.stale_serve_percent / 100
    if stale and stale_fraction == 0:  # fail closed
        return Decision(cid, STOP, 0.0, STALE, **common)
    if remaining - margin <= 0 or (policy.predictive and figures.stopped_revision == budget.revision):
        # a stop for exhaustion holds for the day: once spend stops, the velocity (and with it
        # the margin) decays to 0 and the campaign would reopen at full demand; a new budget
        # (revision) lifts it
        return Decision(cid, STOP, 0.0, EXHAUSTED if remaining <= 0 else PREDICTED, **common)
    if stale:  # the configured safe throttle
        return Decision(cid, THROTTLE, stale_fraction, STALE, **common)
    if budget.pacing == ASAP or not policy.predictive:
        return Decision(cid, SERVE, 1.0, UNPACED, **common)
    ahead = spent + v * (unseen_ms + HORIZON_MS) / 1000 \
        - planned_spend(budget.daily_micros, day, now_ms + HORIZON_MS)
    if ahead <= 0:
        return Decision(cid, SERVE, 1.0, ON_PLAN, **common)
    band = budget.daily_micros * BAND_PER_MILLE / 1000
    fraction = round(1 - ahead / band, 4)
    if fraction <= 0:
        return Decision(cid, STOP, 0.0, AHEAD, **common)
    return Decision(cid, THROTTLE, fraction, AHEAD, **common)
