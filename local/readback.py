"""Read pipeline state back from AWS APIs (any endpoint): what the demo and tests check."""
from __future__ import annotations

from collections import Counter

import boto3

from common.records import decode_click


def dedup_status_counts(table: str) -> Counter:
    """Items per claim status in the dedup table (full scan: for demos and tests only)."""
    ddb = boto3.client("dynamodb")
    counts: Counter = Counter()
    for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="#s",
                                                    ExpressionAttributeNames={"#s": "status"}):
        counts.update(item["status"]["S"] for item in page["Items"])
    return counts


def read_stream(stream: str) -> dict[str, list[dict]]:
    """Every record on every shard, from TRIM_HORIZON, decoded: {shard_id: [click, ...]}."""
    kinesis = boto3.client("kinesis")
    out: dict[str, list[dict]] = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records: list[dict] = []
        while it:
            page = kinesis.get_records(ShardIterator=it, Limit=10_000)
            records.extend(decode_click(r["Data"]) for r in page["Records"])
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            it = page.get("NextShardIterator")
        out[shard["ShardId"]] = records
    return out


# serving-table attribute -> metric: the four of the first release, and whatever else the
# table's own map names (suspect_clicks / invalid_clicks once the store has them)
_SERIES_ATTRS = {"c": "clicks", "b": "billable_clicks", "k": "cost_micros", "bk": "billable_cost_micros"}


def _series_attrs() -> dict[str, str]:
    from serving import table

    return {**_SERIES_ATTRS, **{attr: name for name, attr in getattr(table, "METRIC_ATTRS", {}).items()}}


def read_series(table: str, ad_id: str, resolution: str, level: str = "agg") -> dict[int, dict]:
    """The serving store's series for one ad (or with `level` 'campaign' / 'advertiser', one
    rollup): {bucket_start: {clicks, billable_clicks, ...}}: the metrics an item holds (a
    metric the store does not write yet is absent: read .get(m, 0))."""
    from serving.keys import series_pk

    ddb = boto3.client("dynamodb")
    attrs = _series_attrs()
    out: dict[int, dict] = {}
    for page in ddb.get_paginator("query").paginate(
            TableName=table, KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": series_pk(ad_id, resolution, level)}}):
        for item in page["Items"]:
            out[int(item["sk"]["S"])] = {name: int(item[attr]["N"]) for attr, name in attrs.items()
                                         if attr in item}
    return out


def click_token_keys(secret_name: str):
    """The click-token key set of the stack's secret (what a local ad server signs with)."""
    from common.click_token import parse_key_set

    raw = boto3.client("secretsmanager").get_secret_value(SecretId=secret_name)["SecretString"]
    return parse_key_set(raw)


def read_late_dropped(table: str) -> int:
    """Sum of late-dropped counters (scan: demos and tests only)."""
    return sum(read_late_dropped_cells(table).values())


def read_late_dropped_cells(table: str) -> dict[tuple[str, int], int]:
    """Late-dropped counters per (ad_id, minute start) (scan: demos and tests only)."""
    ddb = boto3.client("dynamodb")
    cells: dict[tuple[str, int], int] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table, FilterExpression="begins_with(pk, :l)",
                                                    ExpressionAttributeValues={":l": {"S": "L#"}}):
        for i in page["Items"]:
            if "ld" in i:
                minute, _, ad = i["sk"]["S"].partition("#")
                cells[(ad, int(minute))] = cells.get((ad, int(minute)), 0) + int(i["ld"]["N"])
    return cells
