"""Click tokens at ingest (issue 17, "Trust boundary"; spec: docs/click-token.md).

Setting `click_token_mode` (common.schema):
  off      the token is not looked at (no verifier is built, the secret is never read);
  observe  each valid click's token (or its absence) is judged and counted per outcome, the click
           is accepted exactly as with `off`: what enforce would do, measured before switching;
  enforce  a click needs a valid token: its ad, campaign, advertiser and price are the token's;
           values the body sends anyway must equal them (else `token_mismatch`).

Outcomes (`TokenCheck.outcome`): VALID, MISSING_TOKEN, TOKEN_MISMATCH, or one of
click_token.REASONS (malformed, unknown_key, bad_signature, invalid_token, expired_token).
A key set that cannot be read (Secrets Manager error, invalid secret value) is not a token's
fault: `KeysUnavailable`, which the service turns into `retryable` clicks (enforce) or counts as
KEYS_UNAVAILABLE and accepts (observe).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Union

from common.click_token import (ClickClaims, KeyProvider, TokenRejected, VerifyPolicy, verify)
from ingest.models import ClickIn

OFF, OBSERVE, ENFORCE = "off", "observe", "enforce"
VALID = "valid"
MISSING_TOKEN = "missing_token"
TOKEN_MISMATCH = "token_mismatch"
KEYS_UNAVAILABLE = "keys_unavailable"  # a metric outcome only, never a click's reason
# body field -> claim the body's value must equal (cost: compared in micro-units)
BOUND_FIELDS = (("ad_id", "ad_id"), ("campaign_id", "campaign_id"),
                ("advertiser_id", "advertiser_id"))


class KeysUnavailable(Exception):
    """The key set could not be read: a dependency failure, not a bad token."""


@dataclasses.dataclass(frozen=True)
class TokenCheck:
    outcome: str  # VALID or a rejection reason
    claims: Optional[ClickClaims] = None  # when VALID
    detail: str = ""  # for logs, never for clients


class TokenVerifier:
    def __init__(self, mode: str, keys: KeyProvider, policy: VerifyPolicy) -> None:
        if mode not in (OBSERVE, ENFORCE):
            raise ValueError(f"no verifier in click_token_mode {mode!r}")
        self.mode, self.keys, self.policy = mode, keys, policy

    @property
    def enforcing(self) -> bool:
        return self.mode == ENFORCE

    def check(self, click: ClickIn, now_s: Union[int, float]) -> TokenCheck:
        """The outcome of one click's token; raises only KeysUnavailable."""
        if click.token is None:
            return TokenCheck(MISSING_TOKEN, detail="no token")
        try:
            claims = verify(click.token, self.keys, now_s, policy=self.policy)
        except TokenRejected as exc:
            return TokenCheck(exc.reason, detail=exc.detail)
        except Exception as exc:  # noqa: BLE001 - verify raises nothing else but the key provider's
            raise KeysUnavailable(f"{type(exc).__name__}: {exc}") from exc
        for body_field, claim in BOUND_FIELDS:
            sent = getattr(click, body_field)
            if sent is not None and sent != getattr(claims, claim):
                return TokenCheck(TOKEN_MISMATCH, detail=f"{body_field} differs from the token's")
        if click.cost is not None and click.cost_micros != claims.price_micros:
            return TokenCheck(TOKEN_MISMATCH, detail="cost differs from the token's price")
        return TokenCheck(VALID, claims)
