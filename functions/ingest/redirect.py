"""GET /v1/c?t=TOKEN: click links without JavaScript (issue 17). Spec: docs/click-token.md,
"Click links"; the HTTP edge is ingest.handler.get_click_link.

The token is the request's only input, so it is always verified, whatever click_token_mode says
(`LinkVerifier`, the same key set and limits as the POST path). A valid token's click goes
through the POST path's own claim -> publish -> confirm (IngestService.ingest, one click, token
already verified), then the browser gets `302 Location: <the token's landing_url>`: the Location
is only ever the signed URL (https, a DNS host, RFC 3986 characters: click_token.url_problem, so
a token with any other URL cannot be issued), never anything the request says. A token that is
not valid gets a 4xx with its reason and no redirect; nothing is published.

The click the link records:
* click_id = "r1-" + sha256("clickagg/redirect/v1\\0" + impression_id), hex, 40 digits. One
  billable click per impression (the issue's rule): a browser following the same link twice, a
  double click, a prefetch and a reload are all the same click_id, so the dedup claim makes
  every repeat a `duplicate` (still redirected). The key is the impression alone, not the token:
  an ad server that re-signed an impression (another issued_at) still gets one click. The
  prefix and the domain string keep these ids apart from SDK click_ids and from any future
  scheme. Repeats are caught for as long as the dedup table remembers (dedup_ttl_s, default
  24 h = click_token_max_age_s): keep dedup_ttl_s >= click_token_max_age_s + clock skew.
* user_id: the link carries none, so a documented stand-in:
  "anon-" + sha256(source_ip + "\\n" + user_agent), hex, 32 digits: stable for one browser on
  one network (what IVT rules per user need), not a person's identity, no raw IP in the field.
* ip, user_agent: the request's; referrer: the request's Referer header (the publisher page),
  truncated to the POST path's limits; event time: now (the request's arrival); ad, campaign,
  advertiser, price: the token's.
"""
from __future__ import annotations

import dataclasses
import hashlib
from decimal import Decimal
from typing import Optional, Union

from common.click_token import ClickClaims, KeyProvider, TokenRejected, VerifyPolicy, verify
from ingest.models import COST_DECIMAL_PLACES, ClickIn
from ingest.tokens import KeysUnavailable
from ingest.validation import ParsedBatch, ValidClick

PATH = "/v1/c"
CLICK_ID_PREFIX = "r1-"
_CLICK_ID_DOMAIN = b"clickagg/redirect/v1\0"
USER_ID_PREFIX = "anon-"
MAX_USER_AGENT, MAX_REFERRER = 512, 2048  # ingest.models.ClickIn's limits
# answers' headers: never cached (each follow is a click to judge; a cached 302 would skip it),
# and the landing page is not told the publisher page (the token already says what it may know)
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
# token reason -> HTTP status of the refusal
MISSING = "missing_token"  # no t, an empty t, or more than one t
STATUS = {MISSING: 400, "malformed": 400, "unknown_key": 403, "bad_signature": 403,
          "invalid_token": 403, "expired_token": 410}


def click_id_for(impression_id: str) -> str:
    return CLICK_ID_PREFIX + hashlib.sha256(
        _CLICK_ID_DOMAIN + impression_id.encode("ascii")).hexdigest()[:40]


def stand_in_user_id(source_ip: Optional[str], user_agent: Optional[str]) -> str:
    raw = f"{source_ip or ''}\n{user_agent or ''}".encode("utf-8", "replace")
    return USER_ID_PREFIX + hashlib.sha256(raw).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class LinkVerifier:
    """verify() of the link's token with the ingest key set and limits, in every mode."""

    keys: KeyProvider
    policy: VerifyPolicy

    def verify(self, token: str, now_s: Union[int, float]) -> ClickClaims:
        """The claims, or TokenRejected (the token's fault), or KeysUnavailable (ours)."""
        try:
            return verify(token, self.keys, now_s, policy=self.policy)
        except TokenRejected:
            raise
        except Exception as exc:  # noqa: BLE001 - only the key provider raises anything else
            raise KeysUnavailable(f"{type(exc).__name__}: {exc}") from exc


def link_click(claims: ClickClaims, token: str, source_ip: Optional[str],
               user_agent: Optional[str], referrer: Optional[str], now_ms: int) -> ParsedBatch:
    """The one-click batch IngestService.ingest(..., verified=True) records for a valid link."""
    click = ClickIn.model_construct(
        click_id=click_id_for(claims.impression_id), ad_id=claims.ad_id,
        campaign_id=claims.campaign_id, advertiser_id=claims.advertiser_id,
        user_id=stand_in_user_id(source_ip, user_agent), timestamp=now_ms,
        cost=Decimal(claims.price_micros).scaleb(-COST_DECIMAL_PLACES), ip=None,
        user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
        referrer=referrer[:MAX_REFERRER] if referrer else None, token=token)
    return ParsedBatch([ValidClick(0, click, now_ms, token=claims)], [], [])
