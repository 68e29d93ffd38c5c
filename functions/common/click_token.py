"""Signed click tokens (issue 17, "Trust boundary"): the ad server issues one per served ad, the
click path verifies it. The spec, with test vectors, is docs/click-token.md; this module is its
reference implementation. Stdlib only, so it may ship in any Lambda (and the Flink zip).

    v1.<kid>.<base64url(payload)>.<base64url(HMAC-SHA256(key[kid], "v1.<kid>.<base64url(payload)>"))>

`payload` is the canonical JSON of the claims (short names, sorted keys, no whitespace, no
escapes: every string is printable ASCII without '"' and '\\'). `issue` signs with the key set's
active key; `verify` accepts any key the set knows (rotation without downtime) and either returns
the claims or raises `TokenRejected` whose `.reason` is one of REASONS. Whatever the input,
`verify` raises nothing else, except what the key provider itself raises (a Secrets Manager
outage is not a bad token).

Settings: the verifier's limits are passed as a `VerifyPolicy`; the constants here
(DEFAULT_MAX_AGE_S, DEFAULT_CLOCK_SKEW_S) are the defaults of the ingest settings
click_token_max_age_s / click_token_clock_skew_s (common.schema), MAX_TOKEN_LEN is fixed.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import re
from typing import Any, Callable, Mapping, Optional, Protocol, Union

VERSION = "v1"
MAX_TOKEN_LEN = 4096  # characters; the largest valid v1 token is shorter (tests check)
MAX_URL_LEN = 2048
MAX_ID_LEN = 128  # as ingest's Identifier
MAX_PRICE_MICROS = 10_000_000_000  # 10,000 per click (ingest's MAX_COST) in micro-units
MAX_EPOCH_S = 4_102_444_800  # 2100-01-01T00:00:00Z: issued_at/expires_at are epoch seconds below it
MAX_TTL_S = 7 * 24 * 3600  # expires_at - issued_at at most (ingest's default max_age_s)
DEFAULT_MAX_AGE_S = 24 * 3600  # a verifier refuses tokens issued longer ago (+ skew)
DEFAULT_CLOCK_SKEW_S = 300  # tolerance between the issuer's and the verifier's clocks
MIN_KEY_BYTES = 32  # HMAC-SHA256 keys of at least 256 bits
MAC_BYTES = 32

# reason codes of TokenRejected (docs/click-token.md, "Reason codes")
MALFORMED = "malformed"  # not a v1 token: shape, length, base64url, version
UNKNOWN_KEY = "unknown_key"  # well-formed, but the key id is not in the key set
BAD_SIGNATURE = "bad_signature"  # the MAC does not match: tampered or another key
INVALID_TOKEN = "invalid_token"  # authentic, but its payload breaks the rules or the binding
EXPIRED_TOKEN = "expired_token"  # authentic and valid, but too old at verification time
REASONS = (MALFORMED, UNKNOWN_KEY, BAD_SIGNATURE, INVALID_TOKEN, EXPIRED_TOKEN)

KID_PATTERN = r"[A-Za-z0-9_-]{1,32}"  # no '.': the token's separator
_B64URL = r"[A-Za-z0-9_-]"
_TOKEN = re.compile(
    rf"(?P<version>[a-z0-9]{{1,8}})\.(?P<kid>{KID_PATTERN})\.(?P<payload>{_B64URL}+)"
    rf"\.(?P<mac>{_B64URL}{{43}})")
_ID = re.compile(r'[\x21-\x7E]{1,%d}' % MAX_ID_LEN)  # printable ASCII, no space ...
_ID_FORBIDDEN = ('"', "\\")  # ... and none that JSON would escape
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# https, a DNS host name (IDNs in punycode), optional port, then path/query/fragment in RFC 3986
# characters only (no space, '"', '<', '>', '\\', '^', '`', '{', '|', '}', no controls)
_URL = re.compile(rf"https://(?P<host>{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>[0-9]{{1,5}}))?"
                  rf"(?:[/?#][A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*)?")

# claim attribute <-> payload name; (required, kind)
FIELDS: dict[str, tuple[str, bool, str]] = {
    "impression_id": ("imp", True, "id"),
    "ad_id": ("ad", True, "id"),
    "campaign_id": ("cmp", True, "id"),
    "advertiser_id": ("adv", True, "id"),
    "price_micros": ("ppc", True, "price"),
    "issued_at": ("iat", True, "time"),
    "expires_at": ("exp", True, "time"),
    "landing_url": ("url", True, "url"),
    "placement_id": ("plc", False, "id"),
    "publisher_id": ("pub", False, "id"),
}
_BY_WIRE = {wire: attr for attr, (wire, _, _) in FIELDS.items()}


class ClickTokenError(Exception):
    """Base of this module's errors."""


