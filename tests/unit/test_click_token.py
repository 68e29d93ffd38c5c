"""Signed click tokens (common.click_token, docs/click-token.md): the test vectors byte for byte
(recomputed here from the spec with hashlib/hmac, not only by the library), each tampered
vector's exact reason, the rules, key sets and rotation, and fuzzing: for any input verify
returns claims or raises TokenRejected, nothing else."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import click_token as ct
from common.click_token import (BAD_SIGNATURE, EXPIRED_TOKEN, INVALID_TOKEN, MALFORMED, REASONS,
                                UNKNOWN_KEY, ClaimsError, ClickClaims, KeyConfigError, SecretKeys,
                                StaticKeys, TokenRejected, VerifyPolicy, issue, parse_key_set,
                                verify)
from tools import click_token_vectors

REPO = Path(__file__).resolve().parents[2]
VECTORS = json.loads((REPO / "docs" / "click-token-vectors.json").read_text())
KEYS = parse_key_set(VECTORS["key_set"])
K1, K2 = bytes(range(32)), bytes(range(32, 64))
IAT = 1_795_000_000
CLAIMS = ClickClaims(impression_id="imp-1", ad_id="ad-A", campaign_id="cmp-1",
                     advertiser_id="adv-1", price_micros=250_000, issued_at=IAT,
                     expires_at=IAT + 3600, landing_url="https://shop.example/landing")


def reason(token, keys=KEYS, now=IAT + 60, **kw) -> str:
    with pytest.raises(TokenRejected) as exc:
        verify(token, keys, now, **kw)
    assert exc.value.reason in REASONS
    return exc.value.reason


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(kid: str, key: bytes, payload: bytes) -> str:
    """The spec's MAC, written out independently of the library."""
    signed = f"v1.{kid}.{b64url(payload)}"
    return f"{signed}.{b64url(hmac.new(key, signed.encode(), hashlib.sha256).digest())}"


# --- test vectors ------------------------------------------------------------------------------
def test_vector_file_is_the_generators_output():
    assert (REPO / "docs" / "click-token-vectors.json").read_text() == click_token_vectors.render()


def test_vector_keys_are_the_documented_bytes():
    assert VECTORS["keys_hex"] == {"k1": K1.hex(), "k2": K2.hex()}
    assert KEYS.get("k1") == K1 and KEYS.get("k2") == K2 and KEYS.active() == ("k2", K2)
    assert VECTORS["policy"] == {"max_age_s": ct.DEFAULT_MAX_AGE_S,
                                 "clock_skew_s": ct.DEFAULT_CLOCK_SKEW_S}


@pytest.mark.parametrize("vec", VECTORS["valid"], ids=lambda v: v["name"])
def test_valid_vector_byte_for_byte(vec):
    claims = ClickClaims(**vec["claims"])
    kid, key = vec["kid"], {"k1": K1, "k2": K2}[vec["kid"]]
    # the spec, independently: canonical JSON of the short names, then the MAC input and MAC
    wire = {ct.FIELDS[a][0]: v for a, v in vec["claims"].items()}
    payload = json.dumps(wire, sort_keys=True, separators=(",", ":")).encode()
    assert payload.decode() == vec["payload"]
    assert f"v1.{kid}.{b64url(payload)}" == vec["signing_input"]
    assert hmac.new(key, vec["signing_input"].encode(), hashlib.sha256).hexdigest() == vec["mac_hex"]
    assert sign_raw(kid, key, payload) == vec["token"]
    # the library
    assert ct.encode_payload(claims) == payload
    assert issue(claims, StaticKeys({kid: key}, active=kid)) == vec["token"]
    for at in vec["accepted_at"]:
        assert verify(vec["token"], KEYS, at) == claims


@pytest.mark.parametrize("vec", VECTORS["invalid"], ids=lambda v: v["name"])
def test_tampered_vector_exact_reason(vec):
    assert reason(vec["token"], now=vec["verify_at"],
                  expected_ad_id=vec.get("expected_ad_id")) == vec["reason"]


