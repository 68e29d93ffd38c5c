"""Pure request validation: from an HTTP body to valid clicks and per-item rejections.

Nothing here talks to AWS, so every rule is unit-tested directly.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Optional

from pydantic import ValidationError

from common.config import IngestSettings
from common.click_token import ClickClaims
from common.refused import Reason
from ingest.models import ClickIn, TokenClickIn


@dataclass(frozen=True)
class RequestError(Exception):
    """The whole request is refused: HTTP status + a reason a client developer can act on;
    `field` + `code` (common.refused.REQUEST_CODES) name it in the refused-items archive."""

    status: int
    reason: str
    details: list = field(default_factory=list)
    field: str = "body"
    code: str = "invalid_request"


@dataclass(frozen=True)
class Rejection:
    index: int
    click_id: Optional[str]
    reasons: list[dict[str, str]]  # what the client is told: {"field", "reason": message}
    codes: tuple[str, ...] = ()  # codes[i]: reasons[i]'s reason code (the refused archive's)

    def archived_reasons(self) -> list[Reason]:
        return [Reason(r["field"], code, r["reason"]) for r, code in zip(self.reasons, self.codes)]


@dataclass(frozen=True)
class ValidClick:
    index: int
    click: ClickIn
    event_time_ms: int
    token: Optional[ClickClaims] = None  # the verified token's claims (click_token_mode enforce)

    # what the click is about: the token's word when there is one, else the body's
    @property
    def ad_id(self) -> str:
        return self.token.ad_id if self.token else self.click.ad_id

    @property
    def campaign_id(self) -> str:
        return self.token.campaign_id if self.token else self.click.campaign_id

    @property
    def advertiser_id(self) -> str:
        return self.token.advertiser_id if self.token else self.click.advertiser_id

    @property
    def cost_micros(self) -> int:
        return self.token.price_micros if self.token else self.click.cost_micros


@dataclass
class ParsedBatch:
    valid: list[ValidClick]
    rejected: list[Rejection]
    in_batch_duplicates: list[ValidClick]  # same click_id again in the same request


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def check_content_type(headers: dict[str, str], allowed: tuple[str, ...] = ("application/json",)) -> None:
    """415 unless the media type (parameters such as charset ignored: the body is parsed as
    UTF-8 JSON whatever it says) is one of `allowed`."""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in allowed:
        raise RequestError(415, f"Content-Type must be {' or '.join(allowed)}, got {content_type!r}",
                           field="content_type", code="unsupported_media_type")


def decode_body(body: Optional[str], is_base64: bool, settings: IngestSettings) -> Any:
    """Body text -> JSON value. Decimals stay exact (parse_float=Decimal); NaN/Infinity refused."""
    if body is None or body == "":
        raise RequestError(400, "request body is empty; expected a click or {\"clicks\": [...]}",
                           code="empty_body")
    raw = base64.b64decode(body) if is_base64 else body.encode("utf-8", "surrogatepass")
    if len(raw) > settings.max_body_bytes:
        raise RequestError(413, f"body is {len(raw)} bytes; the limit is {settings.max_body_bytes}",
                           code="body_too_large")
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        raise RequestError(400, "body is nested too deeply", code="too_deeply_nested") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"body is not valid JSON: {exc}", code="invalid_json") from None


def batch_items(payload: Any, settings: IngestSettings, key: str, *, single: bool,
                not_a_batch: tuple[str, str]) -> list[Any]:
    """The items of `{key: [...]}` or a bare array (and, when `single`, of one bare object):
    1..max_batch of them; RequestError otherwise, with codes named after `key` (`<key>_not_an_array`,
    `no_<key>`, `too_many_<key>`) and `not_a_batch` = (message, code) for any other body."""
    if isinstance(payload, dict) and key in payload:
        items = payload[key]
        if not isinstance(items, list):
            raise RequestError(400, f"'{key}' must be an array", field=key,
                               code=f"{key}_not_an_array")
    elif isinstance(payload, list):
        items = payload
    elif single and isinstance(payload, dict):
        items = [payload]
    else:
        raise RequestError(400, not_a_batch[0], code=not_a_batch[1])
    if not items:
        raise RequestError(400, f"no {key} in request", field=key, code=f"no_{key}")
    if len(items) > settings.max_batch:
        raise RequestError(413, f"{len(items)} {key} in one request; the limit is {settings.max_batch}",
                           field=key, code=f"too_many_{key}")
    return items


def extract_items(payload: Any, settings: IngestSettings) -> list[Any]:
    """Accept one click object, {"clicks": [...]}, or a bare JSON array of clicks."""
    return batch_items(payload, settings, "clicks", single=True, not_a_batch=(
        'body must be a click object or {"clicks": [...]}', "not_a_click_batch"))


def _field_reasons(index: int, click_id: Optional[str], exc: ValidationError) -> Rejection:
    """Pydantic's errors: the message for the client, the error type as the reason code."""
    errors = exc.errors(include_url=False, include_input=False)
    return Rejection(index, click_id, [
        {"field": ".".join(str(p) for p in err["loc"]) or "click", "reason": err["msg"]}
        for err in errors
    ], tuple(err["type"] for err in errors))


def validate_item(index: int, item: Any, settings: IngestSettings, now_ms: int, *,
                  token_required: bool = False, ignored_fields: frozenset = frozenset()):
    """One item -> ValidClick or Rejection (with field-level reasons); never raises.
    `token_required`: the click is judged as under click_token_mode enforce (ids and cost may
    come from the token), whatever the mode; `ignored_fields`: members of the item that are not
    looked at (not validated, not kept) - both for POST /v1/public/clicks (ingest.public)."""
    click_id = item.get("click_id") if isinstance(item, dict) else None
    click_id = click_id if isinstance(click_id, str) else None
    if not isinstance(item, dict):
        return Rejection(index, None, [{"field": "click", "reason": "must be a JSON object"}],
                         ("not_an_object",))
    if ignored_fields:
        item = {k: v for k, v in item.items() if k not in ignored_fields}
    model = TokenClickIn if token_required or settings.click_token_mode == "enforce" else ClickIn
    try:
        click = model.model_validate(item)
    except ValidationError as exc:
        return _field_reasons(index, click_id, exc)
    event_ms = click.event_time_ms
    if event_ms > now_ms + settings.max_future_skew_s * 1000:
        return Rejection(index, click_id, [{
            "field": "timestamp",
            "reason": f"more than {settings.max_future_skew_s}s in the future (clock skew limit)",
        }], ("too_far_in_future",))
    if event_ms < now_ms - settings.max_age_s * 1000:
        return Rejection(index, click_id, [{
            "field": "timestamp", "reason": f"older than the maximum age of {settings.max_age_s}s",
        }], ("too_old",))
    return ValidClick(index, click, event_ms)


def parse_batch(items: list[Any], settings: IngestSettings, now_ms: int, *,
                token_required: bool = False, ignored_fields: frozenset = frozenset()) -> ParsedBatch:
    """Every item validated (validate_item, same keywords); a click_id repeated in the request is
    an in-batch duplicate of its first valid occurrence."""
    batch = ParsedBatch([], [], [])
    seen: set[str] = set()
    for index, item in enumerate(items):
        result = validate_item(index, item, settings, now_ms, token_required=token_required,
                               ignored_fields=ignored_fields)
        if isinstance(result, Rejection):
            batch.rejected.append(result)
        elif result.click.click_id in seen:
            batch.in_batch_duplicates.append(result)
        else:
            seen.add(result.click.click_id)
            batch.valid.append(result)
    return batch
