"""GET /v1/c?t=TOKEN (click links, issue 17) through the real ingest handler against in-process
moto: 302 to exactly the token's landing URL with the click on the stream (the token's ids and
price, click_id from the impression, stand-in user_id); the same link twice is one click; every
bad token gets its 4xx reason and publishes nothing; verification applies in every
click_token_mode; a click that cannot be recorded is still redirected (and counted)."""
from __future__ import annotations

import json
import time
from urllib.parse import quote

import boto3
import pytest

from common.click_token import ClaimsError, ClickClaims, StaticKeys, issue
from ingest import handler
from ingest.redirect import click_id_for, stand_in_user_id
from local.lambda_runtime import LambdaContext
from tests.conftest import api_event
from tests.integration.test_ingest_tokens import (K1, K2, K3, NAMES, _tamper, metric_names,  # noqa: F401
                                                  records, stack, token)

LANDING = "https://shop.example/landing"
UA = "Mozilla/5.0 (X11; Linux x86_64)"


def follow(t=None, *, query=None, headers=None, ip="198.51.100.7"):
    q = query if query is not None else f"t={quote(t, safe='')}"
    hdrs = {"User-Agent": UA, "Referer": "https://news.example/article"} if headers is None else headers
    resp = handler.lambda_handler(api_event(None, path="/v1/c", method="GET", headers=hdrs, query=q,
                                            source_ip=ip), LambdaContext("clickagg-ingest"))
    headers_out = {k.lower(): v for k, v in (resp.get("headers") or {}).items()}
    for k, v in (resp.get("multiValueHeaders") or {}).items():
        headers_out[k.lower()] = v[-1]
    return resp["statusCode"], headers_out, resp.get("body")


@pytest.mark.parametrize("mode", ["off", "observe", "enforce"])
def test_valid_token_redirects_to_its_landing_url_and_publishes_the_click(stack, mode):
    stack["mode"](mode)
    t0 = int(time.time() * 1000)
    status, headers, _ = follow(token())
    assert status == 302
    assert headers["location"] == LANDING
    assert headers["cache-control"] == "no-store" and headers["referrer-policy"] == "no-referrer"
    [rec] = records().values()
    assert rec["click_id"] == click_id_for("imp-1")
    assert {k: rec[k] for k in ("ad_id", "campaign_id", "advertiser_id", "cost_micros")} == {
        "ad_id": "ad-A", "campaign_id": "cmp-7", "advertiser_id": "adv-3", "cost_micros": 250_000}
    assert rec["user_id"] == stand_in_user_id("198.51.100.7", UA)
    assert (rec["ip"], rec["user_agent"], rec["referrer"]) == (
        "198.51.100.7", UA, "https://news.example/article")
    assert t0 <= rec["event_time"] <= int(time.time() * 1000)


def test_same_link_twice_is_one_click_and_both_redirect(stack, metric_names):
    stack["mode"]("off")
    tok = token()
    for _ in range(2):
        status, headers, _ = follow(tok)
        assert status == 302 and headers["location"] == LANDING
    assert len(records()) == 1
    # a re-signed token of the same impression is the same click too
    assert follow(token(iat=int(time.time()) - 30))[0] == 302 and len(records()) == 1
    counts = [n for n, _ in metric_names if n.startswith("ClickLink")]
    assert counts == ["ClickLink_accepted", "ClickLink_duplicate", "ClickLink_duplicate"]


@pytest.mark.parametrize("make, status, reason", [
    (lambda: _tamper(token(), ppc=2_500_000), 403, "bad_signature"),
    (lambda: _tamper(token(), url="https://evil.example/"), 403, "bad_signature"),
    (lambda: token(kid="k1", key=K2), 403, "bad_signature"),
    (lambda: token(iat=int(time.time()) - 2 * 86400), 410, "expired_token"),
    (lambda: token(kid="k9", key=K3), 403, "unknown_key"),
    (lambda: "v1.garbage", 400, "malformed"),
    (lambda: "https://evil.example/", 400, "malformed"),
])
@pytest.mark.parametrize("mode", ["off", "enforce"])
def test_bad_token_gets_its_reason_and_nothing_is_published(stack, mode, make, status, reason):
    stack["mode"](mode)
    got, headers, body = follow(make())
    assert got == status and "location" not in headers
    assert json.loads(body) == {"error": f"click token refused: {reason}", "status": status,
                                "reason": reason}
    assert headers["cache-control"] == "no-store"
    assert records() == {}


@pytest.mark.parametrize("query", ["", "t=", "x=1", "t=a&t=b", "url=https://evil.example/"])
def test_no_single_t_is_400_without_redirect(stack, query):
    stack["mode"]("off")
    status, headers, body = follow(query=query)
    assert status == 400 and "location" not in headers
    assert json.loads(body)["reason"] == "missing_token"
    assert records() == {}


def test_other_query_parameters_never_steer_the_redirect(stack):
    stack["mode"]("off")
    q = f"t={quote(token(), safe='')}&url=https://evil.example/&redirect=https://evil.example/"
    status, headers, _ = follow(query=q)
    assert status == 302 and headers["location"] == LANDING


@pytest.mark.parametrize("url", ["http://shop.example/", "https://evil.example@shop.example/",
                                 "javascript:alert(1)", "//evil.example/", "https://shop.example/a b",
                                 "https://shop.example/\r\nSet-Cookie:x=1"])
def test_a_landing_url_the_library_refuses_cannot_be_issued(url):
    claims = ClickClaims(impression_id="i", ad_id="a", campaign_id="c", advertiser_id="v",
                         price_micros=1, issued_at=1_800_000_000, expires_at=1_800_000_600,
                         landing_url=url)
    with pytest.raises(ClaimsError, match="landing_url"):
        issue(claims, StaticKeys({"k1": K1}, "k1"))


def test_unreadable_key_set_is_503_without_redirect(stack):
    stack["mode"]("off")
    stack["sm"].delete_secret(SecretId=NAMES.click_token_secret, ForceDeleteWithoutRecovery=True)
    status, headers, body = follow(token())
    assert status == 503 and "location" not in headers and headers["retry-after"] == "1"
    assert json.loads(body)["reason"] == "keys_unavailable"
    assert records() == {}


def test_stream_down_still_redirects_counts_and_releases_the_claim(stack, metric_names, monkeypatch):
    stack["mode"]("off")
    service = handler.get_service()
    from botocore.exceptions import ClientError

    def put_records(**_):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}},
                          "PutRecords")
    monkeypatch.setattr(service.publisher, "_kinesis", type("K", (), {"put_records": staticmethod(put_records)})())
    monkeypatch.setattr(service.publisher, "_sleep", lambda s: None)
    status, headers, _ = follow(token())
    assert status == 302 and headers["location"] == LANDING
    assert ("ClickLinkUnrecorded", 1) in metric_names and ("ClickLink_retryable", 1) in metric_names
    # the claim was released: once the stream is back, the same link records its click
    monkeypatch.undo()
    stack["mode"]("off")
    assert follow(token())[0] == 302 and len(records()) == 1
