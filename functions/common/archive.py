"""The raw click archive: one definition of its schema and layout, used by infra (Glue table,
Firehose Parquet conversion, partition projection) and by the local writer.

Objects land under `raw/clicks/dt=YYYY-MM-DD/hr=HH/` by *arrival* time (Firehose's processing
time), so a click's event time can sit in an earlier partition: readers of day D also read
the previous day's last hour and the first hours after D (see glue_jobs).
Times are epoch milliseconds (bigint): unambiguous in Parquet, Athena and DuckDB alike.
"""
from __future__ import annotations

from datetime import datetime, timezone

from common.records import CLICK_RECORD_SCHEMA

RAW_PREFIX = "raw/clicks/"
ERROR_PREFIX = "errors/clicks/"
PARTITION_KEYS = (("dt", "string"), ("hr", "string"))

_GLUE_TYPES = {"string": "string", "bigint": "bigint", "timestamp_ms": "bigint"}

# Glue/Athena columns of the raw table, in record order.
RAW_COLUMNS: list[tuple[str, str]] = [(name, _GLUE_TYPES[t]) for name, t in CLICK_RECORD_SCHEMA.items()]


def partition_of(arrival_ms: int) -> tuple[str, str]:
    dt = datetime.fromtimestamp(arrival_ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%d"), dt.strftime("%H")


def partition_prefix(arrival_ms: int) -> str:
    dt, hr = partition_of(arrival_ms)
    return f"{RAW_PREFIX}dt={dt}/hr={hr}/"


# Firehose's S3 prefix expression producing the same layout from its own arrival timestamp.
FIREHOSE_PREFIX = RAW_PREFIX + "dt=!{timestamp:yyyy-MM-dd}/hr=!{timestamp:HH}/"
FIREHOSE_ERROR_PREFIX = ERROR_PREFIX + "!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"


def partition_projection(bucket: str, start_date: str = "2026-01-01",
                         prefix: str = RAW_PREFIX) -> dict[str, str]:
    """Athena partition projection table properties: partitions are computed, never crawled.
    `prefix`: the table's objects (the refused-items archive, common.refused, has its own)."""
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