@pytest.mark.parametrize("vec", VECTORS["invalid"], ids=[v["name"] for v in VECTORS["invalid"]])
def test_authenticate_is_verification_without_the_time_and_binding_steps(vec):
    """click_token.authenticate (conversions naming an old click's token): every tampered
    vector's reason is kept except those of steps 8-9 (time, other ad), whose authentic tokens
    it returns; the claims are then exactly the payload's."""
    if vec["reason"] == EXPIRED_TOKEN or vec.get("expected_ad_id") or "future" in vec["name"]:
        claims = ct.authenticate(vec["token"], KEYS)
        payload = json.loads(base64.urlsafe_b64decode(vec["token"].split(".")[2] + "=="))
        assert ct.encode_payload(claims) == json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    else:
        with pytest.raises(TokenRejected) as exc:
            ct.authenticate(vec["token"], KEYS)
        assert exc.value.reason == vec["reason"]


def test_vectors_cover_every_reason():
    assert {v["reason"] for v in VECTORS["invalid"]} == set(REASONS)


# --- issue / verify ----------------------------------------------------------------------------
def test_round_trip_with_optional_fields_and_the_active_key():
    claims = dataclasses.replace(CLAIMS, placement_id="slot-1", publisher_id="pub-1")
    token = issue(claims, KEYS)
    assert token.startswith("v1.k2.")
    assert verify(token, KEYS, IAT) == claims
    assert verify(token, KEYS, IAT, expected_ad_id="ad-A") == claims


def test_time_edges_with_skew_and_max_age():
    token = issue(CLAIMS, KEYS)
    policy = VerifyPolicy(max_age_s=600, clock_skew_s=10)
    assert verify(token, KEYS, IAT - 10, policy=policy) == CLAIMS
    assert reason(token, now=IAT - 11, policy=policy) == INVALID_TOKEN
    assert verify(token, KEYS, IAT + 609.5, policy=policy) == CLAIMS
    assert reason(token, now=IAT + 610, policy=policy) == EXPIRED_TOKEN  # max age first
    assert verify(token, KEYS, IAT + 3609, policy=VerifyPolicy(clock_skew_s=10)) == CLAIMS
    assert reason(token, now=IAT + 3610, policy=VerifyPolicy(clock_skew_s=10)) == EXPIRED_TOKEN


def test_relabelled_key_id_is_caught_even_when_two_ids_share_a_secret():
    """The MAC covers the key id: a token of k1 relabelled as an alias of the same secret is
    refused (dropping the kid from the MAC input makes this pass verification)."""
    keys = StaticKeys({"k1": K1, "k1-copy": K1}, active="k1")
    token = issue(CLAIMS, keys)
    relabelled = token.replace("v1.k1.", "v1.k1-copy.", 1)
    assert reason(relabelled, keys) == BAD_SIGNATURE


def test_rotation_old_tokens_verify_new_ones_sign_with_the_new_key():
    before = StaticKeys({"k1": K1}, active="k1")
    during = StaticKeys({"k1": K1, "k2": K2}, active="k2")
    after = StaticKeys({"k2": K2}, active="k2")
    old, new = issue(CLAIMS, before), issue(CLAIMS, during)
    assert old.split(".")[1] == "k1" and new.split(".")[1] == "k2"
    assert verify(old, during, IAT) == verify(new, during, IAT) == CLAIMS
    assert verify(new, after, IAT) == CLAIMS
    assert reason(old, after) == UNKNOWN_KEY


def test_other_key_same_id_is_bad_signature():
    token = issue(CLAIMS, StaticKeys({"k2": bytes(32)}, active="k2"))
    assert reason(token) == BAD_SIGNATURE


@pytest.mark.parametrize("token", [
    None, 42, b"v1.k1.AA.AA", "", "v1", "v1.k1..", "v1.k 1.eyJ9.x", "V1.k1.AA." + "A" * 43,
    "v1.k1.AA." + "A" * 42, "v1.k1.AA." + "A" * 44, "v1.k1.A." + "A" * 43,
    "v1.k1.AA=." + "A" * 43, "v1.k1.A+." + "A" * 43, "v1.k1.AB." + "A" * 43,
    "v1." + "k" * 33 + ".AA." + "A" * 43, "v1.k1.AA." + "A" * 43 + "\n", "v1.k1.AÄ." + "A" * 43,
    "v1.k1." + "A" * 5000 + "." + "A" * 43,
])
def test_malformed(token):
    assert reason(token) == MALFORMED


