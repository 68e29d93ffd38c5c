"""POST /v1/public/clicks (issue 17: browsers and apps send clicks with no secret, the token is the
proof) through the real ingest handler against in-process moto, with the clock pinned
(tests/clock.py): in every click_token_mode a click needs a valid token (no token or a bad one:
`rejected` with its reason, per item); the stream record's ids and price are the token's, its ip
and user agent the request's (the body's are ignored); the key set unreadable makes clicks
`retryable` (503 when nothing was accepted); refused items are archived under the route's name;
per-outcome metrics; CORS `*` on this route's answers and preflight only; a hypothesis fuzz:
never a 5xx."""
from __future__ import annotations

import importlib.util
import json

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import public_route
from common.click_token import ClickClaims, StaticKeys, issue
from ingest import handler
from ingest.service import IngestService
from ingest.tokens import OBSERVE, TokenVerifier
from ingest.validation import ParsedBatch
from local.lambda_runtime import LambdaContext
from local.readback import read_stream
from tests.clock import MONTH_END
from tests.conftest import api_event
from tests.integration.test_ingest_fuzz import click as fuzz_click
from tests.integration.test_ingest_fuzz import nested as fuzz_nested
from tests.integration.test_ingest_fuzz import to_json as fuzz_json
from tests.integration.test_ingest_tokens import _tamper
from tests.integration.test_refused_archive import (K1, K9, NAMES, archived, clock, compact,  # noqa: F401
                                                    env, expected, metric_names)

PATH = public_route.PATH
ROUTE = "POST /v1/public/clicks"
IP, UA = "198.51.100.7", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
PAGE = "https://news.example/article"
HEADERS = {"Content-Type": "application/json", "User-Agent": UA, "Origin": "https://news.example"}
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After"}
PREFLIGHT = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST",
             "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"}
MODES = ["off", "observe", "enforce"]


def token(now_s: int, *, imp="imp-1", ad="ad-A", cmp="cmp-7", adv="adv-3", price=250_000,
          kid="k1", key=K1, iat=None, ttl=3600) -> str:
    iat = now_s - 60 if iat is None else iat
    return issue(ClickClaims(impression_id=imp, ad_id=ad, campaign_id=cmp, advertiser_id=adv,
                             price_micros=price, issued_at=iat, expires_at=iat + ttl,
                             landing_url="https://shop.example/landing"),
                 StaticKeys({kid: key}, kid))


def click(i: int, now_ms: int, tok=None, **body) -> dict:
    c = {"click_id": f"c{i}", "user_id": f"u{i}", "timestamp": now_ms - 1000}
    if tok is not None:
        c["token"] = tok
    c.update(body)
    return c


def call(body, *, path=PATH, method="POST", headers=None, source_ip=IP, module=handler):
    """(status, headers (last value of each), body text, request id) of one request."""
    event = api_event(body, path=path, method=method, source_ip=source_ip,
                      headers=HEADERS if headers is None else headers)
    resp = module.lambda_handler(event, LambdaContext("clickagg-ingest"))
    out = dict(resp.get("headers") or {})
    for k, v in (resp.get("multiValueHeaders") or {}).items():
        out[k] = v[-1]
    return resp["statusCode"], out, resp.get("body"), event["requestContext"]["requestId"]


def post(body, **kw):
    status, headers, text, rid = call(body, **kw)
    return status, json.loads(text), headers, rid


def cors_of(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k.startswith("Access-Control-") or k == "Vary"}


def records() -> dict[str, dict]:
    return {r["click_id"]: r for rs in read_stream(NAMES.clicks_stream).values() for r in rs}


def results(answer) -> list[tuple]:
    return [(r["click_id"], r["status"], [x["reason"] for x in r.get("reasons", [])] or r.get("reason"))
            for r in answer["results"]]


