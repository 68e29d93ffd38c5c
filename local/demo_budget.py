"""The budget lane end to end through the local stack (docs/budget.md), for the demo and
tests/integration/test_budget_lane.py:

1. a campaign gets a small daily budget (PUT /v1/campaigns/{id}/budget over HTTP);
2. an ad server asks GET /v1/campaigns/{id}/pacing before every ad it serves while the answer
   is `serve`, until it is `stop`; each served ad is clicked CLICK_DELAY_S later (a click token
   at a fixed price), so clicks keep arriving after the stop, as they do in production (the
   stack's budget_click_delay_ms is set to that delay: the margin the decision keeps for them);
3. clicks of ads another ad server served before the stop arrive too (the excess);
4. the realtime spend (the Flink job's spend lane, via the sink) must equal clicks x price;
5. the Flink job is stopped: within budget_stale_after_ms the pacing answer turns `stop`
   (reason `stale`), then the job is restored and the lane is fresh again;
6. after the nightly billing of the day (POST /v1/reconcile): billed cost <= budget and within one
   click's price of it, every click past the budget flagged `over_budget`, and the
   reconciliation's spend section shows the realtime spend (uncapped) = the batch's valid cost.

Ground truth is this module's own: it knows every click it sent and its price.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import requests

from common.click_token import ClickClaims, issue
from common.config import BudgetSettings
from local.readback import click_token_keys
from tools.loadgen import BROWSER_UAS

CAMPAIGN, AD, ADVERTISER = "cmp-budget", "ad-budget-0", "adv-budget"  # not in the load's catalog
PRICE_MICROS = 37_000  # 0.037 per click: the budget is not a multiple of it
DAILY_MICROS = 1_000_000
CLICK_INTERVAL_S = 0.4  # an ad served every 0.4 s: the budget lasts ~11 s of clicks
CLICK_DELAY_S = 3.0  # from serving an ad to its click (the stack's budget_click_delay_ms)
EXCESS_CLICKS = 5  # clicks of ads served just before the stop, arriving after it
MAX_REQUESTS = 400  # the budget allows 27 clicks; anything near this is a failure


@dataclass
class BudgetRun:
    clicks: list[str] = field(default_factory=list)  # click ids in event-time order
    served_before_stop: int = 0
    stop_reason: str = ""
    day: str = ""

    @property
    def within_budget(self) -> int:
        """Clicks the billing may bill: the first ones whose running cost stays <= the budget."""
        return DAILY_MICROS // PRICE_MICROS


def _pacing(url: str, campaign: str = CAMPAIGN) -> dict:
    return requests.get(f"{url}/v1/campaigns/{campaign}/pacing", timeout=30).json()


def _wait(predicate, timeout_s: float, interval_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    return None


def _residential_ip(rng: random.Random) -> str:
    """An address no IVT rule flags (not in the datacenter list): every click here is valid."""
    from common import ivt
    while True:
        ip = f"81.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if ivt.default_datacenters().provider(ip) is None:
            return ip


def _click(keys, i: int, rng: random.Random, event_ms: int) -> dict:
    now_s = int(time.time())
    claims = ClickClaims(impression_id=f"imp-budget-{i}", ad_id=AD, campaign_id=CAMPAIGN,
                         advertiser_id=ADVERTISER, price_micros=PRICE_MICROS,
                         issued_at=now_s - 5, expires_at=now_s + 3600,  # > 1 s ago: not too fast
                         landing_url="https://adv-budget.shop.example/landing")
    return {"click_id": f"budget-{i:04d}", "user_id": f"budget-user-{i}", "timestamp": event_ms,
            "ip": _residential_ip(rng),
            "user_agent": rng.choice(BROWSER_UAS), "token": issue(claims, keys)}


def realtime_spend(table: str, day_start_ms: int) -> int:
    import boto3

    from serving.keys import series_key
    item = boto3.client("dynamodb").get_item(
        TableName=table, Key={k: {"S": v} for k, v in series_key(CAMPAIGN, "1d", day_start_ms, "spend").items()}
    ).get("Item")
    return int(item["bk"]["N"]) if item else 0


def clear_of_midnight(margin_s: float = 240) -> None:
    """Wait for the next UTC day when it is less than `margin_s` away: the section's clicks,
    realtime spend and billing are one UTC day's (any hour of the day works, this way)."""
    to_midnight = 86_400 - time.time() % 86_400
    if to_midnight < margin_s:
        print(f"  waiting {to_midnight + 2:.0f}s for the next UTC day (one day's budget)")
        time.sleep(to_midnight + 2)


