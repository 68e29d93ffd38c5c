"""DynamoDB serving store: every change is one conditional write keyed by its version, so
redelivered and reordered changelog rows leave the table exactly as one in-order delivery would."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.exceptions import ClientError

from aggregate.changes import AGG, LATE, TOP, Change
from common.serving_keys import (DEFAULT_FRESHNESS_SLOTS, check_freshness_slots, freshness_key, freshness_slot,
                                 freshness_slots_from_env, late_key, series_key, top_key)

NEWER = "attribute_not_exists(pk) OR v < :v"
NOT_OLDER = "attribute_not_exists(pk) OR v <= :v"  # a retraction at v tombstones the entry at v


def _n(value) -> dict:
    return {"N": str(int(value))}


def item_for(change: Change, minute_ttl_s: int) -> dict:
    """The item a change writes (pure: tested directly)."""
    row = change.row
    if change.kind == AGG:
        key = series_key(row["ad_id"], row["resolution"], change.bucket_start)
    elif change.kind == TOP:
        key = top_key(row["resolution"], change.bucket_start, row["ad_id"])
    else:
        key = late_key(change.bucket_start, row["ad_id"])
    item = {k: {"S": v} for k, v in key.items()}
    item["v"] = _n(change.version)
    for attr, col in (("c", "clicks"), ("b", "billable_clicks"), ("k", "cost_micros"),
                      ("bk", "billable_cost_micros"), ("me", "max_event_time"), ("wm", "watermark"),
                      ("ld", "late_dropped")):
        if row.get(col) is not None:
            item[attr] = _n(row[col])
    for attr, col in (("ad", "ad_id"), ("cmp", "campaign_id"), ("adv", "advertiser_id")):
        if row.get(col) is not None:
            item[attr] = {"S": str(row[col])}
    if not change.upsert:
        item["del"] = {"BOOL": True}
    if row.get("resolution") == "1m" or change.kind == LATE:
        item["ttl"] = _n(change.bucket_start // 1000 + minute_ttl_s)
    return item


class DynamoDBServingStore:
    def __init__(self, client, table: str, minute_ttl_s: int = 8 * 86400, concurrency: int = 16,
                 freshness_slots: int = DEFAULT_FRESHNESS_SLOTS):
        self._ddb, self._table, self._minute_ttl_s = client, table, minute_ttl_s
        self._freshness_slots = check_freshness_slots(freshness_slots)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="serving")

    @classmethod
    def from_env(cls) -> "DynamoDBServingStore":
        return cls(boto3.client("dynamodb"), os.environ["SERVING_TABLE"],
                   int(os.environ.get("MINUTE_TTL_S", 8 * 86400)),
                   freshness_slots=freshness_slots_from_env())

    def apply(self, change: Change) -> bool:
        if change.kind in (AGG, LATE) and not change.upsert:
            return False  # counters only grow: a retraction is always followed by its +U
        try:
            self._ddb.put_item(
                TableName=self._table, Item=item_for(change, self._minute_ttl_s),
                ConditionExpression=NEWER if change.upsert else NOT_OLDER,
                ExpressionAttributeValues={":v": _n(change.version)},
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False  # stale or repeated delivery: the store already has newer
            raise

    def apply_many(self, changes: list[Change]) -> list[Exception | None]:
        """Apply concurrently; per-change error or None. Writes to different keys commute and
        writes to one key are ordered by version, so concurrency cannot change the result."""
        def one(change: Change) -> Exception | None:
            try:
                self.apply(change)
                return None
            except Exception as exc:  # reported per record to the batch processor
                return exc
        return list(self._pool.map(one, changes))

    def advance_freshness(self, watermark_ms: int | None, newest_event_ms: int | None,
                          source: str = "") -> None:
        key = freshness_key(freshness_slot(source, self._freshness_slots))
        for attr, value in (("wm", watermark_ms), ("me", newest_event_ms)):
            if value is None:
                continue
            try:
                self._ddb.update_item(
                    TableName=self._table, Key={k: {"S": v} for k, v in key.items()},
                    UpdateExpression=f"SET {attr} = :x",
                    ConditionExpression=f"attribute_not_exists({attr}) OR {attr} < :x",
                    ExpressionAttributeValues={":x": _n(value)},
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