def test_length_limit_and_the_largest_valid_token_fits():
    big = ClickClaims(impression_id="i" * 128, ad_id="a" * 128, campaign_id="c" * 128,
                      advertiser_id="v" * 128, price_micros=ct.MAX_PRICE_MICROS,
                      issued_at=ct.MAX_EPOCH_S - 1, expires_at=ct.MAX_EPOCH_S,
                      landing_url="https://" + "h" * 63 + "/" + "p" * (ct.MAX_URL_LEN - 72),
                      placement_id="p" * 128, publisher_id="u" * 128)
    keys = StaticKeys({"k" * 32: K1}, active="k" * 32)
    token = issue(big, keys)
    assert len(big.landing_url) == ct.MAX_URL_LEN
    assert len(token) <= ct.MAX_TOKEN_LEN
    assert verify(token, keys, ct.MAX_EPOCH_S - 1) == big
    assert reason(token, keys, ct.MAX_EPOCH_S - 1,
                  policy=VerifyPolicy(max_token_len=len(token) - 1)) == MALFORMED


# --- claims and landing URL rules ----------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "https://shop.example", "https://shop.example/", "https://a.b.example:443/x?y=1&z=%20#f",
    "https://xn--bcher-kva.example/p", "https://10.0.0.1/",
])
def test_landing_url_allowed(url):
    assert ct.url_problem(url) is None


@pytest.mark.parametrize("url", [
    "http://shop.example/", "HTTPS://shop.example/", "javascript:alert(1)", "//evil.example/",
    "https:///evil.example", "https://user:pw@shop.example/", "https://shop.example@evil.example/",
    "https://shop.example\\@evil.example/", "https://evil.example\\.shop.example/",
    "https://shop.example /", "https://shop.example/a b", "https://shop.example/\r\nSet-Cookie:x",
    "https://shop.example:99999/", "https://-bad.example/", "https://bücher.example/",
    "https://shop.example/" + "a" * ct.MAX_URL_LEN, "https://shop.example/<script>", "", None, 7,
])
def test_landing_url_refused(url):
    assert ct.url_problem(url) is not None
    with pytest.raises(ClaimsError, match="landing_url"):
        issue(dataclasses.replace(CLAIMS, landing_url=url), KEYS)


@pytest.mark.parametrize("change", [
    {"price_micros": -1}, {"price_micros": ct.MAX_PRICE_MICROS + 1}, {"price_micros": 1.0},
    {"price_micros": True}, {"price_micros": "5"}, {"ad_id": ""}, {"ad_id": "a" * 129},
    {"ad_id": "a b"}, {"ad_id": 'a"b'}, {"ad_id": "a\\b"}, {"ad_id": "ä"}, {"ad_id": None},
    {"placement_id": ""}, {"publisher_id": 5}, {"issued_at": 0}, {"expires_at": IAT},
    {"expires_at": IAT + ct.MAX_TTL_S + 1}, {"issued_at": ct.MAX_EPOCH_S + 1},
])
def test_issue_refuses_invalid_claims(change):
    with pytest.raises(ClaimsError):
        issue(dataclasses.replace(CLAIMS, **change), KEYS)


@pytest.mark.parametrize("payload", [
    b"[]", b"1", b'"x"', b"null", b"{}", b"\xff", b"[" * 3000, b"{" * 3000,
    b'{"ad":"ad-A"}', b'{"a":' * 100 + b"1" + b"}" * 100,
    json.dumps({**json.loads(ct.encode_payload(CLAIMS)), "plc": None},
               sort_keys=True, separators=(",", ":")).encode(),
    ct.encode_payload(CLAIMS).replace(b"ad-A", b"\\u0061d-A"),
    ct.encode_payload(CLAIMS).replace(b'"ppc":250000', b'"ppc":2.5e5'),
    ct.encode_payload(CLAIMS).replace(b'"ppc":250000', b'"ppc":0250000'),
    ct.encode_payload(CLAIMS).replace(b'"ppc":250000', b'"ppc":NaN'),
    ct.encode_payload(CLAIMS).replace(b'"ppc":250000', b'"ppc":' + b"9" * 400),
])
def test_authentic_but_invalid_payload_is_invalid_token(payload):
    assert reason(sign_raw("k1", K1, payload)) == INVALID_TOKEN


