"""CORS of the query Lambda at run time: the headers of real responses (200, 400, 404, 503 and
the OPTIONS preflight) for listed, unlisted and missing Origins, with CORS_ALLOWED_ORIGINS set
and unset. The handler reads the setting once, at import (a container's cold start), so each
case runs a fresh copy of the handler module; the shared `query.handler` is left alone."""
from __future__ import annotations

import importlib.util
import json

import boto3
import pytest

from common.config import AggregationSettings, ResourceNames
from local.lambda_runtime import LambdaContext
from local.resources import create_serving_table
from query.service import QueryService
from serving.read.dynamodb import DynamoDBQueryStore
from tests.conftest import api_event
from tests.query.truth import DAY, HOUR, load, random_truth, serving_items

TABLE = ResourceNames().serving_table
T0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY
DASH, OPS, EVIL = "https://dash.example.com", "https://ops.example.org", "https://evil.example.net"
# what the handler sends for a listed origin besides Access-Control-Allow-Origin (common.cors)
CORS_REST = {"Access-Control-Allow-Headers": "Authorization,Content-Type,X-Amz-Date,X-Amz-Security-Token,X-Api-Key",
             "Access-Control-Max-Age": "300", "Vary": "Origin"}


@pytest.fixture
def store(aws):
    ddb = boto3.client("dynamodb")
    create_serving_table(ddb, TABLE)
    load(ddb, TABLE, serving_items(random_truth(3, T0, 60, ads=4, p=0.5), 5))
    return ddb


def cold_start(monkeypatch, ddb, origins: str | None):
    """A new container of the query Lambda with CORS_ALLOWED_ORIGINS = origins (None: unset)."""
    if origins is None:
        monkeypatch.delenv("CORS_ALLOWED_ORIGINS", raising=False)
    else:
        monkeypatch.setenv("CORS_ALLOWED_ORIGINS", origins)
    spec = importlib.util.find_spec("query.handler")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    svc = QueryService(DynamoDBQueryStore(ddb, TABLE, 5), AggregationSettings(leaderboard_size=5),
                       clock_ms=lambda: T0 + 2 * HOUR)
    module.get_service = lambda: svc

    def call(method: str, path: str, headers: dict, query: str = ""):
        resp = module.lambda_handler(api_event(None, path=path, method=method, headers=headers, query=query),
                                     LambdaContext("clickagg-query"))
        hdrs = {k: v[-1] for k, v in (resp.get("multiValueHeaders") or {}).items()}
        hdrs.update(resp.get("headers") or {})
        return resp["statusCode"], hdrs, resp["body"]
    return call


def cors_headers(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k.startswith("Access-Control-") or k == "Vary"}


REQUESTS = [  # (method, path, query, status with the store up)
    ("GET", "/v1/top", "last=1h&k=3", 200),
    ("GET", "/v1/ads/ad-001/metrics", "last=30m", 200),
    ("GET", "/v1/health", "", 200),
    ("GET", "/v1/top", "k=0", 400),
    ("GET", "/v1/nope", "", 404),
]


def test_listed_origins_get_their_origin_back(monkeypatch, store):
    call = cold_start(monkeypatch, store, f" {DASH}, {OPS} ")
    for origin in (DASH, OPS):
        for header in ("Origin", "origin"):  # browsers on HTTP/2 send it lower-case
            for method, path, query, status in REQUESTS:
                got, headers, body = call(method, path, {header: origin}, query)
                assert got == status, (path, body)
                assert cors_headers(headers) == {"Access-Control-Allow-Origin": origin, **CORS_REST}, (origin, path)
                assert json.loads(body)  # the answer itself is unchanged
    # the store down (503 with Retry-After): still readable by the page
    store.delete_table(TableName=TABLE)
    got, headers, _ = call("GET", "/v1/top", {"Origin": OPS}, "last=5m")
    assert got == 503 and headers["Retry-After"] == "1"
    assert cors_headers(headers) == {"Access-Control-Allow-Origin": OPS, **CORS_REST}


def test_unlisted_or_missing_origin_gets_no_cors_headers(monkeypatch, store):
    call = cold_start(monkeypatch, store, f"{DASH},{OPS}")
    for headers_in in ({"Origin": EVIL}, {"Origin": DASH + "/"}, {"Origin": DASH.upper()},
                       {"Origin": "https://dash.example.com.evil.example.net"}, {"Origin": "null"}, {}):
        for method, path, query, status in REQUESTS:
            got, headers, _ = call(method, path, headers_in, query)
            assert got == status and cors_headers(headers) == {}, (headers_in, path, headers)


def test_preflight(monkeypatch, store):
    call = cold_start(monkeypatch, store, f"{DASH},{OPS}")
    ask = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,x-amz-date"}
    for path in ("/v1/top", "/v1/ads/ad-001/metrics", "/v1/quality", "/v1/health"):
        status, headers, body = call("OPTIONS", path, {"Origin": OPS, **ask})
        assert (status, body) == (204, "")
        assert cors_headers(headers) == {"Access-Control-Allow-Origin": OPS, "Access-Control-Allow-Methods": "GET,OPTIONS",
                                         **CORS_REST}, path
        # an unlisted origin: no Allow-Origin, so the browser refuses the real request
        status, headers, body = call("OPTIONS", path, {"Origin": EVIL, **ask})
        assert (status, body) == (204, "") and cors_headers(headers) == {"Access-Control-Allow-Methods": "GET,OPTIONS"}


def test_no_origins_configured_no_cors_at_all(monkeypatch, store):
    for setting in (None, "", " , "):
        call = cold_start(monkeypatch, store, setting)
        for method, path, query, status in REQUESTS:
            got, headers, _ = call(method, path, {"Origin": DASH}, query)
            assert got == status and cors_headers(headers) == {}, (setting, path)
        status, headers, body = call("OPTIONS", "/v1/top", {"Origin": DASH, "Access-Control-Request-Method": "GET"})
        assert status == 404 and cors_headers(headers) == {}
        assert json.loads(body) == {"error": "no route for OPTIONS /v1/top", "status": 404}
