"""The ingest handler against in-process moto (real DynamoDB conditional writes, real Kinesis
records), with faults injected at the AWS edges. Every count is checked in AWS state."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError

from common.config import IngestSettings, ResourceNames
from ingest import handler
from ingest.dedup import DedupStore
from ingest.publisher import KinesisPublisher
from ingest.service import IngestService
from local.lambda_runtime import LambdaContext
from local.readback import dedup_status_counts, read_stream
from local.resources import create_dedup_table, create_stream
from tests.conftest import api_event

NAMES = ResourceNames()


class FlakyKinesis:
    """Kinesis client whose PutRecords fails chosen records (they are really not written), like
    ProvisionedThroughputExceeded on a hot shard. `failures[click_id]` = attempts still to fail."""

    def __init__(self, real, failures: dict[str, int], whole_call_failures: int = 0):
        self.real, self.failures, self.whole_call_failures = real, failures, whole_call_failures
        self.calls = 0

    def put_records(self, StreamName, Records):
        self.calls += 1
        if self.whole_call_failures:
            self.whole_call_failures -= 1
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                         "Message": "Rate exceeded"}}, "PutRecords")
        results, passing = [], []
        for rec in Records:
            cid = json.loads(rec["Data"])["click_id"]
            if self.failures.get(cid, 0) > 0:
                self.failures[cid] -= 1
                results.append({"ErrorCode": "ProvisionedThroughputExceededException",
                                "ErrorMessage": "Rate exceeded for shard"})
            else:
                results.append(None)
                passing.append(rec)
        ok = iter(self.real.put_records(StreamName=StreamName, Records=passing)["Records"]) if passing else iter(())
        merged = [r if r is not None else next(ok) for r in results]
        return {"FailedRecordCount": sum("ErrorCode" in r for r in merged), "Records": merged}


class ThrottledDynamo:
    """DynamoDB client whose PutItem throttles for chosen click_ids (after SDK retries)."""

    def __init__(self, real, throttled: set[str]):
        self.real, self.throttled = real, throttled

    def __getattr__(self, name):
        return getattr(self.real, name)

    def put_item(self, **kwargs):
        if kwargs["Item"]["click_id"]["S"] in self.throttled:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                         "Message": "throttled"}}, "PutItem")
        return self.real.put_item(**kwargs)


@pytest.fixture
def env(aws, monkeypatch):
    ddb, kinesis = boto3.client("dynamodb"), boto3.client("kinesis")
    create_dedup_table(ddb, NAMES.dedup_table)
    create_stream(kinesis, NAMES.clicks_stream, 2)
    settings = IngestSettings(kinesis_backoff_base_ms=1)
    pool = ThreadPoolExecutor(8)

    def install(kinesis_client=kinesis, ddb_client=ddb, clock_ms=None):
        service = IngestService(
            settings, DedupStore(ddb_client, settings.dedup_table, pool, settings.claim_lease_s),
            KinesisPublisher(kinesis_client, settings.clicks_stream, settings.kinesis_max_attempts,
                             settings.kinesis_backoff_base_ms, sleep=lambda s: None),
            clock_ms=clock_ms or now_ms)
        monkeypatch.setattr(handler, "get_service", lambda: service)
        return service

    install()
    return {"ddb": ddb, "kinesis": kinesis, "install": install}


# The service's clock, pinned: claim leases, expiry and the event-time limits never depend on
# when (or how slowly) the tests run. 2 s before a month's, a year's and a day's end.
NOW_MS = 1_798_761_598_000  # 2026-12-31T23:59:58Z


def now_ms():
    return NOW_MS


def click(i, **over):
    c = {"click_id": f"c{i}", "ad_id": f"ad{i % 3}", "campaign_id": "k", "advertiser_id": "v",
         "user_id": f"u{i}", "timestamp": now_ms() - 60_000, "cost": "0.10"}
    c.update(over)
    return c


def post(body, **kw):
    resp = handler.lambda_handler(api_event(body, **kw), LambdaContext("clickagg-ingest"))
    return resp["statusCode"], json.loads(resp["body"]), resp


def stream_ids():
    return sorted(r["click_id"] for recs in read_stream(NAMES.clicks_stream).values() for r in recs)


def test_batch_with_duplicates_and_invalid_items(env):
    status, body, _ = post({"clicks": [click(1)]})
    assert status == 202 and body["accepted"] == 1
    batch = [click(1), click(2), click(3, cost="-1"), click(2), click(4), {"nope": 1}, click(5)]
    status, body, _ = post({"clicks": batch})
    assert status == 202
    assert (body["accepted"], body["duplicate"], body["rejected"], body["retryable"]) == (3, 2, 2, 0)
    assert [r["status"] for r in body["results"]] == [
        "duplicate", "accepted", "rejected", "duplicate", "accepted", "rejected", "accepted"]
    assert body["results"][2]["reasons"][0]["field"] == "cost"
    assert dedup_status_counts(NAMES.dedup_table) == {"committed": 4}
    assert stream_ids() == ["c1", "c2", "c4", "c5"]


def test_retrying_the_same_request_changes_nothing(env):
    batch = {"clicks": [click(i) for i in range(20)]}
    first = post(batch)[1]
    again = [post(batch)[1] for _ in range(3)]
    assert first["accepted"] == 20
    assert all(b["duplicate"] == 20 and b["accepted"] == 0 for b in again)
    assert stream_ids() == sorted(f"c{i}" for i in range(20))


def test_server_adds_ingest_metadata(env):
    post({"clicks": [click(1), click(2, ip="198.51.100.7", user_agent="app/2")]})
    recs = {r["click_id"]: r for rs in read_stream(NAMES.clicks_stream).values() for r in rs}
    assert recs["c1"]["ip"] == "203.0.113.9" and recs["c1"]["user_agent"] == "sdk/1.0"
    assert recs["c2"]["ip"] == "198.51.100.7" and recs["c2"]["user_agent"] == "app/2"
    assert recs["c1"]["source_ip"] == "203.0.113.9" and recs["c1"]["cost_micros"] == 100_000
    assert recs["c1"]["ingest_time"] == now_ms() and recs["c1"]["request_id"]


def test_partial_kinesis_failures_are_retried(env):
    flaky = FlakyKinesis(env["kinesis"], {f"c{i}": 2 for i in range(0, 30, 3)})
    env["install"](kinesis_client=flaky)
    status, body, _ = post({"clicks": [click(i) for i in range(30)]})
    assert status == 202 and body["accepted"] == 30 and flaky.calls == 3
    assert stream_ids() == sorted(f"c{i}" for i in range(30))
    assert dedup_status_counts(NAMES.dedup_table) == {"committed": 30}


def test_records_that_keep_failing_are_retryable_and_released(env):
    stuck = {f"c{i}": 99 for i in (1, 5)}
    env["install"](kinesis_client=FlakyKinesis(env["kinesis"], stuck))
    status, body, _ = post({"clicks": [click(i) for i in range(8)]})
    assert status == 202 and (body["accepted"], body["retryable"]) == (6, 2)
    assert [r["index"] for r in body["results"] if r["status"] == "retryable"] == [1, 5]
    assert dedup_status_counts(NAMES.dedup_table) == {"committed": 6}  # claims released
    env["install"]()  # the fault clears; the client retries the same request
    status, body, _ = post({"clicks": [click(i) for i in range(8)]})
    assert (body["accepted"], body["duplicate"]) == (2, 6)
    assert stream_ids() == sorted(f"c{i}" for i in range(8))


def test_nothing_accepted_is_503(env):
    env["install"](kinesis_client=FlakyKinesis(env["kinesis"], {}, whole_call_failures=99))
    status, body, resp = post({"clicks": [click(i) for i in range(3)]})
    assert status == 503 and body["retryable"] == 3 and resp["multiValueHeaders"]["Retry-After"] == ["1"]
    assert dedup_status_counts(NAMES.dedup_table) == {} and stream_ids() == []


def test_dedup_throttling_is_retryable_not_lost(env):
    env["install"](ddb_client=ThrottledDynamo(env["ddb"], {"c2"}))
    status, body, _ = post({"clicks": [click(i) for i in range(4)]})
    assert (body["accepted"], body["retryable"]) == (3, 1)
    env["install"]()
    assert post({"clicks": [click(2)]})[1]["accepted"] == 1
    assert stream_ids() == ["c0", "c1", "c2", "c3"]


def test_abandoned_claim_is_taken_over_after_lease(env):
    ddb = env["ddb"]
    t = now_ms()
    ddb.put_item(TableName=NAMES.dedup_table, Item={
        "click_id": {"S": "c1"}, "request_id": {"S": "crashed"}, "status": {"S": "pending"},
        "claimed_at": {"N": str(t - 121_000)}, "expires_at": {"N": str(t // 1000 + 3600)}})
    ddb.put_item(TableName=NAMES.dedup_table, Item={
        "click_id": {"S": "c2"}, "request_id": {"S": "busy"}, "status": {"S": "pending"},
        "claimed_at": {"N": str(t - 1_000)}, "expires_at": {"N": str(t // 1000 + 3600)}})
    status, body, _ = post({"clicks": [click(1), click(2)]})
    assert [r["status"] for r in body["results"]] == ["accepted", "retryable"]
    assert "another request" in body["results"][1]["reason"]
    assert stream_ids() == ["c1"]


def test_expired_but_undeleted_item_is_not_a_duplicate(env):
    t = now_ms()
    env["ddb"].put_item(TableName=NAMES.dedup_table, Item={
        "click_id": {"S": "c1"}, "request_id": {"S": "old"}, "status": {"S": "committed"},
        "claimed_at": {"N": str(t - 90_000_000)}, "expires_at": {"N": str(t // 1000 - 10)}})
    assert post({"clicks": [click(1)]})[1]["accepted"] == 1


@pytest.mark.parametrize("kwargs,status", [
    ({"body": "{bad"}, 400),
    ({"body": {"clicks": [click(1)]}, "headers": {"Content-Type": "text/plain"}}, 415),
    ({"body": {"clicks": [click(i) for i in range(501)]}}, 413),
    ({"body": {"clicks": [click(1, cost="x"), click(2, ad_id="")]}}, 400),
])
def test_request_errors(env, kwargs, status):
    code, body, _ = post(**kwargs)
    assert code == status and body["status"] == status and body["error"]
    assert stream_ids() == []


def test_all_invalid_reports_each_item(env):
    code, body, _ = post({"clicks": [click(1, cost="x"), click(2, ad_id="")]})
    assert code == 400 and body["rejected"] == 2
    assert [r["reasons"][0]["field"] for r in body["results"]] == ["cost", "ad_id"]


def test_single_click_object(env):
    code, body, _ = post(click(7))
    assert code == 202 and body["results"] == [{"index": 0, "click_id": "c7", "status": "accepted"}]


def test_hot_ad_salt_spreads_partition_keys(env, monkeypatch):
    settings = IngestSettings(hot_ad_salts={"ad0": 4})
    svc = env["install"]()
    monkeypatch.setattr(svc, "settings", settings)
    post({"clicks": [click(i * 3) for i in range(40)]})  # all on ad0
    shards = read_stream(NAMES.clicks_stream)
    assert sum(len(v) for v in shards.values()) == 40
    assert all(len(v) > 0 for v in shards.values())  # 2 shards, 4 keys: both used


def test_cors_only_for_configured_origins(monkeypatch):
    import importlib

    from common.cors import cors_config

    monkeypatch.delenv("CORS_ALLOWED_ORIGINS", raising=False)
    assert cors_config() is None
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    cfg = cors_config()
    assert cfg._allowed_origins == ["https://a.example", "https://b.example"]
    mod = importlib.reload(handler)  # the resolver reads the config at import (cold start)
    try:
        resp = mod.lambda_handler(api_event(None, method="OPTIONS", headers={"Origin": "https://b.example"}),
                                  LambdaContext("ingest"))
        assert resp["multiValueHeaders"]["Access-Control-Allow-Origin"] == ["https://b.example"]
        resp = mod.lambda_handler(api_event(None, method="OPTIONS", headers={"Origin": "https://evil.example"}),
                                  LambdaContext("ingest"))
        assert "Access-Control-Allow-Origin" not in (resp.get("multiValueHeaders") or {})
    finally:
        monkeypatch.delenv("CORS_ALLOWED_ORIGINS")
        importlib.reload(handler)
