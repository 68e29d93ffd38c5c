"""The ingest and query handlers on API Gateway events recorded by AWS (tests/events/, sources in
its README), not on the local builder's: exact responses, stream records and dedup items. And
the local builder (local/apigw.py build_event, behind every other handler test and the local
API) has the recorded REST event's keys, so it cannot drift from the real shape."""
from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path

import boto3
import pytest

from aggregate.changes import AGG, Change
from common.click_token import ClickClaims, StaticKeys, VerifyPolicy, issue
from common.config import AggregationSettings, ResourceNames
from ingest import handler as ingest_handler
from ingest.tokens import ENFORCE, TokenVerifier
from local.apigw import build_event
from local.lambda_runtime import LambdaContext
from local.readback import read_stream
from local.resources import create_dedup_table, create_serving_table, create_stream
from query import handler as query_handler
from query.service import QueryService
from serving.keys import freshness_key
from serving.read.dynamodb import DynamoDBQueryStore
from serving.write.dynamodb import item_for
from tests.integration.ingest_support import NAMES, NOW_MS, Ingest, claim_item, click, dedup_items

EVENTS = Path(__file__).resolve().parents[1] / "events"
REST = "rest-api-proxy-event.aws-lambda-developer-guide.json"
POWERTOOLS = "apiGatewayProxyEvent.powertools-lambda-python.json"
JSON_HEADERS = {"Content-Type": ["application/json"]}