class TokenRejected(ClickTokenError):
    """`verify` refused a token: `reason` is one of REASONS, `detail` says why (for logs, not
    for clients)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ClaimsError(ClickTokenError, ValueError):
    """`issue` refused the claims (they would make an invalid token)."""


class KeyConfigError(ClickTokenError, ValueError):
    """A key set (or the secret value it was read from) is invalid."""


# --- claims -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ClickClaims:
    """What a token says: one served ad (impression) and what a click on it costs."""

    impression_id: str
    ad_id: str
    campaign_id: str
    advertiser_id: str
    price_micros: int  # price per click in micro-units of the advertiser's currency
    issued_at: int  # epoch seconds
    expires_at: int  # epoch seconds, exclusive
    landing_url: str  # where GET /v1/c?t=TOKEN redirects (302)
    placement_id: Optional[str] = None
    publisher_id: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        """Long names, optional fields only when set (CLI output, vectors)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def _int_problem(value: Any, lo: int, hi: int) -> Optional[str]:
    if not isinstance(value, int) or isinstance(value, bool):
        return f"expected an integer, got {type(value).__name__}"
    return None if lo <= value <= hi else f"must be within {lo}..{hi}, got {value}"


def url_problem(url: Any) -> Optional[str]:
    """Why `url` may not be a landing URL (None: it may): https only, a DNS host, no userinfo,
    RFC 3986 characters, at most MAX_URL_LEN."""
    if not isinstance(url, str):
        return f"expected a string, got {type(url).__name__}"
    if len(url) > MAX_URL_LEN:
        return f"longer than {MAX_URL_LEN} characters"
    m = _URL.fullmatch(url)
    if m is None:
        return "expected https://host[:port][/path][?query][#fragment] (RFC 3986 characters, " \
               "no userinfo)"
    if m.group("port") is not None and not 1 <= int(m.group("port")) <= 65535:
        return f"bad port {m.group('port')}"
    if len(m.group("host")) > 253:
        return "host name longer than 253 characters"
    return None


def claims_problem(claims: ClickClaims) -> Optional[str]:
    """The first rule the claims break (None: none). `issue` and `verify` apply the same rules."""
    for attr, (_, required, kind) in FIELDS.items():
        value = getattr(claims, attr)
        if value is None and not required:
            continue
        if kind == "id":
            if not isinstance(value, str) or _ID.fullmatch(value) is None \
                    or any(c in value for c in _ID_FORBIDDEN):
                return (f"{attr}: expected 1..{MAX_ID_LEN} printable ASCII characters without "
                        f"space, '\"' or '\\', got {value!r}")
            continue
        problem = (_int_problem(value, 0, MAX_PRICE_MICROS) if kind == "price"
                   else _int_problem(value, 1, MAX_EPOCH_S) if kind == "time"
                   else url_problem(value))
        if problem:
            return f"{attr}: {problem}"
    if claims.expires_at <= claims.issued_at:
        return "expires_at must be after issued_at"
    if claims.expires_at - claims.issued_at > MAX_TTL_S:
        return f"expires_at - issued_at must be at most {MAX_TTL_S} s"
    return None


