"""CloudWatch Logs and X-Ray; the account-wide quota checks over the whole plan."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from capacity.planner.api import requests_per_s
from capacity.planner.assumptions import (
    ACCESS_LOG_BYTES, GIB, LAMBDA_LOG_BYTES_PER_INVOCATION, LOG_RETENTION_MONTHS,
    LOG_STORAGE_RATIO, SECONDS_PER_MONTH, SINK_CONCURRENCY_HEADROOM, XRAY_FIXED_RATE,
    XRAY_RESERVOIR_PER_S,
)
from capacity.planner.model import Component, Plan
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


def xray_traces_s(requests_s: float) -> float:
    sampled_beyond_reservoir = XRAY_FIXED_RATE * max(0.0, requests_s - XRAY_RESERVOIR_PER_S)
    return min(requests_s, XRAY_RESERVOIR_PER_S) + sampled_beyond_reservoir


def component(x: Inputs, pb: PriceBook, ingest: Component, sink: Component) -> Component:
    c = Component("observability", "CloudWatch Logs + X-Ray", "1-month logs, default sampling")
    req_s, _ = requests_per_s(x)
    sink_inv_s = sink.metric("invocations/s average")
    access_gb = req_s * ACCESS_LOG_BYTES * SECONDS_PER_MONTH / GIB
    lambda_gb = (req_s + sink_inv_s) * LAMBDA_LOG_BYTES_PER_INVOCATION * SECONDS_PER_MONTH / GIB
    traces = (xray_traces_s(req_s) + xray_traces_s(sink_inv_s)) * SECONDS_PER_MONTH
    c.add("ingest requests/s average (clicks and events)", req_s)
    c.add("API access logs", access_gb, "GB/month")
    c.add("Lambda logs", lambda_gb, "GB/month")
    c.add("X-Ray traces", traces, "per month")
    c.cost(pb, "log ingestion", "cw_logs_ingest_gb", access_gb + lambda_gb)
    c.cost(pb, "log storage (1 month, compressed)", "cw_logs_storage_gb_month",
           (access_gb + lambda_gb) * LOG_STORAGE_RATIO * LOG_RETENTION_MONTHS)
    c.cost(pb, "X-Ray traces recorded", "xray_traces_recorded", traces)
    c.notes.append("Custom metrics, alarms, dashboards and KMS requests (data keys are cached) "
                   "are a few hundred dollars at most and not counted (the budget lane's alarms, "
                   "metrics and pacing-request logs are in its own component).")
    return c


# --- account-wide quota checks -----------------------------------------------------------------------
def account_checks(x: Inputs, pb: PriceBook, p: Plan) -> list[str]:
    out = []
    lambda_need = p.component("ingest_lambda").metric("reserved concurrency") + math.ceil(
        p.component("sink_lambda").metric("concurrency needed at peak") * SINK_CONCURRENCY_HEADROOM)
    budget = next((c.metric("budget Lambda concurrency peak") for c in p.components
                   if c.key == "budget_api"), 0.0)
    lambda_need += math.ceil(budget)
    usable = pb.quota("lambda_concurrency") - pb.quota("lambda_unreserved_min")
    load = p.component("rebuild").context.get("rebuild_load_concurrency", 0)  # while one loads
    if lambda_need > usable:
        during = f" ({lambda_need + load:,} while a rebuild loads)" if load else ""
        out.append(f"QUOTA: ingest reserved + sink + budget peak concurrency = {lambda_need:,}"
                   f"{during} > {usable:,.0f} usable of the default "
                   f"{pb.quota('lambda_concurrency'):,.0f} concurrent executions: raise "
                   f"'Concurrent executions'.")
    elif lambda_need + load > usable:
        out.append(f"QUOTA: while a rebuild loads, its {load:,} load Lambdas + the stream's "
                   f"{lambda_need:,} = {lambda_need + load:,} > {usable:,.0f} usable concurrent "
                   f"executions: raise 'Concurrent executions' or lower "
                   f"rebuild_load_concurrency (a slower load).")
    shards = sum(p.component(k).metric("provisioned shards")
                 for k in ("clicks_stream", "events_stream", "aggregates_stream")
                 if p.component(k).mode == "provisioned")
    if shards > pb.quota("kds_shards_per_account"):
        out.append(f"QUOTA: {shards:,} provisioned shards > the account's "
                   f"{pb.quota('kds_shards_per_account'):,.0f}: raise 'Shards per Region'.")
    wcu = sum(p.component(k).context[f"{k}_max_wcu"] for k in ("dedup", "serving")
              if p.component(k).context.get(f"{k}_capacity_mode") == "provisioned"
              and not (k == "serving" and x.serving_store != "dynamodb"))
    if wcu > pb.quota("ddb_account_max_wcu"):
        out.append(f"QUOTA: provisioned tables may scale to {wcu:,} WCU > the account-level "
                   f"{pb.quota('ddb_account_max_wcu'):,.0f}: raise 'Account-level write "
                   f"throughput limit (provisioned mode)'.")
    reads = next((c for c in p.components if c.key == "budget_reads"), None)  # the budget lane
    rcu = next((m.value for m in (reads.metrics if reads else ())
                if m.name == "serving read autoscaling maximum needed"), 0)
    if rcu > pb.quota("ddb_account_max_rcu"):
        out.append(f"QUOTA: the serving table's pacing reads may scale to {rcu:,} RCU > the "
                   f"account-level {pb.quota('ddb_account_max_rcu'):,.0f}: raise 'Account-level "
                   f"read throughput limit (provisioned mode)'.")
    return out
