"""Deployment profiles: a click rate each, and the CDK context values the planner derives for it.

    profile_context("large") -> {"kinesis_mode": "provisioned", "kinesis_shards": ..., ...}

The values are the planner's (`plan(...).context`), never typed here, so a CDK test can assert
that a profile's numbers equal the planner's. Keys that infra/settings.py does not know yet are
listed in NEW_CONTEXT_KEYS (StackSettings.from_context ignores unknown keys until they are wired).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capacity.planner import Plan, plan

RATE_10B_PER_DAY = 115_740  # seed: 10B clicks/day / 86,400 s
PEAK_TO_AVERAGE = 2.0  # diurnal peak over the daily average where no event peak is given


@dataclass(frozen=True)
class Profile:
    name: str
    rate: float  # average clicks/s: drives cost
    peak: float  # clicks/s to absorb: drives sizing
    summary: str
    options: tuple[tuple[str, Any], ...] = ()  # further plan() arguments, if a profile needs any

    def plan(self, region: str = "us-east-1") -> Plan:
        return plan(self.rate, self.peak, region=region, **dict(self.options))

    def context(self, region: str = "us-east-1") -> dict[str, Any]:
        return self.plan(region).context


PROFILES: dict[str, Profile] = {
    "small": Profile("small", 10_000, 10_000 * PEAK_TO_AVERAGE,
                     "10k clicks/s average (seed: 'handle ~10,000 clicks per second'), 2x diurnal peak"),
    "medium": Profile("medium", RATE_10B_PER_DAY, RATE_10B_PER_DAY * PEAK_TO_AVERAGE,
                      "10B clicks/day = 115,740 clicks/s average, 2x diurnal peak"),
    "large": Profile("large", RATE_10B_PER_DAY, 500_000,
                     "10B clicks/day average with 500k clicks/s event peaks (seed: Super Bowl)"),
}

# Context keys of infra/settings.py (StackSettings fields) that the profiles set.
EXISTING_CONTEXT_KEYS = frozenset({
    "ingest_rate_limit", "ingest_burst_limit", "ingest_memory_mb", "ingest_reserved_concurrency",
    "kinesis_mode", "kinesis_shards", "kinesis_retention_hours", "dedup_ttl_s", "serving_store",
    "aggregates_kinesis_mode", "aggregates_kinesis_shards", "minibatch_latency_ms",
    "flink_parallelism", "flink_parallelism_per_kpu", "sink_batch_size",
    "sink_parallelization_factor", "sink_memory_mb", "firehose_buffer_mb",
    "firehose_buffer_interval_s", "freshness_slots",
})

# Keys infra must add (name -> meaning) before the profiles fully apply.
NEW_CONTEXT_KEYS: dict[str, str] = {
    "ingest_dedup_mode": "per_click (today's claim/confirm) | per_request (Powertools Idempotency "
                         "on a request id; not implemented yet)",
    "dedup_capacity_mode": "dedup table billing: on_demand | provisioned (autoscaled)",
    "dedup_min_wcu": "dedup table: provisioned autoscaling minimum WCU",
    "dedup_max_wcu": "dedup table: provisioned autoscaling maximum WCU; on-demand: "
                     "MaxWriteRequestUnits cap and warm throughput",
    "serving_capacity_mode": "DynamoDB serving table billing: on_demand | provisioned (autoscaled)",
    "serving_min_wcu": "serving table: provisioned autoscaling minimum WCU",
    "serving_max_wcu": "serving table: provisioned autoscaling maximum WCU; on-demand: "
                       "MaxWriteRequestUnits cap and warm throughput",
    "dynamodb_target_utilization_pct": "target utilisation of both tables' write autoscaling",
    "billing_glue_worker_type": "nightly billing Glue job worker type",
    "billing_glue_workers": "nightly billing Glue job number of workers",
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}: one of {', '.join(PROFILES)}") from None


def profile_context(name: str, region: str = "us-east-1") -> dict[str, Any]:
    """The CDK context values of profile `name` (what `cdk synth -c key=value ...` would pass)."""
    return get_profile(name).context(region)


def all_contexts(region: str = "us-east-1") -> dict[str, dict[str, Any]]:
    return {name: p.context(region) for name, p in PROFILES.items()}


def cdk_args(name: str, region: str = "us-east-1") -> list[str]:
    """`-c key=value` arguments for `cdk synth/deploy` (keys infra does not know are skipped)."""
    out = []
    for key, value in profile_context(name, region).items():
        if key in EXISTING_CONTEXT_KEYS:
            out += ["-c", f"{key}={'null' if value is None else value}"]
    return out
