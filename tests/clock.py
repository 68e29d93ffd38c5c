"""A pinned clock for tests, so that no outcome depends on when (or how long) the suite runs.

Code under test takes its clock as a parameter (`now` / `clock_ms` callables defaulting to the
real UTC clock); tests pass `clock.now` / `clock.ms`. The archive's partitions come from the
stream's arrival stamps, which in-process moto takes from its own clock: `pin_kinesis_arrival`
makes moto's Kinesis stamp records with this clock instead.

Shared by the main suite and tests/glue (stdlib only).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

UTC = timezone.utc
# 2 s before a year, a month and a day end: what used to break CI runs crossing 00:00 UTC
MONTH_END = datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC)
# a month end that is not a year end (2027 is not a leap year: February has 28 days)
FEBRUARY_END = datetime(2027, 2, 28, 23, 59, 58, tzinfo=UTC)


class Clock:
    """A UTC clock that only moves when told to."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("Clock needs an aware datetime")
        self._t = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._t

    def ms(self) -> int:
        return round(self._t.timestamp() * 1000)

    def advance(self, seconds: float = 0, ms: int = 0) -> "Clock":
        self._t += timedelta(seconds=seconds, milliseconds=ms)
        return self

    def set(self, when: datetime) -> "Clock":
        self._t = when.astimezone(UTC)
        return self


def pin_kinesis_arrival(monkeypatch, clock: Clock) -> None:
    """In-process moto's Kinesis stamps ApproximateArrivalTimestamp from `clock` (moto keeps
    naive UTC datetimes)."""
    monkeypatch.setattr("moto.kinesis.models.utcnow", lambda: clock.now().replace(tzinfo=None))
