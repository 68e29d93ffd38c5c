"""The click record as it travels on the clicks stream, in the archive and into Flink.

One JSON object per Kinesis record. Times are epoch milliseconds (UTC); money is integer
micro-units (`cost_micros`) so every layer sums it exactly.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

# Field name -> logical type; the single schema shared by the Flink source DDL, the archive
# (Parquet/Glue) and the load generator's ground truth.
CLICK_RECORD_SCHEMA: dict[str, str] = {
    "click_id": "string",
    "ad_id": "string",
    "campaign_id": "string",
    "advertiser_id": "string",
    "user_id": "string",
    "event_time": "timestamp_ms",
    "cost_micros": "bigint",
    "ip": "string",
    "user_agent": "string",
    "referrer": "string",
    "ingest_time": "timestamp_ms",
    "request_id": "string",
    "source_ip": "string",
    # from the verified click token (null without one); appended last: the archive's Parquet
    # schema only grows at the end
    "impression_id": "string",
    "issued_at": "timestamp_ms",
}

# The events stream's record (impressions and conversions, POST /v1/events; docs/events.md):
# one schema for both types, as its archive table has; a field a type does not have is null.
EVENT_RECORD_SCHEMA: dict[str, str] = {
    "event_type": "string",  # impression | conversion
    "event_id": "string",  # impression_id | conversion_id: what the type is counted once per
    "schema_version": "int",
    "ad_id": "string",  # conversions: the token's (null when only a click_id names the click)
    "campaign_id": "string",
    "advertiser_id": "string",
    "event_time": "timestamp_ms",  # served at | occurred_at
    "impression_id": "string",  # impressions: = event_id; conversions: the token's
    "click_id": "string",  # conversions: the click they name (if they name it)
    "placement_id": "string",
    "publisher_id": "string",
    "user_id": "string",
    "value_micros": "bigint",  # conversions: value in micro-units of `currency`
    "currency": "string",
    "attributed_by": "string",  # conversions: token | click_id (what ingest could tell)
    "ingest_time": "timestamp_ms",
    "request_id": "string",
    "source_ip": "string",
}

MICROS = 1_000_000


def encode_click(record: dict[str, Any]) -> bytes:
    """Serialize a click record compactly (no spaces: Kinesis bills payload bytes)."""
    return json.dumps(
        {k: record.get(k) for k in CLICK_RECORD_SCHEMA}, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def encode_event(record: dict[str, Any]) -> bytes:
    """Serialize an events-stream record (EVENT_RECORD_SCHEMA's fields, in its order)."""
    return json.dumps(
        {k: record.get(k) for k in EVENT_RECORD_SCHEMA}, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def decode_click(data: bytes) -> dict[str, Any]:
    return json.loads(data)


def partition_key(ad_id: str, click_id: str, hot_ad_salts: dict[str, int]) -> str:
    """Kinesis partition key: the ad, so one ad's clicks stay ordered on one shard.

    A hot ad listed in `hot_ad_salts` is spread over N keys (`ad#0`..`ad#N-1`) chosen by a stable
    hash of the click_id, so a retry of the same click lands on the same shard.
    """
    salts = hot_ad_salts.get(ad_id, 1)
    if salts <= 1:
        return ad_id
    digest = hashlib.blake2b(click_id.encode("utf-8"), digest_size=4).digest()
    return f"{ad_id}#{int.from_bytes(digest, 'big') % salts}"
