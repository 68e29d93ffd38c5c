"""GET /v1/quality `ivt`: clicks per IVT verdict in the last 5 minutes and the last whole hour, their
rates and the alert, on both stores, against brute-force oracles over the same rows:
  DynamoDB   the leaderboard entries the table holds for the windows' buckets (tests/query/truth.py
             leaderboards(), truncated to M: `complete` says whether they hold every ad), and with
             an M no bucket fills, the truth itself (every ad)
  Timestream the store's SQL run on DuckDB over what the sink's Timestream writer stored: the truth
Plus the pure parts (windows, alert boundary, rates, status precedence) and rows written before the
verdicts existed (no suspect/invalid: 0)."""
from __future__ import annotations

import random

import boto3
import pytest

from aggregate.changes import AGG, LATE, TOP, Change
from common.config import AggregationSettings, QualitySettings, ResourceNames
from local.resources import create_serving_table
from query.quality import (IvtWindow, PipelineMetrics, VerdictTotals, ivt_alerting, ivt_json, ivt_rates,
                           ivt_windows, parse_quality, quality_body, reconciliation_json)
from query.service import QueryService
from serving.read.dynamodb import DynamoDBQueryStore
from serving.read.timestream import TimestreamQueryStore
from serving.write.dynamodb import item_for
from serving.write.timestream import TimestreamServingStore
from tests.query.timestream_duckdb import TimestreamOnDuckDB
from tests.query.truth import (DAY, FIELDS, HOUR, MIN, Truth, leaderboards, load, oracle_ivt_totals, random_truth,
                               serving_items)

TABLE = ResourceNames().serving_table
DAY0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY
T0 = DAY0 - 2 * HOUR  # data 22:00 to 03:00: the hour and 5-minute windows cross a day
LATENESS = 900_000  # AggregationSettings' allowed_lateness_s default, in ms (own copy: oracle)
COUNTS = ("clicks", "billable_clicks", "suspect_clicks", "invalid_clicks")


# --- brute force ------------------------------------------------------------------------------

def expected_windows(params: dict, now: int) -> dict[str, tuple[str, int, int]]:
    """name -> (resolution, start, end) of the ivt windows, from the request alone."""
    end = int(params["to"]) - int(params["to"]) % MIN if "to" in params else now - now % MIN + MIN
    anchor = min(end, now - now % MIN)
    hour = anchor - anchor % HOUR
    return {"last_5m": ("1m", anchor - 5 * MIN, anchor), "last_hour": ("1h", hour - HOUR, hour)}


def board_oracle(t: Truth, m: int, resolution: str, start: int, end: int) -> tuple[tuple[int, ...], bool]:
    """(clicks, billable, suspect, invalid) over the entries of the leaderboards the table holds
    for the buckets in [start, end), and whether every one of them lists every ad (<= 0.9 M)."""
    boards = leaderboards(t, resolution, m)
    step = HOUR if resolution == "1h" else MIN
    idx = [FIELDS.index(c) for c in COUNTS]
    sums, complete = [0, 0, 0, 0], True
    for bucket in range(start, end, step):
        entries = boards.get(bucket, [])
        complete = complete and len(entries) * 10 <= m * 9
        for _, v in entries:
            for j, i in enumerate(idx):
                sums[j] += v[i]
    return tuple(sums), complete


def assert_window(w: dict, counts: tuple[int, ...], complete: bool, percent: int, watermark) -> None:
    c, b, s, i = counts
    assert (w["clicks"], w["billable_clicks"], w["suspect_clicks"], w["invalid_clicks"]) == counts
    assert w["complete"] is complete
    assert w["rates"] == ({"suspect": s / c, "invalid": i / c, "both": (s + i) / c} if c else
                          {"suspect": None, "invalid": None, "both": None})
    assert w["alert"] is (c > 0 and (s + i) * 100 > percent * c)  # "exceeds": strictly above
    assert w["final"] is (watermark is not None and w["to_ms"] + LATENESS <= watermark)


def assert_section(body: dict, expected: dict[str, tuple[tuple[int, ...], bool]], percent: int, watermark) -> None:
    ivt = body["ivt"]
    assert (ivt["alert_percent"], ivt["alert_min_clicks"]) == (percent, 1)  # floor 1: any clicks
    for name, (counts, complete) in expected.items():
        assert_window(ivt[name], counts, complete, percent, watermark)
    alerting = [name for name in ("last_5m", "last_hour") if ivt[name]["alert"]]
    assert ivt["alert"] is bool(alerting)
    ivt_alerts = [a for a in body["alerts"] if a.startswith("IVT in ")]
    assert len(ivt_alerts) == len(alerting)
    assert body["status"] == ("ivt" if alerting else "ok")  # no reconciliation here


