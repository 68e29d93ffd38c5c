"""POST /v1/public/clicks: clicks from browsers and apps, with no API key (issue 17: "the token is
the proof"). Pure rules; the HTTP edge is ingest.handler.post_public_clicks, the path and CORS are
common.public_route's.

Same body as POST /v1/clicks (one click, {"clicks": [...]} up to 500, or an array; same limits
and per-item results), judged as under click_token_mode=enforce whatever the mode is:
* every click needs a valid token: no token or a bad one -> `rejected` with
  {"field": "token", "reason": R} (missing_token, token_mismatch, malformed, unknown_key,
  bad_signature, invalid_token, expired_token); the key set unreadable -> `retryable`;
* ad_id, campaign_id, advertiser_id and the price are the token's (the body may leave them out;
  if it sends them they must equal the token's, else token_mismatch);
* the network facts are the request's, never the body's: `ip` = the request's source IP,
  `user_agent` = its User-Agent header (cut to ClickIn's 512 characters). The body's `ip` and
  `user_agent` are ignored: not validated, not kept (a page's script could claim anything; the
  API-key route keeps accepting them, since an ad server forwards its user's);
* `referrer`: the body's, else the request's Referer header (the publisher page; cut to 2048);
* click_id, user_id and timestamp: the body's, with POST /v1/clicks' rules. A second click of an
  impression under another click_id is recorded and flagged `impression_repeat` (invalid, never
  billed) by the IVT rules (common.ivt): one billable click per impression.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from ingest.redirect import MAX_REFERRER, MAX_USER_AGENT
from ingest.validation import ParsedBatch, ValidClick

# body members the public route does not look at: the request says them
IGNORED_FIELDS = frozenset({"ip", "user_agent"})


def with_request_facts(batch: ParsedBatch, user_agent: Optional[str],
                       referrer: Optional[str]) -> ParsedBatch:
    """The batch's valid clicks with the request's network facts: no ip of their own (the stream
    record then takes the request's source IP, ingest.service.build_record), the request's user
    agent, and the Referer header where the body sent no referrer."""
    ua = user_agent[:MAX_USER_AGENT] if user_agent else None
    ref = referrer[:MAX_REFERRER] if referrer else None

    def facts(vc: ValidClick) -> ValidClick:
        update = {"ip": None, "user_agent": ua}
        if vc.click.referrer is None:
            update["referrer"] = ref
        return dataclasses.replace(vc, click=vc.click.model_copy(update=update))

    return ParsedBatch([facts(vc) for vc in batch.valid], batch.rejected,
                       [facts(vc) for vc in batch.in_batch_duplicates])
