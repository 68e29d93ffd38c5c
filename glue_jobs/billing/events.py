"""Impressions and conversions of one UTC day D in the nightly billing (issue 19; docs/events.md,
"Billing and attribution"), as plain Spark DataFrame code. tests/glue/events_oracle.py writes
each rule again in plain Python; bench/billing.py once more in DuckDB SQL.

1. Input: the events archive's arrival partitions that can hold D's events, the clicks' input
   window (transform.input_partitions: D-1 hr 23 .. D+1 hr cutoff-1), every type in one table
   (EVENTS_USED_COLUMNS).
2. Dedup, exhaustive over what is read, before the day filter (as for clicks): an impression
   once per impression_id (event_id), a conversion once per conversion_id; the copy with the
   earliest ingest_time wins, ties by the columns the outputs depend on (IMPRESSION_ORDER,
   CONVERSION_ORDER; nulls last). `copies` = rows read. Impressions need no claim at ingest: this
   is where every resend is dropped; a conversion resent after the ingest claim's 24 h is
   dropped here too (if it arrived inside the window). D's events: first copy's event_time
   (served at | occurred_at) in [D, D+1). Impressions without an ad are not counted (as the
   stream).
3. Attribution (last click: the click the conversion names). The conversion's click is the
   click with its click_id; a conversion without click_id names its token's impression, whose
   click is the impression's first click by ivt.ORDER (event_time, ingest_time, click_id: the one
   the billing bills for the impression, impression_repeat flags the others). Clicks are looked
   up in the clicks archive: arrival partitions from the hour of D 00:00 - attribution_window_s
   - max_future_skew_s (a click of the window arrived at most that skew before its event time)
   up to D's cutoff (`attribution_partitions`; D's own input partitions among them),
   deduplicated by click_id as transform.dedup_first_arrival does (DEDUP_ORDER), event_time in
   [D 00:00 - window, D+1 00:00). A click's verdict is the one its day's billing run wrote, D's
   included (this run writes D's before it attributes): a click of day X is `valid` unless
   billing/flagged/dt=X lists it, provided X was billed (billing/hourly/dt=X exists) and the
   click reached X's run (its first arrival before X+1 cutoff_hours). Otherwise its verdict is
   unknown (null). One rule for every day, and the attribution never carries the IVT rules'
   plan (it reads their result), so the flagged detail is always written with events.
   Only the clicks the day's conversions reference are kept (broadcast joins on the
   conversions' click_ids and impression_ids, before any shuffle of the clicks).
   `attribution`, the first that applies:
     unknown_click     no such click (never archived, arrived after D's cutoff, or older than
                       the look-back: it would be outside the window anyway)
     outside_window    occurred_at - click event_time not in [0, attribution_window_s]
     unverified_click  the click's verdict is unknown (its day not billed yet, or the click
                       reached the archive after its day's cutoff): rerun that day, then D
     invalid_click     the click's verdict is not valid (suspect or invalid: not billable)
     attributed        otherwise: counted in attributed_conversions / attributed_value_micros
   Nothing is deleted: billing_conversions holds every conversion with its attribution.
   Ad, campaign and advertiser: the record's (the token's); a conversion that named only a
   click_id takes its click's (none when the click is unknown: no hourly row).
4. Per (advertiser, campaign, ad, hour of event_time): outputs.EVENTS_HOURLY_COLUMNS, with the
   reconciliation's diagnostics: token_conversions are what the stream counts (conversions whose
   record carries an ad), late_* the events first ingested at or after their minute's start +
   60 s + allowed lateness + watermark delay (transform's late rule: the stream drops them),
   duplicate_* the copies beyond the first (the stream forgets an id after its state TTL).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from glue_jobs.billing import outputs
from glue_jobs.billing.transform import (
    DAY_MS, DEDUP_ORDER, HOUR_MS, LOOKBACK_SCHEMA, MINUTE_MS, ORDER, BillingSettings, _hour_paths,
    _ordered, _whole, day_bounds_ms, ivt,
)

from common.archive import EVENTS  # noqa: E402  (importable once transform has set the path up)

IMPRESSION, CONVERSION = "impression", "conversion"  # the events stream's event_type values
ATTRIBUTED, UNKNOWN_CLICK, OUTSIDE_WINDOW, UNVERIFIED_CLICK, INVALID_CLICK = (
    "attributed", "unknown_click", "outside_window", "unverified_click", "invalid_click")
NOT_ATTRIBUTED = (UNKNOWN_CLICK, OUTSIDE_WINDOW, INVALID_CLICK, UNVERIFIED_CLICK)  # column order

EVENTS_USED_COLUMNS = ("event_type", "event_id", "ad_id", "campaign_id", "advertiser_id",
                       "event_time", "impression_id", "click_id", "value_micros", "currency",
                       "attributed_by", "ingest_time")
_SPARK_TYPES = {"string": StringType(), "bigint": LongType(), "int": IntegerType()}
EVENTS_READ_SCHEMA = StructType([StructField(n, _SPARK_TYPES[t]) for n, t in EVENTS.columns
                                 if n in EVENTS_USED_COLUMNS])
IMPRESSION_ORDER = ("ingest_time", "event_time", "ad_id", "campaign_id", "advertiser_id")
CONVERSION_ORDER = ("ingest_time", "event_time", "value_micros", "currency", "ad_id", "campaign_id",
                    "advertiser_id", "impression_id", "click_id", "attributed_by")
# the clicks archive before D, read for attribution: dedup's columns + the arrival partition
ARRIVAL_COLUMNS = ("dt", "hr")
CLICK_LOOKUP_SCHEMA = StructType(LOOKBACK_SCHEMA.fields
                                 + [StructField(c, StringType()) for c in ARRIVAL_COLUMNS])
INDEX_COLUMNS = ("click_id", "ad_id", "campaign_id", "advertiser_id", "event_time", "ingest_time",
                 "impression_id", "verdict")
EVENTS_HOURLY = outputs.names(outputs.EVENTS_HOURLY_COLUMNS) + ("dt",)
CONVERSION_DETAIL = outputs.names(outputs.CONVERSION_COLUMNS) + ("dt",)


# ---------------------------------------------------------------------------- what to read

def attribution_partitions(raw_path: str, day: date, settings: BillingSettings) -> list[str]:
    """The clicks archive's arrival partitions that can hold the click of a D conversion: from the
    hour of D 00:00 - window - max future skew (module doc, 3.) to D+1 hr cutoff-1."""
    start, end = day_bounds_ms(day)
    first_ms = (start - settings.attribution_lookback_ms) // HOUR_MS * HOUR_MS
    first = datetime.fromtimestamp(first_ms / 1000, tz=timezone.utc)
    return _hour_paths(raw_path.rstrip("/"), first,
                       (end + settings.cutoff_hours * HOUR_MS - first_ms) // HOUR_MS)


def verdict_days(day: date, settings: BillingSettings) -> list[date]:
    """The days whose clicks can be a D conversion's (event time >= D 00:00 - window), D
    included: each one's verdicts are its own billing run's outputs."""
    start, _ = day_bounds_ms(day)
    first = datetime.fromtimestamp((start - settings.attribution_window_ms) / 1000, tz=timezone.utc).date()
    return [first + timedelta(days=i) for i in range((day - first).days + 1)]


def day_start_ms(d: date) -> int:
    return day_bounds_ms(d)[0]


# ---------------------------------------------------------------------------- 2. dedup

def first_copies(events: DataFrame, event_type: str, order: tuple[str, ...]) -> DataFrame:
    """One row per event_id of `event_type` (its first copy by `order`), with `copies`."""
    # the hash leads the partition key only to speed up the sort (transform.dedup_first_arrival)
    w = Window.partitionBy("_h", "event_id").orderBy(*_ordered(order))
    return (events.where((F.col("event_type") == event_type) & F.col("event_id").isNotNull())
            .withColumn("_h", F.xxhash64("event_id"))
            .withColumn("_rn", F.row_number().over(w))
            .withColumn("copies", F.count(F.lit(1)).over(_whole(w)))
            .where(F.col("_rn") == 1).drop("_rn", "_h"))


def _in_day(day: date) -> F.Column:
    start, end = day_bounds_ms(day)
    return (F.col("event_time") >= start) & (F.col("event_time") < end)


def _timing(df: DataFrame, settings: BillingSettings) -> DataFrame:
    """hour_start_ms and late (transform's late rule) from event_time and ingest_time."""
    et, ingest = F.col("event_time"), F.col("ingest_time")
    return (df.withColumn("hour_start_ms", et - F.pmod(et, F.lit(HOUR_MS)))
            .withColumn("late", F.coalesce(ingest >= et - F.pmod(et, F.lit(MINUTE_MS))
                                           + F.lit(settings.late_after_ms), F.lit(False))))


def impressions_of_day(events: DataFrame, day: date, settings: BillingSettings) -> DataFrame:
    return _timing(first_copies(events, IMPRESSION, IMPRESSION_ORDER)
                   .where(_in_day(day) & F.col("ad_id").isNotNull()), settings)


def conversions_of_day(events: DataFrame, day: date, settings: BillingSettings) -> DataFrame:
    return _timing(first_copies(events, CONVERSION, CONVERSION_ORDER).where(_in_day(day))
                   .withColumn("conversion_id", F.col("event_id")), settings)


# ---------------------------------------------------------------------------- 3. attribution

def referenced(clicks: DataFrame, conversions: DataFrame) -> DataFrame:
    """The click rows a conversion can name: its click_id, or (without one) its impression's
    clicks. Two broadcast left joins on the conversions' few ids: no shuffle of the clicks."""
    by_click = F.broadcast(conversions.where(F.col("click_id").isNotNull())
                           .select(F.col("click_id").alias("_ref_click")).distinct())
    by_imp = F.broadcast(conversions.where(F.col("click_id").isNull() & F.col("impression_id").isNotNull())
                         .select(F.col("impression_id").alias("_ref_imp")).distinct())
    return (clicks.join(by_click, F.col("click_id") == F.col("_ref_click"), "left")
            .join(by_imp, F.col("impression_id") == F.col("_ref_imp"), "left")
            .where(F.col("_ref_click").isNotNull() | F.col("_ref_imp").isNotNull())
            .drop("_ref_click", "_ref_imp"))


def attribution_clicks(archive: DataFrame, conversions: DataFrame, day: date, settings: BillingSettings,
                       verdicts: DataFrame, billed_days: list[date]) -> DataFrame:
    """INDEX_COLUMNS of the clicks D's conversions reference (module doc, 3.): `archive` = the
    attribution partitions read with CLICK_LOOKUP_SCHEMA (dt, hr = the arrival partition);
    `verdicts` = click_id, verdict of the verdict days' billing/flagged outputs; `billed_days`
    = the verdict days whose billing/hourly partition exists."""
    start, end = day_bounds_ms(day)
    arrival = F.unix_timestamp(F.concat_ws(" ", "dt", "hr"), "yyyy-MM-dd HH") * 1000
    w = Window.partitionBy("click_id").orderBy(*_ordered(DEDUP_ORDER))
    et = F.col("event_time")
    click_day = et - F.pmod(et, F.lit(DAY_MS))
    billed = click_day.isin([day_start_ms(d) for d in billed_days]) if billed_days else F.lit(False)
    reached = F.col("_first_arrival") < click_day + DAY_MS + settings.cutoff_hours * HOUR_MS
    flagged = verdicts.select("click_id", F.col("verdict").alias("_flagged"))
    clicks = (referenced(archive.where(F.col("click_id").isNotNull()), conversions)
              .withColumn("_arrival", arrival)
              .withColumn("_rn", F.row_number().over(w))
              .withColumn("_first_arrival", F.min("_arrival").over(_whole(w)))
              .where((F.col("_rn") == 1) & (et >= start - settings.attribution_window_ms) & (et < end)))
    return (clicks.join(flagged, "click_id", "left")
            .withColumn("verdict", F.when(billed & reached, F.coalesce(F.col("_flagged"), F.lit(ivt.VALID))))
            .select(*INDEX_COLUMNS))


def attribute(conversions: DataFrame, index: DataFrame, settings: BillingSettings) -> DataFrame:
    """D's conversions + matched_click_id, click_event_time, click_verdict, attribution and the
    resolved ad ids (module doc, 3.). `index`: attribution_clicks' rows (few: broadcast)."""
    first = Window.partitionBy("impression_id").orderBy(*_ordered(ORDER))
    elected = F.broadcast(index.where(F.col("impression_id").isNotNull())
                          .withColumn("_rn", F.row_number().over(first)).where(F.col("_rn") == 1)
                          .select(F.col("impression_id").alias("_e_imp"), F.col("click_id").alias("_e_click")))
    clicks = F.broadcast(index.select(*[F.col(c).alias(f"_c_{c}") for c in INDEX_COLUMNS]))
    own_ad = F.col("token_ad")  # the record names an ad: the stream counted it there
    gap = F.col("event_time") - F.col("_c_event_time")
    verdict = F.col("_c_verdict")
    attribution = (F.when(F.col("_c_click_id").isNull(), F.lit(UNKNOWN_CLICK))
                   .when((gap < 0) | (gap > settings.attribution_window_ms), F.lit(OUTSIDE_WINDOW))
                   .when(verdict.isNull(), F.lit(UNVERIFIED_CLICK))
                   .when(verdict != ivt.VALID, F.lit(INVALID_CLICK))
                   .otherwise(F.lit(ATTRIBUTED)))
    return (conversions
            .join(elected, F.col("click_id").isNull() & (F.col("impression_id") == F.col("_e_imp")), "left")
            .join(clicks, F.coalesce(F.col("click_id"), F.col("_e_click")) == F.col("_c_click_id"), "left")
            .withColumn("token_ad", F.col("ad_id").isNotNull())
            .withColumn("attribution", attribution)
            .withColumn("matched_click_id", F.col("_c_click_id"))
            .withColumn("click_event_time", F.col("_c_event_time"))
            .withColumn("click_verdict", verdict)
            .withColumn("advertiser_id", F.when(own_ad, F.col("advertiser_id")).otherwise(F.col("_c_advertiser_id")))
            .withColumn("campaign_id", F.when(own_ad, F.col("campaign_id")).otherwise(F.col("_c_campaign_id")))
            .withColumn("ad_id", F.when(own_ad, F.col("ad_id")).otherwise(F.col("_c_ad_id")))
            .drop("_e_imp", "_e_click", *[f"_c_{c}" for c in INDEX_COLUMNS]))


# ---------------------------------------------------------------------------- 4. outputs

def _count_if(cond) -> F.Column:
    return F.sum(F.when(cond, F.lit(1)).otherwise(F.lit(0))).cast("long")


def _sum_if(cond, value: str) -> F.Column:
    return F.coalesce(F.sum(F.when(cond, F.coalesce(F.col(value), F.lit(0)))), F.lit(0)).cast("long")


def aggregate_events_hourly(impressions: DataFrame, attributed: DataFrame, day: date) -> DataFrame:
    """outputs.EVENTS_HOURLY_COLUMNS per (advertiser, campaign, ad, hour): one aggregate over the
    impressions' and the conversions' rows (the conversions with an ad)."""
    keys = ("advertiser_id", "campaign_id", "ad_id", "hour_start_ms")
    imp = impressions.select(*keys, F.lit(IMPRESSION).alias("_t"), "copies", "late",
                             F.lit(None).cast("long").alias("value_micros"),
                             F.lit(None).cast("string").alias("attribution"),
                             F.lit(False).alias("token_ad"))
    conv = attributed.where(F.col("ad_id").isNotNull()).select(
        *keys, F.lit(CONVERSION).alias("_t"), "copies", "late", "value_micros", "attribution", "token_ad")
    is_imp, is_conv = F.col("_t") == IMPRESSION, F.col("_t") == CONVERSION
    token = is_conv & F.col("token_ad")
    attributed_ = is_conv & (F.col("attribution") == ATTRIBUTED)
    return (imp.unionByName(conv).groupBy(*keys)
            .agg(_count_if(is_imp).alias("impressions"),
                 _count_if(is_conv).alias("conversions"),
                 _sum_if(is_conv, "value_micros").alias("conversion_value_micros"),
                 _count_if(attributed_).alias("attributed_conversions"),
                 _sum_if(attributed_, "value_micros").alias("attributed_value_micros"),
                 *[_count_if(is_conv & (F.col("attribution") == r)).alias(f"{r}_conversions")
                   for r in NOT_ATTRIBUTED],
                 _count_if(token).alias("token_conversions"),
                 _sum_if(token, "value_micros").alias("token_conversion_value_micros"),
                 F.sum(F.when(is_imp, F.col("copies") - 1).otherwise(0)).cast("long")
                 .alias("duplicate_impression_copies"),
                 _count_if(is_imp & F.col("late")).alias("late_impressions"),
                 F.sum(F.when(token, F.col("copies") - 1).otherwise(0)).cast("long")
                 .alias("duplicate_token_conversion_copies"),
                 _count_if(token & F.col("late")).alias("late_token_conversions"))
            .withColumn("hour", F.expr("timestamp_millis(hour_start_ms)"))
            .withColumn("dt", F.lit(day.isoformat()))
            .select(*EVENTS_HOURLY))


def conversion_detail(attributed: DataFrame, day: date) -> DataFrame:
    """Every deduplicated conversion of D with its attribution (billing_conversions)."""
    return attributed.withColumn("dt", F.lit(day.isoformat())).select(*CONVERSION_DETAIL)
