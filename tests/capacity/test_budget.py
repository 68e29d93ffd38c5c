"""The budget lane in the planner (issue 20, docs/budget.md): spend rows and the pulse on the
aggregates' path, the pacing decisions (API Gateway, budget Lambda, BatchGetItem reads), the
budgets table; Plan.lane is what the lane costs. Values by hand from
capacity/planner/assumptions.py and the us-east-1 prices (uniform popularity, ad_skew=0, where a
count must be exact: distinct among n over E = E (1 - e^(-n / E)))."""
from __future__ import annotations

import json
import math

import pytest

from capacity import __main__ as cli
from capacity import planner
from capacity.planner import batch_gets_per_request, distinct_ads, plan
from capacity.pricing import load_prices

MONTH_S = 730 * 3600
GIB = 1024**3
uniform = lambda n, e: e * -math.expm1(-n / e)  # noqa: E731


# --- spend rows --------------------------------------------------------------------------------------
@pytest.mark.parametrize("interval_ms, pulse_s", [(500, 2), (2_000, 1), (250, 4), (10_000, 1)])
def test_spend_rows_per_second_for_1000_campaigns(interval_ms, pulse_s):
    # 1,000 clicks/s over 10,000 ads = 1,000 campaigns (ten ads each), all clicks valid: per emit
    # interval the campaigns with a click each emit a 1m and a 1d update
    p = plan(1_000, ad_skew=0, active_ads=10_000, budget_emit_interval_ms=interval_ms)
    agg = p.component("aggregates_stream")
    interval_s = interval_ms / 1000
    campaigns = uniform(1_000 * interval_s, 1_000)  # 500 ms: 393.47; 2 s: 864.66
    assert agg.metric("campaigns with a valid click per budget emit interval (average)") == \
        pytest.approx(campaigns)
    assert agg.metric("spend upserts/s average (budget lane)") == pytest.approx(2 * campaigns / interval_s)
    # one pulse per interval, at least one a second (datagen's rows-per-second is an integer)
    assert agg.metric("pulse rows/s (budget lane)") == pulse_s
    without = plan(1_000, ad_skew=0, active_ads=10_000, budget_lane=False).component("aggregates_stream")
    assert agg.metric("changelog rows/s average") - without.metric("changelog rows/s average") == \
        pytest.approx(2 * campaigns / interval_s + pulse_s)  # the default upsert changelog: +U only
    # flink_changelog_mode retract: -U and +U per update
    kw = dict(ad_skew=0, active_ads=10_000, changelog_update_before=True)
    retract = plan(1_000, budget_emit_interval_ms=interval_ms, **kw).component("aggregates_stream")
    without = plan(1_000, budget_lane=False, **kw).component("aggregates_stream")
    assert retract.metric("changelog rows/s average") - without.metric("changelog rows/s average") == \
        pytest.approx(2 * (2 * campaigns / interval_s) + pulse_s)


def test_spend_rows_by_hand_at_500ms():
    assert uniform(500, 1_000) == pytest.approx(393.469, abs=1e-3)
    agg = plan(1_000, ad_skew=0, active_ads=10_000).component("aggregates_stream")
    assert agg.metric("spend upserts/s average (budget lane)") == pytest.approx(1_573.877, abs=1e-3)


def test_spend_updates_are_bounded_by_the_valid_clicks():
    # 10 clicks/s over 100,000 campaigns: almost every click is another campaign, and a campaign
    # updates at most once per resolution and interval: <= 2 x 10 updates/s
    agg = plan(10).component("aggregates_stream")
    assert agg.metric("spend upserts/s average (budget lane)") <= 2 * 10
    assert agg.metric("spend upserts/s average (budget lane)") == pytest.approx(
        2 * distinct_ads(5, 100_000, 0.8) / 0.5)


