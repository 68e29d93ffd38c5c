"""Click tokens through the real ingest handler (issue 17) against in-process moto: the key set
in a Secrets Manager secret, clicks posted as API Gateway events, records read back from the
clicks stream. Modes: enforce (the token's ids and price are the click's), observe (counted,
accepted as without), off (not looked at); key rotation; the secret unreadable."""
from __future__ import annotations

import json
import time

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.click_token import ClickClaims, StaticKeys, issue
from common.config import ResourceNames
from ingest import handler
from local.lambda_runtime import LambdaContext
from local.readback import read_stream
from local.resources import create_dedup_table, create_stream
from tests.conftest import api_event

NAMES = ResourceNames()
K1, K2, K3 = bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96))


def secret_value(keys: dict[str, bytes], active: str) -> str:
    """The flat shape the deployed secret has ({"active": kid, kid: hex})."""
    return json.dumps({"active": active, **{kid: key.hex() for kid, key in keys.items()}})


def token(kid="k1", key=K1, *, ad="ad-A", cmp="cmp-7", adv="adv-3", price=250_000,
          iat=None, ttl=3600) -> str:
    iat = int(time.time()) - 60 if iat is None else iat
    claims = ClickClaims(impression_id="imp-1", ad_id=ad, campaign_id=cmp, advertiser_id=adv,
                         price_micros=price, issued_at=iat, expires_at=iat + ttl,
                         landing_url="https://shop.example/landing")
    return issue(claims, StaticKeys({kid: key}, kid))


def click(i: int, tok=None, **body) -> dict:
    c = {"click_id": f"c{i}", "user_id": f"u{i}", "timestamp": int(time.time() * 1000) - 60_000}
    if tok is not None:
        c["token"] = tok
    c.update(body)
    return c


def legacy(i: int, **over) -> dict:
    """A click as SDKs send it today: ids and cost in the body, no token."""
    return click(i, ad_id="ad-body", campaign_id="cmp-body", advertiser_id="adv-body",
                 cost="0.10", **over)


def post(body):
    resp = handler.lambda_handler(api_event(body), LambdaContext("clickagg-ingest"))
    return resp["statusCode"], json.loads(resp["body"])


def records() -> dict[str, dict]:
    return {r["click_id"]: r for recs in read_stream(NAMES.clicks_stream).values() for r in recs}


def outcomes(body) -> list[tuple]:
    return [(r["click_id"], r["status"], [x["reason"] for x in r.get("reasons", [])])
            for r in body["results"]]


@pytest.fixture
def metric_names(monkeypatch):
    seen: list[tuple[str, float]] = []
    real = handler.metrics.add_metric

    def add_metric(name, unit, value, *a, **kw):
        seen.append((name, value))
        return real(name=name, unit=unit, value=value, *a, **kw)

    monkeypatch.setattr(handler.metrics, "add_metric", add_metric)
    return seen


@pytest.fixture
def stack(aws, monkeypatch):
    """moto dedup table, stream and key-set secret (k1 only); `mode(m)` (re)starts the handler's
    container with click_token_mode m."""
    create_dedup_table(boto3.client("dynamodb"), NAMES.dedup_table)
    create_stream(boto3.client("kinesis"), NAMES.clicks_stream, 1)
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name=NAMES.click_token_secret, SecretString=secret_value({"k1": K1}, "k1"))

    def mode(m: str):
        monkeypatch.setenv("CLICK_TOKEN_MODE", m)
        monkeypatch.setenv("CLICK_TOKEN_SECRET", NAMES.click_token_secret)
        handler.get_service.cache_clear()

    yield {"mode": mode, "sm": sm}
    handler.get_service.cache_clear()


# --- enforce --------------------------------------------------------------------------------------
def test_enforce_valid_token_sets_ids_and_price_of_the_record(stack):
    stack["mode"]("enforce")
    status, body = post({"clicks": [click(1, token()),
                                    click(2, token(price=1_000_000), ad_id="ad-A", cost="1.0")]})
    assert status == 202 and body["accepted"] == 2, body
    recs = records()
    assert {k: recs["c1"][k] for k in ("ad_id", "campaign_id", "advertiser_id", "cost_micros")} \
        == {"ad_id": "ad-A", "campaign_id": "cmp-7", "advertiser_id": "adv-3", "cost_micros": 250_000}
    assert recs["c2"]["cost_micros"] == 1_000_000


def _tamper(tok: str, **changes) -> str:
    """The token's payload with claims changed, its MAC kept (what an attacker can do)."""
    import base64
    v, kid, payload, mac = tok.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    raw = json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()
    return f"{v}.{kid}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}.{mac}"


