"""Stack settings read from CDK context (`cdk.json` or `cdk synth -c key=value`).

Every key is the field name below; a missing key (or JSON null) takes the documented default.
Values from `-c` arrive as strings and are converted to the field's type here, so a typo fails
the synth instead of deploying a surprising stack.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Optional

from constructs import Node

# infra/__init__.py has put functions/ on sys.path, so this is the Lambdas' own module.
from common.config import AggregationSettings, IngestSettings, ResourceNames, _parse_salts

KINESIS_MODES = ("on_demand", "provisioned")
SERVING_STORES = ("timestream", "dynamodb")
ARCHIVE_COLD_CLASSES = ("glacier_ir", "glacier")
_OPTIONAL = {"ingest_reserved_concurrency", "alarm_email"}
_STRINGS = {"prefix", "kinesis_mode", "hot_ad_salts", "alarm_email", "serving_store",
            "aggregates_kinesis_mode", "flink_deps_jar", "archive_cold_storage_class"}
_BOOLS = {"flink_autoscaling"}
_AGG = AggregationSettings()


@dataclass(frozen=True)
class StackSettings:
    """Tunables of the deployed pipeline; defaults match cdk.json and common.config."""

    prefix: str = "clickagg"  # physical names: common.config.ResourceNames(prefix)
    ingest_rate_limit: int = 10_000  # steady requests/s (stage and usage plan throttle)
    ingest_burst_limit: int = 5_000  # burst bucket of the same throttles
    kinesis_mode: str = "on_demand"  # "on_demand" | "provisioned"
    kinesis_shards: int = 4  # only used when kinesis_mode == "provisioned"
    kinesis_retention_hours: int = 168  # 7 days, so a Flink restart can replay
    dedup_ttl_s: int = 24 * 3600  # how long a click_id is remembered (table TTL)
    hot_ad_salts: str = ""  # "ad-1:8,ad-7:4": hot ads spread over N partition keys
    ingest_memory_mb: int = 1024
    ingest_reserved_concurrency: Optional[int] = None  # None = unreserved account pool
    # Public Powertools layer AWSLambdaPowertoolsPythonV3-python312-arm64:<version>.
    # Check the Powertools docs for the version that ships requirements/lambda.txt's release.
    powertools_layer_version: int = 38
    alarm_email: Optional[str] = None  # optional email subscription of the alarm topic

    # --- stream aggregation (Flink -> aggregates stream -> sink Lambda -> serving store) ---
    # "timestream" (design default) | "dynamodb". Timestream for LiveAnalytics is closed to new
    # AWS customers since 2025-06-20: accounts without access deploy with -c serving_store=dynamodb.
    serving_store: str = "timestream"
    aggregates_kinesis_mode: str = "on_demand"  # "on_demand" | "provisioned"
    aggregates_kinesis_shards: int = 2  # only used when aggregates_kinesis_mode == "provisioned"
    aggregates_retention_hours: int = 24  # sink is idempotent; a day covers any outage we page on
    # Shared with the query API (common.config.AggregationSettings); the Flink job reads them too.
    allowed_lateness_s: int = _AGG.allowed_lateness_s  # bucket final at watermark >= end + this
    leaderboard_size: int = _AGG.leaderboard_size  # M: entries kept per leaderboard bucket
    repeat_window_s: int = _AGG.repeat_window_s  # repeat-click rule bucket length
    # Job-only semantics (functions/aggregate/job/settings.py JobSettings, same defaults).
    watermark_delay_s: int = 5  # bounded out-of-orderness of event time before the watermark
    flink_dedup_ttl_s: int = 1800  # job's click_id memory: >= 60 + lateness + watermark delay
    minibatch_latency_ms: int = 2000  # Flink SQL mini-batch latency (table.exec.mini-batch)
    flink_parallelism: int = 2  # initial (and minimum, with autoscaling) job parallelism
    flink_parallelism_per_kpu: int = 1  # parallel tasks per KPU (1 vCPU, 4 GB)
    flink_autoscaling: bool = True  # Managed Flink scales parallelism on CPU
    flink_checkpoint_interval_ms: int = 60_000
    flink_min_pause_between_checkpoints_ms: int = 5_000
    # The connector uber-jar `mvn -f functions/aggregate/pom.xml package` builds (repo-relative);
    # staged into the application zip as lib/clickagg-flink-deps.jar.
    flink_deps_jar: str = "functions/aggregate/target/clickagg-flink-deps.jar"
    sink_batch_size: int = 500  # records per sink invocation (per shard)
    sink_max_batching_window_s: int = 1  # wait up to this long to fill a batch
    sink_parallelization_factor: int = 2  # concurrent batches per shard (1..10)
    sink_retry_attempts: int = 10  # then the failed records' metadata goes to the DLQ
    sink_memory_mb: int = 512
    query_memory_mb: int = 512
    minute_ttl_s: int = 8 * 86400  # DynamoDB: 1m rows and late counters expire after this
    timestream_memory_retention_hours: int = 48  # > 1 day + lateness: 1d buckets upsert in memory
    timestream_magnetic_retention_days: int = 365
    iterator_age_alarm_ms: int = 60_000  # alarm when a stream consumer falls this far behind

    # --- raw archive (Firehose -> S3 Parquet -> Glue table -> Athena) ---
    archive_ia_after_days: int = 30  # -> STANDARD_IA (S3 minimum: 30)
    archive_cold_after_days: int = 90  # -> cold class below (>= IA + 30, S3's rule)
    archive_cold_storage_class: str = "glacier_ir"  # "glacier_ir" (Athena reads it) | "glacier"
    firehose_buffer_mb: int = 128  # 64..128: Parquet conversion needs >= 64 MB buffers
    firehose_buffer_interval_s: int = 300  # 60..900
    athena_bytes_scanned_cutoff: int = 10 * 1024**3  # per-query scan limit (min 10 MB)
    athena_results_retention_days: int = 30  # query results expire after this

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", self.prefix):
            raise ValueError(f"prefix {self.prefix!r}: lowercase letters, digits, '-', max 31")
        if self.kinesis_mode not in KINESIS_MODES:
            raise ValueError(f"kinesis_mode {self.kinesis_mode!r}: expected one of {KINESIS_MODES}")
        if not 24 <= self.kinesis_retention_hours <= 8760:
            raise ValueError("kinesis_retention_hours must be within 24..8760")
        if not 128 <= self.ingest_memory_mb <= 10_240:
            raise ValueError("ingest_memory_mb must be within 128..10240")
        for name in ("ingest_rate_limit", "ingest_burst_limit", "kinesis_shards", "dedup_ttl_s",
                     "powertools_layer_version"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.ingest_reserved_concurrency is not None and self.ingest_reserved_concurrency < 1:
            raise ValueError("ingest_reserved_concurrency must be >= 1 (or null)")
        _parse_salts(self.hot_ad_salts)  # the Lambda's own parser: reject what it would reject
        self._check_aggregation()
        self._check_archive()

    def _check_aggregation(self) -> None:
        if self.serving_store not in SERVING_STORES:
            raise ValueError(f"serving_store {self.serving_store!r}: "
                             f"expected one of {SERVING_STORES}")
        if self.aggregates_kinesis_mode not in KINESIS_MODES:
            raise ValueError(f"aggregates_kinesis_mode {self.aggregates_kinesis_mode!r}: "
                             f"expected one of {KINESIS_MODES}")
        if not 24 <= self.aggregates_retention_hours <= 8760:
            raise ValueError("aggregates_retention_hours must be within 24..8760")
        for name in ("aggregates_kinesis_shards", "allowed_lateness_s", "leaderboard_size",
                     "repeat_window_s", "minibatch_latency_ms", "flink_parallelism",
                     "flink_parallelism_per_kpu", "sink_batch_size", "minute_ttl_s",
                     "iterator_age_alarm_ms"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("watermark_delay_s", "flink_min_pause_between_checkpoints_ms",
                     "sink_max_batching_window_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if 60 % self.repeat_window_s:  # the job's rule: repeat buckets tile the minute
            raise ValueError("repeat_window_s must divide 60")
        horizon = 60 + self.allowed_lateness_s + self.watermark_delay_s
        if self.flink_dedup_ttl_s < horizon:  # the job's rule, checked before a deploy
            raise ValueError(f"flink_dedup_ttl_s must be >= 60 + allowed_lateness_s + "
                             f"watermark_delay_s = {horizon}")
        _within(self, "flink_checkpoint_interval_ms", 1_000, 24 * 3_600_000)
        _within(self, "sink_batch_size", 1, 10_000)  # Kinesis event source limit
        _within(self, "sink_max_batching_window_s", 0, 300)
        _within(self, "sink_parallelization_factor", 1, 10)
        _within(self, "sink_retry_attempts", 0, 10_000)
        _within(self, "sink_memory_mb", 128, 10_240)
        _within(self, "query_memory_mb", 128, 10_240)
        _within(self, "timestream_memory_retention_hours", 1, 8766)
        _within(self, "timestream_magnetic_retention_days", 1, 73_000)
        if not self.flink_deps_jar.endswith(".jar"):
            raise ValueError(f"flink_deps_jar {self.flink_deps_jar!r}: expected a .jar path")

    def _check_archive(self) -> None:
        if self.archive_cold_storage_class not in ARCHIVE_COLD_CLASSES:
            raise ValueError(f"archive_cold_storage_class {self.archive_cold_storage_class!r}: "
                             f"expected one of {ARCHIVE_COLD_CLASSES}")
        _within(self, "archive_ia_after_days", 30, 36_500)  # S3: STANDARD_IA after >= 30 days
        if self.archive_cold_after_days < self.archive_ia_after_days + 30:  # S3: 30 days in IA
            raise ValueError("archive_cold_after_days must be >= archive_ia_after_days + 30")
        _within(self, "firehose_buffer_mb", 64, 128)
        _within(self, "firehose_buffer_interval_s", 60, 900)
        if self.athena_bytes_scanned_cutoff < 10 * 1024**2:
            raise ValueError("athena_bytes_scanned_cutoff must be >= 10485760 (10 MB)")
        _within(self, "athena_results_retention_days", 1, 36_500)

    @classmethod
    def from_context(cls, node: Node) -> "StackSettings":
        values = {}
        for f in fields(cls):
            raw = node.try_get_context(f.name)
            if raw is not None:
                values[f.name] = _convert(f.name, raw)
        return cls(**values)

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.prefix)

    def ingest_settings(self) -> IngestSettings:
        """What the ingest Lambda reads from its environment (IngestSettings.from_env)."""
        return IngestSettings(
            dedup_table=self.names.dedup_table,
            clicks_stream=self.names.clicks_stream,
            dedup_ttl_s=self.dedup_ttl_s,
            hot_ad_salts=_parse_salts(self.hot_ad_salts),
        )

    def aggregation_settings(self) -> AggregationSettings:
        """What the query Lambda reads from its environment (AggregationSettings.from_env)."""
        return AggregationSettings(
            allowed_lateness_s=self.allowed_lateness_s,
            leaderboard_size=self.leaderboard_size,
            repeat_window_s=self.repeat_window_s,
        )


def _within(settings: StackSettings, name: str, low: int, high: int) -> None:
    if not low <= getattr(settings, name) <= high:
        raise ValueError(f"{name} must be within {low}..{high}")


def _convert(name: str, raw: Any) -> Any:
    if name in _OPTIONAL and isinstance(raw, str) and raw.strip().lower() in ("", "none", "null"):
        return None
    if name in _BOOLS:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise ValueError(f"context {name}={raw!r}: expected true or false")
    if name in _STRINGS:
        if not isinstance(raw, str):
            raise ValueError(f"context {name}={raw!r}: expected a string")
        return raw.strip()
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise ValueError(f"context {name}={raw!r}: expected an integer")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"context {name}={raw!r}: expected an integer") from None
