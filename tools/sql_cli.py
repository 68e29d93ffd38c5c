"""`clickagg sql`: analyst SQL over the raw archive.

Locally (default) the archive bucket is synced from the local stack's S3 endpoint
(AWS_ENDPOINT_URL, or the last synced copy under .local/archive when no stack runs) and the
query runs on DuckDB, the billing tables over the local billing workflow's output (--billing-dir).
With --athena it runs on Athena through awswrangler. Named queries are the same text in both
(common.named_queries)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from common.config import ResourceNames
from common.named_queries import NAMED_QUERIES, render

REPO = Path(__file__).resolve().parent.parent


def add_parser(sub) -> None:
    p = sub.add_parser("sql", help="run SQL or a named query over the raw archive", description=__doc__)
    p.add_argument("query", nargs="?", help="SQL text (tables: raw_clicks, refused_clicks, billing_hourly, "
                                            "billing_flagged, billing_events_hourly, billing_conversions)")
    p.add_argument("--named", choices=sorted(NAMED_QUERIES), help="run a named query")
    p.add_argument("--param", action="append", default=[], metavar="KEY=N", help="named query parameter")
    p.add_argument("--list", action="store_true", help="list the named queries")
    p.add_argument("--archive-dir", type=Path, default=REPO / ".local" / "archive")
    p.add_argument("--billing-dir", type=Path, default=REPO / ".local" / "billing",
                   help="the billing job's --out-path (the local stack's billing workflow writes here)")
    p.add_argument("--bucket", default=ResourceNames().archive_bucket)
    p.add_argument("--athena", action="store_true", help="run on Athena (AWS) instead of DuckDB")
    p.add_argument("--database", default="clickagg")
    p.add_argument("--workgroup", default="clickagg")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def print_table(columns: list[str], rows: list[tuple]) -> None:
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("  ".join(v.rjust(w) if n and v.lstrip("-").isdigit() else v.ljust(w) for v, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(f"({len(rows)} rows)")


def run(args) -> int:
    from tools.analytics import run_athena, run_duckdb, sync_archive

    if args.list:
        for q in NAMED_QUERIES.values():
            print(f"{q.name}: {q.description} (params: {', '.join(f'{k}={v}' for k, v in q.params.items())})")
        return 0
    if bool(args.query) == bool(args.named):
        print("give SQL text or --named NAME (see --list)", file=sys.stderr)
        return 2
    binds: list = []
    sql = args.query
    if args.named:
        try:
            params = dict(p.split("=", 1) for p in args.param)
            sql, binds = render(args.named, params)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.athena:
        frame = run_athena(sql, args.database, args.workgroup, binds)
        columns, rows = list(frame.columns), [tuple(r) for r in frame.itertuples(index=False)]
    else:
        if os.environ.get("AWS_ENDPOINT_URL"):
            n = sync_archive(args.bucket, args.archive_dir)
            print(f"synced {n} archive objects from {os.environ['AWS_ENDPOINT_URL']}", file=sys.stderr)
        columns, rows = run_duckdb(sql, args.archive_dir, binds, billing_root=args.billing_dir)
    if args.json:
        print(json.dumps([dict(zip(columns, r)) for r in rows], default=str))
    else:
        print_table(columns, rows)
    return 0
