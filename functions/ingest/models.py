"""Request models: what a client may send for one click (Powertools parser = pydantic v2)."""
from __future__ import annotations

import ipaddress
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional, Union

from aws_lambda_powertools.utilities.parser import BaseModel, Field, field_validator, model_validator
from pydantic import ConfigDict, StrictInt, StrictStr

from common.times import in_bounds, iso8601_ms

MAX_COST = Decimal("10000")  # per click; anything larger is a client bug, not a price
COST_DECIMAL_PLACES = 6  # cost is stored as integer micro-units downstream

Identifier = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7E]+$")]

# Versioned event schemas (docs/events.md, "Versions"): each event type's versions this API
# reads. A change that old events would fail is a new version; within a version, fields are only
# added, and optional (tests/contract keeps every published example of every version valid).
SCHEMA_VERSIONS: dict[str, tuple[int, ...]] = {"click": (1,), "impression": (1,), "conversion": (1,)}


def decimal_number(name: str, value: Any) -> Any:
    """Money arrives as a decimal number or string. JSON is parsed with parse_float=Decimal, so a
    float here did not come from JSON text we control; bools are ints in Python and must not
    become 0/1."""
    if isinstance(value, (bool, float)):
        raise ValueError(f"{name} must be a decimal number or string")
    return value


def micro_precision(name: str, value: Optional[Decimal]) -> Optional[Decimal]:
    """At most COST_DECIMAL_PLACES decimals: money is stored as integer micro-units downstream."""
    if value is not None and value != value.quantize(Decimal(1).scaleb(-COST_DECIMAL_PLACES)):
        raise ValueError(f"{name} has more than {COST_DECIMAL_PLACES} decimal places")
    return value


def _version_check(event_type: str):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or value not in SCHEMA_VERSIONS[event_type]:
            raise ValueError(f"unsupported schema_version {value!r} for {event_type} events; "
                             f"this API reads {list(SCHEMA_VERSIONS[event_type])}")
        return value
    return check


def SchemaVersion(event_type: str):  # noqa: N802 - a type factory, named like the types it makes
    """`schema_version`: optional (absent = 1, what every event before versions was), one of
    SCHEMA_VERSIONS[event_type]."""
    from pydantic import AfterValidator
    return Annotated[StrictInt, Field(default=1, description=f"{event_type} event schema version; "
                                      f"absent means 1",
                                      json_schema_extra={"enum": list(SCHEMA_VERSIONS[event_type])}),
                     AfterValidator(_version_check(event_type))]


