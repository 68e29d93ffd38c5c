"""The billing recompute for one UTC day D, as plain Spark DataFrame code (no Glue APIs).

Verdicts are those of common/ivt.py (its docstring is the normative text, `ivt.evaluate` the
reference; tests/glue compares this job with both, click by click). Each rule is written
independently in plain Python in tests/glue/oracle.py (dedup, windows, diagnostics) and
`ivt.evaluate` (the verdicts).

1. Input (`input_partitions`, `lookback_partitions`): the arrival-time partitions that can hold
   D's events - D-1 hr 23 (ingest accepts event times up to 5 min ahead of ingest time, so an
   event of D 00:00 can arrive at D-1 23:55), D's 24 hours, D+1 hr 00..cutoff_hours-1 - with
   every column the rules use (USED_COLUMNS); plus, for impression_repeat only, the LOOKBACK
   partitions before D-1 hr 23 with the columns dedup and the impression election need
   (LOOKBACK_COLUMNS; user_agent and issued_at read as null there). Bound: a click carries an
   impression_id only when ingest verified its token, i.e. ingested in [issued_at - skew,
   issued_at + click_token_max_age_s + skew); two clicks of one impression (one issuance) are
   thus ingested less than max_age + 2 * skew apart, and a D click is ingested at or after
   D 00:00 - max_future_skew; arrival (the partition) is never before ingest. So every click
   of a D click's impression arrived at or after D 00:00 - (max_age + 2 * skew + future skew)
   (`BillingSettings.impression_lookback_ms`, 24 h 15 min by default: D-2 hr 23 .. D-1 hr 22,
   24 partitions). Not covered: an ad server re-signing one impression_id with another
   issued_at later than that, and, as for every rule, clicks arriving after the cutoff (a
   later rerun of D picks them up). A lookback row (arrived before D-1 23:00, so ingested
   before it and with an event time at most 5 min later) is never a click of D: the columns it
   lacks are never billed. Archive files written before impression_id / issued_at existed read
   them as null.
2. Dedup, exhaustive by click_id over everything read: the copy with the earliest ingest_time
   wins; ties by event_time, then by (cost_micros, ad_id, campaign_id, advertiser_id, user_id, ip)
   - every column the result depends on, so two copies that still tie give the same output.
   Nulls sort last (a copy with a known time beats one without). Dedup happens before the day
   filter, so a click whose first copy arrived at D-1 23:59 (or in a lookback hour) is that
   copy, and its later copies in D are duplicates (D-1's run billed it, whatever event time a
   later copy claims). Rows without click_id are dropped.
3. Only clicks whose (first copy's) event_time is in [D 00:00, D+1 00:00) UTC are billed on D;
   earlier clicks with an impression_id only take part in the impression elections.
4. The six rule columns, exactly as ivt.py defines them (a rule off in `ivt_rules` is false):
   bot_ua            user_agent rlike the crawler patterns as ONE java.util.regex (`(?d)` =
                     UNIX_LINES; ivt_inputs.bot_regex), evaluated once per distinct user agent
                     (the alternation of 1,504 patterns costs ~1 ms per string: per click it
                     would dominate the job) and broadcast back as the set of bot user agents.
   impression_repeat row_number() over impression_id by ORDER (event_time, ingest_time,
                     click_id; nulls last) > 1, over D's clicks and the earlier ones (1.).
   too_fast          ingest_time - issued_at < min_click_delay_ms (both known).
   datacenter_ip     the ip's IPv4 integer (Spark expressions reproducing ivt.ipv4_int: Python's
                     strip, strict dotted quad, IPv4-mapped IPv6 in every textual form, scope id;
                     other IPv6 -> null) in a range of datacenter_ipv4.csv: a broadcast hash
                     join on the /16 block with first <= ip <= last as condition (ranges do not
                     overlap: at most one match).
   ip_burst          count over (ip as recorded, floor(event_time / burst_window_ms)), all ads,
                     > burst_threshold flags every click of the bucket; null ip never.
   user_repeat       row_number() over (user_id, ad_id, floor(event_time / repeat window)) by
                     ORDER > 1; null user_id never.
   Group rules are independent: each group's first click is elected among all its clicks,
   flagged ones included, and not replaced when another rule flags it (no promotion).
   verdict = invalid if bot_ua | impression_repeat | too_fast, else suspect if datacenter_ip |
   ip_burst | user_repeat, else valid; reasons = the codes that fired in canonical order,
   comma-joined ('' for valid). Only valid is billable. Nothing is deleted: the flagged detail
   holds every non-valid click with its verdict and reasons.
5. Diagnostics for the reconciliation with the stream (not billed; per click, summed per hour):
   late (first ingested at or after the click's minute start + 60 s + allowed lateness +
   watermark delay: the stream drops it), and the stream's own elections: it elects a group's
   first click by ARRIVAL (ARRIVAL_ORDER = ingest_time, event_time, click_id is the batch's
   stand-in) and forgets an impression `impression_memory_ms` after its clicks. See
   OUTPUT_COLUMNS and glue_jobs/reconcile.py.

6. Budgets (docs/budget.md, "Batch truth"; budgets.py picks each campaign's daily budget of D:
   the version set last before D's end): per campaign, D's billable (valid) clicks in ORDER
   (event_time, ingest_time, click_id) with the running sum of their cost_micros (null: 0); a
   valid click whose running sum, itself included, exceeds its campaign's budget is
   `over_budget`: kept (in the flagged detail, with its IVT verdict `valid`), not billed. Suspect
   and invalid clicks are never over budget and add nothing to the sum; a campaign without a
   budget has no over-budget click. Billed = valid and not over budget: the hourly
   billable_clicks / billable_cost_micros, so a campaign-day's billed cost is at most its budget
   (`campaign_spend`: outputs.CAMPAIGN_SPEND_COLUMNS). The diagnostics (late_billable_clicks,
   the elections) stay the valid clicks': the stream, which they are compared with, is not
   capped. One window partitioned by campaign_id (a fifth hash exchange, only when some
   campaign has a budget for D; the hourly aggregate needs none after it: campaign_id is one of
   its keys); the budgets are one broadcast row per campaign built in the JVM.

Repeat and burst windows divide a minute (ivt.IvtConfig checks), so they never straddle
midnight: D's clicks hold whole groups of those two rules.

Shuffles (hash exchanges of the click rows): four, one per key that cannot be derived from
another - (1) click_id, the dedup window (main and lookback rows: one exchange over their
union); (2) impression_id, the impression election (clicks of D and the earlier clicks with an
impression_id, whose other columns are nulled before it); (3) ip, the burst count (keyed by ip
alone: it cannot share the ad_id exchange any more); (4) ad_id, which satisfies the clustering of
the user_repeat window ((user_id, ad_id, bucket)) and of the hourly aggregate (advertiser,
campaign, ad, hour), so Spark adds no exchange after it. Plus one small one: the distinct user
agents (an aggregate, partial on the map side) for bot_ua; and two broadcasts (the bot user
agents, the /16 range blocks). Null keys (impression_id, ip, user_id) are replaced in the window
keys by the click's own click_id, so they never group and never pile up in one task. Each
window's partition key is led by a 64-bit hash of itself, which only makes the sorts cheap
(Spark sorts on an 8-byte prefix of the first key first); grouping is still by the real columns
(see `tests/glue/test_billing.py::test_plan_shuffles`). The price: one ad's clicks are one task's
work in the last stage, one ip's in the burst stage.
"""
from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

