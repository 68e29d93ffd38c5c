"""One definition of resource names and tunables, read by the Lambdas, the local stack and infra/.

Lambdas read their settings from environment variables (names below); infra/ sets those same
variables from CDK context, and the local stack sets them from the same defaults.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class ResourceNames:
    """Physical names of the pipeline's resources, derived from one prefix."""

    prefix: str = "clickagg"

    @property
    def dedup_table(self) -> str:
        return f"{self.prefix}-click-dedup"

    @property
    def clicks_stream(self) -> str:
        return f"{self.prefix}-clicks"

    @property
    def aggregates_stream(self) -> str:
        return f"{self.prefix}-aggregates"

    @property
    def serving_table(self) -> str:
        return f"{self.prefix}-serving"

    @property
    def archive_bucket(self) -> str:
        return f"{self.prefix}-archive"

    @property
    def billing_workflow(self) -> str:
        return f"{self.prefix}-billing"

    @property
    def metrics_namespace(self) -> str:
        return "ClickAgg"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def _parse_salts(raw: str) -> dict[str, int]:
    """'ad-1:8,ad-7:4' -> {'ad-1': 8, 'ad-7': 4}: hot ads spread over that many partition keys."""
    salts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        ad_id, _, n = part.rpartition(":")
        if not ad_id or not n.isdigit() or int(n) < 1:
            raise ValueError(f"bad HOT_AD_SALTS entry {part!r}: expected ad_id:N with N >= 1")
        salts[ad_id] = int(n)
    return salts


@dataclass(frozen=True)
class IngestSettings:
    """Tunables of the ingest path. Defaults are the documented defaults (README, cdk.json)."""

    dedup_table: str = ResourceNames().dedup_table
    clicks_stream: str = ResourceNames().clicks_stream
    max_batch: int = 500  # clicks per request
    max_body_bytes: int = 1_048_576  # bigger bodies get 413
    max_future_skew_s: int = 300  # event time at most 5 min ahead of ingest time
    max_age_s: int = 7 * 24 * 3600  # event time at most 7 days old
    dedup_ttl_s: int = 24 * 3600  # how long a click_id is remembered
    claim_lease_s: int = 120  # a pending claim older than this may be taken over (> Lambda timeout)
    dedup_concurrency: int = 32  # parallel DynamoDB writes per request
    kinesis_max_attempts: int = 4  # PutRecords attempts for records that keep failing
    kinesis_backoff_base_ms: int = 50  # exponential backoff base between attempts
    hot_ad_salts: dict[str, int] = field(default_factory=dict)

    ENV = {
        "dedup_table": "DEDUP_TABLE",
        "clicks_stream": "CLICKS_STREAM",
        "max_batch": "MAX_BATCH",
        "max_body_bytes": "MAX_BODY_BYTES",
        "max_future_skew_s": "MAX_FUTURE_SKEW_S",
        "max_age_s": "MAX_AGE_S",
        "dedup_ttl_s": "DEDUP_TTL_S",
        "claim_lease_s": "CLAIM_LEASE_S",
        "dedup_concurrency": "DEDUP_CONCURRENCY",
        "kinesis_max_attempts": "KINESIS_MAX_ATTEMPTS",
        "kinesis_backoff_base_ms": "KINESIS_BACKOFF_BASE_MS",
        "hot_ad_salts": "HOT_AD_SALTS",
    }

    @classmethod
    def from_env(cls) -> "IngestSettings":
        values: dict = {}
        for f in fields(cls):
            env_name = cls.ENV[f.name]
            raw = os.environ.get(env_name)
            if raw in (None, ""):
                continue
            values[f.name] = _parse_salts(raw) if f.name == "hot_ad_salts" else (
                raw if f.type == "str" else int(raw)
            )
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that makes from_env() return these settings (used by infra and local)."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "hot_ad_salts":
                value = ",".join(f"{k}:{v}" for k, v in value.items())
            env[self.ENV[f.name]] = str(value)
        return env


@dataclass(frozen=True)
class AggregationSettings:
    """What the query side must know about how the stream aggregated (same values as the
    Flink job's runtime properties; infra sets both from one CDK context)."""

    allowed_lateness_s: int = 900  # a bucket is final once watermark >= bucket end + this
    leaderboard_size: int = 1000  # M: entries kept per 1m and 1h leaderboard bucket
    repeat_window_s: int = 10  # repeat-click rule bucket length

    @classmethod
    def from_env(cls) -> "AggregationSettings":
        return cls(
            allowed_lateness_s=_env_int("ALLOWED_LATENESS_S", cls.allowed_lateness_s),
            leaderboard_size=_env_int("LEADERBOARD_SIZE", cls.leaderboard_size),
            repeat_window_s=_env_int("REPEAT_WINDOW_S", cls.repeat_window_s),
        )

    def to_env(self) -> dict[str, str]:
        return {"ALLOWED_LATENESS_S": str(self.allowed_lateness_s),
                "LEADERBOARD_SIZE": str(self.leaderboard_size),
                "REPEAT_WINDOW_S": str(self.repeat_window_s)}