def test_enforce_rejects_each_bad_token_with_its_reason_and_accepts_the_rest(stack):
    stack["mode"]("enforce")
    old = int(time.time()) - 2 * 86400
    batch = [
        click(0, token()),
        click(1, _tamper(token(), ppc=2_500_000)),  # price raised
        click(2, _tamper(token(), adv="adv-4")),  # other advertiser
        click(3, token(kid="k1", key=K2)),  # signed with a key the set does not hold as k1
        click(4, token(iat=old)),  # expired
        click(5, token(ad="ad-A"), ad_id="ad-B"),  # token of ad A, body says ad B
        click(6, token(), cost="9.99"),  # body price differs from the token's
        click(7, token(kid="k9", key=K3)),  # unknown key id
        click(8, "v1.garbage"),
        click(9),  # no token
        click(10, token()),
    ]
    status, body = post({"clicks": batch})
    assert status == 202
    assert outcomes(body) == [
        ("c0", "accepted", []),
        ("c1", "rejected", ["bad_signature"]),
        ("c2", "rejected", ["bad_signature"]),
        ("c3", "rejected", ["bad_signature"]),
        ("c4", "rejected", ["expired_token"]),
        ("c5", "rejected", ["token_mismatch"]),
        ("c6", "rejected", ["token_mismatch"]),
        ("c7", "rejected", ["unknown_key"]),
        ("c8", "rejected", ["malformed"]),
        ("c9", "rejected", ["missing_token"]),
        ("c10", "accepted", []),
    ]
    assert sorted(records()) == ["c0", "c10"]


def test_enforce_all_rejected_is_400(stack):
    stack["mode"]("enforce")
    status, body = post({"clicks": [legacy(1)]})
    assert status == 400 and outcomes(body) == [("c1", "rejected", ["missing_token"])]


def test_enforce_key_rotation(stack, monkeypatch):
    monkeypatch.setattr(handler, "KEYS_MAX_AGE_S", 0)  # every request reads the secret again
    stack["mode"]("enforce")
    old = token("k1", K1)
    stack["sm"].put_secret_value(SecretId=NAMES.click_token_secret,
                                 SecretString=secret_value({"k1": K1, "k2": K2}, "k2"))
    new = token("k2", K2)
    status, body = post({"clicks": [click(1, old), click(2, new)]})
    assert status == 202 and body["accepted"] == 2
    stack["sm"].put_secret_value(SecretId=NAMES.click_token_secret,
                                 SecretString=secret_value({"k2": K2}, "k2"))
    status, body = post({"clicks": [click(3, old), click(4, new)]})
    assert outcomes(body) == [("c3", "rejected", ["unknown_key"]), ("c4", "accepted", [])]


def test_key_set_is_cached_for_max_age(stack):
    stack["mode"]("enforce")
    assert post({"clicks": [click(1, token())]})[1]["accepted"] == 1
    stack["sm"].put_secret_value(SecretId=NAMES.click_token_secret,
                                 SecretString=secret_value({"k2": K2}, "k2"))
    # within KEYS_MAX_AGE_S the container still uses the set it read: k1 still verifies
    assert post({"clicks": [click(2, token())]})[1]["accepted"] == 1


def test_enforce_secret_unreadable_is_retryable_not_a_crash(stack, metric_names):
    stack["sm"].delete_secret(SecretId=NAMES.click_token_secret, ForceDeleteWithoutRecovery=True)
    stack["mode"]("enforce")
    status, body = post({"clicks": [click(1, token()), click(2, token()), {"bad": 1}]})
    assert status == 503
    assert [(r["status"], r.get("reason")) for r in body["results"][:2]] == \
        [("retryable", "click token keys unavailable")] * 2
    assert ("ClickToken_keys_unavailable", 2) in metric_names
    assert records() == {}


def test_enforce_invalid_secret_value_is_retryable(stack):
    stack["sm"].put_secret_value(SecretId=NAMES.click_token_secret, SecretString="not json")
    stack["mode"]("enforce")
    status, body = post({"clicks": [click(1, token())]})
    assert status == 503 and body["results"][0]["status"] == "retryable"