def test_spend_rows_reach_the_serving_table_and_flink():
    p, q = plan(10_000, 20_000), plan(10_000, 20_000, budget_lane=False)
    agg = p.component("aggregates_stream")
    spend = agg.metric("spend upserts/s average (budget lane)")
    # seed: campaigns among 5,000 clicks of a 0.5 s interval over 100,000 Zipf(0.8) campaigns
    assert spend == pytest.approx(2 * 3_755.50 / 0.5, rel=1e-5)  # 15,022 (brute force: test_profiles_docs)
    # one conditional write per upsert (retractions skipped) and per pulse row
    assert p.component("sink_lambda").metric("serving writes/s average") - \
        q.component("sink_lambda").metric("serving writes/s average") == pytest.approx(spend + 2)
    flink = p.component("flink")
    assert flink.metric("budget lane spend aggregation, row-equivalents/s peak") == pytest.approx(20_000 * 2 / 12)
    assert flink.metric("state: spend keys (budget lane)") > 0
    assert "state: spend keys (budget lane)" not in [m.name for m in q.component("flink").metrics]


# --- decisions ---------------------------------------------------------------------------------------
def test_batch_get_items_per_batch_request():
    # 11 campaigns per BatchGetItem (docs/budget.md): a 100-campaign request needs 10
    assert [batch_gets_per_request(n) for n in (1, 11, 12, 22, 23, 100)] == [1, 1, 2, 2, 3, 10]
    assert batch_gets_per_request(0) == 0
    reads = plan(10_000, 20_000).component("budget_reads")
    assert reads.metric("BatchGetItems per request (no cache hit)") == 10


def test_seed_decision_demand_by_hand():
    # 20 ad servers (one per 500 clicks/s), each serving 500,000 / 20 = 25,000 impressions per
    # 1 s TTL; the campaigns among them: Zipf(0.8) over 100,000 campaigns (brute force below)
    weights = [i ** -0.8 for i in range(1, 100_001)]
    total = math.fsum(weights)
    asked = math.fsum(-math.expm1(-25_000 * w / total) for w in weights)
    assert asked == pytest.approx(14_666.36, abs=0.01)
    api = plan(10_000, 20_000).component("budget_api")
    assert api.metric("ad-server instances (average)") == 20
    assert api.metric("ads served per instance per cache TTL") == pytest.approx(25_000)
    assert api.metric("campaigns asked per instance per cache TTL") == pytest.approx(asked, rel=1e-5)
    # ceil(14,666.36 / 100) = 147 requests per instance per second, 40 instances at peak
    assert api.metric("POST /v1/pacing per instance per cache TTL") == 147
    assert api.metric("requests/s average") == pytest.approx(20 * 147)
    assert api.metric("requests/s peak") == pytest.approx(40 * 147)
    assert api.metric("budget Lambda concurrency average") == pytest.approx(2_940 * 0.030)
    # 5,880 req/s at peak > the stage's default per-method throttle sized for ingest (3,500);
    # with ingest's 2,800 req/s still under the account's 10,000
    assert any("per-method throttle" in w and "5,880" in w for w in api.warnings)
    assert not any(w.startswith("QUOTA") for w in api.warnings)
    reads = plan(10_000, 20_000).component("budget_reads")
    # 88.2 containers x the fleet's 85,131 campaigns per TTL >> 293,327 decisions/s: no bound
    assert reads.metric("share of decisions read from DynamoDB") == 1.0
    assert reads.metric("BatchGetItems/s average") == pytest.approx(2_940 * 10)
    assert reads.metric("budgets table RRU/s average (ConsistentRead)") == pytest.approx(20 * asked, rel=1e-5)
    assert reads.metric("serving table RCU/s average") == pytest.approx(
        20 * asked * (7 * 0.5 + 0.25 * 0.5) + 29_400 * 0.5, rel=1e-5)
    assert any("META#pulse" in w for w in reads.warnings)  # 58,800 reads/s at peak > 6,000
    assert any(w.startswith("QUOTA") and "the budgets table" in w for w in reads.warnings)


# A tiny profile: 100 clicks/s (peak = average), clicks only, 10,000 ads (1,000 campaigns, 100
# advertisers), uniform popularity, 2 ad-server instances.
TINY = dict(rate=100, peak=100, impressions_per_click=0, conversions_per_click=0, ad_skew=0,
            active_ads=10_000, ad_servers=2)


