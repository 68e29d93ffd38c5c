"""The one configuration schema of clickagg: every setting, its type, default and rules, ONCE.

Each `Setting` below says where it goes; every runtime's configuration is derived from it:
  context   a CDK context key (`cdk synth -c name=value`, deployment profiles, cdk.json's
            "clickagg:defaults"): infra.settings.StackSettings has one field per context setting
  group/env a Lambda reads it from environment variable `env` (common.config's views, one per
            `group`); infra writes it into the environment of the functions in `lambdas`
  flink     the Flink job's runtime property `clickagg.<flink>` (aggregate.job.settings
            JobSettings);
            infra writes the context ones into the application's property group
  glue      the billing Glue job's argument `--<glue>` (glue_jobs.billing.transform
            BillingSettings);
            infra passes the context ones to the job
  wired     the value is a deployed resource's (a table name, a stream ARN): infra passes it where
            the resource is made, the schema still names, types and checks it
and capacity/planner takes its shared defaults from `default(name)`. A new setting is one
`Setting(...)` line here (plus the code that uses it); every view, environment, property group,
job argument and context key follows.

Stdlib only, on purpose: this file ships in the Managed Flink application zip (common/*.py), whose
Python has no pydantic (pydantic-core is a compiled wheel the zip does not bundle). So values are
converted by `Setting.parse`, a few lines derived from the field's type, and validated by the
setting's rules (`Setting.problem`). Where pydantic is importable (CDK synth, the Lambdas through
the Powertools layer, the tests) each view is validated by a pydantic v2 model built from the same
definitions (strict types; the same rule functions as AfterValidators): `pydantic_model(view)`.
Invalid values raise SettingsError, whose message starts with the setting's name as its runtime
knows it: `kinesis_shards: ...` (context), `MINUTE_TTL_S: ...` (environment),
`clickagg.repeat_window_s: ...` (Flink property), `--cutoff_hours: ...` (Glue argument).
"""
from __future__ import annotations

import dataclasses
import os
import re
from functools import lru_cache
from typing import Any, Callable, Mapping, Optional, Union, get_args, get_origin

# --- where settings go ------------------------------------------------------------------------
CONTEXT, FLINK, GLUE = "context", "flink", "glue"  # view kinds besides the Lambda groups
INGEST, QUERY, SINK, RECONCILE, BUDGET = "ingest", "query", "sink", "reconcile", "budget"  # Lambdas
REBUILD = "rebuild"  # the rebuild state machine's Lambdas (prepare, load_file, commit)
FUNCTIONS = (INGEST, QUERY, SINK, RECONCILE, BUDGET, REBUILD)
FLINK_PROPERTY_GROUP = "clickagg"  # the job reads this one group of runtime properties

CHANGELOG_MODES = ("upsert", "retract")
KINESIS_MODES = ("on_demand", "provisioned")
CAPACITY_MODES = ("on_demand", "provisioned")
SERVING_STORES = ("timestream", "dynamodb")
ARCHIVE_COLD_CLASSES = ("glacier_ir", "glacier")
# Spark (glueetl) worker types of Glue 5.0.
GLUE_WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X", "G.12X", "G.16X", "R.1X", "R.2X", "R.4X",
                     "R.8X")
JOB_ENVIRONMENTS = ("aws", "local")
INIT_POSITIONS = ("LATEST", "TRIM_HORIZON", "AT_TIMESTAMP")
CLICK_TOKEN_MODES = ("off", "observe", "enforce")
NONE_WORDS = ("", "none", "null")  # an optional setting given as one of these is None

Salts = dict[str, int]  # hot_ad_salts: {"ad-1": 8} <-> "ad-1:8,ad-7:4"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message starts with its name in that runtime."""


# --- resource names ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ResourceNames:
    """Physical names of the pipeline's resources, derived from one prefix (setting `prefix`)."""

    prefix: str = "clickagg"

    @property
    def dedup_table(self) -> str:
        return f"{self.prefix}-click-dedup"

    @property
    def clicks_stream(self) -> str:
        return f"{self.prefix}-clicks"

    @property
    def events_stream(self) -> str:
        return f"{self.prefix}-events"

    @property
    def aggregates_stream(self) -> str:
        return f"{self.prefix}-aggregates"

    @property
    def serving_table(self) -> str:
        return f"{self.prefix}-serving"

    @property
    def budgets_table(self) -> str:
        return f"{self.prefix}-budgets"

    @property
    def archive_bucket(self) -> str:
        return f"{self.prefix}-archive"

    @property
    def billing_workflow(self) -> str:
        return f"{self.prefix}-billing"

    @property
    def click_token_secret(self) -> str:
        return f"{self.prefix}-click-token-keys"

    @property
    def metrics_namespace(self) -> str:
        return "ClickAgg"


_NAMES = ResourceNames()


# --- one setting ------------------------------------------------------------------------------
def parse_salts(raw: str) -> Salts:
    """'ad-1:8,ad-7:4' -> {'ad-1': 8, 'ad-7': 4}: hot ads spread over that many partition keys."""
    salts: Salts = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        ad_id, _, n = part.rpartition(":")
        if not ad_id or not n.isdigit() or int(n) < 1:
            raise ValueError(f"bad entry {part!r}: expected ad_id:N with N >= 1")
        salts[ad_id] = int(n)
    return salts


