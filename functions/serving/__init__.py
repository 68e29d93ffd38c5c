"""The serving store: everything that writes or reads the aggregates the query API serves.

Two implementations, chosen by the stack setting `serving_store` (SERVING_STORE in the Lambdas'
environment): DynamoDB (default) and Timestream for LiveAnalytics. Layout, by who imports what:

  serving/            the core every user ships (imports only the stdlib and common)
    __init__.py       make_store: THE factory, by serving_store and side (read | write)
    keys.py           DynamoDB key design (pk/sk of every item kind, freshness slots)
    table.py          DynamoDB item attributes, item decoding, paginated and counted Queries,
                      the reconciliation summary item (query API and glue_jobs/reconcile.py)
    types.py          shared types: the read and write interfaces, the answers a read returns
  serving/write/      the sink's writers (aggregate.sink_handler), on aggregate.changes
    dynamodb.py       versioned conditional writes, freshness slots
    timestream.py     versioned MULTI records
  serving/rebuild/    loading a rebuild from the archive (docs/rebuild.md): an operator's tool,
                      in no Lambda
  serving/read/       the query API's readers (query.handler / query.service), on the query
    dynamodb.py       domain (query.topk, query.series, query.windows)
    timestream.py     one SQL query per request

Deployed: the sink Lambda ships serving/*.py + serving/write, the query Lambda serving/*.py +
serving/read (infra/constructs/sink_function.py, query_api.py), the reconciliation Glue job
serving/*.py (infra/constructs/billing.py, --extra-py-files). So the core imports neither read/
nor write/ at module level, and neither side imports the other.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional, overload

from common.schema import SERVING_STORES as KINDS  # the serving_store setting's choices

if TYPE_CHECKING:
    from serving.types import QueryStore, ServingStore

READ, WRITE = "read", "write"


def store_kind(kind: Optional[str] = None) -> str:
    """`kind`, else SERVING_STORE (default dynamodb); refuses anything but KINDS."""
    if not kind:
        from common.config import ServingSettings  # the schema's SERVING_STORE

        kind = ServingSettings.from_env().serving_store
    if kind not in KINDS:
        raise ValueError(f"SERVING_STORE must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


@overload
def make_store(side: Literal["read"], kind: Optional[str] = None) -> "QueryStore": ...


@overload
def make_store(side: Literal["write"], kind: Optional[str] = None) -> "ServingStore": ...


def make_store(side: str, kind: Optional[str] = None):
    """The store of `kind` (default: SERVING_STORE) for one side, configured from the
    environment: READ for the query API, WRITE for the sink. Imports only that side's module:
    each Lambda ships its own side (see the module doc)."""
    kind = store_kind(kind)
    if side == READ:
        if kind == "dynamodb":
            from serving.read.dynamodb import DynamoDBQueryStore

            return DynamoDBQueryStore.from_env()
        from serving.read.timestream import TimestreamQueryStore

        return TimestreamQueryStore.from_env()
    if side == WRITE:
        if kind == "dynamodb":
            from serving.write.dynamodb import DynamoDBServingStore

            return DynamoDBServingStore.from_env()
        from serving.write.timestream import TimestreamServingStore

        return TimestreamServingStore.from_env()
    raise ValueError(f"side must be {READ!r} or {WRITE!r}, got {side!r}")
