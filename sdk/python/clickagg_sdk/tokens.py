"""Issuing click tokens, for ad servers (docs/click-token.md).

The ad server signs one token per served ad (impression) and renders it with the ad; the click
carries it back and the API believes only what the token says about the ad, its campaign and
advertiser, the price and the landing URL. `TokenIssuer` is a thin convenience over
`click_token.issue` (the spec's reference implementation, the very file the ingest Lambda
verifies with): it fills in the impression id, the issue time and the expiry, so an ad server
only names the ad.
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Protocol

from .click_token import MAX_TTL_S, ClickClaims, issue
from .ids import uuid7

__all__ = ["TokenIssuer", "ActiveKey"]


class ActiveKey(Protocol):
    """What issuing needs of a key set: the (kid, key) that signs. `click_token.StaticKeys`,
    `parse_key_set(secret_value)` and `SecretKeys(fetch)` all qualify."""

    def active(self) -> tuple[str, bytes]: ...


class TokenIssuer:
    """Signs click tokens with the key set's active key.

    `ttl_s`: expires_at - issued_at, 1..604800 (the spec's 7-day limit). Keep it at most the
    deployment's click_token_max_age_s (default 86400): the API refuses older tokens anyway.
    `clock`: epoch seconds (time.time), injectable for tests."""

    def __init__(self, keys: ActiveKey, ttl_s: int = 3600,
                 clock: Callable[[], float] = time.time) -> None:
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 1 <= ttl_s <= MAX_TTL_S:
            raise ValueError(f"ttl_s must be an integer within 1..{MAX_TTL_S}, got {ttl_s!r}")
        if not callable(getattr(keys, "active", None)):
            raise TypeError("keys must have .active() -> (kid, key): StaticKeys, parse_key_set(...), "
                            "SecretKeys(...)")
        self.keys = keys
        self.ttl_s = ttl_s
        self.clock = clock

    def claims(self, *, ad_id: str, campaign_id: str, advertiser_id: str, price_micros: int,
               landing_url: str, impression_id: Optional[str] = None,
               placement_id: Optional[str] = None, publisher_id: Optional[str] = None,
               issued_at: Optional[int] = None) -> ClickClaims:
        """The claims `issue` would sign (defaults filled in): impression_id a new UUIDv7,
        issued_at now (whole seconds), expires_at issued_at + ttl_s."""
        iat = int(self.clock()) if issued_at is None else issued_at
        return ClickClaims(impression_id=uuid7() if impression_id is None else impression_id,
                           ad_id=ad_id, campaign_id=campaign_id, advertiser_id=advertiser_id,
                           price_micros=price_micros, issued_at=iat, expires_at=iat + self.ttl_s,
                           landing_url=landing_url, placement_id=placement_id,
                           publisher_id=publisher_id)

    def issue(self, *, ad_id: str, campaign_id: str, advertiser_id: str, price_micros: int,
              landing_url: str, impression_id: Optional[str] = None,
              placement_id: Optional[str] = None, publisher_id: Optional[str] = None,
              issued_at: Optional[int] = None) -> str:
        """The token of one served ad. Raises click_token.ClaimsError for claims the spec
        refuses (an http landing URL, an id with a space, a price over 10,000, ...)."""
        return issue(self.claims(ad_id=ad_id, campaign_id=campaign_id, advertiser_id=advertiser_id,
                                 price_micros=price_micros, landing_url=landing_url,
                                 impression_id=impression_id, placement_id=placement_id,
                                 publisher_id=publisher_id, issued_at=issued_at), self.keys)

    def issue_claims(self, claims: ClickClaims) -> str:
        """The token of exactly these claims (nothing filled in; ttl_s does not apply)."""
        return issue(claims, self.keys)
