"""The two archives: Firehose reads the clicks stream and the events stream and writes Parquet
into the one S3 archive bucket (raw/clicks/, raw/events/), with one set of buffer settings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from capacity.planner.assumptions import (
    ARCHIVE_IA_MONTHS, ARCHIVE_STANDARD_MONTHS, FIREHOSE_BUFFER_MB, FIREHOSE_INTERVAL_S,
    FIREHOSE_MAX_INTERVAL_S, FIREHOSE_RECORD_UNIT, GIB, HOURS_PER_MONTH,
    KPL_BYTES_PER_SUBRECORD, MIB, PARQUET_RATIO, S3_REQUESTS_PER_OBJECT, SECONDS_PER_MONTH,
)
from capacity.planner.events import events_stream_load
from capacity.planner.helpers import ceil_div
from capacity.planner.kinesis import StreamLoad, clicks_stream_load
from capacity.planner.model import Component
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


def firehose_buffering(x: Inputs) -> tuple[int, int, float]:
    """(buffer MB, interval s, seconds between click objects): the buffer fills at the clicks'
    JSON input rate; when that takes longer than FIREHOSE_INTERVAL_S the interval is stretched
    (<= 900 s) so objects stay big. Both archives deploy these settings; the events fill the
    buffer long before the interval at any multiple that matters."""
    fill_s = FIREHOSE_BUFFER_MB * MIB / (x.rate * x.click_bytes)
    interval = FIREHOSE_INTERVAL_S if fill_s <= FIREHOSE_INTERVAL_S else min(
        FIREHOSE_MAX_INTERVAL_S, ceil_div(fill_s, 60) * 60)
    return FIREHOSE_BUFFER_MB, interval, min(fill_s, interval)


@dataclass(frozen=True)
class Delivery:
    """One archive delivery: its stream's load and the JSON bytes/s of its records."""
    what: str  # clicks | events
    load: StreamLoad
    json_bytes_s: float

    @property
    def records_month(self) -> float:
        return self.load.records_s * SECONDS_PER_MONTH

    @property
    def billed_gb(self) -> float:
        """Firehose bills each Kinesis record rounded up to 5 KB."""
        units = ceil_div(self.load.record_bytes, FIREHOSE_RECORD_UNIT)
        return self.records_month * units * FIREHOSE_RECORD_UNIT / GIB

    @property
    def json_gb_month(self) -> float:
        return self.json_bytes_s * SECONDS_PER_MONTH / GIB


def deliveries(x: Inputs) -> tuple[Delivery, Delivery]:
    events = events_stream_load(x)
    return (Delivery("clicks", clicks_stream_load(x), x.rate * x.click_bytes),
            Delivery("events", events, events.records_s * events.record_bytes))


def archive_months(months: int) -> tuple[int, int, int]:
    """Months of Parquet in (Standard, Standard-IA, Glacier IR) after `months` months."""
    standard = min(months, ARCHIVE_STANDARD_MONTHS)
    ia = max(0, min(months - ARCHIVE_STANDARD_MONTHS, ARCHIVE_IA_MONTHS))
    return standard, ia, max(0, months - standard - ia)


def components(x: Inputs, pb: PriceBook) -> tuple[Component, Component, Component, Component]:
    """(clicks Firehose, clicks S3, events Firehose, events S3): the events archive is billed
    after the clicks' in the tiered prices (Firehose ingestion, S3 Standard)."""
    clicks, events = deliveries(x)
    _, interval_s, _ = firehose_buffering(x)
    fh, s3 = _delivery(x, pb, clicks, interval_s, ("firehose", "archive"))
    standard_gb = s3.metric("stored: Standard")
    efh, es3 = _delivery(x, pb, events, interval_s, ("events_firehose", "events_archive"),
                         after=(clicks.billed_gb, standard_gb))
    return fh, s3, efh, es3


