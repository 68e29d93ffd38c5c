"""capacity.planner: hand-computed shard, cost and sizing math; quota warnings; lever direction."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from capacity import planner, pricing
from capacity.planner import (StreamLoad, clicks_stream_load, compare_levers, distinct_ads,
                              plan, shards_needed)

MIB = 1_048_576
MONTH_S = 730 * 3600


# --- Kinesis shard math ----------------------------------------------------------------------------
def test_shards_10k_clicks_200_bytes_are_bound_by_records_not_bytes():
    # 10,000 clicks/s x 200 B = 2 MB/s of data. Write bytes count the 16 B partition key too:
    # 10,000 x 216 = 2,160,000 B/s = 2.06 shards; records: 10,000 / 1,000 = 10 shards;
    # reads: 2 consumers x 2,000,000 B/s / 2 MiB/s = 1.91 shards.
    need = shards_needed(StreamLoad(10_000, 10_000, 200, consumers=2, polls_per_shard_s=3))
    assert need.by_write_bytes == pytest.approx(2_160_000 / MIB)
    assert need.by_write_records == pytest.approx(10.0)
    assert need.by_read_bytes == pytest.approx(2 * 2_000_000 / (2 * MIB))
    assert need.binding == "write records"
    assert need.shards == 13  # ceil(10 x 1.25 headroom)
    assert shards_needed(StreamLoad(10_000, 10_000, 200, 2, 3), headroom=1.0).shards == 10


def test_packing_20_clicks_per_record_makes_bytes_the_binding_limit():
    x = plan(10_000, clicks_per_record=20)
    load = clicks_stream_load(planner.Inputs(**x.inputs))
    # KPL record: 20 B header + 20 x (200 B + 8 B framing + 16 B sub-record key) = 4,500 B
    assert load.record_bytes == 4_500
    assert load.peak_records_s == 500
    need = shards_needed(load)
    assert need.by_write_records == pytest.approx(0.5)
    assert need.by_write_bytes == pytest.approx(500 * 4_516 / MIB)  # 2.15
    assert need.binding == "write bytes"
    assert need.shards == math.ceil(500 * 4_516 / MIB * 1.25)  # 3


def test_provisioned_stream_sized_for_peak_not_average():
    c = plan(10_000, 500_000).component("clicks_stream")
    assert c.metric("shards by write records") == pytest.approx(500)
    assert c.metric("provisioned shards") == 625
    assert c.context["kinesis_shards"] == 625


def test_clicks_stream_costs_by_hand_10k_clicks():
    p = plan(10_000)
    c = p.component("clicks_stream")
    records = 10_000 * MONTH_S  # 26.28e9 records/month
    od_gb = records * 1024 / 1024**3  # every 200 B record billed as 1 KB
    stored_gb_per_h = 10_000 * 200 * 3600 / 1024**3
    on_demand = 730 * 0.04 + od_gb * 0.08 + 2 * od_gb * 0.04 + stored_gb_per_h * (168 - 24) * 0.10
    provisioned = 13 * 730 * 0.015 + 13 * 730 * 0.020 + records * 0.014 / 1e6
    assert c.alternatives["on_demand"] == pytest.approx(on_demand)
    assert c.alternatives["provisioned"] == pytest.approx(provisioned)
    assert c.mode == "provisioned" and c.monthly_usd == pytest.approx(provisioned)


def test_on_demand_bills_each_record_as_1kb_so_packing_4_clicks_costs_about_a_quarter():
    one = plan(10_000, kinesis_mode="on_demand").component("clicks_stream")
    packed = plan(10_000, kinesis_mode="on_demand", clicks_per_record=4).component("clicks_stream")
    assert packed.metric("record bytes") <= 1024
    data = lambda c: sum(line.usd for line in c.costs if line.item.startswith("data"))  # noqa: E731
    assert data(packed) == pytest.approx(data(one) / 4)


# --- API Gateway and Lambda ----------------------------------------------------------------------
def test_api_requests_and_quota_warning_at_500k_peak_with_50_click_batches():
    c = plan(10_000, 500_000, batch_size=50).component("api")
    # clicks 10,000 / 50 + impressions 10,000 x 50 / 500 + conversions 10,000 x 0.02 / 1
    assert c.metric("clicks requests/s average") == pytest.approx(200)
    assert c.metric("impressions requests/s average") == pytest.approx(1_000)
    assert c.metric("conversions requests/s average") == pytest.approx(200)
    assert c.metric("requests/s average") == pytest.approx(1_400)
    assert c.metric("requests/s peak") == pytest.approx(10_000 + 50_000 + 10_000)
    assert c.context["ingest_rate_limit"] == 88_000  # 70,000 x 1.25 = 87,500, 2 digits up
    assert c.context["ingest_burst_limit"] == 44_000
    assert any(w.startswith("QUOTA") and "88,000 req/s" in w for w in c.warnings)
    clicks_only = plan(10_000, 500_000, impressions_per_click=0, conversions_per_click=0)
    assert clicks_only.context["ingest_rate_limit"] == 13_000  # 10,000 x 1.25, 2 digits up
    assert clicks_only.context["ingest_burst_limit"] == 6_500


def test_no_api_quota_warning_when_batches_are_large_enough():
    c = plan(10_000, 500_000, batch_size=500, impressions_per_click=0,
             conversions_per_click=0).component("api")
    assert c.metric("requests/s peak") == pytest.approx(1_000)
    assert not [w for w in c.warnings if w.startswith("QUOTA")]
    # impressions at 50x a 500k/s peak are 50,000 requests/s of 500 whatever the click batches
    with_events = plan(10_000, 500_000, batch_size=500).component("api")
    assert with_events.metric("requests/s peak") == pytest.approx(1_000 + 50_000 + 10_000)
    assert [w for w in with_events.warnings if w.startswith("QUOTA")]


def test_rest_request_tiers_by_hand():
    # 115,740 / 50 + 115,740 x 50 / 500 + 115,740 x 0.02 = 2,314.8 + 11,574 + 2,314.8 = 16,203.6
    # requests/s = 42,583.06M a month: 333M x $3.50 + 667M x $2.80 + 19,000M x $2.38 + the rest
    # x $1.51 (per million)
    p = plan(115_740)
    req = (115_740 / 50 + 115_740 * 50 / 500 + 115_740 * 0.02) * MONTH_S
    assert req / 1e6 == pytest.approx(42_583.06)
    expected = 333 * 3.50 + 667 * 2.80 + 19_000 * 2.38 + (req / 1e6 - 20_000) * 1.51
    assert expected == pytest.approx(82_353.52, abs=0.01)
    assert p.component("api").costs[0].usd == pytest.approx(expected)


@pytest.mark.parametrize("dedup, per_click_ms, reserved, clicks_only_peak, clicks_only_reserved", [
    # mark: 1.5 ms x bench/ingest.py's 0.17 = 0.255 ms per click, no call per click
    ("mark", 0.255, 413, 15.1, 23),  # 275.2 x 1.5 = 412.8; 400 x 37.75 ms = 15.1, x 1.5 = 22.65
    ("per_click", 1.5, 451, 40, 60),  # 300.6 x 1.5 = 450.9; 400 x 100 ms = 40, x 1.5
])
def test_ingest_lambda_concurrency_is_requests_times_duration(dedup, per_click_ms, reserved,
                                                               clicks_only_peak, clicks_only_reserved):
    c = plan(10_000, 20_000, dedup=dedup).component("ingest_lambda")
    clicks_s = (25 + per_click_ms * 50) / 1000  # mark 37.75 ms, per_click 100 ms for 50 clicks
    impressions_s = (25 + 0.2 * 500) / 1000  # 125 ms for 500 unclaimed impressions
    conversion_s = (25 + per_click_ms) / 1000  # one conversion through the same dedup store
    assert c.metric("duration per request (impressions)") == pytest.approx(125)
    # average: 200 click + 1,000 impression + 200 conversion requests/s
    avg = 200 * clicks_s + 1_000 * impressions_s + 200 * conversion_s  # per_click 20 + 125 + 5.3
    assert c.metric("concurrency average") == pytest.approx(avg)
    assert c.metric("concurrency peak") == pytest.approx(2 * avg)
    assert c.context["ingest_reserved_concurrency"] == reserved == math.ceil(2 * avg * 1.5)
    clicks_only = plan(10_000, 20_000, impressions_per_click=0, conversions_per_click=0, dedup=dedup)
    assert clicks_only.component("ingest_lambda").metric("concurrency peak") == pytest.approx(clicks_only_peak)
    assert clicks_only.context["ingest_reserved_concurrency"] == clicks_only_reserved


def test_account_lambda_quota_warning_at_large_scale():
    p = plan(115_740, 500_000)
    assert any("Concurrent executions" in w for w in p.account_warnings)
    assert not any("Concurrent executions" in w for w in plan(1_000).account_warnings)


# --- DynamoDB ------------------------------------------------------------------------------------
def test_per_click_dedup_is_2_wcu_per_click_and_per_request_is_per_batch():
    assert planner.dedup_wcu_per_click("mark", 50) == 1  # the mark; + 0.5 RCU for its check
    assert planner.dedup_wcu_per_click("per_click", 50) == 2
    # per request: 1 WCU INPROGRESS put + update of a 300 + 150 + 70 x 50 = 3,950 B item (4 WCU)
    assert planner.dedup_wcu_per_click("per_request", 50) == pytest.approx(5 / 50)


def test_dedup_capacity_modes_by_hand():
    c = plan(10_000).component("dedup")  # per_click, the default
    wcu = 20_000 + 2 * 200  # 2 WCU per click and per conversion (0.02 x 10,000/s); none per impression
    assert c.metric("conversion claims WCU/s average") == pytest.approx(400)
    on_demand = wcu * MONTH_S * 0.625 / 1e6
    provisioned = wcu / 0.7 * 730 * 0.00065
    # items: 10,200 claims/s x (86,400 s dedup_ttl_s + 86,400 s TTL-delete lag) = 1.76256e9;
    # x 250 B = 440.6e9 B = 410.38 GB (2^30 B); x ($0.25 storage + $0.20 PITR) = $184.67/month
    storage_gb = 10_200 * (86_400 + 86_400) * 250 / 1024**3
    assert c.metric("storage") == pytest.approx(storage_gb)
    storage = storage_gb * (0.25 + 0.20)
    assert storage == pytest.approx(184.67, abs=0.01)
    assert c.alternatives["on_demand"] == pytest.approx(on_demand + storage)
    assert c.alternatives["provisioned"] == pytest.approx(provisioned + storage)
    assert c.mode.endswith("provisioned")  # steady load: provisioned is ~2.4x cheaper
    assert c.monthly_usd == pytest.approx(provisioned + storage)  # 13,828.29 + 184.67
    assert c.context["dedup_min_wcu"] == math.ceil(wcu * 0.5 / 0.7)
    assert c.context["dedup_max_wcu"] == math.ceil(wcu / 0.7)
    assert "dedup_min_rcu" not in c.context  # per_click reads nothing
    assert [line.item for line in c.costs if "reads" in line.item] == []
    assert any("Table-level" in w for w in c.warnings) is False  # 20,400 < 40,000

    mark = plan(10_000, dedup="mark").component("dedup")
    wcu = 10_000 + 200  # 1 WCU (the mark) per click and per conversion
    rcu = (10_000 + 200) * 0.5  # an eventually consistent read of each before its stream write
    assert mark.metric("conversion claims WCU/s average") == pytest.approx(200)
    assert (mark.metric("WCU/s average"), mark.metric("RCU/s average"), mark.metric("RCU/s peak")) == \
        pytest.approx((wcu, rcu, rcu))  # peak defaults to the rate
    on_demand = wcu * MONTH_S * 0.625 / 1e6 + rcu * MONTH_S * 0.125 / 1e6
    provisioned = wcu / 0.7 * 730 * 0.00065 + rcu / 0.7 * 730 * 0.00013
    assert mark.alternatives["on_demand"] == pytest.approx(on_demand + storage)
    assert mark.alternatives["provisioned"] == pytest.approx(provisioned + storage)
    assert mark.monthly_usd == pytest.approx(provisioned + storage)  # 6,914.14 + 691.32 + 184.67
    assert mark.context["ingest_dedup_mode"] == "mark"
    assert mark.context["dedup_min_rcu"] == math.ceil(rcu * 0.5 / 0.7) == 3_643
    assert mark.context["dedup_max_rcu"] == math.ceil(rcu / 0.7) == 7_286


def test_dedup_table_quota_warning_over_40k_wcu():
    c = plan(115_740).component("dedup")
    assert any(w.startswith("QUOTA") and "Table-level" in w for w in c.warnings)


def test_forced_on_demand_is_respected():
    c = plan(10_000, dedup_capacity="on_demand").component("dedup")
    assert c.context["dedup_capacity_mode"] == "on_demand"
    assert c.monthly_usd == pytest.approx(c.alternatives["on_demand"])


# --- serving path ---------------------------------------------------------------------------------
def test_distinct_ads_uniform_formula_and_limits():
    assert distinct_ads(20_000, 1_000_000, 0) == pytest.approx(1e6 * (1 - math.exp(-0.02)))
    assert distinct_ads(1e9, 1_000, 0.8) == pytest.approx(1_000, rel=1e-6)  # every ad touched
    assert distinct_ads(10, 1_000_000, 0) == pytest.approx(10, rel=1e-4)  # few clicks: all distinct
    # skew concentrates clicks on fewer ads
    assert distinct_ads(200_000, 1_000_000, 1.0) < distinct_ads(200_000, 1_000_000, 0.8) < \
        distinct_ads(200_000, 1_000_000, 0)


# rows per update: 1 with flink_changelog_mode upsert (the default: no -U rows), 2 with retract
@pytest.mark.parametrize("retract, rows_per_update", [(False, 1), (True, 2)])
def test_changelog_rows_from_active_ads_and_minibatch_by_hand(retract, rows_per_update):
    # Uniform popularity (ad_skew=0): distinct among n rows over E entities = E (1 - e^(-n / E)),
    # over 1M ads, 100,000 campaigns, 10,000 advertisers.
    uniform = lambda n, e: e * -math.expm1(-n / e)  # noqa: E731
    rows = (10_000 + 10_000 * 50 + 10_000 * 0.02) * 2  # 1,020,400 counted rows per 2 s mini-batch
    c = plan(10_000, ad_skew=0, changelog_update_before=retract).component("aggregates_stream")
    ads = uniform(rows, 1e6)  # 639,549.3
    rollups = uniform(rows, 1e5) + uniform(rows, 1e4)  # 99,996.3 + 10,000
    series = 4 * ads / 2  # 4 resolutions, one update per key per mini-batch
    rollup_series = 4 * rollups / 2
    top = 3 * 1000 / 2  # 3 leaderboards (1m, 1h, 1d) of 1,000 entries per mini-batch
    # the budget lane: campaigns among the 5,000 (valid) clicks of a 0.5 s emit interval, a 1m and
    # a 1d spend update each per interval; 2 pulse rows/s (inserts: one row each)
    spend_campaigns = uniform(5_000, 1e5)  # 4,877.1
    spend = 2 * spend_campaigns / 0.5  # 19,508.2 upserts/s
    assert ads == pytest.approx(639_549.3, abs=0.1)
    assert spend_campaigns == pytest.approx(4_877.06, abs=0.01)
    assert c.metric("distinct ads per mini-batch (average)") == pytest.approx(ads)
    assert c.metric("distinct campaigns + advertisers per mini-batch (average)") == pytest.approx(rollups)
    assert c.metric("series upserts/s average") == pytest.approx(series)
    assert c.metric("rollup upserts/s average") == pytest.approx(rollup_series)
    assert c.metric("spend upserts/s average (budget lane)") == pytest.approx(spend)
    assert c.metric("changelog rows/s average") == pytest.approx(
        rows_per_update * (series + rollup_series + top + spend) + 2)  # the pulse: inserts
    without = plan(10_000, ad_skew=0, budget_lane=False,
                   changelog_update_before=retract).component("aggregates_stream")
    assert without.metric("changelog rows/s average") == pytest.approx(
        rows_per_update * (series + rollup_series + top))
    # clicks only: 20,000 clicks per mini-batch, the rollups and the 1d board all the same
    c0 = plan(10_000, ad_skew=0, impressions_per_click=0, conversions_per_click=0,
              changelog_update_before=retract).component("aggregates_stream")
    ads0 = uniform(20_000, 1e6)  # 19,801.3
    rollups0 = uniform(20_000, 1e5) + uniform(20_000, 1e4)  # 18,126.9 + 8,646.6
    assert c0.metric("changelog rows/s average") == pytest.approx(
        rows_per_update * (4 * ads0 / 2 + 4 * rollups0 / 2 + top + spend) + 2)
    # serving writes: one per series and spend upsert and per pulse row (a series -U is skipped);
    # a leaderboard entry's -U writes a tombstone, so boards write rows_per_update per update;
    # and every board update moves the entry in the rank index: 2 index writes
    assert plan(10_000, ad_skew=0, changelog_update_before=retract).component(
        "sink_lambda").metric("serving writes/s average") == pytest.approx(
        series + rollup_series + rows_per_update * top + spend + 2 + 2 * top)


def test_a_minibatch_ends_at_its_latency_or_when_a_subtask_has_buffered_minibatch_size_rows():
    """Flink ends a mini-batch at table.exec.mini-batch.allow-latency or at .size buffered input
    rows, whichever comes first; each aggregate instance sees its subtask's share of the rows."""
    def length(rate: float, **kw) -> tuple[float, float]:
        p = plan(rate, **kw)
        tasks = p.component("flink").metric("parallelism")
        per_task = (rate + rate * 50 + rate * 0.02) / tasks  # clicks + impressions + conversions
        size = kw.get("minibatch_size", 50_000)
        want = min(kw.get("minibatch_ms", 2000) / 1000, size / per_task)
        return p.component("aggregates_stream").metric("mini-batch length (average), s"), want

    got, want = length(115_740)
    assert got == want == 2.0  # the default size: the latency ends it
    got, want = length(115_740, minibatch_size=5_000)
    assert got == pytest.approx(want) and 1.0 < got < 2.0  # the count ends it before 2 s
    got, want = length(115_740, minibatch_ms=60_000)
    assert got == pytest.approx(want) and 10 < got < 60  # a minute's mini-batch is count-bound
    # fewer, longer mini-batches: fewer rows; a count-bound one emits more than its latency says
    rows = lambda **kw: plan(115_740, budget_lane=False, **kw).component(  # noqa: E731
        "aggregates_stream").metric("changelog rows/s average")
    assert rows(minibatch_size=5_000) > rows() > rows(minibatch_ms=60_000) > rows(
        minibatch_ms=60_000, minibatch_size=10_000_000)


