"""moto's Query on a global secondary index walks every item of the table (moto 5.2.5:
Table.query -> all_items()), so on a table of 100k items one page takes seconds, where DynamoDB
reads one index partition. The serving table's rank index (serving.keys.RANK_INDEX) shares the
table's hash key `pk`: its partition is the table's, so walking only that partition gives the
same answer. `install()` makes moto do that for such indexes (other queries are untouched):
emulator speed only, applied by every emulator the project starts (local.moto_serial, the
in-process mocks of the tests and benchmarks)."""
from __future__ import annotations

import threading

_state = threading.local()


def install() -> None:
    from moto.dynamodb.models.table import Table

    if getattr(Table, "_clickagg_index_patch", False):
        return
    all_items, query = Table.all_items, Table.query

    def partition_items(self):
        hash_key = getattr(_state, "hash_key", None)
        if hash_key is None:
            return all_items(self)
        part = self.items.get(hash_key, {})
        return sorted(part.values(), key=lambda x: (x.hash_key, x.range_key)) if self.range_key_attr else [part]

    def index_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                    scan_index_forward, projection_expressions, index_name=None, *args, **kwargs):
        index = next((i for i in self.all_indexes() if i.name == index_name), None) if index_name else None
        shares_hash = index is not None and any(
            k["KeyType"] == "HASH" and k["AttributeName"] == self.hash_key_attr for k in index.schema)
        _state.hash_key = hash_key if shares_hash and hash_key is not None else None
        try:
            return query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                         scan_index_forward, projection_expressions, index_name, *args, **kwargs)
        finally:
            _state.hash_key = None

    Table.all_items, Table.query = partition_items, index_query
    Table._clickagg_index_patch = True