# --- valid tokens -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_valid_tokens_are_accepted_with_the_tokens_ids_and_the_requests_network_facts(env, clock, mode):
    env(mode)
    now, now_s = clock.ms(), clock.ms() // 1000
    batch = [
        # ids and cost left out (the token says them); the body's ip and user agent are ignored
        click(1, now, token(now_s), ip="192.0.2.1", user_agent="body-agent/1.0", referrer="https://app.example/feed"),
        # ids and cost sent, equal to the token's; no referrer: the request's Referer header
        click(2, now, token(now_s, imp="imp-2", ad="ad-B", price=1_500_000), ad_id="ad-B",
              campaign_id="cmp-7", advertiser_id="adv-3", cost="1.5"),
    ]
    status, answer, headers, rid = post({"clicks": batch}, headers={**HEADERS, "Referer": PAGE})
    assert (status, answer) == (202, {
        "request_id": rid, "accepted": 2, "duplicate": 0, "rejected": 0, "retryable": 0, "results": [
            {"index": 0, "click_id": "c1", "status": "accepted"},
            {"index": 1, "click_id": "c2", "status": "accepted"}]})
    assert cors_of(headers) == CORS
    common = {"ip": IP, "user_agent": UA, "ingest_time": now, "request_id": rid, "source_ip": IP,
              "campaign_id": "cmp-7", "advertiser_id": "adv-3", "issued_at": (now_s - 60) * 1000}
    assert records() == {
        "c1": {"click_id": "c1", "ad_id": "ad-A", "user_id": "u1", "event_time": now - 1000,
               "cost_micros": 250_000, "referrer": "https://app.example/feed", "impression_id": "imp-1",
               **common},
        "c2": {"click_id": "c2", "ad_id": "ad-B", "user_id": "u2", "event_time": now - 1000,
               "cost_micros": 1_500_000, "referrer": PAGE, "impression_id": "imp-2", **common},
    }
    assert archived() == []


def test_the_token_not_the_body_says_the_price(env, clock):
    """The body's cost may not steer the price: a different one is token_mismatch, and a click
    without one is billed at the token's."""
    now, now_s = clock.ms(), clock.ms() // 1000
    status, answer, _, _ = post({"clicks": [click(1, now, token(now_s), cost="9999"),
                                            click(2, now, token(now_s, imp="imp-2"))]})
    assert status == 202 and results(answer) == [("c1", "rejected", ["token_mismatch"]),
                                                 ("c2", "accepted", None)]
    assert {cid: r["cost_micros"] for cid, r in records().items()} == {"c2": 250_000}


def test_body_ip_and_user_agent_are_ignored_even_when_invalid(env, clock):
    """Not validated, not kept: a page's script cannot claim them, nor be refused for them."""
    now, now_s = clock.ms(), clock.ms() // 1000
    status, answer, _, _ = post(click(1, now, token(now_s), ip="not an ip", user_agent=["x"] * 3))
    assert status == 202 and results(answer) == [("c1", "accepted", None)]
    assert (records()["c1"]["ip"], records()["c1"]["user_agent"]) == (IP, UA)


def test_request_user_agent_is_cut_to_512_and_may_be_absent(env, clock):
    now, now_s = clock.ms(), clock.ms() // 1000
    long_ua = "Mozilla/5.0 " + "x" * 600
    assert post(click(1, now, token(now_s)), headers={**HEADERS, "User-Agent": long_ua})[0] == 202
    no_ua = {"Content-Type": "application/json"}
    assert post(click(2, now, token(now_s, imp="imp-2")), headers=no_ua, source_ip="2001:db8::7")[0] == 202
    recs = records()
    assert (recs["c1"]["ip"], recs["c1"]["user_agent"]) == (IP, long_ua[:512])
    assert (recs["c2"]["ip"], recs["c2"]["user_agent"], recs["c2"]["source_ip"]) == ("2001:db8::7", None, "2001:db8::7")


def test_the_api_key_route_keeps_the_bodys_ip_and_user_agent(env, clock):
    """POST /v1/clicks (ad servers forward their user's): unchanged, in enforce too."""
    env("enforce")
    now, now_s = clock.ms(), clock.ms() // 1000
    status, answer, _, _ = post(click(1, now, token(now_s), ip="192.0.2.1", user_agent="their-user/1.0"),
                                path="/v1/clicks")
    assert status == 202 and answer["accepted"] == 1
    rec = records()["c1"]
    assert (rec["ip"], rec["user_agent"], rec["source_ip"]) == ("192.0.2.1", "their-user/1.0", IP)