def test_longer_minibatch_fewer_resolutions_and_no_update_before_mean_fewer_rows():
    # the aggregates' rows alone (the budget lane's spend rows follow its own emit interval)
    rows = lambda **kw: plan(115_740, budget_lane=False, **kw).component(  # noqa: E731
        "aggregates_stream").metric("changelog rows/s average")
    base = rows()  # the default: upsert changelog, one row per update
    assert rows(minibatch_ms=10_000) < base
    assert rows(serving_resolutions=("1m", "1h")) == pytest.approx(
        base * 2 / 4, rel=0.01)  # series dominate; leaderboards unchanged
    assert rows(changelog_update_before=False) == base
    assert rows(changelog_update_before=True) == pytest.approx(2 * base)  # retract: -U and +U


def test_sink_parallelization_factor_within_esm_limits_and_lanes_cover_peak():
    for kwargs in (dict(rate=1_000), dict(rate=115_740, peak=500_000),
                   dict(rate=115_740, changelog_rows_per_record=100)):
        p = plan(**kwargs)
        sink = p.component("sink_lambda")
        assert 1 <= sink.context["sink_parallelization_factor"] <= 10
        assert sink.metric("lanes (shards x parallelization factor)") >= sink.metric(
            "concurrency needed at peak")


def test_packing_changelog_rows_raises_parallelization_factor_instead_of_shards():
    packed = plan(115_740, changelog_rows_per_record=100)
    assert packed.context["sink_parallelization_factor"] > 1
    assert packed.context["aggregates_kinesis_shards"] < plan(115_740).context[
        "aggregates_kinesis_shards"]