def _divides(total: int) -> Callable[[int], Optional[str]]:
    return lambda v: None if v > 0 and total % v == 0 else f"must divide {total}, got {v}"


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str  # canonical name = the CDK context key
    type: Any  # int | bool | str | Salts | Optional[...] of those
    default: Any
    doc: str
    ge: Optional[int] = None
    le: Optional[int] = None
    choices: tuple = ()
    pattern: Optional[str] = None  # full match
    hint: str = ""  # what the pattern means, for the message
    check: Optional[Callable[[Any], Optional[str]]] = None  # further rule: problem text or None
    context: bool = True
    group: Optional[str] = None  # the Lambda settings view (common.config) that reads it
    env_name: Optional[str] = None  # default: NAME when it has a group
    lambdas: tuple[str, ...] = ()  # functions infra writes it to (wired/context values only)
    flink: Optional[str] = None
    glue: Optional[str] = None
    wired: bool = False
    only_if: Optional[tuple[str, Any]] = None  # infra writes it only when that setting = value

    @property
    def env(self) -> Optional[str]:
        return self.env_name or (self.name.upper() if self.group else None)

    @property
    def optional(self) -> bool:
        return get_origin(self.type) is Union and type(None) in get_args(self.type)

    @property
    def base(self) -> Any:
        if self.optional:
            return next(a for a in get_args(self.type) if a is not type(None))
        return self.type

    def field(self) -> dataclasses.Field:
        if isinstance(self.default, dict):
            return dataclasses.field(default_factory=lambda d=self.default: dict(d))
        return dataclasses.field(default=self.default)

    # -- the converter: text (environment, properties, arguments, `cdk -c`) -> typed value
    def parse(self, raw: Any) -> Any:
        """`raw` as this setting's type, or ValueError with what was expected."""
        if raw is None or (self.optional and isinstance(raw, str)
                           and raw.strip().lower() in NONE_WORDS):
            return None
        base = self.base
        if base is bool:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
                return raw.strip().lower() == "true"
            raise ValueError(f"expected true or false, got {raw!r}")
        if base is int:
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
                return int(raw.strip())
            raise ValueError(f"expected an integer, got {raw!r}")
        if base is str:
            if isinstance(raw, str):
                return raw.strip()
            raise ValueError(f"expected a string, got {raw!r}")
        if base == Salts:
            return parse_salts(raw) if isinstance(raw, str) else raw
        raise TypeError(f"setting {self.name}: no converter for {self.type!r}")

    def encode(self, value: Any) -> str:
        """The text parse() turns back into `value` (environment, properties, arguments)."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict):
            return ",".join(f"{k}:{v}" for k, v in value.items())
        return str(value)

    # -- the rules (stdlib; pydantic runs the same ones as AfterValidators)
    def type_problem(self, value: Any) -> Optional[str]:
        if value is None and self.optional:
            return None
        base = self.base
        ok = {bool: lambda v: isinstance(v, bool),
              int: lambda v: isinstance(v, int) and not isinstance(v, bool),
              str: lambda v: isinstance(v, str)}.get(base)
        if ok is not None:
            return None if ok(value) else f"{_EXPECTED[base]}, got {value!r}"
        if base == Salts:
            good = isinstance(value, dict) and all(
                isinstance(k, str) and isinstance(n, int) and not isinstance(n, bool)
                for k, n in value.items())
            return None if good else f"expected ad_id:N entries, got {value!r}"
        return None

    def problem(self, value: Any) -> Optional[str]:
        """What is wrong with a value of the right type (None: nothing)."""
        if value is None:
            return None
        if self.ge is not None and self.le is not None and not self.ge <= value <= self.le:
            return f"must be within {self.ge}..{self.le}, got {value}"
        if self.ge is not None and value < self.ge:
            return f"must be >= {self.ge}, got {value}"
        if self.le is not None and value > self.le:
            return f"must be <= {self.le}, got {value}"
        if self.choices and value not in self.choices:
            return f"expected one of {self.choices}, got {value!r}"
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"{self.hint or 'must match ' + self.pattern}, got {value!r}"
        if self.base == Salts:
            bad = [f"{k}:{n}" for k, n in value.items() if not k or n < 1]
            if bad:
                return f"bad entries {bad}: expected ad_id:N with N >= 1"
        return self.check(value) if self.check else None


_EXPECTED = {bool: "expected true or false", int: "expected an integer", str: "expected a string"}

_CHECKPOINT_INTERVAL_MS = 10_000  # one default: the service's checkpoints on AWS, the job's locally


# Ingest dedup protocols (ingest/dedup.py): per_click = conditional claim before the stream
# write + confirm after (2 writes per click; the default: the design card's "DynamoDB
# conditional-write dedup"); mark = an eventually consistent read before, one write after (a
# cost lever: 1 WCU + 0.5 RCU per click).
DEDUP_MARK, DEDUP_PER_CLICK = "mark", "per_click"
DEDUP_MODES = (DEDUP_MARK, DEDUP_PER_CLICK)
# mark's check per click: an eventually consistent read of an item < 4 KB (a missing item costs
# the same); the dedup table's reads (infra) and the planner's price follow from it
MARK_READ_RCU = 0.5


def _dedup_mode_problem(mode: str) -> Optional[str]:
    if mode == "per_request":
        return ("per_request is a capacity-planner lever (Powertools idempotency keyed on the "
                "request) that the ingest Lambda does not implement: deploy per_click or mark "
                "(e.g. -c ingest_dedup_mode=mark)")
    return None if mode in DEDUP_MODES else f"expected one of {DEDUP_MODES}, got {mode!r}"


_ORIGIN = r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?"


# The IVT reason codes (common/ivt.py REASONS imports these: one list, stdlib-only here).
IVT_REASONS = ("bot_ua", "impression_repeat", "too_fast", "datacenter_ip", "ip_burst",
               "user_repeat")


def parse_ivt_rules(raw: str) -> frozenset:
    return frozenset(r.strip() for r in raw.split(",") if r.strip())


def _ivt_rules_problem(raw: str) -> Optional[str]:
    unknown = sorted(parse_ivt_rules(raw) - set(IVT_REASONS))
    return f"unknown rules {unknown}; known: {', '.join(IVT_REASONS)}" if unknown else None


def _origins_problem(raw: str) -> Optional[str]:
    for origin in (o.strip() for o in raw.split(",") if o.strip()):
        if not re.fullmatch(_ORIGIN, origin):
            return f"{origin!r} is not an origin (scheme://host[:port], no path, no wildcard)"
    return None


S = Setting
SETTINGS: tuple[Setting, ...] = (
    # --- names --------------------------------------------------------------------------------
    S("prefix", str, "clickagg", "physical names: ResourceNames(prefix)",
      pattern=r"[a-z][a-z0-9-]{0,30}", hint="lowercase letters, digits, '-', max 31"),
    S("profile", Optional[str], None,
      "None | small | medium | large (capacity/profiles.py): its values sit between explicit "
      "context and the base defaults (infra.settings)"),

    # --- ingest API and Lambda ----------------------------------------------------------------
    S("ingest_rate_limit", int, 10_000, "steady requests/s (stage and usage plan throttle)", ge=1),
    S("ingest_burst_limit", int, 5_000, "burst bucket of the same throttles", ge=1),
    S("ingest_memory_mb", int, 1024, "ingest Lambda memory", ge=128, le=10_240),
    S("ingest_reserved_concurrency", Optional[int], None, "None = unreserved account pool", ge=1),
    S("powertools_layer_version", Optional[int], None,
      "public Powertools layer version; None: the layer of requirements/lambda.txt's release, "
      "by Powertools' public SSM parameter (infra.constructs.python_function)", ge=1),
    S("alarm_email", Optional[str], None, "optional email subscription of the alarm topic"),
    S("ingest_dedup_mode", str, DEDUP_PER_CLICK,
      "per_click: conditional claim, publish, confirm (2 writes; a concurrent copy is told to "
      "retry instead of reaching the stream); mark: read the click_id's item, publish, then "
      "write it (1 write + 0.5 read unit per click). The planner's per_request lever is not "
      "implemented",
      check=_dedup_mode_problem, group=INGEST, lambdas=(INGEST,)),
    S("dedup_table", str, _NAMES.dedup_table, "the dedup table's name", context=False,
      group=INGEST, lambdas=(INGEST,), wired=True),
    S("clicks_stream", str, _NAMES.clicks_stream, "the clicks stream's name", context=False,
      group=INGEST, lambdas=(INGEST,), wired=True),
    S("events_stream", str, _NAMES.events_stream,
      "the events stream's name (impressions, conversions: POST /v1/events)", context=False,
      group=INGEST, lambdas=(INGEST,), wired=True),
    S("refused_delivery_stream", Optional[str], None,
      "the refused-items archive's Firehose delivery stream (common.refused); unset: refused "
      "items are answered and logged only", context=False, group=INGEST, lambdas=(INGEST,),
      wired=True),
    S("billing_currency", str, "USD",
      "ISO 4217 code of every price and conversion value (one per deployment: ROAS and spend sum "
      "them); a conversion in another currency is refused", pattern=r"[A-Z]{3}",
      hint="three capital letters, e.g. EUR", group=INGEST, lambdas=(INGEST,)),
    S("max_batch", int, 500, "clicks per request", ge=1, context=False, group=INGEST,
      lambdas=(INGEST,)),
    S("max_body_bytes", int, 1_048_576, "bigger bodies get 413", ge=1, context=False,
      group=INGEST, lambdas=(INGEST,)),
    S("max_future_skew_s", int, 300, "event time at most this far ahead of ingest time", ge=0,
      context=False, group=INGEST, lambdas=(INGEST,), glue="max_future_skew_s"),
    S("max_age_s", int, 7 * 24 * 3600, "event time at most this old", ge=1, context=False,
      group=INGEST, lambdas=(INGEST,)),
    S("dedup_ttl_s", int, 24 * 3600, "how long ingest remembers a click_id (table TTL)", ge=1,
      group=INGEST, lambdas=(INGEST,)),
    S("claim_lease_s", int, 120,
      "a pending claim older than this may be taken over (> the Lambda timeout)", ge=1,
      context=False, group=INGEST, lambdas=(INGEST,)),
    S("dedup_concurrency", int, 32, "parallel DynamoDB writes per request", ge=1, context=False,
      group=INGEST, lambdas=(INGEST,)),
    S("kinesis_max_attempts", int, 4, "PutRecords attempts for records that keep failing", ge=1,
      context=False, group=INGEST, lambdas=(INGEST,)),
    S("kinesis_backoff_base_ms", int, 50, "exponential backoff base between attempts", ge=0,
      context=False, group=INGEST, lambdas=(INGEST,)),
    S("hot_ad_salts", Salts, {}, "'ad-1:8,ad-7:4': hot ads spread over N partition keys",
      group=INGEST, lambdas=(INGEST,)),
    S("click_token_mode", str, "observe",
      "signed click tokens (docs/click-token.md): off = not looked at; observe = verified and "
      "counted per reason (metrics ClickToken_<outcome>), clicks accepted as without; enforce = "
      "a click needs a valid token, whose ids and price are the click's. Default observe: the "
      "SDKs send tokens (sdk/), so a new deployment sees what enforce would refuse before "
      "anyone switches it on", choices=CLICK_TOKEN_MODES,
      group=INGEST, lambdas=(INGEST,)),
    S("click_token_max_age_s", int, 24 * 3600,
      "a click token issued longer ago (+ skew) is expired_token", ge=1, le=7 * 24 * 3600,
      group=INGEST, lambdas=(INGEST,), glue="click_token_max_age_s"),
    S("click_token_clock_skew_s", int, 300,
      "tolerance between the ad server's clock and ingest's when judging token times", ge=0,
      le=3600, group=INGEST, lambdas=(INGEST,), glue="click_token_clock_skew_s"),
    S("click_token_secret", str, _NAMES.click_token_secret,
      "the Secrets Manager secret holding the click-token key set", context=False,
      group=INGEST, lambdas=(INGEST,), wired=True),

    # --- clicks stream ------------------------------------------------------------------------
    S("kinesis_mode", str, "on_demand", "clicks stream capacity mode", choices=KINESIS_MODES),
    S("kinesis_shards", int, 4, "only used when kinesis_mode == provisioned", ge=1),
    S("events_kinesis_mode", str, "on_demand", "events stream (impressions, conversions) "
      "capacity mode", choices=KINESIS_MODES),
    S("events_kinesis_shards", int, 4, "only used when events_kinesis_mode == provisioned", ge=1),
    S("kinesis_retention_hours", int, 168, "7 days, so a Flink restart can replay", ge=24,
      le=8760),

    # --- DynamoDB capacity (dedup table; serving table when serving_store == dynamodb) --------
    # on_demand: *_max_wcu (optional) caps writes/s and, above the 4,000 writes/s a new table
    # starts with, pre-warms it; provisioned: writes autoscale between *_min_wcu and *_max_wcu
    # (both required) at dynamodb_target_utilization_pct.
    S("dedup_capacity_mode", str, "on_demand", "dedup table billing", choices=CAPACITY_MODES),
    S("dedup_min_wcu", Optional[int], None, "provisioned autoscaling minimum", ge=1),
    S("dedup_max_wcu", Optional[int], None, "autoscaling maximum / on-demand cap", ge=1),
    S("dedup_min_rcu", int, 5, "provisioned dedup table: read autoscaling minimum (mark mode "
      "reads every click; per_click reads nothing: fixed at this)", ge=1),
    S("dedup_max_rcu", Optional[int], None, "provisioned dedup table, mark mode: read "
      "autoscaling maximum; unset: dedup_max_wcu x MARK_READ_RCU (mark's reads when its writes "
      "are at their maximum)", ge=1),
    S("serving_capacity_mode", str, "on_demand", "serving table billing",
      choices=CAPACITY_MODES),
    S("serving_min_wcu", Optional[int], None, "provisioned autoscaling minimum", ge=1),
    S("serving_max_wcu", Optional[int], None, "autoscaling maximum / on-demand cap", ge=1),
    S("serving_min_rcu", int, 5, "provisioned serving table: read autoscaling minimum", ge=1,
      le=40_000),
    S("serving_max_rcu", int, 1_000, "provisioned serving table: read autoscaling maximum",
      ge=1, le=40_000_000),
    S("dynamodb_target_utilization_pct", int, 70, "target of both tables' autoscaling", ge=20,
      le=90),

    # --- stream aggregation (Flink -> aggregates stream -> sink Lambda -> serving store) ------
    S("serving_store", str, "dynamodb",
      "dynamodb | timestream (refused by the stack: closed to new customers, and the nightly "
      "reconciliation reads only DynamoDB)", choices=SERVING_STORES, group="serving",
      lambdas=(SINK, QUERY, RECONCILE)),
    S("serving_table", Optional[str], None, "the DynamoDB serving table's name",
      context=False, group="serving", lambdas=(SINK, QUERY, BUDGET, REBUILD), wired=True),
    S("timestream_database", Optional[str], None, "the Timestream database", context=False,
      group="serving", lambdas=(SINK, QUERY), wired=True),
    S("timestream_table", Optional[str], None, "the Timestream table", context=False,
      group="serving", lambdas=(SINK, QUERY), wired=True),
    S("aggregates_kinesis_mode", str, "on_demand", "aggregates stream capacity mode",
      choices=KINESIS_MODES),
    S("aggregates_kinesis_shards", int, 2, "only used when aggregates_kinesis_mode == "
      "provisioned", ge=1),
    S("aggregates_retention_hours", int, 24,
      "the sink is idempotent; a day covers any outage we page on", ge=24, le=8760),
    S("allowed_lateness_s", int, 900,
      "a bucket accepts clicks until watermark >= bucket end + this (then it is final)", ge=1,
      group="aggregation", lambdas=(QUERY,), flink="allowed_lateness_s",
      glue="allowed_lateness_s"),
    S("leaderboard_size", int, 1000, "M: entries kept per 1m, 1h and 1d leaderboard bucket", ge=1,
      group="aggregation", lambdas=(QUERY,), flink="leaderboard_size"),
    S("repeat_window_s", int, 10,
      "one billable click per (user, ad, window); the stream needs it to divide 60", ge=1,
      group="aggregation", lambdas=(QUERY,), flink="repeat_window_s", glue="repeat_window_s"),
    S("watermark_delay_s", int, 5, "bounded out-of-orderness of event time", ge=0,
      flink="watermark_delay_s", glue="watermark_delay_s"),
    S("attribution_window_s", int, 7 * 24 * 3600,
      "last-click attribution: a conversion counts for the click it names when it occurred at "
      "most this long after that click (the nightly billing checks it; docs/events.md)",
      ge=60, le=90 * 24 * 3600, glue="attribution_window_s"),
    # --- invalid traffic (common/ivt.py is the normative text; docs/ivt.md) -------------------
    # The stream (Flink) and the nightly billing (Glue) read the same values.
    S("ivt_rules", str, ",".join(IVT_REASONS),
      "enabled IVT rules, comma-separated (bot_ua, impression_repeat, too_fast, datacenter_ip, "
      "ip_burst, user_repeat); empty = none", check=_ivt_rules_problem,
      flink="ivt_rules", glue="ivt_rules"),
    S("ivt_burst_threshold", int, 10,
      "ip_burst: more than this many clicks from one ip in one burst window (all ads)",
      ge=1, le=1_000_000, flink="ivt_burst_threshold", glue="burst_threshold"),
    S("ivt_burst_window_ms", int, 1_000, "ip_burst: fixed, epoch-aligned window; divides 60000",
      ge=1, check=_divides(60_000), flink="ivt_burst_window_ms", glue="burst_window_ms"),
    S("ivt_min_click_delay_ms", int, 1_000,
      "too_fast: ingest_time - the token's issued_at below this is not a human click", ge=0,
      le=3_600_000, flink="ivt_min_click_delay_ms", glue="min_click_delay_ms"),
    S("flink_burst_memory_s", int, 120,
      "how long the job keeps a click to correct it should its IP-burst bucket overflow later "
      "(join state; a later overflow is left to the nightly billing)", ge=2, le=86_400,
      context=False, flink="burst_memory_s"),
    S("ivt_alert_percent", int, 5,
      "/v1/quality alerts (and the CloudWatch alarm fires) when suspect + invalid clicks "
      "exceed this percent of clicks", ge=1, le=100, group="quality", lambdas=(QUERY,)),
    S("ivt_alert_min_clicks", int, 100,
      "a window with fewer clicks never raises the IVT alert or alarm: a few clicks' rate is "
      "noise (and a burst re-classified later can lift a quiet window's rate past 100 %)", ge=1,
      le=1_000_000_000, group="quality", lambdas=(QUERY,)),
    S("flink_dedup_ttl_s", int, 1800,
      "the job's memory of click_ids and of IVT groups (impressions, user repeats, IP bursts): "
      ">= 60 + lateness + watermark delay; an impression clicked again later than this after "
      "its last click is left to the nightly billing", ge=1,
      flink="dedup_ttl_s", glue="flink_dedup_ttl_s"),
    S("minibatch_latency_ms", int, 2000, "Flink SQL mini-batch latency", ge=1,
      flink="minibatch_latency_ms"),
    S("flink_changelog_mode", str, "upsert",
      "the aggregates stream's rows: upsert = only the new version of an updated row (the "
      "sink keeps the newest version per key, so the old one's 'd' row changes nothing: about "
      "half the rows); retract = every -U row too (Flink's debezium-json as it comes)",
      choices=CHANGELOG_MODES, flink="changelog_mode"),
    # --- budget lane (docs/budget.md) ---------------------------------------------------------
    S("budgets_table", str, _NAMES.budgets_table,
      "the budgets table's name (campaign budgets and their history)", context=False,
      group=BUDGET, lambdas=(BUDGET,), glue="budgets_table", wired=True),
    S("budget_emit_interval_ms", int, 500,
      "the spend lane's mini-batch latency: the job emits each campaign's changed spend and a "
      "pulse this often (the stop margin counts it)", ge=50, le=10_000, group=BUDGET,
      lambdas=(BUDGET,), flink="budget_emit_interval_ms"),
    S("budget_stale_after_ms", int, 10_000,
      "fail-closed bound: a spend figure older than this (the newest pulse's age) answers "
      "`stop` (or budget_stale_serve_percent) and the BudgetLaneStale alarm fires", ge=1_000,
      le=600_000, group=BUDGET, lambdas=(BUDGET,)),
    S("budget_stale_serve_percent", int, 0,
      "the share of requests to serve while the spend figure is stale: 0 = stop (fail closed)",
      ge=0, le=100, group=BUDGET, lambdas=(BUDGET,)),
    S("pacing_cache_ttl_ms", int, 1_000,
      "how long the budget Lambda keeps a campaign's figures in memory and callers may keep an "
      "answer (Cache-Control max-age, rounded down to seconds); the stop margin counts it", ge=0,
      le=60_000, group=BUDGET, lambdas=(BUDGET,)),
    S("budget_click_delay_ms", int, 15_000,
      "the delay from serving an ad to its click reaching the stream that the stop margin allows "
      "for (about the p95 of ingest_time - the token's issued_at): spend already committed that "
      "no figure shows yet", ge=0, le=3_600_000, group=BUDGET, lambdas=(BUDGET,)),
    S("budget_memory_mb", int, 512, "budget Lambda memory", ge=128, le=10_240),
    S("flink_parallelism", int, 2, "initial (and, with autoscaling, minimum) parallelism", ge=1),
    S("flink_parallelism_per_kpu", int, 1, "parallel tasks per KPU (1 vCPU, 4 GB)", ge=1),
    S("flink_autoscaling", bool, True, "Managed Flink scales parallelism on CPU"),
    S("flink_checkpoint_interval_ms", int, _CHECKPOINT_INTERVAL_MS,
      "Managed Flink's checkpoint interval (EXACTLY_ONCE and RocksDB are the service's own)",
      ge=1_000, le=24 * 3_600_000),
    S("flink_min_pause_between_checkpoints_ms", int, 5_000,
      "< the interval, else the pause sets the pace", ge=0),
    S("flink_app_zip", str, "functions/aggregate/target/clickagg-flink-app.zip",
      "the application zip `make setup` builds (repo-relative or absolute)",
      check=lambda v: None if v.endswith(".zip") else f"expected a .zip path, got {v!r}"),
    S("sink_batch_size", int, 500, "records per sink invocation (per shard)", ge=1,
      le=10_000),
    S("sink_max_batching_window_s", int, 1, "wait up to this long to fill a batch", ge=0,
      le=300),
    S("sink_parallelization_factor", int, 2, "concurrent batches per shard", ge=1, le=10),
    S("sink_retry_attempts", int, 10, "then the failed records' metadata goes to the DLQ",
      ge=0, le=10_000),
    S("sink_memory_mb", int, 512, "sink Lambda memory", ge=128, le=10_240),
    S("query_memory_mb", int, 512, "query Lambda memory", ge=128, le=10_240),
    S("minute_ttl_s", int, 8 * 86400, "DynamoDB: 1m rows and late counters expire after this "
      "(the query API trims older edge minutes of a window to the hour)",
      ge=1, group="serving", lambdas=(SINK, QUERY, REBUILD)),
    S("freshness_slots", int, 16,
      "DynamoDB: items the sinks spread freshness writes over; at most one BatchGetItem (100)",
      ge=1, le=100, group="serving", lambdas=(SINK, QUERY, REBUILD),
      only_if=("serving_store", "dynamodb")),
    S("timestream_memory_retention_hours", int, 48, "> 1 day + lateness", ge=1, le=8766),
    S("timestream_magnetic_retention_days", int, 365, "magnetic store retention", ge=1,
      le=73_000),
    S("iterator_age_alarm_ms", int, 60_000, "alarm when a stream consumer falls this far behind",
      ge=1),

    # --- raw archive (Firehose -> S3 Parquet -> Glue table -> Athena) -------------------------
    S("archive_ia_after_days", int, 30, "-> STANDARD_IA (S3 minimum: 30)", ge=30, le=36_500),
    S("archive_cold_after_days", int, 90,
      "-> the cold class (>= IA + 30); the reconcile API refuses older days (restore first)",
      ge=1, group="reconcile", env_name="RECONCILE_MAX_AGE_DAYS", lambdas=(RECONCILE,)),
    S("archive_cold_storage_class", str, "glacier_ir", "glacier_ir (Athena reads it) | glacier",
      choices=ARCHIVE_COLD_CLASSES),
    S("firehose_buffer_mb", int, 128, "Parquet conversion needs >= 64 MB buffers", ge=64,
      le=128),
    S("firehose_buffer_interval_s", int, 300, "Firehose buffer interval", ge=60, le=900),
    S("athena_bytes_scanned_cutoff", int, 10 * 1024**3, "per-query scan limit (min 10 MB)",
      ge=10 * 1024**2),
    S("athena_results_retention_days", int, 30, "query results expire after this", ge=1,
      le=36_500),

    # --- nightly billing recompute (Glue 5.0) + reconciliation ---------------------------------
    S("billing_glue_worker_type", str, "G.1X", "Glue worker type", choices=GLUE_WORKER_TYPES),
    S("billing_glue_workers", int, 6, "the planner's size for ~10k clicks/s", ge=2, le=1_000),
    S("billing_glue_timeout_min", int, 180, "the planner sizes a run for <= 2 h", ge=10,
      le=2_880),
    S("billing_schedule", str, "cron(30 2 * * ? *)",
      "Glue cron (UTC), after the arrival cutoff + the archive's buffering",
      pattern=r"cron\([^()]+\)", hint="expected a Glue cron(...) expression"),
    S("billing_cutoff_hours", int, 2, "arrival hours of D+1 the run of day D reads (and the "
      "rebuild's arrival cutoff: docs/rebuild.md)", ge=0,
      le=23, group="reconcile", lambdas=(RECONCILE, REBUILD), glue="cutoff_hours"),
    S("billing_workflow", Optional[str], None, "the billing workflow's name", context=False,
      group="reconcile", lambdas=(RECONCILE,), wired=True),

    # --- rebuild from the archive (docs/rebuild.md, infra/constructs/rebuild.py) ---------------
    # 4: the rebuild is a transient job, sized for its deadline rather than for the stream; at the
    # bench's 14,298 archive rows per CPU-second (docs/rebuild.md) 4 KPUs rebuild a day of ~100M
    # archive rows (~1,000 clicks/s without impressions) in 30 min. The capacity planner's
    # profiles set it for their volume (capacity/planner/rebuild.py: the seed's 8.6B clicks/day
    # needs 452 KPUs clicks only, far more with 50 impressions per click).
    S("rebuild_parallelism", int, 4,
      "the rebuild application's parallelism (= KPUs: one task per vCPU, the sort aggregates are "
      "CPU-bound); default 4 = a day of ~100M archive rows in ~30 min at the measured rate "
      "(`python -m capacity plan` gives it for a volume)", ge=1),
    # 20: ~20,000 writes/s at an assumed 1,000 per Lambda, half of a table's default 40,000
    # writes/s quota; the planner sizes it for a volume (the table's headroom over the stream).
    S("rebuild_load_concurrency", int, 20,
      "load_file Lambdas a rebuild runs at once per load phase (the Distributed Map's "
      "MaxConcurrency): ~1,000 writes/s each into the serving table", ge=1, le=10_000),
    S("rebuild_application", Optional[str], None,
      "the rebuild's Managed Flink application (its `rebuild` property group is set per run)",
      context=False, group=REBUILD, lambdas=(REBUILD,), wired=True),
    S("rebuild_bucket", Optional[str], None,
      "the bucket a rebuild writes its rows and _SUCCESS to (rebuild/gen=<generation>/)",
      context=False, group=REBUILD, lambdas=(REBUILD,), wired=True),
    S("archive_bucket", Optional[str], None, "the raw archive's bucket (the rebuild reads raw/)",
      context=False, group=REBUILD, lambdas=(REBUILD,), wired=True),

    # --- API edge -----------------------------------------------------------------------------
    S("cors_allowed_origins", str, "",
      "comma-separated browser origins allowed to call the API; empty = no CORS (infra adds "
      "the dashboard's origin)", check=_origins_problem, group="api"),
    S("waf_enabled", bool, False, "WAFv2 web ACL (rate-based rule per IP) on the API stage"),
    S("waf_rate_limit_per_5min", Optional[int], None,
      "requests per IP per 5 min before WAF blocks; None = ingest_rate_limit x 300", ge=10,
      le=2_000_000_000),
    S("dashboard_site", bool, True, "the live dashboard on AWS (S3 + CloudFront + Cognito)"),

    # --- query API's /v1/quality --------------------------------------------------------------
    S("clicks_stream_name", Optional[str], None, "the clicks stream (its iterator age)",
      context=False, group="quality", lambdas=(QUERY,), wired=True),
    S("ingest_metrics_service", str, "ingest", "the ingest Lambda's metrics service dimension",
      context=False, group="quality", lambdas=(QUERY,), wired=True),

    # --- the Flink job's own (runtime properties; not deployed from context) ------------------
    S("job_environment", str, "aws",
      "aws | local (local adds the emulator's endpoint and configures its own checkpoints)",
      choices=JOB_ENVIRONMENTS, context=False, flink="environment"),
    S("agg_state_margin_s", int, 3600, "aggregate state idles bucket + lateness + this", ge=0,
      context=False, flink="agg_state_margin_s"),
    # Flink also ends a mini-batch when an operator has buffered this many input rows; above
    # minibatch_latency_ms x the rows a subtask processes per second, the latency ends it, as the
    # freshness contract and the planner's changelog model say (2 s x 5,377 measured = 10,754;
    # room for faster subtasks and for 10 s mini-batches). Memory: the mini-batch join and
    # aggregates buffer at most this many rows each, ~300 B apiece.
    S("minibatch_size", int, 50_000, "Flink SQL mini-batch size (table.exec.mini-batch.size)",
      ge=1, context=False, flink="minibatch_size"),
    S("job_parallelism", Optional[int], None, "None: the runtime's (Managed Flink: the service's)",
      ge=1, context=False, flink="parallelism"),
    S("source_idle_timeout_ms", int, 60_000, "a split silent this long stops holding the "
      "watermark", ge=0, context=False, flink="source_idle_timeout_ms"),
    S("job_checkpoint_interval_ms", int, _CHECKPOINT_INTERVAL_MS,
      "local runs only (on AWS the service checkpoints)", ge=100, context=False,
      flink="checkpoint_interval_ms"),
    S("checkpoint_dir", Optional[str], None, "local: file:///... ; None: no local checkpoints",
      context=False, flink="checkpoint_dir"),
    S("aws_region", Optional[str], None, "the streams' region", context=False, flink="aws_region",
      wired=True),
    S("clicks_stream_arn", Optional[str], None, "source stream", context=False,
      flink="clicks_stream_arn", wired=True),
    S("aggregates_stream_arn", Optional[str], None, "sink stream", context=False,
      flink="aggregates_stream_arn", wired=True),
    S("events_stream_arn", Optional[str], None,
      "impressions and conversions stream (POST /v1/events); None: a clicks-only job whose "
      "impression and conversion columns are 0", context=False, flink="events_stream_arn",
      wired=True),
    S("source_init_position", str, "LATEST", "where a start without state reads from",
      choices=INIT_POSITIONS, context=False, flink="source_init_position"),
    S("source_init_timestamp", Optional[str], None, "ISO-8601 with offset, for AT_TIMESTAMP",
      context=False, flink="source_init_timestamp"),
    S("stream_count_from_ms", int, 0,
      "bootstrap hand-over (docs/rebuild.md): the job counts only clicks and events whose event "
      "time is at or after this UTC day start (epoch ms; 0 = all) and the rebuild from the "
      "archive fills every bucket before it: each bucket has exactly one writer", ge=0,
      flink="count_from_ms"),
    # 500, not the connector's 200: at 200 the job alone makes 5 GetRecords calls/s per shard, the
    # whole per-shard limit shared with Firehose (1/s), so both would be throttled
    S("getrecords_interval_ms", int, 500,
      "per-shard GetRecords pause (5 calls/s/shard is the AWS limit, shared with Firehose)", ge=200,
      context=False,
      flink="getrecords_interval_ms"),
    S("getrecords_max_records", int, 10_000, "records per GetRecords (the AWS maximum)", ge=1,
      context=False, flink="getrecords_max_records"),
    S("aws_endpoint", Optional[str], None, "local only: the emulator's URL", context=False,
      flink="aws_endpoint"),
)
del S
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def default(name: str) -> Any:
    """The one default of setting `name` (capacity/planner and others take theirs from here)."""
    return BY_NAME[name].default


# --- rules across settings (by canonical name; a view applies those whose settings it has) ----
@dataclasses.dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]  # the settings it reads; the first is the one the message names
    check: Callable[..., Optional[str]]  # values in `names` order -> problem or None
    kinds: Optional[tuple[str, ...]] = None  # only these view kinds (None: every view)


def lateness_horizon_s(allowed_lateness_s: int, watermark_delay_s: int) -> int:
    """Longest time a click stays countable after its event time (in watermark time)."""
    return 60 + allowed_lateness_s + watermark_delay_s


RULES: tuple[Rule, ...] = (
    # Repeat buckets tile the minute (the job's 1m buckets hold whole repeat buckets).
    Rule(("repeat_window_s",), _divides(60), kinds=(CONTEXT, FLINK)),
    # The billing job evaluates a day alone: repeat buckets must not straddle midnight.
    Rule(("repeat_window_s",), _divides(86_400), kinds=(GLUE,)),
    Rule(("flink_dedup_ttl_s", "allowed_lateness_s", "watermark_delay_s"),
         lambda ttl, late, delay: None if ttl >= lateness_horizon_s(late, delay) else (
             f"must be >= the lateness horizon 60 + allowed_lateness_s + watermark_delay_s = "
             f"{lateness_horizon_s(late, delay)}, got {ttl}")),
)


# --- views: one runtime's settings as a frozen dataclass --------------------------------------
def view_settings(kind: str) -> dict[str, Setting]:
    """attribute -> Setting of a view: CONTEXT, FLINK, GLUE or a Lambda group ("ingest", ...)."""
    if kind == CONTEXT:
        return {s.name: s for s in SETTINGS if s.context}
    if kind == FLINK:
        return {s.flink: s for s in SETTINGS if s.flink}
    if kind == GLUE:
        return {s.glue: s for s in SETTINGS if s.glue}
    found = {s.name: s for s in SETTINGS if s.group == kind}
    if not found:
        raise KeyError(f"no settings view {kind!r}")
    return found


class View:
    """Base of every settings view (made by `make_view`): validated on construction."""

    __kind__: str = ""
    __settings__: dict[str, Setting] = {}

    def __post_init__(self) -> None:
        for attr, setting in self.__settings__.items():  # salts also in their text form
            if setting.base == Salts and isinstance(getattr(self, attr), str):
                object.__setattr__(self, attr, type(self).parse(attr, getattr(self, attr)))
        validate(self)
        self._check()

    def _check(self) -> None:
        """Cross-setting rules of this view beyond the shared RULES (subclasses add theirs)."""

    @classmethod
    def label(cls, attr: str) -> str:
        """The setting's name as this runtime knows it (starts every error message)."""
        if cls.__kind__ == FLINK:
            return f"{FLINK_PROPERTY_GROUP}.{attr}"
        if cls.__kind__ == GLUE:
            return f"--{attr}"
        setting = cls.__settings__.get(attr)
        if cls.__kind__ == CONTEXT or setting is None:
            return attr
        return setting.env or attr

    @classmethod
    def error(cls, attr: str, problem: str) -> SettingsError:
        return SettingsError(f"{cls.label(attr)}: {problem}")

    @classmethod
    def parse(cls, attr: str, raw: Any) -> Any:
        try:
            return cls.__settings__[attr].parse(raw)
        except ValueError as exc:
            raise cls.error(attr, str(exc)) from None

    @classmethod
    def attr_of(cls, name: str) -> Optional[str]:
        """This view's attribute for canonical setting `name` (None: not in the view)."""
        return next((a for a, s in cls.__settings__.items() if s.name == name), None)

    def values(self) -> dict[str, Any]:
        return {a: getattr(self, a) for a in self.__settings__}


