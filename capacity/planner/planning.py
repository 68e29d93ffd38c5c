"""plan(): size every component for the peak and cost it at the average rate."""
from __future__ import annotations

from typing import Optional

# Component modules under other names: plan()'s parameters `api` and `dedup` are inputs.
from capacity.planner import api as api_gateway
from capacity.planner import archive as firehose_archive
from capacity.planner import budget as budget_lane_parts
from capacity.planner import dedup as dedup_table
from capacity.planner import events as events_path
from capacity.planner import flink as managed_flink
from capacity.planner import glue as glue_job
from capacity.planner import ingest as ingest_lambda
from capacity.planner import kinesis as kinesis_streams
from capacity.planner import rebuild as archive_rebuild
from capacity.planner import observability as logs_and_quotas
from capacity.planner import serving as serving_path
from capacity.planner.assumptions import (
    ACTIVE_ADS, AD_ZIPF_S, ARCHIVE_MONTHS, BUDGET_EMIT_INTERVAL_MS, CHANGELOG_UPDATE_BEFORE,
    CONVERSIONS_PER_CLICK, FLINK_DEDUP_TTL_S, IMPRESSIONS_PER_CLICK, MINIBATCH_MS, MINIBATCH_SIZE,
    PACING_CACHE_TTL_MS, SERVING_RESOLUTIONS,
)
from capacity.planner.inputs import Inputs, as_dict, validate
from capacity.planner.model import Component, Plan
from capacity.pricing import PriceBook, load_prices
from common.schema import default


def plan(rate: float, peak: Optional[float] = None, click_bytes: int = 200, batch_size: int = 50,
         region: str = "us-east-1", api: str = "rest", dedup: str = default("ingest_dedup_mode"),
         clicks_per_record: int = 1, *, active_ads: int = ACTIVE_ADS, ad_skew: float = AD_ZIPF_S,
         minibatch_ms: int = MINIBATCH_MS, changelog_rows_per_record: int = 1,
         changelog_update_before: bool = CHANGELOG_UPDATE_BEFORE,
         serving_resolutions: tuple[str, ...] = SERVING_RESOLUTIONS,
         kinesis_mode: str = "auto", aggregates_kinesis_mode: str = "auto",
         dedup_capacity: str = "auto", serving_capacity: str = "auto",
         serving_store: str = default("serving_store"),
         kinesis_retention_hours: int = default("kinesis_retention_hours"),
         dedup_ttl_s: int = default("dedup_ttl_s"), flink_dedup_ttl_s: int = FLINK_DEDUP_TTL_S,
         efo: bool = False,
         archive_months: int = ARCHIVE_MONTHS, prices: Optional[PriceBook] = None,
         impressions_per_click: float = IMPRESSIONS_PER_CLICK,
         conversions_per_click: float = CONVERSIONS_PER_CLICK,
         events_kinesis_mode: str = "auto", budget_lane: bool = True,
         budget_emit_interval_ms: int = BUDGET_EMIT_INTERVAL_MS,
         pacing_cache_ttl_ms: int = PACING_CACHE_TTL_MS, ad_servers: Optional[int] = None,
         pacing_campaigns: Optional[int] = None, minibatch_size: int = MINIBATCH_SIZE) -> Plan:
    """Size every component for `peak` and cost it at the average `rate` (clicks/s); impressions
    and conversions (POST /v1/events) come at `impressions_per_click` and
    `conversions_per_click` times the clicks, average and peak alike. The budget lane
    (docs/budget.md, `budget_lane`) adds spend rows and the pulse to the aggregates' path and
    its own decision API; Plan.lane is what it costs (the plan minus the plan without it)."""
    peak = rate if peak is None else peak
    x = Inputs(float(rate), float(peak), int(click_bytes), int(batch_size), region, api, dedup,
               int(clicks_per_record), int(active_ads), float(ad_skew), int(minibatch_ms),
               int(changelog_rows_per_record), bool(changelog_update_before),
               tuple(serving_resolutions), kinesis_mode, aggregates_kinesis_mode,
               dedup_capacity, serving_capacity, serving_store, int(kinesis_retention_hours),
               int(dedup_ttl_s), int(flink_dedup_ttl_s), bool(efo), int(archive_months),
               float(impressions_per_click), float(conversions_per_click), events_kinesis_mode,
               bool(budget_lane), int(budget_emit_interval_ms), int(pacing_cache_ttl_ms),
               None if ad_servers is None else int(ad_servers),
               None if pacing_campaigns is None else int(pacing_campaigns), int(minibatch_size))
    validate(x)
    pb = prices or load_prices(region)
    api_c = api_gateway.component(x, pb)
    ingest_c = ingest_lambda.component(x, pb)
    dedup_c = dedup_table.component(x, pb)
    clicks = kinesis_streams.clicks_stream(x, pb)
    events = events_path.events_stream(x, pb)
    flink_c = managed_flink.component(x, pb)
    agg, sink, serving_c = serving_path.components(x, pb)
    firehose, archive_c, events_firehose, events_archive = firehose_archive.components(x, pb)
    glue_c = glue_job.component(x, pb)
    rebuild_c = archive_rebuild.component(x, pb, serving_c)
    obs = logs_and_quotas.component(x, pb, ingest_c, sink)
    lane = budget_lane_parts.components(x, pb, api_c, ingest_c, sink, serving_c)
    athena = Component("athena", "Athena (ad-hoc queries)", "per query", counted=False)
    athena.notes.append(f"Not counted: billed per query ({pb['athena_scanned_tb'].describe()}), "
                        f"capped per query by athena_bytes_scanned_cutoff; partition projection "
                        f"+ Parquet keep a day's scan at the archive's compressed size.")
    components = [api_c, ingest_c, dedup_c, clicks, events, flink_c, agg, sink, serving_c,
                  firehose, archive_c, events_firehose, events_archive, glue_c, rebuild_c, obs, *lane,
                  athena]
    p = Plan(as_dict(x), pb.region, pb.as_of, components)
    p.account_warnings.extend(logs_and_quotas.account_checks(x, pb, p))
    if x.budget_lane:
        without = plan(**{**as_dict(x), "budget_lane": False}, prices=pb)
        p.lane = lane_costs(p, without)
    return p


def lane_costs(with_lane: Plan, without: Plan) -> dict[str, float]:
    """Monthly USD the budget lane adds, per component: its own components whole, and what its
    spend rows add to the shared ones (Flink, the aggregates stream, sink, serving table, logs)."""
    base = {c.key: c.monthly_usd for c in without.components}
    out = {}
    for c in with_lane.components:
        delta = c.monthly_usd - base.get(c.key, 0.0)
        if c.key in budget_lane_parts.LANE_KEYS or abs(delta) > 1e-9:
            out[c.key] = delta
    return out
