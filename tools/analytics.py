"""Analyst SQL over the raw archive: DuckDB locally (over a synced copy of the archive bucket),
Athena through awswrangler on AWS. Same named queries in both (common.named_queries)."""
from __future__ import annotations

from pathlib import Path

import boto3

from common.archive import RAW_PREFIX
from common.named_queries import TABLE


def sync_archive(bucket: str, dest: Path) -> int:
    """Copy the archive's Parquet objects to `dest` (same keys); returns objects present."""
    s3 = boto3.client("s3")
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RAW_PREFIX):
        for obj in page.get("Contents", []):
            target = dest / obj["Key"]
            if not target.exists() or target.stat().st_size != obj["Size"]:
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj["Key"], str(target))
            n += 1
    return n


def duckdb_connection(archive_root: Path):
    """DuckDB with a `raw_clicks` view over the archive, dt/hr from the Hive-style paths."""
    import duckdb

    con = duckdb.connect()
    files = archive_root / RAW_PREFIX
    if any(files.rglob("*.parquet")):
        con.execute(f"CREATE VIEW {TABLE} AS SELECT * FROM read_parquet('{files}/**/*.parquet', "
                    "hive_partitioning = true, hive_types = {'dt': VARCHAR, 'hr': VARCHAR})")
    else:  # empty archive: same columns, no rows
        from common.archive import PARTITION_KEYS, RAW_COLUMNS
        cols = ", ".join(f"{n} {'BIGINT' if t == 'bigint' else 'VARCHAR'}" for n, t in RAW_COLUMNS + list(PARTITION_KEYS))
        con.execute(f"CREATE TABLE {TABLE} ({cols})")
    return con


def run_duckdb(sql: str, archive_root: Path, binds: list | None = None) -> tuple[list[str], list[tuple]]:
    con = duckdb_connection(archive_root)
    cur = con.execute(sql, binds or [])
    return [d[0] for d in cur.description], cur.fetchall()


def run_athena(sql: str, database: str, workgroup: str, binds: list | None = None):
    """On AWS: the same SQL through Athena (awswrangler, `?` bound as ExecutionParameters)."""
    import awswrangler as wr

    return wr.athena.read_sql_query(sql, database=database, workgroup=workgroup, ctas_approach=False,
                                    params=binds or None, paramstyle="qmark")