def make_view(name: str, kind: str, base: type = View, *, module: str) -> type:
    """A frozen dataclass with one field per setting of `kind` (defaults from the schema) and
    `base`'s methods; `module` is where it lives (pickle, repr)."""
    settings = view_settings(kind)
    cls = dataclasses.make_dataclass(
        name, [(attr, s.type, s.field()) for attr, s in settings.items()],
        bases=(base,), frozen=True, namespace={"__kind__": kind, "__settings__": settings})
    cls.__module__ = module
    return cls


def validate(obj: View) -> None:
    """Types and per-setting rules (pydantic where importable, else the same checks in stdlib),
    then the shared RULES that apply to this view."""
    view = type(obj)
    values = obj.values()
    model = pydantic_model(view)
    if model is not None:
        _validate_with_pydantic(view, model, values)
    else:
        for attr, setting in view.__settings__.items():
            problem = setting.type_problem(values[attr]) or setting.problem(values[attr])
            if problem:
                raise view.error(attr, problem)
    for rule in RULES:
        if rule.kinds is not None and view.__kind__ not in rule.kinds:
            continue
        attrs = [view.attr_of(n) for n in rule.names]
        if None in attrs:
            continue
        problem = rule.check(*(values[a] for a in attrs))
        if problem:
            raise view.error(attrs[0], problem)


