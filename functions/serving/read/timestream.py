"""Timestream for LiveAnalytics -> top-K, series and freshness: ONE SQL query per API request.

The sink writes one MULTI record per ad aggregate (measure_name 'agg'; dimensions ad_id,
resolution, campaign_id, advertiser_id; measures: every serving.table.METRICS column,
max_event_time, watermark; time = bucket start); no leaderboard and no campaign or advertiser
rollup records. So Timestream sums the exact aggregates:
  top-K:  whole days at resolution '1d', whole hours at '1h' and edge minutes at '1m' in one
          WHERE, GROUP BY ad_id, rank() OVER (ORDER BY total DESC) <= k -> always exact. Ties are
          cut in Python, by ad_id in code-point order: the SQL returns every ad tied with the
          k-th (rank() gives ties one rank) instead of `ORDER BY total DESC, ad_id LIMIT k`,
          whose cut would follow the engine's string collation, which Timestream does not
          document. So the SQL result can hold more than k rows (ties at the cut-off); the answer
          is its first k. Each ad also carries its suspect_clicks / invalid_clicks sums
          (query.topk.IVT_COUNTS).
          By a ratio (query.ratios): the numerator's and denominator's sums per ad, HAVING the
          denominator >= the volume floor and the numerator > 0, ranked by their quotient as
          DOUBLE; Python re-ranks the returned rows by the exact quotient. Correctly rounded
          division is monotonic, so every ad of the true top k has a rank <= k by the DOUBLE
          (ads whose quotients round to one DOUBLE tie, and all come back).
  series: an ad's rows at the resolution over the window (every METRICS column); a campaign's or
          advertiser's: the sums of its ads' rows per bucket (GROUP BY time, WHERE campaign_id /
          advertiser_id), i.e. the rollup the DynamoDB store keeps as SC# / SV# items
  ivt:    per GET /v1/quality IVT window, sum(clicks per verdict) over all ads (UNION ALL)
Records written before the IVT verdicts lack suspect_clicks / invalid_clicks, records written
before issue 19 impressions / conversions / conversion_value_micros: they read NULL, which sum()
skips and the parsers take as 0. (A table no record with those measures was ever written to has
no such columns: Timestream then refuses the SQL; the sink writes every METRICS column, 0 when a
changelog row has none, so the first aggregate written by the new sink adds them.)
Freshness (max watermark / max event time over the recent 1m rows) rides along in the same query
(`fresh LEFT JOIN ... ON TRUE`), so an empty answer still carries it.

Tests run this SQL on DuckDB over the records the sink writes (tests/query/timestream_duckdb.py
lists the few dialect rewrites) and check every answer against a brute-force oracle.

SQL safety: numbers are formatted from ints; string values are validated (printable ASCII,
1-128 chars) and quoted with '' escaping; database/table names are validated identifiers,
double-quoted. No SQL text comes from unescaped input.
"""
from __future__ import annotations

import re
import time
from fractions import Fraction
from typing import Any, Iterable, Optional, Sequence

import boto3

from common.config import ServingSettings
from query.quality import IvtWindow, VerdictTotals
from query.ratios import RATIOS
from query.series import SeriesData, bucket_from
from query.topk import COUNT_METRICS, IVT_COUNTS, RankedAd, TopResult
from common.times import HOUR_MS, RESOLUTIONS
from query.windows import SeriesRequest, TopRequest
from serving.table import METRICS, VERDICT_COUNTS
from serving.types import SeriesAnswer, StoreFreshness, TopAnswer

FRESHNESS_LOOKBACK_MS = HOUR_MS  # freshness from the 1m rows of the last hour
# a rollup series' dimension (query.windows.SERIES_LEVELS but 'ad', whose rows are read as stored)
_ROLLUP_DIMENSION = {"campaign": "campaign_id", "advertiser": "advertiser_id"}
_VALUE = re.compile(r"^[\x20-\x7E]{1,128}$")
_IDENT = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")


def quote_literal(value: str) -> str:
    """A SQL string literal for a validated value: printable ASCII, quotes doubled."""
    if not isinstance(value, str) or not _VALUE.fullmatch(value):
        raise ValueError("string values must be 1-128 printable ASCII characters")
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    if not _IDENT.fullmatch(name or ""):
        raise ValueError(f"bad Timestream identifier {name!r}")
    return '"' + name + '"'


