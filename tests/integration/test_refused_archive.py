"""The refused-items archive (issue 17, "nothing is lost") through the real ingest handler against
in-process moto: hostile requests, invalid clicks, every click-token refusal and refused click
links are answered as before (4xx with a reason, never 5xx) and land, exactly, in the archive
bucket's refused/ layout (moto's Firehose + local.refused_delivery, as the local stack does);
accepted clicks of the same batch are unaffected; an archive that fails is counted and logged,
never turned into a 5xx; the named query refused_clicks_by_reason gives exact rows on DuckDB.

The handler's service is the one get_service() wires from the environment (delivery stream name
in REFUSED_DELIVERY_STREAM), with its clock pinned (tests/clock.py): 2 s before a year's end, so
the partitions cross midnight."""
from __future__ import annotations

import base64
import gzip
import json
from datetime import datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.click_token import ClickClaims, StaticKeys, issue
from common.config import ResourceNames
from common.named_queries import render
from common.refused import (COLUMN_NAMES, REFUSED_PREFIX, STREAM_ENV, delivery_stream_name,
                            partition_of)
from ingest import handler
from ingest.redirect import click_id_for
from ingest.refusals import RefusedArchive
from local.lambda_runtime import LambdaContext
from local.readback import read_stream
from local.refused_delivery import STAGING_PREFIX, LocalRefusedDelivery
from local.resources import create_all
from tests.clock import MONTH_END, UTC, Clock
from tests.conftest import api_event
from tests.integration.test_ingest_fuzz import payload as fuzz_payload
from tests.integration.test_ingest_fuzz import to_json as fuzz_json
from tests.integration.test_ingest_tokens import _tamper
from tools.analytics import run_duckdb, sync_archive

NAMES = ResourceNames()
K1, K9 = bytes(range(32)), bytes(range(64, 96))
IP, UA = "203.0.113.9", "sdk/1.0"
POST, LINK = "POST /v1/clicks", "GET /v1/c"


@pytest.fixture
def clock():
    return Clock(MONTH_END)


@pytest.fixture
def env(aws, monkeypatch, clock):
    """The local stack's resources (incl. the refused delivery stream) in moto; `mode(m)` starts
    a new handler container with click_token_mode m and the pinned clock."""
    create_all(NAMES, clicks_shards=1, aggregates_shards=1)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=NAMES.click_token_secret, SecretString=json.dumps({"active": "k1", "k1": K1.hex()}))
    monkeypatch.setenv(STREAM_ENV, delivery_stream_name(NAMES.prefix))
    monkeypatch.setenv("CLICK_TOKEN_SECRET", NAMES.click_token_secret)

    def mode(m: str = "off"):
        monkeypatch.setenv("CLICK_TOKEN_MODE", m)
        handler.get_service.cache_clear()
        service = handler.get_service()
        monkeypatch.setattr(service, "clock_ms", clock.ms)
        return service

    mode("off")
    yield mode
    handler.get_service.cache_clear()


@pytest.fixture
def metric_names(monkeypatch):
    seen: list[tuple[str, float]] = []
    real = handler.metrics.add_metric

    def add_metric(name, unit, value, *a, **kw):
        seen.append((name, value))
        return real(name=name, unit=unit, value=value, *a, **kw)

    monkeypatch.setattr(handler.metrics, "add_metric", add_metric)
    return seen


def send(event) -> tuple[int, dict, str]:
    """(status, JSON body, the request id API Gateway gave the request)."""
    resp = handler.lambda_handler(event, LambdaContext("clickagg-ingest"))
    body = json.loads(resp["body"]) if resp.get("body") else {}
    return resp["statusCode"], body, event["requestContext"]["requestId"]


def archived() -> list[tuple[tuple[str, str], dict]]:
    """Deliver what moto's Firehose staged, then every refused record in the archive with the
    (dt, hr) of its object key, in refused_at / request / item order."""
    LocalRefusedDelivery(NAMES.archive_bucket).drain_once()
    s3 = boto3.client("s3")
    assert s3.list_objects_v2(Bucket=NAMES.archive_bucket, Prefix=STAGING_PREFIX).get("KeyCount") == 0
    out = []
    for obj in s3.list_objects_v2(Bucket=NAMES.archive_bucket, Prefix=REFUSED_PREFIX).get("Contents", []):
        key = obj["Key"]
        assert key.endswith(".json.gz"), key
        dt, hr = (part.split("=", 1)[1] for part in key[len(REFUSED_PREFIX):].split("/")[:2])
        data = gzip.decompress(s3.get_object(Bucket=NAMES.archive_bucket, Key=key)["Body"].read())
        for line in filter(None, data.decode().split("\n")):
            record = json.loads(line)
            assert tuple(record) == COLUMN_NAMES
            out.append(((dt, hr), record))
    return sorted(out, key=lambda kr: (kr[1]["refused_at"], kr[1]["request_id"],
                                       -1 if kr[1]["item_index"] is None else kr[1]["item_index"]))


