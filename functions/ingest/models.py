"""Request models: what a client may send for one click (Powertools parser = pydantic v2)."""
from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Optional, Union

from aws_lambda_powertools.utilities.parser import BaseModel, Field, field_validator
from pydantic import ConfigDict, StrictInt, StrictStr

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
    def _cost_precision(cls, value: Decimal) -> Decimal:
        if value != value.quantize(Decimal(1).scaleb(-COST_DECIMAL_PLACES)):
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
    def cost_micros(self) -> int:
        return int(self.cost.scaleb(COST_DECIMAL_PLACES))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Epoch-ms bounds accepted at all (years 2000..2100); the clock-skew/max-age rules come later.
_MIN_MS, _MAX_MS = 946_684_800_000, 4_102_444_800_000


def to_epoch_ms(value: Union[int, str]) -> int:
    """Event time as epoch milliseconds UTC; ISO-8601 strings must carry an offset (no guessing)."""
    if isinstance(value, int) and not isinstance(value, bool):
        ms = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError("timestamp is neither epoch milliseconds nor ISO-8601") from None
        if parsed.tzinfo is None:
            raise ValueError("ISO-8601 timestamp must include a UTC offset, e.g. 'Z'")
        ms = (parsed - _EPOCH) // timedelta(milliseconds=1)  # exact, no float rounding
    else:
        raise ValueError("timestamp must be epoch milliseconds (integer) or an ISO-8601 string")
    if not _MIN_MS <= ms <= _MAX_MS:
        raise ValueError("timestamp out of range (epoch milliseconds between 2000 and 2100)")
    return ms
