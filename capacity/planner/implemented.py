"""Which planner inputs the code implements (issue 22: "the planner models only what the code does:
a lever that is not implemented is not in its profiles").

plan() still prices every setting below (the lever table shows what it would save); a profile
may not select one (capacity.profiles.Profile), compare_levers() labels it "modelled, not
implemented" and a plan that uses one says so (Plan.not_implemented). Checked against the code
(functions/, infra/, sdk/) for issue 22; when a lever is implemented, delete its entry here.

Implemented, so absent below: batch_size (the API takes 1..500 clicks per request, the SDKs
batch up to 500), dedup mark and per_click (setting ingest_dedup_mode), minibatch_ms (setting minibatch_latency_ms), changelog_update_before (setting
flink_changelog_mode: retract = True, upsert = False, the default), budget_emit_interval_ms,
pacing_cache_ttl_ms, the capacity and Kinesis modes, retention and dedup TTLs (settings of the
same names). Workload inputs (rate, peak, click_bytes, active_ads, ad_skew,
impressions_per_click, conversions_per_click, ad_servers, pacing_campaigns) and archive_months
(a storage horizon) are not levers.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from capacity.planner.assumptions import SERVING_RESOLUTIONS

# (plan() parameter, True for a value the code does not implement, why not)
NOT_IMPLEMENTED: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("api", lambda v: v == "http",
     "infra deploys an API Gateway REST API only (no apigatewayv2 HTTP API)"),
    ("dedup", lambda v: v == "per_request",
     "ingest dedups per click only (mark or per_click): the setting ingest_dedup_mode "
     "refuses per_request"),
    ("clicks_per_record", lambda v: v != 1,
     "ingest publishes one click per Kinesis record (ingest/publisher.py): no KPL aggregation, "
     "and no test that the Flink source and Firehose de-aggregate"),
    ("changelog_rows_per_record", lambda v: v != 1,
     "the job's Kinesis sink writes one debezium-json row per record and the sink Lambda reads "
     "one row per record"),
    ("serving_resolutions", lambda v: tuple(v) != SERVING_RESOLUTIONS,
     "the job emits every resolution (common.times.RESOLUTIONS) and the query API reads each "
     "resolution's own buckets: nothing sums 1m or 1h buckets at query time"),
    ("efo", lambda v: bool(v),
     "the Flink source polls (no enhanced fan-out setting)"),
    ("serving_store", lambda v: v == "timestream",
     "cdk synth refuses serving_store=timestream (the reconciliation reads DynamoDB only)"),
    ("budget_lane", lambda v: not v,
     "no setting turns the budget lane off: the job always runs the spend lane, the stack "
     "always deploys the budget API (off prices the lane: Plan.lane)"),
)
NOT_IMPLEMENTED_PARAMS = frozenset(name for name, _, _ in NOT_IMPLEMENTED)


def not_implemented(inputs: Mapping[str, Any]) -> list[str]:
    """'param=value: why' for each of `inputs` set to a value the code does not implement."""
    return [f"{name}={inputs[name]!r}: {why}" for name, unimplemented, why in NOT_IMPLEMENTED
            if name in inputs and unimplemented(inputs[name])]


def is_implemented(param: str, value: Any) -> bool:
    return not not_implemented({param: value})
