"""The retry rules of the clickagg SDKs (the browser SDK applies the same), as pure functions:
no I/O, no clock, no randomness of their own, so they are testable exactly.

Why resending is safe: every click carries a `click_id` made once by the client and kept on
every resend; the API claims each click_id in its dedup table before publishing, so a click it
already took comes back `duplicate` and is counted once. Delivery is at-least-once, counting is
exactly-once. That is what allows retrying when the outcome is unknown (a 5xx, a timeout, a
dropped connection): the click may or may not have been taken; sending it again cannot count it
twice.

Per item, in this order:

* the answer has per-item `results` (202, a 400 "no valid click", a 503 with results): each
  item is FINAL when its result is `accepted`, `duplicate` or `rejected`, RETRIED when
  `retryable` (or when its result is missing or unreadable);
* else by the whole request's HTTP status: RETRIED on a network error or timeout (no status),
  408, 429, 503 (honour `Retry-After`), and any other 5xx (500, 502, 504: outcome unknown, see
  above); FINAL `rejected` on any other status, e.g. 400 without results, 401, 403, 413, 415:
  sending the same bytes again would fail again. Their reason is the API's `error` text.

Waits: full jitter, `uniform(0, min(cap, base * 2**attempt))` (base 0.1 s, cap 10 s by
default); with a `Retry-After` (delta-seconds or an HTTP-date; at most RETRY_AFTER_CAP_S is
honoured), the wait is max(Retry-After, the jittered value).
"""
from __future__ import annotations

import dataclasses
import random
from email.utils import parsedate_to_datetime
from typing import Any, Optional, Sequence

__all__ = ["ACCEPTED", "DUPLICATE", "REJECTED", "RETRYABLE", "GAVE_UP", "FINAL_STATUSES",
           "RETRY_AFTER_CAP_S", "DEFAULT_BASE_S", "DEFAULT_CAP_S", "Decision", "backoff_s",
           "parse_retry_after", "retry_delay_s", "classify", "is_retryable_status"]

# per-item statuses of the API
ACCEPTED, DUPLICATE, REJECTED, RETRYABLE = "accepted", "duplicate", "rejected", "retryable"
# the SDK's own final status: still not final after the last attempt (or the deadline)
GAVE_UP = "gave_up"
FINAL_STATUSES = (ACCEPTED, DUPLICATE, REJECTED)
RETRY_AFTER_CAP_S = 60.0  # a longer Retry-After is honoured as this
DEFAULT_BASE_S = 0.1
DEFAULT_CAP_S = 10.0


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do with one item after one attempt. `final`: False = send it again. `status`:
    the API's item status (accepted/duplicate/rejected/retryable) or, for whole-request answers,
    `rejected` (final) or `retryable`. `reasons`: [{"field", "reason"}] as the API gave them."""

    final: bool
    status: str
    reasons: tuple = ()


def is_retryable_status(http_status: Optional[int]) -> bool:
    """Whole-request statuses worth sending again: no answer (None), 408, 429, any 5xx."""
    return http_status is None or http_status in (408, 429) or 500 <= http_status <= 599


def backoff_s(attempt: int, base: float = DEFAULT_BASE_S, cap: float = DEFAULT_CAP_S,
              rng: Optional[random.Random] = None) -> float:
    """Full-jitter exponential backoff before retry number `attempt` (0 = the first retry):
    uniform in [0, min(cap, base * 2**attempt)]."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    ceiling = min(cap, base * 2.0 ** min(attempt, 1000))
    return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds to wait from a Retry-After header value (RFC 9110 10.2.3): delta-seconds
    (digits only) or an HTTP-date (`now`: epoch seconds; a date in the past is 0.0). None for
    no header or anything else (negative, fractional, garbage). Not capped: see retry_delay_s."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(int(value))
    if not any(c.isalpha() for c in value):  # "-5", "1.5", "+3": not delta-seconds, not a date
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT; "-0000" parses naive
        from datetime import timezone
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def retry_delay_s(attempt: int, retry_after_s: Optional[float] = None, base: float = DEFAULT_BASE_S,
                  cap: float = DEFAULT_CAP_S, rng: Optional[random.Random] = None) -> float:
    """The wait before retry number `attempt`: the jittered backoff, or the server's Retry-After
    (capped at RETRY_AFTER_CAP_S) when that is longer."""
    jittered = backoff_s(attempt, base, cap, rng)
    if retry_after_s is None:
        return jittered
    return max(min(retry_after_s, RETRY_AFTER_CAP_S), jittered)


def _item_decision(result: Any) -> Decision:
    if not isinstance(result, dict):
        return Decision(False, RETRYABLE, ({"field": "response", "reason": "no result for this item"},))
    status = result.get("status")
    reasons = result.get("reasons")
    reasons = tuple(r for r in reasons if isinstance(r, dict)) if isinstance(reasons, list) else ()
    if status in FINAL_STATUSES:
        return Decision(True, status, reasons)
    if status == RETRYABLE:
        if not reasons and isinstance(result.get("reason"), str):
            reasons = ({"field": "item", "reason": result["reason"]},)
        return Decision(False, RETRYABLE, reasons)
    return Decision(False, RETRYABLE, ({"field": "response", "reason": f"unknown item status {status!r}"},))


def _per_item(body: Any, n_items: int) -> Optional[list]:
    """The body's results in item order (by their `index`, else by position), or None when the
    body has no usable per-item results."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or not results:
        return None
    ordered: list = [None] * n_items
    for pos, result in enumerate(results):
        index = result.get("index", pos) if isinstance(result, dict) else pos
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < n_items:
            ordered[index] = result
    return ordered


def _request_reason(http_status: Optional[int], body: Any, error: Optional[str]) -> dict:
    if http_status is None:
        return {"field": "request", "reason": f"no response: {error or 'network error'}"}
    text = body.get("error") if isinstance(body, dict) else None
    return {"field": "request", "reason": f"HTTP {http_status}: {text}" if text else f"HTTP {http_status}"}


def classify(http_status: Optional[int], body: Any, n_items: int, *,
             error: Optional[str] = None) -> list[Decision]:
    """One Decision per item of a request of `n_items` items, from its answer: `http_status`
    (None: no answer, `error` says why) and the parsed JSON body (None if absent or not JSON).
    Per-item results win whenever the body has them; else the whole request's status decides."""
    per_item = _per_item(body, n_items)
    if per_item is not None:
        return [_item_decision(r) for r in per_item]
    reason = _request_reason(http_status, body, error)
    if is_retryable_status(http_status):
        return [Decision(False, RETRYABLE, (reason,))] * n_items
    if 200 <= http_status <= 299:  # success without results: not this API's answer; unknown
        return [Decision(False, RETRYABLE, ({"field": "response", "reason":
                                             f"HTTP {http_status} without per-item results"},))] * n_items
    return [Decision(True, REJECTED, (reason,))] * n_items


def outcome_counts(decisions: Sequence[Decision]) -> dict[str, int]:
    """Items per status (for logs and stats)."""
    out: dict[str, int] = {}
    for d in decisions:
        out[d.status] = out.get(d.status, 0) + 1
    return out