def expected(request_id, refused_at, *, http_status, reasons, raw, raw_format="item_json",
             raw_bytes=None, truncated=False, route=POST, item_index=None, click_id=None,
             source_ip=IP, user_agent=UA) -> dict:
    """A refused record written out by hand; reasons: [(field, code, message)]."""
    return {
        "refused_at": refused_at, "request_id": request_id, "route": route,
        "source_ip": source_ip, "user_agent": user_agent, "http_status": http_status,
        "item_index": item_index, "click_id": click_id,
        "reasons": [{"field": f, "reason": r, "message": m} for f, r, m in reasons],
        "reason_codes": [f"{f}:{r}" for f, r, _ in reasons],
        "raw": raw, "raw_format": raw_format,
        "raw_bytes": len(raw.encode()) if raw_bytes is None else raw_bytes, "truncated": truncated,
    }


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def click(i: int, now_ms: int, **over) -> dict:
    c = {"click_id": f"c{i}", "ad_id": f"ad{i % 3}", "campaign_id": "k", "advertiser_id": "v",
         "user_id": f"u{i}", "timestamp": now_ms - 60_000, "cost": "0.10"}
    c.update(over)
    return c


def token(now_s: int, *, kid="k1", key=K1, imp="imp-1", ad="ad-A", iat=None, ttl=3600) -> str:
    iat = now_s - 60 if iat is None else iat
    claims = ClickClaims(impression_id=imp, ad_id=ad, campaign_id="cmp-7", advertiser_id="adv-3",
                         price_micros=250_000, issued_at=iat, expires_at=iat + ttl,
                         landing_url="https://shop.example/landing")
    return issue(claims, StaticKeys({kid: key}, kid))


def stream_ids() -> list[str]:
    return sorted(r["click_id"] for recs in read_stream(NAMES.clicks_stream).values() for r in recs)


# --- whole requests ------------------------------------------------------------------------------
BIG_BATCH = compact({"clicks": [{"click_id": f"c{i}"} for i in range(501)]})
HUGE = compact({"clicks": [{"click_id": "x" * 1000}] * 1100})
CUT_E = "x" * 8191 + "é" + "y" * 10  # é's two bytes straddle the 8 KiB cap


@pytest.mark.parametrize("body, headers, status, field, code, raw, raw_format, raw_bytes, truncated", [
    ("{bad", None, 400, "body", "invalid_json", "{bad", "body_text", 4, False),
    (None, None, 400, "body", "empty_body", "", "body_text", 0, False),
    ('"hello"', None, 400, "body", "not_a_click_batch", '"hello"', "body_text", 7, False),
    ('{"clicks": {}}', None, 400, "clicks", "clicks_not_an_array", '{"clicks": {}}', "body_text", 14, False),
    ('{"clicks": []}', None, 400, "clicks", "no_clicks", '{"clicks": []}', "body_text", 14, False),
    ('{"click_id": "c1"}', {"Content-Type": "text/plain", "User-Agent": UA}, 415, "content_type",
     "unsupported_media_type", '{"click_id": "c1"}', "body_text", 18, False),
    (BIG_BATCH, None, 413, "clicks", "too_many_clicks", BIG_BATCH[:8192], "body_text", len(BIG_BATCH), True),
    (HUGE, None, 413, "body", "body_too_large", HUGE[:8192], "body_text", len(HUGE), True),
    ("[" * 50_000, None, 400, "body", "too_deeply_nested", "[" * 8192, "body_text", 50_000, True),
    (CUT_E, None, 400, "body", "invalid_json", "x" * 8191, "body_text", 8203, True),
    (b"\xff\xfe{", None, 400, "body", "invalid_json", base64.b64encode(b"\xff\xfe{").decode(),
     "body_base64", 3, False),
], ids=["bad-json", "empty", "not-a-batch", "clicks-not-array", "no-clicks", "415", "501-clicks",
        "over-1MiB", "nested", "utf8-cut", "not-utf8"])