# rows per update on the aggregates stream: 1 with flink_changelog_mode upsert (the default: the
# job drops every -U), 2 with retract (-U and +U); a pulse row is an insert (1 row) in both.
# lane $/month, the sum of the by-hand parts below: upsert 264.38, retract 273.03
@pytest.mark.parametrize("retract, rows_per_update, lane_usd", [(False, 1, 264.38), (True, 2, 273.03)])
def test_tiny_profile_lane_cost_per_month_by_hand(retract, rows_per_update, lane_usd):
    p = plan(**TINY, changelog_update_before=retract)
    # --- decisions. Each instance serves its 50 clicks a second (no impressions in the plan): it
    # asks about A = 1,000 (1 - e^-0.05) = 48.77 campaigns per 1 s TTL, in one request
    asked = uniform(50, 1_000)
    requests_s = 2.0
    lookups_s = 2 * asked  # 97.54
    containers = 1  # max(1, 2 req/s x 30 ms)
    fleet = uniform(100, 1_000)  # 95.16 campaigns asked per TTL by both instances
    refreshes = min(lookups_s, containers * fleet / 1)  # the cache bound binds: 95.16
    assert refreshes == pytest.approx(95.163, abs=1e-3) and refreshes < lookups_s
    misses_per_request = asked * refreshes / lookups_s  # 47.58: 5 BatchGetItems
    batch_gets_s = requests_s * math.ceil(misses_per_request / 11)  # 10/s
    answer = 15 + asked * 505  # 504 B per decision + comma, the envelope
    req_month = requests_s * MONTH_S  # 5,256,000
    ingest_req_s = 100 / 50
    ingest_dto_gb = ingest_req_s * (150 + 70 * 50) * MONTH_S / GIB  # 17.9 GB: first tier all along
    api = {  # every price in its first tier (REST < 333M, DTO < 10 TB, Lambda < 7.5e9 GB-s)
        "requests": req_month * 3.50 / 1e6,  # 18.396
        "dto": req_month * answer / GIB * 0.09,  # 10.857
        "lambda requests": req_month * 0.20 / 1e6,
        "lambda compute": requests_s * 0.030 * 0.5 * MONTH_S * 0.0000133334,
    }
    assert ingest_dto_gb + req_month * answer / GIB < 10_240
    budget_rru = refreshes * 1.0  # ConsistentRead
    serving_rcu = refreshes * (7 * 0.5 + 0.25 * 0.5) + batch_gets_s * 0.5  # 349.96
    reads = {"budgets": budget_rru * MONTH_S * 0.125 / 1e6,  # 31.26
             "serving": serving_rcu / 0.7 * 730 * 0.00013}  # provisioned serving table: 47.45
    versions = 1_000 * (1 + 12 * 730 / 24)  # current + a year of daily versions
    log_gb = req_month * (400 + 1_000) / GIB  # access log line + Lambda platform lines and EMF
    ops = {"puts": 1_000 * 730 / 24 * 4 * 0.625 / 1e6, "storage": versions * 200 / GIB * 0.25,
           "pitr": versions * 200 / GIB * 0.20, "alarms": 3 * 0.10, "metrics": 5 * 0.30,
           "logs": log_gb * 0.50, "log storage": log_gb * 0.15 * 0.03,
           # X-Ray: the stage's 2 + 2 requests/s beyond the 1/s reservoir sampled at 5 %
           "traces": 0.05 * requests_s * MONTH_S * 5.0 / 1e6}
    # --- spend rows on the shared path. Campaigns among 50 clicks per 0.5 s: 48.77, 2 updates
    # each per interval: 195.08 upserts/s, rows_per_update rows each, + 2 pulse rows/s
    spend = 2 * uniform(50, 1_000) / 0.5
    rows_added = rows_per_update * spend + 2  # 197.08 upsert, 392.16 retract
    # aggregates rows without the lane: 200 clicks per 2 s mini-batch over 10,000 ads, 1,000
    # campaigns, 100 advertisers: 4 series / 2 s each, 3 boards of min(1,000, ads) entries,
    # x rows_per_update
    ads, rollups = uniform(200, 10_000), uniform(200, 1_000) + uniform(200, 100)
    rows = rows_per_update * (4 * ads / 2 + 4 * rollups / 2 + 3 * ads / 2)  # 1,228.5 / 2,457.0
    # shards (470 B rows: records bind) with and without the lane: 1,228.5 x 1.25 / 1,000 = 1.5
    # and 1,425.6 x 1.25 / 1,000 = 1.8 -> 2 (upsert); 2,457.0 -> 3.07 and 2,849.2 -> 3.56 -> 4
    shards = 2 if rows_per_update == 1 else 4
    assert math.ceil(rows * 1.25 / 1_000) == math.ceil((rows + rows_added) * 1.25 / 1_000) == shards
    invocations = (rows / 500, (rows + rows_added) / 500)  # > shards lanes / 2 s: full batches
    assert invocations[0] > shards / 2
    added_invocations = invocations[1] - invocations[0]
    minute_items = uniform(100 * 60, 1_000) * 691_200 / 60  # 1m spend items within minute_ttl_s
    day_items = 1_000 * 12 * 730 / 24  # every campaign's 1d item, a year of days
    spend_gb = (minute_items + day_items + 1) * 200 / GIB
    spend_keys = 76 * uniform(6_000, 1_000) + 2 * 1_000  # Flink: live 1m and 1d buckets
    shared = {
        "flink": spend_keys * 100 / GIB * 0.023,  # snapshots; KPUs stay 1
        "aggregates_stream": rows_added * MONTH_S * 0.014 / 1e6,  # PUT payload units
        "sink_lambda": added_invocations * MONTH_S * 0.20 / 1e6
        + (spend + 2) / 800 * 0.5 * MONTH_S * 0.0000133334,
        "serving": (spend + 2 + 2 * added_invocations) / 0.7 * 730 * 0.00065 + spend_gb * 0.45,
        "observability": added_invocations * 1_000 * MONTH_S / GIB * (0.50 + 0.15 * 0.03)
        + 0.05 * added_invocations * MONTH_S * 5.0 / 1e6,
    }
    by_hand = {**shared, "budget_api": sum(api.values()), "budget_reads": sum(reads.values()),
               "budget_ops": sum(ops.values())}
    assert p.lane == {k: pytest.approx(v, rel=1e-6) for k, v in by_hand.items()}
    assert p.component("budget_api").monthly_usd == pytest.approx(31.355, abs=1e-3)
    assert p.component("budget_reads").monthly_usd == pytest.approx(78.706, abs=1e-3)
    assert p.lane_usd == pytest.approx(sum(by_hand.values()), rel=1e-6)
    assert p.lane_usd == pytest.approx(lane_usd, abs=0.01)
    assert p.lane_usd_per_million_clicks == pytest.approx(lane_usd / 262.8, abs=1e-4)  # 262.8M clicks
    # the lane is exactly the plan minus the plan without it
    assert p.monthly_usd - plan(**TINY, budget_lane=False, changelog_update_before=retract
                                ).monthly_usd == pytest.approx(p.lane_usd)


