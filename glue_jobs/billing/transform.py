"""The billing recompute for one UTC day D, as plain Spark DataFrame code (no Glue APIs).

Rules (each one is also written, independently, in plain Python in tests/glue/oracle.py):

1. Input: the arrival-time partitions that can hold D's events (see `input_partitions`): D-1 hr 23
   (ingest accepts event times up to 5 min ahead of ingest time, so an event of D 00:00 can arrive
   at D-1 23:55), D's 24 hours, and D+1 hr 00..cutoff_hours-1. A click arriving later than that
   cutoff is not in this run (a later rerun of D picks it up).
2. Dedup, exhaustive by click_id over everything read: the copy with the earliest ingest_time
   wins; ties by event_time, then by (cost_micros, ad_id, campaign_id, advertiser_id, user_id, ip)
   - every column the result depends on, so two copies that still tie give the same output.
   Nulls sort last (a copy with a known time beats one without). Dedup happens before the day
   filter, so a click whose first copy arrived at D-1 23:59 is that copy, and its later copies
   in D are duplicates.
3. Only clicks whose (first copy's) event_time is in [D 00:00, D+1 00:00) UTC are billed on D.
4. Repeat rule (same as the stream): per (user_id, ad_id, floor(event_time / W)) with
   W = repeat_window_s * 1000 ms, buckets aligned to the epoch, the earliest click by
   (event_time, ingest_time, click_id) is the repeat winner; the others are `repeat`.
   So t = 9.999 s is a repeat of t = 0 s, t = 10.000 s starts a new bucket and is billable.
5. IP burst (the stream does not have it): per (ip, ad_id, floor(event_time / 1000 ms)) - fixed
   one-second buckets aligned to the epoch, not a sliding window - if the bucket holds more than
   `burst_threshold` deduplicated clicks of D, every click in it is `ip_burst`. Exactly N clicks
   is not a burst, N+1 is. Clicks with a null ip never form a burst.
6. Precedence: `ip_burst` wins over `repeat`. A click is counted under exactly one of
   billable / repeat / ip_burst, so clicks = billable_clicks + repeat_clicks + ip_burst_clicks.
   The repeat winner is elected among all clicks of its bucket (burst ones included, exactly as
   the stream does); a burst-flagged winner is not billed and no other click of that repeat
   bucket is promoted in its place.
Flagged clicks are kept (detail rows with a reason), never deleted.

W must divide one day (86_400 s): then repeat buckets, one-second burst buckets and hours never
straddle midnight, so evaluating the rules on D's clicks alone is exact.

Shuffles: two. One by click_id (dedup window); one by ad_id, which satisfies the clustering of
both rule windows ((user_id, ad_id, bucket) and (ip, ad_id, second)) and of the hourly
aggregate (advertiser, campaign, ad, hour), so Spark adds no exchange after it. Each window's
partition key is led by a 64-bit hash of itself, which only makes the sorts cheap (Spark sorts
on an 8-byte prefix of the first key first); grouping is still by the real columns (see
`tests/glue/test_billing.py::test_plan_has_two_shuffles`). The price: one ad's clicks are one
task's work; the hottest ad bounds the stage time.
"""
from __future__ import annotations

import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

DAY_MS, HOUR_MS, MINUTE_MS, BURST_WINDOW_MS = 86_400_000, 3_600_000, 60_000, 1_000

# The archive's columns (common.archive.RAW_COLUMNS; a test keeps them equal) and the subset
# the job reads: an explicit schema means no footer sampling and column pruning at the scan.
RAW_COLUMNS: list[tuple[str, str]] = [
    ("click_id", "string"), ("ad_id", "string"), ("campaign_id", "string"),
    ("advertiser_id", "string"), ("user_id", "string"), ("event_time", "bigint"),
    ("cost_micros", "bigint"), ("ip", "string"), ("user_agent", "string"), ("referrer", "string"),
    ("ingest_time", "bigint"), ("request_id", "string"), ("source_ip", "string"),
    ("impression_id", "string"), ("issued_at", "bigint"),
]
USED_COLUMNS = ("click_id", "ad_id", "campaign_id", "advertiser_id", "user_id", "ip",
                "event_time", "ingest_time", "cost_micros")