# --- pure -------------------------------------------------------------------------------------

NOW = DAY0 + 17 * HOUR + 30 * MIN + 12_345


@pytest.mark.parametrize("params,anchor", [
    ({}, NOW - NOW % MIN),  # the default window ends after this minute: the current one is left out
    ({"last": "15m"}, NOW - NOW % MIN),
    ({"to": str(NOW - 3 * HOUR - 7_000)}, NOW - 3 * HOUR - 7_000 - (NOW - 7_000) % MIN),
    ({"to": str(NOW + 2 * HOUR)}, NOW - NOW % MIN),  # a window ending in the future: now
    ({"to": str(DAY0 + 30_000), "last": "1h"}, DAY0),  # the hour before midnight, minutes too
])
def test_windows_end_at_the_anchor(params, anchor):
    req = parse_quality(params, NOW)
    five, hour = ivt_windows(req.window.end, NOW)
    assert (five.name, five.resolution, five.start, five.end) == ("last_5m", "1m", anchor - 5 * MIN, anchor)
    h = anchor - anchor % HOUR
    assert (hour.name, hour.resolution, hour.start, hour.end) == ("last_hour", "1h", h - HOUR, h)
    got = {w.name: (w.resolution, w.start, w.end) for w in (five, hour)}
    assert got == expected_windows(params, NOW)


@pytest.mark.parametrize("clicks,suspect,invalid,percent,alert", [
    (100, 3, 2, 5, False),  # exactly 5 %: not above
    (100, 3, 3, 5, True),
    (2000, 50, 51, 5, True),  # 5.05 %
    (3, 0, 0, 1, False), (3, 1, 0, 33, True), (3, 1, 0, 34, False),  # 33.33 %
    (0, 0, 0, 1, False),  # no clicks: no rate, no alert
    (7, 7, 0, 100, False), (7, 4, 3, 99, True),
    (10**12, 5 * 10**10, 1, 5, True),  # one click above 5 % of a trillion: integers, not floats
])
def test_alert_is_strictly_above_the_percent_in_integers(clicks, suspect, invalid, percent, alert):
    t = VerdictTotals(clicks, clicks - suspect - invalid, suspect, invalid)
    assert ivt_alerting(t, percent) is alert


