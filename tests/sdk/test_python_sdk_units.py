"""The Python SDK's pure parts (sdk/python, installed as clickagg_sdk): the installed token
library is the reference implementation byte for byte; uuid7 against RFC 9562's layout (decoded
here with the stdlib's uuid); TokenIssuer against the spec's test vectors; the retry rules
(backoff bounds, Retry-After, classify) against exact expectations."""
from __future__ import annotations

import json
import random
import uuid
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

import pytest

import clickagg_sdk
from clickagg_sdk import ClickClaims, StaticKeys, TokenIssuer, parse_key_set, uuid7, verify
from clickagg_sdk import click_token as sdk_ct
from clickagg_sdk.client import MAX_BATCH_BYTES, batches, encode_json
from clickagg_sdk.ids import Uuid7Generator, uuid7_time_ms
from clickagg_sdk.retry import (RETRY_AFTER_CAP_S, Decision, backoff_s, classify, parse_retry_after,
                                retry_delay_s)

REPO = Path(__file__).resolve().parents[2]
VECTORS = json.loads((REPO / "docs" / "click-token-vectors.json").read_text())


# --- packaging ---------------------------------------------------------------------------------
def test_installed_token_library_is_the_reference_file_byte_for_byte():
    installed = Path(sdk_ct.__file__).read_bytes()
    assert installed == (REPO / "functions" / "common" / "click_token.py").read_bytes()
    assert Path(sdk_ct.__file__).parent == Path(clickagg_sdk.__file__).parent  # in the package, not functions/


def test_root_reexports():
    for name in ("ClickClaims", "StaticKeys", "parse_key_set", "SecretKeys", "verify", "VerifyPolicy",
                 "TokenRejected", "issue"):
        assert getattr(clickagg_sdk, name) is getattr(sdk_ct, name), name
    assert {"TokenIssuer", "uuid7", "ClickClient", "ClickSender", "ItemOutcome", "Attempt"} <= set(clickagg_sdk.__all__)


# --- uuid7 -------------------------------------------------------------------------------------
def test_uuid7_layout():
    for _ in range(200):
        text = uuid7()
        u = uuid.UUID(text)
        assert str(u) == text  # canonical lowercase 8-4-4-4-12
        assert u.version == 7 and u.variant == uuid.RFC_4122
        assert (u.int >> 76) & 0xF == 7 and (u.int >> 62) & 0b11 == 0b10


def test_uuid7_carries_the_clock_in_its_first_48_bits():
    gen = Uuid7Generator(clock_ms=lambda: 0x0123_4567_89AB)
    text = gen()
    assert text.startswith("01234567-89ab-7")
    assert uuid7_time_ms(text) == 0x0123456789AB == uuid.UUID(text).int >> 80


def test_uuid7_orders_by_time_and_is_monotonic_within_a_millisecond():
    now = [1_700_000_000_000]
    gen = Uuid7Generator(clock_ms=lambda: now[0])
    ids = []
    for step in [0] * 3000 + [1] * 5 + [0] * 10 + [-5] * 3 + [7]:  # 3000 in one ms: counter overflows
        now[0] += step
        ids.append(gen())
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids) and [uuid.UUID(i).int for i in ids] == sorted(uuid.UUID(i).int for i in ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)
    # the timestamp never goes back, even when the clock did (it advances on counter overflow)
    times = [uuid7_time_ms(i) for i in ids]
    assert times == sorted(times) and times[0] == 1_700_000_000_000
    # ids of a later millisecond (without overflow in between) carry that millisecond
    gen2 = Uuid7Generator(clock_ms=lambda: now[0])
    a = gen2()
    now[0] += 10
    assert uuid7_time_ms(gen2()) == uuid7_time_ms(a) + 10


def test_uuid7_default_is_unique_and_increasing():
    ids = [uuid7() for _ in range(5000)]
    assert len(set(ids)) == 5000 and ids == sorted(ids)


# --- TokenIssuer -------------------------------------------------------------------------------
def vector_keys(kid: str) -> StaticKeys:
    return parse_key_set({"keys": VECTORS["key_set"]["keys"], "active": kid})


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=[v["name"] for v in VECTORS["valid"]])
def test_issuer_reproduces_the_valid_vectors(vector):
    issuer = TokenIssuer(vector_keys(vector["kid"]))
    claims = ClickClaims(**vector["claims"])
    assert issuer.issue_claims(claims) == vector["token"]
    c = vector["claims"]
    ttl = c["expires_at"] - c["issued_at"]
    by_name = TokenIssuer(vector_keys(vector["kid"]), ttl_s=ttl).issue(
        ad_id=c["ad_id"], campaign_id=c["campaign_id"], advertiser_id=c["advertiser_id"],
        price_micros=c["price_micros"], landing_url=c["landing_url"], impression_id=c["impression_id"],
        placement_id=c.get("placement_id"), publisher_id=c.get("publisher_id"), issued_at=c["issued_at"])
    assert by_name == vector["token"]