# --- key sets ---------------------------------------------------------------------------------------
def test_key_set_from_secret_json_text():
    text = json.dumps(VECTORS["key_set"])
    keys = parse_key_set(text)
    assert keys.kids == ("k1", "k2") and keys.active() == ("k2", K2)


@pytest.mark.parametrize("value", [
    "", "[]", "{}", '{"keys": {}, "active": "k1"}',
    '{"keys": {"k1": "AAAA"}, "active": "k1"}',  # 3 bytes: too short
    json.dumps({"keys": {"k1": base64.b64encode(K1).decode()}, "active": "k2"}),
    json.dumps({"keys": {"k1": base64.b64encode(K1).decode()}, "active": "k1", "x": 1}),
    json.dumps({"keys": {"k.1": base64.b64encode(K1).decode()}, "active": "k.1"}),
    json.dumps({"keys": {"k1": base64.urlsafe_b64encode(b"\xff" * 32).decode()}, "active": "k1"}),
    json.dumps({"keys": {"k1": 5}, "active": "k1"}),
    '{"keys": {"k1": "%s"}, "active": "k1", "active": "k1"}' % base64.b64encode(K1).decode(),
])
def test_bad_key_sets_are_refused(value):
    with pytest.raises(KeyConfigError):
        parse_key_set(value)


def test_flat_key_set_as_secrets_manager_generates_it():
    """{"active": kid, kid: hex, ...}: what CDK's generate_secret_string makes at deploy
    (infra.constructs.click_token_keys), and how keys are added to it (docs/click-token.md)."""
    keys = parse_key_set(json.dumps({"active": "k2", "k1": K1.hex(), "k2": K2.hex().upper()}))
    assert keys.kids == ("k1", "k2") and keys.active() == ("k2", K2) and keys.get("k1") == K1
    vec = VECTORS["valid"][0]
    assert verify(vec["token"], keys, IAT + 60) == ClickClaims(**vec["claims"])


@pytest.mark.parametrize("value", [
    {"active": "k1"},  # no key
    {"active": "k1", "k1": "ab" * 31},  # 31 bytes
    {"active": "k1", "k1": "0" * 63},  # odd number of hex digits
    {"active": "k1", "k1": "zz" * 32},
    {"active": "k1", "k1": base64.b64encode(K1).decode()},  # base64 is the nested shape's
    {"active": "k2", "k1": K1.hex()},
    {"active": 1, "k1": K1.hex()},
    {"active": "k.1", "k.1": K1.hex()},
    {"active": "k1", "k1": K1.hex(), "keys": {}},
])
def test_bad_flat_key_sets_are_refused(value):
    with pytest.raises(KeyConfigError):
        parse_key_set(json.dumps(value))


def test_verify_only_key_set_cannot_issue():
    with pytest.raises(KeyConfigError):
        issue(CLAIMS, StaticKeys({"k1": K1}))


def test_secret_keys_follow_the_secret_and_parse_once_per_value():
    values = [json.dumps({"keys": {"k1": base64.b64encode(K1).decode()}, "active": "k1"})]
    keys = SecretKeys(lambda: values[-1])
    old = issue(CLAIMS, keys)
    assert old.split(".")[1] == "k1"
    first = keys._current()
    assert keys._current() is first  # same value: not parsed again
    values.append(json.dumps(VECTORS["key_set"]))  # rotation: k2 added and active
    assert issue(CLAIMS, keys).split(".")[1] == "k2"
    assert verify(old, keys, IAT) == CLAIMS


# --- fuzz: nothing but TokenRejected, whatever the input -----------------------------------------
def _outcome(token) -> str:
    try:
        verify(token, KEYS, IAT + 60)
    except TokenRejected as exc:
        assert exc.reason in REASONS
        return exc.reason
    return "ok"