def test_same_click_again_is_a_duplicate(env, clock):
    now, now_s = clock.ms(), clock.ms() // 1000
    body = click(1, now, token(now_s))
    assert results(post(body)[1]) == [("c1", "accepted", None)]
    status, answer, _, _ = post({"clicks": [body, body]})
    assert status == 202 and results(answer) == [("c1", "duplicate", "click_id already accepted"),
                                                 ("c1", "duplicate", "repeated in this request")]
    assert list(records()) == ["c1"]


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "text/plain", "TEXT/PLAIN; charset=utf-8"])
def test_text_plain_json_is_taken_like_application_json(env, clock, content_type):
    """What the browser SDK sends (a CORS simple request, and sendBeacon's only cross-origin JSON
    carrier): the same body under text/plain gets the same answer and the same record."""
    env("off")
    now, now_s = clock.ms(), clock.ms() // 1000
    body = {"clicks": [click(1, now, token(now_s))]}
    status, answer, headers, rid = post(body, headers={"Content-Type": content_type, "User-Agent": UA})
    assert (status, results(answer), cors_of(headers)) == (202, [("c1", "accepted", None)], CORS)
    status, answer, _, _ = post(body)  # the same click as application/json: already there
    assert (status, results(answer)) == (202, [("c1", "duplicate", "click_id already accepted")])
    rec = records()["c1"]
    assert (rec["ad_id"], rec["cost_micros"], rec["request_id"], rec["user_agent"]) == ("ad-A", 250_000, rid, UA)


def test_post_clicks_keeps_refusing_text_plain(env, clock):
    """The API-key route is for servers, which send application/json: text/plain stays a 415."""
    env("off")
    now, now_s = clock.ms(), clock.ms() // 1000
    status, answer, _, _ = post({"clicks": [click(1, now, token(now_s))]}, path="/v1/clicks",
                                headers={"Content-Type": "text/plain", "User-Agent": UA})
    assert (status, answer["error"]) == (415, "Content-Type must be application/json, got 'text/plain'")
    assert records() == {}


# --- no token, bad tokens: per item -----------------------------------------------------------
BAD = {
    "missing_token": lambda s: None,
    "malformed": lambda s: "v1.garbage",
    "unknown_key": lambda s: token(s, kid="k9", key=K9),
    "bad_signature": lambda s: _tamper(token(s), ppc=2_500_000),
    "invalid_token": lambda s: token(s, iat=s + 400),
    "expired_token": lambda s: token(s, iat=s - 2 * 86400),
}


@pytest.mark.parametrize("reason", [*BAD, "token_mismatch", "not_a_string"])
@pytest.mark.parametrize("mode", MODES)
def test_a_click_without_a_valid_token_is_rejected_with_its_reason(env, clock, metric_names, mode, reason):
    env(mode)
    now, now_s = clock.ms(), clock.ms() // 1000
    if reason == "token_mismatch":
        item = click(1, now, token(now_s), advertiser_id="adv-other")
    elif reason == "not_a_string":  # any JSON value is kept as sent and judged as a token
        item, reason = click(1, now, {"v": 1}), "malformed"
    else:
        item = click(1, now, BAD[reason](now_s))
    status, answer, headers, rid = post({"clicks": [item]})
    assert (status, answer) == (400, {
        "error": "no valid click in request", "status": 400, "request_id": rid, "accepted": 0,
        "duplicate": 0, "rejected": 1, "retryable": 0, "results": [
            {"index": 0, "click_id": "c1", "status": "rejected",
             "reasons": [{"field": "token", "reason": reason}]}]})
    assert cors_of(headers) == CORS
    assert records() == {}
    [(_, record)] = archived()
    assert (record["route"], record["http_status"], record["reason_codes"], record["raw"]) == (
        ROUTE, 400, [f"token:{reason}"], compact(item))
    assert [m for m in metric_names if m[0].startswith("Public")] == [
        ("PublicClicks_accepted", 0), ("PublicClicks_duplicate", 0), ("PublicClicks_rejected", 1),
        ("PublicClicks_retryable", 0), (f"PublicClickToken_{reason}", 1)]


