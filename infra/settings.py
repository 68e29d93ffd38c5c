"""Stack settings read from CDK context (`cdk.json` or `cdk synth -c key=value`).

Every key is a field name below. Values from `-c` arrive as strings and are converted to the
field's type here, so a typo fails the synth instead of deploying a surprising stack.

Where a value comes from (first match wins):
  1. explicit context: a top-level context key (`-c key=value`, cdk.context.json, or a
     top-level key in cdk.json). JSON null there counts as "not set"; the strings
     "none"/"null"/"" set an optional field to None explicitly.
  2. the deployment profile (`-c profile=small|medium|large`): the values capacity/profiles.py
     derives from the capacity planner for that click rate.
  3. cdk.json's `"clickagg:defaults"` object: the documented base defaults (= the field
     defaults below; a test keeps them equal).
So `-c profile=large -c kinesis_shards=700` deploys the large profile with 700 shards. The base
defaults sit in a nested object, not as top-level cdk.json keys, because CDK hands cdk.json's
top-level context to the app exactly like `-c` (an app cannot tell them apart): a top-level
default would always beat the profile. Unknown keys in "clickagg:defaults" fail the synth.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Mapping, Optional

from constructs import Node

# infra/__init__.py has put functions/ on sys.path, so this is the Lambdas' own module.
from common.config import AggregationSettings, IngestSettings, ResourceNames, _parse_salts
from common.serving_keys import DEFAULT_FRESHNESS_SLOTS, MAX_FRESHNESS_SLOTS

DEFAULTS_KEY = "clickagg:defaults"  # cdk.json: the base defaults (layer 3 above)
PROFILE_KEY = "profile"
KINESIS_MODES = ("on_demand", "provisioned")
SERVING_STORES = ("timestream", "dynamodb")
ARCHIVE_COLD_CLASSES = ("glacier_ir", "glacier")
CAPACITY_MODES = ("on_demand", "provisioned")
INGEST_DEDUP_MODES = ("per_click",)  # implemented; "per_request" is a planner lever only
# Spark (glueetl) worker types of Glue 5.0.
GLUE_WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X", "G.12X", "G.16X", "R.1X", "R.2X", "R.4X",
                     "R.8X")
# A new on-demand table is pre-warmed to this many writes/s; warm throughput only goes up.
DYNAMODB_BASE_WARM_WRITES = 4_000
_OPTIONAL = {"ingest_reserved_concurrency", "alarm_email", "profile", "dedup_min_wcu",
             "dedup_max_wcu", "serving_min_wcu", "serving_max_wcu", "waf_rate_limit_per_5min",
             "powertools_layer_version"}
_STRINGS = {"prefix", "kinesis_mode", "hot_ad_salts", "alarm_email", "serving_store",
            "aggregates_kinesis_mode", "flink_app_zip", "archive_cold_storage_class", "profile",
            "ingest_dedup_mode", "dedup_capacity_mode", "serving_capacity_mode",
            "billing_glue_worker_type", "billing_schedule", "cors_allowed_origins"}
_BOOLS = {"flink_autoscaling", "waf_enabled", "dashboard_site"}
_AGG = AggregationSettings()
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_SIMPLE_CRON = re.compile(r"cron\(([0-9]{1,2}) ([0-9]{1,2}) \* \* \? \*\)")


@dataclass(frozen=True)
class StackSettings:
    """Tunables of the deployed pipeline; defaults match cdk.json's "clickagg:defaults" and
    common.config. Fields a profile sets: profile_keys()."""

    prefix: str = "clickagg"  # physical names: common.config.ResourceNames(prefix)
    # None | "small" | "medium" | "large" (capacity/profiles.py). from_context applies the
    # profile's values (module docstring); StackSettings(profile=...) only records the name.
    profile: Optional[str] = None
    ingest_rate_limit: int = 10_000  # steady requests/s (stage and usage plan throttle)
    ingest_burst_limit: int = 5_000  # burst bucket of the same throttles
    kinesis_mode: str = "on_demand"  # "on_demand" | "provisioned"
    kinesis_shards: int = 4  # only used when kinesis_mode == "provisioned"
    kinesis_retention_hours: int = 168  # 7 days, so a Flink restart can replay
    dedup_ttl_s: int = 24 * 3600  # how long a click_id is remembered (table TTL)
    hot_ad_salts: str = ""  # "ad-1:8,ad-7:4": hot ads spread over N partition keys
    ingest_memory_mb: int = 1024
    ingest_reserved_concurrency: Optional[int] = None  # None = unreserved account pool
    # Public Powertools layer AWSLambdaPowertoolsPythonV3-python312-arm64. None: the layer of
    # requirements/lambda.txt's release, by Powertools' public SSM parameter for that release
    # (infra.constructs.python_function); an int pins that literal layer version instead.
    powertools_layer_version: Optional[int] = None
    alarm_email: Optional[str] = None  # optional email subscription of the alarm topic
    # "per_click" (claim/confirm item per click_id). The planner's "per_request" lever
    # (Powertools idempotency per request) is not implemented: refused at synth.
    ingest_dedup_mode: str = "per_click"

    # --- DynamoDB capacity (dedup table; serving table when serving_store == "dynamodb") ---
    # "on_demand": *_max_wcu (optional) caps writes/s (MaxWriteRequestUnits) and, above the
    # 4,000 writes/s a new table starts with, pre-warms it (WarmThroughput); *_min_wcu unused.
    # "provisioned": write capacity autoscales between *_min_wcu and *_max_wcu (both required)
    # at dynamodb_target_utilization_pct.
    dedup_capacity_mode: str = "on_demand"
    dedup_min_wcu: Optional[int] = None
    dedup_max_wcu: Optional[int] = None
    serving_capacity_mode: str = "on_demand"
    serving_min_wcu: Optional[int] = None
    serving_max_wcu: Optional[int] = None
    # Provisioned serving table only: reads (query API, nightly reconciliation) autoscale too.
    # The planner does not size reads (per query): raise these for heavy dashboards.
    serving_min_rcu: int = 5
    serving_max_rcu: int = 1_000
    dynamodb_target_utilization_pct: int = 70

    # --- stream aggregation (Flink -> aggregates stream -> sink Lambda -> serving store) ---
    # "dynamodb" | "timestream". Timestream for LiveAnalytics is closed to new AWS customers since
    # 2025-06-20, and the nightly reconciliation reads only DynamoDB: the stack refuses
    # timestream (infra.constructs.billing.require_reconciliation) rather than deploy billing
    # without reconciliation. Its constructs stay (ServingStore, the sink/query grants).
    serving_store: str = "dynamodb"
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
    # Checkpoints (seed 001): every 10 s, EXACTLY_ONCE (Managed Flink's fixed mode), RocksDB
    # (its fixed backend). The pause must stay below the interval, else it sets the pace.
    flink_checkpoint_interval_ms: int = 10_000
    flink_min_pause_between_checkpoints_ms: int = 5_000
    # The Managed Flink application zip `make setup` builds with Maven (repo-relative or
    # absolute; = the Makefile's FLINK_APP): deployed as it is (infra/constructs/aggregator.py).
    flink_app_zip: str = "functions/aggregate/target/clickagg-flink-app.zip"
    sink_batch_size: int = 500  # records per sink invocation (per shard)
    sink_max_batching_window_s: int = 1  # wait up to this long to fill a batch
    sink_parallelization_factor: int = 2  # concurrent batches per shard (1..10)
    sink_retry_attempts: int = 10  # then the failed records' metadata goes to the DLQ
    sink_memory_mb: int = 512
    query_memory_mb: int = 512
    minute_ttl_s: int = 8 * 86400  # DynamoDB: 1m rows and late counters expire after this
    # DynamoDB: items the sinks spread freshness writes over (hot-key relief; queries read all)
    freshness_slots: int = DEFAULT_FRESHNESS_SLOTS
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

    # --- nightly billing recompute (Glue 5.0) + reconciliation with the serving store ---
    billing_glue_worker_type: str = "G.1X"
    billing_glue_workers: int = 6  # the planner's size for ~10k clicks/s (the seed's rate)
    billing_glue_timeout_min: int = 180  # the planner sizes a run for <= 2 h
    # Glue cron (UTC). 02:30: after the job's 2 h arrival cutoff + the archive's buffering.
    billing_schedule: str = "cron(30 2 * * ? *)"
    billing_cutoff_hours: int = 2  # arrival hours of D+1 the run of day D reads
    billing_burst_threshold: int = 10  # > this many clicks per (ip, ad, second) = ip_burst

    # --- API edge ---
    # Comma-separated browser origins allowed to call the API ("https://a.example.com,
    # http://localhost:5173"); empty = no CORS at all.
    cors_allowed_origins: str = ""
    waf_enabled: bool = False  # WAFv2 web ACL (rate-based rule per IP) on the API stage
    # Requests per IP per 5 minutes before WAF blocks it; None = ingest_rate_limit x 300 (one
    # client may use the whole stage rate, no more).
    waf_rate_limit_per_5min: Optional[int] = None
    # The live dashboard on AWS (infra.constructs.dashboard_site: web/dist in private S3 behind
    # CloudFront, Cognito sign-in); its origin joins the API's CORS origins. false: none of it.
    dashboard_site: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", self.prefix):
            raise ValueError(f"prefix {self.prefix!r}: lowercase letters, digits, '-', max 31")
        if self.kinesis_mode not in KINESIS_MODES:
            raise ValueError(f"kinesis_mode {self.kinesis_mode!r}: expected one of {KINESIS_MODES}")
        if not 24 <= self.kinesis_retention_hours <= 8760:
            raise ValueError("kinesis_retention_hours must be within 24..8760")
        if not 128 <= self.ingest_memory_mb <= 10_240:
            raise ValueError("ingest_memory_mb must be within 128..10240")
        for name in ("ingest_rate_limit", "ingest_burst_limit", "kinesis_shards", "dedup_ttl_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.powertools_layer_version is not None and self.powertools_layer_version < 1:
            raise ValueError("powertools_layer_version must be >= 1 (or null: the pinned release)")
        if self.ingest_reserved_concurrency is not None and self.ingest_reserved_concurrency < 1:
            raise ValueError("ingest_reserved_concurrency must be >= 1 (or null)")
        _parse_salts(self.hot_ad_salts)  # the Lambda's own parser: reject what it would reject
        if self.profile is not None:
            _profiles().get_profile(self.profile)  # raises: unknown profile
        if self.ingest_dedup_mode == "per_request":
            raise ValueError(
                "ingest_dedup_mode=per_request is a capacity-planner lever (Powertools "
                "idempotency keyed on the request) that the ingest Lambda does not implement: "
                "deploy per_click (explicitly: -c ingest_dedup_mode=per_click)")
        if self.ingest_dedup_mode not in INGEST_DEDUP_MODES:
            raise ValueError(f"ingest_dedup_mode {self.ingest_dedup_mode!r}: "
                             f"expected one of {INGEST_DEDUP_MODES}")
        self._check_aggregation()
        self._check_capacity()
        self._check_archive()
        self._check_billing()
        self._check_edge()

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
        if self.flink_min_pause_between_checkpoints_ms >= self.flink_checkpoint_interval_ms:
            raise ValueError("flink_min_pause_between_checkpoints_ms must be < "
                             "flink_checkpoint_interval_ms (else the pause sets the interval)")
        _within(self, "sink_batch_size", 1, 10_000)  # Kinesis event source limit
        _within(self, "sink_max_batching_window_s", 0, 300)
        _within(self, "sink_parallelization_factor", 1, 10)
        _within(self, "freshness_slots", 1, MAX_FRESHNESS_SLOTS)  # one BatchGetItem reads them all
        _within(self, "sink_retry_attempts", 0, 10_000)
        _within(self, "sink_memory_mb", 128, 10_240)
        _within(self, "query_memory_mb", 128, 10_240)
        _within(self, "timestream_memory_retention_hours", 1, 8766)
        _within(self, "timestream_magnetic_retention_days", 1, 73_000)
        if not self.flink_app_zip.endswith(".zip"):
            raise ValueError(f"flink_app_zip {self.flink_app_zip!r}: expected a .zip path")

    def _check_capacity(self) -> None:
        for table in ("dedup", "serving"):
            mode = getattr(self, f"{table}_capacity_mode")
            low, high = getattr(self, f"{table}_min_wcu"), getattr(self, f"{table}_max_wcu")
            if mode not in CAPACITY_MODES:
                raise ValueError(f"{table}_capacity_mode {mode!r}: expected one of "
                                 f"{CAPACITY_MODES}")
            for name, value in ((f"{table}_min_wcu", low), (f"{table}_max_wcu", high)):
                if value is not None and value < 1:
                    raise ValueError(f"{name} must be >= 1 (or null)")
            if mode == "provisioned" and (low is None or high is None):
                raise ValueError(f"{table}_capacity_mode=provisioned needs {table}_min_wcu and "
                                 f"{table}_max_wcu (the write autoscaling range)")
            if low is not None and high is not None and low > high:
                raise ValueError(f"{table}_min_wcu must be <= {table}_max_wcu")
        _within(self, "serving_min_rcu", 1, 40_000)
        _within(self, "serving_max_rcu", self.serving_min_rcu, 40_000_000)
        # Application Auto Scaling's range for DynamoDB target tracking.
        _within(self, "dynamodb_target_utilization_pct", 20, 90)

    def _check_billing(self) -> None:
        if self.billing_glue_worker_type not in GLUE_WORKER_TYPES:
            raise ValueError(f"billing_glue_worker_type {self.billing_glue_worker_type!r}: "
                             f"expected one of {GLUE_WORKER_TYPES}")
        _within(self, "billing_glue_workers", 2, 1_000)  # 2 = Glue's minimum for Spark jobs
        _within(self, "billing_glue_timeout_min", 10, 2_880)
        _within(self, "billing_cutoff_hours", 0, 23)
        _within(self, "billing_burst_threshold", 1, 1_000_000)
        if not re.fullmatch(r"cron\([^()]+\)", self.billing_schedule):
            raise ValueError(f"billing_schedule {self.billing_schedule!r}: expected a Glue "
                             "cron(...) expression")
        simple = _SIMPLE_CRON.fullmatch(self.billing_schedule)
        if simple:  # a daily time: it must leave the cutoff hours + archive buffering behind
            minute, hour = int(simple.group(1)), int(simple.group(2))
            earliest = self.billing_cutoff_hours * 60 + -(-self.firehose_buffer_interval_s // 60)
            if not (minute < 60 and hour < 24) or hour * 60 + minute < earliest:
                raise ValueError(
                    f"billing_schedule {self.billing_schedule!r} starts before "
                    f"{earliest // 60:02d}:{earliest % 60:02d} UTC: the run of yesterday must "
                    "start after billing_cutoff_hours + the archive's buffer interval")

    def _check_edge(self) -> None:
        for origin in self.cors_origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"cors_allowed_origins: {origin!r} is not an origin "
                                 "(scheme://host[:port], no path, no wildcard)")
        if self.waf_rate_limit_per_5min is not None:
            _within(self, "waf_rate_limit_per_5min", 10, 2_000_000_000)  # WAFv2's limits

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.cors_allowed_origins.split(",") if o.strip())

    @property
    def waf_rate_limit(self) -> int:
        """Requests per IP per 5 minutes (WAF rate-based rule)."""
        if self.waf_rate_limit_per_5min is not None:
            return self.waf_rate_limit_per_5min
        return min(2_000_000_000, self.ingest_rate_limit * 300)

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
        """Explicit context > profile > cdk.json "clickagg:defaults" > field defaults."""
        names = {f.name for f in fields(cls)}
        base = node.try_get_context(DEFAULTS_KEY) or {}
        if not isinstance(base, Mapping):
            raise ValueError(f"context {DEFAULTS_KEY}: expected an object of setting defaults")
        unknown = sorted(set(base) - names)
        if unknown:
            raise ValueError(f"context {DEFAULTS_KEY}: unknown settings {unknown}")

        def explicit(name: str) -> tuple[bool, Any]:
            raw = node.try_get_context(name)
            return (False, None) if raw is None else (True, _convert(name, raw))

        has_profile, profile = explicit(PROFILE_KEY)
        if not has_profile and base.get(PROFILE_KEY) is not None:
            profile = _convert(PROFILE_KEY, base[PROFILE_KEY])
        profile_values = profile_context(profile) if profile else {}

        values: dict[str, Any] = {}
        for name in names:
            found, value = explicit(name)
            if found:
                values[name] = value
            elif name in profile_values:
                values[name] = _convert(name, profile_values[name])
            elif base.get(name) is not None:
                values[name] = _convert(name, base[name])
        if profile:
            values[PROFILE_KEY] = profile
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


def _profiles():
    # The planner lives at the repository root (capacity/), beside infra/.
    from capacity import profiles

    return profiles


def profile_context(name: str) -> dict[str, Any]:
    """The CDK context values of a profile (the planner's; region-independent today: the
    priced regions give equal values, so the us-east-1 price book stands for all)."""
    values = _profiles().profile_context(name)
    unknown = sorted(set(values) - {f.name for f in fields(StackSettings)})
    if unknown:  # a planner key infra has not wired: fail rather than ignore it
        raise ValueError(f"profile {name!r} sets context keys infra does not know: {unknown}")
    return values


def profile_keys() -> frozenset[str]:
    """Every setting some profile sets (cdk.json keeps them out of its top-level context)."""
    return frozenset(k for name in _profiles().PROFILES for k in profile_context(name))


def _within(settings: StackSettings, name: str, low: int, high: int) -> None:
    if not low <= getattr(settings, name) <= high:
        raise ValueError(f"{name} must be within {low}..{high}")


def _convert(name: str, raw: Any) -> Any:
    if raw is None and name in _OPTIONAL:
        return None
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