def budget_section(stack, checks) -> BudgetRun:
    url, run, rng = stack.api.url, BudgetRun(), random.Random(20)
    clear_of_midnight()
    print("\nbudget lane (docs/budget.md): a campaign with a daily budget of "
          f"{DAILY_MICROS / 1e6:.2f} and clicks at {PRICE_MICROS / 1e6:.3f}")
    put = requests.put(f"{url}/v1/campaigns/{CAMPAIGN}/budget", timeout=30,
                       json={"daily_budget_micros": DAILY_MICROS, "pacing": "asap"})
    checks.equal("budget: PUT answered 200 with the budget", (put.status_code, put.json().get("daily_budget_micros")),
                 (200, DAILY_MICROS))
    fresh = _wait(lambda: (p := _pacing(url))["figure_age_ms"] is not None and p["decision"] == "serve", 180)
    checks.equal("budget: the lane is fresh (a pulse landed) and the campaign may serve", bool(fresh), True)
    if not fresh:
        return run
    keys = click_token_keys(stack.names.click_token_secret)
    ages, pending = [], []  # pending: (click due at, served index) of ads served, not clicked yet
    last_event_ms = [0]

    def click_due(until: float) -> None:
        while pending and pending[0][0] <= until:
            _, i = pending.pop(0)
            # event times strictly increase with the serving order (the billing's order)
            event_ms = max(int(time.time() * 1000), last_event_ms[0] + 1)
            last_event_ms[0] = event_ms
            click = _click(keys, i, rng, event_ms)
            requests.post(f"{url}/v1/clicks", json={"clicks": [click]}, timeout=30).raise_for_status()
            run.clicks.append(click["click_id"])

    for _ in range(MAX_REQUESTS):
        answer = _pacing(url)
        ages.append(answer["figure_age_ms"])
        if answer["decision"] == "stop":
            run.stop_reason = answer["reason"]
            break
        pending.append((time.monotonic() + CLICK_DELAY_S, run.served_before_stop))
        run.served_before_stop += 1
        time.sleep(CLICK_INTERVAL_S)
        click_due(time.monotonic())
    in_flight = len(pending)
    click_due(float("inf") if not pending else pending[-1][0])  # the served ads' clicks, as due
    for k in range(EXCESS_CLICKS):  # another ad server's, served before it heard of the stop
        pending.append((0.0, run.served_before_stop + k))
        click_due(0.0)
    event_ms = last_event_ms[0]
    day_start = event_ms - event_ms % 86_400_000
    run.day = datetime.fromtimestamp(day_start / 1000, timezone.utc).date().isoformat()
    print(f"  the ad server served {run.served_before_stop} ads while the answer was serve (each clicked "
          f"{CLICK_DELAY_S:g} s later, {in_flight} of them after the stop), then {EXCESS_CLICKS} clicks of "
          f"another server's ads; stop reason {run.stop_reason!r}; figure age while serving: "
          f"median {sorted(a for a in ages if a is not None)[len(ages) // 2]} ms, max {max(a for a in ages if a is not None)} ms")
    checks.equal("budget: the pacing answer turned stop on the budget (exhausted or predicted)",
                 run.stop_reason in ("exhausted", "predicted_exhaustion"), True)
    # the stop comes when the figure plus velocity x (age + emit + cache + click delay) reaches the
    # budget: the served ads' clicks then fill it, give or take the velocity estimate's error
    # (bench/budget.py measures that by design); the excess clicks make sure it is reached
    over = run.served_before_stop - run.within_budget
    print(f"  ads served past what the budget pays for: {over} ({over * PRICE_MICROS / DAILY_MICROS:+.1%} "
          f"of the daily budget at {1 / CLICK_INTERVAL_S:.1f} ads/s and this machine's freshness)")
    checks.equal("budget: the clicks sent reach the budget (so the billing can bill exactly it)",
                 len(run.clicks) > run.within_budget, True)
    want = len(run.clicks) * PRICE_MICROS
    got = _wait(lambda: (s := realtime_spend(stack.names.serving_table, day_start)) == want and s, 300) or \
        realtime_spend(stack.names.serving_table, day_start)
    checks.equal("budget: realtime spend (the spend lane) = every click x its price (uncapped)", got, want)
    stale_section(stack, checks)
    return run


