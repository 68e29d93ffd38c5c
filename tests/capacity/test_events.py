"""Issue 19's events in the planner: impressions and conversions scale every events term with
their multiple of the clicks, and the terms vanish at 0 (the events stream keeps the one shard
the stack deploys). Values by hand from capacity/planner/assumptions.py and us-east-1 prices."""
from __future__ import annotations

import json

import pytest

from capacity import __main__ as cli
from capacity import planner
from capacity.planner import distinct_ads, plan
from capacity.pricing import load_prices

MONTH_S = 730 * 3600
GIB = 1024**3
RATE, PEAK = 10_000, 20_000  # the seed profile
NO_EVENTS = dict(impressions_per_click=0, conversions_per_click=0)


def test_typical_records_are_what_ingest_publishes():
    from common.click_token import ClickClaims
    from common.records import encode_event
    from ingest.events import conversion_record, impression_record
    from ingest.models import ConversionIn, ImpressionIn

    imp = planner.TYPICAL_IMPRESSION
    served = ImpressionIn.model_validate({
        "type": "impression", "impression_id": imp["impression_id"], "ad_id": imp["ad_id"],
        "campaign_id": imp["campaign_id"], "advertiser_id": imp["advertiser_id"],
        "timestamp": imp["event_time"], "placement_id": imp["placement_id"],
        "publisher_id": imp["publisher_id"], "user_id": imp["user_id"]})
    record = impression_record(served, imp["ingest_time"], imp["request_id"], imp["source_ip"])
    assert record == imp  # the same fields, the same values: the bytes are ingest's
    conv = planner.TYPICAL_CONVERSION
    converted = ConversionIn.model_validate({
        "type": "conversion", "conversion_id": conv["event_id"], "click_id": conv["click_id"],
        "value": "49.99", "currency": "USD", "occurred_at": conv["event_time"], "token": "t"})
    claims = ClickClaims(impression_id=conv["impression_id"], ad_id=conv["ad_id"],
                         campaign_id=conv["campaign_id"], advertiser_id=conv["advertiser_id"],
                         price_micros=250_000, issued_at=0, expires_at=1, landing_url="https://x",
                         placement_id=conv["placement_id"], publisher_id=conv["publisher_id"])
    assert conversion_record(converted, claims, conv["ingest_time"], conv["request_id"],
                             conv["source_ip"]) == conv  # token-attributed: the token's ids
    assert planner.IMPRESSION_RECORD_BYTES == len(encode_event(imp)) == 521
    assert planner.CONVERSION_RECORD_BYTES == len(encode_event(conv)) == 547


def test_events_terms_vanish_at_zero():
    p = plan(RATE, PEAK, **NO_EVENTS)
    stream = p.component("events_stream")
    assert stream.metric("records/s average") == stream.metric("records/s peak") == 0
    # the deployed stream: one provisioned shard (730 h x ($0.015 + $0.020 retention)), no PUTs
    assert {c.item: c.usd for c in stream.costs} == {
        "shard-hours": pytest.approx(730 * 0.015), "PUT payload units": 0.0,
        "extended retention": pytest.approx(730 * 0.020)}
    assert p.context["events_kinesis_shards"] == 1
    assert p.component("events_firehose").monthly_usd == 0
    assert p.component("events_archive").monthly_usd == 0
    api = p.component("api")
    assert api.metric("impressions requests/s average") == api.metric(
        "conversions requests/s average") == 0
    assert api.metric("requests/s average") == pytest.approx(RATE / 50)
    assert p.component("dedup").metric("WCU/s average") == pytest.approx(2 * RATE)
    flink = p.component("flink")
    assert flink.metric("state: event dedup keys") == 0
    assert flink.metric("input rows/s peak (clicks, impressions, conversions)") == PEAK
    agg = p.component("aggregates_stream")
    assert agg.metric("distinct ads per mini-batch (average)") == pytest.approx(
        distinct_ads(RATE * 2, 1_000_000, 0.8))