# --- pydantic, where present -------------------------------------------------------------------
# CLICKAGG_SETTINGS_NO_PYDANTIC=1: validate with the stdlib checks even where pydantic is
# importable (same results: tests/unit/test_settings_schema.py), e.g. to spare a Lambda that uses
# no pydantic otherwise its import at cold start.
_NO_PYDANTIC = os.environ.get("CLICKAGG_SETTINGS_NO_PYDANTIC") == "1"


@lru_cache(maxsize=None)
def _pydantic():
    if _NO_PYDANTIC:
        return None
    try:
        import pydantic
    except ImportError:  # the Managed Flink runtime and Glue: the stdlib checks above
        return None
    return pydantic


_TYPE_ERRORS = {"int_type": "expected an integer", "bool_type": "expected true or false",
                "string_type": "expected a string", "dict_type": "expected ad_id:N entries",
                "none_required": "expected nothing"}


@lru_cache(maxsize=None)
def pydantic_model(view: type) -> Any:
    """The pydantic v2 model of a view (strict types + the settings' own rules), or None where
    pydantic is not importable. Also what `model_json_schema()` documents."""
    pydantic = _pydantic()
    if pydantic is None:
        return None
    from typing import Annotated

    def after(setting: Setting) -> Callable[[Any], Any]:
        def check(value: Any) -> Any:
            problem = setting.problem(value)
            if problem:
                raise ValueError(problem)
            return value
        return check

    fields = {}
    for attr, s in view.__settings__.items():
        default_value = (pydantic.Field(default_factory=dict, description=s.doc)
                         if isinstance(s.default, dict)
                         else pydantic.Field(default=s.default, description=s.doc))
        fields[attr] = (Annotated[s.type, pydantic.AfterValidator(after(s))], default_value)
    return pydantic.create_model(
        view.__name__, __config__=pydantic.ConfigDict(strict=True, extra="forbid"), **fields)