def test_a_refused_request_is_archived_whole(env, clock, metric_names, body, headers, status,
                                             field, code, raw, raw_format, raw_bytes, truncated):
    got, answer, request_id = send(api_event(body, headers=headers))
    assert got == status and answer["status"] == status
    assert archived() == [(("2026-12-31", "23"), expected(
        request_id, clock.ms(), http_status=status, reasons=[(field, code, answer["error"])],
        raw=raw, raw_format=raw_format, raw_bytes=raw_bytes, truncated=truncated))]
    assert ("RequestsRefused", 1) in metric_names and ("RefusedArchived", 1) in metric_names
    assert not [m for m in metric_names if m[0] == "RefusedUnarchived"]
    assert stream_ids() == []


# --- clicks of a batch ---------------------------------------------------------------------------
def test_mixed_batch_archives_exactly_the_rejected_clicks_and_accepts_the_rest(env, clock):
    now = clock.ms()
    batch = [
        click(0, now),
        {k: v for k, v in click(1, now).items() if k != "user_id"},
        click(2, now, cost="-1"),
        "not a click",
        click(4, now, timestamp=now - 8 * 86_400_000),
        click(0, now),  # repeated in this request: a duplicate, not refused
        click(6, now),
        click(7, now, ad_id="a" * 129, ip="nope"),
        {"click_id": "c8", **{k: v for k, v in click(8, now).items() if k != "click_id"}, "cost": 2.5,
         "timestamp": now + 301_000},
        click(9, now, user_agent="\ud800bad"),  # a lone surrogate (sent as an escape)
    ]
    wire = json.dumps({"clicks": batch})  # ASCII: the surrogate travels as "\ud800"
    status, answer, rid = send(api_event(wire))
    assert status == 202
    assert [(r["click_id"], r["status"]) for r in answer["results"]] == [
        ("c0", "accepted"), ("c1", "rejected"), ("c2", "rejected"), (None, "rejected"),
        ("c4", "rejected"), ("c0", "duplicate"), ("c6", "accepted"), ("c7", "rejected"),
        ("c8", "rejected"), ("c9", "rejected")]
    assert stream_ids() == ["c0", "c6"]

    def rec(i, reasons):
        # the raw item as compact JSON; the lone surrogate written back as the escape it came as
        raw = compact(batch[i]).encode("utf-8", "backslashreplace").decode()
        return (("2026-12-31", "23"), expected(
            rid, now, http_status=202, item_index=i, click_id=batch[i]["click_id"] if i != 3 else None,
            reasons=reasons, raw=raw))

    assert archived() == [
        rec(1, [("user_id", "missing", "Field required")]),
        rec(2, [("cost", "greater_than_equal", "Input should be greater than or equal to 0")]),
        rec(3, [("click", "not_an_object", "must be a JSON object")]),
        rec(4, [("timestamp", "too_old", "older than the maximum age of 604800s")]),
        rec(7, [("ad_id", "string_too_long", "String should have at most 128 characters"),
                ("ip", "value_error", "Value error, 'nope' does not appear to be an IPv4 or IPv6 address")]),
        rec(8, [("timestamp", "too_far_in_future", "more than 300s in the future (clock skew limit)")]),
        rec(9, [("user_agent", "string_unicode",
                 "Input should be a valid string, unable to parse raw data as a unicode string")]),
    ]
    assert archived()[-1][1]["raw"].endswith('"user_agent":"\\ud800bad"}')


def test_raw_item_keeps_numbers_as_sent_escapes_and_is_capped(env, clock):
    now = clock.ms()
    long_ua = "é" * 5000  # 10000 bytes of UTF-8: the item passes 8 KiB inside this string
    wire = ('{"clicks": [{"click_id": "c1", "cost": 1.10, "big": 12345678901234567890.5e3, '
            '"odd": "\\ud800", "user_agent": "' + long_ua + '"}]}')
    status, answer, rid = send(api_event(wire))
    assert status == 400
    [(_, record)] = archived()
    full = ('{"click_id":"c1","cost":1.10,"big":1.23456789012345678905E+22,"odd":"\\ud800",'
            '"user_agent":"' + long_ua + '"}')
    assert record["raw_bytes"] == len(full.encode()) and record["truncated"] is True
    head = full.encode()[:8192].decode("utf-8", "ignore")
    assert record["raw"] == head and len(head.encode()) in (8191, 8192)
    assert record["raw_format"] == "item_json" and record["item_index"] == 0