class ClickIn(BaseModel):
    """One click as posted by an ad SDK. Unknown fields are ignored (forward compatibility)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Optional[Literal["click"]] = None  # POST /v1/events names it; POST /v1/clicks may not
    schema_version: SchemaVersion("click") = 1
    click_id: Identifier
    ad_id: Identifier
    campaign_id: Identifier
    advertiser_id: Identifier
    user_id: Identifier
    timestamp: Union[StrictInt, StrictStr] = Field(
        description="event time: epoch milliseconds, or ISO-8601 with a UTC offset"
    )
    cost: Decimal = Field(ge=0, le=MAX_COST, allow_inf_nan=False)
    ip: Optional[StrictStr] = Field(default=None, max_length=45)
    user_agent: Optional[StrictStr] = Field(default=None, max_length=512)
    referrer: Optional[StrictStr] = Field(default=None, max_length=2048)
    # the ad server's signed click token (docs/click-token.md), judged by ingest.tokens, not
    # here: any JSON value is kept as sent, so a bad token gets a token reason (malformed, ...)
    # and, with click_token_mode off, a click is accepted exactly as before tokens existed
    token: Any = None

    @field_validator("cost", mode="before")
    @classmethod
    def _cost_is_a_decimal_number(cls, value):
        return decimal_number("cost", value)

    @field_validator("cost")
    @classmethod
    def _cost_precision(cls, value: Optional[Decimal]) -> Optional[Decimal]:
        return micro_precision("cost", value)

    @field_validator("timestamp")
    @classmethod
    def _timestamp_parses(cls, value):
        to_epoch_ms(value)  # raises ValueError with the reason
        return value

    @field_validator("user_agent", "referrer")
    @classmethod
    def _text_is_utf8(cls, value):
        if value is not None:
            value.encode("utf-8")  # lone surrogates (from "\\ud800" escapes) raise here
        return value

    @field_validator("ip")
    @classmethod
    def _ip_is_an_address(cls, value):
        if value is not None:
            ipaddress.ip_address(value)
        return value

    @property
    def event_time_ms(self) -> int:
        return to_epoch_ms(self.timestamp)

    @property
    def cost_micros(self) -> Optional[int]:
        return None if self.cost is None else int(self.cost.scaleb(COST_DECIMAL_PLACES))


class TokenClickIn(ClickIn):
    """A click under click_token_mode=enforce: the ad, campaign, advertiser and price come from
    the token, so the body may leave them out; when sent they must equal the token's
    (ingest.tokens: token_mismatch otherwise)."""

    ad_id: Optional[Identifier] = None
    campaign_id: Optional[Identifier] = None
    advertiser_id: Optional[Identifier] = None
    cost: Optional[Decimal] = Field(default=None, ge=0, le=MAX_COST, allow_inf_nan=False)


EventTime = Annotated[Union[StrictInt, StrictStr], Field(
    description="epoch milliseconds, or ISO-8601 with a UTC offset")]
MAX_CONVERSION_VALUE = Decimal("1000000000")  # per conversion, in the currency's units
Currency = Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]


class ImpressionIn(BaseModel):
    """One served ad, reported by the ad server (server to server, API key) when it serves it:
    the definition of an impression here (docs/events.md). `impression_id` is the click token's
    `imp` claim, so clicks and conversions join their impression; counted once per
    impression_id (deduplicated downstream, not claimed at ingest: impressions are 10-100x
    the clicks)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["impression"]
    schema_version: SchemaVersion("impression") = 1
    impression_id: Identifier
    ad_id: Identifier
    campaign_id: Identifier
    advertiser_id: Identifier
    timestamp: EventTime  # when the ad was served
    placement_id: Optional[Identifier] = None
    publisher_id: Optional[Identifier] = None
    user_id: Optional[Identifier] = None

    @field_validator("timestamp")
    @classmethod
    def _timestamp_parses(cls, value):
        to_epoch_ms(value)
        return value

    @property
    def event_time_ms(self) -> int:
        return to_epoch_ms(self.timestamp)


class ConversionIn(BaseModel):
    """One conversion, posted by the advertiser server to server (API key; never from a
    browser). It names the click it is attributed to: the click's token (the ids are the
    token's) and/or its click_id; at least one. Deduplicated by conversion_id."""

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra={
        "anyOf": [{"required": ["click_id"]}, {"required": ["token"]}]})

    type: Literal["conversion"]
    schema_version: SchemaVersion("conversion") = 1
    conversion_id: Identifier
    click_id: Optional[Identifier] = None
    token: Optional[StrictStr] = Field(default=None, max_length=4096)
    value: Decimal = Field(ge=0, le=MAX_CONVERSION_VALUE, allow_inf_nan=False)
    currency: Currency
    occurred_at: EventTime

    @field_validator("value", mode="before")
    @classmethod
    def _value_is_a_decimal_number(cls, value):
        return decimal_number("value", value)

    @field_validator("value")
    @classmethod
    def _value_precision(cls, value: Decimal) -> Decimal:
        return micro_precision("value", value)

    @field_validator("occurred_at")
    @classmethod
    def _occurred_at_parses(cls, value):
        to_epoch_ms(value)
        return value

    @model_validator(mode="after")
    def _names_its_click(self):
        if self.click_id is None and self.token is None:
            raise ValueError("a conversion needs the click's token or its click_id")
        return self

    @property
    def event_time_ms(self) -> int:
        return to_epoch_ms(self.occurred_at)

    @property
    def value_micros(self) -> int:
        return int(self.value.scaleb(COST_DECIMAL_PLACES))


def to_epoch_ms(value: Union[int, str]) -> int:
    """Event time as epoch milliseconds UTC; ISO-8601 strings must carry an offset (no guessing).
    Parsing and bounds: common.times (shared with the query API's `from`/`to`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return in_bounds(value)
    if isinstance(value, str):
        return in_bounds(iso8601_ms(value))
    raise ValueError("timestamp must be epoch milliseconds (integer) or an ISO-8601 string")