def _ms(value: int) -> str:
    return f"from_milliseconds({int(value)})"


def _ranges(buckets: Iterable[int], step: int) -> list[tuple[int, int]]:
    """Sorted bucket starts -> contiguous [start, end) ranges."""
    out: list[tuple[int, int]] = []
    for b in sorted(buckets):
        if out and out[-1][1] == b:
            out[-1] = (out[-1][0], b + step)
        else:
            out.append((b, b + step))
    return out


class SqlBuilder:
    def __init__(self, database: str, table: str, lookback_ms: int = FRESHNESS_LOOKBACK_MS):
        self.source = f"{quote_ident(database)}.{quote_ident(table)}"
        self.lookback_ms = lookback_ms

    def _fresh(self, now_ms: int) -> str:
        return (f"fresh AS (SELECT max(watermark) AS wm, max(max_event_time) AS me FROM {self.source} "
                f"WHERE measure_name = 'agg' AND resolution = '1m' "
                f"AND time >= {_ms(now_ms - self.lookback_ms)})")

    def freshness_sql(self, now_ms: int) -> str:
        return f"WITH {self._fresh(now_ms)} SELECT wm, me FROM fresh"

    def top_sql(self, req: TopRequest, now_ms: int) -> str:
        parts = []
        for resolution, buckets in req.decomposition.by_resolution().items():
            ranges = _ranges(buckets, RESOLUTIONS[resolution])
            if ranges:
                times = " OR ".join(f"(time >= {_ms(a)} AND time < {_ms(b)})" for a, b in ranges)
                parts.append(f"(resolution = {quote_literal(resolution)} AND ({times}))")
        where = ["measure_name = 'agg'", "(" + " OR ".join(parts) + ")"]
        if req.campaign_id is not None:
            where.append(f"campaign_id = {quote_literal(req.campaign_id)}")
        if req.advertiser_id is not None:
            where.append(f"advertiser_id = {quote_literal(req.advertiser_id)}")
        ratio = RATIOS.get(req.metric)
        if ratio is None:
            column = COUNT_METRICS[req.metric]
            values, order, having = f"sum({column}) AS total", f"sum({column})", f"sum({column}) > 0"
            picked = "total"
        else:
            num, den = f"sum({ratio.numerator})", f"sum({ratio.denominator})"
            values = f"{num} AS num, {den} AS den"
            order = f"CAST({num} AS DOUBLE) / CAST({den} AS DOUBLE)"
            having = f"{den} >= {int(ratio.volume_floor(req.min_volume))} AND {num} > 0"
            picked = "num, den"
        # rank() ranks by the value alone (ties share a rank), so every ad tied with the k-th
        # comes back and Python cuts the ties by code point: no LIMIT cut by the engine's collation
        ivt_sums = "".join(f"sum({c}) AS {c}, " for c in IVT_COUNTS)
        ivt_cols = "".join(f", {c}" for c in IVT_COUNTS)
        totals = (f"totals AS (SELECT ad_id, max(campaign_id) AS campaign_id, "
                  f"max(advertiser_id) AS advertiser_id, {values}, {ivt_sums}"
                  f"rank() OVER (ORDER BY {order} DESC) AS rnk FROM {self.source} "
                  f"WHERE {' AND '.join(where)} GROUP BY ad_id HAVING {having})")
        ranked = (f"ranked AS (SELECT ad_id, campaign_id, advertiser_id, {picked}{ivt_cols} FROM totals "
                  f"WHERE rnk <= {int(req.k)})")
        return (f"WITH {self._fresh(now_ms)}, {totals}, {ranked} "
                "SELECT r.ad_id, r.campaign_id, r.advertiser_id, "
                + ", ".join(f"r.{c}" for c in picked.split(", "))
                + "".join(f", r.{c}" for c in IVT_COUNTS) + ", f.wm, f.me "
                "FROM fresh f LEFT JOIN ranked r ON TRUE ORDER BY r.ad_id ASC")

    def verdict_totals_sql(self, windows: Sequence[IvtWindow]) -> str:
        """One row per window (`w` = its index): the sums of VERDICT_COUNTS over all ads."""
        sums = ", ".join(f"sum({c}) AS {c}" for c in VERDICT_COUNTS)
        return " UNION ALL ".join(
            f"SELECT {i} AS w, {sums} FROM {self.source} WHERE measure_name = 'agg' "
            f"AND resolution = {quote_literal(w.resolution)} "
            f"AND time >= {_ms(w.start)} AND time < {_ms(w.end)}" for i, w in enumerate(windows))

    def late_dropped_sql(self, start_ms: int, end_ms: int) -> str:
        return (f"SELECT sum(late_dropped) AS ld FROM {self.source} WHERE measure_name = 'late' "
                f"AND time >= {_ms(start_ms)} AND time < {_ms(end_ms)}")

    def series_sql(self, req: SeriesRequest, now_ms: int) -> str:
        window = (f"AND resolution = {quote_literal(req.resolution)} "
                  f"AND time >= {_ms(req.window.start)} AND time < {_ms(req.window.end)}")
        if req.level == "ad":
            s = (f"s AS (SELECT to_milliseconds(time) AS bucket_ms, campaign_id, advertiser_id, "
                 f"{', '.join(METRICS)} FROM {self.source} "
                 f"WHERE measure_name = 'agg' AND ad_id = {quote_literal(req.entity_id)} {window})")
        else:  # the rollup: its ads' rows summed per bucket
            dimension = _ROLLUP_DIMENSION[req.level]
            s = (f"s AS (SELECT to_milliseconds(time) AS bucket_ms, max(campaign_id) AS campaign_id, "
                 f"max(advertiser_id) AS advertiser_id, "
                 + ", ".join(f"sum({m}) AS {m}" for m in METRICS) + f" FROM {self.source} "
                 f"WHERE measure_name = 'agg' AND {dimension} = {quote_literal(req.entity_id)} "
                 f"{window} GROUP BY time)")
        return (f"WITH {self._fresh(now_ms)}, {s} "
                "SELECT s.bucket_ms, s.campaign_id, s.advertiser_id, "
                + "".join(f"s.{m}, " for m in METRICS) + "f.wm, f.me "
                "FROM fresh f LEFT JOIN s ON TRUE ORDER BY s.bucket_ms ASC")