def test_all_invalid_batch_is_400_and_every_click_is_archived(env, clock):
    now = clock.ms()
    batch = [click(1, now, cost="x"), click(2, now, ad_id="")]
    status, answer, rid = send(api_event({"clicks": batch}))
    assert status == 400 and answer["rejected"] == 2
    assert archived() == [
        (("2026-12-31", "23"), expected(rid, now, http_status=400, item_index=0, click_id="c1",
                                        reasons=[("cost", "decimal_parsing", "Input should be a valid decimal")],
                                        raw=compact(batch[0]))),
        (("2026-12-31", "23"), expected(rid, now, http_status=400, item_index=1, click_id="c2",
                                        reasons=[("ad_id", "string_too_short",
                                                  "String should have at least 1 character")],
                                        raw=compact(batch[1]))),
    ]


def test_enforce_archives_each_token_refusal_with_its_reason(env, clock):
    env("enforce")
    now_s = clock.ms() // 1000
    good = token(now_s)
    batch = [
        {"click_id": "c0", "user_id": "u0", "timestamp": clock.ms() - 1000, "token": good},
        {"click_id": "c1", "user_id": "u1", "timestamp": clock.ms() - 1000},
        {"click_id": "c2", "user_id": "u2", "timestamp": clock.ms() - 1000, "token": good, "ad_id": "ad-B"},
        {"click_id": "c3", "user_id": "u3", "timestamp": clock.ms() - 1000, "token": "v1.garbage"},
        {"click_id": "c4", "user_id": "u4", "timestamp": clock.ms() - 1000, "token": token(now_s, kid="k9", key=K9)},
        {"click_id": "c5", "user_id": "u5", "timestamp": clock.ms() - 1000, "token": _tamper(good, ppc=2_500_000)},
        {"click_id": "c6", "user_id": "u6", "timestamp": clock.ms() - 1000, "token": token(now_s, iat=now_s + 400)},
        {"click_id": "c7", "user_id": "u7", "timestamp": clock.ms() - 1000, "token": token(now_s, iat=now_s - 2 * 86400)},
        {"click_id": "c8", "user_id": "u8", "timestamp": clock.ms() - 1000, "token": token(now_s, imp="imp-8")},
    ]
    status, answer, rid = send(api_event({"clicks": batch}))
    assert status == 202
    assert [(r["click_id"], r["status"], [x["reason"] for x in r.get("reasons", [])])
            for r in answer["results"]] == [
        ("c0", "accepted", []), ("c1", "rejected", ["missing_token"]),
        ("c2", "rejected", ["token_mismatch"]), ("c3", "rejected", ["malformed"]),
        ("c4", "rejected", ["unknown_key"]), ("c5", "rejected", ["bad_signature"]),
        ("c6", "rejected", ["invalid_token"]), ("c7", "rejected", ["expired_token"]),
        ("c8", "accepted", [])]
    assert stream_ids() == ["c0", "c8"]
    recs = {r["click_id"]: r for rs in read_stream(NAMES.clicks_stream).values() for r in rs}
    assert (recs["c8"]["ad_id"], recs["c8"]["cost_micros"], recs["c8"]["impression_id"]) == ("ad-A", 250_000, "imp-8")

    reasons = {
        1: ("missing_token", "no token"),
        2: ("token_mismatch", "ad_id differs from the token's"),
        3: ("malformed", "expected v1.<kid>.<payload>.<mac>"),
        4: ("unknown_key", "key id 'k9'"),
        5: ("bad_signature", "key id 'k1'"),
        6: ("invalid_token", f"issued_at {now_s + 400} is in the future"),
        7: ("expired_token", f"expired at {now_s - 2 * 86400 + 3600}"),
    }
    assert archived() == [(("2026-12-31", "23"), expected(
        rid, clock.ms(), http_status=202, item_index=i, click_id=f"c{i}",
        reasons=[("token", code, message)], raw=compact(batch[i])))
        for i, (code, message) in reasons.items()]


