"""Firehose (clicks -> Parquet) and the S3 archive it writes."""
from __future__ import annotations

from typing import TYPE_CHECKING

from capacity.planner.assumptions import (
    ARCHIVE_IA_MONTHS, ARCHIVE_STANDARD_MONTHS, FIREHOSE_BUFFER_MB, FIREHOSE_INTERVAL_S,
    FIREHOSE_MAX_INTERVAL_S, FIREHOSE_RECORD_UNIT, GIB, HOURS_PER_MONTH,
    KPL_BYTES_PER_SUBRECORD, MIB, PARQUET_RATIO, S3_REQUESTS_PER_OBJECT, SECONDS_PER_MONTH,
)
from capacity.planner.helpers import ceil_div
from capacity.planner.kinesis import clicks_stream_load
from capacity.planner.model import Component
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


def firehose_buffering(x: Inputs) -> tuple[int, int, float]:
    """(buffer MB, interval s, seconds between objects): the buffer fills at the JSON input rate;
    when that takes longer than FIREHOSE_INTERVAL_S the interval is stretched (<= 900 s) so
    objects stay big."""
    input_bytes_s = x.rate * x.click_bytes
    fill_s = FIREHOSE_BUFFER_MB * MIB / input_bytes_s
    interval = FIREHOSE_INTERVAL_S if fill_s <= FIREHOSE_INTERVAL_S else min(
        FIREHOSE_MAX_INTERVAL_S, ceil_div(fill_s, 60) * 60)
    return FIREHOSE_BUFFER_MB, interval, min(fill_s, interval)


def components(x: Inputs, pb: PriceBook) -> tuple[Component, Component]:
    fh = Component("firehose", "Firehose (clicks -> Parquet)")
    load = clicks_stream_load(x)
    records_month = load.records_s * SECONDS_PER_MONTH
    billed_gb = records_month * ceil_div(load.record_bytes, FIREHOSE_RECORD_UNIT) * FIREHOSE_RECORD_UNIT / GIB
    actual_gb = x.rate * x.click_bytes * SECONDS_PER_MONTH / GIB
    buffer_mb, interval_s, object_every_s = firehose_buffering(x)
    objects_hour = 3600 / object_every_s
    object_mb = object_every_s * x.rate * x.click_bytes * PARQUET_RATIO / 1e6
    fh.mode = f"{buffer_mb} MB / {interval_s} s"
    fh.add("records per month", records_month)
    fh.add("JSON data per month", actual_gb, "GB")
    fh.add("billed (records rounded up to 5 KB)", billed_gb, "GB")
    fh.add("buffer fills every", object_every_s, "s")
    fh.add("objects per hour", objects_hour)
    fh.add("Parquet object size", object_mb, "MB")
    fh.cost(pb, "ingestion (5 KB units)", "firehose_kds_ingest_gb", billed_gb)
    fh.cost(pb, "format conversion to Parquet", "firehose_format_conversion_gb", billed_gb)
    fh.context.update(firehose_buffer_mb=buffer_mb, firehose_buffer_interval_s=interval_s)
    if billed_gb > 2 * actual_gb:
        fh.notes.append(f"Firehose bills {billed_gb / actual_gb:.0f}x the data: each "
                        f"{load.record_bytes:,} B record counts as 5 KB; packing "
                        f"{FIREHOSE_RECORD_UNIT // max(1, x.click_bytes + KPL_BYTES_PER_SUBRECORD)} "
                        f"clicks per record fills the unit.")
    fh.notes.append("A Kinesis-sourced delivery stream reads shards in parallel and may close "
                    "more, smaller objects than one buffer per interval.")

    s3 = Component("archive", "S3 archive (Parquet)")
    parquet_gb_month = actual_gb * PARQUET_RATIO
    objects_month = objects_hour * HOURS_PER_MONTH
    months = x.archive_months
    standard_gb = parquet_gb_month * min(months, ARCHIVE_STANDARD_MONTHS)
    ia_gb = parquet_gb_month * max(0, min(months - ARCHIVE_STANDARD_MONTHS, ARCHIVE_IA_MONTHS))
    cold_gb = parquet_gb_month * max(0, months - ARCHIVE_STANDARD_MONTHS - ARCHIVE_IA_MONTHS)
    s3.mode = f"after {months} months"
    s3.add("Parquet per month", parquet_gb_month, "GB")
    s3.add("stored: Standard", standard_gb, "GB")
    s3.add("stored: Standard-IA", ia_gb, "GB")
    s3.add("stored: Glacier Instant Retrieval", cold_gb, "GB")
    s3.add("objects per month", objects_month)
    s3.cost(pb, "Standard storage", "s3_standard_gb_month", standard_gb)
    s3.cost(pb, "Standard-IA storage", "s3_ia_gb_month", ia_gb)
    s3.cost(pb, "Glacier IR storage", "s3_glacier_ir_gb_month", cold_gb)
    s3.cost(pb, "PUT requests", "s3_put_requests", objects_month * S3_REQUESTS_PER_OBJECT)
    s3.cost(pb, "lifecycle transitions to IA", "s3_transition_ia", objects_month)
    s3.cost(pb, "lifecycle transitions to Glacier IR", "s3_transition_glacier_ir", objects_month)
    s3.notes.append("Storage grows every month (no expiry): the cost shown is month "
                    f"{months}'s; Glue output and Athena results are small and not counted.")
    return fh, s3