# -- response parsing -------------------------------------------------------------------------
_INTS = {"BIGINT", "INTEGER"}


def _scalar(datum: dict, column_type: dict) -> Any:
    if datum.get("NullValue"):
        return None
    if "ScalarValue" not in datum:
        raise ValueError(f"unsupported Timestream datum {datum!r} (only scalar columns are queried)")
    raw, kind = datum["ScalarValue"], column_type.get("ScalarType", "VARCHAR")
    if kind in _INTS:
        return int(raw)
    if kind == "DOUBLE":
        # sum()/max() of BIGINT measures stay BIGINT; a DOUBLE here is an integral value
        value = float(raw)
        return int(value) if value.is_integer() else value
    if kind == "BOOLEAN":
        return raw.lower() == "true"
    return raw


def parse_pages(pages: Iterable[dict]) -> list[dict[str, Any]]:
    """Query response pages (Rows/Data/ScalarValue + ColumnInfo) -> rows as {column: value}."""
    rows: list[dict[str, Any]] = []
    for page in pages:
        columns = page.get("ColumnInfo", [])
        for row in page.get("Rows", []):
            data = row.get("Data", [])
            if len(data) != len(columns):
                raise ValueError(f"row has {len(data)} values for {len(columns)} columns")
            rows.append({c["Name"]: _scalar(d, c.get("Type", {})) for c, d in zip(columns, data)})
    return rows


def _freshness(rows: list[dict]) -> StoreFreshness:
    wm = next((r["wm"] for r in rows if r.get("wm") is not None), None)
    me = next((r["me"] for r in rows if r.get("me") is not None), None)
    return StoreFreshness(wm, me)


