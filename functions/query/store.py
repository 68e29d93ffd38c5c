"""The query side's view of a serving store: one small interface, two implementations."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Protocol

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
    kind: str

    def top(self, req: TopRequest) -> TopAnswer: ...

    def series(self, req: SeriesRequest) -> SeriesAnswer: ...

    def freshness(self) -> tuple[StoreFreshness, int]: ...

    def late_dropped(self, start_ms: int, end_ms: int) -> tuple[int, int]: ...

    def last_reconciliation(self) -> tuple[Optional[dict], Optional[int], int]: ...


def make_store(kind: Optional[str] = None) -> QueryStore:
    kind = kind or os.environ.get("SERVING_STORE", "dynamodb")
    if kind == "dynamodb":
        from query.store_dynamodb import DynamoDBQueryStore

        return DynamoDBQueryStore.from_env()
    if kind == "timestream":
        from query.store_timestream import TimestreamQueryStore

        return TimestreamQueryStore.from_env()
    raise ValueError(f"SERVING_STORE must be dynamodb or timestream, got {kind!r}")