def test_mixed_batch_each_item_its_own_outcome_and_refusals_archived(env, clock, metric_names):
    env("observe")
    now, now_s = clock.ms(), clock.ms() // 1000
    batch = [
        click(0, now, token(now_s, imp="imp-0")),
        click(1, now),  # no token
        click(2, now, _tamper(token(now_s), ppc=1)),
        "not a click",
        click(4, now, token(now_s, imp="imp-4"), user_id=""),  # a field error comes first
        click(0, now, token(now_s, imp="imp-0")),  # repeated in this request
        click(6, now, token(now_s, imp="imp-6"), ip="bogus"),  # ignored: accepted
        click(7, now, token(now_s, iat=now_s - 2 * 86400)),
    ]
    status, answer, headers, rid = post({"clicks": batch}, source_ip="203.0.113.50")
    assert status == 202 and cors_of(headers) == CORS
    assert results(answer) == [
        ("c0", "accepted", None), ("c1", "rejected", ["missing_token"]), ("c2", "rejected", ["bad_signature"]),
        (None, "rejected", ["must be a JSON object"]),
        ("c4", "rejected", ["String should have at least 1 character"]),
        ("c0", "duplicate", "repeated in this request"), ("c6", "accepted", None),
        ("c7", "rejected", ["expired_token"])]
    assert (answer["accepted"], answer["duplicate"], answer["rejected"], answer["retryable"]) == (2, 1, 5, 0)
    assert sorted(records()) == ["c0", "c6"] and records()["c6"]["ip"] == "203.0.113.50"

    def rec(i, reasons):
        return (("2026-12-31", "23"), expected(
            rid, now, route=ROUTE, http_status=202, item_index=i,
            click_id=batch[i]["click_id"] if isinstance(batch[i], dict) else None,
            reasons=reasons, raw=compact(batch[i]), source_ip="203.0.113.50", user_agent=UA))

    assert archived() == [
        rec(1, [("token", "missing_token", "no token")]),
        rec(2, [("token", "bad_signature", "key id 'k1'")]),
        rec(3, [("click", "not_an_object", "must be a JSON object")]),
        rec(4, [("user_id", "string_too_short", "String should have at least 1 character")]),
        rec(7, [("token", "expired_token", f"expired at {now_s - 2 * 86400 + 3600}")]),
    ]
    assert [m for m in metric_names if m[0].startswith("Public")] == [
        ("PublicClicks_accepted", 2), ("PublicClicks_duplicate", 1), ("PublicClicks_rejected", 5),
        ("PublicClicks_retryable", 0), ("PublicClickToken_bad_signature", 1),
        ("PublicClickToken_expired_token", 1), ("PublicClickToken_missing_token", 1),
        ("PublicClickToken_valid", 2)]
    # the API-key route's metrics are its own
    assert not [m for m in metric_names if m[0].startswith(("Clicks", "ClickToken_"))]


# --- the key set unreadable -------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_keys_unavailable_is_retryable_per_item_and_503_when_nothing_accepted(env, clock, metric_names, mode):
    boto3.client("secretsmanager").delete_secret(SecretId=NAMES.click_token_secret,
                                                 ForceDeleteWithoutRecovery=True)
    env(mode)  # a new container: nothing cached
    now, now_s = clock.ms(), clock.ms() // 1000
    # no token: refused before the key set is needed; then the first read fails, and every
    # later click of the request is retryable (the key set is read once per request)
    batch = [click(0, now), click(1, now, token(now_s)), click(2, now), click(3, now, token(now_s, imp="imp-3"))]
    status, answer, headers, rid = post({"clicks": batch})
    assert (status, answer) == (503, {
        "request_id": rid, "accepted": 0, "duplicate": 0, "rejected": 1, "retryable": 3, "results": [
            {"index": 0, "click_id": "c0", "status": "rejected",
             "reasons": [{"field": "token", "reason": "missing_token"}]},
            {"index": 1, "click_id": "c1", "status": "retryable", "reason": "click token keys unavailable"},
            {"index": 2, "click_id": "c2", "status": "retryable", "reason": "click token keys unavailable"},
            {"index": 3, "click_id": "c3", "status": "retryable", "reason": "click token keys unavailable"}]})
    assert headers["Retry-After"] == "1" and cors_of(headers) == CORS
    assert records() == {}
    assert [r["click_id"] for _, r in archived()] == ["c0"]  # retryable clicks are not refused
    assert [m for m in metric_names if m[0].startswith("Public")] == [
        ("PublicClicks_accepted", 0), ("PublicClicks_duplicate", 0), ("PublicClicks_rejected", 1),
        ("PublicClicks_retryable", 3), ("PublicClickToken_keys_unavailable", 3),
        ("PublicClickToken_missing_token", 1)]