def _validate_with_pydantic(view: type, model: Any, values: dict[str, Any]) -> None:
    try:
        model.model_validate(values)
    except _pydantic().ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        attr = str(first["loc"][0])
        if first["type"] == "value_error":
            problem = str(first["ctx"]["error"])
        else:  # a type error: pydantic refused it, worded as the stdlib check words it
            expected = _TYPE_ERRORS.get(first["type"], first["msg"])
            problem = (view.__settings__[attr].type_problem(values[attr])
                       or f"{expected}, got {first['input']!r}")
        raise view.error(attr, problem) from None


# --- loading ------------------------------------------------------------------------------------
def load(view: type, raw: Mapping[str, Any], *, unset: tuple = (None,),
         unknown: Optional[str] = "unknown setting", **typed: Any) -> Any:
    """A view from text/JSON values by attribute (`raw`, converted by each setting's parser;
    values in `unset` keep the default) plus already typed values (`typed`, win)."""
    values: dict[str, Any] = {}
    for attr, value in raw.items():
        if attr not in view.__settings__:
            if unknown:
                raise view.error(attr, unknown)
            continue
        if any(value is u or (isinstance(u, str) and value == u) for u in unset):
            continue
        values[attr] = view.parse(attr, value)
    values.update(typed)
    return view(**values)


def env_values(view: type, environ: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """The view's settings found in `environ` (default os.environ), parsed; unset or empty
    variables keep their defaults."""
    environ = os.environ if environ is None else environ
    out = {}
    for attr, setting in view.__settings__.items():
        raw = environ.get(setting.env) if setting.env else None
        if raw not in (None, ""):
            out[attr] = view.parse(attr, raw)
    return out
