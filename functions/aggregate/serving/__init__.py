"""The serving store behind one small interface, two implementations (DynamoDB, Timestream)."""
from __future__ import annotations

import os
from typing import Protocol

from aggregate.changes import Change


class ServingStore(Protocol):
    def apply(self, change: Change) -> bool:
        """Write one change idempotently; True if it changed the store, False if stale."""

    def advance_freshness(self, watermark_ms: int | None, newest_event_ms: int | None,
                          source: str = "") -> None:
        """Record the newest watermark/event time reflected (monotonic: never moves back).
        `source`: who advances it (the aggregates shard), so writers spread over keys."""


def make_store(kind: str | None = None) -> ServingStore:
    kind = kind or os.environ.get("SERVING_STORE", "dynamodb")
    if kind == "dynamodb":
        from aggregate.serving.dynamodb_store import DynamoDBServingStore

        return DynamoDBServingStore.from_env()
    if kind == "timestream":
        from aggregate.serving.timestream_store import TimestreamServingStore

        return TimestreamServingStore.from_env()
    raise ValueError(f"SERVING_STORE must be dynamodb or timestream, got {kind!r}")