def encode_payload(claims: ClickClaims) -> bytes:
    """The canonical payload: JSON of the short names, keys sorted, no whitespace (no escapes
    occur: the rules leave no character JSON would escape)."""
    wire = {FIELDS[attr][0]: value for attr, value in dataclasses.asdict(claims).items()
            if value is not None}
    return json.dumps(wire, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(f"duplicate key {key!r}")
        out[key] = value
    return out


def _refuse(what: str) -> Callable[[str], Any]:
    def refuse(text: str) -> Any:
        raise ValueError(f"{what} {text!r} not allowed")
    return refuse


def decode_payload(raw: bytes) -> ClickClaims:
    """Claims from payload bytes, or ValueError: canonical JSON only (no duplicate or unknown
    keys, no floats, no null, exactly the bytes encode_payload makes of the claims)."""
    obj = json.loads(raw.decode("ascii"), object_pairs_hook=_no_duplicates,
                     parse_float=_refuse("number"), parse_constant=_refuse("constant"))
    if not isinstance(obj, dict):
        raise ValueError("payload is not a JSON object")
    unknown = sorted(set(obj) - set(_BY_WIRE))
    if unknown:
        raise ValueError(f"unknown fields {unknown}")
    missing = [wire for wire, required, _ in FIELDS.values() if required and wire not in obj]
    if missing:
        raise ValueError(f"missing fields {missing}")
    claims = ClickClaims(**{_BY_WIRE[wire]: value for wire, value in obj.items()})
    problem = claims_problem(claims)
    if problem:
        raise ValueError(problem)
    if encode_payload(claims) != raw:
        raise ValueError("payload is not in canonical form")
    return claims


# --- base64url without padding, canonical -------------------------------------------------------
def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict: alphabet A-Z a-z 0-9 - _ only, no padding, unused trailing bits zero (exactly
    one text per byte string); ValueError otherwise."""
    if not re.fullmatch(rf"{_B64URL}*", text) or len(text) % 4 == 1:
        raise ValueError("not base64url without padding")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(data) != text:
        raise ValueError("non-canonical base64url (unused bits set)")
    return data


# --- keys ---------------------------------------------------------------------------------------
class KeyProvider(Protocol):
    """key id -> secret bytes; `active()` is the (kid, key) that issues."""

    def get(self, kid: str) -> Optional[bytes]: ...

    def active(self) -> tuple[str, bytes]: ...


class StaticKeys:
    """An in-memory key set: every key verifies, `active` (if any) issues."""

    def __init__(self, keys: Mapping[str, bytes], active: Optional[str] = None) -> None:
        if not keys:
            raise KeyConfigError("no keys")
        for kid, key in keys.items():
            if not isinstance(kid, str) or re.fullmatch(KID_PATTERN, kid) is None:
                raise KeyConfigError(f"key id {kid!r}: expected {KID_PATTERN}")
            if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
                raise KeyConfigError(f"key {kid}: expected at least {MIN_KEY_BYTES} bytes")
        if active is not None and active not in keys:
            raise KeyConfigError(f"active key {active!r} is not in the key set")
        self._keys = dict(keys)
        self._active = active

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def get(self, kid: str) -> Optional[bytes]:
        return self._keys.get(kid)

    def active(self) -> tuple[str, bytes]:
        if self._active is None:
            raise KeyConfigError("this key set has no active key (verify only)")
        return self._active, self._keys[self._active]


def parse_key_set(value: Union[str, bytes, Mapping[str, Any]]) -> StaticKeys:
    """A key set from the secret's value (JSON text, or already parsed), in either shape:

    * `{"keys": {"k1": "<base64>", ...}, "active": "k1"}`: standard base64 with padding;
    * flat, as Secrets Manager generates it at deploy time (`generate_string_key`):
      `{"active": "k1", "k1": "<hex>", "k2": "<hex>"}`: every member but `active` is a key id,
      its value the key in hexadecimal (`openssl rand -hex 32`).

    Either way at least MIN_KEY_BYTES per key, and `active` one of the keys."""
    try:
        obj = (json.loads(value, object_pairs_hook=_no_duplicates)
               if isinstance(value, (str, bytes)) else value)
    except ValueError as exc:
        raise KeyConfigError(f"key set is not JSON: {exc}") from None
    if isinstance(obj, Mapping) and "keys" not in obj and "active" in obj and len(obj) > 1:
        return _parse_flat_key_set(obj)
    if not isinstance(obj, Mapping) or set(obj) != {"keys", "active"}:
        raise KeyConfigError('expected {"keys": {kid: base64, ...}, "active": kid} or '
                             '{"active": kid, kid: hex, ...}')
    keys, active = obj["keys"], obj["active"]
    if not isinstance(keys, Mapping) or not isinstance(active, str):
        raise KeyConfigError('"keys" must be an object, "active" a key id')
    decoded = {}
    for kid, text in keys.items():
        try:
            decoded[kid] = base64.b64decode(text, validate=True) if isinstance(text, str) else None
        except (binascii.Error, ValueError):
            decoded[kid] = None
        if decoded[kid] is None:
            raise KeyConfigError(f"key {kid!r}: expected standard base64 text")
    return StaticKeys(decoded, active)


def _parse_flat_key_set(obj: Mapping[str, Any]) -> StaticKeys:
    active = obj["active"]
    if not isinstance(active, str):
        raise KeyConfigError('"active" must be a key id')
    decoded = {}
    for kid, text in obj.items():
        if kid == "active":
            continue
        if not isinstance(text, str) or re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text) is None:
            raise KeyConfigError(f"key {kid!r}: expected hexadecimal text (flat key set)")
        decoded[kid] = bytes.fromhex(text)
    return StaticKeys(decoded, active)


class SecretKeys:
    """A key set read from a secret on every use (`fetch` returns its current value: JSON text
    or the parsed object), parsed again only when the value changed. In a Lambda:
    `SecretKeys(lambda: parameters.get_secret(NAME, max_age=300))` (Powertools caches)."""

    def __init__(self, fetch: Callable[[], Union[str, bytes, Mapping[str, Any]]]) -> None:
        self._fetch = fetch
        self._raw: Any = None
        self._keys: Optional[StaticKeys] = None

    def _current(self) -> StaticKeys:
        raw = self._fetch()
        if self._keys is None or raw != self._raw:
            self._keys, self._raw = parse_key_set(raw), raw
        return self._keys

    def get(self, kid: str) -> Optional[bytes]:
        return self._current().get(kid)

    def active(self) -> tuple[str, bytes]:
        return self._current().active()


# --- issue and verify ---------------------------------------------------------------------------
def signing_input(kid: str, payload: bytes) -> str:
    """What the MAC covers: the version, the key id and the encoded payload, '.'-joined."""
    return f"{VERSION}.{kid}.{b64url_encode(payload)}"


def mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()


def issue(claims: ClickClaims, keys: KeyProvider) -> str:
    """The token of `claims`, signed with the active key (ClaimsError if the claims are invalid)."""
    problem = claims_problem(claims)
    if problem:
        raise ClaimsError(problem)
    kid, key = keys.active()
    signed = signing_input(kid, encode_payload(claims))
    token = f"{signed}.{b64url_encode(mac(key, signed))}"
    if len(token) > MAX_TOKEN_LEN:  # unreachable by the rules above; kept as a guard
        raise ClaimsError(f"token longer than {MAX_TOKEN_LEN} characters")
    return token


@dataclasses.dataclass(frozen=True)
class VerifyPolicy:
    max_age_s: int = DEFAULT_MAX_AGE_S  # refuse tokens issued longer ago than this (+ skew)
    clock_skew_s: int = DEFAULT_CLOCK_SKEW_S
    max_token_len: int = MAX_TOKEN_LEN


DEFAULT_POLICY = VerifyPolicy()


def verify(token: Any, keys: KeyProvider, now_s: Union[int, float], *,
           policy: VerifyPolicy = DEFAULT_POLICY,
           expected_ad_id: Optional[str] = None) -> ClickClaims:
    """The claims of an authentic, valid, unexpired token, else TokenRejected (the steps of
    docs/click-token.md, "Verification", in that order). `expected_ad_id`: the ad the click
    names, when it names one; a token of another ad is invalid_token."""
    claims = authenticate(token, keys, max_token_len=policy.max_token_len)  # 1-7
    # 8: time
    skew = policy.clock_skew_s
    if claims.issued_at > now_s + skew:
        raise TokenRejected(INVALID_TOKEN, f"issued_at {claims.issued_at} is in the future")
    if now_s >= claims.expires_at + skew:
        raise TokenRejected(EXPIRED_TOKEN, f"expired at {claims.expires_at}")
    if now_s >= claims.issued_at + policy.max_age_s + skew:
        raise TokenRejected(EXPIRED_TOKEN, f"issued at {claims.issued_at}, older than "
                                           f"{policy.max_age_s} s")
    # 9: binding
    if expected_ad_id is not None and claims.ad_id != expected_ad_id:
        raise TokenRejected(INVALID_TOKEN, "token of another ad")
    return claims


def authenticate(token: Any, keys: KeyProvider, *, max_token_len: int = MAX_TOKEN_LEN) -> ClickClaims:
    """Steps 1-7 of verification only: the claims of an authentic token with a valid payload,
    whatever its times, else TokenRejected. For a conversion naming its click's token days
    later (docs/events.md): the token says which impression, the time rules are the
    attribution window's, judged by the nightly batch. A click is never accepted on this alone."""
    # 1-4: shape (no key is looked up, nothing is decoded before this passes)
    if not isinstance(token, str):
        raise TokenRejected(MALFORMED, f"expected a string, got {type(token).__name__}")
    if len(token) > max_token_len:
        raise TokenRejected(MALFORMED, f"longer than {max_token_len} characters")
    m = _TOKEN.fullmatch(token)
    if m is None:
        raise TokenRejected(MALFORMED, "expected v1.<kid>.<payload>.<mac>")
    if m.group("version") != VERSION:
        raise TokenRejected(MALFORMED, f"unsupported version {m.group('version')!r}")
    try:
        payload = b64url_decode(m.group("payload"))
        tag = b64url_decode(m.group("mac"))
    except ValueError as exc:
        raise TokenRejected(MALFORMED, str(exc)) from None
    # 5: key
    kid = m.group("kid")
    key = keys.get(kid)
    if key is None:
        raise TokenRejected(UNKNOWN_KEY, f"key id {kid!r}")
    # 6: MAC, in constant time, before the payload is parsed
    signed = token[:m.start("mac") - 1]
    if not hmac.compare_digest(mac(key, signed), tag):
        raise TokenRejected(BAD_SIGNATURE, f"key id {kid!r}")
    # 7: payload (authentic: only a key holder could have made a bad one)
    try:
        return decode_payload(payload)
    except Exception as exc:  # noqa: BLE001 - any parse failure (incl. recursion) is the reason
        raise TokenRejected(INVALID_TOKEN, f"payload: {exc}") from None
