"""Property-based fuzzing of the ingest API (hypothesis) against in-process moto: whatever the
payload (unicode, NaN/Infinity, huge or negative costs, extreme timestamps, deep nesting,
wrong types), the answer is never a 5xx, every item gets its own outcome, and exactly the
accepted items reach the stream: never a partially written click."""
from __future__ import annotations

import json
import time

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.config import ResourceNames
from ingest import handler
from local.lambda_runtime import LambdaContext
from local.readback import read_stream
from local.resources import create_dedup_table, create_stream
from tests.conftest import api_event

NAMES = ResourceNames()
NOW = int(time.time() * 1000)

text = st.text(max_size=40)
ids = st.one_of(st.from_regex(r"[A-Za-z0-9\-_]{1,20}", fullmatch=True), text, st.integers(), st.none())
costs = st.one_of(st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str),
                  st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10**30, max_value=10**30),
                  st.sampled_from(["NaN", "Infinity", "-0", "1e400", "0.0000001", "9999.999999", "abc"]), st.booleans())
stamps = st.one_of(st.integers(min_value=-2**63, max_value=2**64), st.integers(min_value=NOW - 8 * 86400_000, max_value=NOW + 600_000),
                   st.datetimes().map(lambda d: d.isoformat() + "Z"), text, st.floats())
nested = st.recursive(st.none() | st.booleans() | st.integers() | text,
                      lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
                      max_leaves=20)
click = st.fixed_dictionaries({"click_id": ids, "ad_id": ids, "campaign_id": ids, "advertiser_id": ids,
                               "user_id": ids, "timestamp": stamps, "cost": costs},
                              optional={"ip": st.one_of(text, st.ip_addresses().map(str)), "user_agent": text,
                                        "referrer": text, "extra": nested})
payload = st.one_of(click, st.fixed_dictionaries({"clicks": st.lists(st.one_of(click, nested), max_size=8)}),
                    st.lists(click, max_size=5), nested)


def to_json(value) -> str:
    def default(o):
        return str(o)
    # allow_nan: the raw NaN/Infinity tokens reach the server, as a careless SDK would send them
    return json.dumps(value, default=default, allow_nan=True)


@pytest.fixture(scope="module")
def aws_module():
    from moto import mock_aws

    with mock_aws():
        create_dedup_table(boto3.client("dynamodb"), NAMES.dedup_table)
        create_stream(boto3.client("kinesis"), NAMES.clicks_stream, 1)
        handler.get_service.cache_clear()
        yield
        handler.get_service.cache_clear()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=payload)
def test_never_5xx_and_stream_holds_exactly_the_accepted(aws_module, body):
    before = {r["click_id"] for rs in read_stream(NAMES.clicks_stream).values() for r in rs}
    resp = handler.lambda_handler(api_event(to_json(body)), LambdaContext("ingest"))
    status, out = resp["statusCode"], json.loads(resp["body"])
    assert status in (202, 400, 413, 415), out
    after = [r["click_id"] for rs in read_stream(NAMES.clicks_stream).values() for r in rs]
    new = set(after) - before
    if status == 202 or "results" in out:
        accepted = {r["click_id"] for r in out["results"] if r["status"] == "accepted"}
        assert new == accepted and len(after) == len(before) + len(accepted)
        assert [r["index"] for r in out["results"]] == sorted(r["index"] for r in out["results"])
        assert all(r["reasons"] for r in out["results"] if r["status"] == "rejected")
        assert all(r["status"] != "retryable" for r in out["results"])
    else:
        assert new == set() and out["error"]


def test_deeply_nested_and_huge_bodies_are_refused_cleanly(aws_module):
    deep = "[" * 50_000 + "]" * 50_000
    resp = handler.lambda_handler(api_event(deep), LambdaContext("ingest"))
    assert resp["statusCode"] == 400
    huge = json.dumps({"clicks": [{"click_id": "x" * 1000}] * 2000})
    resp = handler.lambda_handler(api_event(huge), LambdaContext("ingest"))
    assert resp["statusCode"] == 413