def test_a_longer_emit_interval_lowers_the_lane_cost():
    lanes = [plan(10_000, 20_000, budget_emit_interval_ms=ms) for ms in (250, 500, 2_000, 10_000)]
    costs = [p.lane_usd for p in lanes]
    assert costs == sorted(costs, reverse=True) and len(set(costs)) == 4
    # only the spend rows move: the decisions do not depend on the emit interval
    assert len({round(p.lane["budget_reads"], 6) for p in lanes}) == 1
    rows = [p.component("aggregates_stream").metric("spend upserts/s average (budget lane)") for p in lanes]
    assert rows == sorted(rows, reverse=True)


def test_a_longer_cache_ttl_lowers_the_decision_cost():
    one, five = plan(10_000, 20_000), plan(10_000, 20_000, pacing_cache_ttl_ms=5_000)
    for key in ("budget_api", "budget_reads"):
        assert five.lane[key] < one.lane[key], key


def test_the_lane_in_every_profile_and_the_lever_table():
    from capacity import profiles

    for name, prof in profiles.PROFILES.items():
        p = prof.plan()
        assert set(planner.LANE_KEYS) <= set(p.lane)
        assert p.lane_usd > 0 and p.lane_usd == pytest.approx(sum(p.lane.values()))
    rows = [r for r in planner.compare_levers(rate=10_000, peak=20_000)
            if r.lever.startswith("budget lane")]
    on, off = rows
    assert on.is_base and off.delta_pct < 0
    assert on.monthly_usd - off.monthly_usd == pytest.approx(plan(10_000, 20_000).lane_usd)


