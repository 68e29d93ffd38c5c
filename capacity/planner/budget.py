"""The budget lane (issue 20, docs/budget.md): what it adds to the pipeline and what it costs.

Two halves:
  spend rows   the Flink job's spend aggregation per (campaign, UTC day) and per (campaign,
               minute) over the valid clicks and IVT corrections, emitted every
               budget_emit_interval_ms, and the pulse (one row per interval). They take the
               aggregates' path: Flink CPU and state (flink.py), the aggregates stream, the sink
               Lambda and the serving table (serving.py count them with the other changelog
               rows), so they show up inside those components.
  decisions    POST /v1/pacing from the ad servers (API Gateway REST, IAM) -> the budget Lambda
               (a per-container cache of each campaign's figures for pacing_cache_ttl_ms) ->
               BatchGetItem of the budget (budgets table) and the spend items and pulse (serving
               table); the budgets table; the lane's alarms, metrics and logs. These are the
               components below.

plan() reports the lane's whole cost (Plan.lane): its own components plus what the spend rows
add to the shared ones (the plan minus the same plan without the lane)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from capacity.planner.assumptions import (
    ACCESS_LOG_BYTES, AD_SERVER_CLICKS_S, AGG_STATE_MARGIN_S, ALLOWED_LATENESS_S, BUDGET_ALARMS,
    BUDGET_CUSTOM_METRICS, BUDGET_ITEM_BYTES, BUDGET_MEMORY_MB, BUDGET_PUT_WRU,
    BUDGET_SETS_PER_CAMPAIGN_DAY, BUDGET_VALID_CLICK_SHARE, DAYS_PER_MONTH, DDB_TARGET_UTILIZATION,
    DDB_TROUGH_RATIO, EC_READ_UNITS, GIB, HOURS_PER_MONTH, LAMBDA_LOG_BYTES_PER_INVOCATION,
    LOG_RETENTION_MONTHS, LOG_STORAGE_RATIO, MINUTE_TTL_S, PACING_BATCH_MAX, PACING_BUDGET_ITEMS,
    PACING_CAMPAIGNS_PER_BATCH_GET, PACING_DECISION_BYTES, PACING_DURATION_MS,
    PACING_LIFETIME_QUERY_UNITS, PACING_LIFETIME_SHARE, PACING_PULSE_ITEMS,
    PACING_RESPONSE_BASE_BYTES, PACING_SERVING_ITEMS, PULSE_MIN_ROWS_S, RESOLUTION_SECONDS,
    SC_READ_UNITS, SECONDS_PER_MONTH, SERVING_HORIZON_MONTHS, SPEND_FLINK_ROW_SHARE,
    SPEND_RESOLUTIONS,
)
from capacity.planner.api import requests_per_s
from capacity.planner.events import event_rates
from capacity.planner.helpers import ceil_div
from capacity.planner.model import Component
from capacity.planner.observability import xray_traces_s
from capacity.planner.popularity import distinct_ads, rollup_entities
from capacity.pricing import PriceBook
from common.schema import BY_NAME, default

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs

LANE_KEYS = ("budget_api", "budget_reads", "budget_ops")  # the lane's own components


# ================================================================================ spend rows
@dataclass(frozen=True)
class SpendLoad:
    campaigns_per_interval: float  # distinct campaigns with a valid click in one emit interval
    upserts_s: float  # spend updates/s, both resolutions (each 1 changelog row with the upsert changelog, 2 with retract)
    pulse_rows_s: float  # pulse rows/s (inserts: one row, one write each)


def valid_clicks_s(x: Inputs, rate: float) -> float:
    return rate * BUDGET_VALID_CLICK_SHARE


def pulse_rows_s(x: Inputs) -> float:
    """One pulse per emit interval, at least one a second (datagen's integer rows-per-second)."""
    return float(max(PULSE_MIN_ROWS_S, round(1000 / x.budget_emit_interval_ms)))


def spend_load(x: Inputs, rate: float) -> SpendLoad:
    """Per emit interval each campaign that had a valid click emits one update per spend
    resolution (1m, 1d): distinct campaigns among the interval's valid clicks (the planner's
    campaigns, Zipf like the ads; never more than the clicks)."""
    if not x.budget_lane:
        return SpendLoad(0.0, 0.0, 0.0)
    interval_s = x.budget_emit_interval_ms / 1000
    campaigns, _ = rollup_entities(x.active_ads)
    per_interval = distinct_ads(valid_clicks_s(x, rate) * interval_s, campaigns, x.ad_skew)
    return SpendLoad(per_interval, len(SPEND_RESOLUTIONS) * per_interval / interval_s,
                     pulse_rows_s(x))


def spend_flink_rows_s(x: Inputs, rate: float) -> float:
    """Row-equivalents of Flink CPU the spend aggregation adds (SPEND_FLINK_ROW_SHARE per valid
    click): no per-operator CPU model exists."""
    return valid_clicks_s(x, rate) * SPEND_FLINK_ROW_SHARE if x.budget_lane else 0.0


def spend_state_keys(x: Inputs, rate: float) -> float:
    """Spend aggregate keys alive in Flink: per resolution, live buckets x the campaigns a
    bucket's valid clicks touch (the same idle TTL as the other aggregates)."""
    if not x.budget_lane:
        return 0.0
    campaigns, _ = rollup_entities(x.active_ads)
    total = 0.0
    for res in SPEND_RESOLUTIONS:
        seconds = RESOLUTION_SECONDS[res]
        live = math.ceil((seconds + ALLOWED_LATENESS_S + AGG_STATE_MARGIN_S) / seconds)
        total += live * distinct_ads(valid_clicks_s(x, rate) * seconds, campaigns, x.ad_skew)
    return total


def spend_storage_items(x: Inputs) -> float:
    """Spend items in the serving table after SERVING_HORIZON_MONTHS: 1m items within
    minute_ttl_s, 1d items forever, and the pulse."""
    if not x.budget_lane:
        return 0.0
    campaigns, _ = rollup_entities(x.active_ads)
    per_minute = distinct_ads(valid_clicks_s(x, x.rate) * 60, campaigns, x.ad_skew)
    per_day = distinct_ads(valid_clicks_s(x, x.rate) * 86400, campaigns, x.ad_skew)
    return per_minute * MINUTE_TTL_S / 60 + per_day * SERVING_HORIZON_MONTHS * DAYS_PER_MONTH + 1


# ================================================================================ decisions
@dataclass(frozen=True)
class PacingDemand:
    ad_servers: float  # instances calling POST /v1/pacing
    served_per_ttl: float  # ads one instance serves per pacing_cache_ttl_ms
    campaigns_per_ttl: float  # campaigns one instance asks about per TTL
    requests_per_ttl: int  # POST /v1/pacing per instance per TTL (<= 100 campaigns each)
    campaigns_per_request: float
    requests_s: float
    lookups_s: float  # campaign decisions asked for per second
    containers: float  # budget Lambda containers = concurrency = requests/s x duration (>= 1)
    fleet_campaigns_per_ttl: float  # distinct campaigns the whole fleet asks about per TTL
    refreshes_s: float  # campaign figures read from DynamoDB per second (the cache's misses)
    batch_gets_s: float  # BatchGetItem calls per second

    @property
    def miss_share(self) -> float:
        return self.refreshes_s / self.lookups_s if self.lookups_s else 0.0

    @property
    def response_bytes(self) -> float:
        return PACING_RESPONSE_BASE_BYTES + self.campaigns_per_request * (PACING_DECISION_BYTES + 1)


def ad_servers(x: Inputs) -> int:
    """Average ad-server instances: the input, or one per AD_SERVER_CLICKS_S average clicks/s."""
    return x.ad_servers if x.ad_servers is not None else max(1, ceil_div(x.rate, AD_SERVER_CLICKS_S))


def batch_gets_per_request(campaigns: float) -> int:
    """BatchGetItem calls for the figures of `campaigns` campaigns (11 per call)."""
    return ceil_div(campaigns, PACING_CAMPAIGNS_PER_BATCH_GET) if campaigns > 0 else 0


def pacing_demand(x: Inputs, rate: float) -> PacingDemand:
    """POST /v1/pacing at `rate` clicks/s: the ad-server fleet follows the traffic (instances x
    rate / average rate), each instance asking once per TTL for the campaigns it serves in that
    time, in requests of up to 100; the budget Lambda's containers each cache a campaign's figures
    for the TTL, so the figures read per second are at most containers x the campaigns asked
    about per TTL / TTL."""
    ttl_s = x.pacing_cache_ttl_ms / 1000
    campaigns, _ = rollup_entities(x.active_ads)
    instances = ad_servers(x) * rate / x.rate
    impressions, _ = event_rates(x, rate)
    served_s = impressions if impressions > 0 else rate
    served_per_ttl = served_s / instances * ttl_s
    if x.pacing_campaigns is not None:
        asked = float(min(x.pacing_campaigns, campaigns))
        fleet = float(min(campaigns, instances * asked))
    else:
        asked = distinct_ads(served_per_ttl, campaigns, x.ad_skew)
        fleet = distinct_ads(served_s * ttl_s, campaigns, x.ad_skew)
    per_ttl = ceil_div(asked, PACING_BATCH_MAX)
    per_request = asked / per_ttl
    requests_s = instances * per_ttl / ttl_s
    lookups_s = instances * asked / ttl_s
    containers = max(1.0, requests_s * PACING_DURATION_MS / 1000)
    refreshes_s = min(lookups_s, containers * fleet / ttl_s)
    misses_per_request = per_request * refreshes_s / lookups_s
    batch_gets_s = requests_s * batch_gets_per_request(misses_per_request)
    return PacingDemand(instances, served_per_ttl, asked, per_ttl, per_request, requests_s,
                        lookups_s, containers, fleet, refreshes_s, batch_gets_s)


def read_units(d: PacingDemand) -> tuple[float, float]:
    """(budgets table RRU/s, serving table RCU/s) of the decision reads: per refreshed campaign
    its budget (ConsistentRead), its 7 spend items and a lifetime Query where one is set; per
    BatchGetItem the pulse."""
    budgets = d.refreshes_s * PACING_BUDGET_ITEMS * SC_READ_UNITS
    serving = (d.refreshes_s * (PACING_SERVING_ITEMS * EC_READ_UNITS
                                + PACING_LIFETIME_SHARE * PACING_LIFETIME_QUERY_UNITS)
               + d.batch_gets_s * PACING_PULSE_ITEMS * EC_READ_UNITS)
    return budgets, serving


def _line_quantity(c: Optional[Component], price_key: str) -> float:
    return sum(line.quantity for line in c.costs if line.price_key == price_key) if c else 0.0


def components(x: Inputs, pb: PriceBook, api: Component, ingest: Component, sink: Component,
               serving: Component) -> list[Component]:
    """The lane's own components (none without the lane): the decision API, its reads, and the
    budgets table with the lane's alarms, metrics and logs. Prices with monthly tiers are billed
    after the ingest's (and the sink's) use of them: tiers count per account."""
    if not x.budget_lane:
        return []
    avg, peak = pacing_demand(x, x.rate), pacing_demand(x, x.peak)
    ttl_s = x.pacing_cache_ttl_ms / 1000
    duration_s = PACING_DURATION_MS / 1000
    requests_month = avg.requests_s * SECONDS_PER_MONTH

    # --- the decision API: API Gateway (REST, IAM) + the budget Lambda
    a = Component("budget_api", "Budget decision API (API Gateway + budget Lambda, arm64)",
                  f"{BUDGET_MEMORY_MB} MB, {ttl_s:g} s cache")
    a.add("ad-server instances (average)", avg.ad_servers)
    a.add("ads served per instance per cache TTL", avg.served_per_ttl)
    a.add("campaigns asked per instance per cache TTL", avg.campaigns_per_ttl)
    a.add("POST /v1/pacing per instance per cache TTL", avg.requests_per_ttl)
    a.add("campaigns per request", avg.campaigns_per_request)
    a.add("requests/s average", avg.requests_s)
    a.add("requests/s peak", peak.requests_s)
    a.add("campaign decisions/s average", avg.lookups_s)
    a.add("answer bytes", avg.response_bytes, "B")
    a.add("budget Lambda concurrency average", avg.requests_s * duration_s)
    a.add("budget Lambda concurrency peak", peak.requests_s * duration_s)
    rest_after = _line_quantity(api, "apigw_rest_requests")
    a.cost(pb, "requests (REST, priced after the ingest's)", "apigw_rest_requests",
           requests_month, after=rest_after)
    a.cost(pb, "answers to the ad servers (internet)", "data_transfer_out_internet",
           requests_month * avg.response_bytes / GIB,
           after=_line_quantity(api, "data_transfer_out_internet"))
    a.cost(pb, "Lambda requests", "lambda_requests", requests_month)
    lambda_after = (_line_quantity(ingest, "lambda_arm_gb_s") + _line_quantity(sink, "lambda_arm_gb_s"))
    a.cost(pb, "Lambda compute", "lambda_arm_gb_s",
           avg.requests_s * duration_s * BUDGET_MEMORY_MB / 1024 * SECONDS_PER_MONTH, after=lambda_after)
    stage_limit = api.context.get("ingest_rate_limit", 0)
    if peak.requests_s > stage_limit:
        a.warnings.append(
            f"POST /v1/pacing peaks at {peak.requests_s:,.0f} req/s, over the stage's default "
            f"per-method throttle (ingest_rate_limit, {stage_limit:,} req/s, sized for ingest): "
            f"give the route its own method throttle or the ad servers are throttled (429).")
    _, ingest_peak = requests_per_s(x)
    quota_rps = pb.quota("apigw_account_rps")
    if ingest_peak + peak.requests_s > quota_rps:
        a.warnings.append(
            f"QUOTA: ingest ({ingest_peak:,.0f}) + pacing ({peak.requests_s:,.0f}) requests/s at "
            f"peak exceed the account-level API Gateway throttle of {quota_rps:,.0f} req/s: "
            f"request an increase.")
    a.notes.append(
        f"Ad servers call POST /v1/pacing once per pacing_cache_ttl_ms ({x.pacing_cache_ttl_ms:,} ms) "
        f"for the campaigns whose ads they serve in that time, up to {PACING_BATCH_MAX} per request; "
        f"{'the input --ad-servers' if x.ad_servers is not None else f'one instance per {AD_SERVER_CLICKS_S} clicks/s'}"
        f", the fleet following the traffic. Duration {PACING_DURATION_MS:g} ms per request at "
        f"{BUDGET_MEMORY_MB} MB is an assumption, not a measurement.")
    a.notes.append("Answers are billed as data transfer out to the internet, as the ingest's are; "
                   "ad servers in the same region behind a VPC endpoint would pay PrivateLink's "
                   "per-GB price instead.")

    # --- the decision reads
    budget_rru, serving_rcu = read_units(avg)
    budget_rru_peak, serving_rcu_peak = read_units(peak)
    mode = serving.context.get("serving_capacity_mode", "on_demand")
    r = Component("budget_reads", "Budget decision reads (BatchGetItem: budgets + serving tables)",
                  f"budgets on_demand, serving {mode}")
    r.add("campaign figures read/s average (cache misses)", avg.refreshes_s)
    r.add("share of decisions read from DynamoDB", avg.miss_share)
    r.add("campaigns the fleet asks about per cache TTL", avg.fleet_campaigns_per_ttl)
    r.add("budget Lambda containers (average)", avg.containers)
    r.add("BatchGetItems per request (no cache hit)", batch_gets_per_request(avg.campaigns_per_request))
    r.add("BatchGetItems/s average", avg.batch_gets_s)
    r.add("budgets table RRU/s average (ConsistentRead)", budget_rru)
    r.add("budgets table RRU/s peak", budget_rru_peak)
    r.add("serving table RCU/s average", serving_rcu)
    r.add("serving table RCU/s peak", serving_rcu_peak)
    r.add("pulse item reads/s peak", peak.batch_gets_s * PACING_PULSE_ITEMS)
    r.cost(pb, "budgets table reads (on-demand)", "ddb_on_demand_rru", budget_rru * SECONDS_PER_MONTH)
    if mode == "provisioned":
        r.cost(pb, "serving table reads (provisioned, autoscaled)", "ddb_provisioned_rcu_hour",
               serving_rcu / DDB_TARGET_UTILIZATION * HOURS_PER_MONTH)
        min_rcu = max(1, ceil_div(serving_rcu * DDB_TROUGH_RATIO / DDB_TARGET_UTILIZATION, 1))
        max_rcu = max(min_rcu, ceil_div(serving_rcu_peak / DDB_TARGET_UTILIZATION, 1))
        r.add("serving read autoscaling minimum needed", min_rcu, "RCU")
        r.add("serving read autoscaling maximum needed", max_rcu, "RCU")
        if max_rcu > default("serving_max_rcu"):
            r.warnings.append(
                f"the serving table's read autoscaling must span {min_rcu:,}..{max_rcu:,} RCU for "
                f"the pacing reads; the profiles do not set serving_min_rcu / serving_max_rcu "
                f"(defaults {default('serving_min_rcu'):,}..{default('serving_max_rcu'):,}; the "
                f"schema caps serving_min_rcu at {BY_NAME['serving_min_rcu'].le:,}).")
    else:
        r.cost(pb, "serving table reads (on-demand)", "ddb_on_demand_rru", serving_rcu * SECONDS_PER_MONTH)
    table_quota = pb.quota("ddb_table_max_rcu")
    for what, peak_units in (("the serving table", serving_rcu_peak), ("the budgets table", budget_rru_peak)):
        if peak_units > table_quota:
            r.warnings.append(f"QUOTA: {what} peaks at {peak_units:,.0f} read units/s for pacing, "
                              f"over the table-level default of {table_quota:,.0f}: raise 'Table-level "
                              f"read throughput limit' in Service Quotas.")
    pulse_limit = pb.quota("ddb_partition_max_rcu") / EC_READ_UNITS
    if peak.batch_gets_s * PACING_PULSE_ITEMS > pulse_limit:
        r.warnings.append(
            f"hot item: every BatchGetItem reads META#pulse, {peak.batch_gets_s:,.0f}/s at peak, "
            f"over the {pulse_limit:,.0f} eventually consistent reads/s one partition serves: read "
            f"the pulse once per container per emit interval instead.")
    r.notes.append(
        f"Per refreshed campaign: its budget ({PACING_BUDGET_ITEMS} item, ConsistentRead: "
        f"{SC_READ_UNITS:g} RRU) and {PACING_SERVING_ITEMS} spend items (today's 1d and six 1m, "
        f"{EC_READ_UNITS:g} RCU each); a lifetime budget ({PACING_LIFETIME_SHARE:.0%} of campaigns "
        f"assumed) adds a Query ({PACING_LIFETIME_QUERY_UNITS:g}); the pulse once per BatchGetItem "
        f"({PACING_CAMPAIGNS_PER_BATCH_GET} campaigns). A container reads a campaign at most once "
        f"per TTL, so reads/s <= containers x campaigns asked per TTL / TTL.")

    # --- the budgets table, alarms, metrics, logs
    campaigns, _ = rollup_entities(x.active_ads)
    o = Component("budget_ops", "Budgets table, alarms, metrics and logs (budget lane)",
                  "on-demand table")
    puts_month = campaigns * BUDGET_SETS_PER_CAMPAIGN_DAY * DAYS_PER_MONTH
    versions = campaigns * (1 + BUDGET_SETS_PER_CAMPAIGN_DAY * SERVING_HORIZON_MONTHS * DAYS_PER_MONTH)
    budgets_gb = versions * BUDGET_ITEM_BYTES / GIB
    log_gb = requests_month * (ACCESS_LOG_BYTES + LAMBDA_LOG_BYTES_PER_INVOCATION) / GIB
    ingest_req_s, _ = requests_per_s(x)
    traces = (xray_traces_s(ingest_req_s + avg.requests_s) - xray_traces_s(ingest_req_s)) * SECONDS_PER_MONTH
    o.add("campaigns (budgets)", campaigns)
    o.add("budget PUTs per month", puts_month)
    o.add("budgets table storage after horizon", budgets_gb, "GB")
    o.add("pacing request logs (access + Lambda incl. EMF)", log_gb, "GB/month")
    o.add("X-Ray traces of pacing requests", traces, "per month")
    o.cost(pb, "budget PUTs (TransactWriteItems)", "ddb_on_demand_wru", puts_month * BUDGET_PUT_WRU)
    o.cost(pb, "budgets table storage", "ddb_storage_gb_month", budgets_gb)
    o.cost(pb, "budgets table point-in-time recovery", "ddb_pitr_gb_month", budgets_gb)
    o.cost(pb, "alarms (BudgetLaneStale, the budget Lambda's errors and throttles)",
           "cw_alarm_month", BUDGET_ALARMS)
    o.cost(pb, "custom metrics (PulseAge, PacingDecisions x 3, PacingStale)",
           "cw_custom_metric_month", BUDGET_CUSTOM_METRICS)
    o.cost(pb, "log ingestion (access logs, Lambda logs with the EMF line)", "cw_logs_ingest_gb", log_gb)
    o.cost(pb, "log storage (1 month, compressed)", "cw_logs_storage_gb_month",
           log_gb * LOG_STORAGE_RATIO * LOG_RETENTION_MONTHS)
    o.cost(pb, "X-Ray traces recorded (5 % of the stage's requests)", "xray_traces_recorded", traces)
    o.notes.append(f"Budgets set {BUDGET_SETS_PER_CAMPAIGN_DAY:g} time(s) per campaign and day "
                   f"(assumed): each PUT is one transaction of two items (current + history). "
                   f"Storage holds every version for {SERVING_HORIZON_MONTHS} months.")
    return [a, r, o]
