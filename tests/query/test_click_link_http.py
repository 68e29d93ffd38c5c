"""GET /v1/c over HTTP through the local stack's API Gateway (the ingest function's route, the
stack's click-token secret): a token issued with the secret's key is redirected to its landing
URL, twice (the second is a duplicate), and a non-token gets a 400 without Location."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import boto3
import pytest

from common.click_token import ClickClaims, issue, parse_key_set

pytestmark = pytest.mark.slow


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get(url: str):
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        resp = opener.open(url, timeout=30)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()
    return resp.status, resp.headers, resp.read()


def test_click_link_redirects_over_http(local_stack):
    raw = boto3.client("secretsmanager").get_secret_value(
        SecretId=local_stack.names.click_token_secret)["SecretString"]
    now = int(time.time())
    tok = issue(ClickClaims(impression_id="imp-http-1", ad_id="ad-1", campaign_id="c",
                            advertiser_id="v", price_micros=1000, issued_at=now - 5,
                            expires_at=now + 600, landing_url="https://shop.example/p?q=1"),
                parse_key_set(raw))
    for _ in range(2):
        status, headers, _ = _get(f"{local_stack.api.url}/v1/c?t={tok}")
        assert status == 302 and headers["Location"] == "https://shop.example/p?q=1"
        assert headers["Cache-Control"] == "no-store"
    status, headers, body = _get(f"{local_stack.api.url}/v1/c?t=https://evil.example/")
    assert status == 400 and "Location" not in headers
    assert json.loads(body)["reason"] == "malformed"