def top_from_rows(rows: list[dict], k: int, metric: str = "clicks") -> TopResult:
    """The SQL's rows (every ad ranked <= k, ties included) -> the first k, ranked in Python."""
    ratio = RATIOS.get(metric)
    items = []
    for r in rows:
        if r.get("ad_id") is None:
            continue
        ivt = (int(r.get(c) or 0) for c in IVT_COUNTS)
        ids = (r["ad_id"], r.get("campaign_id"), r.get("advertiser_id"))
        if ratio is None:
            if (r.get("total") or 0) > 0:
                items.append(RankedAd(*ids, int(r["total"]), int(r["total"]), *ivt))
        elif (r.get("den") or 0) > 0 and (r.get("num") or 0) > 0:  # (HAVING made sure)
            q = Fraction(int(r["num"]), int(r["den"]))
            items.append(RankedAd(*ids, q, q, *ivt, int(r["num"]), int(r["den"])))
    items.sort(key=lambda i: (-i.total, i.ad_id))  # Python's order, whatever the engine's collation
    return TopResult(items[:k], True, 0, 0, len(items))


def series_from_rows(rows: list[dict]) -> SeriesData:
    data = SeriesData()
    for r in rows:
        if r.get("bucket_ms") is None:
            continue
        b = bucket_from(r)
        prev = data.buckets.get(r["bucket_ms"])
        if prev is not None:  # same bucket under other dimension values: add up
            b = bucket_from({m: getattr(prev, m) + getattr(b, m) for m in METRICS})
        data.buckets[r["bucket_ms"]] = b
        data.campaign_id = data.campaign_id or r.get("campaign_id")
        data.advertiser_id = data.advertiser_id or r.get("advertiser_id")
    return data


class TimestreamQueryStore:
    kind = "timestream"
    minute_retention_ms = None  # every row lives as long as the table's retention (> 30 days)

    def __init__(self, client, database: str, table: str, clock_ms=lambda: int(time.time() * 1000)):
        self._ts, self.sql, self._clock_ms = client, SqlBuilder(database, table), clock_ms

    @classmethod
    def from_env(cls) -> "TimestreamQueryStore":
        settings = ServingSettings.from_env()  # TIMESTREAM_DATABASE, TIMESTREAM_TABLE
        return cls(boto3.client("timestream-query"), settings.require("timestream_database"),
                   settings.require("timestream_table"))

    def run(self, sql: str) -> tuple[list[dict], int]:
        """One SQL query, all pages; returns rows and the number of Query calls."""
        # hand loop, not get_paginator("query"): the tests run this SQL on DuckDB through a client
        # object that answers Query calls (tests/query/timestream_duckdb.py), not a botocore client
        pages, kwargs, calls = [], {"QueryString": sql}, 0
        while True:
            calls += 1
            page = self._ts.query(**kwargs)
            pages.append(page)
            token = page.get("NextToken")
            if not token:
                return parse_pages(pages), calls
            kwargs["NextToken"] = token

    def freshness(self) -> tuple[StoreFreshness, int]:
        rows, calls = self.run(self.sql.freshness_sql(self._clock_ms()))
        return _freshness(rows), calls

    def top(self, req: TopRequest) -> TopAnswer:
        rows, calls = self.run(self.sql.top_sql(req, self._clock_ms()))
        return TopAnswer(top_from_rows(rows, req.k, req.metric), _freshness(rows), calls, {"sql_queries": 1})

    def series(self, req: SeriesRequest) -> SeriesAnswer:
        rows, calls = self.run(self.sql.series_sql(req, self._clock_ms()))
        data = series_from_rows(rows)
        step = RESOLUTIONS[req.resolution]
        data.buckets = {b: v for b, v in data.buckets.items()
                        if req.window.start <= b < req.window.end and b % step == 0}
        return SeriesAnswer(data, _freshness(rows), calls, {"sql_queries": 1})

    def verdict_totals(self, windows: Sequence[IvtWindow]) -> tuple[list[VerdictTotals], int]:
        """One SQL for all windows; the sums over every ad (complete)."""
        rows, calls = self.run(self.sql.verdict_totals_sql(windows))
        by_window = {int(r["w"]): r for r in rows if r.get("w") is not None}
        return [VerdictTotals(**{c: int(by_window.get(i, {}).get(c) or 0) for c in VERDICT_COUNTS})
                for i in range(len(windows))], calls

    def late_dropped(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        rows, calls = self.run(self.sql.late_dropped_sql(start_ms, end_ms))
        return int(next((r["ld"] for r in rows if r.get("ld") is not None), 0)), calls

    def last_reconciliation(self) -> tuple[Optional[dict], Optional[int], int]:
        """Reconciliation reads the DynamoDB serving table; with Timestream there is none."""
        return None, None, 0