try:  # on Glue `common` is in the --extra-py-files zip; in a checkout it is functions/common
    from common import ivt, schema
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))
    from common import ivt, schema

from glue_jobs.billing import ivt_inputs  # noqa: E402
from glue_jobs.billing.budgets import BudgetVersion  # noqa: E402
from glue_jobs.billing.outputs import CAMPAIGN_SPEND_COLUMNS, names  # noqa: E402

DAY_MS, HOUR_MS, MINUTE_MS = 86_400_000, 3_600_000, 60_000
MAX_LONG = 2 ** 63 - 1

# The archive's columns (common.archive.RAW_COLUMNS; a test keeps them equal) and the subsets
# the job reads: an explicit schema means no footer sampling and column pruning at the scan.
RAW_COLUMNS: list[tuple[str, str]] = [
    ("click_id", "string"), ("ad_id", "string"), ("campaign_id", "string"),
    ("advertiser_id", "string"), ("user_id", "string"), ("event_time", "bigint"),
    ("cost_micros", "bigint"), ("ip", "string"), ("user_agent", "string"), ("referrer", "string"),
    ("ingest_time", "bigint"), ("request_id", "string"), ("source_ip", "string"),
    ("impression_id", "string"), ("issued_at", "bigint"),
]
USED_COLUMNS = ("click_id", "ad_id", "campaign_id", "advertiser_id", "user_id", "event_time",
                "cost_micros", "ip", "user_agent", "ingest_time", "impression_id", "issued_at")