# --- click links ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make, status, reason, message", [
    (lambda s: None, 400, "missing_token", lambda s: "expected exactly one query parameter t: a click token"),
    (lambda s: "v1.garbage", 400, "malformed", lambda s: "expected v1.<kid>.<payload>.<mac>"),
    (lambda s: token(s, kid="k9", key=K9), 403, "unknown_key", lambda s: "key id 'k9'"),
    (lambda s: _tamper(token(s), url="https://evil.example/"), 403, "bad_signature", lambda s: "key id 'k1'"),
    (lambda s: token(s, iat=s + 400), 403, "invalid_token", lambda s: f"issued_at {s + 400} is in the future"),
    (lambda s: token(s, iat=s - 2 * 86400), 410, "expired_token", lambda s: f"expired at {s - 2 * 86400 + 3600}"),
], ids=["missing", "malformed", "unknown-key", "bad-signature", "invalid", "expired"])
def test_a_refused_click_link_is_archived(env, clock, make, status, reason, message):
    now_s = clock.ms() // 1000
    t = make(now_s)
    query = "" if t is None else f"t={t}&utm=x"
    headers = {"User-Agent": "Mozilla/5.0", "Referer": "https://news.example/"}
    event = api_event(None, path="/v1/c", method="GET", query=query, headers=headers,
                      source_ip="198.51.100.7")
    got, answer, rid = send(event)
    assert (got, answer["reason"]) == (status, reason)
    raw = "{}" if t is None else compact({"t": [t], "utm": ["x"]})
    assert archived() == [(("2026-12-31", "23"), expected(
        rid, clock.ms(), route=LINK, http_status=status, reasons=[("t", reason, message(now_s))], raw=raw,
        raw_format="query_json", source_ip="198.51.100.7", user_agent="Mozilla/5.0"))]
    assert stream_ids() == []


def test_a_valid_link_and_accepted_clicks_archive_nothing(env, clock):
    got, _, _ = send(api_event(None, path="/v1/c", method="GET", query=f"t={token(clock.ms() // 1000)}"))
    assert got == 302
    assert send(api_event({"clicks": [click(1, clock.ms())]}))[0] == 202
    assert archived() == [] and stream_ids() == ["c1", click_id_for("imp-1")]


# --- the archive failing -------------------------------------------------------------------------
class FailingFirehose:
    """A Firehose client that raises `error` for the next `call_errors` calls and answers the
    records whose click_id is in `refused` with a per-record ErrorCode `times` times."""

    def __init__(self, real, call_errors=0, refused=(), times=99):
        self.real, self.call_errors = real, call_errors
        self.refused = {cid: times for cid in refused}
        self.calls: list[list] = []

    def put_record_batch(self, DeliveryStreamName, Records):
        ids = [json.loads(r["Data"])["click_id"] for r in Records]
        self.calls.append(ids)
        if self.call_errors:
            self.call_errors -= 1
            raise ClientError({"Error": {"Code": "ServiceUnavailableException", "Message": "down"}},
                              "PutRecordBatch")
        failing = [cid in self.refused and self.refused[cid] > 0 for cid in ids]
        for cid, f in zip(ids, failing):
            if f:
                self.refused[cid] -= 1
        passing = [r for r, f in zip(Records, failing) if not f]
        ok = iter(self.real.put_record_batch(DeliveryStreamName=DeliveryStreamName,
                                             Records=passing)["RequestResponses"] if passing else ())
        answers = [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"} if f
                   else next(ok) for f in failing]
        return {"FailedPutCount": sum(failing), "RequestResponses": answers}


@pytest.fixture
def logged(monkeypatch):
    errors: list[tuple[str, dict]] = []
    monkeypatch.setattr(handler.logger, "error", lambda msg, **kw: errors.append((msg, kw)))
    return errors


def install(service, firehose, sleeps):
    service.refused = RefusedArchive(firehose, service.refused.stream_name, sleep=sleeps.append)


