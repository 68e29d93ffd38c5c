"""Kinesis Data Streams: shards a stream needs, what it costs on-demand and provisioned,
quota warnings; and the clicks stream component."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from capacity.planner.assumptions import (
    EXTENDED_RETENTION_MAX_HOURS, GIB, HOURS_PER_MONTH, INPUT_STREAM_CONSUMERS,
    INPUT_STREAM_POLLS_S, KIB, KINESIS_SHARD_HEADROOM, KPL_BYTES_PER_SUBRECORD,
    KPL_RECORD_HEADER_BYTES, MIB, ON_DEMAND_RECORD_UNIT, PARTITION_KEY_BYTES, PUT_PAYLOAD_UNIT,
    SECONDS_PER_MONTH, SHARD_READ_BYTES_S, SHARD_READ_CALLS_S, SHARD_WRITE_BYTES_S,
    SHARD_WRITE_RECORDS_S, STANDARD_RETENTION_HOURS,
)
from capacity.planner.helpers import ceil_div
from capacity.planner.model import Component
from capacity.planner.popularity import top_ad_share
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


def kpl_record_bytes(click_bytes: int, clicks_per_record: int) -> int:
    """Bytes of one Kinesis record carrying `clicks_per_record` clicks (KPL aggregation if > 1)."""
    if clicks_per_record == 1:
        return click_bytes
    return KPL_RECORD_HEADER_BYTES + clicks_per_record * (click_bytes + KPL_BYTES_PER_SUBRECORD)


@dataclass(frozen=True)
class StreamLoad:
    """What one Kinesis stream must carry: average and peak records/s, bytes per record."""
    records_s: float
    peak_records_s: float
    record_bytes: float
    consumers: int
    polls_per_shard_s: float


@dataclass(frozen=True)
class ShardNeed:
    by_write_bytes: float
    by_write_records: float
    by_read_bytes: float
    shards: int  # ceil(max(...) x headroom)

    @property
    def binding(self) -> str:
        needs = {"write bytes": self.by_write_bytes, "write records": self.by_write_records,
                 "read bytes": self.by_read_bytes}
        return max(needs, key=needs.get)


def shards_needed(load: StreamLoad, efo: bool = False, headroom: float = KINESIS_SHARD_HEADROOM,
                  minimum: int = 1) -> ShardNeed:
    """Provisioned shards for the peak: by write bytes (data + partition key, 1 MiB/s), by write
    records (1,000/s) and by reads (2 MiB/s per shard shared by polling consumers, or per
    consumer with enhanced fan-out), times the headroom."""
    write_bytes = load.peak_records_s * (load.record_bytes + PARTITION_KEY_BYTES)
    by_bytes = write_bytes / SHARD_WRITE_BYTES_S
    by_records = load.peak_records_s / SHARD_WRITE_RECORDS_S
    read_bytes = load.peak_records_s * load.record_bytes * (1 if efo else load.consumers)
    by_reads = read_bytes / SHARD_READ_BYTES_S
    shards = max(minimum, ceil_div(max(by_bytes, by_records, by_reads) * headroom, 1))
    return ShardNeed(by_bytes, by_records, by_reads, shards)



@dataclass(frozen=True)
class StreamCost:
    mode: str
    on_demand_usd: float
    provisioned_usd: float
    need: ShardNeed


def stream_costs(c: Component, pb: PriceBook, load: StreamLoad, choice: str, retention_h: int,
                  efo: bool, min_shards: int = 1) -> StreamCost:
    need = shards_needed(load, efo=efo, minimum=min_shards)
    records_month = load.records_s * SECONDS_PER_MONTH
    gb_per_hour = load.records_s * load.record_bytes * 3600 / GIB  # payload written per hour

    prov: list[tuple[str, str, float]] = [
        ("shard-hours", "kds_shard_hour", need.shards * HOURS_PER_MONTH),
        ("PUT payload units", "kds_put_payload_units",
         records_month * ceil_div(load.record_bytes, PUT_PAYLOAD_UNIT))]
    if retention_h > STANDARD_RETENTION_HOURS:
        prov.append(("extended retention", "kds_extended_retention_shard_hour",
                     need.shards * HOURS_PER_MONTH))
    if efo:
        prov.append(("enhanced fan-out consumer-shard-hours", "kds_efo_consumer_shard_hour",
                     load.consumers * need.shards * HOURS_PER_MONTH))
        prov.append(("enhanced fan-out data", "kds_efo_gb",
                     load.consumers * records_month * load.record_bytes / GIB))

    billed_gb = records_month * ceil_div(load.record_bytes, ON_DEMAND_RECORD_UNIT) * KIB / GIB
    od: list[tuple[str, str, float]] = [
        ("stream-hours", "kds_od_stream_hour", HOURS_PER_MONTH),
        ("data in (records rounded up to 1 KB)", "kds_od_ingest_gb", billed_gb),
        ("data out (x consumers, rounded up to 1 KB)",
         "kds_od_efo_retrieval_gb" if efo else "kds_od_retrieval_gb", billed_gb * load.consumers)]
    if retention_h > STANDARD_RETENTION_HOURS:
        od.append(("extended retention", "kds_od_extended_retention_gb_month",
                   gb_per_hour * (min(retention_h, EXTENDED_RETENTION_MAX_HOURS) - STANDARD_RETENTION_HOURS)))
    long_term = []
    if retention_h > EXTENDED_RETENTION_MAX_HOURS:
        long_term.append(("long-term retention", "kds_long_term_retention_gb_month",
                          gb_per_hour * (retention_h - EXTENDED_RETENTION_MAX_HOURS)))

    prov_usd = sum(pb.cost(k, q) for _, k, q in prov + long_term)
    od_usd = sum(pb.cost(k, q) for _, k, q in od + long_term)
    mode = choice if choice != "auto" else ("provisioned" if prov_usd < od_usd else "on_demand")
    for item, key, q in (prov if mode == "provisioned" else od) + long_term:
        c.cost(pb, item, key, q)
    c.alternatives.update(on_demand=od_usd, provisioned=prov_usd)
    c.mode = mode
    return StreamCost(mode, od_usd, prov_usd, need)


def stream_warnings(c: Component, pb: PriceBook, load: StreamLoad, sc: StreamCost) -> None:
    if sc.mode == "on_demand":
        max_rec, max_mib = pb.quota("kds_od_max_records_s"), pb.quota("kds_od_max_write_mib_s")
        mib_s = load.peak_records_s * (load.record_bytes + PARTITION_KEY_BYTES) / MIB
        if load.peak_records_s > max_rec or mib_s > max_mib:
            c.warnings.append(
                f"QUOTA: peak {load.peak_records_s:,.0f} records/s, {mib_s:,.0f} MiB/s exceeds "
                f"the on-demand stream default ({max_rec:,.0f} records/s, {max_mib:,.0f} MiB/s): "
                f"request an increase, or pack clicks per record.")
        c.notes.append("On-demand scales to 2x the previous 30-day peak instantly; a first "
                       "spike beyond that is throttled for up to 15 min while it scales.")
    if load.polls_per_shard_s > SHARD_READ_CALLS_S:
        c.warnings.append(f"{load.polls_per_shard_s:g} GetRecords/s per shard from polling "
                          f"consumers exceeds {SHARD_READ_CALLS_S}: use enhanced fan-out.")



def clicks_stream_load(x: Inputs) -> StreamLoad:
    k = x.clicks_per_record
    return StreamLoad(x.rate / k, x.peak / k, kpl_record_bytes(x.click_bytes, k),
                      INPUT_STREAM_CONSUMERS, INPUT_STREAM_POLLS_S)


def hot_ad_warning(c: Component, top_peak: float, skew: float, what: str) -> None:
    """The top ad's records (partition key: the ad) need more than one shard: list it in
    hot_ad_salts (ingest spreads a listed ad over N keys, on both input streams)."""
    salts = ceil_div(top_peak, SHARD_WRITE_RECORDS_S / KINESIS_SHARD_HEADROOM)
    if salts > 1:
        c.warnings.append(f"the top ad alone sends ~{top_peak:,.0f} {what}/s at peak (Zipf "
                          f"s={skew:g}): more than one shard takes; list hot ads in "
                          f"hot_ad_salts with ~{salts} salts each.")


def add_shard_lines(c: Component, x: Inputs, load, need) -> None:
    """The rate and shard-sizing lines every input stream's component shows (clicks, events)."""
    c.add("records/s average", load.records_s)
    c.add("records/s peak", load.peak_records_s)
    c.add("write MB/s peak", load.peak_records_s * (load.record_bytes + PARTITION_KEY_BYTES) / 1e6, "MB/s")
    c.add("shards by write bytes", need.by_write_bytes)
    c.add("shards by write records", need.by_write_records)
    c.add(f"shards by reads ({'EFO' if x.efo else f'{load.consumers} shared consumers'})", need.by_read_bytes)
    c.add("binding limit", need.binding)
    c.add("provisioned shards", need.shards)


def clicks_stream(x: Inputs, pb: PriceBook) -> Component:
    c = Component("clicks_stream", "Kinesis clicks stream")
    load = clicks_stream_load(x)
    sc = stream_costs(c, pb, load, x.kinesis_mode, x.kinesis_retention_hours, x.efo)
    need = sc.need
    c.add("clicks per record", x.clicks_per_record)
    c.add("record bytes", load.record_bytes, "B")
    add_shard_lines(c, x, load, need)
    top_peak = x.peak * top_ad_share(x.active_ads, x.ad_skew)
    c.add("top ad clicks/s at peak", top_peak)
    c.context.update(kinesis_mode=sc.mode, kinesis_shards=need.shards,
                     kinesis_retention_hours=x.kinesis_retention_hours)
    stream_warnings(c, pb, load, sc)
    if x.clicks_per_record == 1:
        hot_ad_warning(c, top_peak, x.ad_skew, "clicks")
    if x.clicks_per_record > 1:
        c.notes.append("Packed records (KPL aggregation format): Firehose de-aggregates them; "
                       "the Flink source must de-aggregate too; one partition key per record, "
                       "so an ad's clicks no longer stay on one shard (Flink SQL re-keys by ad).")
    return c
