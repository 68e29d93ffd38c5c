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

MICROS = 1_000_000


def encode_click(record: dict[str, Any]) -> bytes:
    """Serialize a click record compactly (no spaces: Kinesis bills payload bytes)."""
    return json.dumps(
        {k: record.get(k) for k in CLICK_RECORD_SCHEMA}, separators=(",", ":"), ensure_ascii=False
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