_SPARK_TYPES = {"string": StringType(), "bigint": LongType()}
READ_SCHEMA = StructType([StructField(n, _SPARK_TYPES[t]) for n, t in RAW_COLUMNS if n in USED_COLUMNS])

# Dedup order: first arrival, then every column the output depends on (deterministic).
DEDUP_ORDER = ("ingest_time", "event_time", "cost_micros", "ad_id", "campaign_id",
               "advertiser_id", "user_id", "ip")
REPEAT_ORDER = ("event_time", "ingest_time", "click_id")

REPEAT, IP_BURST = "repeat", "ip_burst"

OUTPUT_COLUMNS = (
    "advertiser_id", "campaign_id", "ad_id", "hour", "hour_start_ms",
    "clicks", "billable_clicks", "repeat_clicks", "ip_burst_clicks",
    "cost_micros", "billable_cost_micros",
    # diagnostics for the reconciliation with the stream (not billed):
    "duplicate_copies",              # archive copies beyond the first, of this row's clicks
    "late_billable_clicks",          # billable clicks the stream would have dropped as late
    "ip_burst_stream_billable_clicks",  # ip_burst clicks the stream bills (repeat winners, not late)
    "dt",
)
FLAGGED_COLUMNS = ("click_id", "advertiser_id", "campaign_id", "ad_id", "user_id", "ip",
                   "event_time", "ingest_time", "cost_micros", "hour_start_ms", "reason",
                   "repeat_winner", "copies", "dt")

# Settings that matter for correctness of reads/writes (field notes, "Batch"). All are SQL
# confs, settable on a running session (Glue's) as well as on a builder.
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


try:  # on Glue `common` is in the --extra-py-files zip; in a checkout it is functions/common
    from common import schema
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))
    from common import schema


class _Billing(schema.View):
    """The job's settings: the `glue` view of the one schema (common.schema), so the stream's
    shared ones (repeat window, lateness, watermark delay) have the stream's defaults and rules,
    and infra passes the deployed values as `--<name>` arguments (StackSettings.glue_arguments).
    The repeat window must divide a day (the stream's rule, dividing 60, is stricter)."""

    @property
    def late_after_ms(self) -> int:
        """A click counts as late (diagnostic) when first ingested this long after its minute
        bucket's start or later: the stream drops it once its watermark (newest event time -
        watermark delay) has passed minute end + allowed lateness; the click's own ingest time
        stands in for the newest event time at its arrival."""
        return MINUTE_MS + (self.allowed_lateness_s + self.watermark_delay_s) * 1000

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


def input_partitions(raw_path: str, day: date, cutoff_hours: int = 2) -> list[str]:
    """The arrival partitions (dt, hr) that can hold day's events, as paths under raw_path
    (the table root, e.g. s3://bucket/raw/clicks): D-1 hr 23, D hr 00-23, D+1 hr 00..cutoff-1."""
    root = raw_path.rstrip("/")
    first = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - timedelta(hours=1)
    hours = [first + timedelta(hours=i) for i in range(1 + 24 + cutoff_hours)]
    return [f"{root}/dt={h:%Y-%m-%d}/hr={h:%H}" for h in hours]


def _ordered(cols) -> list:
    return [F.col(c).asc_nulls_last() for c in cols]


def dedup_first_arrival(raw: DataFrame) -> DataFrame:
    """One row per click_id (its first arrival) with `copies` = rows read for that click_id."""
    # xxhash64(click_id) leads the partition key only to speed up the sort: Spark compares an
    # 8-byte prefix of the first sort key, and ids sharing a prefix ("clk-...") defeat it.
    first = Window.partitionBy("_h", "click_id").orderBy(*_ordered(DEDUP_ORDER))
    whole = first.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    return (raw.select(*USED_COLUMNS)
            .withColumn("_h", F.xxhash64("click_id"))
            .withColumn("_rn", F.row_number().over(first))
            .withColumn("copies", F.count(F.lit(1)).over(whole))  # same spec: same sort
            .where(F.col("_rn") == 1)
            .drop("_rn", "_h"))