def test_timestream_store_is_costed_from_its_own_lines():
    # Uniform popularity (ad_skew=0): distinct ads among n clicks = 1e6 x (1 - e^(-n / 1e6)).
    ads = lambda n: 1e6 * -math.expm1(-n / 1e6)  # noqa: E731
    # Clicks only: the Timestream writer stores per-ad 'agg' rows (and 'late'), no rollups, so
    # these lines are the ads' series alone.
    c = plan(10_000, serving_store="timestream", ad_skew=0, impressions_per_click=0,
             conversions_per_click=0).component("serving")
    assert c.mode == "timestream"
    # writes: 4 resolutions x ads(20,000 clicks per 2 s mini-batch) = 4 x 19,801.3 / 2 s
    # = 39,602.7 upserts/s, one 1 KB unit each (250 B record), x 2,628,000 s = 1.0408e11/month
    writes = 4 * ads(20_000) / 2 * MONTH_S
    # records a day adds: 1,440 1m buckets x ads(600,000) + 288 5m x ads(3e6) + 24 1h x ads(3.6e7)
    # + 1 1d x ads(8.64e8) = 649.7M + 273.7M + 24.0M + 1.0M = 948.4M, 250 B each
    per_day = 1_440 * ads(600_000) + 288 * ads(3e6) + 24 * ads(3.6e7) + ads(8.64e8)
    assert per_day == pytest.approx(948.37e6, rel=1e-5)
    memory_gb_hours = per_day * 48 / 24 * 250 / 1024**3 * 730  # 48 h in memory: 441.6 GB all month
    magnetic_gb = per_day * 12 * 730 / 24 * 250 / 1024**3  # 12 months of records: 80,596 GB
    expected = {"timestream_writes": (writes, writes * 0.50 / 1e6),  # $52,037.89
                "timestream_memory_gb_hour": (memory_gb_hours, memory_gb_hours * 0.036),  # $11,605.78
                "timestream_magnetic_gb_month": (magnetic_gb, magnetic_gb * 0.03)}  # $2,417.87
    assert {line.price_key: (line.quantity, line.usd) for line in c.costs} == {
        k: pytest.approx(v, rel=1e-9) for k, v in expected.items()}
    total = sum(usd for _, usd in expected.values())
    assert total == pytest.approx(66_061.54, abs=0.01)
    assert c.monthly_usd == pytest.approx(total, rel=1e-9)
    assert c.alternatives["timestream"] == pytest.approx(total, rel=1e-9)


