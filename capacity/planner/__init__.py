"""Capacity plan and monthly cost of the clickagg pipeline for a click rate (pure: no AWS calls).

    plan(rate=115_740, peak=500_000) -> Plan

`rate` is the average clicks/s (it drives cost: everything billed per use), `peak` the clicks/s
the deployment must absorb (it drives sizing: shards, limits, KPUs, capacity maxima). Every
number the plan uses that is not an input or a price is a named constant in the ASSUMPTIONS block
of `assumptions.py`, with the reason for its value; constants that are deployed settings are the
one schema's defaults (common.schema); prices and quotas come from capacity/prices/<region>.json.
`Plan.context` holds the CDK context values the plan implies (capacity.profiles publishes them).

One module per component, each building its `Component` from the `Inputs`:
    api             API Gateway (ingest endpoint)      ingest     ingest Lambda
    dedup           ingest dedup table                 dynamodb   DynamoDB capacity modes (shared)
    kinesis         stream shards/costs, clicks stream flink      Managed Flink
    events          impression/conversion rates, events stream
    serving         aggregates stream, sink, store     archive    Firehose + S3, clicks and events
    glue            nightly billing job                observability  logs, X-Ray, account quotas
    budget          the budget lane (docs/budget.md): spend rows and pulse (counted in flink and
                    serving), the decision API, its reads, the budgets table, alarms, metrics
and planning.plan() puts them together; levers.compare_levers() varies one input at a time;
implemented.NOT_IMPLEMENTED lists the lever settings the code does not implement (modelled only).
"""
from __future__ import annotations

from capacity.planner.assumptions import *  # noqa: F401,F403  (constants: docs, CLI, tests)
from capacity.planner.api import RequestKind, request_kinds, requests_per_s, response_bytes  # noqa: F401
from capacity.planner.dedup import dedup_wcu_per_click  # noqa: F401
from capacity.planner.dynamodb import Capacity, ddb_capacity  # noqa: F401
from capacity.planner.events import (  # noqa: F401
    counted_rows_s, event_rates, events_record_bytes, events_stream_load,
)
from capacity.planner.flink import agg_state_keys, dedup_state_keys  # noqa: F401
from capacity.planner.helpers import ceil_div, round_up_2sig  # noqa: F401
from capacity.planner.ingest import ingest_duration_ms  # noqa: F401
from capacity.planner.inputs import Inputs  # noqa: F401
from capacity.planner.kinesis import (  # noqa: F401
    ShardNeed, StreamCost, StreamLoad, clicks_stream_load, kpl_record_bytes, shards_needed,
)
from capacity.planner.implemented import (  # noqa: F401
    NOT_IMPLEMENTED, NOT_IMPLEMENTED_PARAMS, is_implemented, not_implemented,
)
from capacity.planner.levers import DEDUP_LAYERS, LEVERS, LeverResult, compare_levers  # noqa: F401
from capacity.planner.model import Component, CostLine, Metric, Plan  # noqa: F401
from capacity.planner.observability import xray_traces_s  # noqa: F401
from capacity.planner.planning import plan  # noqa: F401
from capacity.planner.popularity import (  # noqa: F401
    distinct_ads, level_keys, rollup_entities, top_ad_share,
)
from capacity.planner.serving import (  # noqa: F401
    ServingLoad, serving_load, serving_storage_items, timestream_lines,
)
from capacity.planner.archive import deliveries, firehose_buffering  # noqa: F401
from capacity.planner.budget import (  # noqa: F401
    LANE_KEYS, PacingDemand, SpendLoad, ad_servers, batch_gets_per_request, pacing_demand,
    read_units, spend_load,
)
from capacity.planner.planning import lane_costs  # noqa: F401
