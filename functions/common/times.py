"""Time units, the aggregation resolutions and event-time parsing: one definition for the ingest
API, the query API, the sink and the Flink job (pure: no AWS, no clock, no Powertools; packed into
the Flink application zip too).

Timestamps: epoch milliseconds, or ISO-8601 with a UTC offset ('Z', '+02:00'; no guessing a zone),
between the years 2000 and 2100. The errors say what is wrong in terms of an event time; a caller
that names its own parameter (the query API's `from`/`to`) catches them and words its own.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional

MINUTE_MS, HOUR_MS, DAY_MS = 60_000, 3_600_000, 86_400_000
# Resolution name -> bucket size: what the Flink job aggregates and the serving store holds.
RESOLUTIONS: dict[str, int] = {"1m": MINUTE_MS, "5m": 5 * MINUTE_MS, "1h": HOUR_MS, "1d": DAY_MS}



def floor_to(ms: int, span_ms: int) -> int:
    """Start of the span-aligned bucket holding `ms` (epoch ms, spans from the epoch)."""
    return ms - ms % span_ms


def ceil_to(ms: int, span_ms: int) -> int:
    return -((-ms) // span_ms) * span_ms


# Epoch-ms bounds accepted at all (years 2000..2100); ingest's clock-skew/max-age rules come later.
MIN_TIME_MS, MAX_TIME_MS = 946_684_800_000, 4_102_444_800_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class TimestampError(ValueError):
    """A value that is not an acceptable event time."""


class NotATimestamp(TimestampError):
    def __init__(self, message: str = "timestamp is neither epoch milliseconds nor ISO-8601"):
        super().__init__(message)


class NoUtcOffset(TimestampError):
    def __init__(self, message: str = "ISO-8601 timestamp must include a UTC offset, e.g. 'Z'"):
        super().__init__(message)


class TimestampOutOfRange(TimestampError):
    def __init__(self, message: str = "timestamp out of range (epoch milliseconds between 2000 and 2100)"):
        super().__init__(message)


def iso8601_ms(*candidates: Optional[str]) -> int:
    """Epoch ms of the first candidate that parses as ISO-8601 (None candidates are skipped).
    NotATimestamp if none parses; NoUtcOffset if the one that parses has no offset."""
    for text in candidates:
        if text is None:
            continue
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            continue
        if parsed.tzinfo is None:
            raise NoUtcOffset()
        return (parsed - EPOCH) // timedelta(milliseconds=1)  # exact, no float rounding
    raise NotATimestamp()


def in_bounds(ms: int) -> int:
    """`ms` if it lies in [MIN_TIME_MS, MAX_TIME_MS], else TimestampOutOfRange."""
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise TimestampOutOfRange()
    return ms