# --- Flink, Firehose, Glue -----------------------------------------------------------------------------
def test_flink_kpus_by_throughput_and_quota():
    c = plan(10_000, 20_000).component("flink")
    # rows at peak: 20,000 clicks + 1,000,000 impressions + 400 conversions = 1,020,400/s
    assert c.metric("input rows/s peak (clicks, impressions, conversions)") == pytest.approx(1_020_400)
    # + the budget lane's spend aggregation: 2/12 of a row per valid click, 20,000 x 2/12 = 3,333.3
    assert c.metric("budget lane spend aggregation, row-equivalents/s peak") == pytest.approx(20_000 / 6)
    assert c.metric("KPUs by throughput (peak x headroom)") == pytest.approx(
        (1_020_400 + 20_000 / 6) * 1.5 / 5_377)  # 285.59
    assert c.context["flink_parallelism"] == 286
    # state: 2 click dedup states x peak x 1,800 s TTL keys; 1 per impression and conversion
    assert c.metric("state: click dedup keys") == pytest.approx(2 * 20_000 * 1_800)
    assert c.metric("state: event dedup keys") == pytest.approx(1_000_400 * 1_800)
    assert any("KPUs per application" in w for w in c.warnings)  # 286 > 64
    clicks_only = plan(10_000, 20_000, impressions_per_click=0, conversions_per_click=0)
    assert clicks_only.context["flink_parallelism"] == 7  # 20,000 x (1 + 2/12) x 1.5 / 5,377 = 6.51
    big = plan(115_740, 500_000).component("flink")
    assert big.context["flink_parallelism"] == 7_140  # 500,000 x (51.02 + 2/12) x 1.5 / 5,377 = 7,139.67
    assert plan(115_740, 500_000, budget_lane=False).context["flink_parallelism"] == 7_117  # 7,116.42