def test_seeded_mutation_fuzz():
    rng = random.Random(17)
    seeds = [v["token"] for v in VECTORS["valid"]]
    alphabet = "AZaz09-_.=+/ \n\x00ä"
    counts: dict[str, int] = {}
    for _ in range(5000):
        token = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op, i = rng.randrange(4), rng.randrange(len(token))
            if op == 0:
                token[i] = rng.choice(alphabet)
            elif op == 1:
                del token[i]
            elif op == 2:
                token.insert(i, rng.choice(alphabet))
            else:
                token[i] = chr(ord(token[i]) ^ (1 << rng.randrange(7)))
        outcome = _outcome("".join(token))
        counts[outcome] = counts.get(outcome, 0) + 1
    assert counts.get("ok", 0) == 0  # no mutation of an authentic token verifies
    assert {MALFORMED, BAD_SIGNATURE, UNKNOWN_KEY} <= set(counts)


@settings(max_examples=400, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), st.binary(max_size=50), st.integers(), st.none(),
                 st.builds(lambda k, p, m: f"v1.{k}.{p}.{m}",
                           st.sampled_from(["k1", "k2", "k9"]),
                           st.text("ABCabc019-_", max_size=80),
                           st.text("ABCabc019-_", min_size=43, max_size=43))))
def test_hypothesis_any_input_only_typed_outcome(token):
    assert _outcome(token) in REASONS


@settings(max_examples=300, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=300) | st.text(min_size=1, max_size=300).map(str.encode)
       | st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                      lambda c: st.lists(c) | st.dictionaries(st.text(max_size=4), c),
                      max_leaves=20).map(lambda o: json.dumps(o).encode()))
def test_hypothesis_authentic_garbage_payload_is_invalid_token(payload):
    assert _outcome(sign_raw("k1", K1, payload)) == INVALID_TOKEN


# --- CLI: clickagg token issue / verify ------------------------------------------------------------
def test_cli_issue_reproduces_a_vector_and_verify_reports_the_reason(tmp_path, capsys):
    import io

    from tools.cli import main

    vec = VECTORS["valid"][0]
    c = vec["claims"]
    out = io.StringIO()
    assert main(["token", "issue", "--key-id", "k1", "--secret-b64",
                 base64.b64encode(K1).decode(), "--impression-id", c["impression_id"],
                 "--ad-id", c["ad_id"], "--campaign-id", c["campaign_id"],
                 "--advertiser-id", c["advertiser_id"], "--price-micros", str(c["price_micros"]),
                 "--landing-url", c["landing_url"], "--issued-at", str(c["issued_at"]),
                 "--ttl-s", str(c["expires_at"] - c["issued_at"])], out=out) == 0
    assert out.getvalue().strip() == vec["token"]
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(VECTORS["key_set"]))
    verify_args = ["token", "verify", vec["token"], "--keys-json", str(keys_file),
                   "--at", str(IAT + 60)]
    out = io.StringIO()
    assert main(verify_args, out=out) == 0
    assert json.loads(out.getvalue()) == {"kid": "k1", **c}
    assert main(verify_args + ["--ad-id", "ad-B"], out=io.StringIO()) == 1
    assert capsys.readouterr().err.strip() == "rejected: invalid_token: token of another ad"


def test_cli_issue_refuses_bad_input(monkeypatch, capsys):
    from tools.cli import main

    monkeypatch.delenv("CLICKAGG_TOKEN_SECRET_B64", raising=False)
    base = ["token", "issue", "--key-id", "k1", "--ad-id", "a", "--campaign-id", "c",
            "--advertiser-id", "v", "--price-micros", "1", "--landing-url", "https://x.example/"]
    assert main(base) == 2  # no secret
    assert main(base + ["--secret-b64", "not base64!"]) == 2
    assert main(base + ["--secret-b64", base64.b64encode(b"short").decode()]) == 2
    monkeypatch.setenv("CLICKAGG_TOKEN_SECRET_B64", base64.b64encode(K1).decode())
    assert main(base[:-1] + ["http://x.example/"]) == 2
    assert "landing_url" in capsys.readouterr().err
    assert main(base + ["--issued-at", str(IAT)], out=__import__("io").StringIO()) == 0
