"""POST /v1/events (issue 19, docs/events.md): impressions, clicks and conversions in one batch.

Pure: from the request's items to what the service does with each (no AWS here).
* a `click` item is validated exactly as on POST /v1/clicks (ingest.validation.validate_item,
  same click_token_mode) and takes the click path (claim, clicks stream);
* an `impression` (ingest.models.ImpressionIn) is published to the events stream **unclaimed**:
  counted once per impression_id downstream (the Flink job, the nightly batch);
* a `conversion` (ingest.models.ConversionIn) claims its conversion_id in the dedup table, then
  is published to the events stream; the click's token, when sent, is authenticated (MAC and
  payload, not its age: click_token.authenticate) and says the ad, campaign and advertiser.
An id repeated within the request is a `duplicate` of its first valid occurrence, per type.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from pydantic import ValidationError

from common.click_token import ClickClaims
from common.config import IngestSettings
from ingest.models import ConversionIn, ImpressionIn
from ingest.validation import ParsedBatch, Rejection, _field_reasons, batch_items, validate_item

PATH = "/v1/events"
CLICK, IMPRESSION, CONVERSION = "click", "impression", "conversion"
EVENT_TYPES = (IMPRESSION, CLICK, CONVERSION)
CONVERSION_CLAIM_PREFIX = "conversion "  # + conversion_id: a space no click_id can contain


@dataclass(frozen=True)
class ValidEvent:
    index: int
    event: Union[ImpressionIn, ConversionIn]

    @property
    def event_id(self) -> str:
        e = self.event
        return e.impression_id if isinstance(e, ImpressionIn) else e.conversion_id


@dataclass
class EventsBatch:
    clicks: ParsedBatch  # indexes are the request's
    impressions: list[ValidEvent] = field(default_factory=list)
    conversions: list[ValidEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)  # impressions, conversions, bad types
    in_batch_duplicates: list[ValidEvent] = field(default_factory=list)
    types: dict[int, str] = field(default_factory=dict)  # index -> type (when it had a known one)


def extract_events(payload: Any, settings: IngestSettings) -> list[Any]:
    """`{"events": [...]}` or a bare array; 1..max_batch items."""
    return batch_items(payload, settings, "events", single=False, not_a_batch=(
        'body must be {"events": [...]} or an array of events', "not_an_event_batch"))


def _event_id(item: Any, type_: Optional[str]) -> Optional[str]:
    key = {CLICK: "click_id", IMPRESSION: "impression_id", CONVERSION: "conversion_id"}.get(type_ or "")
    value = item.get(key) if isinstance(item, dict) and key else None
    return value if isinstance(value, str) else None


def _in_bounds(index: int, event_id: str, event_ms: int, settings: IngestSettings,
               now_ms: int, what: str) -> Optional[Rejection]:
    if event_ms > now_ms + settings.max_future_skew_s * 1000:
        return Rejection(index, event_id, [{"field": what, "reason": f"more than "
                         f"{settings.max_future_skew_s}s in the future (clock skew limit)"}],
                         ("too_far_in_future",))
    if event_ms < now_ms - settings.max_age_s * 1000:
        return Rejection(index, event_id, [{"field": what, "reason":
                         f"older than the maximum age of {settings.max_age_s}s"}], ("too_old",))
    return None


def _in_currency(index: int, event_id: str, currency: str,
                 settings: IngestSettings) -> Optional[Rejection]:
    """One currency per deployment (`billing_currency`): conversion value and click prices are
    summed into ROAS and spend, so a value in another currency is refused, not mixed in."""
    if currency == settings.billing_currency:
        return None
    return Rejection(index, event_id, [{"field": "currency", "reason":
                     f"must be {settings.billing_currency}, this deployment's billing currency "
                     f"(convert the value before sending)"}], ("wrong_currency",))


def parse_events(items: list[Any], settings: IngestSettings, now_ms: int) -> EventsBatch:
    """Every item validated by its type; ids repeated in the request are in-batch duplicates."""
    batch = EventsBatch(ParsedBatch([], [], []))
    seen: dict[str, set[str]] = {t: set() for t in EVENT_TYPES}
    for index, item in enumerate(items):
        type_ = item.get("type") if isinstance(item, dict) else None
        if type_ not in EVENT_TYPES:
            batch.rejected.append(Rejection(index, None, [{
                "field": "type", "reason": f"must be one of {', '.join(EVENT_TYPES)}"}],
                ("unknown_event_type",)))
            continue
        batch.types[index] = type_
        if type_ == CLICK:
            result = validate_item(index, item, settings, now_ms)
            if isinstance(result, Rejection):
                batch.clicks.rejected.append(result)
            elif result.click.click_id in seen[CLICK]:
                batch.clicks.in_batch_duplicates.append(result)
            else:
                seen[CLICK].add(result.click.click_id)
                batch.clicks.valid.append(result)
            continue
        model = ImpressionIn if type_ == IMPRESSION else ConversionIn
        try:
            event = model.model_validate(item)
        except ValidationError as exc:
            batch.rejected.append(_field_reasons(index, _event_id(item, type_), exc))
            continue
        valid = ValidEvent(index, event)
        bounds = _in_bounds(index, valid.event_id, event.event_time_ms, settings, now_ms,
                            "timestamp" if type_ == IMPRESSION else "occurred_at")
        if not bounds and type_ == CONVERSION:
            bounds = _in_currency(index, valid.event_id, event.currency, settings)
        if bounds:
            batch.rejected.append(bounds)
        elif valid.event_id in seen[type_]:
            batch.in_batch_duplicates.append(valid)
        else:
            seen[type_].add(valid.event_id)
            (batch.impressions if type_ == IMPRESSION else batch.conversions).append(valid)
    return batch


def impression_record(e: ImpressionIn, ingest_ms: int, request_id: str,
                      source_ip: Optional[str]) -> dict[str, Any]:
    return {"event_type": IMPRESSION, "event_id": e.impression_id, "schema_version": e.schema_version,
            "ad_id": e.ad_id, "campaign_id": e.campaign_id, "advertiser_id": e.advertiser_id,
            "event_time": e.event_time_ms, "impression_id": e.impression_id,
            "placement_id": e.placement_id, "publisher_id": e.publisher_id, "user_id": e.user_id,
            "ingest_time": ingest_ms, "request_id": request_id, "source_ip": source_ip}


def conversion_record(e: ConversionIn, claims: Optional[ClickClaims], ingest_ms: int,
                      request_id: str, source_ip: Optional[str]) -> dict[str, Any]:
    """The token's ids when it was sent (authenticated); else only the click_id names the click
    (the nightly batch attributes it)."""
    return {"event_type": CONVERSION, "event_id": e.conversion_id, "schema_version": e.schema_version,
            "ad_id": claims.ad_id if claims else None,
            "campaign_id": claims.campaign_id if claims else None,
            "advertiser_id": claims.advertiser_id if claims else None,
            "event_time": e.event_time_ms, "impression_id": claims.impression_id if claims else None,
            "click_id": e.click_id, "placement_id": claims.placement_id if claims else None,
            "publisher_id": claims.publisher_id if claims else None,
            "value_micros": e.value_micros, "currency": e.currency,
            "attributed_by": "token" if claims else "click_id",
            "ingest_time": ingest_ms, "request_id": request_id, "source_ip": source_ip}