def test_issuer_reproduces_a_vector_from_the_secret_as_stored():
    """The key set as the secret holds it (active k2): the k2 vectors come out exactly."""
    issuer = TokenIssuer(parse_key_set(json.dumps(VECTORS["key_set"])))
    k2 = [v for v in VECTORS["valid"] if v["kid"] == VECTORS["key_set"]["active"]]
    assert k2
    for v in k2:
        assert issuer.issue_claims(ClickClaims(**v["claims"])) == v["token"]


def test_issuer_defaults():
    keys = StaticKeys({"k1": bytes(range(32))}, "k1")
    issuer = TokenIssuer(keys, clock=lambda: 1_795_000_000.9)
    args = dict(ad_id="ad-1", campaign_id="cmp-1", advertiser_id="adv-1", price_micros=120_000,
                landing_url="https://shop.example/x")
    tokens = [issuer.issue(**args) for _ in range(50)]
    claims = [verify(t, keys, 1_795_000_010) for t in tokens]
    assert {(c.issued_at, c.expires_at) for c in claims} == {(1_795_000_000, 1_795_003_600)}
    imps = [c.impression_id for c in claims]
    assert len(set(imps)) == 50 and all(uuid.UUID(i).version == 7 for i in imps)
    assert {(c.ad_id, c.campaign_id, c.advertiser_id, c.price_micros, c.landing_url, c.placement_id,
             c.publisher_id) for c in claims} == {("ad-1", "cmp-1", "adv-1", 120_000, "https://shop.example/x",
                                                   None, None)}
    week = TokenIssuer(keys, ttl_s=604_800, clock=lambda: 1_795_000_000)
    c = verify(week.issue(**args, placement_id="plc-1", publisher_id="pub-1"), keys, 1_795_000_010)
    assert (c.expires_at - c.issued_at, c.placement_id, c.publisher_id) == (604_800, "plc-1", "pub-1")


@pytest.mark.parametrize("ttl", [0, -1, 604_801, 1.5, True, "3600"])
def test_issuer_refuses_bad_ttl(ttl):
    with pytest.raises(ValueError):
        TokenIssuer(StaticKeys({"k1": bytes(32)}, "k1"), ttl_s=ttl)


def test_issuer_refuses_claims_the_spec_refuses():
    issuer = TokenIssuer(StaticKeys({"k1": bytes(32)}, "k1"))
    with pytest.raises(sdk_ct.ClaimsError):
        issuer.issue(ad_id="ad-1", campaign_id="c", advertiser_id="a", price_micros=1,
                     landing_url="http://shop.example/")  # http
    with pytest.raises(sdk_ct.KeyConfigError):
        TokenIssuer(StaticKeys({"k1": bytes(32)})).issue(  # no active key: verify only
            ad_id="ad-1", campaign_id="c", advertiser_id="a", price_micros=1, landing_url="https://s.example/")


