"""Impressions and conversions (issue 19, POST /v1/events): their rates, and the events stream
they travel on (impressions unclaimed, conversions after their claim; one record each)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from capacity.planner.assumptions import (
    CONVERSION_RECORD_BYTES, IMPRESSION_RECORD_BYTES, INPUT_STREAM_CONSUMERS,
    INPUT_STREAM_POLLS_S,
)
from capacity.planner.kinesis import (StreamLoad, add_shard_lines, hot_ad_warning, stream_costs,
                                      stream_warnings)
from capacity.planner.model import Component
from capacity.planner.popularity import top_ad_share
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


def event_rates(x: Inputs, rate: float) -> tuple[float, float]:
    """(impressions/s, conversions/s) at `rate` clicks/s: the inputs' multiples of the clicks."""
    return rate * x.impressions_per_click, rate * x.conversions_per_click


def counted_rows_s(x: Inputs, rate: float) -> float:
    """Rows/s the Flink job reads and counts at `rate` clicks/s: every click, impression and
    conversion updates its ad's, campaign's and advertiser's series. Conversions that name only
    a click_id are read but left to the nightly batch: counted here all the same (upper bound)."""
    impressions, conversions = event_rates(x, rate)
    return rate + impressions + conversions


def events_record_bytes(x: Inputs) -> float:
    """Mean record bytes on the events stream (impressions and conversions by their rates)."""
    impressions, conversions = event_rates(x, 1.0)
    if impressions + conversions == 0:
        return float(IMPRESSION_RECORD_BYTES)
    return (impressions * IMPRESSION_RECORD_BYTES + conversions * CONVERSION_RECORD_BYTES) / (
        impressions + conversions)


def events_stream_load(x: Inputs) -> StreamLoad:
    """One record per impression and per conversion (ingest does not pack them), read by Flink
    and Firehose like the clicks stream."""
    avg, peak = sum(event_rates(x, x.rate)), sum(event_rates(x, x.peak))
    return StreamLoad(avg, peak, events_record_bytes(x), INPUT_STREAM_CONSUMERS, INPUT_STREAM_POLLS_S)


def events_stream(x: Inputs, pb: PriceBook) -> Component:
    c = Component("events_stream", "Kinesis events stream")
    load = events_stream_load(x)
    sc = stream_costs(c, pb, load, x.events_kinesis_mode, x.kinesis_retention_hours, x.efo)
    need = sc.need
    c.add("impressions per click", x.impressions_per_click)
    c.add("conversions per click", x.conversions_per_click)
    c.add("record bytes (mean)", load.record_bytes, "B")
    add_shard_lines(c, x, load, need)
    top_peak = load.peak_records_s * top_ad_share(x.active_ads, x.ad_skew)
    c.add("top ad records/s at peak", top_peak)
    c.context.update(events_kinesis_mode=sc.mode, events_kinesis_shards=need.shards)
    stream_warnings(c, pb, load, sc)
    hot_ad_warning(c, top_peak, x.ad_skew, "impressions and conversions")
    c.notes.append("One record per impression and per conversion (partition key: the ad); the "
                   "stream exists in every deployment, so it costs at least one shard (or an "
                   "on-demand stream) without events.")
    return c
