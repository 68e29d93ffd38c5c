"""Query parameters -> validated, bucket-aligned windows (pure: no AWS, no clock).

Time parameters
  `from` / `to`: epoch milliseconds (digits) or ISO-8601 with a UTC offset ('Z', '+02:00').
  `last`: `<n>m`, `<n>h` or `<n>d`, 1m..30d. `to` defaults to the end of the current minute
  (now floored to the minute + 1 min) and `from = to - last`; `last` and `from` together are refused.
  Neither given: `last=1h`.

Window semantics (bucket-aligned, half-open)
  top-K (`/v1/top`): from and to are floored to the minute; a minute bucket is in the window iff
    its start is in [floor(from), floor(to)). So a partial minute at `from` is included and a
    partial minute at `to` is not. The window must hold at least one minute and at most 30 days.
    It is decomposed into the coarsest buckets that fit: whole UTC days (1d buckets), whole hours
    of the rest (1h) and the edge minutes (1m): at most 30 + 2 x 23 + 2 x 59 buckets.
    Minute retention: a store keeps 1m buckets for a limited time (DynamoDB: `minute_ttl_s`, 8
    days), 1h and 1d ones for good. An edge minute older than that is not read as an empty
    bucket: the edge is trimmed to the whole hour (`from` ceiled, `to` floored), and the answer's
    window is the one counted. A window left without a whole hour is refused.
  series (`/v1/ads/{ad_id}/metrics`, `/v1/campaigns/{campaign_id}/metrics`,
    `/v1/advertisers/{advertiser_id}/metrics`): `from` is floored and `to` ceiled to the
    resolution; one point per bucket whose start is in [floor(from), ceil(to)), zero-filled; at
    most 1500 points (30 days: 720 at 1h, 30 at 1d). A 1m series reaching back past the minute
    retention is refused (coarser resolutions are kept).

Every refusal is a QueryError (HTTP 400) with a reason a client developer can act on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping, Optional

# Units, resolutions and time bounds are common.times' (shared with ingest, the sink and the job).
from common.times import (DAY_MS, EPOCH, HOUR_MS, MINUTE_MS, RESOLUTIONS, NotATimestamp, NoUtcOffset,
                          TimestampOutOfRange, ceil_to, floor_to, in_bounds, iso8601_ms)
from query.ratios import DEFAULT_MIN_VOLUME, MAX_MIN_VOLUME, RATIOS
from query.topk import TOP_METRICS

METRICS = TOP_METRICS  # what top-K ranks by: sums, then ratios
MAX_WINDOW_MS = 30 * DAY_MS  # `last`, and a top-K window
MAX_TOP_WINDOW_MS = MAX_WINDOW_MS
MAX_SERIES_POINTS = 1500
MAX_K, DEFAULT_K = 100, 10
DEFAULT_LAST = "1h"
_ID = re.compile(r"^[\x21-\x7E]{1,128}$")
_LAST = re.compile(r"^([0-9]{1,5})([mhd])$")
_UNIT_MS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}
# series levels: the path's id parameter per level (the store maps a level to its partitions)
SERIES_LEVELS = {"ad": "ad_id", "campaign": "campaign_id", "advertiser": "advertiser_id"}


class QueryError(ValueError):
    """A request the API refuses: HTTP status (400) + reason."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason, self.status = reason, status


def iso(ms: int) -> str:
    """Epoch ms -> '2026-01-02T03:04:05.678Z' (UTC, millisecond precision)."""
    dt = EPOCH + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_time(name: str, raw: str) -> int:
    """Epoch ms or ISO-8601 with offset -> epoch ms. A '+' offset that arrived as ' ' (form
    decoding of an unescaped '+') is accepted."""
    value = raw.strip()
    try:
        if re.fullmatch(r"[0-9]{1,16}", value):
            return in_bounds(int(value))
        return in_bounds(iso8601_ms(value, _plus_restored(value)))
    except NotATimestamp:
        raise QueryError(f"'{name}' is neither epoch milliseconds nor ISO-8601: {raw[:64]!r}") from None
    except NoUtcOffset:
        raise QueryError(f"'{name}' must include a UTC offset, e.g. 2026-01-01T10:00:00Z") from None
    except TimestampOutOfRange:
        raise QueryError(f"'{name}' out of range (years 2000 to 2100)") from None


def _plus_restored(value: str) -> Optional[str]:
    head, sep, tail = value.rpartition(" ")
    if sep and "T" in head and re.fullmatch(r"[0-9]{2}(:?[0-9]{2})?", tail):
        return f"{head}+{tail}"
    return None


