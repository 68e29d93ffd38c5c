"""The test vectors of docs/click-token.md: `python -m tools.click_token_vectors` prints
docs/click-token-vectors.json (tests/unit/test_click_token.py checks the file is this output and
that common.click_token reproduces and judges every vector exactly).

Fixed keys (k1 = bytes 0..31, k2 = bytes 32..63), fixed times, no randomness. Tampered tokens are
made from the valid ones by hand (the raw HMAC of the spec where a vector needs an authentic
token with a bad payload), never by `issue`, which refuses invalid claims."""
from __future__ import annotations

import base64
import dataclasses
import json
import sys

from common.click_token import (BAD_SIGNATURE, DEFAULT_CLOCK_SKEW_S, DEFAULT_MAX_AGE_S,
                                EXPIRED_TOKEN, INVALID_TOKEN, MALFORMED, UNKNOWN_KEY, ClickClaims,
                                StaticKeys, b64url_encode, encode_payload, issue, mac,
                                signing_input)

K1, K2 = bytes(range(32)), bytes(range(32, 64))
IAT = 1_795_000_000  # 2026-11-18T09:46:40Z
SKEW, MAX_AGE = DEFAULT_CLOCK_SKEW_S, DEFAULT_MAX_AGE_S
KEYS = {"k1": K1, "k2": K2}


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def signed_raw(kid: str, payload: bytes) -> str:
    """A token of arbitrary payload bytes, signed as the spec says (for tampered vectors)."""
    signed = signing_input(kid, payload)
    return f"{signed}.{b64url_encode(mac(KEYS[kid], signed))}"


def _with_payload(token: str, payload: bytes) -> str:
    version, kid, _, tag = token.split(".")
    return f"{version}.{kid}.{b64url_encode(payload)}.{tag}"


def _wire(claims: ClickClaims) -> dict:
    return json.loads(encode_payload(claims))