def test_no_lane_means_no_lane_components():
    p = plan(10_000, 20_000, budget_lane=False)
    assert not set(planner.LANE_KEYS) & {c.key for c in p.components}
    assert p.lane == {} and p.lane_usd == 0
    assert "spend upserts/s average (budget lane)" not in [
        m.name for m in p.component("aggregates_stream").metrics]


def test_explicit_pacing_campaigns_and_ad_servers():
    p = plan(10_000, 20_000, ad_servers=10, pacing_campaigns=1_000)
    api = p.component("budget_api")
    assert api.metric("campaigns asked per instance per cache TTL") == 1_000
    assert api.metric("requests/s average") == pytest.approx(10 * 10)  # 10 requests of 100 each
    assert api.metric("requests/s peak") == pytest.approx(20 * 10)  # the fleet follows the traffic
    reads = p.component("budget_reads")
    # 3 containers (100 req/s x 30 ms) x min(100,000, 10 x 1,000) campaigns = 30,000/s > 10,000
    assert reads.metric("campaign figures read/s average (cache misses)") == pytest.approx(10_000)


def test_lane_reads_priced_by_region():
    us, eu = plan(10_000), plan(10_000, region="eu-west-1")
    u, e = us.component("budget_reads"), eu.component("budget_reads")
    assert [(c.price_key, c.quantity) for c in e.costs] == [
        (c.price_key, pytest.approx(c.quantity)) for c in u.costs]
    ratio = {"ddb_on_demand_rru": 0.1413 / 0.125, "ddb_provisioned_rcu_hour": 0.000147 / 0.00013}
    for a, b in zip(u.costs, e.costs):
        assert b.usd == pytest.approx(a.usd * ratio[a.price_key])


def test_budget_lambda_counts_towards_the_account_concurrency():
    p = plan(10_000, 20_000)
    # ingest reserved 451 + ceil(sink 2,681.7 x 1.5 = 4,022.5) = 4,023 ... + ceil(budget 176.4)
    need = 451 + math.ceil(p.component("sink_lambda").metric("concurrency needed at peak") * 1.5) + 177
    assert any(f"= {need:,} (" in w for w in p.account_warnings)  # (+ a rebuild's load Lambdas)


@pytest.mark.parametrize("kwargs", [
    dict(budget_emit_interval_ms=10), dict(budget_emit_interval_ms=20_000),
    dict(pacing_cache_ttl_ms=0), dict(ad_servers=0), dict(pacing_campaigns=0),
])
def test_bad_lane_inputs_are_refused(kwargs):
    with pytest.raises(ValueError):
        plan(10_000, **kwargs)


def test_cli_lane_flags(capsys):
    assert cli.main(["plan", "--rate", "10000", "--peak", "20000", "--json", "--no-levers",
                     "--budget-emit-ms", "2000", "--pacing-ttl-ms", "5000", "--ad-servers", "40"]) == 0
    doc = json.loads(capsys.readouterr().out)
    expected = plan(10_000, 20_000, budget_emit_interval_ms=2_000, pacing_cache_ttl_ms=5_000,
                    ad_servers=40)
    assert doc["budget_lane"]["monthly_usd"] == pytest.approx(round(expected.lane_usd, 2))
    assert doc["inputs"]["ad_servers"] == 40
    assert cli.main(["plan", "--rate", "10000", "--json", "--no-levers", "--no-budget-lane"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["budget_lane"]["monthly_usd"] == 0
    assert cli.main(["plan", "--rate", "10000", "--peak", "20000", "--no-levers"]) == 0
    assert "== budget lane (docs/budget.md)" in capsys.readouterr().out


def test_prices_the_lane_needs_exist_in_every_region():
    for region in ("us-east-1", "eu-west-1"):
        pb = load_prices(region)
        for key in ("ddb_on_demand_rru", "ddb_provisioned_rcu_hour", "cw_custom_metric_month",
                    "cw_alarm_month"):
            assert pb[key].first_usd > 0
        assert pb.quota("ddb_table_max_rcu") == 40_000 and pb.quota("ddb_partition_max_rcu") == 3_000