def parse_last(raw: str) -> int:
    m = _LAST.fullmatch(raw.strip())
    if not m:
        raise QueryError(f"'last' must look like 15m, 6h or 7d (1m to 30d), got {raw[:32]!r}")
    ms = int(m.group(1)) * _UNIT_MS[m.group(2)]
    if not MINUTE_MS <= ms <= MAX_WINDOW_MS:
        raise QueryError("'last' must be between 1m and 30d")
    return ms


def _bounded_int(name: str, raw: str, high: int, digits: int) -> int:
    """A parameter that is an integer in 1..high: at most `digits` digits (no sign, exponent or
    unbounded length reaches int()), then the range."""
    if not re.fullmatch(rf"[0-9]{{1,{digits}}}", raw.strip()):
        raise QueryError(f"'{name}' must be an integer from 1 to {high}")
    value = int(raw)
    if not 1 <= value <= high:
        raise QueryError(f"'{name}' out of range: {value} (1 to {high})")
    return value


def parse_k(raw: Optional[str]) -> int:
    if raw is None or raw == "":
        return DEFAULT_K
    return _bounded_int("k", raw, MAX_K, 4)


def _parse_choice(what: str, raw: Optional[str], choices, default: str) -> str:
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise QueryError(f"unknown {what} {raw[:32]!r}: one of {', '.join(choices)}")
    return raw


def parse_metric(raw: Optional[str]) -> str:
    return _parse_choice("metric", raw, METRICS, "clicks")


def parse_min_volume(raw: Optional[str], metric: str) -> Optional[int]:
    """A ratio's minimum denominator (query.ratios); None for a summed metric, which refuses it."""
    given = raw is not None and raw != ""
    if metric not in RATIOS:
        if given:
            raise QueryError(f"'min_volume' applies to a ratio metric ({', '.join(RATIOS)}), not to {metric}")
        return None
    if not given:
        return DEFAULT_MIN_VOLUME
    return _bounded_int("min_volume", raw, MAX_MIN_VOLUME, 13)


def parse_resolution(raw: Optional[str]) -> str:
    return _parse_choice("resolution", raw, RESOLUTIONS, "1m")


def parse_id(name: str, raw: Optional[str], required: bool = False) -> Optional[str]:
    if raw is None or (raw == "" and not required):
        if required:
            raise QueryError(f"'{name}' is required")
        return None
    if not _ID.fullmatch(raw):
        raise QueryError(f"'{name}' must be 1-128 printable ASCII characters without spaces")
    return raw


def raw_range(params: Mapping[str, str], now_ms: int) -> tuple[int, int]:
    """(from, to) in epoch ms as requested, before any bucket alignment."""
    last, frm, to = params.get("last"), params.get("from"), params.get("to")
    if last not in (None, "") and frm not in (None, ""):
        raise QueryError("give either 'last' or 'from', not both")
    to_ms = parse_time("to", to) if to not in (None, "") else floor_to(now_ms, MINUTE_MS) + MINUTE_MS
    if frm not in (None, ""):
        from_ms = parse_time("from", frm)
    else:
        from_ms = to_ms - parse_last(last if last not in (None, "") else DEFAULT_LAST)
    if from_ms >= to_ms:
        raise QueryError("'from' must be before 'to'")
    return from_ms, to_ms


@dataclass(frozen=True)
class Window:
    """Half-open [start, end), both multiples of `step` ms."""

    start: int
    end: int
    step: int = MINUTE_MS

    @property
    def buckets(self) -> range:
        return range(self.start, self.end, self.step)


@dataclass(frozen=True)
class Decomposition:
    days: tuple[int, ...]  # 1d bucket starts (whole UTC days)
    hours: tuple[int, ...]  # 1h bucket starts (whole hours outside those days)
    minutes: tuple[int, ...]  # 1m bucket starts (the edges)

    def by_resolution(self) -> dict[str, tuple[int, ...]]:
        """The buckets per leaderboard resolution, coarsest first (every resolution present)."""
        return {"1d": self.days, "1h": self.hours, "1m": self.minutes}

    def counts(self) -> dict[str, int]:
        return {res: len(buckets) for res, buckets in self.by_resolution().items()}


def _split(start: int, end: int, step: int) -> tuple[tuple[int, ...], list[tuple[int, int]]]:
    """Whole `step` buckets inside [start, end) and the parts left on either side."""
    a, b = ceil_to(start, step), floor_to(end, step)
    if a >= b:
        return (), [(start, end)]
    return tuple(range(a, b, step)), [(start, a), (b, end)]


def decompose(window: Window) -> Decomposition:
    """Whole UTC days -> 1d buckets; whole hours of the rest -> 1h; the rest (edges) -> 1m."""
    days, rest = _split(window.start, window.end, DAY_MS)
    hours: tuple[int, ...] = ()
    minutes: tuple[int, ...] = ()
    for start, end in rest:
        whole, edges = _split(start, end, HOUR_MS)
        hours += whole
        minutes += tuple(m for a, b in edges for m in range(a, b, MINUTE_MS))
    return Decomposition(days, hours, minutes)