@pytest.mark.parametrize("multiple", [10, 50, 100])
def test_events_terms_scale_with_the_impressions_multiple(multiple):
    p, zero = plan(RATE, PEAK, impressions_per_click=multiple), plan(RATE, PEAK, **NO_EVENTS)
    records_s = RATE * (multiple + 0.02)  # impressions + conversions, one record each
    stream = p.component("events_stream")
    assert stream.metric("records/s average") == pytest.approx(records_s)
    assert stream.metric("records/s peak") == pytest.approx(2 * records_s)
    assert p.context["events_kinesis_shards"] == -(-2 * records_s * 1.25 // 1_000)  # records bind
    # ingest: 500 impressions per request of 25 + 0.2 x 500 = 125 ms, on top of the clicks' and
    # the 200 conversions' (1 per request, 26.5 ms)
    api = p.component("api")
    assert api.metric("impressions requests/s average") == pytest.approx(RATE * multiple / 500)
    conc = p.component("ingest_lambda").metric("concurrency average")
    assert conc - zero.component("ingest_lambda").metric("concurrency average") == pytest.approx(
        RATE * multiple / 500 * 0.125 + 200 * 0.0265)
    # Firehose bills each event as 5 KB; the events archive stores 0.3 x the JSON bytes
    fh = p.component("events_firehose")
    assert fh.metric("billed (records rounded up to 5 KB)") == pytest.approx(
        records_s * MONTH_S * 5_120 / GIB)
    json_bytes_s = RATE * (multiple * 521 + 0.02 * 547)
    assert p.component("events_archive").metric("Parquet per month") == pytest.approx(
        json_bytes_s * MONTH_S * 0.3 / GIB)
    # Flink: every event is a row (KPUs) and a dedup key for 1,800 s; the budget lane's spend
    # aggregation adds 2/12 of a row per (valid) click
    flink = p.component("flink")
    assert flink.metric("state: event dedup keys") == pytest.approx(2 * records_s * 1_800)
    assert flink.metric("KPUs by throughput (peak x headroom)") == pytest.approx(
        (PEAK + 2 * records_s + PEAK * 2 / 12) * 1.5 / 5_377)
    # the serving path grows with the distinct ads the events touch, never past every ad,
    # campaign and advertiser each mini-batch (4 series each, 3 boards of 1,000: 2 rows each),
    # plus the budget lane's spend (clicks only: every campaign's 1m and 1d per 0.5 s at most, 2
    # rows each) and 2 pulse rows/s
    rows = p.component("aggregates_stream").metric("changelog rows/s average")
    assert zero.component("aggregates_stream").metric("changelog rows/s average") < rows
    assert rows <= (4 * (1_000_000 + 100_000 + 10_000) + 3 * 1_000) / 2 * 2 + 2 * 100_000 / 0.5 * 2 + 2


def test_costs_grow_with_the_multiples():
    totals = [plan(RATE, PEAK, impressions_per_click=m).monthly_usd for m in (0, 10, 50, 100)]
    assert totals == sorted(totals) and len(set(totals)) == 4
    dedup = [plan(RATE, PEAK, conversions_per_click=c).component("dedup") for c in (0, 0.02, 0.1)]
    # conversions are claimed like clicks: 2 WCU each; impressions never are
    assert [d.metric("conversion claims WCU/s average") for d in dedup] == pytest.approx(
        [0, 2 * 200, 2 * 1_000])
    assert plan(RATE, PEAK, impressions_per_click=100).component("dedup").metric(
        "WCU/s average") == pytest.approx(2 * RATE + 2 * 200)
    # ingest_dedup_mode mark: conversions go through the same store, 1 WCU + 0.5 RCU each
    mark = [plan(RATE, PEAK, conversions_per_click=c, dedup="mark").component("dedup") for c in (0, 0.1)]
    assert [d.metric("conversion claims WCU/s average") for d in mark] == pytest.approx([0, 1_000])
    assert [d.metric("RCU/s average") for d in mark] == pytest.approx([0.5 * RATE, 0.5 * (RATE + 1_000)])


def test_events_archive_priced_after_the_clicks_archive():
    p = plan(RATE, PEAK)
    s3 = p.component("events_archive")
    # month 12: one month of Parquet in Standard (archive_ia_after_days = 30); the clicks' 1,468.8
    # GB fill the first 51,200 GB tier first
    clicks_gb = RATE * 200 * MONTH_S * 0.3 / GIB
    events_gb = (RATE * 50 * 521 + RATE * 0.02 * 547) * MONTH_S * 0.3 / GIB
    assert s3.metric("stored: Standard") == pytest.approx(events_gb)
    first = 51_200 - clicks_gb
    standard = next(c for c in s3.costs if c.item == "Standard storage")
    assert standard.usd == pytest.approx(first * 0.023 + (events_gb - first) * 0.022)
    tiered = load_prices()["firehose_kds_ingest_gb"]
    assert tiered.cost(100, after=511_950) == pytest.approx(50 * 0.029 + 50 * 0.025)


def test_bad_multiples_are_refused():
    for kwargs in (dict(impressions_per_click=-1), dict(conversions_per_click=-0.1),
                   dict(events_kinesis_mode="fast")):
        with pytest.raises(ValueError):
            plan(RATE, **kwargs)


def test_cli_takes_the_multiples(capsys):
    assert cli.main(["plan", "--rate", "10000", "--peak", "20000", "--impressions-per-click", "0",
                     "--conversions-per-click", "0", "--json", "--no-levers"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["monthly_usd"] == pytest.approx(round(plan(RATE, PEAK, **NO_EVENTS).monthly_usd, 2))
    assert doc["inputs"]["impressions_per_click"] == 0


def test_lever_table_shows_the_impressions_multiple():
    rows = [r for r in planner.compare_levers(rate=RATE, peak=PEAK)
            if r.lever == "impressions per click"]
    assert [r.is_base for r in rows] == [False, False, True, False]  # 0, 10, 50 (default), 100
    assert [r.monthly_usd for r in rows] == sorted(r.monthly_usd for r in rows)