# --- observe and off --------------------------------------------------------------------------------
def test_observe_accepts_as_today_and_counts_per_reason(stack, metric_names):
    stack["mode"]("observe")
    batch = [legacy(1), legacy(2, token=token()), legacy(3, token=_tamper(token(), ppc=1)),
             legacy(4, token="x"), legacy(5, token=token(ad="ad-body", cmp="cmp-body",
                                                            adv="adv-body", price=100_000))]
    status, body = post({"clicks": batch})
    assert status == 202 and body["accepted"] == 5
    tokens = {n: v for n, v in metric_names if n.startswith("ClickToken_")}
    assert tokens == {"ClickToken_missing_token": 1, "ClickToken_token_mismatch": 1,
                      "ClickToken_bad_signature": 1, "ClickToken_malformed": 1,
                      "ClickToken_valid": 1}
    assert {r["ad_id"] for r in records().values()} == {"ad-body"}  # the body's, as today
    assert {r["cost_micros"] for r in records().values()} == {100_000}


def test_observe_secret_unreadable_still_accepts(stack, metric_names):
    stack["sm"].delete_secret(SecretId=NAMES.click_token_secret, ForceDeleteWithoutRecovery=True)
    stack["mode"]("observe")
    status, body = post({"clicks": [legacy(1, token=token())]})
    assert status == 202 and body["accepted"] == 1
    assert ("ClickToken_keys_unavailable", 1) in metric_names


def test_off_ignores_tokens(stack, metric_names):
    stack["sm"].delete_secret(SecretId=NAMES.click_token_secret, ForceDeleteWithoutRecovery=True)
    stack["mode"]("off")  # the secret is never read
    status, body = post({"clicks": [legacy(1, token="garbage"), legacy(2, token=5), legacy(3)]})
    assert status == 202 and body["accepted"] == 3
    assert not [n for n, _ in metric_names if n.startswith("ClickToken_")]
    status, body = post({"clicks": [click(4, token())]})  # ids from a token are not enough
    assert status == 400


# --- fuzz: any token input is 202/400 with per-item token reasons, never 5xx ------------------------
REASONS = {"malformed", "unknown_key", "bad_signature", "invalid_token", "expired_token",
           "token_mismatch", "missing_token"}
GOOD = None


def _mutate(tok: str, pos: int, ch: str) -> str:
    pos %= len(tok) + 1
    return tok[:pos] + ch + tok[pos + 1:]


token_inputs = st.one_of(
    st.text(max_size=60), st.integers(), st.none(), st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),  # NaN/Infinity: the body is not JSON (400)
    st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.builds(lambda p, c: _mutate(GOOD, p, c), st.integers(0, 400), st.characters()),
    st.builds(lambda n: GOOD[:n], st.integers(0, 400)),
    st.builds(lambda parts: ".".join(parts), st.lists(st.from_regex(r"[A-Za-z0-9_-]{0,50}", fullmatch=True), max_size=6)),
    st.builds(lambda s: f"v1.k1.{s}." + "A" * 43, st.from_regex(r"[A-Za-z0-9_-]{0,80}", fullmatch=True)),
    st.just("v1.k1." + "A" * 5000 + "." + "A" * 43),
)


@pytest.fixture
def fuzz_stack():
    """One fake account for the fuzz test's examples (set up once per test, not per module: a
    module-scoped mock stays active around the other tests of the module when they run in between,
    and they then find its tables)."""
    from moto import mock_aws

    global GOOD
    with mock_aws(), pytest.MonkeyPatch.context() as mp:
        create_dedup_table(boto3.client("dynamodb"), NAMES.dedup_table)
        create_stream(boto3.client("kinesis"), NAMES.clicks_stream, 1)
        boto3.client("secretsmanager").create_secret(
            Name=NAMES.click_token_secret, SecretString=secret_value({"k1": K1}, "k1"))
        mp.setenv("CLICK_TOKEN_MODE", "enforce")
        handler.get_service.cache_clear()
        GOOD = token()
        yield
        handler.get_service.cache_clear()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(token_inputs, min_size=1, max_size=4), n=st.integers(0, 10**9))
def test_fuzzed_tokens_never_5xx(fuzz_stack, tokens, n):
    batch = [click(n * 10 + i, t, **({"ad_id": "ad-A"} if i % 2 else {})) for i, t in enumerate(tokens)]
    for c, t in zip(batch, tokens):
        if t is None:
            c.pop("token", None)
    status, body = post({"clicks": batch})
    assert status in (202, 400), body
    for r in body["results"]:
        assert r["status"] in ("accepted", "rejected", "duplicate"), r
        if r["status"] == "rejected":
            assert [x["field"] for x in r["reasons"]] == ["token"]
            assert {x["reason"] for x in r["reasons"]} <= REASONS, r
