"""Edges of the billing job: which files to read, the Spark session, idempotent writes.

Input: day D's arrival partitions (transform.input_partitions) with the columns the rules use,
and the lookback partitions before them (transform.lookback_partitions) with the columns the
impression election needs; missing partitions are skipped, nothing else is listed.

With an events archive (`events_path`, its table root: s3://BUCKET/raw/events), also D's
events partitions (the same input window), the clicks archive's attribution partitions
(events.attribution_partitions) and the verdict days' (D's just written included)
billing/flagged and billing/hourly partitions under `out_path` (their own billing runs'
decisions, events.py 3.); the flagged detail is then always written.

Output layout under `out_path` (a local path or s3://...; outputs.py names the datasets):
  <out_path>/hourly/dt=YYYY-MM-DD/part-*.parquet    billing rows (transform.OUTPUT_COLUMNS)
  <out_path>/flagged/dt=YYYY-MM-DD/part-*.parquet   every click not billed (not valid, or over
                                                    its campaign's budget), its verdict and
                                                    reasons (transform.FLAGGED_COLUMNS)
  <out_path>/campaign_spend/dt=YYYY-MM-DD/          per campaign-day: budget, valid and billed
                                                    cost (outputs.CAMPAIGN_SPEND_COLUMNS)
  <out_path>/events_hourly/dt=YYYY-MM-DD/           impressions and conversions per ad and hour
                                                    (outputs.EVENTS_HOURLY_COLUMNS)
  <out_path>/conversions/dt=YYYY-MM-DD/             every conversion of D, its attribution
                                                    (outputs.CONVERSION_COLUMNS)
(events_hourly and conversions only with `events_path`). Budgets (`budgets`: the budget history,
budgets.read_history; the entry points read it when given `--budgets_table`) cap each campaign's
billed cost per day (transform.py, 6.); without them nothing is over budget. All are written with dynamic partition overwrite: a run
replaces exactly its day's partition and leaves every other day as it was. A day that now has
no rows gets its old partition deleted (dynamic overwrite alone would leave the stale one).
"""
from __future__ import annotations

import time
from datetime import date
from typing import Iterable

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from glue_jobs.billing import events as ev
from glue_jobs.billing.budgets import BudgetVersion, budgets_for_day
from glue_jobs.billing.outputs import CAMPAIGN_SPEND, CONVERSIONS, EVENTS_HOURLY, FLAGGED, HOURLY
from glue_jobs.billing.transform import (
    LOOKBACK_SCHEMA, READ_SCHEMA, SPARK_CONF, BillingSettings, aggregate_hourly, campaign_spend,
    flag_clicks, flagged_detail, input_partitions, lookback_partitions, with_lookback_columns,
)