def build() -> dict:
    basic = ClickClaims(impression_id="imp-0001", ad_id="ad-A", campaign_id="cmp-7",
                        advertiser_id="adv-3", price_micros=250_000, issued_at=IAT,
                        expires_at=IAT + 3600, landing_url="https://shop.example/landing")
    full = ClickClaims(impression_id="imp-0002", ad_id="ad-B", campaign_id="cmp-7",
                       advertiser_id="adv-3", price_micros=1_500_000, issued_at=IAT,
                       expires_at=IAT + 900,
                       landing_url="https://shop.example:8443/p/42?utm_source=ads&x=%2F#top",
                       placement_id="slot-top", publisher_id="pub-9")
    week = dataclasses.replace(basic, impression_id="imp-0003", expires_at=IAT + 7 * 86_400)
    valid = []
    for name, kid, claims in (("basic, key k1 (still known, no longer active)", "k1", basic),
                              ("all fields, key k2 (active)", "k2", full),
                              ("7-day expiry, capped by the verifier's max age", "k1", week)):
        payload = encode_payload(claims)
        token = issue(claims, StaticKeys({kid: KEYS[kid]}, active=kid))
        valid.append({
            "name": name, "kid": kid, "claims": claims.to_json(),
            "payload": payload.decode("ascii"), "signing_input": signing_input(kid, payload),
            "mac_hex": mac(KEYS[kid], signing_input(kid, payload)).hex(), "token": token,
            # verify accepts it at each of these times (first and last accepted second)
            "accepted_at": [claims.issued_at - SKEW,
                            min(claims.expires_at, claims.issued_at + MAX_AGE) + SKEW - 1],
        })
    t_basic, t_week = valid[0]["token"], valid[2]["token"]
    w = _wire(basic)
    at = IAT + 60

    def case(name, token, reason, how, verify_at=at, expected_ad_id=None):
        out = {"name": name, "token": token, "verify_at": verify_at, "reason": reason, "how": how}
        if expected_ad_id is not None:
            out["expected_ad_id"] = expected_ad_id
        return out

    def canon(obj) -> bytes:
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("ascii")

    v1, kid, payload, tag = t_basic.split(".")
    flipped = tag[:-1] + chr(ord(tag[-1]) ^ 1)  # the last character's 2 unused bits
    invalid = [
        case("price changed", _with_payload(t_basic, canon({**w, "ppc": 2_500_000})),
             BAD_SIGNATURE, "basic's payload with ppc 2500000, basic's MAC"),
        case("other advertiser", _with_payload(t_basic, canon({**w, "adv": "adv-4"})),
             BAD_SIGNATURE, "basic's payload with adv adv-4, basic's MAC"),
        case("wrong key id", f"{v1}.k2.{payload}.{tag}", BAD_SIGNATURE,
             "basic (signed with k1) relabelled k2"),
        case("unknown key id", f"{v1}.k9.{payload}.{tag}", UNKNOWN_KEY,
             "basic relabelled k9 (not in the key set)"),
        case("expired", t_basic, EXPIRED_TOKEN, "basic at expires_at + skew",
             verify_at=basic.expires_at + SKEW),
        case("older than max age", t_week, EXPIRED_TOKEN,
             "the 7-day token at issued_at + max_age_s + skew",
             verify_at=IAT + MAX_AGE + SKEW),
        case("issued in the future", t_basic, INVALID_TOKEN, "basic at issued_at - skew - 1",
             verify_at=IAT - SKEW - 1),
        case("token of ad A presented for ad B", t_basic, INVALID_TOKEN,
             "basic (ad-A) verified with expected_ad_id ad-B", expected_ad_id="ad-B"),
        case("padding", t_basic + "=", MALFORMED, "basic with '=' appended"),
        case("non-canonical base64url", f"{v1}.{kid}.{payload}.{flipped}", MALFORMED,
             "basic with an unused bit of the MAC's last character set"),
        case("other version", "v2" + t_basic[2:], MALFORMED, "basic with version v2"),
        case("five parts", t_basic + ".AA", MALFORMED, "basic with '.AA' appended"),
        case("whitespace in payload (signed)", signed_raw("k1", json.dumps(w, sort_keys=True).encode()),
             INVALID_TOKEN, "basic's fields as JSON with spaces, signed with k1"),
        case("unsorted keys (signed)", signed_raw("k1", json.dumps(
            dict(reversed(list(w.items()))), separators=(",", ":")).encode()),
             INVALID_TOKEN, "basic's fields in reverse order, signed with k1"),
        case("unknown field (signed)", signed_raw("k1", canon({**w, "zzz": 1})), INVALID_TOKEN,
             "basic's fields plus zzz: 1, signed with k1"),
        case("duplicate key (signed)", signed_raw(
            "k1", canon(w)[:-1] + b',"url":"https://evil.example/"}'), INVALID_TOKEN,
             "basic's payload with a second url, signed with k1"),
        case("price not an integer (signed)", signed_raw("k1", canon({**w, "ppc": 0.25})),
             INVALID_TOKEN, "ppc 0.25, signed with k1"),
        case("negative price (signed)", signed_raw("k1", canon({**w, "ppc": -1})), INVALID_TOKEN,
             "ppc -1, signed with k1"),
        case("http landing URL (signed)", signed_raw(
            "k1", canon({**w, "url": "http://shop.example/landing"})), INVALID_TOKEN,
             "url http://..., signed with k1"),
        case("userinfo in landing URL (signed)", signed_raw(
            "k1", canon({**w, "url": "https://shop.example@evil.example/"})), INVALID_TOKEN,
             "url https://shop.example@evil.example/, signed with k1"),
    ]
    return {
        "spec": "docs/click-token.md",
        "key_set": {"keys": {"k1": _b64(K1), "k2": _b64(K2)}, "active": "k2"},
        "keys_hex": {"k1": K1.hex(), "k2": K2.hex()},
        "policy": {"max_age_s": MAX_AGE, "clock_skew_s": SKEW},
        "valid": valid,
        "invalid": invalid,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