def flag_clicks(raw: DataFrame, day: date, settings: BillingSettings = BillingSettings()) -> DataFrame:
    """Every deduplicated click of `day` with its flags: repeat_winner, reason (null = billable,
    'repeat', 'ip_burst'), billable, late (diagnostic), hour_start_ms, copies."""
    start, end = day_bounds_ms(day)
    window_ms = settings.repeat_window_s * 1000
    et = F.col("event_time")
    clicks = (dedup_first_arrival(raw)
              .where((et >= start) & (et < end))
              # the one shuffle after dedup: both rule windows and the aggregate cluster by ad_id
              .repartition("ad_id")
              .withColumn("_rb", et - F.pmod(et, F.lit(window_ms)))
              .withColumn("_sec", et - F.pmod(et, F.lit(BURST_WINDOW_MS)))
              .withColumn("hour_start_ms", et - F.pmod(et, F.lit(HOUR_MS)))
              # hash prefixes for the sorts, as in dedup_first_arrival (the keys follow them)
              .withColumn("_hr", F.xxhash64("user_id", "ad_id", "_rb"))
              .withColumn("_hb", F.xxhash64("ip", "ad_id", "_sec")))
    repeat_w = Window.partitionBy("_hr", "user_id", "ad_id", "_rb").orderBy(*_ordered(REPEAT_ORDER))
    burst_w = Window.partitionBy("_hb", "ip", "ad_id", "_sec")
    winner = F.row_number().over(repeat_w) == 1
    burst = F.col("ip").isNotNull() & (F.count(F.lit(1)).over(burst_w) > settings.burst_threshold)
    return (clicks
            .withColumn("repeat_winner", winner)
            .withColumn("_burst", burst)
            .withColumn("reason", F.when(F.col("_burst"), F.lit(IP_BURST))
                        .when(~F.col("repeat_winner"), F.lit(REPEAT)))
            .withColumn("billable", F.col("reason").isNull())
            .withColumn("late", F.col("ingest_time") >= et - F.pmod(et, F.lit(MINUTE_MS))
                        + F.lit(settings.late_after_ms))
            .drop("_rb", "_sec", "_hr", "_hb", "_burst"))


def _count_if(cond) -> F.Column:
    return F.sum(F.when(cond, F.lit(1)).otherwise(F.lit(0))).cast("long")


def aggregate_hourly(flagged: DataFrame, day: date) -> DataFrame:
    reason, billable = F.col("reason"), F.col("billable")
    return (flagged.groupBy("advertiser_id", "campaign_id", "ad_id", "hour_start_ms")
            .agg(F.count(F.lit(1)).alias("clicks"),
                 _count_if(billable).alias("billable_clicks"),
                 _count_if(reason == REPEAT).alias("repeat_clicks"),
                 _count_if(reason == IP_BURST).alias("ip_burst_clicks"),
                 F.coalesce(F.sum("cost_micros"), F.lit(0)).cast("long").alias("cost_micros"),
                 F.coalesce(F.sum(F.when(billable, F.col("cost_micros"))), F.lit(0)).cast("long")
                 .alias("billable_cost_micros"),
                 F.sum(F.col("copies") - 1).cast("long").alias("duplicate_copies"),
                 _count_if(billable & F.col("late")).alias("late_billable_clicks"),
                 _count_if((reason == IP_BURST) & F.col("repeat_winner") & ~F.col("late"))
                 .alias("ip_burst_stream_billable_clicks"))
            .withColumn("hour", F.expr("timestamp_millis(hour_start_ms)"))
            .withColumn("dt", F.lit(day.isoformat()))
            .select(*OUTPUT_COLUMNS))


def flagged_detail(flagged: DataFrame, day: date) -> DataFrame:
    """The flagged clicks (repeat / ip_burst), kept for audit and disputes."""
    return (flagged.where(F.col("reason").isNotNull())
            .withColumn("dt", F.lit(day.isoformat()))
            .select(*FLAGGED_COLUMNS))


def transform(raw: DataFrame, day: date, settings: BillingSettings = BillingSettings()) -> DataFrame:
    """Raw archive rows (any superset of D's input partitions) -> D's hourly billing rows."""
    return aggregate_hourly(flag_clicks(raw, day, settings), day)