@dataclass(frozen=True)
class TopRequest:
    window: Window
    k: int
    metric: str
    campaign_id: Optional[str]
    advertiser_id: Optional[str]
    min_volume: Optional[int] = None  # ratio metrics only (parse_min_volume)

    @property
    def decomposition(self) -> Decomposition:
        return decompose(self.window)


@dataclass(frozen=True)
class SeriesRequest:
    entity_id: str  # the ad, campaign or advertiser
    resolution: str
    window: Window
    level: str = "ad"  # SERIES_LEVELS


def _span(ms: int) -> str:
    return f"{ms // HOUR_MS}h" if ms <= DAY_MS else f"{ms // DAY_MS}d"


def minute_window(params: Mapping[str, str], now_ms: int, max_ms: int = MAX_TOP_WINDOW_MS) -> Window:
    """`last`/`from`/`to` floored to the minute: at least one whole minute, at most `max_ms`
    (top-K: 30 days)."""
    from_ms, to_ms = raw_range(params, now_ms)
    start, end = floor_to(from_ms, MINUTE_MS), floor_to(to_ms, MINUTE_MS)
    if start >= end:
        raise QueryError("window holds no whole minute bucket: floor(from) must be before floor(to)")
    if end - start > max_ms:
        raise QueryError(f"window too long: {(end - start) // MINUTE_MS} minutes (at most {_span(max_ms)})")
    return Window(start, end)


def _days(ms: int) -> str:
    return f"{ms / DAY_MS:g} days"


def trim_to_minute_retention(window: Window, kept_from_ms: Optional[int]) -> Window:
    """`window` without edge minutes older than `kept_from_ms` (the oldest 1m bucket the store
    still holds; None: all are kept): such an edge becomes the whole hour next to it, since an
    expired 1m bucket would read as an empty one and the answer claim what it never counted."""
    if kept_from_ms is None:
        return window
    start, end = window.start, window.end
    if start < kept_from_ms and start % HOUR_MS:
        start = ceil_to(start, HOUR_MS)
    if end % HOUR_MS and floor_to(end, HOUR_MS) < kept_from_ms:
        end = floor_to(end, HOUR_MS)
    if start >= end:
        raise QueryError(f"window holds no whole hour, and its minutes before {iso(kept_from_ms)} "
                         "are no longer kept (1m buckets expire; 1h and 1d ones are kept): "
                         "widen it to a whole hour")
    return Window(start, end)


def parse_top(params: Mapping[str, str], now_ms: int, minute_retention_ms: Optional[int] = None) -> TopRequest:
    """`minute_retention_ms`: how long the store keeps 1m buckets (None: for good)."""
    k = parse_k(params.get("k"))
    metric = parse_metric(params.get("metric"))
    min_volume = parse_min_volume(params.get("min_volume"), metric)
    campaign = parse_id("campaign_id", params.get("campaign_id"))
    advertiser = parse_id("advertiser_id", params.get("advertiser_id"))
    window = minute_window(params, now_ms)
    if minute_retention_ms is not None:
        window = trim_to_minute_retention(window, now_ms - minute_retention_ms)
    return TopRequest(window, k, metric, campaign, advertiser, min_volume)


def parse_series(entity_id: str, params: Mapping[str, str], now_ms: int, level: str = "ad",
                 minute_retention_ms: Optional[int] = None) -> SeriesRequest:
    """One ad's, campaign's or advertiser's series (`level`: SERIES_LEVELS); a 1m series older
    than `minute_retention_ms` (None: kept for good) is refused, not zero-filled."""
    entity = parse_id(SERIES_LEVELS[level], entity_id, required=True)
    resolution = parse_resolution(params.get("resolution"))
    step = RESOLUTIONS[resolution]
    from_ms, to_ms = raw_range(params, now_ms)
    start, end = floor_to(from_ms, step), ceil_to(to_ms, step)
    points = (end - start) // step
    if points > MAX_SERIES_POINTS:
        raise QueryError(f"too many points: {points} at {resolution} (at most {MAX_SERIES_POINTS}); "
                         "narrow the window or use a coarser resolution")
    if resolution == "1m" and minute_retention_ms is not None and start < now_ms - minute_retention_ms:
        raise QueryError(f"1m points are kept for {_days(minute_retention_ms)}: the oldest is "
                         f"{iso(ceil_to(now_ms - minute_retention_ms, MINUTE_MS))}; start there or "
                         "use a coarser resolution (5m, 1h, 1d are kept)")
    return SeriesRequest(entity, resolution, Window(start, end, step), level)
