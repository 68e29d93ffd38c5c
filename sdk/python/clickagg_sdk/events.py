"""Events of POST /v1/events (docs/events.md, docs/schemas/): what an ad server reports when it
serves an ad (an impression) and what an advertiser reports when a click converts.

The impression is built from the very claims its click token was signed with, so the token's
`imp` and the impression's id are the same by construction:

    claims = issuer.claims(ad_id=..., campaign_id=..., advertiser_id=..., price_micros=...,
                           landing_url=...)
    token = issuer.issue_claims(claims)                 # rendered with the ad
    sender.track(impression_event(claims))              # sender = ClickSender(EventClient(...))
"""
from __future__ import annotations

from decimal import Decimal
from typing import Optional, Union

from .click_token import ClickClaims

__all__ = ["SCHEMA_VERSION", "impression_event", "conversion_event"]

SCHEMA_VERSION = 1


def impression_event(claims: ClickClaims, *, served_at_ms: Optional[int] = None,
                     user_id: Optional[str] = None) -> dict:
    """The impression of a served ad: its token's impression id, ad, campaign, advertiser,
    placement and publisher; served at `served_at_ms` (default: the token's issue time)."""
    event = {"type": "impression", "schema_version": SCHEMA_VERSION,
             "impression_id": claims.impression_id, "ad_id": claims.ad_id,
             "campaign_id": claims.campaign_id, "advertiser_id": claims.advertiser_id,
             "timestamp": claims.issued_at * 1000 if served_at_ms is None else served_at_ms}
    for key, value in (("placement_id", claims.placement_id), ("publisher_id", claims.publisher_id),
                       ("user_id", user_id)):
        if value is not None:
            event[key] = value
    return event


def conversion_event(conversion_id: str, value: Union[Decimal, int, str], currency: str,
                     occurred_at_ms: int, *, token: Optional[str] = None,
                     click_id: Optional[str] = None) -> dict:
    """A conversion naming its click by the click's token and/or click_id (at least one)."""
    if token is None and click_id is None:
        raise ValueError("a conversion needs the click's token or its click_id")
    if isinstance(value, float):
        raise TypeError("value: a Decimal, int or decimal string (floats are not exact)")
    event = {"type": "conversion", "schema_version": SCHEMA_VERSION, "conversion_id": conversion_id,
             "value": str(value), "currency": currency, "occurred_at": occurred_at_ms}
    if token is not None:
        event["token"] = token
    if click_id is not None:
        event["click_id"] = click_id
    return event