def test_archive_down_keeps_the_answer_counts_and_logs_every_item(env, clock, metric_names, logged):
    service = env("off")
    sleeps: list[float] = []
    install(service, FailingFirehose(boto3.client("firehose"), call_errors=99), sleeps)
    now = clock.ms()
    batch = [click(0, now), click(1, now, cost="-1"), click(2, now, user_id="")]
    status, answer, rid = send(api_event({"clicks": batch}))
    assert status == 202 and [r["status"] for r in answer["results"]] == ["accepted", "rejected", "rejected"]
    status, answer, rid2 = send(api_event("{bad"))
    assert status == 400 and answer["error"].startswith("body is not valid JSON")
    assert stream_ids() == ["c0"] and archived() == []
    assert [(n, v) for n, v in metric_names if n.startswith("Refused")] == [
        ("RefusedArchived", 0), ("RefusedUnarchived", 2), ("RefusedArchived", 0), ("RefusedUnarchived", 1)]
    assert [(msg, kw["refused"]["request_id"], kw["refused"]["item_index"], kw["errors"]) for msg, kw in logged] == [
        ("refused item not archived", rid, 1, ["ClientError: An error occurred (ServiceUnavailableException) "
                                               "when calling the PutRecordBatch operation: down"]),
        ("refused item not archived", rid, 2, ["ClientError: An error occurred (ServiceUnavailableException) "
                                               "when calling the PutRecordBatch operation: down"]),
        ("refused item not archived", rid2, None, ["ClientError: An error occurred (ServiceUnavailableException) "
                                                   "when calling the PutRecordBatch operation: down"]),
    ]
    assert logged[0][1]["refused"]["raw"] == compact(batch[1])
    assert sleeps == [0.05, 0.05]  # one retry per request


def test_records_firehose_fails_once_are_put_again(env, clock, metric_names, logged):
    service = env("off")
    sleeps: list[float] = []
    firehose = FailingFirehose(boto3.client("firehose"), refused={"c2"}, times=1)
    install(service, firehose, sleeps)
    now = clock.ms()
    batch = [click(1, now, cost="-1"), click(2, now, cost="-1"), click(3, now, cost="-1")]
    status, _, rid = send(api_event({"clicks": batch}))
    assert status == 400
    assert firehose.calls == [["c1", "c2", "c3"], ["c2"]] and sleeps == [0.05]
    assert [r["click_id"] for _, r in archived()] == ["c1", "c2", "c3"]
    assert [(n, v) for n, v in metric_names if n.startswith("Refused")] == [("RefusedArchived", 3)]
    assert logged == []


def test_records_firehose_keeps_failing_are_the_unarchived_ones(env, clock, metric_names, logged):
    service = env("off")
    install(service, FailingFirehose(boto3.client("firehose"), refused={"c2"}), [])
    now = clock.ms()
    status, _, _ = send(api_event({"clicks": [click(1, now, cost="-1"), click(2, now, cost="-1")]}))
    assert status == 400
    assert [r["click_id"] for _, r in archived()] == ["c1"]
    assert [(n, v) for n, v in metric_names if n.startswith("Refused")] == [
        ("RefusedArchived", 1), ("RefusedUnarchived", 1)]
    assert [kw["refused"]["click_id"] for _, kw in logged] == ["c2"]
    assert logged[0][1]["errors"] == ["ServiceUnavailableException: slow down"]


def test_missing_delivery_stream_is_counted_not_a_5xx(env, clock, metric_names, logged):
    boto3.client("firehose").delete_delivery_stream(DeliveryStreamName=delivery_stream_name(NAMES.prefix))
    status, answer, _ = send(api_event(None, path="/v1/c", method="GET", query="t=v1.garbage"))
    assert (status, answer["reason"]) == (400, "malformed")
    assert ("RefusedUnarchived", 1) in metric_names and len(logged) == 1
    assert "ResourceNotFoundException" in logged[0][1]["errors"][0]


def test_no_delivery_stream_configured_means_no_archive_call(env, monkeypatch, metric_names):
    monkeypatch.setenv(STREAM_ENV, "")
    service = env("off")
    assert service.refused is None
    assert send(api_event("{bad"))[0] == 400
    assert archived() == [] and not [m for m in metric_names if m[0].startswith("Refused")]


