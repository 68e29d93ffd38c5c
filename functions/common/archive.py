"""The raw archives: one definition of each one's schema and layout, used by infra (Glue
table, Firehose Parquet conversion, partition projection) and by the local writer. Two: the
clicks (`CLICKS`, the clicks stream) and the events (`EVENTS`: impressions and conversions, the
events stream, docs/events.md), laid out alike.

Objects land under `raw/<name>/dt=YYYY-MM-DD/hr=HH/` by *arrival* time (Firehose's processing
time), so a click's event time can sit in an earlier partition: readers of day D also read
the previous day's last hour and the first hours after D (see glue_jobs).
Times are epoch milliseconds (bigint): unambiguous in Parquet, Athena and DuckDB alike.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from common.records import CLICK_RECORD_SCHEMA, EVENT_RECORD_SCHEMA

PARTITION_KEYS = (("dt", "string"), ("hr", "string"))

_GLUE_TYPES = {"string": "string", "bigint": "bigint", "int": "int", "timestamp_ms": "bigint"}


def partition_of(arrival_ms: int) -> tuple[str, str]:
    dt = datetime.fromtimestamp(arrival_ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%d"), dt.strftime("%H")


@dataclasses.dataclass(frozen=True)
class ArchiveLayout:
    """One raw archive: `raw/<name>/dt=/hr=/` Parquet by arrival time, failed deliveries under
    `errors/<name>/`, columns in its record's order (columns are only ever added at the end)."""

    name: str  # clicks | events
    record_schema: dict

    @property
    def prefix(self) -> str:
        return f"raw/{self.name}/"

    @property
    def error_prefix(self) -> str:
        return f"errors/{self.name}/"

    @property
    def columns(self) -> list[tuple[str, str]]:
        """Glue/Athena columns, in record order."""
        return [(name, _GLUE_TYPES[t]) for name, t in self.record_schema.items()]

    @property
    def firehose_prefix(self) -> str:
        """Firehose's S3 prefix expression producing the layout from its own arrival timestamp."""
        return self.prefix + "dt=!{timestamp:yyyy-MM-dd}/hr=!{timestamp:HH}/"

    @property
    def firehose_error_prefix(self) -> str:
        return self.error_prefix + "!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"

    def partition_prefix(self, arrival_ms: int) -> str:
        dt, hr = partition_of(arrival_ms)
        return f"{self.prefix}dt={dt}/hr={hr}/"


CLICKS = ArchiveLayout("clicks", CLICK_RECORD_SCHEMA)
EVENTS = ArchiveLayout("events", EVENT_RECORD_SCHEMA)

# the clicks archive's names (billing, analytics, the demo and tests read the clicks archive)
RAW_PREFIX = CLICKS.prefix
ERROR_PREFIX = CLICKS.error_prefix
RAW_COLUMNS: list[tuple[str, str]] = CLICKS.columns
FIREHOSE_PREFIX = CLICKS.firehose_prefix
FIREHOSE_ERROR_PREFIX = CLICKS.firehose_error_prefix
partition_prefix = CLICKS.partition_prefix


def partition_projection(bucket: str, start_date: str = "2026-01-01",
                         prefix: str = RAW_PREFIX) -> dict[str, str]:
    """Athena partition projection table properties: partitions are computed, never crawled.
    `prefix`: the table's objects (the events and refused-items archives have their own)."""
    return {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": f"{start_date},NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "projection.hr.type": "integer",
        "projection.hr.range": "0,23",
        "projection.hr.digits": "2",
        "storage.location.template": f"s3://{bucket}/{prefix}dt=${{dt}}/hr=${{hr}}/",
    }