# --- backoff -----------------------------------------------------------------------------------
@pytest.mark.parametrize("base,cap", [(0.1, 10.0), (0.5, 3.0), (1.0, 1.0)])
def test_backoff_bounds(base, cap):
    rng = random.Random(7)
    for attempt in range(0, 40):
        ceiling = min(cap, base * 2 ** attempt)
        draws = [backoff_s(attempt, base, cap, rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in draws), attempt
        # full jitter: the draws spread over the whole interval, not a fixed value
        assert min(draws) < 0.1 * ceiling and max(draws) > 0.9 * ceiling


def test_backoff_is_the_seeded_uniform_draw():
    a, b = random.Random(3), random.Random(3)
    assert [backoff_s(k, 0.1, 10.0, a) for k in range(12)] == [b.uniform(0, min(10.0, 0.1 * 2 ** k)) for k in range(12)]
    assert backoff_s(10_000, 0.1, 10.0, random.Random(1)) <= 10.0  # no overflow for huge attempts
    with pytest.raises(ValueError):
        backoff_s(-1)


def test_retry_delay_takes_the_longer_of_retry_after_and_jitter():
    rng = random.Random(11)
    for _ in range(200):
        assert retry_delay_s(0, 5.0, 0.1, 10.0, rng) == 5.0  # jitter <= 0.1 < 5
        assert retry_delay_s(3, 0.0, 0.1, 10.0, rng) <= 0.8
        assert retry_delay_s(0, 3600.0, 0.1, 10.0, rng) == RETRY_AFTER_CAP_S == 60.0
    r1, r2 = random.Random(5), random.Random(5)
    assert retry_delay_s(20, 2.0, 0.1, 10.0, r1) == max(2.0, r2.uniform(0, 10.0))


# --- Retry-After -------------------------------------------------------------------------------
NOW = 1_795_000_000.0


@pytest.mark.parametrize("value,expected", [
    ("0", 0.0), ("1", 1.0), ("  120 ", 120.0), ("86400", 86400.0),  # delta-seconds (uncapped here)
    (None, None), ("", None), ("   ", None),
    ("-5", None), ("1.5", None), ("+3", None), ("soon", None), ("1e3", None), ("٣", None),
    ("Mon, 32 Foo 2026 99:99:99 GMT", None),
])
def test_parse_retry_after_seconds_and_garbage(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_http_dates():
    later = datetime.fromtimestamp(NOW + 42, tz=timezone.utc)
    imf = format_datetime(later, usegmt=True)  # e.g. "Thu, 17 Nov 2026 08:00:42 GMT"
    assert imf.endswith(" GMT")
    assert parse_retry_after(imf, NOW) == 42.0
    assert parse_retry_after(format_datetime(datetime.fromtimestamp(NOW - 30, tz=timezone.utc), usegmt=True),
                             NOW) == 0.0  # in the past: no wait
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0 - 10) == 10.0  # RFC 9110's example


# --- classify ----------------------------------------------------------------------------------
def results_body(*statuses):
    out = []
    for i, s in enumerate(statuses):
        r = {"index": i, "click_id": f"c{i}", "status": s}
        if s == "rejected":
            r["reasons"] = [{"field": "token", "reason": "bad_signature"}]
        if s == "retryable":
            r["reason"] = "dedup store unavailable"
        out.append(r)
    return {"request_id": "r", "results": out}


def test_classify_per_item_results():
    d = classify(202, results_body("accepted", "duplicate", "rejected", "retryable"), 4)
    assert d == [Decision(True, "accepted"), Decision(True, "duplicate"),
                 Decision(True, "rejected", ({"field": "token", "reason": "bad_signature"},)),
                 Decision(False, "retryable", ({"field": "item", "reason": "dedup store unavailable"},))]


def test_classify_per_item_results_win_over_the_status():
    # 400 "no valid click" carries per-item results: each is final rejected with its reasons
    body = {"error": "no valid click in request", "status": 400, **results_body("rejected", "rejected")}
    assert [(x.final, x.status) for x in classify(400, body, 2)] == [(True, "rejected")] * 2
    # 503 with results: nothing accepted, one retryable, one rejected -> only the retryable is resent
    assert [(x.final, x.status) for x in classify(503, results_body("retryable", "rejected"), 2)] == [
        (False, "retryable"), (True, "rejected")]


def test_classify_matches_results_by_index_and_retries_missing_ones():
    body = {"results": [{"index": 2, "status": "accepted"}, {"index": 0, "status": "duplicate"},
                        {"index": 9, "status": "accepted"}, "junk"]}
    d = classify(202, body, 3)
    assert [(x.final, x.status) for x in d] == [(True, "duplicate"), (False, "retryable"), (True, "accepted")]
    assert [(x.final, x.status) for x in classify(202, {"results": [{"index": 0, "status": "weird"}]}, 1)] == [
        (False, "retryable")]


@pytest.mark.parametrize("status", [None, 408, 429, 500, 502, 503, 504, 599])
def test_classify_whole_request_retried(status):
    d = classify(status, {"error": "busy", "status": status} if status else None, 3, error="timed out")
    assert [(x.final, x.status) for x in d] == [(False, "retryable")] * 3
    expected = "no response: timed out" if status is None else f"HTTP {status}: busy"
    assert d[0].reasons == ({"field": "request", "reason": expected},)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 415, 422, 301])
def test_classify_whole_request_final_rejected(status):
    d = classify(status, {"error": f"refused {status}", "status": status}, 2)
    assert d == [Decision(True, "rejected", ({"field": "request", "reason": f"HTTP {status}: refused {status}"},))] * 2
    assert classify(status, None, 1) == [Decision(True, "rejected", ({"field": "request", "reason": f"HTTP {status}"},))]


def test_classify_success_without_results_is_resent():
    assert [(x.final, x.status) for x in classify(202, {"ok": True}, 2)] == [(False, "retryable")] * 2
    assert [(x.final, x.status) for x in classify(200, None, 1)] == [(False, "retryable")]


# --- batch splitting ---------------------------------------------------------------------------
def test_batches_split_by_count_and_bytes():
    small = [{"click_id": f"c{i}"} for i in range(1201)]
    assert [len(b) for b in batches(small)] == [500, 500, 201]
    assert [i for b in batches(small) for i in b] == list(range(1201))
    big = [{"click_id": f"b{i}", "pad": "x" * 100_000} for i in range(20)]
    groups = batches(big)
    assert [i for b in groups for i in b] == list(range(20))
    for g in groups:
        assert len(encode_json({"clicks": [big[i] for i in g]})) <= MAX_BATCH_BYTES + 100
    assert [len(g) for g in groups] == [8, 8, 4]  # 8 * ~100 KB fit under 900 KB, 9 do not
    huge = [{"click_id": "h", "pad": "x" * 2_000_000}, {"click_id": "s"}]
    assert batches(huge) == [[0], [1]]