def test_firehose_5kb_rounding_and_buffering():
    p = plan(10_000)
    fh = p.component("firehose")
    records = 10_000 * MONTH_S
    assert fh.metric("billed (records rounded up to 5 KB)") == pytest.approx(records * 5 * 1024 / 1024**3)
    assert fh.metric("buffer fills every") == pytest.approx(128 * MIB / 2_000_000)  # 67 s
    assert fh.context == {"firehose_buffer_mb": 128, "firehose_buffer_interval_s": 300}
    # slow streams stretch the interval so objects stay big (up to Firehose's 900 s)
    assert plan(1_000).context["firehose_buffer_interval_s"] == 720  # fill 671 s -> 12 min
    assert plan(100).context["firehose_buffer_interval_s"] == 900
    packed = plan(10_000, clicks_per_record=20).component("firehose")
    assert packed.monthly_usd == pytest.approx(fh.monthly_usd / 20)


def test_glue_workers_and_cost_by_hand():
    c = plan(10_000).component("glue")
    dpu_h = 10_000 * 86_400 * (27 / 24) / 25_000 / 3600  # 10.8 DPU-hours per night
    assert c.metric("DPU-hours per run") == pytest.approx(dpu_h)
    assert c.context["billing_glue_workers"] == 6  # finish within 2 h
    assert c.monthly_usd == pytest.approx(dpu_h * 730 / 24 * 0.44)


def test_rebuild_kpus_leave_the_first_load_phase_within_the_target():
    """The seed day, clicks only (bench/rebuild.py's figure): 99,537 clicks/s x 3,600 x 27 hours
    read = 9.675B rows; / 14,298 rows per CPU-s = 676,668 CPU-s. The load runs at the serving
    table's headroom over the stream (its peak writes/s - its average), 1,000 writes/s per
    Lambda, phase 1 within the capacity a provisioned table holds at the stream's average
    (average / 0.7 - average: before autoscaling reacts); the job gets the 30 min minus the 5 min
    start-up minus phase 1's load."""
    p = plan(99_537, 500_000, impressions_per_click=0, conversions_per_click=0)
    c, serving = p.component("rebuild"), p.component("serving")
    rows = 99_537 * 3600 * 27
    cpu_s = rows / 14_298
    assert c.metric("archive rows read per day rebuilt") == pytest.approx(rows)
    assert c.metric("CPU-seconds per day rebuilt") == pytest.approx(cpu_s)
    avg, peak = serving.metric("writes/s average (incl. freshness)"), serving.metric("writes/s peak")
    assert peak > 40_000  # the table's quota is raised for the stream's peak already
    rate = peak - avg
    assert c.metric("load rate (table headroom over the stream's average)") == pytest.approx(rate)
    assert c.metric("load Lambdas at once") == c.context["rebuild_load_concurrency"] == math.ceil(rate / 1000)
    first, later = c.metric("load phase 1 items (boards, late, 1h/1d series)"), c.metric("load phase 2 items (1m/5m series)")
    assert c.metric("output rows per day (serving items)") == pytest.approx(first + later)
    assert 25e6 < first < 35e6 and later > 50 * first  # 1h/1d series + boards vs the minutes
    assert serving.context["serving_capacity_mode"] == "provisioned"
    first_rate = avg / 0.7 - avg
    assert c.metric("load rate, phase 1 (capacity already provisioned)") == pytest.approx(first_rate)
    kpus = math.ceil(cpu_s / (1500 - first / first_rate))
    assert c.context["rebuild_parallelism"] == kpus == 499
    run_s = cpu_s / kpus + 300
    assert c.metric("rebuild job time per day") == pytest.approx(run_s / 60)
    assert c.metric("recompute visible (job + phase 1 load)") == pytest.approx((run_s + first / first_rate) / 60)
    assert c.metric("recompute visible (job + phase 1 load)") <= 30
    assert c.metric("recompute complete (+ phase 2 load)") == pytest.approx((run_s + first / first_rate + later / rate) / 60)
    # on demand: shown per day rebuilt, not in the monthly total
    assert not c.counted and c.monthly_usd == 0
    kpu_line, load_line = c.costs
    assert kpu_line.usd == pytest.approx((kpus + 1) * run_s / 3600 * 0.11)
    assert load_line.usd == pytest.approx((first + later) / 0.7 / 3600 * 0.00065)
    assert any("QUOTA" in w and f"{kpus} KPUs" in w for w in c.warnings)  # > 64 per application
    assert not any("visible after" in w for w in c.warnings)
    # a small table: the default 40,000 writes/s quota minus the stream's average; on demand
    # phase 1 runs at that at once and the target is met
    small_p = plan(100, impressions_per_click=0, conversions_per_click=0, serving_capacity="on_demand")
    small, small_avg = small_p.component("rebuild"), small_p.component("serving").metric(
        "writes/s average (incl. freshness)")
    assert small.context["rebuild_parallelism"] == 1 and not small.warnings
    headroom = 40_000 - small_avg
    assert small.metric("load rate (table headroom over the stream's average)") == pytest.approx(headroom)
    assert small.metric("load rate, phase 1 (capacity already provisioned)") == pytest.approx(headroom)
    # provisioned for its ~2,190 writes/s: ~940 more before autoscaling reacts (floored at one
    # Lambda's 1,000), so phase 1 overruns and the planner names the minimum to set instead
    prov = plan(100, impressions_per_click=0, conversions_per_click=0, serving_capacity="provisioned")
    [w] = prov.component("rebuild").warnings
    assert prov.component("rebuild").metric("load rate, phase 1 (capacity already provisioned)") == 1000
    assert math.ceil(small_avg + headroom) == 40_000 and "provisioned minimum to 40,000 WCU" in w


