"""Query API over the DynamoDB serving table (in-process moto): top-K exactness against a
brute-force oracle for many random windows (every summed metric and ratio, windows up to 30
days), request counts, series per ad, campaign and advertiser, and the handler."""
from __future__ import annotations

import json
import random
from urllib.parse import quote, urlencode

import boto3
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from common.config import AggregationSettings, ResourceNames
from local.lambda_runtime import LambdaContext
from local.resources import create_serving_table
from query import handler
from query.service import QueryService
from serving.read.dynamodb import DynamoDBQueryStore
from tests.conftest import api_event
from tests.query.truth import (DAY, FIELDS, HOUR, MIN, RATIO_FIELDS, RES, Truth, assert_item_ivt, assert_series_ratios,
                               assert_top_ratio, assert_top_sound, decomposition_counts, expected_top, leaderboards,
                               load, answered_series, oracle_series, oracle_top, random_truth, rollup_advertiser,
                               serving_items, sparse_truth, to_micros)

TABLE = ResourceNames().serving_table
DAY0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY
T0 = DAY0 - 2 * HOUR  # data from 22:00 to 03:00: crosses a day (two T#1h partitions)


@pytest.fixture
def ddb(aws):
    client = boto3.client("dynamodb")
    create_serving_table(client, TABLE)
    return client


def make_service(ddb, m: int, now: int) -> QueryService:
    return QueryService(DynamoDBQueryStore(ddb, TABLE, m), AggregationSettings(leaderboard_size=m),
                        clock_ms=lambda: now)


def load_truth(ddb, t: Truth, m: int, series: bool = False) -> None:
    items = serving_items(t, m)
    if not series:  # top-K reads only leaderboards and META; keep moto's table small
        items = [i for i in items if not i["pk"]["S"].startswith(("S#", "SC#", "SV#"))]
    load(ddb, TABLE, items)


def api_items(body: dict) -> list[tuple[str, int, int]]:
    return [(i["ad_id"], to_micros(i["total"]), to_micros(i["total_upper"])) for i in body["items"]]


def check(svc: QueryService, t: Truth, params: dict) -> dict:
    body = svc.top({k: str(v) for k, v in params.items()})
    w = body["window"]
    assert w["buckets"] == decomposition_counts(w["from_ms"], w["to_ms"])
    assert body["debug"]["partitions"] <= 6 and body["debug"]["requests"] <= 40
    assert (body["inexact_reason"] is None) is body["exact"]
    if body["metric"] in RATIO_FIELDS:
        assert_top_ratio(body, t, m=svc.store.leaderboard_size)
        return body
    assert_top_sound(api_items(body), body["exact"], to_micros(body["error_bound"]), t, w["from_ms"],
                     w["to_ms"], body["k"], body["metric"], params.get("campaign_id"), params.get("advertiser_id"),
                     m=svc.store.leaderboard_size)
    assert_item_ivt([(*item, i["suspect_clicks"], i["invalid_clicks"]) for item, i in zip(api_items(body), body["items"])],
                    t, w["from_ms"], w["to_ms"], params.get("campaign_id"), params.get("advertiser_id"),
                    m=svc.store.leaderboard_size)
    if w["to_ms"] - w["from_ms"] <= DAY:
        assert body["debug"]["requests"] <= 30 and body["debug"]["partitions"] <= 4
    return body


ALL_METRICS = ["clicks", "billable_clicks", "cost", "impressions", "conversions", "conversion_value",
               *RATIO_FIELDS]