def _delivery(x: Inputs, pb: PriceBook, d: Delivery, interval_s: int, keys: tuple[str, str],
              after: tuple[float, float] = (0.0, 0.0)) -> tuple[Component, Component]:
    fh = Component(keys[0], f"Firehose ({d.what} -> Parquet)")
    fill_s = FIREHOSE_BUFFER_MB * MIB / d.json_bytes_s if d.json_bytes_s else float("inf")
    object_every_s = min(fill_s, interval_s)
    objects_hour = 3600 / object_every_s if d.json_bytes_s else 0.0
    fh.mode = f"{FIREHOSE_BUFFER_MB} MB / {interval_s} s"
    fh.add("records per month", d.records_month)
    fh.add("JSON data per month", d.json_gb_month, "GB")
    fh.add("billed (records rounded up to 5 KB)", d.billed_gb, "GB")
    fh.add("buffer fills every", object_every_s if d.json_bytes_s else 0.0, "s")
    fh.add("objects per hour", objects_hour)
    fh.add("Parquet object size", object_every_s * d.json_bytes_s * PARQUET_RATIO / 1e6, "MB")
    fh.cost(pb, "ingestion (5 KB units)", "firehose_kds_ingest_gb", d.billed_gb, after=after[0])
    fh.cost(pb, "format conversion to Parquet", "firehose_format_conversion_gb", d.billed_gb)
    fh.context.update(firehose_buffer_mb=FIREHOSE_BUFFER_MB, firehose_buffer_interval_s=interval_s)
    if d.json_gb_month and d.billed_gb > 2 * d.json_gb_month:
        item_bytes = x.click_bytes if d.what == "clicks" else d.load.record_bytes
        fh.notes.append(f"Firehose bills {d.billed_gb / d.json_gb_month:.0f}x the data: each "
                        f"{d.load.record_bytes:,.0f} B record counts as 5 KB; packing "
                        f"{FIREHOSE_RECORD_UNIT // max(1, round(item_bytes) + KPL_BYTES_PER_SUBRECORD)} "
                        f"{d.what} per record would fill the unit.")
    if after[0]:
        fh.notes.append("Ingestion tiers count per account: priced after the clicks archive's "
                        "volume.")
    fh.notes.append("A Kinesis-sourced delivery stream reads shards in parallel and may close "
                    "more, smaller objects than one buffer per interval.")

    s3 = Component(keys[1], f"S3 {d.what} archive (Parquet)")
    parquet_gb_month = d.json_gb_month * PARQUET_RATIO
    objects_month = objects_hour * HOURS_PER_MONTH
    standard, ia, cold = (parquet_gb_month * m for m in archive_months(x.archive_months))
    s3.mode = f"after {x.archive_months} months"
    s3.add("Parquet per month", parquet_gb_month, "GB")
    s3.add("stored: Standard", standard, "GB")
    s3.add("stored: Standard-IA", ia, "GB")
    s3.add("stored: Glacier Instant Retrieval", cold, "GB")
    s3.add("objects per month", objects_month)
    s3.cost(pb, "Standard storage", "s3_standard_gb_month", standard, after=after[1])
    s3.cost(pb, "Standard-IA storage", "s3_ia_gb_month", ia)
    s3.cost(pb, "Glacier IR storage", "s3_glacier_ir_gb_month", cold)
    s3.cost(pb, "PUT requests", "s3_put_requests", objects_month * S3_REQUESTS_PER_OBJECT)
    s3.cost(pb, "lifecycle transitions to IA", "s3_transition_ia", objects_month)
    s3.cost(pb, "lifecycle transitions to Glacier IR", "s3_transition_glacier_ir", objects_month)
    s3.notes.append("Storage grows every month (no expiry): the cost shown is month "
                    f"{x.archive_months}'s; Glue output and Athena results are small and not counted.")
    if d.what == "events":
        s3.notes.append(f"Parquet ratio {PARQUET_RATIO:g} taken from the clicks' (an assumption "
                        "for the events' columns).")
    return fh, s3