# Dedup order: first arrival, then every column the output depends on (deterministic).
DEDUP_ORDER = ("ingest_time", "event_time", "cost_micros", "ad_id", "campaign_id",
               "advertiser_id", "user_id", "ip")
# The lookback partitions (impression_repeat only): what dedup and the election need.
LOOKBACK_COLUMNS = tuple(c for c in USED_COLUMNS if c in ("click_id", "impression_id", *DEDUP_ORDER))
_SPARK_TYPES = {"string": StringType(), "bigint": LongType()}
READ_SCHEMA = StructType([StructField(n, _SPARK_TYPES[t]) for n, t in RAW_COLUMNS if n in USED_COLUMNS])
LOOKBACK_SCHEMA = StructType([f for f in READ_SCHEMA.fields if f.name in LOOKBACK_COLUMNS])

ORDER = ivt.ORDER  # (event_time, ingest_time, click_id): a group's first click
REPEAT_ORDER = ORDER  # the name common/ivt.py refers to
ARRIVAL_ORDER = ("ingest_time", "event_time", "click_id")  # the stream's election, as the batch sees it
REASONS = ivt.REASONS
INVALID_REASONS = tuple(r for r in REASONS if ivt.TIER[r] == ivt.INVALID)
SUSPECT_REASONS = tuple(r for r in REASONS if ivt.TIER[r] == ivt.SUSPECT)
GROUP_RULES = (ivt.IMPRESSION_REPEAT, ivt.USER_REPEAT)  # elected: the stream elects by arrival

OUTPUT_COLUMNS = (
    "advertiser_id", "campaign_id", "ad_id", "hour", "hour_start_ms",
    # billable = billed: valid and not over budget (module doc, 6.); without budgets = valid
    "clicks", "billable_clicks", "suspect_clicks", "invalid_clicks",
    # per reason code (REASONS' order), the clicks carrying it (a click can carry several):
    "bot_ua_clicks", "impression_repeat_clicks", "too_fast_clicks", "datacenter_ip_clicks",
    "ip_burst_clicks", "user_repeat_clicks",
    "cost_micros", "billable_cost_micros",
    # diagnostics for the reconciliation with the stream (not billed):
    "duplicate_copies",          # archive copies beyond the first, of this row's clicks
    "late_clicks",               # clicks the stream would have dropped as late (any verdict)
    "late_billable_clicks",      # ... of them valid (over budget or not: the stream is not capped)
    "election_gain_clicks",      # not valid, but valid with the stream's arrival-order elections (not late)
    "election_loss_clicks",      # valid, but not with the stream's arrival-order elections (not late)
    "impression_memory_clicks",  # not valid, only an impression repeat by arrival, ingested
                                 # > impression memory after the impression's first arrival
    # budgets (module doc, 6.): valid clicks past their campaign's daily budget, not billed
    # (valid = billable + over_budget; columns are only added at the end: the Glue table)
    "over_budget_clicks", "over_budget_cost_micros",
    "dt",
)
assert OUTPUT_COLUMNS[9:15] == tuple(f"{r}_clicks" for r in REASONS)  # a literal: infra reads it
FLAGGED_COLUMNS = ("click_id", "advertiser_id", "campaign_id", "ad_id", "user_id", "ip",
                   "user_agent", "impression_id", "event_time", "ingest_time", "issued_at",
                   "cost_micros", "hour_start_ms", "verdict", "reasons", "copies", "over_budget", "dt")

# Settings that matter for correctness of reads/writes (field notes, "Batch"). All are SQL
# confs, settable on a running session (Glue's) as well as on a builder.
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