def test_random_windows_with_events_against_oracle(ddb):
    """Impressions, conversions and ads without clicks (entries with clicks = 0): every summed
    metric and ratio, windows over 30 h of data from 22:00 (some hold the whole UTC day); 8 ads
    and M = 6, so the 1m boards are mostly complete and the 1h and 1d ones mostly truncated."""
    m = 6
    t = random_truth(12, T0, 30 * 60, ads=8, p=0.05, hot_p=0.5, events=True)
    load_truth(ddb, t, m)
    svc = make_service(ddb, m, T0 + 31 * HOUR)
    rng = random.Random(8)
    outcomes = {}
    for _ in range(80):
        if rng.random() < 0.2:  # around the whole day DAY0 (from T0 + 2 h)
            a, b = rng.randint(0, 120), rng.randint(26 * 60, 30 * 60)
        else:
            a = rng.randint(0, 29 * 60)
            b = min(30 * 60, rng.randint(a + 1, a + rng.choice([50, 28 * 60])))
        metric = rng.choice(ALL_METRICS)
        params = {"from": T0 + a * MIN + rng.choice([0, 1, 30_000]), "to": T0 + b * MIN, "k": rng.randint(1, 6),
                  "metric": metric}
        if metric in RATIO_FIELDS:
            params["min_volume"] = rng.choice([1, 3, 20])
        filt = rng.random()
        if filt < 0.15:
            params["campaign_id"] = "cmp-1"
        elif filt < 0.25:
            params["advertiser_id"] = "adv-0"
        body = check(svc, t, params)
        family = "ratio" if metric in RATIO_FIELDS else "sum"
        key = (family, body["exact"], body["window"]["buckets"]["1d"] > 0)
        outcomes[key] = outcomes.get(key, 0) + 1
    for family in ("ratio", "sum"):
        for exact in (True, False):
            assert outcomes.get((family, exact, False), 0) >= 5, outcomes
    assert sum(v for (_, _, day), v in outcomes.items() if day) >= 10, outcomes