@pytest.mark.parametrize("clicks,floor,alert", [
    (99, 100, False), (100, 100, True), (101, 100, True),  # 50 % suspect: only the floor decides
    (1, 1, True), (2, 3, False), (0, 1, False), (0, 0, False),  # a floor below 1 is 1: never without clicks
])
def test_no_alert_below_the_minimum_clicks(clicks, floor, alert):
    t = VerdictTotals(clicks, clicks - clicks // 2, clicks // 2 + clicks % 2, 0)
    assert ivt_alerting(t, 5, floor) is alert


def test_the_ivt_section_applies_and_states_the_floor():
    req = parse_quality({}, NOW)
    windows = ivt_windows(req.window.end, NOW)
    totals = [VerdictTotals(99, 0, 99, 0), VerdictTotals(400, 300, 100, 0)]  # 100 % of 99, 25 % of 400
    ivt = ivt_json(windows, totals, 5, {}, min_clicks=100)
    assert (ivt["alert_min_clicks"], ivt["last_5m"]["alert"], ivt["last_hour"]["alert"], ivt["alert"]) == (
        100, False, True, True)
    assert ivt["last_5m"]["rates"]["both"] == 1.0  # the rate is still reported, only not alerted on
    body = quality_body(req, NOW, {}, PipelineMetrics(None, None, "test"), 0, None, ivt)
    assert [a.split(" (")[0] for a in body["alerts"]] == ["IVT in the last whole hour"]


def test_rates_per_class_and_none_without_clicks():
    assert ivt_rates(VerdictTotals(8, 4, 3, 1)) == {"suspect": 0.375, "invalid": 0.125, "both": 0.5}
    assert ivt_rates(VerdictTotals()) == {"suspect": None, "invalid": None, "both": None}


def test_status_names_drift_first_and_every_alert_is_listed():
    req = parse_quality({}, NOW)
    windows = ivt_windows(req.window.end, NOW)
    totals = [VerdictTotals(100, 90, 6, 4), VerdictTotals(1000, 970, 20, 10)]  # 10 %, 3 %
    ivt = ivt_json(windows, totals, 5, {"last_5m": False, "last_hour": True})
    assert ivt["alert"] is True and ivt["last_5m"]["alert"] and not ivt["last_hour"]["alert"]
    assert ivt["last_hour"]["final"] is True and ivt["last_5m"]["complete"] is True
    metrics = PipelineMetrics(None, None, "test")
    body = quality_body(req, NOW, {}, metrics, 0, None, ivt)
    assert body["status"] == "ivt" and body["alerts"] == [
        f"IVT in the last 5 minutes ({body['ivt']['last_5m']['from']} to {body['ivt']['last_5m']['to']}): "
        "10.00% of 100 clicks suspect or invalid, above 5%"]
    drift = reconciliation_json({"day": "2026-03-09", "total_drift": 0.002, "threshold": 0.001, "flag": True}, NOW)
    body = quality_body(req, NOW, {}, metrics, 0, drift, ivt)
    assert body["status"] == "drift" and len(body["alerts"]) == 2 and body["alerts"][1].startswith("IVT in ")
    quiet = ivt_json(windows, [VerdictTotals(), VerdictTotals(10, 10, 0, 0)], 5, {})
    body = quality_body(req, NOW, {}, metrics, 0, None, quiet)
    assert body["status"] == "ok" and body["alerts"] == [] and quiet["alert"] is False
    assert quiet["last_5m"]["final"] is False


# --- DynamoDB (in-process moto) ---------------------------------------------------------------

@pytest.fixture
def ddb(aws):
    client = boto3.client("dynamodb")
    create_serving_table(client, TABLE)
    return client


def dynamo_service(ddb, m: int, now: int, percent: int) -> QueryService:
    return QueryService(DynamoDBQueryStore(ddb, TABLE, m), AggregationSettings(leaderboard_size=m),
                        clock_ms=lambda: now, quality=QualitySettings(ivt_alert_percent=percent, ivt_alert_min_clicks=1))


def random_requests(rng: random.Random, n: int):
    """(now, params) near and inside the data (22:00 to 03:00), some with a `to` in the past."""
    for _ in range(n):
        now = T0 + rng.randint(0, 6 * 60) * MIN + rng.randint(0, 59_999)
        params = {}
        if rng.random() < 0.3:
            params["to"] = str(now - rng.randint(0, 90) * MIN - rng.randint(0, 59_999))
        yield now, params


@pytest.mark.parametrize("m,ads,seed", [(3, 12, 1), (5, 6, 2), (50, 14, 3)])
def test_dynamodb_ivt_equals_the_leaderboards_oracle(ddb, m, ads, seed):
    t = random_truth(seed, T0, 5 * 60, ads=ads, p=0.3, hot_p=0.9)
    load(ddb, TABLE, serving_items(t, m))
    rng = random.Random(seed)
    seen = {"complete": 0, "truncated": 0, "alert": 0, "quiet": 0, "no_clicks": 0}
    for now, params in random_requests(rng, 25):
        windows = expected_windows(params, now)
        expected = {name: board_oracle(t, m, *w) for name, w in windows.items()}
        # alert percent near the 5-minute window's actual rate, so both outcomes occur
        c, _, s, i = expected["last_5m"][0]
        percent = max(1, min(100, (100 * (s + i) // c if c else 5) + rng.choice([-1, 0, 0, 1])))
        body = dynamo_service(ddb, m, now, percent).quality(params)
        assert_section(body, expected, percent, t.watermark)
        if m == 50:  # no bucket holds 45 ads: the boards list every ad -> the truth itself
            for name, (res, start, end) in windows.items():
                assert expected[name] == (oracle_ivt_totals(t, start, end), True)
        for counts, complete in expected.values():
            seen["complete" if complete else "truncated"] += 1
            seen["no_clicks"] += counts[0] == 0
        seen["alert" if body["ivt"]["alert"] else "quiet"] += 1
    assert seen["alert"] and seen["quiet"] and seen["no_clicks"], seen
    assert (seen["truncated"] > 0) is (m < 50) and seen["complete"], seen


def test_dynamodb_rows_without_verdict_counts_read_as_zero(ddb):
    """Items the sink wrote before the verdicts existed have no sc/ic, before issue 19 no i/cv/cvv:
    series, top-K and the ivt section count them as 0 while the newer rows beside them count."""
    hour = DAY0 + 5 * HOUR
    old = {"kind": TOP, "ad_id": "old", "campaign_id": "c", "advertiser_id": "a", "resolution": "1h",
           "bucket_start": hour, "version": 4, "clicks": 9, "billable_clicks": 8, "cost_micros": 9,
           "billable_cost_micros": 8}
    new = {**old, "ad_id": "new", "clicks": 10, "billable_clicks": 6, "suspect_clicks": 3, "invalid_clicks": 1,
           "impressions": 40, "conversions": 2, "conversion_value_micros": 3_000_000}
    items = [item_for(Change(kind, True, {**row, "kind": kind}), 86400)
             for row in (old, new) for kind in (TOP, AGG)]
    assert "sc" not in items[0] and "i" not in items[0] and items[2]["sc"] == {"N": "3"} and items[2]["i"] == {"N": "40"}
    load(ddb, TABLE, items)
    now = hour + HOUR + 2 * MIN
    svc = dynamo_service(ddb, 10, now, 30)
    ivt = svc.quality({})["ivt"]
    assert (ivt["last_hour"]["clicks"], ivt["last_hour"]["suspect_clicks"], ivt["last_hour"]["invalid_clicks"]) == (19, 3, 1)
    assert ivt["last_hour"]["alert"] is False  # 4 / 19 = 21 % <= 30 %
    top = svc.top({"from": str(hour), "to": str(hour + HOUR), "k": "2"})
    assert [(i["ad_id"], i["suspect_clicks"], i["invalid_clicks"]) for i in top["items"]] == [("new", 3, 1), ("old", 0, 0)]
    top = svc.top({"from": str(hour), "to": str(hour + HOUR), "k": "2", "metric": "impressions"})
    assert [(i["ad_id"], i["total"]) for i in top["items"]] == [("new", 40)] and top["exact"]
    series = svc.series("old", {"from": str(hour), "to": str(hour + HOUR), "resolution": "1h"})
    assert series["totals"] == {"clicks": 9, "billable_clicks": 8, "cost": "0.000009", "billable_cost": "0.000008",
                                "suspect_clicks": 0, "invalid_clicks": 0, "impressions": 0, "conversions": 0,
                                "conversion_value": "0.000000",
                                "ctr": None, "cvr": 0.0, "cpc": "0.000001", "cpa": None, "roas": 0.0}
    series = svc.series("new", {"from": str(hour), "to": str(hour + HOUR), "resolution": "1h"})
    assert (series["totals"]["impressions"], series["totals"]["ctr"], series["totals"]["roas"]) == (40, 0.15, 375_000.0)  # 6 billable / 40; 3.000000 / 0.000008


# --- Timestream (its SQL on DuckDB) ----------------------------------------------------------

DB, TS_TABLE = "clickagg", "aggregates"


def timestream_with(t: Truth) -> TimestreamOnDuckDB:
    """What the sink's Timestream writer stores for the truth: every aggregate's last version."""
    ts = TimestreamOnDuckDB(DB, TS_TABLE, page_size=3)
    writer = TimestreamServingStore(ts, DB, TS_TABLE)
    changes = []
    for res in ("1m", "5m", "1h", "1d"):
        for (ad, b), v in t.rollup(res).items():
            changes.append(Change(AGG, True, {"kind": AGG, "ad_id": ad, "campaign_id": t.campaign[ad],
                                              "advertiser_id": t.advertiser[ad], "resolution": res,
                                              "bucket_start": b, "version": 1, **dict(zip(FIELDS, v)),
                                              "max_event_time": b, "watermark": t.watermark}))
    minute = min(b for _, b in t.minute)  # one late-drop counter: the table has the column
    changes.append(Change(LATE, True, {"kind": LATE, "ad_id": "ad-000", "bucket_start": minute, "version": 1,
                                       "late_dropped": 1}))
    for i in range(0, len(changes), 100):
        assert writer.apply_many(changes[i:i + 100]) == [None] * len(changes[i:i + 100])
    return ts


def test_timestream_ivt_equals_the_truth_one_sql():
    t = random_truth(8, T0, 5 * 60, ads=9, p=0.25)
    ts = timestream_with(t)
    rng = random.Random(4)
    seen = {"alert": 0, "quiet": 0}
    for now, params in random_requests(rng, 20):
        windows = expected_windows(params, now)
        expected = {name: (oracle_ivt_totals(t, start, end), True) for name, (_, start, end) in windows.items()}
        c, _, s, i = expected["last_hour"][0]
        percent = max(1, min(100, (100 * (s + i) // c if c else 5) + rng.choice([-1, 0, 1])))
        store = TimestreamQueryStore(ts, DB, TS_TABLE, clock_ms=lambda: now)
        calls = len(ts.queries)
        totals, requests = store.verdict_totals(
            [IvtWindow(name, res, start, end) for name, (res, start, end) in windows.items()])
        assert len({q for q, _ in ts.queries[calls:]}) == 1 and requests == len(ts.queries) - calls
        assert [tuple(getattr(x, c) for c in COUNTS) for x in totals] == [e[0] for e in expected.values()]
        body = QueryService(store, clock_ms=lambda: now, quality=QualitySettings(ivt_alert_percent=percent, ivt_alert_min_clicks=1)).quality(params)
        # the store's freshness is the newest 1m rows' watermark (the lookback hour): the truth's here
        wm = body["freshness"]["watermark_ms"]
        assert wm in (None, t.watermark)
        assert_section(body, expected, percent, wm)
        seen["alert" if body["ivt"]["alert"] else "quiet"] += 1
    assert seen["alert"] and seen["quiet"], seen


def test_timestream_records_without_verdict_measures_read_as_zero():
    """A record written before the verdicts has no suspect/invalid measures, before issue 19 no
    impressions / conversions / conversion value (NULL in SQL): read as 0 beside newer records."""
    ts = TimestreamOnDuckDB(DB, TS_TABLE)
    hour = DAY0 + 5 * HOUR

    def record(ad: str, resolution: str, bucket: int, measures: dict) -> dict:
        return {"Dimensions": [{"Name": n, "Value": v, "DimensionValueType": "VARCHAR"} for n, v in
                               (("ad_id", ad), ("resolution", resolution), ("campaign_id", "c"), ("advertiser_id", "a"))],
                "MeasureName": "agg", "MeasureValueType": "MULTI", "Time": str(bucket), "TimeUnit": "MILLISECONDS",
                "Version": 1, "MeasureValues": [{"Name": k, "Value": str(v), "Type": "BIGINT"} for k, v in measures.items()]}

    legacy = {"clicks": 9, "billable_clicks": 8, "cost_micros": 9, "billable_cost_micros": 8,
              "max_event_time": hour, "watermark": hour}
    ts.write_records(DatabaseName=DB, TableName=TS_TABLE, Records=[
        record("old", "1h", hour, legacy), record("old", "1m", hour + 58 * MIN, legacy),
        record("new", "1h", hour, {**legacy, "clicks": 10, "billable_clicks": 6, "suspect_clicks": 3, "invalid_clicks": 1,
                                   "impressions": 40, "conversions": 2, "conversion_value_micros": 3_000_000}),
        record("new", "1m", hour + 59 * MIN, {**legacy, "clicks": 2, "billable_clicks": 0, "suspect_clicks": 2,
                                               "invalid_clicks": 0, "impressions": 5, "conversions": 0,
                                               "conversion_value_micros": 0})])
    ts.write_records(DatabaseName=DB, TableName=TS_TABLE, Records=[  # (the late_dropped column)
        {**record("old", "1m", hour, {}), "MeasureName": "late",
         "MeasureValues": [{"Name": "late_dropped", "Value": "1", "Type": "BIGINT"}]}])
    now = hour + HOUR + 30_000
    svc = QueryService(TimestreamQueryStore(ts, DB, TS_TABLE, clock_ms=lambda: now), clock_ms=lambda: now)
    ivt = svc.quality({})["ivt"]
    assert [ivt["last_hour"][c] for c in COUNTS] == [19, 14, 3, 1]
    assert [ivt["last_5m"][c] for c in COUNTS] == [11, 8, 2, 0]
    top = svc.top({"from": str(hour), "to": str(hour + HOUR), "k": "2"})
    assert [(i["ad_id"], i["suspect_clicks"], i["invalid_clicks"]) for i in top["items"]] == [("new", 3, 1), ("old", 0, 0)]
    top = svc.top({"from": str(hour), "to": str(hour + HOUR), "k": "2", "metric": "conversion_value"})
    assert [(i["ad_id"], i["total"]) for i in top["items"]] == [("new", "3.000000")]
    top = svc.top({"from": str(hour), "to": str(hour + HOUR), "metric": "ctr", "min_volume": "1"})
    assert [(i["ad_id"], i["total"]) for i in top["items"]] == [("new", 0.15)]  # 6/40; old: no impressions
    series = svc.series("old", {"from": str(hour), "to": str(hour + HOUR), "resolution": "1h"})
    assert (series["totals"]["suspect_clicks"], series["totals"]["invalid_clicks"]) == (0, 0)
    assert [series["totals"][m] for m in ("impressions", "conversions", "conversion_value", "ctr", "cpa")] == [
        0, 0, "0.000000", None, None]
    for level, entity in (("campaign", "c"), ("advertiser", "a")):  # the rollup of both ads' records
        totals = svc.series(entity, {"from": str(hour), "to": str(hour + HOUR), "resolution": "1h"}, level)["totals"]
        assert [totals[m] for m in ("clicks", "suspect_clicks", "impressions", "conversions")] == [19, 3, 40, 2]