def recorded(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def as_request(event: dict, method: str, path: str, *, resource: str | None = None,
               path_params: dict | None = None, query: dict | None = None,
               headers: dict | None = None, body: str | None = None) -> dict:
    """The recorded event adapted to another request: only method, path, headers and body."""
    e = copy.deepcopy(event)
    rc = e["requestContext"]
    stage_prefix = rc["path"][: len(rc["path"]) - len(e["path"])]  # "/Prod" (REST); "" (HTTP API)
    e["httpMethod"] = rc["httpMethod"] = method  # adapted: the method
    e["path"] = path  # adapted: the path
    rc["path"] = stage_prefix + path  # adapted: the path, as requested (with the stage)
    e["resource"] = rc["resourcePath"] = resource or path  # adapted: the matched resource
    e["pathParameters"] = path_params  # adapted: that resource's path parameters
    e["queryStringParameters"] = query  # adapted: the query string
    e["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None  # same
    for name, value in (headers or {}).items():  # adapted: headers added (single and multi value)
        e["headers"][name] = value
        e["multiValueHeaders"][name] = [value]
    e["body"], e["isBase64Encoded"] = body, False  # adapted: the body (sent as text)
    return e


# -- the local builder has the recorded shape ------------------------------------------------
def local_event() -> dict:
    return build_event("POST", "/v1/ads/a/metrics?x=1", {"Content-Type": "application/json", "User-Agent": "t/1",
                                                         "Host": "127.0.0.1:8080"},
                       b"{}", "203.0.113.9", "/v1/ads/{ad_id}/metrics", {"ad_id": "a"})


def keys(event: dict) -> tuple[set, set, set]:
    return set(event), set(event["requestContext"]), set(event["requestContext"]["identity"])


def test_local_builder_has_the_recorded_event_keys():
    rest, pt, local = recorded(REST), recorded(POWERTOOLS), local_event()
    assert keys(local) == keys(rest)
    # the Powertools sample is an HTTP API payload 1.0 event: the REST keys plus three
    assert [p - q for p, q in zip(keys(pt), keys(local))] == [{"version"}, {"authorizer"}, {"clientCert"}]
    assert all(q <= p for p, q in zip(keys(pt), keys(local)))
    assert (pt["version"], pt["requestContext"]["stage"]) == ("1.0", "$default")
    # the values that have a format, in the recorded format
    clf = r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000"
    assert re.fullmatch(clf, rest["requestContext"]["requestTime"])
    assert re.fullmatch(clf, pt["requestContext"]["requestTime"])
    assert re.fullmatch(clf, local["requestContext"]["requestTime"])
    rc = local["requestContext"]
    assert rc["path"] == f"/{rc['stage']}/v1/ads/a/metrics" and rest["requestContext"]["path"] == "/Prod/"
    assert (rc["domainName"], rc["domainPrefix"]) == ("127.0.0.1", "127")
    assert rest["requestContext"]["domainName"].startswith(rest["requestContext"]["domainPrefix"])


# -- ingest -----------------------------------------------------------------------------------
@pytest.fixture
def ingest(aws, monkeypatch):
    ddb, kinesis = boto3.client("dynamodb"), boto3.client("kinesis")
    create_dedup_table(ddb, NAMES.dedup_table)
    create_stream(kinesis, NAMES.clicks_stream, 1)
    service = Ingest(ddb, kinesis).service()
    monkeypatch.setattr(ingest_handler, "get_service", lambda: service)

    def post(name: str, body: str, headers=None) -> dict:
        event = as_request(recorded(name), "POST", "/v1/clicks", body=body,
                           headers={"Content-Type": "application/json"} if headers is None else headers)
        return ingest_handler.lambda_handler(event, LambdaContext("clickagg-ingest"))
    return post


BATCH = json.dumps({"clicks": [click(1), click(2, timestamp=NOW_MS + 301_000), click(1)]})


@pytest.mark.parametrize("name,request_id,source_ip,user_agent", [
    (REST, "77375676-xmpl-4b79-853a-f982474efe18", "52.255.255.12",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/80.0.3987.132 "
     "Safari/537.36"),
    (POWERTOOLS, "id=", "192.168.0.1/32", "user-agent"),
])
def test_ingest_on_a_recorded_event(ingest, name, request_id, source_ip, user_agent):
    resp = ingest(name, BATCH)
    assert {k: v for k, v in resp.items() if k != "body"} == {
        "statusCode": 202, "multiValueHeaders": JSON_HEADERS, "isBase64Encoded": False}
    assert json.loads(resp["body"]) == {
        "request_id": request_id, "accepted": 1, "duplicate": 1, "rejected": 1, "retryable": 0, "results": [
            {"index": 0, "click_id": "c1", "status": "accepted"},
            {"index": 1, "click_id": "c2", "status": "rejected", "reasons": [
                {"field": "timestamp", "reason": "more than 300s in the future (clock skew limit)"}]},
            {"index": 2, "click_id": "c1", "status": "duplicate", "reason": "repeated in this request"}]}
    [[record]] = read_stream(NAMES.clicks_stream).values()
    assert record == {
        "click_id": "c1", "ad_id": "ad1", "campaign_id": "k", "advertiser_id": "v", "user_id": "u1",
        "event_time": NOW_MS - 60_000, "cost_micros": 100_000, "ip": source_ip, "user_agent": user_agent,
        "referrer": None, "ingest_time": NOW_MS, "request_id": request_id, "source_ip": source_ip,
        "impression_id": None, "issued_at": None}  # click_token_mode off: no token fields
    assert dedup_items() == {"c1": claim_item("c1", request_id, "committed", NOW_MS)}


def test_ingest_request_errors_on_the_recorded_rest_event(ingest):
    resp = ingest(REST, BATCH, headers={"Content-Type": "text/plain"})
    assert (resp["statusCode"], json.loads(resp["body"])) == (415, {
        "error": "Content-Type must be application/json, got 'text/plain'", "status": 415, "details": []})
    resp = ingest(REST, "{bad", headers={"Content-Type": "application/json; charset=utf-8"})
    assert (resp["statusCode"], json.loads(resp["body"])) == (400, {
        "error": "body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "status": 400, "details": []})
    # the sample as recorded (GET /, no body): no such route in the ingest API
    resp = ingest_handler.lambda_handler(recorded(REST), LambdaContext("clickagg-ingest"))
    assert (resp["statusCode"], json.loads(resp["body"])) == (404, {"statusCode": 404, "message": "Not found"})
    assert dedup_items() == {} and read_stream(NAMES.clicks_stream) == {"shardId-000000000000": []}


@pytest.fixture
def public_ingest(aws, monkeypatch):
    """The ingest handler on a service with the public route's verifier (key set k1 in memory)."""
    ddb, kinesis = boto3.client("dynamodb"), boto3.client("kinesis")
    create_dedup_table(ddb, NAMES.dedup_table)
    create_stream(kinesis, NAMES.clicks_stream, 1)
    service = Ingest(ddb, kinesis).service()
    service.public_tokens = TokenVerifier(ENFORCE, PUBLIC_KEYS, VerifyPolicy())
    monkeypatch.setattr(ingest_handler, "get_service", lambda: service)

    def post(name: str, body: str) -> dict:
        event = as_request(recorded(name), "POST", "/v1/public/clicks", body=body,
                           headers={"Content-Type": "application/json"})
        return ingest_handler.lambda_handler(event, LambdaContext("clickagg-ingest"))
    return post


PUBLIC_KEYS = StaticKeys({"k1": bytes(range(32))}, "k1")
PUBLIC_TOKEN = issue(ClickClaims(
    impression_id="imp-rec", ad_id="ad-T", campaign_id="cmp-T", advertiser_id="adv-T", price_micros=420_000,
    issued_at=NOW_MS // 1000 - 60, expires_at=NOW_MS // 1000 + 3600, landing_url="https://shop.example/"), PUBLIC_KEYS)


@pytest.mark.parametrize("name,request_id,source_ip,user_agent", [
    (REST, "77375676-xmpl-4b79-853a-f982474efe18", "52.255.255.12",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/80.0.3987.132 "
     "Safari/537.36"),
    (POWERTOOLS, "id=", "192.168.0.1/32", "user-agent"),
])
def test_public_ingest_on_a_recorded_event(public_ingest, name, request_id, source_ip, user_agent):
    """POST /v1/public/clicks on AWS' event shape: the token's ids and price, the event's source
    IP and user agent (identity), the body's ip/user_agent ignored, CORS `*` on the answer."""
    body = json.dumps({"clicks": [
        {"click_id": "p1", "user_id": "u1", "timestamp": NOW_MS - 60_000, "token": PUBLIC_TOKEN,
         "ip": "192.0.2.1", "user_agent": "claimed/1.0"},
        {"click_id": "p2", "user_id": "u2", "timestamp": NOW_MS - 60_000}]})
    resp = public_ingest(name, body)
    assert {k: v for k, v in resp.items() if k != "body"} == {
        "statusCode": 202, "isBase64Encoded": False,
        "multiValueHeaders": {**JSON_HEADERS, "Access-Control-Allow-Origin": ["*"],
                              "Access-Control-Expose-Headers": ["Retry-After"]}}
    assert json.loads(resp["body"]) == {
        "request_id": request_id, "accepted": 1, "duplicate": 0, "rejected": 1, "retryable": 0, "results": [
            {"index": 0, "click_id": "p1", "status": "accepted"},
            {"index": 1, "click_id": "p2", "status": "rejected",
             "reasons": [{"field": "token", "reason": "missing_token"}]}]}
    [[record]] = read_stream(NAMES.clicks_stream).values()
    assert record == {
        "click_id": "p1", "ad_id": "ad-T", "campaign_id": "cmp-T", "advertiser_id": "adv-T", "user_id": "u1",
        "event_time": NOW_MS - 60_000, "cost_micros": 420_000, "ip": source_ip, "user_agent": user_agent,
        "referrer": None, "ingest_time": NOW_MS, "request_id": request_id, "source_ip": source_ip,
        "impression_id": "imp-rec", "issued_at": (NOW_MS // 1000 - 60) * 1000}
    assert dedup_items() == {"p1": claim_item("p1", request_id, "committed", NOW_MS)}


# -- query ------------------------------------------------------------------------------------
MIN = 60_000
T0 = 1_798_758_000_000  # 2026-12-31T23:00:00Z
QUERY_NOW = T0 + 20 * MIN


@pytest.fixture
def query(aws, monkeypatch):
    ddb = boto3.client("dynamodb")
    table = ResourceNames().serving_table
    create_serving_table(ddb, table)
    # what the sink writes for ad-7's 1m buckets 23:00 (one suspect click) and 23:02 (a row from
    # before the IVT verdicts: no suspect/invalid counts), and the freshness item
    for minute, clicks, billable, cost, billable_cost, verdicts in (
            (0, 3, 2, 300_000, 200_000, {"suspect_clicks": 1, "invalid_clicks": 0}), (2, 1, 1, 100_000, 100_000, {})):
        ddb.put_item(TableName=table, Item=item_for(Change(AGG, True, {
            "kind": AGG, "ad_id": "ad-7", "campaign_id": "cmp-1", "advertiser_id": "adv-1", "resolution": "1m",
            "bucket_start": T0 + minute * MIN, "version": 1, "clicks": clicks, "billable_clicks": billable,
            "cost_micros": cost, "billable_cost_micros": billable_cost, **verdicts}), 8 * 86400))
    ddb.put_item(TableName=table, Item={**{k: {"S": v} for k, v in freshness_key(0).items()},
                                        "wm": {"N": str(T0 + 10 * MIN)}, "me": {"N": str(T0 + 2 * MIN + 30_000)}})
    service = QueryService(DynamoDBQueryStore(ddb, table, 5), AggregationSettings(leaderboard_size=5),
                           clock_ms=lambda: QUERY_NOW)
    monkeypatch.setattr(query_handler, "get_service", lambda: service)

    def get(name: str, path: str, **kw) -> tuple[int, dict, dict]:
        resp = query_handler.lambda_handler(as_request(recorded(name), "GET", path, **kw),
                                            LambdaContext("clickagg-query"))
        return resp["statusCode"], json.loads(resp["body"]), resp
    return get


FRESHNESS = {"newest_event_time": "2026-12-31T23:02:30.000Z", "newest_event_time_ms": T0 + 2 * MIN + 30_000,
             "watermark": "2026-12-31T23:10:00.000Z", "watermark_ms": T0 + 10 * MIN,
             "lag_ms": 17 * MIN + 30_000, "allowed_lateness_ms": 900_000}


@pytest.mark.parametrize("name", [REST, POWERTOOLS])
def test_query_on_a_recorded_event(query, name):
    status, body, resp = query(name, "/v1/health")
    assert (status, resp["multiValueHeaders"]) == (200, JSON_HEADERS)
    assert body == {"status": "ok", "store": "dynamodb", "freshness": FRESHNESS, "debug": {"requests": 1}}

    status, body, _ = query(name, "/v1/ads/ad-7/metrics", resource="/v1/ads/{ad_id}/metrics",
                            path_params={"ad_id": "ad-7"},
                            query={"resolution": "1m", "from": str(T0), "to": "2026-12-31T23:03:00Z"})
    # no impressions or conversions in these rows: ctr and cpa null, cvr and roas 0 where there are
    # clicks and spend; cpc = billable cost / billable clicks, rounded half up to the micro
    no_events = {"impressions": 0, "conversions": 0, "conversion_value": "0.000000", "ctr": None, "cpa": None}
    zero = {"clicks": 0, "billable_clicks": 0, "cost": "0.000000", "billable_cost": "0.000000",
            "suspect_clicks": 0, "invalid_clicks": 0, **no_events, "cvr": None, "cpc": None, "roas": None}
    assert (status, body) == (200, {
        "ad_id": "ad-7", "campaign_id": "cmp-1", "advertiser_id": "adv-1", "resolution": "1m",
        "window": {"from": "2026-12-31T23:00:00.000Z", "to": "2026-12-31T23:03:00.000Z",
                   "from_ms": T0, "to_ms": T0 + 3 * MIN},
        "points": [
            {"bucket_start": "2026-12-31T23:00:00.000Z", "bucket_start_ms": T0, "corrected": False,
             "clicks": 3, "billable_clicks": 2, "cost": "0.300000", "billable_cost": "0.200000",
             "suspect_clicks": 1, "invalid_clicks": 0, **no_events, "cvr": 0.0, "cpc": "0.100000", "roas": 0.0},
            {"bucket_start": "2026-12-31T23:01:00.000Z", "bucket_start_ms": T0 + MIN, "corrected": False, **zero},
            {"bucket_start": "2026-12-31T23:02:00.000Z", "bucket_start_ms": T0 + 2 * MIN, "corrected": False,
             "clicks": 1, "billable_clicks": 1, "cost": "0.100000", "billable_cost": "0.100000",
             "suspect_clicks": 0, "invalid_clicks": 0, **no_events, "cvr": 0.0, "cpc": "0.100000", "roas": 0.0}],
        "corrected_buckets": 0,
        "totals": {"clicks": 4, "billable_clicks": 3, "cost": "0.400000", "billable_cost": "0.300000",
                   "suspect_clicks": 1, "invalid_clicks": 0, **no_events, "cvr": 0.0, "cpc": "0.100000", "roas": 0.0},
        # final: the window's end + 15 min lateness is past the watermark (23:10)
        "freshness": {**FRESHNESS, "final": False},
        "debug": {"store": "dynamodb", "requests": 2, "items_read": 2}})

    status, body, _ = query(name, "/v1/ads/ad-7/metrics", resource="/v1/ads/{ad_id}/metrics",
                            path_params={"ad_id": "ad-7"}, query={"resolution": "7m"})
    assert (status, body) == (400, {"error": "unknown resolution '7m': one of 1m, 5m, 1h, 1d", "status": 400})