class _Billing(schema.View):
    """The job's settings: the `glue` view of the one schema (common.schema), so the stream's
    shared ones (repeat window, lateness, watermark delay, the IVT rules and thresholds) have the
    stream's defaults and rules, and infra passes the deployed values as `--<name>` arguments
    (StackSettings.glue_arguments). The repeat window must divide a day (the schema's rule for
    this view) and, for ivt.IvtConfig, a minute."""

    def _setting(self, name: str) -> Any:
        """A schema setting by its canonical name: this view's value when the view has it, else
        the schema's default (settings of other components the job derives bounds from)."""
        attr = type(self).attr_of(name)
        return getattr(self, attr) if attr else schema.default(name)

    @property
    def late_after_ms(self) -> int:
        """A click counts as late (diagnostic) when first ingested this long after its minute
        bucket's start or later: the stream drops it once its watermark (newest event time -
        watermark delay) has passed minute end + allowed lateness; the click's own ingest time
        stands in for the newest event time at its arrival."""
        return MINUTE_MS + (self.allowed_lateness_s + self.watermark_delay_s) * 1000

    @property
    def impression_lookback_ms(self) -> int:
        """How long before D 00:00 a click of a D click's impression can have arrived (module
        doc, 1.): click_token_max_age_s + 2 * click_token_clock_skew_s + max_future_skew_s.
        Those are ingest's settings, given to this job as arguments too (their Glue names in
        common.schema), so the deployed values apply."""
        return 1000 * (self._setting("click_token_max_age_s")
                       + 2 * self._setting("click_token_clock_skew_s")
                       + self._setting("max_future_skew_s"))

    @property
    def impression_memory_ms(self) -> int:
        """The stream's memory of an impression after its last click (flink_dedup_ttl_s, the
        Flink job's state TTL for click_ids and IVT groups; an argument of this job too): a
        bound of the reconciliation's diagnostics only, never of a verdict."""
        return 1000 * self._setting("flink_dedup_ttl_s")

    @property
    def attribution_window_ms(self) -> int:
        """Last-click attribution: a conversion counts for its click when it occurred at most
        this long after it (events.py, 3.)."""
        return 1000 * self.attribution_window_s

    @property
    def attribution_lookback_ms(self) -> int:
        """How long before D 00:00 the click of a D conversion can have arrived: the window +
        max_future_skew_s (an event time up to that far ahead of its ingest, so of its arrival)."""
        return self.attribution_window_ms + 1000 * self._setting("max_future_skew_s")

    def ivt_config(self) -> ivt.IvtConfig:
        return ivt.IvtConfig.from_settings(self)

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> "BillingSettings":
        """From job arguments by name (text; absent, None or "" keep the default); other
        arguments are ignored. A bad value raises SettingsError naming `--<name>`."""
        return schema.load(cls, {k: v for k, v in args.items() if k in cls.__settings__},
                           unset=(None, ""))


BillingSettings = schema.make_view("BillingSettings", schema.GLUE, _Billing, module=__name__)


def day_bounds_ms(day: date) -> tuple[int, int]:
    start = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)
    return start, start + DAY_MS


def _hour_paths(root: str, first: datetime, n: int) -> list[str]:
    return [f"{root}/dt={h:%Y-%m-%d}/hr={h:%H}" for h in (first + timedelta(hours=i) for i in range(n))]


def input_partitions(raw_path: str, day: date, cutoff_hours: int = 2) -> list[str]:
    """The arrival partitions (dt, hr) that can hold day's events, as paths under raw_path
    (the table root, e.g. s3://bucket/raw/clicks): D-1 hr 23, D hr 00-23, D+1 hr 00..cutoff-1."""
    first = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - timedelta(hours=1)
    return _hour_paths(raw_path.rstrip("/"), first, 1 + 24 + cutoff_hours)


