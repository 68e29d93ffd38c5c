"""One ingest request end to end: validate -> claim -> publish -> confirm/release -> outcomes.

AWS clients are injected, so the same code runs in Lambda, in the local stack and in tests.
"""
from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from common.config import IngestSettings
from common.click_token import TokenRejected, authenticate
from common.records import encode_click, encode_event, partition_key
from common.refused import Reason
from ingest.dedup import CLAIMED, DUPLICATE, IN_FLIGHT, ClaimRecord, DedupStore
from ingest.publisher import KinesisPublisher, OutRecord
from ingest.tokens import KEYS_UNAVAILABLE, VALID, KeysUnavailable, TokenVerifier
from ingest.events import (CONVERSION_CLAIM_PREFIX, EventsBatch, conversion_record,
                           impression_record)
from ingest.validation import ParsedBatch, ValidClick

ACCEPTED, REJECTED, RETRYABLE = "accepted", "rejected", "retryable"


@dataclass(frozen=True)
class RequestMeta:
    request_id: str
    source_ip: Optional[str]
    user_agent: Optional[str]


@dataclass(frozen=True)
class Refusal:
    """A click the service answered `rejected`, with its reasons as codes (what the refused-items
    archive keeps, common.refused)."""

    index: int
    click_id: Optional[str]
    reasons: tuple[Reason, ...]


@dataclass
class IngestOutcome:
    results: list[dict[str, Any]]
    counts: dict[str, int]
    timings_ms: dict[str, float] = field(default_factory=dict)
    unreleased_claims: int = 0
    unconfirmed_claims: int = 0
    token_outcomes: Counter = field(default_factory=Counter)  # click-token outcome -> clicks
    keys_error: Optional[str] = None  # why the click-token key set could not be read
    refusals: list[Refusal] = field(default_factory=list)  # the rejected clicks, by index

    @property
    def status_code(self) -> int:
        """202 unless nothing could be accepted and something was retryable (then 503), or every
        click was invalid (400)."""
        c = self.counts
        if c[ACCEPTED] + c[DUPLICATE] == 0:
            if c[RETRYABLE]:
                return 503
            return 400
        return 202


@dataclass(frozen=True)
class Outgoing:
    """An item on its way to a stream: answered as `name`; claimed as `claim_id` in the dedup
    table first (None: published unclaimed, as impressions are); `encode` makes its record
    (called only for an item that goes out: a duplicate's is never built)."""

    index: int
    name: str
    claim_id: Optional[str]
    encode: Callable[[], bytes]
    partition_key: str


def build_record(vc: ValidClick, meta: RequestMeta, ingest_ms: int) -> dict[str, Any]:
    """The stream record for a valid click: client fields + server-added ingest metadata."""
    c = vc.click
    return {
        "click_id": c.click_id,
        "ad_id": vc.ad_id,  # the token's under click_token_mode enforce, else the body's
        "campaign_id": vc.campaign_id,
        "advertiser_id": vc.advertiser_id,
        "user_id": c.user_id,
        "event_time": vc.event_time_ms,
        "cost_micros": vc.cost_micros,
        "ip": c.ip if c.ip is not None else meta.source_ip,
        "user_agent": c.user_agent if c.user_agent is not None else meta.user_agent,
        "referrer": c.referrer,
        "ingest_time": ingest_ms,
        "request_id": meta.request_id,
        "source_ip": meta.source_ip,
        "impression_id": vc.token.impression_id if vc.token else None,
        "issued_at": vc.token.issued_at * 1000 if vc.token else None,
    }


def _as_event_result(result: dict[str, Any], event_type: Optional[str]) -> dict[str, Any]:
    """A POST /v1/events result: `type` and `id` (the event's id) instead of `click_id`."""
    out = {"index": result["index"], "type": event_type, "id": result["click_id"]}
    out.update((k, v) for k, v in result.items() if k not in ("index", "click_id"))
    return out