# --- the named query on DuckDB -------------------------------------------------------------------
def test_refused_clicks_by_reason_on_duckdb(env, clock, tmp_path):
    """Refusals 2 h before, just before and just after midnight (UTC, a year's end); the query's
    window is the last hour: exact rows, per arrival day."""
    t0 = clock.ms()
    clock.advance(-7200)  # 21:59:58: outside the 1-hour window
    send(api_event("{old"))
    clock.set(MONTH_END)  # 23:59:58
    send(api_event("{bad", source_ip="192.0.2.1"))
    send(api_event({"clicks": [click(1, t0, user_id="", cost="-1"), click(2, t0), click(3, t0, cost="-1")]},
                   source_ip="192.0.2.2"))
    clock.advance(3)  # 2027-01-01 00:00:01
    t1 = clock.ms()
    send(api_event("{worse", source_ip="192.0.2.3"))
    send(api_event(None, path="/v1/c", method="GET", query="t=v1.garbage", source_ip="192.0.2.1"))
    send(api_event("{}", headers={"Content-Type": "text/plain"}, source_ip="192.0.2.2"))
    send(api_event({"clicks": [click(4, t1, cost="-1")]}, source_ip="192.0.2.2"))

    assert [p for p, _ in archived()] == [("2026-12-31", "21")] + [("2026-12-31", "23")] * 3 \
        + [("2027-01-01", "00")] * 4
    assert partition_of(t1) == ("2027-01-01", "00")
    root = tmp_path / "archive"
    assert sync_archive(NAMES.archive_bucket, root) == 3 + 4  # one object per PutRecordBatch
    sql, binds = render("refused_clicks_by_reason", {"n": "1"}, now_ms=t1 + 2000)
    columns, rows = run_duckdb(sql, root, binds)
    assert columns == ["dt", "route", "field", "reason", "items", "requests", "source_ips",
                       "first_refused_ms", "last_refused_ms"]
    assert rows == [
        ("2026-12-31", "POST /v1/clicks", "cost", "greater_than_equal", 2, 1, 1, t0, t0),
        ("2026-12-31", "POST /v1/clicks", "body", "invalid_json", 1, 1, 1, t0, t0),
        ("2026-12-31", "POST /v1/clicks", "user_id", "string_too_short", 1, 1, 1, t0, t0),
        ("2027-01-01", "GET /v1/c", "t", "malformed", 1, 1, 1, t1, t1),
        ("2027-01-01", "POST /v1/clicks", "body", "invalid_json", 1, 1, 1, t1, t1),
        ("2027-01-01", "POST /v1/clicks", "content_type", "unsupported_media_type", 1, 1, 1, t1, t1),
        ("2027-01-01", "POST /v1/clicks", "cost", "greater_than_equal", 1, 1, 1, t1, t1),
    ]
    # a longer window reaches the 21:59:58 refusal too
    sql, binds = render("refused_clicks_by_reason", {"n": "3"}, now_ms=t1 + 2000)
    _, rows = run_duckdb(sql, root, binds)
    assert rows[0] == ("2026-12-31", "POST /v1/clicks", "body", "invalid_json", 2, 2, 2, t0 - 7_200_000, t0)
    assert datetime.fromtimestamp(t0 / 1000, UTC).strftime("%H:%M:%S") == "23:59:58"


# --- hostile input, generated --------------------------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(body=fuzz_payload, headers=st.sampled_from([None, {"Content-Type": "text/plain"}]))
def test_any_hostile_body_is_answered_4xx_or_202_and_each_refusal_archived_once(env, body, headers):
    """Whatever the body, with the archive on: never a 5xx, and the archive gains exactly one
    record per refusal (the whole request, or each rejected click), with the answer's status."""
    status, answer, rid = send(api_event(fuzz_json(body), headers=headers))
    assert status in (202, 400, 413, 415), answer
    new = [r for _, r in archived() if r["request_id"] == rid]
    if "results" in answer:
        rejected = [r["index"] for r in answer["results"] if r["status"] == "rejected"]
        assert [r["item_index"] for r in new] == rejected
    else:
        assert [(r["item_index"], r["reasons"][0]["message"]) for r in new] == [(None, answer["error"])]
    assert all(r["request_id"] == rid and r["http_status"] == status and r["reason_codes"] for r in new)


def test_a_record_builder_failing_is_counted_not_a_5xx(env, monkeypatch, metric_names, logged):
    def broken(*_a, **_kw):
        raise RuntimeError("bug")

    monkeypatch.setattr("ingest.refusals.request_record", broken)
    status, answer, _ = send(api_event("{bad"))
    assert status == 400 and answer["error"].startswith("body is not valid JSON")
    assert [(n, v) for n, v in metric_names if n.startswith("Refused")] == [("RefusedUnarchived", 1)]