def test_rebuild_warns_when_the_first_phase_alone_overruns_the_target():
    """No headroom over the stream (peak = average, above the default quota): one Lambda's
    1,000 writes/s, a phase 1 longer than the target: the job sized as if the load took no
    time (25 min after the start-up), and warned."""
    p = plan(99_537, impressions_per_click=0, conversions_per_click=0)
    c = p.component("rebuild")
    assert c.metric("load rate (table headroom over the stream's average)") == 1000
    assert c.context["rebuild_load_concurrency"] == 1
    assert any("compete with the stream" in w for w in c.warnings)
    assert any("visible after" in w for w in c.warnings)
    assert c.context["rebuild_parallelism"] == math.ceil(99_537 * 3600 * 27 / 14_298 / 1500) == 452


def test_rebuild_output_rows_by_hand_with_one_ad():
    """One ad in one campaign of one advertiser, every minute busy: per resolution and bucket
    one row per level (3) + one leaderboard entry on the 1m, 1h and 1d boards + one spend row
    per campaign at 1m and 1d (the budget lane). Phase 2: the 1m and 5m series and 1m spend."""
    c = plan(10, active_ads=1, impressions_per_click=0, conversions_per_click=0).component("rebuild")
    first = 24 * 3 + 1 * 3 + 1440 + 24 + 1 + 1
    later = 1440 * 3 + 288 * 3 + 1440
    assert c.metric("load phase 1 items (boards, late, 1h/1d series)") == pytest.approx(first, rel=1e-6)
    assert c.metric("load phase 2 items (1m/5m series)") == pytest.approx(later, rel=1e-6)
    assert c.metric("output rows per day (serving items)") == pytest.approx(first + later, rel=1e-6)
    no_lane = plan(10, active_ads=1, impressions_per_click=0, conversions_per_click=0,
                   budget_lane=False).component("rebuild")
    assert no_lane.metric("output rows per day (serving items)") == pytest.approx(first + later - 1441, rel=1e-6)


def test_rebuild_reads_the_hours_rebuild_range_reads():
    from aggregate.job.rebuild import rebuild_range
    from aggregate.job.settings import JobSettings
    from capacity.planner.rebuild import hours_read_per_day
    from common.schema import default

    s = JobSettings.from_properties({"clickagg": {
        "aws_region": "us-east-1",
        "clicks_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/clicks",
        "aggregates_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/aggregates"}})
    day = 1_796_083_200_000  # a UTC midnight
    r = rebuild_range(day, day + 86_400_000, day + 30 * 86_400_000, s,
                      cutoff_s=default("billing_cutoff_hours") * 3600,
                      max_future_skew_s=default("max_future_skew_s"))
    assert hours_read_per_day(s.dedup_ttl_s) == len(r.partitions) == 27


# --- levers ---------------------------------------------------------------------------------------------
def test_bigger_batches_mean_fewer_requests_and_lower_cost():
    plans = [plan(115_740, batch_size=b) for b in (1, 10, 50, 100, 500)]
    requests = [p.component("api").metric("requests/s average") for p in plans]
    assert requests == sorted(requests, reverse=True)
    for key in ("api", "ingest_lambda"):
        costs = [p.component(key).monthly_usd for p in plans]
        assert costs == sorted(costs, reverse=True), key
    totals = [p.monthly_usd for p in plans]
    assert totals == sorted(totals, reverse=True)


def test_lever_directions():
    base = plan(115_740)
    assert plan(115_740, api="http").component("api").monthly_usd < base.component("api").monthly_usd
    per_click = base.component("dedup").monthly_usd
    assert plan(115_740, dedup="per_request").component("dedup").monthly_usd < per_click / 10
    assert plan(115_740, dedup="mark").component("dedup").monthly_usd < per_click * 0.6  # 1 WCU + 0.5 RCU vs 2 WCU
    packed = plan(115_740, clicks_per_record=20)
    assert packed.component("clicks_stream").metric("records/s average") == pytest.approx(115_740 / 20)
    assert packed.component("firehose").monthly_usd < base.component("firehose").monthly_usd / 10
    assert plan(115_740, minibatch_ms=60_000).component("serving").monthly_usd < \
        base.component("serving").monthly_usd


def test_compare_levers_marks_the_base_and_reports_deltas():
    rows = compare_levers(rate=115_740, peak=231_480)
    base = plan(115_740, 231_480)
    assert {r.lever for r in rows} == {lever for lever, _, _ in planner.LEVERS}
    for r in rows:
        if r.is_base:
            assert r.monthly_usd == pytest.approx(base.monthly_usd) and r.delta_pct == 0
    per_request = next(r for r in rows if r.setting.startswith("per request"))
    assert per_request.delta_pct < 0 and per_request.caveat


def test_per_click_dedup_is_the_default():
    # the design card's "DynamoDB conditional-write dedup"; mark is a lever (test_lever_directions)
    assert plan(10_000).context["ingest_dedup_mode"] == "per_click"


# --- totals and validation -------------------------------------------------------------------------------
def test_total_is_sum_of_counted_components_and_per_million_is_consistent():
    p = plan(115_740, 500_000)
    assert p.monthly_usd == pytest.approx(sum(c.monthly_usd for c in p.components if c.counted))
    assert p.component("athena").monthly_usd == 0
    assert p.usd_per_million_clicks == pytest.approx(p.monthly_usd / (115_740 * MONTH_S / 1e6))