class IngestService:
    def __init__(self, settings: IngestSettings, dedup: DedupStore, publisher: KinesisPublisher,
                 clock_ms=lambda: int(time.time() * 1000), tokens: Optional[TokenVerifier] = None,
                 links: Optional[Any] = None, refused: Optional[Any] = None,
                 public_tokens: Optional[TokenVerifier] = None,
                 events_publisher: Optional[KinesisPublisher] = None):
        self.settings, self.dedup, self.publisher, self.clock_ms = settings, dedup, publisher, clock_ms
        self.tokens = tokens  # None: click_token_mode off
        self.links = links  # ingest.redirect.LinkVerifier of GET /v1/c (every mode)
        # POST /v1/public/clicks' verifier: enforce, whatever click_token_mode says (ingest.public)
        self.public_tokens = public_tokens
        # ingest.refusals.RefusedArchive; None: refused items are answered and logged only
        self.refused = refused
        self.events_publisher = events_publisher  # the events stream (POST /v1/events)

    @staticmethod
    def _check_tokens(tokens: TokenVerifier, valid: list[ValidClick],
                      results: dict[int, dict[str, Any]], outcome: IngestOutcome,
                      now_ms: int) -> list[ValidClick]:
        """The clicks that go on: with enforce, those with a valid token (carrying its claims);
        the others get their result here. With observe, all of them, unchanged."""
        passed: list[ValidClick] = []
        for vc in valid:
            if outcome.keys_error is not None:  # read once per request: no retry storm
                check = None
            else:
                try:
                    check = tokens.check(vc.click, now_ms / 1000)
                except KeysUnavailable as exc:
                    outcome.keys_error, check = str(exc), None
            outcome.token_outcomes[check.outcome if check else KEYS_UNAVAILABLE] += 1
            if not tokens.enforcing:
                passed.append(vc)
            elif check is None:
                results[vc.index] = {"index": vc.index, "click_id": vc.click.click_id,
                                     "status": RETRYABLE, "reason": "click token keys unavailable"}
            elif check.outcome == VALID:
                passed.append(dataclasses.replace(vc, token=check.claims))
            else:
                results[vc.index] = {"index": vc.index, "click_id": vc.click.click_id,
                                     "status": REJECTED,
                                     "reasons": [{"field": "token", "reason": check.outcome}]}
                outcome.refusals.append(Refusal(vc.index, vc.click.click_id, (
                    Reason("token", check.outcome, check.detail),)))
        return passed

    def ingest(self, batch: ParsedBatch, meta: RequestMeta, *, verified: bool = False) -> IngestOutcome:
        """`verified`: the batch's clicks carry claims already verified (GET /v1/c,
        ingest.redirect): no click_token_mode check again."""
        return self._ingest(batch, meta, None if verified else self.tokens)

    def ingest_public(self, batch: ParsedBatch, meta: RequestMeta) -> IngestOutcome:
        """POST /v1/public/clicks (ingest.public): every click needs a valid token, whatever
        click_token_mode says (the token is the credential). Without an enforcing public
        verifier this refuses to run rather than accept clicks unverified."""
        if self.public_tokens is None or not self.public_tokens.enforcing:
            raise ValueError("POST /v1/public/clicks needs an enforcing click-token verifier")
        return self._ingest(batch, meta, self.public_tokens)

    def ingest_events(self, batch: EventsBatch, meta: RequestMeta) -> IngestOutcome:
        """POST /v1/events (ingest.events): clicks exactly as POST /v1/clicks; impressions
        published unclaimed; conversions claimed by conversion_id (their token authenticated,
        whatever click_token_mode says: it names the click), then published. One result per
        item, keyed `id` (the event's id) and `type`."""
        if self.events_publisher is None or self.public_tokens is None:
            raise ValueError("POST /v1/events needs the events stream and the click-token keys")
        clicks = self._ingest(batch.clicks, meta, self.tokens)
        outcome = IngestOutcome([], {}, timings_ms=dict(clicks.timings_ms),
                                token_outcomes=clicks.token_outcomes, keys_error=clicks.keys_error,
                                refusals=list(clicks.refusals))
        results: dict[int, dict[str, Any]] = {r["index"]: dict(r) for r in clicks.results}
        for rej in batch.rejected:
            results[rej.index] = {"index": rej.index, "click_id": rej.click_id, "status": REJECTED,
                                  "reasons": rej.reasons}
            outcome.refusals.append(Refusal(rej.index, rej.click_id, tuple(rej.archived_reasons())))
        for dup in batch.in_batch_duplicates:
            results[dup.index] = {"index": dup.index, "click_id": dup.event_id, "status": DUPLICATE,
                                  "reason": "repeated in this request"}
        now_ms = self.clock_ms()

        conversions = []  # (valid event, the token's claims or None)
        for ve in batch.conversions:
            claims = None
            if ve.event.token is not None:
                try:
                    claims = authenticate(ve.event.token, self.public_tokens.keys)
                except TokenRejected as exc:
                    results[ve.index] = {"index": ve.index, "click_id": ve.event_id, "status": REJECTED,
                                         "reasons": [{"field": "token", "reason": exc.reason}]}
                    outcome.refusals.append(Refusal(ve.index, ve.event_id, (
                        Reason("token", exc.reason, exc.detail),)))
                    continue
                except Exception as exc:  # noqa: BLE001 - the key provider's failure, not the token's
                    outcome.keys_error = f"{type(exc).__name__}: {exc}"
                    results[ve.index] = {"index": ve.index, "click_id": ve.event_id, "status": RETRYABLE,
                                         "reason": "click token keys unavailable"}
                    continue
            conversions.append((ve, claims))
        salts = self.settings.hot_ad_salts
        items = [Outgoing(ve.index, ve.event_id, None,
                          lambda e=ve.event: encode_event(impression_record(
                              e, now_ms, meta.request_id, meta.source_ip)),
                          partition_key(ve.event.ad_id, ve.event_id, salts))
                 for ve in batch.impressions]
        items += [Outgoing(ve.index, ve.event_id, CONVERSION_CLAIM_PREFIX + ve.event_id,
                           lambda e=ve.event, c=claims: encode_event(conversion_record(
                               e, c, now_ms, meta.request_id, meta.source_ip)),
                           partition_key(claims.ad_id if claims else ve.event_id, ve.event_id, salts))
                  for ve, claims in conversions]
        self._claim_and_publish(items, self.events_publisher, "conversion_id", meta, now_ms,
                                results, outcome)

        outcome.results = [_as_event_result(results[i], batch.types.get(i)) for i in sorted(results)]
        outcome.refusals.sort(key=lambda r: r.index)
        outcome.counts = {s: 0 for s in (ACCEPTED, DUPLICATE, REJECTED, RETRYABLE)}
        for r in outcome.results:
            outcome.counts[r["status"]] += 1
        return outcome

    def _claim_and_publish(self, items: list[Outgoing], publisher: KinesisPublisher, what: str,
                           meta: RequestMeta, now_ms: int, results: dict[int, dict[str, Any]],
                           outcome: IngestOutcome,
                           timings: Optional[dict[str, float]] = None) -> None:
        """The exactly-once step of every path: claim each item's id (conditional write), publish
        the claimed and the unclaimed ones, confirm the claims that reached the stream and
        release the others (a retry may claim them again); one result per item. `what`: the id's
        name in the answers ("click_id already accepted")."""
        ttl_s = now_ms // 1000 + self.settings.dedup_ttl_s
        to_claim = [o for o in items if o.claim_id is not None]
        claims = [ClaimRecord(o.claim_id, meta.request_id, now_ms, ttl_s) for o in to_claim]
        t0 = time.perf_counter()
        claim_outcomes = self.dedup.claim(claims) if claims else []
        if timings is not None:
            timings["dedup_ms"] = (time.perf_counter() - t0) * 1000
        going = [o for o in items if o.claim_id is None]
        claimed: dict[int, ClaimRecord] = {}
        for o, claim, claim_outcome in zip(to_claim, claims, claim_outcomes):
            if claim_outcome == CLAIMED:
                going.append(o)
                claimed[o.index] = claim
            elif claim_outcome == DUPLICATE:
                results[o.index] = {"index": o.index, "click_id": o.name, "status": DUPLICATE,
                                    "reason": f"{what} already accepted"}
            else:
                reason = (f"another request is processing this {what}" if claim_outcome == IN_FLIGHT
                          else "dedup store unavailable")
                results[o.index] = {"index": o.index, "click_id": o.name, "status": RETRYABLE,
                                    "reason": reason}
        t0 = time.perf_counter()
        published = publisher.publish([OutRecord(o.index, o.encode(), o.partition_key)
                                       for o in going]) if going else None
        if timings is not None:
            timings["publish_ms"] = (time.perf_counter() - t0) * 1000
        succeeded = published.succeeded if published else []
        failed = published.failed if published else []
        to_release = [claimed[i] for i in failed if i in claimed]
        to_confirm = [claimed[i] for i in succeeded if i in claimed]
        if to_release:
            outcome.unreleased_claims += len(self.dedup.release(to_release))
        if to_confirm:
            outcome.unconfirmed_claims += len(self.dedup.confirm(to_confirm))
        names = {o.index: o.name for o in going}
        for i in succeeded:
            results[i] = {"index": i, "click_id": names[i], "status": ACCEPTED}
        for i in failed:
            results[i] = {"index": i, "click_id": names[i], "status": RETRYABLE,
                          "reason": "stream write failed after retries"}

    def _ingest(self, batch: ParsedBatch, meta: RequestMeta,
                tokens: Optional[TokenVerifier]) -> IngestOutcome:
        """`tokens`: the verifier judging the batch's tokens (None: not looked at)."""
        results: dict[int, dict[str, Any]] = {}
        outcome = IngestOutcome([], {})
        for rej in batch.rejected:
            results[rej.index] = {"index": rej.index, "click_id": rej.click_id, "status": REJECTED,
                                  "reasons": rej.reasons}
            outcome.refusals.append(Refusal(rej.index, rej.click_id, tuple(rej.archived_reasons())))
        for dup in batch.in_batch_duplicates:
            results[dup.index] = {"index": dup.index, "click_id": dup.click.click_id,
                                  "status": DUPLICATE, "reason": "repeated in this request"}
        timings: dict[str, float] = {}
        now_ms = self.clock_ms()
        valid = (self._check_tokens(tokens, batch.valid, results, outcome, now_ms)
                 if tokens is not None else batch.valid)
        items = [Outgoing(vc.index, vc.click.click_id, vc.click.click_id,
                          lambda vc=vc: encode_click(build_record(vc, meta, now_ms)),
                          partition_key(vc.ad_id, vc.click.click_id, self.settings.hot_ad_salts))
                 for vc in valid]
        self._claim_and_publish(items, self.publisher, "click_id", meta, now_ms, results, outcome,
                                timings)

        outcome.results = [results[i] for i in sorted(results)]
        outcome.refusals.sort(key=lambda r: r.index)
        outcome.counts = {s: 0 for s in (ACCEPTED, DUPLICATE, REJECTED, RETRYABLE)}
        for r in outcome.results:
            outcome.counts[r["status"]] += 1
        outcome.timings_ms = timings
        return outcome
