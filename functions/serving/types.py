"""Shared types of the serving store: its two interfaces (the sink writes through ServingStore,
the query API reads through QueryStore) and what a read returns.

The domain types named here (the sink's Change, the query API's requests and results) are
imported for annotations only: the sink ships without query/, the query API without aggregate/.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Protocol, Sequence

if TYPE_CHECKING:
    from aggregate.changes import Change
    from query.quality import IvtWindow, VerdictTotals
    from query.series import SeriesData
    from query.topk import TopResult
    from query.windows import SeriesRequest, TopRequest


@dataclass
class StoreFreshness:
    watermark_ms: Optional[int] = None
    newest_event_ms: Optional[int] = None


@dataclass
class TopAnswer:
    result: TopResult
    freshness: StoreFreshness
    requests: int  # AWS requests this answer took
    debug: dict = field(default_factory=dict)


@dataclass
class SeriesAnswer:
    data: SeriesData
    freshness: StoreFreshness
    requests: int
    debug: dict = field(default_factory=dict)


class QueryStore(Protocol):
    """The read side (query API). Every method reports the AWS requests it took."""

    kind: str
    minute_retention_ms: Optional[int]  # how long 1m buckets are kept (None: for good)

    def top(self, req: TopRequest) -> TopAnswer: ...

    def series(self, req: SeriesRequest) -> SeriesAnswer: ...

    def freshness(self) -> tuple[StoreFreshness, int]: ...

    def late_dropped(self, start_ms: int, end_ms: int) -> tuple[int, int]: ...

    def last_reconciliation(self) -> tuple[Optional[dict], Optional[int], int]: ...

    def verdict_totals(self, windows: Sequence[IvtWindow]) -> tuple[list[VerdictTotals], int]:
        """Per window, clicks per IVT verdict summed over the ads (GET /v1/quality `ivt`)."""


class ServingStore(Protocol):
    """The write side (sink)."""

    def apply(self, change: Change) -> bool:
        """Write one change idempotently; True if it changed the store, False if stale."""

    def apply_many(self, changes: list[Change]) -> list[Optional[Exception]]:
        """Apply; per change its error or None (a stale change is not an error)."""

    def advance_freshness(self, watermark_ms: Optional[int], newest_event_ms: Optional[int],
                          source: str = "") -> None:
        """Record the newest watermark/event time reflected (monotonic: never moves back).
        `source`: who advances it (the aggregates shard), so writers spread over keys."""

    def take_verdict_deltas(self) -> Optional[dict[str, int]]:
        """Per-verdict clicks the writes of counted changes (1m aggregates) added since the last
        call, {column: delta} (aggregate.verdicts); None when none was written or the store
        cannot tell (Timestream)."""