def test_json_round_trip_has_the_headline_numbers():
    import json

    d = json.loads(json.dumps(plan(10_000).to_dict()))
    raw_prices = json.loads((Path(pricing.__file__).parent / "prices" / "us-east-1.json").read_text())
    assert (d["region"], d["prices_as_of"]) == ("us-east-1", raw_prices["as_of"])
    assert d["clicks_per_month"] == 10_000 * MONTH_S == 26_280_000_000
    components = {c["key"]: c for c in d["components"]}
    assert list(components) == ["api", "ingest_lambda", "dedup", "clicks_stream", "events_stream",
                                "flink", "aggregates_stream", "sink_lambda", "serving", "firehose",
                                "archive", "events_firehose", "events_archive", "glue", "rebuild",
                                "observability", "budget_api", "budget_reads", "budget_ops",
                                "athena"]
    assert [k for k, c in components.items() if not c["counted"]] == ["rebuild", "athena"]
    # requests/s: 10,000 clicks / 50 + 500,000 impressions / 500 + 200 conversions / 1
    clicks, impressions, conversions = (r * MONTH_S for r in (200, 1_000, 200))
    requests = clicks + impressions + conversions  # 3,679.2M a month
    # answer bytes: 150 + 70 x 50 (clicks), 150 + 98 x 500 (impressions), 150 + 98 (conversions):
    # 525.6M x 3,650 + 2,628M x 49,150 + 525.6M x 248 = 122,203.5 GB: 10,240 x $0.09 + 40,960 x
    # $0.085 + 71,003.5 x $0.07
    dto_gb = (clicks * 3_650 + impressions * 49_150 + conversions * 248) / 1024**3
    assert dto_gb == pytest.approx(122_203.5, abs=0.1)
    # events stream: 500,200 records/s of 521.01 B (mean): records bind, 500.2 x 1.25 -> 626 shards
    events = 500_200 * MONTH_S  # 1.3145e12 records a month
    # events Firehose: every record billed as 5 KB = 6,268,157 GB, priced after the clicks'
    # 26.28e9 x 5 KB = 125,313 GB: ingestion tiers (512,000 - 125,313) x $0.029 + 1,536,000 x
    # $0.025 + the rest x $0.020, conversion $0.018 per GB
    events_gb, clicks_gb = events * 5_120 / 1024**3, 26.28e9 * 5_120 / 1024**3
    by_hand = {
        # 333M x $3.50 + 667M x $2.80 + 2,679.2M x $2.38 per M + the answers
        "api": 333 * 3.50 + 667 * 2.80 + 2_679.2 * 2.38
        + 10_240 * 0.09 + 40_960 * 0.085 + (dto_gb - 51_200) * 0.07,  # 18,783.04
        # 3,679.2M x $0.20 per M + (200 x 0.1 s + 1,000 x 0.125 s + 200 x 0.0265 s) a second
        # = 150.3 GB-s/s x 2,628,000 s x $0.0000133334
        "ingest_lambda": requests * 0.20 / 1e6 + 150.3 * MONTH_S * 0.0000133334,  # 6,002.38
        # 20,400 WCU/s / 0.7 x 730 h x $0.00065 + 410.38 GB x ($0.25 + $0.20)
        "dedup": 20_400 / 0.7 * 730 * 0.00065 + 10_200 * 172_800 * 250 / 1024**3 * 0.45,  # 14,012.96
        # 13 shards x 730 h x ($0.015 + $0.020 retention) + 26.28e9 PUT units x $0.014 per M
        "clicks_stream": 13 * 730 * 0.035 + 26.28e9 * 0.014 / 1e6,  # 700.07
        # 626 shards x 730 h x $0.035 + 1.3145e12 PUT units x $0.014 per M
        "events_stream": 626 * 730 * 0.035 + events * 0.014 / 1e6,  # 34,397.66
        "events_firehose": (512_000 - clicks_gb) * 0.029 + 1_536_000 * 0.025
        + (clicks_gb + events_gb - 2_048_000) * 0.020 + events_gb * 0.018,  # 249,349.75
        "glue": 10.8 * 730 / 24 * 0.44,  # 10.8 DPU-hours x 30.4 nights x $0.44: 144.54
        "athena": 0.0,
    }
    assert {k: components[k]["monthly_usd"] for k in by_hand} == {
        k: pytest.approx(round(v, 2), abs=1e-9) for k, v in by_hand.items()}
    counted = [c["monthly_usd"] for c in d["components"] if c["counted"]]
    assert d["monthly_usd"] == pytest.approx(sum(counted), abs=0.005 * len(counted))
    assert d["usd_per_million_clicks"] == pytest.approx(d["monthly_usd"] / 26_280, abs=1e-4)


@pytest.mark.parametrize("kwargs", [
    dict(rate=0), dict(rate=10, peak=5), dict(rate=10, batch_size=501), dict(rate=10, api="soap"),
    dict(rate=10, dedup="none"), dict(rate=10, clicks_per_record=0),
    dict(rate=10, serving_resolutions=("5m",)), dict(rate=10, region="mars-1"),
])
def test_bad_inputs_are_refused(kwargs):
    with pytest.raises(ValueError):
        plan(**kwargs)


