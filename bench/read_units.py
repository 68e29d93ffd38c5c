"""Read capacity as DynamoDB bills it, counted from what the reader asked for (bench/query.py).

Query: the sizes of the items a page reads (the whole item for the table, the projected entry for
an index: a ProjectionExpression does not lower it), summed and rounded up to 4 KB per page;
BatchGetItem: each requested key's item rounded up to 4 KB on its own (a missing one still costs
one unit). Eventually consistent reads (what the query API makes) cost half a unit per 4 KB.
Item size: attribute names plus values (strings UTF-8 bytes, numbers about one byte per two
significant digits plus one, booleans one); the 100-byte index overhead DynamoDB adds to storage
is not counted."""
from __future__ import annotations

import math
import threading
from decimal import Decimal

UNIT = 4096
EVENTUAL = 0.5


def value_size(v: dict) -> int:
    (kind, x), = v.items()
    if kind == "S":
        return len(x.encode())
    if kind == "N":
        digits = Decimal(x).normalize().as_tuple().digits
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "B":
        return len(x)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(w) + 1 for k, w in x.items())
    if kind == "L":
        return 3 + sum(value_size(w) + 1 for w in x)
    return len(str(x))


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + value_size(v) for name, v in item.items())


class ReadMeter:
    """Hooks a boto3 DynamoDB client: every Query page and BatchGetItem adds its read units,
    computed from `stored` ({(pk, sk): the item as written}) and the index's key attributes."""

    def __init__(self, client, stored: dict[tuple[str, str], dict]):
        self.stored, self.units = stored, 0.0
        self._lock, self._pk = threading.Lock(), threading.local()
        events = client.meta.events
        events.register("provide-client-params.dynamodb.Query", self._query_params)
        events.register("after-call.dynamodb.Query", self._query)
        events.register("provide-client-params.dynamodb.BatchGetItem", self._batch_get)

    def _add(self, units: float) -> None:
        with self._lock:
            self.units += units

    def _query_params(self, params, **_) -> None:
        self._pk.value = params["ExpressionAttributeValues"][":pk"]["S"]

    def _query(self, parsed, **_) -> None:
        # the whole stored item of every item the page read (the rank index projects ALL)
        sizes = [item_size(self.stored.get((self._pk.value, i["sk"]["S"]), i)) for i in parsed.get("Items", [])]
        self._add(math.ceil(sum(sizes) / UNIT) * EVENTUAL if sizes else EVENTUAL)

    def _batch_get(self, params, **_) -> None:
        for request in params.get("RequestItems", {}).values():
            for key in request.get("Keys", []):
                item = self.stored.get((key["pk"]["S"], key["sk"]["S"]), key)
                self._add(math.ceil(max(1, item_size(item)) / UNIT) * EVENTUAL)

    def take(self) -> float:
        with self._lock:
            units, self.units = self.units, 0.0
        return units
