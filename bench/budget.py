"""Budget lane (issue 20, docs/budget.md): how far past its daily budget a campaign spends, with
the real pacing decision (query.pacing.decide) and the measured freshness of the spend figure.

Two parts:

  .venv/bin/python bench/budget.py --measure-freshness [--seconds 120] [--rate 5] [--campaigns 4]
      starts the local stack (moto, the Flink job in a MiniCluster, the sink), posts token-carrying
      clicks through the local API at a steady rate for a few campaigns, samples the serving
      table every ~100 ms (each campaign's `SB#<campaign>#1d` item for today, attribute `bk`, and
      the pulse `META#pulse`, attribute `pt`) and writes to bench/data/budget_freshness_local.json:
      per click the spend visibility latency (the first sample whose `bk` includes it minus the
      time its request was sent: local/freshness.py's method on the 1d spend item), and the pulse
      age of every sample (sample time - pt); percentiles and raw samples.

  .venv/bin/python bench/budget.py [--days 1] [--seeds 5] [--seed 1]
      a discrete-time simulation (100 ms steps) of a campaign's day of ad requests, driven by
      `decide` and that measured distribution (and by the "design freshness": the same shapes
      scaled so that spend is visible within 2 s at p95, the AWS target). Per scenario, with the
      API's policy (PacingPolicy(predictive=True)) and the reactive baseline (predictive=False:
      serve until the figure shows the budget spent): spent / budget, overspend as % of the daily
      budget, requests served, the last serve of the day; the worst of the seeds. 4 scenarios x
      4 columns x 5 seeds = 80 one-day runs: 2 to 5 minutes on one core (--scenarios, --seeds to
      shorten).

  .venv/bin/python bench/budget.py --smoke
      seconds: a 40-minute span (viral at 00:10), one seed, the committed freshness file; raises
      if an invariant fails (nothing served past the fail-closed bound with the stream stopped;
      the reactive baseline overspends at least as much as the predictive policy in the viral
      scenarios), prints the table, exits 0 (tests/test_bench_smoke.py).

The model (every knob is a Market / Demand / Scenario field):
* Requests: a Poisson process per step, rate = demand x what the budget pays for (budget /
  (mean price x CTR) per day), spread uniformly over `ad_servers` ad servers. Each ad server
  asks the decision at its first request after its cached answer expired and keeps the answer
  pacing_cache_ttl_ms (the API's Cache-Control); `throttle` serves each request with
  probability serve_fraction. The budget Lambda keeps the figures it read pacing_cache_ttl_ms
  (one container) and decides again at every ask (figure_age grows in its cache).
* A served request is clicked with probability `ctr` after a click delay (lognormal: the time
  a person takes to click a shown ad, plus the SDK's batching); each click costs a lognormal
  price (the token's price). The click's spend is true at once (billed by the realtime view by
  event time, uncapped); it becomes visible in the figure (the day's and its minute's item) a
  spend visibility latency after the click, drawn from the freshness distribution. The measured
  latency is end to end (ingest -> Kinesis -> the job's 500 ms spend mini-batch -> aggregates
  stream -> sink -> DynamoDB), so the emit interval is inside it, not added again.
* The pulse the Lambda reads: now - a pulse age drawn from the freshness distribution
  (independently of the spend latencies: the real two are correlated).
* Stream stopped at T (scenario d): from T no click becomes visible (clicks in flight are lost
  to the figure) and the pulse stays at its last value, T - a drawn age.
* Overspend of a day = max(0, true spend of the clicks of that UTC day - daily budget) / daily
  budget. The nightly billing caps the invoice at the budget; the realtime view does not.
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import platform
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "functions")]

from common.times import DAY_MS, MINUTE_MS, floor_to  # noqa: E402
from query.pacing import (ASAP, EVEN, STOP, Budget, PacingPolicy, SpendFigures, decide,  # noqa: E402
                          holds_for_the_day)

FRESHNESS_FILE = REPO / "bench" / "data" / "budget_freshness_local.json"
DESIGN_SPEND_P95_MS = 2_000  # the AWS target: spend visible within 2 s at p95
DAY0_MS = int(datetime(2026, 12, 7, tzinfo=timezone.utc).timestamp() * 1000)  # a Monday, 00:00 UTC
STEP_MS = 100
MINUTES_READ = 7  # the budget Lambda reads today's item and the last 7 minute items (query/budget/store.py)


# --- freshness distributions -------------------------------------------------------------------
def quantile(values: Sequence[float], q: float) -> float:
    """The q-th quantile (0..1), linear interpolation between closest ranks (numpy's default,
    statistics.quantiles' 'inclusive' method)."""
    s = sorted(values)
    if not s:
        raise ValueError("no values")
    pos = (len(s) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict:
    return {"n": len(values), **{f"p{p}": round(quantile(values, p / 100), 1) for p in (50, 90, 95, 99)},
            "max": round(max(values), 1), "mean": round(statistics.fmean(values), 1)}


@dataclass(frozen=True)
class Freshness:
    """What the figure lags by: spend visibility latencies (click -> in the spend items, ms)
    and pulse ages (now - pt, ms), as samples to draw from."""
    name: str
    spend_ms: tuple[float, ...]
    pulse_age_ms: tuple[float, ...]

    @classmethod
    def load(cls, path: Path = FRESHNESS_FILE) -> "Freshness":
        data = json.loads(path.read_text())
        return cls("local", tuple(data["spend_visibility_ms"]["samples"]),
                   tuple(data["pulse_age_ms"]["samples"]))

    @classmethod
    def fixed(cls, spend_ms: float, pulse_age_ms: float, name: str = "fixed") -> "Freshness":
        return cls(name, (spend_ms,), (pulse_age_ms,))

    def scaled(self, spend_p95_ms: float, name: str) -> "Freshness":
        """The same shapes (spend latency and pulse age) times one factor, so that the spend
        latency's p95 is `spend_p95_ms`."""
        k = spend_p95_ms / quantile(self.spend_ms, 0.95)
        return Freshness(name, tuple(v * k for v in self.spend_ms), tuple(v * k for v in self.pulse_age_ms))

    def describe(self) -> str:
        s, p = self.spend_ms, self.pulse_age_ms
        return (f"spend visible p50 {quantile(s, .5) / 1000:.2f} s, p95 {quantile(s, .95) / 1000:.2f} s, "
                f"p99 {quantile(s, .99) / 1000:.2f} s; pulse age p50 {quantile(p, .5) / 1000:.2f} s, "
                f"p95 {quantile(p, .95) / 1000:.2f} s, max {max(p) / 1000:.2f} s")


# --- the model -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Demand:
    """Ad requests for the campaign per second, as a multiple of what its budget pays for; a
    viral episode every day: exponential ramp from 1x to `viral_multiple` x the base over
    `ramp_s`, `hold_s` at the peak, exponential decay back over `decay_s`."""
    multiple: float = 2.0
    viral_multiple: float = 1.0
    viral_start_s: float = 10 * 3600
    ramp_s: float = 300
    hold_s: float = 3600
    decay_s: float = 1800

    def factor(self, second_of_day: float) -> float:
        """The demand at that second of the (UTC) day, over the base demand."""
        if self.viral_multiple == 1:
            return 1.0
        t = second_of_day - self.viral_start_s
        if t < 0:
            return 1.0
        if t < self.ramp_s:
            return self.viral_multiple ** (t / self.ramp_s)
        t -= self.ramp_s
        if t < self.hold_s:
            return self.viral_multiple
        t -= self.hold_s
        if t < self.decay_s:
            return self.viral_multiple ** (1 - t / self.decay_s)
        return 1.0


@dataclass(frozen=True)
class Market:
    daily_budget_micros: int = 1_000_000_000  # 1,000 USD a day
    price_median_micros: int = 500_000  # a click's price (the token's): lognormal
    price_sigma: float = 0.5
    price_max_micros: int = 10_000_000
    ctr: float = 0.02  # clicks per served request
    click_delay_median_ms: float = 3_000  # served -> clicked and accepted: lognormal
    click_delay_sigma: float = 1.0
    click_delay_max_ms: float = 600_000
    ad_servers: int = 4

    @property
    def mean_price_micros(self) -> float:
        return self.price_median_micros * math.exp(self.price_sigma ** 2 / 2)

    def affordable_rps(self) -> float:
        """Requests per second that spend the daily budget in exactly one day."""
        return self.daily_budget_micros / (self.mean_price_micros * self.ctr) / (DAY_MS / 1000)

    def describe(self) -> str:
        return (f"daily budget {self.daily_budget_micros / 1e6:,.0f} USD; click price lognormal median "
                f"{self.price_median_micros / 1e6:.2f} USD (sigma {self.price_sigma:g}, mean "
                f"{self.mean_price_micros / 1e6:.3f}); CTR {self.ctr:.1%}; click delay lognormal median "
                f"{self.click_delay_median_ms / 1000:g} s (sigma {self.click_delay_sigma:g}); "
                f"{self.ad_servers} ad servers; the budget pays for {self.affordable_rps():.2f} requests/s")


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    demand: Demand
    pacing: str = EVEN
    stream_stop_s: Optional[float] = None  # seconds after the run's start: the stream stops


def scenarios(viral_start_s: float = 10 * 3600, hold_s: float = 3600, stop_after_viral_s: float = 240,
              viral_multiple: float = 100.0) -> list[Scenario]:
    """The bench's four. The viral episode starts at 10:00 UTC: with twice the demand its budget
    pays for, an asap campaign has 1/6 of its budget left then, which the 5-minute ramp spends to
    its end, so it runs out near the peak velocity (at 11:00 it would run out halfway up the ramp;
    after 12:00 it has nothing left). The stream stops (d) 4 minutes in: while both policies still
    serve the asap campaign, near its peak velocity, the worst moment to go blind (at 5 minutes
    the predictive policy had already stopped it)."""
    viral = Demand(2.0, viral_multiple, viral_start_s, hold_s=hold_s)
    return [
        Scenario("a", "low velocity (demand 2x, even)", Demand(2.0)),
        Scenario("b", f"viral ({viral_multiple:g}x in 5 min, even)", viral),
        Scenario("c", f"viral ({viral_multiple:g}x in 5 min, asap)", viral, ASAP),
        Scenario("d", "viral asap, stream stopped", viral, ASAP,
                 stream_stop_s=viral_start_s + stop_after_viral_s),
    ]


@dataclass
class DayResult:
    spent_micros: int = 0
    requests_served: int = 0
    clicks: int = 0
    last_served_ms: Optional[int] = None


@dataclass
class RunResult:
    budget_micros: int
    days: list[DayResult]
    decisions: Counter = field(default_factory=Counter)  # reason -> asks
    # the stream-stopped scenario (None otherwise)
    stop_ms: Optional[int] = None
    bound_ms: Optional[int] = None  # last pulse + stale_after_ms + cache_ttl_ms
    blind_requests: int = 0  # served at or after the stream stopped
    blind_clicks: int = 0
    blind_micros: int = 0
    after_bound_requests: int = 0  # served at or after the fail-closed bound: must be 0
    after_bound_micros: int = 0

    def overspend_pct(self, day: int) -> float:
        return max(0, self.days[day].spent_micros - self.budget_micros) * 100 / self.budget_micros

    def worst_day(self) -> int:
        return max(range(len(self.days)), key=lambda d: (self.overspend_pct(d), self.days[d].spent_micros))


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth's product of uniforms; a sum of draws of at most 30 each above)."""
    n = 0
    while lam > 30:
        n += poisson(rng, 30)
        lam -= 30
    limit, p = math.exp(-lam), rng.random()
    while p > limit:
        n += 1
        p *= rng.random()
    return n


def binomial(rng: random.Random, n: int, p: float) -> int:
    if p >= 1:
        return n
    if p <= 0:
        return 0
    return sum(rng.random() < p for _ in range(n))


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median if sigma == 0 else median * math.exp(sigma * rng.gauss(0, 1))


def simulate(scenario: Scenario, market: Market, policy: PacingPolicy, freshness: Freshness, seed: int,
             span_s: float = DAY_MS / 1000, start_ms: int = DAY0_MS, step_ms: int = STEP_MS,
             arrivals: str = "poisson") -> RunResult:
    """One run. `arrivals`: "poisson" (requests per step ~ Poisson, spread uniformly inside the
    step), or "uniform" (deterministic: floor of the integrated rate, at the step's start, round
    robin over the ad servers; for tests)."""
    rng = random.Random(seed)
    budget = Budget("cmp-sim", market.daily_budget_micros, pacing=scenario.pacing)
    ttl = policy.cache_ttl_ms
    n_servers = market.ad_servers
    steps = int(span_s * 1000) // step_ms
    first_day = floor_to(start_ms, DAY_MS)
    n_days = (start_ms + steps * step_ms - 1 - first_day) // DAY_MS + 1
    days = [DayResult() for _ in range(n_days)]
    result = RunResult(market.daily_budget_micros, days)
    base_rps = scenario.demand.multiple * market.affordable_rps()
    stop = None if scenario.stream_stop_s is None else start_ms + int(scenario.stream_stop_s * 1000)
    frozen_pulse = None if stop is None else stop - int(rng.choice(freshness.pulse_age_ms))
    if stop is not None:
        result.stop_ms, result.bound_ms = stop, frozen_pulse + policy.stale_after_ms + ttl

    heap: list[tuple[float, int, int]] = []  # (visible at, click ms, price): spend on its way
    visible_day: dict[int, int] = {}
    visible_minute: dict[int, int] = {}
    cache: list = [None, None]  # the Lambda's (fetched at, figures)
    expires = [start_ms - 1] * n_servers  # each ad server's cached answer: valid until
    fraction = [0.0] * n_servers
    spend_ms, pulse_ages = freshness.spend_ms, freshness.pulse_age_ms
    choice, rand = rng.choice, rng.random

    def figures(now: int) -> SpendFigures:
        while heap and heap[0][0] <= now:
            _, click_ms, price = heapq.heappop(heap)
            d, m = floor_to(click_ms, DAY_MS), floor_to(click_ms, MINUTE_MS)
            visible_day[d] = visible_day.get(d, 0) + price
            visible_minute[m] = visible_minute.get(m, 0) + price
        day, m0 = floor_to(now, DAY_MS), floor_to(now, MINUTE_MS)
        minutes = {m: visible_minute[m] for m in range(m0 - (MINUTES_READ - 1) * MINUTE_MS, m0 + 1, MINUTE_MS)
                   if m in visible_minute}
        pulse = frozen_pulse if stop is not None and now >= stop else now - int(choice(pulse_ages))
        return SpendFigures(day, visible_day.get(day, 0), minutes, None, pulse)

    stopped_days: dict[int, int] = {}  # the budget Lambda's stop records: day -> revision

    def ask(now: int) -> float:
        fetched, figs = cache
        if fetched is None or now - fetched >= ttl or figs.day_start_ms != floor_to(now, DAY_MS):
            figs = figures(now)
            cache[:] = [now, figs]
        figs = replace(figs, stopped_revision=stopped_days.get(figs.day_start_ms))
        d = decide(budget, figs, now, policy)
        if holds_for_the_day(d):  # as query/budget/handler.py records it
            stopped_days[figs.day_start_ms] = budget.revision
        result.decisions[d.reason] += 1
        return 0.0 if d.decision == STOP else d.serve_fraction

    demand_factor = scenario.demand.factor
    per_step = base_rps * step_ms / 1000
    integrated = 0.0
    turn = 0
    counts = [0] * n_servers
    for k in range(steps):
        now = start_ms + k * step_ms
        lam = per_step * demand_factor(((now - first_day) % DAY_MS) / 1000)
        if arrivals == "poisson":
            n = poisson(rng, lam)
            if not n:
                continue
            counts = [0] * n_servers
            for _ in range(n):
                counts[int(rand() * n_servers)] += 1
        else:
            before = math.floor(integrated + 1e-9)
            integrated += lam
            n = math.floor(integrated + 1e-9) - before
            if not n:
                continue
            counts = [0] * n_servers
            for _ in range(n):
                counts[turn] += 1
                turn = (turn + 1) % n_servers
        day = days[(now - first_day) // DAY_MS]
        for s, n_s in enumerate(counts):
            if not n_s:
                continue
            if now >= expires[s]:
                fraction[s] = ask(now)
                expires[s] = now + ttl
            served = binomial(rng, n_s, fraction[s])
            if not served:
                continue
            day.requests_served += served
            day.last_served_ms = now
            blind = stop is not None and now >= stop
            if blind:
                result.blind_requests += served
                if now >= result.bound_ms:
                    result.after_bound_requests += served
            for _ in range(binomial(rng, served, market.ctr)):
                at = now + (rand() * step_ms if arrivals == "poisson" else 0)
                click_ms = int(at + min(lognormal(rng, market.click_delay_median_ms, market.click_delay_sigma),
                                        market.click_delay_max_ms))
                price = min(int(lognormal(rng, market.price_median_micros, market.price_sigma)),
                            market.price_max_micros)
                click_day = (click_ms - first_day) // DAY_MS
                if click_day < n_days:
                    days[click_day].spent_micros += price
                    days[click_day].clicks += 1
                if blind:
                    result.blind_clicks += 1
                    result.blind_micros += price
                    if now >= result.bound_ms:
                        result.after_bound_micros += price
                visible_at = click_ms + choice(spend_ms)
                if stop is None or visible_at < stop:
                    heapq.heappush(heap, (visible_at, click_ms, price))
    return result


# --- freshness measured on the local stack -------------------------------------------------------
class SpendSampler:
    """Every `interval_s`: one BatchGetItem of the campaigns' spend items for today (`bk`) and
    the pulse (`pt`); each sample is (time the answer arrived, {campaign: bk}, pt)."""

    def __init__(self, table: str, campaigns: list[str], interval_s: float = 0.1):
        import boto3

        from serving.keys import PULSE_KEY

        self._ddb, self.table, self.campaigns, self.interval_s = boto3.client("dynamodb"), table, campaigns, interval_s
        self._pulse_key = {k: {"S": v} for k, v in PULSE_KEY.items()}
        self.samples: list[tuple[float, dict[str, int], Optional[int]]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="budget-sampler", daemon=True)

    def start(self) -> "SpendSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def read(self) -> tuple[float, dict[str, int], Optional[int]]:
        from serving.keys import PULSE_ATTR, series_pk, ts

        day = ts(floor_to(int(time.time() * 1000), DAY_MS))
        keys = [self._pulse_key] + [{"pk": {"S": series_pk(c, "1d", "spend")}, "sk": {"S": day}}
                                    for c in self.campaigns]
        items = self._ddb.batch_get_item(RequestItems={self.table: {"Keys": keys}})["Responses"][self.table]
        at = time.time()  # the answer's arrival: an upper bound of when what it shows became visible
        bk, pulse = {}, None
        for item in items:
            if item["pk"]["S"] == self._pulse_key["pk"]["S"]:
                pulse = int(item[PULSE_ATTR]["N"])
            else:
                bk[item["pk"]["S"].split("#")[1]] = int(item.get("bk", {"N": "0"})["N"])
        return at, bk, pulse

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.samples.append(self.read())
            except Exception:
                self.errors += 1
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))



def visibility_s(samples: Sequence[tuple[float, dict, Optional[int]]],
                 clicks: Sequence[tuple[float, str, int]]) -> list[Optional[float]]:
    """clicks: (sent at, campaign, price micros) of the accepted clicks; samples: (time,
    {campaign: bk}, pt) in time order. Per campaign in sending order, the i-th click is visible
    at the first sample at or after its sending whose bk reaches the sum of the prices of the
    campaign's first i clicks (local/freshness.py's rank method, on cost). Seconds, in sending
    order; None: never seen."""
    out: list[Optional[float]] = []
    cumulative: dict[str, int] = {}
    for sent, campaign, price in sorted(clicks):
        cumulative[campaign] = cumulative.get(campaign, 0) + price
        need = cumulative[campaign]
        seen = next((t for t, bk, _ in samples if t >= sent and bk.get(campaign, 0) >= need), None)
        out.append(None if seen is None else seen - sent)
    return out


def residential_ip(rng: random.Random, taken: set[str]) -> str:
    from common import ivt
    from tools.loadgen import _RESIDENTIAL_FIRST_OCTETS

    datacenters = ivt.default_datacenters()
    while True:
        ip = (f"{rng.choice(_RESIDENTIAL_FIRST_OCTETS)}.{rng.randrange(256)}.{rng.randrange(256)}."
              f"{rng.randrange(1, 255)}")
        if ip not in taken and datacenters.provider(ip) is None:
            taken.add(ip)
            return ip


def measure_freshness(args, argv: list[str]) -> None:
    """Post valid, billable clicks (each its own user, address and impression: no IVT rule
    fires) one per request at `args.rate` for `args.seconds`, sample the spend items and the
    pulse every 100 ms, write the distributions."""
    import urllib3
    from clickagg_sdk import ClickClient, TokenIssuer

    from common.config import IngestSettings
    from local.readback import click_token_keys
    from local.stack import LocalStack, StackOptions
    from tools.loadgen import BROWSER_UAS

    load_before = os.getloadavg()
    started = datetime.now(timezone.utc)
    run = uuid.uuid4().hex[:6]
    campaigns = [f"bud-{run}-{i}" for i in range(args.campaigns)]
    rng = random.Random(7)
    options = StackOptions(settings=IngestSettings(click_token_mode="enforce"), state_dir=args.state_dir,
                           archive=False, glue=False)
    with LocalStack(options) as stack:
        if not stack.flink_job:
            raise SystemExit("no Flink job: .venv-flink is missing (make setup)")
        t_ready = stack.flink_job.wait_ready()
        t_chk = stack.flink_job.wait_checkpoint()
        print(f"stack up (state and logs in {args.state_dir}); Flink job submitted after {t_ready:.0f}s, "
              f"first checkpoint {t_chk:.0f}s later", flush=True)
        sampler = SpendSampler(stack.names.serving_table, campaigns)
        deadline = time.monotonic() + 180
        while sampler.read()[2] is None:  # the lane runs end to end once a pulse has landed
            if time.monotonic() > deadline:
                raise SystemExit("no pulse item (META#pulse) in the serving table after 180 s: the sink "
                                 "does not write the budget lane's rows")
            time.sleep(0.5)
        print(f"first pulse landed; sending {args.rate:g} clicks/s for {args.seconds}s to {len(campaigns)} "
              "campaigns, one click per request", flush=True)
        sampler.start()
        issuer = TokenIssuer(click_token_keys(stack.names.click_token_secret), ttl_s=3600)
        client = ClickClient(stack.api.url, timeout_s=30.0, http=urllib3.PoolManager(maxsize=1))
        taken: set[str] = set()
        sent: list[tuple[float, str, int]] = []
        outcomes: Counter = Counter()
        t0 = time.monotonic()
        total = int(args.seconds * args.rate)
        for i in range(total):
            time.sleep(max(0.0, t0 + i / args.rate - time.monotonic()))
            campaign = campaigns[i % len(campaigns)]
            price = rng.randrange(100_000, 2_000_001, 10_000)  # 0.10 .. 2.00 USD
            token = issuer.issue(ad_id=f"{campaign}-ad", campaign_id=campaign, advertiser_id="adv-budget",
                                 price_micros=price, landing_url="https://shop.example/budget",
                                 issued_at=int(time.time()) - 5)
            click = {"click_id": f"c-{run}-{i:06d}", "user_id": f"u-{run}-{i:06d}",
                     "timestamp": int(time.time() * 1000), "token": token,
                     "ip": residential_ip(rng, taken), "user_agent": BROWSER_UAS[i % len(BROWSER_UAS)]}
            sent_at = time.time()
            attempt = client.post([click])
            status = attempt.decisions()[0].status if attempt.results else f"http {attempt.http_status}"
            outcomes[status] += 1
            if status == "accepted":
                sent.append((sent_at, campaign, price))
        send_s = time.monotonic() - t0
        print(f"sent {total} clicks in {send_s:.0f}s: {dict(outcomes)}; waiting for the spend to show", flush=True)
        owed: dict[str, int] = Counter()
        for _, campaign, price in sent:
            owed[campaign] += price
        wait_until = time.monotonic() + 120
        while time.monotonic() < wait_until and not (
                sampler.samples and all(sampler.samples[-1][1].get(c, 0) >= v for c, v in owed.items())):
            time.sleep(1)
        time.sleep(2)
        sampler.stop()
    load_after = os.getloadavg()
    latencies = visibility_s(sampler.samples, sent)
    visible_ms = [round(v * 1000) for v in latencies if v is not None]
    ages_ms = [round(t * 1000 - pt) for t, _, pt in sampler.samples if pt is not None]
    if not visible_ms:
        raise SystemExit(f"none of the {len(sent)} accepted clicks showed in the spend items "
                         f"({len(sampler.samples)} samples, {sampler.errors} failed reads; last sample: "
                         f"{sampler.samples[-1] if sampler.samples else None})")
    data = {
        "what": "budget lane freshness on the local stack (bench/budget.py --measure-freshness): "
                "spend_visibility_ms = per accepted click, the first ~100 ms sample of its campaign's "
                "SB#<campaign>#1d item whose bk includes it (rank by cost in sending order) minus the time "
                "its request was sent; pulse_age_ms = per sample, its time minus META#pulse pt. Sample "
                "times are the BatchGetItem answers' arrival (an upper bound).",
        "command": "python bench/budget.py " + " ".join(argv),
        "date": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1_5_15_before": [round(x, 2) for x in load_before],
                    "load_average_1_5_15_after": [round(x, 2) for x in load_after]},
        "settings": {"seconds": args.seconds, "clicks_per_s": args.rate, "campaigns": len(campaigns),
                     "clicks_per_request": 1, "sample_interval_ms": 100, "click_token_mode": "enforce",
                     "flink": options.flink_settings, "budget_emit_interval_ms": "job default (500)"},
        "clicks": {"sent": total, "outcomes": dict(outcomes), "accepted": len(sent), "seen": len(visible_ms),
                   "samples": len(sampler.samples), "failed_reads": sampler.errors},
        "spend_visibility_ms": {**summary(visible_ms), "samples": visible_ms},
        "pulse_age_ms": {**summary(ages_ms), "samples": ages_ms},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    sv, pa = data["spend_visibility_ms"], data["pulse_age_ms"]
    print(f"spend visible (ms, {sv['n']} of {len(sent)} clicks): p50 {sv['p50']} p90 {sv['p90']} p95 {sv['p95']} "
          f"p99 {sv['p99']} max {sv['max']}")
    print(f"pulse age (ms, {pa['n']} samples): p50 {pa['p50']} p90 {pa['p90']} p95 {pa['p95']} p99 {pa['p99']} "
          f"max {pa['max']}")
    print(f"load average before {load_before}, after {load_after}; written {args.out}")


# --- the bench -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    label: str
    policy: PacingPolicy
    freshness: Freshness


@dataclass
class Cell:
    worst: RunResult
    worst_seed: int
    overspends: list[float]
    after_bound: tuple[int, int] = (0, 0)  # stream stopped: requests, micros past the bound, all seeds

    @property
    def worst_pct(self) -> float:
        return max(self.overspends)


def hms(ms: Optional[int]) -> str:
    if ms is None:
        return "-"
    s = (ms % DAY_MS) // 1000
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run_cell(scenario: Scenario, market: Market, column: Column, seeds: Sequence[int], span_s: float) -> Cell:
    runs = [(seed, simulate(scenario, market, column.policy, column.freshness, seed, span_s)) for seed in seeds]
    overspends = [r.overspend_pct(r.worst_day()) for _, r in runs]
    seed, worst = max(runs, key=lambda t: t[1].overspend_pct(t[1].worst_day()))
    after_bound = (sum(r.after_bound_requests for _, r in runs), sum(r.after_bound_micros for _, r in runs))
    return Cell(worst, seed, overspends, after_bound)


def print_table(rows: list[tuple[Scenario, Column, Cell]]) -> None:
    print("| scenario | policy | freshness | spent / budget | overspend % of daily (worst; mean) | "
          "requests served | clicks | last served | worst seed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario, column, cell in rows:
        r = cell.worst
        d = r.days[r.worst_day()]
        print(f"| {scenario.key} {scenario.title} | {column.label} | {column.freshness.name} | "
              f"{d.spent_micros / r.budget_micros:.4f} | {cell.worst_pct:.3f} ; "
              f"{statistics.fmean(cell.overspends):.3f} | {d.requests_served} | {d.clicks} | "
              f"{hms(d.last_served_ms)} | {cell.worst_seed} |")


def print_stream_stopped(rows: list[tuple[Scenario, Column, Cell]]) -> None:
    for scenario, column, cell in rows:
        r = cell.worst
        if r.stop_ms is None:
            continue
        print(f"  {scenario.key} {column.label} ({column.freshness.name}): stream stopped {hms(r.stop_ms)}, "
              f"fail-closed bound {hms(r.bound_ms)} (last pulse + stale_after + cache ttl); served after "
              f"the stop {r.blind_requests} requests -> {r.blind_clicks} clicks = "
              f"{r.blind_micros * 100 / r.budget_micros:.3f} % of the daily budget; after the bound "
              f"{r.after_bound_requests} requests, {r.after_bound_micros} micros"
              + (f" (all seeds: {cell.after_bound[0]} requests, {cell.after_bound[1]} micros)"
                 if len(cell.overspends) > 1 else ""))


def print_ratios(rows: list[tuple[Scenario, Column, Cell]]) -> None:
    """Per freshness: the predictive policy's worst overspend over the reactive baseline's."""
    cells = {(s.key, c.label, c.freshness.name): cell for s, c, cell in rows}
    keys = sorted({s.key for s, _, _ in rows})
    for name in dict.fromkeys(c.freshness.name for _, c, _ in rows):
        parts = []
        for key in keys:
            pred, react = cells.get((key, "predictive", name)), cells.get((key, "reactive", name))
            if pred and react:
                parts.append(f"{key} {pred.worst_pct / react.worst_pct:.2f}" if react.worst_pct > 0
                             else f"{key} - (reactive 0)")
        print(f"overspend predictive / reactive, {name} freshness (worst of the seeds): " + ", ".join(parts))


def check_stream_stopped(rows) -> None:
    for scenario, column, cell in rows:
        if cell.worst.stop_ms is not None and any(cell.after_bound):
            raise AssertionError(f"{scenario.key} {column.label}: {cell.after_bound[0]} requests "
                                 f"({cell.after_bound[1]} micros) served past the fail-closed bound")


def run_bench(args) -> None:
    local = Freshness.load(args.freshness)
    design = local.scaled(DESIGN_SPEND_P95_MS, "design")
    market = Market(ad_servers=args.ad_servers, click_delay_median_ms=args.click_delay_median_ms)
    predictive, reactive = PacingPolicy(), PacingPolicy(predictive=False)
    columns = [Column("reactive", reactive, local), Column("predictive", predictive, local),
               Column("reactive", reactive, design), Column("predictive", predictive, design)]
    if args.smoke:
        span_s, seeds = 40 * 60, [args.seed]
        chosen = [s for s in scenarios(viral_start_s=600, hold_s=1500, stop_after_viral_s=420)
                  if s.key in "bcd"]
        columns = columns[:2]
    else:
        span_s, seeds = args.days * DAY_MS / 1000, list(range(args.seed, args.seed + args.seeds))
        chosen = [s for s in scenarios() if s.key in args.scenarios]
    span = f"{span_s / 86_400:g} day(s)" if span_s % 86_400 == 0 else f"{span_s / 60:g} minutes"
    print(f"budget bench: {span} from {hms(DAY0_MS)} UTC, {STEP_MS} ms steps, seeds {seeds[0]}..{seeds[-1]} "
          f"(worst shown){' (smoke run: figures mean little)' if args.smoke else ''}")
    print(f"market: {market.describe()}")
    print(f"policy: stale after {predictive.stale_after_ms} ms, stale serve {predictive.stale_serve_percent} %, "
          f"cache ttl {predictive.cache_ttl_ms} ms, emit interval {predictive.emit_interval_ms} ms")
    source = args.freshness.relative_to(REPO) if args.freshness.is_relative_to(REPO) else args.freshness
    print(f"freshness local ({source}): {local.describe()}")
    print(f"freshness design (local shapes x {quantile(design.spend_ms, .95) / quantile(local.spend_ms, .95):.3f}): "
          f"{design.describe()}")
    for s in chosen:
        d = s.demand
        print(f"scenario {s.key}: {s.title}: base demand {d.multiple:g}x"
              + (f", viral from {hms(DAY0_MS + int(d.viral_start_s * 1000))} to {d.viral_multiple:g}x the base "
                 f"in {d.ramp_s:g} s, held {d.hold_s:g} s" if d.viral_multiple != 1 else "")
              + f", pacing {s.pacing}"
              + (f", stream stopped at {hms(DAY0_MS + int(s.stream_stop_s * 1000))}" if s.stream_stop_s else ""))
    rows = []
    t0 = time.monotonic()
    for s in chosen:
        for column in columns:
            rows.append((s, column, run_cell(s, market, column, seeds, span_s)))
    print(f"({len(rows) * len(seeds)} runs in {time.monotonic() - t0:.0f} s)\n")
    print_table(rows)
    print()
    print_stream_stopped(rows)
    print_ratios(rows)
    goal = [(s, c, cell) for s, c, cell in rows if c.label == "predictive" and c.freshness.name == "design"]
    if goal:
        print("goal (overspend <= 1 % of the daily budget, predictive at the design freshness): "
              + ", ".join(f"{s.key} {cell.worst_pct:.3f} % {'met' if cell.worst_pct <= 1 else 'MISSED'}"
                          for s, c, cell in goal if s.stream_stop_s is None))
    for s, c, cell in rows:
        if s.stream_stop_s is not None and c.label == "predictive":
            print(f"goal (stream stopped: 0 beyond the fail-closed bound), {s.key} {c.label} {c.freshness.name}: "
                  f"{cell.after_bound[0]} requests, {cell.after_bound[1]} micros served past it in "
                  f"{len(cell.overspends)} runs {'met' if not any(cell.after_bound) else 'MISSED'} "
                  f"(overspend, all of it served before the bound: {cell.worst_pct:.3f} %)")
    check_stream_stopped(rows)
    if args.smoke:
        by = {(s.key, c.label): cell for s, c, cell in rows}
        for key in "bc":
            reactive_pct, predictive_pct = by[(key, "reactive")].worst_pct, by[(key, "predictive")].worst_pct
            if reactive_pct < predictive_pct:
                raise AssertionError(f"scenario {key}: the reactive baseline overspent less than the predictive "
                                     f"policy ({reactive_pct} < {predictive_pct})")
        print("smoke invariants hold: nothing served past the fail-closed bound; reactive >= predictive overspend "
              "in the viral scenarios")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--measure-freshness", action="store_true", help="measure on the local stack (minutes)")
    p.add_argument("--seconds", type=int, default=120, help="--measure-freshness: how long to send clicks")
    p.add_argument("--rate", type=float, default=5.0, help="--measure-freshness: clicks/s")
    p.add_argument("--campaigns", type=int, default=4, help="--measure-freshness: campaigns")
    p.add_argument("--out", type=Path, default=FRESHNESS_FILE, help="--measure-freshness: the JSON written")
    p.add_argument("--state-dir", type=Path, default=REPO / ".local" / "bench-budget",
                   help="--measure-freshness: the stack's state and logs")
    p.add_argument("--days", type=int, default=1, help="simulated UTC days")
    p.add_argument("--seed", type=int, default=1, help="first seed")
    p.add_argument("--seeds", type=int, default=5, help="seeds per cell (the worst is shown)")
    p.add_argument("--scenarios", default="abcd", help="which scenarios (letters)")
    p.add_argument("--ad-servers", type=int, default=Market.ad_servers)
    p.add_argument("--click-delay-median-ms", type=float, default=Market.click_delay_median_ms,
                   help="0: a click is accepted the moment its ad is served")
    p.add_argument("--freshness", type=Path, default=FRESHNESS_FILE, help="the measured distribution")
    p.add_argument("--smoke", action="store_true", help="seconds: a 40-minute span, one seed, invariants checked")
    args = p.parse_args(argv)
    if args.measure_freshness:
        measure_freshness(args, argv if argv is not None else sys.argv[1:])
    else:
        run_bench(args)


if __name__ == "__main__":
    main()