def lookback_partitions(raw_path: str, day: date, lookback_ms: int) -> list[str]:
    """The arrival partitions before input_partitions' first (D-1 hr 23) that can hold an
    earlier click of a D click's impression: from the hour of D 00:00 - lookback_ms on."""
    start, _ = day_bounds_ms(day)
    first_ms = (start - lookback_ms) // HOUR_MS * HOUR_MS
    first = datetime.fromtimestamp(first_ms / 1000, tz=timezone.utc)
    return _hour_paths(raw_path.rstrip("/"), first, max(0, (start - HOUR_MS - first_ms) // HOUR_MS))


def with_lookback_columns(lookback: DataFrame) -> DataFrame:
    """Lookback rows (LOOKBACK_COLUMNS) in READ_SCHEMA's shape, the columns not read as null."""
    return lookback.select(*[F.col(f.name) if f.name in LOOKBACK_COLUMNS
                             else F.lit(None).cast(f.dataType).alias(f.name)
                             for f in READ_SCHEMA.fields])


def _ordered(cols) -> list:
    return [F.col(c).asc_nulls_last() for c in cols]


def _whole(window):
    return window.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)


def dedup_first_arrival(raw: DataFrame) -> DataFrame:
    """One row per click_id (its first arrival) with `copies` = rows read for that click_id."""
    # xxhash64(click_id) leads the partition key only to speed up the sort: Spark compares an
    # 8-byte prefix of the first sort key, and ids sharing a prefix ("clk-...") defeat it.
    first = Window.partitionBy("_h", "click_id").orderBy(*_ordered(DEDUP_ORDER))
    return (raw.select(*USED_COLUMNS)
            .where(F.col("click_id").isNotNull())
            .withColumn("_h", F.xxhash64("click_id"))
            .withColumn("_rn", F.row_number().over(first))
            .withColumn("copies", F.count(F.lit(1)).over(_whole(first)))  # same spec: same sort
            .where(F.col("_rn") == 1)
            .drop("_rn", "_h"))


def with_ipv4_number(df: DataFrame, ip: str, out: str) -> DataFrame:
    """df + column `out` = ivt.ipv4_int(ip) as a Spark expression (bigint, null when the string
    is not an IPv4 address). The stripped string and the dotted quad are columns of their own:
    each regex runs once per row (Spark does not inline a costly expression used twice)."""
    s, quad = F.col("_ip_s"), F.col("_ip_quad")
    octets = F.split(quad, r"\.")
    tail = F.split(F.regexp_extract(s, ivt_inputs.HEX_TAIL_REGEX, 1), ":")

    def hextet(i: int) -> F.Column:
        part = tail.getItem(i)
        return F.when(part == "", F.lit(0)).otherwise(F.conv(part, 16, 10).cast("long"))
    return (df.withColumn("_ip_s", F.regexp_replace(F.col(ip), ivt_inputs.strip_regex(), ""))
            .withColumn("_ip_quad", F.when(s.rlike(ivt_inputs.ipv4_regex()), s)
                        .when(s.rlike(ivt_inputs.mapped_quad_regex()),
                              F.regexp_extract(s, ivt_inputs.QUAD_TAIL_REGEX, 1)))
            .withColumn(out, F.when(quad.isNotNull(),
                                    sum(octets.getItem(i).cast("long") * (1 << (8 * (3 - i))) for i in range(4)))
                        .when(s.rlike(ivt_inputs.mapped_hex_regex()), hextet(0) * 65_536 + hextet(1)))
            .drop("_ip_s", "_ip_quad"))


def _bot_user_agents(raw: DataFrame, regex: str) -> DataFrame:
    """The distinct user agents of the input that match: one rlike per distinct string. Spark
    pushes a filter on grouping keys below the aggregate (back to one rlike per row, at the
    scan); a condition that also reads the aggregate's count (always > 0) stays above it."""
    ua, n = F.col("_bot_ua"), F.col("_n")
    return (raw.where(F.col("user_agent").isNotNull())
            .groupBy(F.col("user_agent").alias("_bot_ua")).agg(F.count(F.lit(1)).alias("_n"))
            .where(F.when(n > 0, ua.rlike(regex))).select("_bot_ua"))


def _datacenter_blocks(spark) -> DataFrame:
    """ivt_inputs.datacenter_blocks() as a DataFrame built in the JVM (three literal arrays
    zipped; no Python RDD, so no Python worker process on the executors)."""
    rows = ivt_inputs.datacenter_blocks()
    arrays = [F.split(F.lit(",".join(str(r[i]) for r in rows)), ",").cast("array<bigint>").alias(name)
              for i, name in enumerate(("_dc_block", "_dc_first", "_dc_last"))]
    return spark.range(1).select(F.inline(F.arrays_zip(*arrays)))


def flag_clicks(raw: DataFrame, day: date, settings: BillingSettings = BillingSettings(),
                budgets: Mapping[str, BudgetVersion] | None = None) -> DataFrame:
    """Every deduplicated click of `day` with its rule columns (REASONS, booleans), verdict,
    reasons, late and the reconciliation diagnostics, hour_start_ms, copies, over_budget.
    `raw`: the rows read (read_raw: D's input partitions, and the lookback ones with
    LOOKBACK_COLUMNS); `budgets`: campaign_id -> the budget in force on `day`
    (budgets.budgets_for_day; None or empty: no campaign has one)."""
    cfg = settings.ivt_config()
    on = cfg.rules
    start, end = day_bounds_ms(day)
    et, ingest, cid = F.col("event_time"), F.col("ingest_time"), F.col("click_id")
    arrival = F.struct(*[F.coalesce(F.col(c), F.lit(MAX_LONG)) if c != "click_id" else cid
                         for c in ARRIVAL_ORDER])  # nulls last, as ORDER
    in_day = (et >= start) & (et < end)

    # 1. dedup (exchange 1: click_id); D's clicks and the earlier clicks of impressions
    clicks = (dedup_first_arrival(raw)
              .where(in_day | ((et < start) & F.col("impression_id").isNotNull()))
              .withColumn("_in_day", in_day))
    keep = ("click_id", "event_time", "ingest_time", "impression_id", "_in_day")
    clicks = clicks.select(*[F.col(c) if c in keep else F.when(F.col("_in_day"), F.col(c)).alias(c)
                             for c in clicks.columns])  # the earlier clicks: election fields only

    # 2. impression_repeat (exchange 2: impression_id), then D's clicks only
    imp = F.col("impression_id")
    if ivt.IMPRESSION_REPEAT in on:
        clicks = (clicks.withColumn("_ik", F.when(imp.isNull(), cid))  # null: its own group
                  .withColumn("_hi", F.xxhash64("impression_id", "_ik")))
        w_imp = Window.partitionBy("_hi", "impression_id", "_ik").orderBy(*_ordered(ORDER))
        clicks = (clicks
                  .withColumn(ivt.IMPRESSION_REPEAT, imp.isNotNull() & (F.row_number().over(w_imp) > 1))
                  .withColumn("_arr_impression_repeat",
                              imp.isNotNull() & (arrival != F.min(arrival).over(_whole(w_imp))))
                  .withColumn("_imp_first_ingest", F.min(ingest).over(_whole(w_imp)))
                  .drop("_ik", "_hi"))
    else:
        clicks = (clicks.withColumn(ivt.IMPRESSION_REPEAT, F.lit(False))
                  .withColumn("_arr_impression_repeat", F.lit(False))
                  .withColumn("_imp_first_ingest", F.lit(None).cast("long")))
    clicks = clicks.where(F.col("_in_day")).drop("_in_day")

    # 3. the per-click rules (no exchange: a broadcast each for bot_ua and datacenter_ip)
    spark = raw.sparkSession
    if ivt.BOT_UA in on:
        bots = F.broadcast(_bot_user_agents(raw, ivt_inputs.bot_regex()))
        clicks = (clicks.join(bots, F.col("user_agent") == F.col("_bot_ua"), "left")
                  .withColumn(ivt.BOT_UA, F.col("_bot_ua").isNotNull()).drop("_bot_ua"))
    else:
        clicks = clicks.withColumn(ivt.BOT_UA, F.lit(False))
    if ivt.DATACENTER_IP in on:
        blocks = F.broadcast(_datacenter_blocks(spark))
        n = F.col("_ip4")
        clicks = (with_ipv4_number(clicks, "ip", "_ip4")
                  .withColumn("_block", F.shiftright(n, ivt_inputs.BLOCK_BITS))
                  .join(blocks, (F.col("_block") == F.col("_dc_block"))
                        & (n >= F.col("_dc_first")) & (n <= F.col("_dc_last")), "left")
                  .withColumn(ivt.DATACENTER_IP, F.col("_dc_first").isNotNull())
                  .drop("_ip4", "_block", "_dc_block", "_dc_first", "_dc_last"))
    else:
        clicks = clicks.withColumn(ivt.DATACENTER_IP, F.lit(False))
    issued = F.col("issued_at")
    clicks = clicks.withColumn(ivt.TOO_FAST, F.lit(ivt.TOO_FAST in on) & issued.isNotNull()
                               & ingest.isNotNull() & (ingest - issued < cfg.min_click_delay_ms))

    # 4. ip_burst (exchange 3: ip)
    ip = F.col("ip")
    if ivt.IP_BURST in on:
        clicks = (clicks.withColumn("_bb", et - F.pmod(et, F.lit(cfg.burst_window_ms)))
                  .withColumn("_pk", F.when(ip.isNull(), cid))  # null ip: never a burst
                  .withColumn("_hb", F.xxhash64("ip", "_bb", "_pk")))
        w_ip = Window.partitionBy("_hb", "ip", "_bb", "_pk")
        clicks = (clicks.withColumn(ivt.IP_BURST, ip.isNotNull()
                                    & (F.count(F.lit(1)).over(w_ip) > cfg.burst_threshold))
                  .drop("_bb", "_pk", "_hb"))
    else:
        clicks = clicks.withColumn(ivt.IP_BURST, F.lit(False))

    # 5. user_repeat and the hourly aggregate (exchange 4: ad_id)
    clicks = clicks.repartition("ad_id").withColumn("hour_start_ms", et - F.pmod(et, F.lit(HOUR_MS)))
    user = F.col("user_id")
    if ivt.USER_REPEAT in on:
        clicks = (clicks.withColumn("_rb", et - F.pmod(et, F.lit(cfg.user_repeat_window_ms)))
                  .withColumn("_uk", F.when(user.isNull(), cid))  # null user: never a repeat
                  .withColumn("_hr", F.xxhash64("user_id", "ad_id", "_rb", "_uk")))
        w_user = Window.partitionBy("_hr", "user_id", "ad_id", "_rb", "_uk").orderBy(*_ordered(ORDER))
        clicks = (clicks
                  .withColumn(ivt.USER_REPEAT, user.isNotNull() & (F.row_number().over(w_user) > 1))
                  .withColumn("_arr_user_repeat",
                              user.isNotNull() & (arrival != F.min(arrival).over(_whole(w_user))))
                  .drop("_rb", "_uk", "_hr"))
    else:
        clicks = (clicks.withColumn(ivt.USER_REPEAT, F.lit(False))
                  .withColumn("_arr_user_repeat", F.lit(False)))

    # verdict, reasons; the same with the stream's arrival-order elections (diagnostics)
    def verdict_of(flag) -> F.Column:
        return (F.when(F.greatest(*[flag(r) for r in INVALID_REASONS]), F.lit(ivt.INVALID))
                .when(F.greatest(*[flag(r) for r in SUSPECT_REASONS]), F.lit(ivt.SUSPECT))
                .otherwise(F.lit(ivt.VALID)))

    def by_arrival(r: str) -> F.Column:
        return F.col(f"_arr_{r}") if r in GROUP_RULES else F.col(r)
    late = F.coalesce(ingest >= et - F.pmod(et, F.lit(MINUTE_MS)) + F.lit(settings.late_after_ms),
                      F.lit(False))
    valid = F.col("verdict") == ivt.VALID
    arrival_valid = F.col("_arrival_verdict") == ivt.VALID
    only_impression = by_arrival(ivt.IMPRESSION_REPEAT) & ~F.greatest(
        *[by_arrival(r) for r in REASONS if r != ivt.IMPRESSION_REPEAT])
    return with_over_budget(clicks
            .withColumn("verdict", verdict_of(F.col))
            .withColumn("reasons", F.concat_ws(",", *[F.when(F.col(r), F.lit(r)) for r in REASONS]))
            .withColumn("late", late)
            .withColumn("_arrival_verdict", verdict_of(by_arrival))
            .withColumn("election_gain", ~valid & arrival_valid & ~F.col("late"))
            .withColumn("election_loss", valid & ~arrival_valid & ~F.col("late"))
            .withColumn("impression_memory", ~valid & ~F.col("late") & only_impression
                        & (ingest - F.col("_imp_first_ingest") > settings.impression_memory_ms))
            .drop("_arrival_verdict", "_arr_impression_repeat", "_arr_user_repeat",
                  "_imp_first_ingest"), budgets)


BUDGET_SCHEMA = "array<struct<campaign_id:string,budget_micros:bigint,budget_revision:bigint>>"


def budget_frame(spark, budgets: Mapping[str, BudgetVersion]) -> DataFrame:
    """campaign_id, budget_micros, budget_revision: one row per campaign with a budget, built in
    the JVM from one JSON literal (no Python RDD, so no Python worker on the executors)."""
    rows = [{"campaign_id": c, "budget_micros": v.daily_micros, "budget_revision": v.revision}
            for c, v in sorted(budgets.items())]
    return spark.range(1).select(F.inline(F.from_json(F.lit(json.dumps(rows)), BUDGET_SCHEMA)))


def with_over_budget(clicks: DataFrame, budgets: Mapping[str, BudgetVersion] | None) -> DataFrame:
    """clicks (with verdict) + `over_budget` (module doc, 6.): a running sum over each
    campaign's clicks in ORDER of the valid ones' cost, against the campaign's budget. Without
    any budget: false everywhere, and no window (the plan stays the IVT job's)."""
    if not budgets:
        return clicks.withColumn("over_budget", F.lit(False))
    valid = F.col("verdict") == ivt.VALID
    running = (Window.partitionBy("campaign_id").orderBy(*_ordered(ORDER))
               .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    spent = F.sum(F.when(valid, F.coalesce(F.col("cost_micros"), F.lit(0))).otherwise(F.lit(0))).over(running)
    caps = F.broadcast(budget_frame(clicks.sparkSession, budgets)
                       .select(F.col("campaign_id").alias("_budget_campaign"),
                               F.col("budget_micros").alias("_budget")))
    return (clicks.join(caps, F.col("campaign_id") == F.col("_budget_campaign"), "left")
            .withColumn("over_budget", valid & F.col("_budget").isNotNull() & (spent > F.col("_budget")))
            .drop("_budget_campaign", "_budget"))


def _count_if(cond) -> F.Column:
    return F.sum(F.when(cond, F.lit(1)).otherwise(F.lit(0))).cast("long")


def _sum_cost_if(cond) -> F.Column:
    return F.coalesce(F.sum(F.when(cond, F.col("cost_micros"))), F.lit(0)).cast("long")


def aggregate_hourly(flagged: DataFrame, day: date) -> DataFrame:
    verdict, valid = F.col("verdict"), F.col("verdict") == ivt.VALID
    over = F.col("over_budget")
    billed = valid & ~over
    return (flagged.groupBy("advertiser_id", "campaign_id", "ad_id", "hour_start_ms")
            .agg(F.count(F.lit(1)).alias("clicks"),
                 _count_if(billed).alias("billable_clicks"),
                 _count_if(verdict == ivt.SUSPECT).alias("suspect_clicks"),
                 _count_if(verdict == ivt.INVALID).alias("invalid_clicks"),
                 *[_count_if(F.col(r)).alias(f"{r}_clicks") for r in REASONS],
                 F.coalesce(F.sum("cost_micros"), F.lit(0)).cast("long").alias("cost_micros"),
                 _sum_cost_if(billed).alias("billable_cost_micros"),
                 F.sum(F.col("copies") - 1).cast("long").alias("duplicate_copies"),
                 _count_if(F.col("late")).alias("late_clicks"),
                 _count_if(valid & F.col("late")).alias("late_billable_clicks"),
                 _count_if(F.col("election_gain")).alias("election_gain_clicks"),
                 _count_if(F.col("election_loss")).alias("election_loss_clicks"),
                 _count_if(F.col("impression_memory")).alias("impression_memory_clicks"),
                 _count_if(over).alias("over_budget_clicks"),
                 _sum_cost_if(over).alias("over_budget_cost_micros"))
            .withColumn("hour", F.expr("timestamp_millis(hour_start_ms)"))
            .withColumn("dt", F.lit(day.isoformat()))
            .select(*OUTPUT_COLUMNS))


def flagged_detail(flagged: DataFrame, day: date) -> DataFrame:
    """Every click not billed, kept for audit and disputes: not valid (suspect / invalid, with
    its verdict and reasons) or over budget (verdict valid, reasons '', over_budget true)."""
    return (flagged.where((F.col("verdict") != ivt.VALID) | F.col("over_budget"))
            .withColumn("dt", F.lit(day.isoformat()))
            .select(*FLAGGED_COLUMNS))


def campaign_spend(hourly: DataFrame, day: date,
                   budgets: Mapping[str, BudgetVersion] | None = None) -> DataFrame:
    """Per (campaign, advertiser) of D: outputs.CAMPAIGN_SPEND_COLUMNS, summed from D's hourly
    rows (valid = billable + over_budget) with the campaign's budget of D (null: none). A
    campaign's clicks normally name one advertiser; if they name several, each has a row and
    the campaign's budget caps their sum (one running sum per campaign)."""
    n = lambda c: F.coalesce(F.sum(c), F.lit(0)).cast("long")  # noqa: E731
    rows = (hourly.groupBy("campaign_id", "advertiser_id")
            .agg(n(F.col("billable_clicks") + F.col("over_budget_clicks")).alias("valid_clicks"),
                 n(F.col("billable_cost_micros") + F.col("over_budget_cost_micros")).alias("valid_cost_micros"),
                 n(F.col("billable_clicks")).alias("billed_clicks"),
                 n(F.col("billable_cost_micros")).alias("billed_cost_micros"),
                 n(F.col("over_budget_clicks")).alias("over_budget_clicks"),
                 n(F.col("over_budget_cost_micros")).alias("over_budget_cost_micros")))
    if budgets:
        caps = F.broadcast(budget_frame(hourly.sparkSession, budgets)
                           .withColumnRenamed("campaign_id", "_budget_campaign"))
        rows = rows.join(caps, F.col("campaign_id") == F.col("_budget_campaign"), "left")
    else:
        rows = (rows.withColumn("budget_micros", F.lit(None).cast("long"))
                .withColumn("budget_revision", F.lit(None).cast("long")))
    return (rows.withColumn("day", F.lit(day.isoformat())).withColumn("dt", F.lit(day.isoformat()))
            .select(*names(CAMPAIGN_SPEND_COLUMNS), "dt"))


def transform(raw: DataFrame, day: date, settings: BillingSettings = BillingSettings(),
              budgets: Mapping[str, BudgetVersion] | None = None) -> DataFrame:
    """Raw archive rows (read_raw's: D's input partitions + the lookback) -> D's hourly rows."""
    return aggregate_hourly(flag_clicks(raw, day, settings, budgets), day)