def test_other_region_prices_change_exactly_the_lines_they_price():
    # without the budget lane (its own lines are priced in test_budget.py)
    us, eu = plan(10_000, budget_lane=False), plan(10_000, region="eu-west-1", budget_lane=False)
    # capacity/prices/eu-west-1.json differs from us-east-1 in: REST requests ($2.80 -> $3.19 per M
    # from 333M to 1B), HTTP requests, DynamoDB on-demand writes and reads, provisioned WCU-hours
    # ($0.00065 -> $0.000735) and RCU-hours ($0.00013 -> $0.000147), storage ($0.25 -> $0.283 per
    # GB-month) and CloudWatch Logs ingestion ($0.50 -> $0.57 per GB). Everything else costs the
    # same.
    for key in ("ingest_lambda", "clicks_stream", "events_stream", "flink", "aggregates_stream",
                "sink_lambda", "firehose", "archive", "events_firehose", "events_archive", "glue",
                "athena"):
        assert eu.component(key).monthly_usd == pytest.approx(us.component(key).monthly_usd), key
    # API: 3,679.2M requests (clicks, impressions, conversions), 667M of them in the second tier
    # and 2,679.2M in the third: 667 x ($3.19 - $2.80) + 2,679.2 x ($2.71 - $2.38) = $1,144.27
    api_delta = 667 * (3.19 - 2.80) + 2_679.2 * (2.71 - 2.38)
    assert eu.component("api").monthly_usd - us.component("api").monthly_usd == pytest.approx(api_delta)
    # dedup: 20,400 WCU/s / 0.7 x 730 h x $0.000085 + 410.38 GB x $0.033 = $1,808.31 + $13.54
    dedup_delta = 20_400 / 0.7 * 730 * (0.000735 - 0.00065) + \
        10_200 * 172_800 * 250 / 1024**3 * (0.283 - 0.25)
    mark_us, mark_eu = (plan(10_000, budget_lane=False, dedup="mark", region=r).component("dedup")
                        for r in ("us-east-1", "eu-west-1"))
    # mark: 10,200 WCU/s and 5,100 RCU/s ($0.00013 -> $0.000147 per RCU-hour): $904.16 + $90.42 + $13.54
    assert mark_eu.monthly_usd - mark_us.monthly_usd == pytest.approx(
        10_200 / 0.7 * 730 * (0.000735 - 0.00065) + 5_100 / 0.7 * 730 * (0.000147 - 0.00013)
        + 10_200 * 172_800 * 250 / 1024**3 * (0.283 - 0.25))
    assert eu.component("dedup").monthly_usd - us.component("dedup").monthly_usd == \
        pytest.approx(dedup_delta)
    # serving, observability: same quantities, flat prices, so each line scales by its price ratio
    ratio = {"ddb_provisioned_wcu_hour": 0.000735 / 0.00065, "ddb_storage_gb_month": 0.283 / 0.25,
             "cw_logs_ingest_gb": 0.57 / 0.50}
    changed = {"serving": {"ddb_provisioned_wcu_hour", "ddb_storage_gb_month"},
               "observability": {"cw_logs_ingest_gb"}}
    line_deltas = 0.0
    for key in ("serving", "observability"):
        us_lines, eu_lines = us.component(key).costs, eu.component(key).costs
        assert [(line.price_key, line.quantity) for line in eu_lines] == [
            (line.price_key, pytest.approx(line.quantity)) for line in us_lines]
        assert {line.price_key for line in us_lines} & set(ratio) == changed[key]
        for u, e in zip(us_lines, eu_lines):
            assert e.usd == pytest.approx(u.usd * ratio.get(u.price_key, 1.0)), (key, u.item)
            line_deltas += e.usd - u.usd
    assert eu.monthly_usd - us.monthly_usd == pytest.approx(api_delta + dedup_delta + line_deltas)


# --- freshness slots (serving table hot-key relief) ------------------------------------------------
@pytest.mark.parametrize("rate, peak", [(10_000, 20_000), (115_740, 231_480), (115_740, 500_000)])
def test_freshness_slots_keep_the_busiest_slot_under_half_a_partition(rate, peak):
    p = plan(rate, peak)
    sink = p.component("sink_lambda")
    invocations = sink.metric("invocations/s average")
    freshness_peak = invocations * planner.FRESHNESS_WRITES_PER_INVOCATION * peak / rate
    # slots: ceil(peak writes x 2 (uneven hashing) / 500), rounded up to 8, within 16..100
    needed = math.ceil(freshness_peak * 2 / 500)
    slots = min(100, max(16, math.ceil(needed / 8) * 8))
    assert p.context["freshness_slots"] == sink.metric("freshness slots") == slots
    busiest = sink.metric("freshness updates/s at peak, busiest slot (x2 margin)")
    shards = p.component("aggregates_stream").metric("shards in use (estimate)")
    assert busiest == pytest.approx(freshness_peak / min(slots, shards) * 2)
    # with impressions at 50x and the upsert changelog (test_profiles_docs: busiest slot 408.9,
    # 457.1 and 789.8 updates/s) only the large profile needs more than the 100 slots one
    # BatchGetItem reads: the planner says so
    assert (busiest > 500) == (needed > 100) == bool([w for w in sink.warnings if "freshness" in w])
    assert (busiest > 500) == (peak == 500_000)



def test_the_account_concurrency_check_counts_a_rebuilds_load_lambdas():
    """While a rebuild loads, its rebuild_load_concurrency Lambdas run beside the stream's:
    14,000 clicks/s (peak 4x) fits the 900 usable executions without them, not with them; at
    the seed the stream alone is over and the message gives the figure with the load."""
    def need(p):
        ingest = p.component("ingest_lambda").metric("reserved concurrency")
        sink = math.ceil(p.component("sink_lambda").metric("concurrency needed at peak") * 1.5)
        return ingest + sink + math.ceil(p.component("budget_api").metric("budget Lambda concurrency peak"))

    p = plan(14_000, 56_000, impressions_per_click=0, conversions_per_click=0)
    load = p.component("rebuild").context["rebuild_load_concurrency"]
    assert need(p) <= 900 < need(p) + load
    [w] = [w for w in p.account_warnings if "concurrent executions" in w]
    assert f"its {load:,} load Lambdas + the stream's {need(p):,} = {need(p) + load:,} > 900" in w
    seed = plan(99_537, 500_000, impressions_per_click=0, conversions_per_click=0)
    load = seed.component("rebuild").context["rebuild_load_concurrency"]
    [w] = [w for w in seed.account_warnings if "concurrent executions" in w]
    assert f"= {need(seed):,} ({need(seed) + load:,} while a rebuild loads) > 900" in w
