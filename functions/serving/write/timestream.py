"""Timestream for LiveAnalytics serving store: one MULTI record per aggregate, `Version` = the
changelog version, so Timestream's own upsert rule (higher version wins) makes redelivery and
reordering harmless. Leaderboard rows are not stored: Timestream answers top-K with SQL.

Timestream LiveAnalytics is closed to new AWS customers since 2025-06-20: accounts without it
deploy with `-c serving_store=dynamodb`.
"""
from __future__ import annotations

import boto3
from botocore.exceptions import ClientError

from aggregate.changes import AGG, LATE, Change
from common.config import ServingSettings
from serving.table import METRICS

MAX_RECORDS_PER_WRITE = 100


def record_for(change: Change) -> dict:
    """The Timestream record a change writes (pure: tested directly)."""
    row = change.row
    if change.kind == AGG:
        dims = [("ad_id", row["ad_id"]), ("resolution", row["resolution"]),
                ("campaign_id", row.get("campaign_id") or "-"), ("advertiser_id", row.get("advertiser_id") or "-")]
        measures = [(m, row.get(m) or 0) for m in METRICS]
        measures += [(m, row[m]) for m in ("max_event_time", "watermark") if row.get(m) is not None]
        name = "agg"
    else:
        dims = [("ad_id", row["ad_id"]), ("resolution", "1m")]
        measures, name = [("late_dropped", row.get("late_dropped") or 0)], "late"
    return {
        "Dimensions": [{"Name": k, "Value": str(v), "DimensionValueType": "VARCHAR"} for k, v in dims],
        "MeasureName": name,
        "MeasureValueType": "MULTI",
        "MeasureValues": [{"Name": k, "Value": str(int(v)), "Type": "BIGINT"} for k, v in measures],
        "Time": str(change.bucket_start),
        "TimeUnit": "MILLISECONDS",
        "Version": change.version,
    }


def is_stale_rejection(reason: str) -> bool:
    """Timestream's reason when a record with the same or a higher version is already stored."""
    reason = reason.lower()
    return "version" in reason and ("higher" in reason or "same" in reason or "equal" in reason)


class TimestreamServingStore:
    def __init__(self, client, database: str, table: str):
        self._ts, self._db, self._table = client, database, table

    @classmethod
    def from_env(cls) -> "TimestreamServingStore":
        settings = ServingSettings.from_env()  # TIMESTREAM_DATABASE, TIMESTREAM_TABLE
        return cls(boto3.client("timestream-write"), settings.require("timestream_database"),
                   settings.require("timestream_table"))

    def apply_many(self, changes: list[Change]) -> list[Exception | None]:
        """Write upserts in WriteRecords calls of 100; per-change error or None (stale = None)."""
        results: list[Exception | None] = [None] * len(changes)
        wanted = [(i, c) for i, c in enumerate(changes) if c.upsert and c.kind in (AGG, LATE)]
        for start in range(0, len(wanted), MAX_RECORDS_PER_WRITE):
            chunk = wanted[start : start + MAX_RECORDS_PER_WRITE]
            try:
                self._ts.write_records(DatabaseName=self._db, TableName=self._table,
                                       Records=[record_for(c) for _, c in chunk])
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "RejectedRecordsException":
                    for i, _ in chunk:
                        results[i] = exc
                    continue
                for rejected in exc.response.get("RejectedRecords", []):
                    if not is_stale_rejection(rejected.get("Reason", "")):
                        results[chunk[rejected["RecordIndex"]][0]] = RuntimeError(rejected.get("Reason"))
        return results

    def apply(self, change: Change) -> bool:
        error = self.apply_many([change])[0]
        if error:
            raise error
        return True

    def advance_freshness(self, watermark_ms: int | None, newest_event_ms: int | None,
                          source: str = "") -> None:
        """Nothing to store: freshness is max(watermark) / max(max_event_time) in SQL."""

    def take_verdict_deltas(self) -> None:
        """Unknown: WriteRecords does not return the record a write replaced (aggregate.verdicts)."""
        return None
