"""Deployment profiles: a click rate each, and the CDK context values the planner derives for it.

    profile_context("large") -> {"kinesis_mode": "provisioned", "kinesis_shards": ..., ...}

A profile selects only what the code implements (capacity.planner.implemented: a modelled,
not implemented lever is refused). The values are the planner's (`plan(...).context`), never typed here, so a CDK test can assert
that a profile's numbers equal the planner's. Every profile includes issue 19's events at the
planner's default multiples (50 impressions, 0.02 conversions per click): the stage throttle
(shared by POST /v1/clicks and POST /v1/events), events_kinesis_shards, Flink and the serving
path are sized for clicks and events together. The keys infra knows are the schema's context
settings (common/schema.py); a key infra does not know yet would be listed in NEW_CONTEXT_KEYS
(`cdk_args` passes only known keys).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.schema import SETTINGS

from capacity.planner import Plan, not_implemented, plan

RATE_10B_PER_DAY = 115_740  # seed: 10B clicks/day / 86,400 s
PEAK_TO_AVERAGE = 2.0  # diurnal peak over the daily average where no event peak is given


@dataclass(frozen=True)
class Profile:
    name: str
    rate: float  # average clicks/s: drives cost
    peak: float  # clicks/s to absorb: drives sizing
    summary: str
    options: tuple[tuple[str, Any], ...] = ()  # further plan() arguments, if a profile needs any

    def __post_init__(self) -> None:
        self._refuse(dict(self.options))

    def plan(self, region: str = "us-east-1") -> Plan:
        p = plan(self.rate, self.peak, region=region, **dict(self.options))
        self._refuse(p.inputs)  # plan()'s defaults too
        return p

    def _refuse(self, inputs: dict[str, Any]) -> None:
        """Issue 22: a lever the code does not implement is not in a profile (the lever table
        prices it, labelled "modelled, not implemented")."""
        unimplemented = not_implemented(inputs)
        if unimplemented:
            raise ValueError(f"profile {self.name!r} selects what the code does not implement: "
                             + "; ".join(unimplemented))

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

# Context keys infra knows: every context setting of the schema (StackSettings has one field each).
EXISTING_CONTEXT_KEYS = frozenset(s.name for s in SETTINGS if s.context)

# Keys a profile sets that infra does not know yet (name -> meaning), for the docs; none today
# (a test fails when a profile sets a key that is in neither).
NEW_CONTEXT_KEYS: dict[str, str] = {}


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