# --- whole requests -----------------------------------------------------------------------------
@pytest.mark.parametrize("body, headers, status, code", [
    ("{bad", None, 400, "invalid_json"),
    (None, None, 400, "empty_body"),
    ('{"clicks": []}', None, 400, "no_clicks"),
    ('{"click_id": "c1"}', {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": UA}, 415,
     "unsupported_media_type"),
    (compact({"clicks": [{}] * 501}), None, 413, "too_many_clicks"),
], ids=["bad-json", "empty", "no-clicks", "415", "501-clicks"])
def test_a_refused_request_is_archived_under_the_public_route(env, clock, metric_names, body, headers,
                                                              status, code):
    got, text_headers, text, rid = call(body, headers=headers)
    answer = json.loads(text)
    assert (got, answer["status"]) == (status, status) and cors_of(text_headers) == CORS
    [(_, record)] = archived()
    assert (record["route"], record["request_id"], record["http_status"], record["item_index"]) == (
        ROUTE, rid, status, None)
    assert record["reason_codes"][0].endswith(f":{code}")
    assert ("PublicRequestsRefused", 1) in metric_names and ("RequestsRefused", 1) not in metric_names


# --- CORS: this route only ----------------------------------------------------------------------
def cold_start(monkeypatch, origins, service):
    """A new container of the ingest Lambda with CORS_ALLOWED_ORIGINS = origins (None: unset):
    the resolver reads it at import, so a fresh copy of the module, on `service`."""
    if origins is None:
        monkeypatch.delenv("CORS_ALLOWED_ORIGINS", raising=False)
    else:
        monkeypatch.setenv("CORS_ALLOWED_ORIGINS", origins)
    spec = importlib.util.find_spec("ingest.handler")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.get_service = lambda: service
    return module


@pytest.mark.parametrize("origins", [None, "https://ops.example.com"])
def test_cors_star_on_the_public_route_only(env, clock, monkeypatch, origins):
    """Whatever CORS_ALLOWED_ORIGINS lists for the other routes, the public route answers `*`
    (never an echoed Origin, no Vary, no credentials), its preflight included; the other routes
    are as before: only the configured origins, and nothing at all without."""
    fn = cold_start(monkeypatch, origins, env("observe"))
    now, now_s = clock.ms(), clock.ms() // 1000
    pub = {**HEADERS, "Origin": "https://publisher.example"}
    status, headers, _, _ = call(click(1, now, token(now_s)), headers=pub, module=fn)
    assert status == 202 and cors_of(headers) == CORS
    status, headers, _, _ = call("{bad", headers=pub, module=fn)
    assert status == 400 and cors_of(headers) == CORS
    # the preflight a browser sends before a JSON POST: what API Gateway's MOCK answers too
    ask = {"Origin": "https://publisher.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type"}
    status, headers, text, _ = call(None, method="OPTIONS", headers=ask, module=fn)
    assert (status, text) == (204, "") and cors_of(headers) == PREFLIGHT == public_route.preflight_headers()

    # the other routes: a publisher's origin gets nothing
    keyed = click(2, now, token(now_s, imp="imp-2"), ad_id="ad-A", campaign_id="cmp-7",
                  advertiser_id="adv-3", cost="0.25")
    status, headers, _, _ = call(keyed, path="/v1/clicks", headers=pub, module=fn)
    assert status == 202 and cors_of(headers) == {}
    status, headers, _, _ = call(None, path="/v1/c", method="GET", headers=pub, module=fn)
    assert status == 400 and cors_of(headers) == {}
    status, headers, _, _ = call(None, path="/v1/clicks", method="OPTIONS", headers=ask, module=fn)
    if origins is None:
        assert status == 404 and cors_of(headers) == {}
    else:  # Powertools' preflight for the configured origins: no Allow-Origin for this one
        assert status == 204 and cors_of(headers) == {"Access-Control-Allow-Methods": "GET,OPTIONS,POST"}
        ops = {**HEADERS, "Origin": origins}
        status, headers, _, _ = call("{bad", path="/v1/clicks", headers=ops, module=fn)
        assert status == 400 and cors_of(headers)["Access-Control-Allow-Origin"] == origins
        # a configured origin gets the public route's `*` like any page
        status, headers, _, _ = call("{bad", headers=ops, module=fn)
        assert status == 400 and cors_of(headers) == CORS


# --- the service refuses to run the public route unverified -------------------------------------
def test_ingest_public_needs_an_enforcing_verifier():
    batch = ParsedBatch([], [], [])
    service = IngestService(None, None, None)
    with pytest.raises(ValueError, match="enforcing"):
        service.ingest_public(batch, None)
    service.public_tokens = TokenVerifier(OBSERVE, StaticKeys({"k1": K1}, "k1"), None)
    with pytest.raises(ValueError, match="enforcing"):
        service.ingest_public(batch, None)


# --- fuzz: never a 5xx ---------------------------------------------------------------------------
_S = int(MONTH_END.timestamp())  # the env fixture's pinned clock
_NOW_MS = _S * 1000
tokens = st.one_of(
    st.sampled_from([token(_S, imp=f"imp-{i}") for i in range(4)]
                    + [token(_S, kid="k9", key=K9), _tamper(token(_S), ppc=1), token(_S, iat=_S - 2 * 86400),
                       token(_S, iat=_S + 400), "v1.garbage", ""]),
    st.text(max_size=30), st.integers(), st.none(), fuzz_nested)
public_click = st.one_of(
    fuzz_click,
    st.fixed_dictionaries({"click_id": st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
                           "user_id": st.sampled_from(["u1", "u2"]),
                           "timestamp": st.integers(_NOW_MS - 8 * 86_400_000, _NOW_MS + 600_000)},
                          optional={"token": tokens, "ad_id": st.sampled_from(["ad-A", "ad-B", 7]),
                                    "cost": st.sampled_from(["0.25", "1", "x", None]),
                                    "ip": st.one_of(st.text(max_size=10), st.integers()),
                                    "user_agent": st.one_of(st.text(max_size=10), st.lists(st.integers())),
                                    "referrer": st.one_of(st.text(max_size=10), st.integers())}))
public_payload = st.one_of(
    public_click, st.fixed_dictionaries({"clicks": st.lists(st.one_of(public_click, fuzz_nested), max_size=8)}),
    st.lists(public_click, max_size=5), fuzz_nested)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=public_payload, mode=st.sampled_from(MODES),
       content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"]))
def test_fuzz_never_5xx_cors_on_every_answer_and_only_valid_tokens_reach_the_stream(env, body, mode,
                                                                                    content_type):
    env(mode)
    before = set(records())
    status, headers, text, _ = call(fuzz_json(body), headers={"Content-Type": content_type, "User-Agent": UA})
    out = json.loads(text)
    assert status in (202, 400, 413, 415), out
    assert cors_of(headers) == CORS
    new = {cid: r for cid, r in records().items() if cid not in before}
    if "results" in out:
        accepted = {r["click_id"] for r in out["results"] if r["status"] == "accepted"}
        assert set(new) == accepted
        assert all(r["reasons"] for r in out["results"] if r["status"] == "rejected")
        assert all(r["status"] != "retryable" for r in out["results"])
        for rec in new.values():  # only what a valid token says; only the request's network facts
            assert rec["impression_id"] in {"imp-0", "imp-1", "imp-2", "imp-3"}
            assert (rec["ad_id"], rec["cost_micros"], rec["ip"], rec["user_agent"]) == ("ad-A", 250_000, IP, UA)
    else:
        assert new == {} and out["error"]
