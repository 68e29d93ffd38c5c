"""Analyst SQL over the archive bucket: DuckDB locally (over a synced copy of the bucket), Athena
through awswrangler on AWS. Same named queries in both (common.named_queries). Tables: the raw
clicks (`raw_clicks`, Parquet) and the refused items (`refused_clicks`, gzip JSON Lines,
common.refused); given the billing job's output directory, its tables too (`billing_hourly`,
`billing_events_hourly`, ...: glue_jobs/billing/outputs.py, Spark's Parquet under <dir>/dt=)."""
from __future__ import annotations

import re
from pathlib import Path

import boto3

from common import refused
from common.archive import EVENTS, PARTITION_KEYS, RAW_PREFIX
from common.named_queries import TABLE

_SCALARS = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "boolean": "BOOLEAN"}


def duckdb_type(glue_type: str) -> str:
    """A Glue/Hive column type (scalars, array<...>, struct<name:type,...>) in DuckDB's words."""
    t = glue_type.strip()
    if t in _SCALARS:
        return _SCALARS[t]
    m = re.fullmatch(r"array<(.*)>", t)
    if m:
        return f"{duckdb_type(m.group(1))}[]"
    m = re.fullmatch(r"struct<(.*)>", t)
    if m:
        fields, depth, start = [], 0, 0
        body = m.group(1)
        for i, ch in enumerate(body + ","):
            if ch in "<":
                depth += 1
            elif ch == ">":
                depth -= 1
            elif ch == "," and depth == 0:
                name, _, inner = body[start:i].partition(":")
                fields.append(f"{name.strip()} {duckdb_type(inner)}")
                start = i + 1
        return f"STRUCT({', '.join(fields)})"
    raise ValueError(f"no DuckDB type for Glue type {glue_type!r}")


def sync_archive(bucket: str, dest: Path) -> int:
    """Copy the archive's objects (raw clicks, raw events, refused items) to `dest` (same keys);
    returns objects present."""
    s3 = boto3.client("s3")
    n = 0
    for prefix in (RAW_PREFIX, EVENTS.prefix, refused.REFUSED_PREFIX):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                target = dest / obj["Key"]
                if not target.exists() or target.stat().st_size != obj["Size"]:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, obj["Key"], str(target))
                n += 1
    return n


def _refused_view(con, archive_root: Path) -> None:
    """`refused_clicks` over the refused items' gzip JSON Lines, typed as the Glue table."""
    files = archive_root / refused.REFUSED_PREFIX
    if any(files.rglob(f"*{refused.FILE_EXTENSION}")):
        columns = ", ".join(f"'{n}': '{duckdb_type(t)}'" for n, t in refused.COLUMNS)
        con.execute(f"CREATE VIEW {refused.TABLE} AS SELECT * FROM read_json("
                    f"'{files}/**/*{refused.FILE_EXTENSION}', format = 'newline_delimited', "
                    f"columns = {{{columns}}}, hive_partitioning = true, "
                    "hive_types = {'dt': VARCHAR, 'hr': VARCHAR})")
    else:  # nothing refused yet: same columns, no rows
        cols = ", ".join(f"{n} {duckdb_type(t)}" for n, t in refused.COLUMNS + list(PARTITION_KEYS))
        con.execute(f"CREATE TABLE {refused.TABLE} ({cols})")


def _billing_views(con, billing_root: Path) -> None:
    """One view per billing table over its Parquet (dt from the path); an empty table with the
    catalog's columns where the job has written nothing yet."""
    from glue_jobs.billing.outputs import TABLES

    types = {**_SCALARS, "timestamp": "TIMESTAMP"}
    for table, (directory, columns) in TABLES.items():
        files = billing_root / directory
        if any(files.glob("dt=*/*.parquet")):
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{files}/dt=*/*.parquet', "
                        "hive_partitioning = true, hive_types = {'dt': VARCHAR})")
        else:
            cols = ", ".join(f"{n} {types[t]}" for n, t in columns + [("dt", "string")])
            con.execute(f"CREATE TABLE {table} ({cols})")


def duckdb_connection(archive_root: Path, billing_root: Path | None = None):
    """DuckDB with a `raw_clicks` view over the archive and a `refused_clicks` view over the
    refused items, dt/hr from the Hive-style paths; with `billing_root`, the billing tables."""
    import duckdb

    con = duckdb.connect()
    _refused_view(con, archive_root)
    if billing_root is not None:
        _billing_views(con, billing_root)
    files = archive_root / RAW_PREFIX
    if any(files.rglob("*.parquet")):
        con.execute(f"CREATE VIEW {TABLE} AS SELECT * FROM read_parquet('{files}/**/*.parquet', "
                    "hive_partitioning = true, hive_types = {'dt': VARCHAR, 'hr': VARCHAR})")
    else:  # empty archive: same columns, no rows
        from common.archive import RAW_COLUMNS
        cols = ", ".join(f"{n} {'BIGINT' if t == 'bigint' else 'VARCHAR'}" for n, t in RAW_COLUMNS + list(PARTITION_KEYS))
        con.execute(f"CREATE TABLE {TABLE} ({cols})")
    return con


def run_duckdb(sql: str, archive_root: Path, binds: list | None = None,
               billing_root: Path | None = None) -> tuple[list[str], list[tuple]]:
    con = duckdb_connection(archive_root, billing_root)
    cur = con.execute(sql, binds or [])
    return [d[0] for d in cur.description], cur.fetchall()


def run_athena(sql: str, database: str, workgroup: str, binds: list | None = None):
    """On AWS: the same SQL through Athena (awswrangler, `?` bound as ExecutionParameters)."""
    import awswrangler as wr

    return wr.athena.read_sql_query(sql, database=database, workgroup=workgroup, ctas_approach=False,
                                    params=binds or None, paramstyle="qmark")
