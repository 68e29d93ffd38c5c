"""The nightly billing's budget truth (docs/budget.md, "Batch truth"; glue_jobs/billing/transform.py,
6.) on the billing scenario (tests/glue/scenario.py: background and every IVT case) plus hand-placed
budget cases, against the independent oracle (tests/glue/oracle.py: budgets_of_day,
over_budget_clicks, billing_oracle(budgets=...)) and hand-written outcomes: a campaign crossing its
budget, one exactly reaching it, a budget lowered mid-day, versions set at or after the day's end,
campaigns without a budget, invalid and suspect clicks among budgeted ones, ties in event time,
an unknown ingest time. The budgets also come through the entry points from a moto table."""
from __future__ import annotations

import sys
from datetime import date, timedelta

import pytest

from glue_jobs.billing.budgets import BudgetVersion, budgets_for_day
from glue_jobs.billing.outputs import CAMPAIGN_SPEND_COLUMNS, names
from glue_jobs.billing.run import read_raw, run_day
from glue_jobs.billing.transform import BillingSettings, flag_clicks, transform
from glue_jobs.reconcile import reconcile
from tests.glue.oracle import billing_oracle, budgets_of_day, day_start, first_copies, read_window
from tests.glue.scenario import BOT_UA, DAY_MS, HOUR, build
from tests.glue.test_billing import (  # noqa: F401  (fixtures)
    AFTER_MIDNIGHT, GlueRuntime, glue_argv, glue_billing_job, keyed, read_day, recorded_run_day,
)
from tests.glue.test_budgets import history_item

DAY = date(2026, 3, 10)
SETTINGS = BillingSettings()
D0 = day_start(DAY)
END = D0 + DAY_MS
MIN = 60_000
SPEND_KEYS = ("campaign_id", "advertiser_id")
SPEND_METRICS = [c for c in names(CAMPAIGN_SPEND_COLUMNS) if c not in SPEND_KEYS + ("day", "budget_revision")]