def local_spark(app: str = "clickagg-billing", master: str = "local[2]", shuffle_partitions: int = 8,
                driver_memory: str = "2g", extra: dict | None = None) -> SparkSession:
    """A local session with the job's settings (tests, backfill, bench)."""
    builder = (SparkSession.builder.appName(app).master(master)
               .config("spark.driver.memory", driver_memory)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
               .config("spark.sql.adaptive.enabled", "true"))
    for key, value in {**SPARK_CONF, **(extra or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def configure(spark: SparkSession) -> SparkSession:
    """Apply the job's SQL settings to an existing session (Glue's)."""
    for key, value in SPARK_CONF.items():
        spark.conf.set(key, value)
    return spark


def _fs_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    return p, p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def existing_paths(spark: SparkSession, paths: list[str]) -> list[str]:
    """The paths that exist, through Hadoop's FileSystem (local, s3:// on Glue alike)."""
    out = []
    for path in paths:
        p, fs = _fs_path(spark, path)
        if fs.exists(p):
            out.append(path)
    return out


def delete_path(spark: SparkSession, path: str) -> bool:
    p, fs = _fs_path(spark, path)
    return bool(fs.exists(p) and fs.delete(p, True))


def read_raw(spark: SparkSession, raw_path: str, day: date,
             settings: BillingSettings = BillingSettings()) -> tuple[DataFrame, list[str]]:
    """(rows of day's input partitions with READ_SCHEMA, unioned with the rows of its lookback
    partitions with LOOKBACK_SCHEMA (the other columns null); the partition paths read, input
    ones first). Missing partitions are skipped; only the listed partitions are touched (never a
    listing of the whole table). Columns a file lacks (impression_id, issued_at in files written
    before they existed) read as null."""
    paths = existing_paths(spark, input_partitions(raw_path, day, settings.cutoff_hours))
    lookback = existing_paths(spark, lookback_partitions(raw_path, day, settings.impression_lookback_ms))
    main = (spark.read.schema(READ_SCHEMA).parquet(*paths) if paths
            else spark.createDataFrame([], READ_SCHEMA))
    if lookback:
        main = main.unionByName(with_lookback_columns(
            spark.read.schema(LOOKBACK_SCHEMA).parquet(*lookback)))
    return main, paths + lookback


def _write_day(spark: SparkSession, df: DataFrame, rows: int, path: str, day: date) -> None:
    if rows == 0:
        delete_path(spark, f"{path.rstrip('/')}/dt={day.isoformat()}")
        return
    df.write.mode("overwrite").partitionBy("dt").parquet(path)


def _read(spark: SparkSession, schema, paths: list[str], **options) -> DataFrame:
    reader = spark.read.schema(schema)
    for key, value in options.items():
        reader = reader.option(key, value)
    return reader.parquet(*paths) if paths else spark.createDataFrame([], schema)


def read_events(spark: SparkSession, events_path: str, day: date,
                settings: BillingSettings = BillingSettings()) -> tuple[DataFrame, list[str]]:
    """D's events partitions (the clicks' input window) with events.EVENTS_READ_SCHEMA."""
    paths = existing_paths(spark, input_partitions(events_path, day, settings.cutoff_hours))
    return _read(spark, ev.EVENTS_READ_SCHEMA, paths), paths


def read_attribution_inputs(spark: SparkSession, raw_path: str, out_path: str, day: date,
                            settings: BillingSettings = BillingSettings()) -> dict:
    """What the attribution reads (events.py, 3.): the clicks archive's attribution partitions
    (with their arrival partition dt, hr), the verdict days' flagged rows and which of those
    days were billed."""
    paths = existing_paths(spark, ev.attribution_partitions(raw_path, day, settings))
    out = out_path.rstrip("/")
    days = ev.verdict_days(day, settings)
    billed = [d for d in days if existing_paths(spark, [f"{out}/{HOURLY}/dt={d.isoformat()}"])]
    flagged = existing_paths(spark, [f"{out}/{FLAGGED}/dt={d.isoformat()}" for d in billed])
    verdict_schema = StructType([StructField(c, StringType()) for c in ("click_id", "verdict")])
    return {"archive": _read(spark, ev.CLICK_LOOKUP_SCHEMA, paths, basePath=raw_path.rstrip("/")),
            "verdicts": _read(spark, verdict_schema, flagged), "days": days,
            "billed_days": billed, "paths": paths}


def run_events(spark: SparkSession, raw_path: str, events_path: str, out_path: str, day: date,
               settings: BillingSettings) -> dict:
    """D's impressions and conversions, attributed; replaces D's events_hourly and conversions
    partitions. Runs after D's clicks are written (their verdicts are read back)."""
    events, paths = read_events(spark, events_path, day, settings)
    impressions = ev.impressions_of_day(events, day, settings)
    conversions = ev.conversions_of_day(events, day, settings).cache()  # few; read three times
    lookup = read_attribution_inputs(spark, raw_path, out_path, day, settings)
    index = ev.attribution_clicks(lookup["archive"], conversions, day, settings, lookup["verdicts"],
                                  lookup["billed_days"]).cache()
    attributed = ev.attribute(conversions, index, settings).cache()
    out = out_path.rstrip("/")
    try:
        counts = {(r["attribution"], r["has_ad"]): r["count"] for r in attributed.groupBy(
            "attribution", F.col("ad_id").isNotNull().alias("has_ad")).count().collect()}
        n_conversions = sum(counts.values())
        detail = ev.conversion_detail(attributed, day).repartition(1)
        _write_day(spark, detail, n_conversions, f"{out}/{CONVERSIONS}", day)
        hourly = ev.aggregate_events_hourly(impressions, attributed, day).repartition(1).cache()
        totals = hourly.agg(F.count(F.lit(1)).alias("rows"), *[
            F.coalesce(F.sum(c), F.lit(0)).alias(c) for c in ("impressions", "attributed_value_micros")]).first()
        _write_day(spark, hourly, totals["rows"], f"{out}/{EVENTS_HOURLY}", day)
        hourly.unpersist()
    finally:
        for df in (attributed, index, conversions):
            df.unpersist()
    reason = lambda r: sum(n for (a, _), n in counts.items() if a == r)  # noqa: E731
    return {"events_partitions_read": len(paths), "attribution_partitions_read": len(lookup["paths"]),
            "verdict_days": len(lookup["days"]), "verdict_days_billed": len(lookup["billed_days"]),
            "events_hourly_rows": totals["rows"], "impressions": int(totals["impressions"]),
            "conversions": n_conversions,
            "conversions_without_ad": sum(n for (_, has_ad), n in counts.items() if not has_ad),
            "attributed_conversions": reason(ev.ATTRIBUTED),
            "attributed_value_micros": int(totals["attributed_value_micros"]),
            **{f"conversions_{r}": reason(r) for r in ev.NOT_ATTRIBUTED}}


def run_day(spark: SparkSession, raw_path: str, out_path: str, day: date,
            settings: BillingSettings = BillingSettings(), write_flagged: bool = True,
            events_path: str | None = None, budgets: Iterable[BudgetVersion] | None = None) -> dict:
    """Recompute one day and replace its partitions (with `events_path`: the events' too, and
    the flagged detail whatever `write_flagged` says: later days' attributions read it).
    `budgets`: every budget version (budgets.read_history); the day's are picked here.
    Returns counts for logs and callers."""
    t0 = time.monotonic()
    configure(spark)
    write_flagged = write_flagged or bool(events_path)
    caps = budgets_for_day(budgets or (), day)
    raw, paths = read_raw(spark, raw_path, day, settings)
    n_input = len(set(paths) & set(input_partitions(raw_path, day, settings.cutoff_hours)))
    flagged = flag_clicks(raw, day, settings, caps)
    if write_flagged:  # two outputs from one pass: keep the per-click rows between them
        flagged = flagged.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        hourly = aggregate_hourly(flagged, day).repartition(1).cache()  # small: ads x 24
        n_hourly = hourly.count()
        _write_day(spark, hourly, n_hourly, f"{out_path.rstrip('/')}/{HOURLY}", day)
        totals = hourly.agg(F.sum("clicks"), F.sum("billable_clicks"), F.sum("suspect_clicks"),
                            F.sum("invalid_clicks"), F.sum("over_budget_clicks"),
                            F.sum("over_budget_cost_micros")).first()
        spend = campaign_spend(hourly, day, caps).repartition(1)
        n_spend = spend.count()
        _write_day(spark, spend, n_spend, f"{out_path.rstrip('/')}/{CAMPAIGN_SPEND}", day)
        hourly.unpersist()
        n_flagged = None
        if write_flagged:
            detail = flagged_detail(flagged, day).repartition(1)
            n_flagged = detail.count()
            _write_day(spark, detail, n_flagged, f"{out_path.rstrip('/')}/{FLAGGED}", day)
    finally:
        if write_flagged:
            flagged.unpersist()
    events = run_events(spark, raw_path, events_path, out_path, day, settings) if events_path else {}
    total = (lambda i: int(totals[i] or 0) if n_hourly else 0)  # noqa: E731
    return {"day": day.isoformat(), "partitions_read": n_input,
            "lookback_partitions_read": len(paths) - n_input, "hourly_rows": n_hourly,
            "clicks": total(0), "billable_clicks": total(1), "suspect_clicks": total(2),
            "invalid_clicks": total(3), "over_budget_clicks": total(4),
            "over_budget_cost_micros": total(5), "budgeted_campaigns": len(caps),
            "campaign_spend_rows": n_spend, "flagged_clicks": n_flagged, **events,
            "seconds": round(time.monotonic() - t0, 2)}