def test_thirty_day_windows(ddb):
    """Windows up to 30 days: whole UTC days from the 1d leaderboards, the rest from 1h and 1m;
    at most 6 partitions (2 per resolution), one page each here + the freshness BatchGetItem."""
    m = 8
    start = DAY0 - 32 * DAY
    t = sparse_truth(3, start, 33, ads=10, rows_per_day=12)
    load_truth(ddb, t, m, series=True)
    end = start + 33 * DAY
    svc = make_service(ddb, m, end)
    rng = random.Random(4)
    seen = {True: 0, False: 0}
    for i in range(24):
        to = end - rng.randrange(0, 3 * DAY // MIN) * MIN - rng.choice([0, 0, 17_000])
        params = {"to": to, "k": rng.randint(1, 5), "metric": rng.choice(ALL_METRICS)}
        if i % 3 == 0:
            params["last"] = rng.choice(["30d", "720h", "29d", "7d", "43199m"])
        else:
            params["from"] = to - rng.randrange(DAY // MIN, 30 * DAY // MIN) * MIN
        if params["metric"] in RATIO_FIELDS:
            params["min_volume"] = rng.choice([1, 10])
        body = check(svc, t, params)
        w, dbg = body["window"], body["debug"]
        starts = {b - b % (30 * DAY) for b in range(w["from_ms"], w["to_ms"], DAY)
                  if w["from_ms"] <= b - b % DAY <= w["to_ms"] - DAY}
        assert dbg["partitions"] <= 6 and dbg["requests"] == 1 + dbg["partitions"], dbg
        assert len(starts) <= 2
        seen[body["exact"]] += 1
    assert seen[True] >= 5 and seen[False] >= 5, seen
    body = check(svc, t, {"to": end, "last": "30d", "k": 5})
    assert body["window"]["buckets"] == {"1d": 30, "1h": 0, "1m": 0}  # `to` on midnight: days only
    # a 30-day series: 720 points at 1h, 30 at 1d, per ad, campaign and advertiser
    for level, entity in (("ad", "ad-000"), ("campaign", "cmp-1"), ("advertiser", "adv-0")):
        for res, points in (("1h", 720), ("1d", 30)):
            body = svc.series(entity, {"resolution": res, "last": "30d", "to": str(end)}, level)
            expected = oracle_series(t, entity, res, end - 30 * DAY, end, level)
            assert len(body["points"]) == points and answered_series(body) == expected
            assert_series_ratios(body, expected)
            assert body["debug"]["requests"] == 2


def test_random_windows_against_oracle(ddb):
    m = 5
    t = random_truth(11, T0 + HOUR, 3 * 60, ads=14, p=0.08)  # 23:00 to 02:00
    load_truth(ddb, t, m)
    svc = make_service(ddb, m, T0 + 5 * HOUR)
    rng = random.Random(5)
    outcomes = {True: 0, False: 0}
    for _ in range(100):
        a = rng.randint(0, 4 * 60 - 1)
        b = rng.randint(a + 1, 4 * 60)
        params = {"from": T0 + a * MIN + rng.choice([0, 1, 30_000, 59_999]),
                  "to": T0 + b * MIN + rng.choice([0, 0, 17_000]),
                  "k": rng.randint(1, 8), "metric": rng.choice(["clicks", "clicks", "billable_clicks", "cost"])}
        filt = rng.random()
        if filt < 0.15:
            params["campaign_id"] = "cmp-1"
        elif filt < 0.25:
            params["advertiser_id"] = "adv-0"
        body = check(svc, t, params)
        outcomes[body["exact"]] += 1
    assert outcomes[True] >= 20 and outcomes[False] >= 20, outcomes


def test_complete_leaderboards_always_exact(ddb):
    m = 5
    t = random_truth(3, T0 + HOUR, 3 * 60, ads=4, p=0.4)  # <= 4 ads per bucket: all complete
    load_truth(ddb, t, m)
    svc = make_service(ddb, m, T0 + 5 * HOUR)
    rng = random.Random(2)
    for _ in range(25):
        a = rng.randint(0, 299)
        b = rng.randint(a + 1, 300)
        body = check(svc, t, {"from": T0 + a * MIN, "to": T0 + b * MIN, "k": rng.randint(1, 5),
                              "metric": rng.choice(["clicks", "billable_clicks", "cost"])})
        assert body["exact"] is True and body["error_bound"] in (0, "0.000000")


def test_hot_ad_on_hour_boundaries_exact_and_tombstones_ignored(ddb):
    m = 5
    t = random_truth(7, T0, 5 * 60, ads=20, hot_p=1.0)
    load_truth(ddb, t, m)
    svc = make_service(ddb, m, T0 + 5 * HOUR)
    for frm, to in ((T0, T0 + 3 * HOUR), (T0 + HOUR, T0 + 2 * HOUR), (DAY0, DAY0 + HOUR)):
        body = check(svc, t, {"from": frm, "to": to, "k": 1})
        assert body["window"]["buckets"] == {"1d": 0, "1h": (to - frm) // HOUR, "1m": 0}
        assert body["exact"] and body["items"][0]["ad_id"] == "ad-000"
    # tombstoned entries are in the table but never counted
    raw = ddb.query(TableName=TABLE, KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": f"T#1m#{T0:013d}"}})["Items"]
    assert any("del" in i for i in raw)


def test_two_truths_same_leaderboards_must_be_inexact(ddb):
    """Truth A and B differ only below the leaderboards' cut-off, where the true rank 2 differs:
    the same leaderboards serve both, so the answer must be inexact, identical for both tables,
    sound for both truths and exactly what the leaderboards prove (brute-force oracle)."""
    m = 2
    a, b = Truth(), Truth()
    for tr in (a, b):
        for ad in ("a", "b", "c", "x"):
            tr.campaign[ad], tr.advertiser[ad] = "cmp", "adv"
        tr.add("a", T0, 10, 10, 10, 10)
        tr.add("x", T0, 6, 6, 6, 6)
        tr.add("b", T0 + MIN, 7, 7, 7, 7)
        tr.add("c", T0 + MIN, 5, 5, 5, 5)
    a.add("x", T0 + MIN, 5, 5, 5, 5)  # unlisted there (5 ties c, c sorts first): x totals 11 in A
    window = (T0, T0 + 2 * MIN)
    assert leaderboards(a, "1m", m) == leaderboards(b, "1m", m)  # the table cannot tell A from B
    assert oracle_top(a, *window, 2, "clicks")[0] == [("x", 11), ("a", 10)]
    assert oracle_top(b, *window, 2, "clicks")[0] == [("a", 10), ("b", 7)]
    # what the boards prove (minute 0 lists a 10, x 6; minute 1 lists b 7, c 5; both full, so an
    # unlisted ad has <= 6 and <= 5 there): a in [10, 15], b in [7, 13]; rank 2 could be 13 vs 7
    assert expected_top(a, *window, 2, "clicks", m) == expected_top(b, *window, 2, "clicks", m) \
        == ([("a", 10, 15), ("b", 7, 13)], False, 6)
    bodies = []
    for truth in (a, b):  # each truth in its own table
        ddb.delete_table(TableName=TABLE)
        create_serving_table(ddb, TABLE)
        load_truth(ddb, truth, m)
        body = check(make_service(ddb, m, T0 + HOUR), truth, {"from": window[0], "to": window[1], "k": 2})
        assert (api_items(body), body["exact"], body["error_bound"]) == ([("a", 10, 15), ("b", 7, 13)], False, 6)
        bodies.append(body)
    assert bodies[0]["items"] == bodies[1]["items"]


def test_24h_windows_request_count(ddb):
    m = 3
    t = random_truth(1, DAY0 - 2 * HOUR, 27 * 60, ads=8, p=0.03, hot_p=0.3)
    load_truth(ddb, t, m)
    # to_offset -> partitions: on the hour, two days of 1h boards and no edge minutes; otherwise
    # two hours of edge minutes and the whole hours of one day (ending 23:xx) or two (01:01)
    for to_offset, expected_partitions in ((0, 2), (MIN, 3), (59 * MIN, 3), (30 * MIN + 7_000, 3), (2 * HOUR + MIN, 4)):
        to = DAY0 + 23 * HOUR + to_offset
        svc = make_service(ddb, m, to)
        body = check(svc, t, {"to": to, "last": "24h", "k": 3})
        start, end = body["window"]["from_ms"], body["window"]["to_ms"]
        assert (start, end) == (to - to % MIN - DAY, to - to % MIN)
        # partitions, brute force: the days of the whole hours (1h boards), the hours of the
        # other minutes (1m boards); one page each here, plus the META BatchGetItem
        whole = {mn - mn % HOUR for mn in range(start, end, MIN) if start <= mn - mn % HOUR <= end - HOUR}
        edges = {mn - mn % HOUR for mn in range(start, end, MIN)} - whole
        partitions = len({h - h % DAY for h in whole}) + len(edges)
        assert partitions == expected_partitions
        assert body["debug"]["partitions"] == partitions and body["debug"]["requests"] == 1 + partitions
        assert body["freshness"]["final"] is (body["window"]["to_ms"] + 900_000 <= t.watermark)


def test_series_equals_truth_one_query(ddb):
    t = random_truth(4, T0, 5 * 60, ads=5, p=0.3, events=True)
    load_truth(ddb, t, 5, series=True)
    svc = make_service(ddb, 5, T0 + 5 * HOUR)
    rng = random.Random(1)
    for _ in range(30):
        ad = rng.choice(sorted(t.campaign) + ["nobody"])
        res = rng.choice(list(RES))
        a = rng.randint(0, 299)
        b = rng.randint(a + 1, 300)
        frm, to = T0 + a * MIN + rng.choice([0, 1234]), T0 + b * MIN + rng.choice([0, 1])
        body = svc.series(ad, {"resolution": res, "from": str(frm), "to": str(to)})
        expected = oracle_series(t, ad, res, frm, to)
        assert answered_series(body) == expected, (ad, res, frm, to)
        assert_series_ratios(body, expected)
        assert body["totals"]["clicks"] == sum(e[1] for e in expected)
        assert to_micros(body["totals"]["cost"]) == sum(e[3] for e in expected)
        assert body["debug"]["requests"] == 2  # ONE Query on S#<ad>#<res> + the META GetItem
        # the ids come from the ad's stored buckets: none in the window (or no such ad), no ids
        roll = t.rollup(res)
        stored = any((ad, e[0]) in roll for e in expected)
        assert (body["campaign_id"], body["advertiser_id"]) == (
            (t.campaign[ad], t.advertiser[ad]) if stored else (None, None)), (ad, res, frm, to)


def test_campaign_and_advertiser_series_are_the_sums_of_their_ads(ddb):
    """GET /v1/campaigns/{id}/metrics and /v1/advertisers/{id}/metrics read the job's rollups
    (SC# / SV#): each equals the brute-force sum of its ads' minutes and the sum of its ads' own
    series answers, point by point; ratios from the sums; one Query each."""
    t = random_truth(6, T0, 5 * 60, ads=7, p=0.3, events=True)
    load_truth(ddb, t, 5, series=True)
    svc = make_service(ddb, 5, T0 + 5 * HOUR)
    rng = random.Random(3)
    for _ in range(24):
        level = rng.choice(["campaign", "advertiser"])
        owners = sorted(set(t.campaign.values() if level == "campaign" else t.advertiser.values()))
        entity = rng.choice(owners + ["nobody"])
        res = rng.choice(list(RES))
        a = rng.randint(0, 299)
        b = rng.randint(a + 1, 300)
        params = {"resolution": res, "from": str(T0 + a * MIN + rng.choice([0, 999])), "to": str(T0 + b * MIN)}
        body = svc.series(entity, params, level)
        expected = oracle_series(t, entity, res, int(params["from"]), int(params["to"]), level)
        assert answered_series(body) == expected, (level, entity, params)
        assert_series_ratios(body, expected)
        assert body["debug"]["requests"] == 2
        ads = [ad for ad in t.campaign if t.owner(level, ad) == entity]
        ad_points = [answered_series(svc.series(ad, params)) for ad in ads]
        assert [(p[0], *(sum(x[i][j] for x in ad_points) for j in range(1, len(FIELDS) + 1)))
                for i, p in enumerate(expected)] == expected
        first = next((e[0] for e in expected if any(e[1:])), None)
        if level == "campaign":
            assert body["campaign_id"] == entity and "ad_id" not in body
            assert body["advertiser_id"] == (None if first is None else rollup_advertiser(t, res, entity, first))
        else:
            assert set(body) >= {"advertiser_id", "points", "totals"} and body["advertiser_id"] == entity
            assert "ad_id" not in body and "campaign_id" not in body


# -- handler ------------------------------------------------------------------------------------
@pytest.fixture
def api(ddb, monkeypatch):
    t = random_truth(2, T0, 3 * 60, ads=6)
    load_truth(ddb, t, 5, series=True)
    svc = make_service(ddb, 5, T0 + 3 * HOUR)
    monkeypatch.setattr(handler, "get_service", lambda: svc)

    def call(path: str, params: dict | None = None):
        event = api_event(None, path=path, method="GET", query=urlencode(params or {}), headers={})
        resp = handler.lambda_handler(event, LambdaContext("clickagg-query"))
        return resp["statusCode"], json.loads(resp["body"]), resp
    return call


def test_handler_routes(api):
    status, body, _ = api("/v1/top", {"last": "2h", "k": "3"})
    assert status == 200 and len(body["items"]) == 3 and body["debug"]["store"] == "dynamodb"
    status, body, _ = api("/v1/top", {"last": "2h", "k": "3", "metric": "cost"})
    assert status == 200 and isinstance(body["items"][0]["total"], str)
    status, body, _ = api(f"/v1/ads/{quote(chr(97) + chr(39) + 'q', safe='')}/metrics", {"last": "10m"})
    assert status == 200 and body["ad_id"] == "a'q" and len(body["points"]) == 10
    status, body, _ = api("/v1/ads/ad-001/metrics", {"last": "1h", "resolution": "5m"})
    assert status == 200 and body["resolution"] == "5m"
    status, body, _ = api("/v1/campaigns/cmp-1/metrics", {"last": "3h", "resolution": "1h"})
    assert status == 200 and body["campaign_id"] == "cmp-1" and len(body["points"]) == 4  # to: 03:01
    assert body["totals"]["clicks"] > 0 and body["advertiser_id"] is not None
    status, body, _ = api(f"/v1/advertisers/{quote('adv 0', safe='')}/metrics", {"last": "10m"})
    assert status == 400 and "'advertiser_id' must" in body["error"]
    status, body, _ = api("/v1/advertisers/adv-0/metrics", {"last": "2h", "resolution": "1h"})
    assert status == 200 and body["advertiser_id"] == "adv-0" and body["debug"]["requests"] == 2
    status, body, _ = api("/v1/top", {"last": "30d", "k": "3", "metric": "ctr", "min_volume": "5"})
    assert status == 200 and body["min_volume"] == 5 and body["window"]["buckets"]["1d"] >= 29
    status, body, _ = api("/v1/health")
    assert status == 200 and body["status"] == "ok" and body["store"] == "dynamodb"
    assert body["freshness"]["watermark_ms"] is not None
    status, body, _ = api("/v1/nope")
    assert status == 404 and body["status"] == 404


@pytest.mark.parametrize("path,params,reason", [
    ("/v1/top", {"k": "0"}, "'k' out of range"), ("/v1/top", {"k": "1000"}, "'k' out of range"),
    ("/v1/top", {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "before 'to'"),
    ("/v1/top", {"from": "2026-01-01T00:00:00Z", "to": "2026-01-31T00:01:00Z"}, "too long"),
    ("/v1/top", {"last": "31d"}, "between 1m and 30d"), ("/v1/top", {"last": "1w"}, "'last' must"),
    ("/v1/top", {"metric": "views"}, "unknown metric"),
    ("/v1/top", {"metric": "ctr", "min_volume": "0"}, "'min_volume' out of range"),
    ("/v1/top", {"metric": "cpa", "min_volume": "lots"}, "'min_volume' must be an integer"),
    ("/v1/top", {"metric": "clicks", "min_volume": "5"}, "applies to a ratio metric"),
    ("/v1/quality", {"last": "2d"}, "at most 24h"),
    ("/v1/campaigns/c/metrics", {"resolution": "5m", "last": "30d"}, "too many points"),
    ("/v1/advertisers/a/metrics", {"resolution": "1w"}, "unknown resolution"),
    ("/v1/advertisers/a/metrics", {"last": "1h", "from": "2026-01-01T00:00:00Z"}, "either 'last' or 'from'"),
    ("/v1/campaigns/a%20b/metrics", {}, "'campaign_id' must be 1-128 printable ASCII"),
    ("/v1/advertisers/%C3%A9/metrics", {}, "'advertiser_id' must be 1-128 printable ASCII"),
    ("/v1/top", {"from": "nope"}, "neither epoch"),
    ("/v1/ads/a/metrics", {"resolution": "7m"}, "unknown resolution"),
    ("/v1/ads/a/metrics", {"resolution": "1m", "from": "2026-01-01T00:00:00Z",
                           "to": "2026-01-03T00:00:00Z"}, "too many points"),
])
def test_handler_bad_params_400(api, path, params, reason):
    status, body, _ = api(path, params)
    assert status == 400 and body["status"] == 400 and reason in body["error"]


def test_min_volume_keeps_one_impression_with_one_click_from_winning(ddb, api):
    """ctr: an ad with 1 click of 1 impression (ctr 1.0) wins only once min_volume allows 1
    impression; by default (100) the ad with 30 clicks of 120 impressions does. cpa: conversions."""
    t = Truth()
    for ad in ("lucky", "steady", "big"):
        t.campaign[ad], t.advertiser[ad] = "cmp", "adv"
    t.add("lucky", T0, 1, 1, 1_000_000, 1_000_000, impressions=1, conversions=1)
    t.add("steady", T0, 30, 30, 3_000_000, 3_000_000, impressions=120, conversions=2, value=9_000_000)
    t.add("big", T0 + MIN, 40, 40, 40_000_000, 40_000_000, impressions=99, conversions=100, value=1)
    ddb.delete_table(TableName=TABLE)
    create_serving_table(ddb, TABLE)
    load_truth(ddb, t, 10)
    svc = make_service(ddb, 10, T0 + HOUR)
    window = {"from": str(T0), "to": str(T0 + 2 * MIN)}
    body = check(svc, t, {**window, "metric": "ctr"})
    assert (body["min_volume"], body["exact"]) == (100, True)
    assert [(i["ad_id"], i["total"], i["numerator"], i["denominator"]) for i in body["items"]] == [
        ("steady", 0.25, 30, 120)]  # big: 99 impressions < 100
    body = check(svc, t, {**window, "metric": "ctr", "min_volume": "1"})
    assert [(i["ad_id"], i["total"]) for i in body["items"]] == [("lucky", 1.0), ("big", 0.40404), ("steady", 0.25)]
    body = check(svc, t, {**window, "metric": "cpa"})  # only big has 100 conversions
    assert [(i["ad_id"], i["total"], i["denominator"]) for i in body["items"]] == [("big", "0.400000", 100)]
    body = check(svc, t, {**window, "metric": "roas", "min_volume": "3"})  # spend >= 3.000000
    assert [(i["ad_id"], i["total"], i["denominator"]) for i in body["items"]] == [
        ("steady", 3.0, "3.000000"), ("big", 0.0, "40.000000")]  # big: 0.000001 / 40 > 0, rounds to 0
    body = check(svc, t, {**window, "metric": "cvr", "min_volume": "1000"})
    assert body["items"] == [] and body["exact"] is True


def test_store_unavailable_is_503(ddb, api):
    ddb.delete_table(TableName=TABLE)
    status, body, resp = api("/v1/top", {"last": "5m"})
    assert status == 503 and body["status"] == 503 and (resp.get("multiValueHeaders") or {}).get("Retry-After") == ["1"]
    status, body, _ = api("/v1/health")
    assert status == 503 and body["store"] == "dynamodb"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(params=st.dictionaries(st.sampled_from(["last", "from", "to", "k", "metric", "campaign_id",
                                               "advertiser_id", "resolution", "min_volume", "x"]),
                              st.one_of(st.text(max_size=30), st.integers(-10**15, 10**16).map(str),
                                        st.sampled_from(["1h", "24h", "5m", "cost", "1d", "30d", "31d", "0", "100",
                                                         "ctr", "cpa", "roas", "impressions", "conversion_value",
                                                         "2026-11-18T01:00:00+01:00"])), max_size=5),
       ad=st.text(min_size=1, max_size=20).filter(lambda s: "/" not in s))
def test_handler_never_5xx_for_any_params(api, params, ad):
    for path in ("/v1/top", f"/v1/ads/{quote(ad, safe='')}/metrics", f"/v1/campaigns/{quote(ad, safe='')}/metrics",
                 f"/v1/advertisers/{quote(ad, safe='')}/metrics"):
        status, body, _ = api(path, params)
        assert status in (200, 400), (path, params, body)
        assert ("error" in body) == (status == 400)