def build_world(day: date):
    """(scenario, budget history as plain dicts). Hand-placed clicks: unique users and ips, so no
    IVT rule touches them unless meant to; campaigns of their own (advertiser v-budget)."""
    s = build(day)
    d0 = s.d0
    k = [0]

    def hand(campaign, event, cost, name, *, click_id=None, ingest=None, arrival=None, user=None, ua="sdk/1.0",
             ad=200):
        k[0] += 1
        c = s.click(event, ingest=ingest, arrival=arrival, ad=ad, user=user or f"bu-{k[0]}",
                    ip=f"192.168.{100 + k[0] // 200}.{k[0] % 200}", cost=cost, click_id=click_id, name=name, ua=ua)
        c["campaign_id"], c["advertiser_id"] = campaign, "v-budget"
        return c

    history = []

    def budget(campaign, daily, set_at, rev=1):
        history.append({"campaign_id": campaign, "daily": daily, "set_at": set_at, "rev": rev})

    h = lambda hours, minutes=0, seconds=0: d0 + hours * HOUR + minutes * MIN + seconds * 1000  # noqa: E731
    # crossing: 10 x 0.1, budget 0.35: three billed (0.3), the fourth reaches 0.4
    for i in range(10):
        hand("cmp-cross", h(1, i), 100_000, "cross")
    budget("cmp-cross", 350_000, d0 - 5 * DAY_MS)
    # reaching it exactly is billed; one micro more is not
    for i, cost in enumerate((200_000, 150_000, 1)):
        hand("cmp-exact", h(2, i), cost, "exact")
    budget("cmp-exact", 350_000, d0 - DAY_MS)
    # lowered at noon to 0.25: the day's budget for the morning's clicks too; a version set at
    # the day's end and one later are the next day's
    for i in range(6):
        hand("cmp-lowered", h(3 + i), 100_000, "lowered")
    budget("cmp-lowered", 10_000_000, d0 - 2 * DAY_MS, 1)
    budget("cmp-lowered", 250_000, h(12), 2)
    budget("cmp-lowered", 10_000_000, d0 + DAY_MS, 3)
    budget("cmp-lowered", 1, d0 + DAY_MS + 6 * HOUR, 4)
    # no budget; a budget first set at the day's end (not D's)
    for i in range(5):
        hand("cmp-none", h(4, i), 5_000_000, "none")
    for i in range(4):
        hand("cmp-after", h(5, i), 1_000_000, "after")
    budget("cmp-after", 1, d0 + DAY_MS)
    # invalid and suspect clicks neither consume the budget nor are over it
    hand("cmp-ivt", h(6, 0), 1_000_000, "ivt_bot_1", ua=BOT_UA)
    hand("cmp-ivt", h(6, 1), 100_000, "ivt_valid")
    hand("cmp-ivt", h(6, 2), 1_000_000, "ivt_bot_2", ua=BOT_UA)
    hand("cmp-ivt", h(6, 3), 100_000, "ivt_valid", user="ivt-rep", ad=210)
    hand("cmp-ivt", h(6, 3, 5), 900_000, "ivt_repeat", user="ivt-rep", ad=210)  # user_repeat: suspect
    hand("cmp-ivt", h(6, 4), 100_000, "ivt_valid")  # 0.3 = the budget: billed
    hand("cmp-ivt", h(6, 5), 1, "ivt_over")
    hand("cmp-ivt", h(6, 6), 2_000_000, "ivt_bot_after", ua=BOT_UA)  # after the excess: still not over
    budget("cmp-ivt", 300_000, d0 - DAY_MS)
    # ties in event time: ingest time first, then click_id
    t = h(7)
    for cid, ingest in (("zz-bt-c", t + 10), ("zz-bt-a", t + 20), ("zz-bt-b", t + 20), ("zz-bt-0", t + 30)):
        hand("cmp-tie", t, 100_000, "tie", click_id=cid, ingest=ingest)
    budget("cmp-tie", 250_000, d0 - DAY_MS)
    # an unknown ingest time sorts last among equal event times
    t = h(8)
    hand("cmp-nulls", t, 100_000, "nulls", click_id="zz-bn-0", ingest="", arrival=t + 1_000)
    hand("cmp-nulls", t, 100_000, "nulls", click_id="zz-bn-1", ingest=t + 5)
    budget("cmp-nulls", 100_000, d0 - DAY_MS)
    # the background's campaigns: k0 crosses a budget of 45 % of its valid cost, k1's is lowered
    # to 60 % at 15:00 (a later version set at D's end does not count), k2 has none
    _, verdicts = billing_oracle(s.rows, day)
    valid_cost = {}
    for c, _ in s.rows:
        if verdicts.get(c["click_id"], ("",))[0] == "valid" and c["campaign_id"] in ("k0", "k1"):
            valid_cost[c["campaign_id"]] = valid_cost.get(c["campaign_id"], 0) + c["cost_micros"]
    budget("k0", valid_cost["k0"] * 45 // 100, d0 - 5 * DAY_MS)
    budget("k1", valid_cost["k1"] * 10, d0 - 5 * DAY_MS, 1)
    budget("k1", valid_cost["k1"] * 60 // 100, h(15), 2)
    budget("k1", valid_cost["k1"] * 10, d0 + DAY_MS, 3)
    return s, history


def versions(history: list[dict]) -> list[BudgetVersion]:
    return [BudgetVersion(campaign_id=h["campaign_id"], daily_micros=h["daily"], set_at_ms=h["set_at"],
                          revision=h["rev"]) for h in history]


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("billing-budget")
    scenario, history = build_world(DAY)
    scenario.write(root / "raw" / "clicks")
    raw, out = str(root / "raw" / "clicks"), str(root / "out")
    stats = run_day(spark, raw, out, DAY, SETTINGS, budgets=versions(history))
    caps = budgets_of_day(history, DAY)
    detail: dict = {}
    oracle = billing_oracle(scenario.rows, DAY, budgets=caps, detail=detail)
    return {"scenario": scenario, "history": history, "raw": raw, "out": out, "stats": stats, "caps": caps,
            "oracle": oracle, "over": detail["over_budget"], "spend": detail["spend"]}


def job_over(world) -> set[str]:
    return {r["click_id"] for r in read_day(world["out"], "flagged", DAY) if r["over_budget"]}


def spend_rows(out: str) -> dict:
    return {(r["campaign_id"], r["advertiser_id"]): r for r in read_day(out, "campaign_spend", DAY)}


def test_the_days_budgets():
    _, history = build_world(DAY)
    caps = budgets_of_day(history, DAY)
    assert {c: caps[c] for c in ("cmp-cross", "cmp-exact", "cmp-lowered", "cmp-ivt", "cmp-tie", "cmp-nulls")} == {
        "cmp-cross": 350_000, "cmp-exact": 350_000, "cmp-lowered": 250_000, "cmp-ivt": 300_000,
        "cmp-tie": 250_000, "cmp-nulls": 100_000}
    assert "cmp-none" not in caps and "cmp-after" not in caps and "k2" not in caps
    assert {c: b.daily_micros for c, b in budgets_for_day(versions(history), DAY).items()} == caps


@pytest.mark.parametrize("source", ["job", "oracle"])
def test_hand_placed_budget_cases(world, source):
    """Hand-written outcomes, checked against the job's flagged output and, separately, against
    the oracle (itself under test here)."""
    over = job_over(world) if source == "job" else world["over"]
    named = world["scenario"].named
    got = lambda name: [cid in over for cid in named[name]]  # noqa: E731
    assert got("cross") == [False] * 3 + [True] * 7
    assert got("exact") == [False, False, True]
    assert got("lowered") == [False, False] + [True] * 4  # noon's 0.25 caps the morning too
    assert got("none") == [False] * 5 and got("after") == [False] * 4
    assert got("ivt_valid") == [False] * 3 and got("ivt_over") == [True]
    assert got("ivt_bot_1") == got("ivt_bot_2") == got("ivt_repeat") == got("ivt_bot_after") == [False]
    assert {cid for cid in named["tie"] if cid in over} == {"zz-bt-b", "zz-bt-0"}
    assert {cid for cid in named["nulls"] if cid in over} == {"zz-bn-0"}
    # background campaigns: k0 and k1 run past their budgets, k2 (none) never
    campaign = {c["click_id"]: c["campaign_id"] for c, _ in world["scenario"].rows}
    per = {k: sum(1 for cid in over if campaign[cid] == k) for k in ("k0", "k1", "k2")}
    assert per["k0"] > 100 and per["k1"] > 50 and per["k2"] == 0


def test_ivt_verdicts_of_the_hand_cases(world):
    """The invalid and suspect clicks among the budgeted ones are what they are meant to be."""
    flagged = {r["click_id"]: r for r in read_day(world["out"], "flagged", DAY)}
    named = world["scenario"].named
    for name in ("ivt_bot_1", "ivt_bot_2", "ivt_bot_after"):
        assert (flagged[named[name][0]]["verdict"], flagged[named[name][0]]["reasons"]) == ("invalid", "bot_ua")
    assert (flagged[named["ivt_repeat"][0]]["verdict"], flagged[named["ivt_repeat"][0]]["reasons"]) == (
        "suspect", "user_repeat")


def test_outputs_equal_the_oracle(world):
    hourly, verdicts = world["oracle"]
    assert keyed(read_day(world["out"], "hourly", DAY)) == hourly
    flagged = read_day(world["out"], "flagged", DAY)
    assert {r["click_id"]: (r["verdict"], r["reasons"], r["over_budget"]) for r in flagged} == {
        cid: (v[0], v[1], cid in world["over"]) for cid, v in verdicts.items()
        if v[0] != "valid" or cid in world["over"]}
    assert all(r["verdict"] == "valid" and r["reasons"] == "" for r in flagged if r["over_budget"])
    got = spend_rows(world["out"])
    assert {k: {m: r[m] for m in SPEND_METRICS} for k, r in got.items()} == world["spend"]
    assert all(r["day"] == DAY.isoformat() for r in got.values())
    stats = world["stats"]
    assert stats["over_budget_clicks"] == len(world["over"]) > 300
    assert stats["over_budget_cost_micros"] == sum(s["over_budget_cost_micros"] for s in world["spend"].values())
    assert stats["billable_clicks"] == sum(m["billable_clicks"] for m in hourly.values())
    assert stats["budgeted_campaigns"] == len(world["caps"]) == 8 and stats["campaign_spend_rows"] == len(got)


def test_billed_cost_is_capped_by_the_budget(world):
    """Per campaign-day: billed <= budget; where clicks were flagged, billed > budget - the first
    flagged click's price, and every valid click after it (in order) is flagged, none billed."""
    got = spend_rows(world["out"])
    clicks, _ = first_copies(read_window(world["scenario"].rows, DAY))  # the copy billed
    _, verdicts = world["oracle"]
    over = job_over(world)
    crossed = []
    for campaign in sorted({k[0] for k in got}):
        rows = [r for k, r in got.items() if k[0] == campaign]
        budget = rows[0]["budget_micros"]
        billed = sum(r["billed_cost_micros"] for r in rows)
        assert all(r["budget_micros"] == budget for r in rows)
        assert sum(r["valid_cost_micros"] for r in rows) == billed + sum(r["over_budget_cost_micros"] for r in rows)
        if budget is None:
            assert all(r["over_budget_clicks"] == 0 for r in rows), campaign
            continue
        assert billed <= budget, campaign
        valid = sorted((c for cid, c in clicks.items() if c["campaign_id"] == campaign
                        and verdicts.get(cid, ("",))[0] == "valid"),
                       key=lambda c: (c["event_time"], c["ingest_time"] is None, c["ingest_time"] or 0, c["click_id"]))
        flags = [c["click_id"] in over for c in valid]
        if any(flags):
            crossed.append(campaign)
            first = flags.index(True)
            assert all(flags[first:]), campaign  # every excess click flagged
            assert billed == sum(c["cost_micros"] for c in valid[:first]) > budget - valid[first]["cost_micros"]
    assert crossed == ["cmp-cross", "cmp-exact", "cmp-ivt", "cmp-lowered", "cmp-nulls", "cmp-tie", "k0", "k1"]
    # by hand: the crossing campaign and the one with invalid and suspect clicks
    assert [(got[("cmp-cross", "v-budget")][m], got[("cmp-ivt", "v-budget")][m]) for m in SPEND_METRICS] == [
        (350_000, 300_000),        # budget_micros
        (10, 4), (1_000_000, 300_001),  # valid clicks, cost
        (3, 3), (300_000, 300_000),     # billed
        (7, 1), (700_000, 1)]           # over budget
    assert got[("cmp-none", "v-budget")]["budget_micros"] is None
    assert got[("cmp-lowered", "v-budget")]["budget_revision"] == 2


def test_without_budgets_nothing_is_over_budget(world, spark, tmp_path):
    """No history (no table given) and a history of other campaigns: nothing is flagged over
    budget, billed = valid, and the outputs are the budget-free oracle's."""
    hourly, _ = billing_oracle(world["scenario"].rows, DAY)
    for budgets in (None, versions([{"campaign_id": "cmp-elsewhere", "daily": 1, "set_at": D0, "rev": 1}])):
        out = str(tmp_path / f"out-{budgets is None}")
        stats = run_day(spark, world["raw"], out, DAY, SETTINGS, budgets=budgets)
        assert keyed(read_day(out, "hourly", DAY)) == hourly
        assert stats["over_budget_clicks"] == 0 and not any(r["over_budget"] for r in read_day(out, "flagged", DAY))
        rows = spend_rows(out)
        assert all(r["budget_micros"] is None and r["billed_cost_micros"] == r["valid_cost_micros"]
                   and r["over_budget_clicks"] == 0 for r in rows.values())
        assert {k: r["valid_cost_micros"] for k, r in rows.items()} == {
            k: s["valid_cost_micros"] for k, s in world["spend"].items()}


def test_reconciliation_counts_over_budget_clicks_as_valid(world):
    """The stream is not capped: the clicks' reconciliation compares it with the batch's valid
    clicks (billable + over budget), so budgets add no drift."""
    rows = read_day(world["out"], "hourly", DAY)
    uncapped, _ = billing_oracle(world["scenario"].rows, DAY)
    realtime = [{"ad_id": k[2], "hour_start_ms": k[3], "billable_clicks": m["billable_clicks"]}
                for k, m in uncapped.items()]
    drift, summary = reconcile(rows, realtime)
    assert summary["total_diff"] == 0 and {r["class"] for r in drift} == {"none"}
    assert summary["batch_billable"] == sum(r["billable_clicks"] + r["over_budget_clicks"] for r in rows)
    assert sum(r["over_budget_clicks"] for r in rows) > 300


def test_plan_one_more_exchange_by_campaign(world, spark):
    """With budgets: one more hash exchange (campaign_id, the running sum's window), at the top;
    the hourly aggregate needs none after it; the budgets are a broadcast. Without: the IVT
    job's plan (tests/glue/test_billing.py test_plan_shuffles)."""
    raw, _ = read_raw(spark, world["raw"], DAY, SETTINGS)
    caps = budgets_for_day(versions(world["history"]), DAY)
    plan = transform(raw, DAY, SETTINGS, caps)._jdf.queryExecution().executedPlan().toString()
    lines = plan.splitlines()
    shuffles = [i for i, line in enumerate(lines) if "Exchange hashpartitioning" in line]
    assert len(shuffles) == 6, plan
    assert "hashpartitioning(campaign_id#" in lines[shuffles[0]] and "hashpartitioning(ad_id" in lines[shuffles[1]]
    window = next(i for i, line in enumerate(lines) if "Window [sum(" in line)
    aggregate = next(i for i, line in enumerate(lines) if "HashAggregate(keys=[advertiser_id" in line)
    assert aggregate < window < shuffles[0]  # top down: aggregate, window, its exchange
    assert not any("Exchange" in line for line in lines[aggregate:window])
    assert sum("BroadcastExchange" in line for line in lines) == 3
    plain = transform(raw, DAY, SETTINGS)._jdf.queryExecution().executedPlan().toString()
    assert sum("Exchange hashpartitioning" in line for line in plain.splitlines()) == 5
    assert "Window [sum(" not in plain


def test_flag_clicks_marks_every_click(world, spark):
    raw, _ = read_raw(spark, world["raw"], DAY, SETTINGS)
    caps = budgets_for_day(versions(world["history"]), DAY)
    got = {r.click_id: r.over_budget
           for r in flag_clicks(raw, DAY, SETTINGS, caps).select("click_id", "over_budget").collect()}
    _, verdicts = world["oracle"]
    assert got == {cid: cid in world["over"] for cid in verdicts}


# --- the budgets from a table, through the entry points (in-process moto) -----------------------

def _table_with(history: list[dict], name: str = "clickagg-budgets"):
    import boto3

    from local.resources import create_budgets_table

    ddb = boto3.client("dynamodb")
    create_budgets_table(ddb, name)
    for h in history:
        ddb.put_item(TableName=name, Item=history_item(h["campaign_id"], h["set_at"], h["daily"], h["rev"]))
    current = {}
    for h in history:  # the `current` item: the latest version (not read by the job)
        if h["campaign_id"] not in current or h["set_at"] > current[h["campaign_id"]]["set_at"]:
            current[h["campaign_id"]] = h
    for h in current.values():
        ddb.put_item(TableName=name, Item={**history_item(h["campaign_id"], h["set_at"], h["daily"], h["rev"]),
                                           "sk": {"S": "current"}})
    return ddb


def test_local_entry_point_reads_the_budgets_table(world, aws, tmp_path):
    from glue_jobs import billing_job

    _table_with(world["history"])
    assert billing_job.budget_history({}) is None and billing_job.budget_history({"budgets_table": ""}) is None
    out = tmp_path / "job"
    stats = billing_job.main_local(["--day", DAY.isoformat(), "--raw-path", world["raw"], "--out-path", str(out),
                                    "--budgets-table", "clickagg-budgets", "--shuffle-partitions", "2"])
    drop = lambda s: {k: v for k, v in s.items() if k != "seconds"}  # noqa: E731
    assert drop(stats) == drop(world["stats"])
    for dataset in ("hourly", "campaign_spend"):
        assert sorted(map(str, read_day(str(out), dataset, DAY))) == sorted(map(str, read_day(world["out"], dataset, DAY)))
    assert {p.name for p in out.iterdir()} == {"hourly", "flagged", "campaign_spend"}


def test_glue_entry_passes_the_budgets_table(glue_billing_job, recorded_run_day, spark, monkeypatch, aws):  # noqa: F811
    """On Glue: `--budgets_table` is resolved (a BillingSettings setting) and its history read
    before the day runs; without it run_day gets no budgets (test_billing's argument cases)."""
    _, history = build_world(DAY)
    _table_with(history, "ca-test-budgets")
    GlueRuntime(spark).install(monkeypatch, glue_billing_job)
    monkeypatch.setattr(sys, "argv", glue_argv("r", "o", "--budgets_table", "ca-test-budgets"))
    glue_billing_job.main_glue(now=lambda: AFTER_MIDNIGHT)
    [call] = recorded_run_day
    assert call[4] == BillingSettings(budgets_table="ca-test-budgets")
    plain = lambda bs: sorted((b.campaign_id, b.set_at_ms, b.daily_micros, b.revision) for b in bs)  # noqa: E731
    assert plain(call[-1]) == plain(versions(history)) and len(call[-1]) == len(history)


def test_spend_vs_budget_report_on_duckdb(world):
    """spend_vs_budget_per_campaign_per_day (DuckDB, the SQL Athena runs) over the job's output =
    the oracle's campaign spend summed per campaign; the CTR report's clicks are the billed ones."""
    from pathlib import Path

    from common.named_queries import render
    from tools.analytics import run_duckdb

    now = day_start(DAY + timedelta(days=1)) + 9 * HOUR
    sql, binds = render("spend_vs_budget_per_campaign_per_day", {"n": "2"}, now_ms=now)
    assert binds == ["2026-03-09", "2026-03-11"]
    cols, rows = run_duckdb(sql, Path(world["raw"]).parent.parent, binds, billing_root=Path(world["out"]))
    assert cols == ["campaign_id", "day", "budget_micros", "valid_cost_micros", "billed_cost_micros",
                    "billed_clicks", "over_budget_clicks", "over_budget_cost_micros", "budget_used"]
    want: dict = {}
    for (campaign, _), s in world["spend"].items():
        w = want.setdefault(campaign, dict.fromkeys(("valid", "billed", "billed_clicks", "over", "over_cost"), 0))
        w.update(budget=s["budget_micros"])
        for k, column in (("valid", "valid_cost_micros"), ("billed", "billed_cost_micros"),
                          ("billed_clicks", "billed_clicks"), ("over", "over_budget_clicks"),
                          ("over_cost", "over_budget_cost_micros")):
            w[k] += s[column]
    assert [r[0] for r in rows] == sorted(want) and {r[1] for r in rows} == {DAY.isoformat()}
    for campaign, _, budget, valid, billed, billed_clicks, over, over_cost, used in rows:
        w = want[campaign]
        assert (budget, valid, billed, billed_clicks, over, over_cost) == (
            w["budget"], w["valid"], w["billed"], w["billed_clicks"], w["over"], w["over_cost"]), campaign
        assert used == (pytest.approx(billed / budget) if budget else None)
        assert used is None or used <= 1
    assert sum(r[6] for r in rows) == len(world["over"])
    # the CTR report counts billed clicks (within budget), not every valid one
    sql, binds = render("ctr_per_campaign_per_day", {"n": "2"}, now_ms=now)
    _, ctr = run_duckdb(sql, Path(world["raw"]).parent.parent, binds, billing_root=Path(world["out"]))
    assert {c: clicks for c, _, _, clicks, _ in ctr} == {c: w["billed_clicks"] for c, w in want.items()}