def stale_section(stack, checks) -> None:
    """Stop the Flink job: every decision turns `stop` (reason stale) once the pulse is older than
    budget_stale_after_ms; restore the job from its checkpoint and wait until fresh again."""
    url, bound = stack.api.url, BudgetSettings.from_env().budget_stale_after_ms
    if stack.flink_job is None:
        checks.failures.append("budget: no Flink job to stop")
        return
    requests.put(f"{url}/v1/campaigns/cmp-budget-big/budget", json={"daily_budget_micros": 10 ** 12,
                                                                    "pacing": "asap"}, timeout=30)
    before = _wait(lambda: _pacing(url, "cmp-budget-big")["decision"] == "serve", 60)
    t0 = time.monotonic()
    stack.flink_job.stop()
    stale = _wait(lambda: (p := _pacing(url, "cmp-budget-big"))["reason"] == "stale" and p, bound / 1000 + 30)
    waited = time.monotonic() - t0
    print(f"  Flink job stopped: pacing answered {stale and stale['decision']!r} (reason "
          f"{stale and stale['reason']!r}, figure age {stale and stale['figure_age_ms']} ms) "
          f"{waited:.1f}s later (bound {bound} ms)")
    checks.equal("budget: with the job stopped, a campaign with budget left is told to stop (fail closed)",
                 (bool(before), stale and stale["decision"], stale and stale["figure_age_ms"] > bound),
                 (True, "stop", True))
    stack.start_flink(fresh=False)
    back = _wait(lambda: _pacing(url, "cmp-budget-big")["decision"] == "serve", 240, 1.0)
    print(f"  Flink job restored from its checkpoint: serve again after {time.monotonic() - t0 - waited:.0f}s")
    checks.equal("budget: the restored job's pulse makes the lane fresh again", bool(back), True)


def budget_billing_section(checks, run: BudgetRun, out_path, rec: dict) -> None:
    """After the day's billing and reconciliation: the batch truth of the budget campaign."""
    import pyarrow.parquet as pq

    spend = [r for r in pq.read_table(out_path / "campaign_spend" / f"dt={run.day}").to_pylist()
             if r.get("campaign_id") == CAMPAIGN]
    flagged = [r for r in pq.read_table(out_path / "flagged" / f"dt={run.day}").to_pylist()
               if r.get("campaign_id") == CAMPAIGN and r.get("over_budget")]
    billed = sum(r["billed_cost_micros"] for r in spend)
    print(f"  budget campaign {CAMPAIGN}: billed {billed / 1e6:.3f} of {DAILY_MICROS / 1e6:.3f}, "
          f"{len(flagged)} clicks flagged over_budget of {len(run.clicks)} sent")
    checks.equal("budget: billed cost <= budget and within one click's price of it",
                 DAILY_MICROS - PRICE_MICROS < billed <= DAILY_MICROS, True)
    checks.equal("budget: billed = the clicks the budget pays for x price", billed,
                 run.within_budget * PRICE_MICROS)
    checks.equal("budget: every click past the budget flagged over_budget (the last ones sent)",
                 sorted(r["click_id"] for r in flagged), run.clicks[run.within_budget:])
    section = rec.get("spend") or {}
    print(f"  reconciliation spend section: batch {section.get('batch')}, realtime {section.get('realtime')}, "
          f"drift {(section.get('total_drift') or 0):.4%}, drifting campaigns {section.get('drifting_campaigns')}")
    checks.equal("budget: reconciliation has a spend section, the budget campaign not drifting "
                 "(realtime spend, uncapped = the batch's valid cost)",
                 (bool(section), CAMPAIGN in [d["campaign_id"] for d in section.get("drifting", [])]),
                 (True, False))


def reconcile(stack, day: str, timeout_s: float = 900) -> dict:
    """POST /v1/reconcile?day= and wait for the local workflow run; GET /v1/quality's
    reconciliation afterwards ({} when the run failed)."""
    started = requests.post(f"{stack.api.url}/v1/reconcile", params={"day": day}, timeout=30)
    if started.status_code != 202:
        print(f"  POST /v1/reconcile?day={day}: HTTP {started.status_code} {started.text[:200]}")
        return {}
    run_id = started.json()["run_id"]
    result = _wait(lambda: next((r for r in stack.glue_workflow.results if r.run_id == run_id), None),
                   timeout_s, 1.0)
    if result is None or result.status != "SUCCEEDED":
        log = stack.options.state_dir / f"glue-{run_id}.log"
        print(log.read_text()[-3000:] if log.exists() else "  (no log)")
        return {}
    stack.emf.drain()
    return requests.get(f"{stack.api.url}/v1/quality", params={"last": "24h"}, timeout=30).json()["reconciliation"] or {}
