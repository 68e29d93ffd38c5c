"""Request models: what a client may send for one click (Powertools parser = pydantic v2)."""
from __future__ import annotations

import ipaddress
from decimal import Decimal
from typing import Annotated, Any, Optional, Union

from aws_lambda_powertools.utilities.parser import BaseModel, Field, field_validator
from pydantic import ConfigDict, StrictInt, StrictStr

from common.times import in_bounds, iso8601_ms

MAX_COST = Decimal("10000")  # per click; anything larger is a client bug, not a price
COST_DECIMAL_PLACES = 6  # cost is stored as integer micro-units downstream

Identifier = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7E]+$")]


class ClickIn(BaseModel):
    """One click as posted by an ad SDK. Unknown fields are ignored (forward compatibility)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

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
        # JSON is parsed with parse_float=Decimal, so a float here means it did not come from JSON
        # text we control; bools are ints in Python and must not become 0/1.
        if isinstance(value, (bool, float)):
            raise ValueError("cost must be a decimal number or string")
        return value

    @field_validator("cost")
    @classmethod
    def _cost_precision(cls, value: Optional[Decimal]) -> Optional[Decimal]:
        if value is not None and value != value.quantize(Decimal(1).scaleb(-COST_DECIMAL_PLACES)):
            raise ValueError(f"cost has more than {COST_DECIMAL_PLACES} decimal places")
        return value

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


def to_epoch_ms(value: Union[int, str]) -> int:
    """Event time as epoch milliseconds UTC; ISO-8601 strings must carry an offset (no guessing).
    Parsing and bounds: common.times (shared with the query API's `from`/`to`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return in_bounds(value)
    if isinstance(value, str):
        return in_bounds(iso8601_ms(value))
    raise ValueError("timestamp must be epoch milliseconds (integer) or an ISO-8601 string")
