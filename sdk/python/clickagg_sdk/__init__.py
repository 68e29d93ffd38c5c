"""clickagg SDK for Python: issue click tokens (ad servers) and send clicks to the ingest API.

    from clickagg_sdk import TokenIssuer, parse_key_set, ClickClient, ClickSender, PacingClient

    issuer = TokenIssuer(parse_key_set(secret_value), ttl_s=3600)
    token = issuer.issue(ad_id="ad-1", campaign_id="cmp-1", advertiser_id="adv-1",
                         price_micros=250_000, landing_url="https://shop.example/landing")

    with ClickSender(ClickClient("https://api.example/prod", api_key=KEY)) as sender:
        sender.track({"user_id": "u-1", "token": token})
    pacing = PacingClient("https://api.example/prod", sign=sigv4)  # pacing.may_serve("cmp-1") per ad

`click_token` is the spec's reference implementation (docs/click-token.md), the same file the
ingest Lambda verifies with (functions/common/click_token.py, put into the wheel at build time).
"""
from . import click_token
from .click_token import (ClaimsError, ClickClaims, KeyConfigError, SecretKeys, StaticKeys,
                          TokenRejected, VerifyPolicy, issue, parse_key_set, verify)
from .client import Attempt, ClickClient, EventClient, ItemOutcome
from .events import conversion_event, impression_event
from .ids import uuid7
from .pacing import PacingClient
from .retry import ACCEPTED, DUPLICATE, GAVE_UP, REJECTED, RETRYABLE, Decision
from .sender import ClickSender, QueueFull, SenderClosed
from .tokens import TokenIssuer

__version__ = "0.1.0"

__all__ = [
    "click_token", "ClickClaims", "StaticKeys", "parse_key_set", "SecretKeys", "verify",
    "VerifyPolicy", "TokenRejected", "ClaimsError", "KeyConfigError", "issue", "TokenIssuer",
    "uuid7", "ClickClient", "EventClient", "impression_event", "conversion_event", "ClickSender", "Attempt", "ItemOutcome", "Decision", "QueueFull",
    "SenderClosed", "ACCEPTED", "DUPLICATE", "REJECTED", "RETRYABLE", "GAVE_UP", "PacingClient",
]
