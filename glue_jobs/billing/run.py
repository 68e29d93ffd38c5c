"""Edges of the billing job: which files to read, the Spark session, idempotent writes.

Input: day D's arrival partitions (transform.input_partitions) with the columns the rules use,
and the lookback partitions before them (transform.lookback_partitions) with the columns the
impression election needs; missing partitions are skipped, nothing else is listed.

Output layout under `out_path` (a local path or s3://...):
  <out_path>/hourly/dt=YYYY-MM-DD/part-*.parquet    billing rows (transform.OUTPUT_COLUMNS)
  <out_path>/flagged/dt=YYYY-MM-DD/part-*.parquet   every non-valid click, its verdict and
                                                    reasons (transform.FLAGGED_COLUMNS)
Both are written with dynamic partition overwrite: a run replaces exactly its day's partition
and leaves every other day as it was. A day that now has no rows gets its old partition
deleted (dynamic overwrite alone would leave the stale one).
"""
from __future__ import annotations

import time
from datetime import date

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_jobs.billing.transform import (
    LOOKBACK_SCHEMA, READ_SCHEMA, SPARK_CONF, BillingSettings, aggregate_hourly, flag_clicks,
    flagged_detail, input_partitions, lookback_partitions, with_lookback_columns,
)

HOURLY, FLAGGED = "hourly", "flagged"


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


def run_day(spark: SparkSession, raw_path: str, out_path: str, day: date,
            settings: BillingSettings = BillingSettings(), write_flagged: bool = True) -> dict:
    """Recompute one day and replace its partitions. Returns counts for logs and callers."""
    t0 = time.monotonic()
    configure(spark)
    raw, paths = read_raw(spark, raw_path, day, settings)
    n_input = len(set(paths) & set(input_partitions(raw_path, day, settings.cutoff_hours)))
    flagged = flag_clicks(raw, day, settings)
    if write_flagged:  # two outputs from one pass: keep the per-click rows between them
        flagged = flagged.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        hourly = aggregate_hourly(flagged, day).repartition(1).cache()  # small: ads x 24
        n_hourly = hourly.count()
        _write_day(spark, hourly, n_hourly, f"{out_path.rstrip('/')}/{HOURLY}", day)
        totals = hourly.agg(F.sum("clicks"), F.sum("billable_clicks"), F.sum("suspect_clicks"),
                            F.sum("invalid_clicks")).first()
        hourly.unpersist()
        n_flagged = None
        if write_flagged:
            detail = flagged_detail(flagged, day).repartition(1)
            n_flagged = detail.count()
            _write_day(spark, detail, n_flagged, f"{out_path.rstrip('/')}/{FLAGGED}", day)
    finally:
        if write_flagged:
            flagged.unpersist()
    total = (lambda i: int(totals[i] or 0) if n_hourly else 0)  # noqa: E731
    return {"day": day.isoformat(), "partitions_read": n_input,
            "lookback_partitions_read": len(paths) - n_input, "hourly_rows": n_hourly,
            "clicks": total(0), "billable_clicks": total(1), "suspect_clicks": total(2),
            "invalid_clicks": total(3), "flagged_clicks": n_flagged,
            "seconds": round(time.monotonic() - t0, 2)}
