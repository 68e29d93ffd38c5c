"""Timestream query store: the SQL it generates (one statement per request, escaped literals)
and parsing of recorded Query responses (moto cannot run Timestream SQL)."""
from __future__ import annotations

import re

import pytest

from common.config import AggregationSettings
from query.service import QueryService
from query.store_timestream import SqlBuilder, TimestreamQueryStore, parse_pages, quote_ident, quote_literal
from query.windows import DAY_MS, HOUR_MS, MINUTE_MS, QueryError, parse_series, parse_top

DAY0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY_MS
NOW = DAY0 + 10 * HOUR_MS + 30 * MINUTE_MS + 5_000  # 10:30:05


def col(name, kind):
    return {"Name": name, "Type": {"ScalarType": kind}}


TOP_COLUMNS = [col("ad_id", "VARCHAR"), col("campaign_id", "VARCHAR"), col("advertiser_id", "VARCHAR"),
               col("total", "BIGINT"), col("wm", "BIGINT"), col("me", "BIGINT")]


def row(*values):
    return {"Data": [{"NullValue": True} if v is None else {"ScalarValue": str(v)} for v in values]}


# A recorded-style top-K answer split over two pages (Timestream paginates with NextToken, and
# may return a first page with no rows while the query runs).
TOP_PAGES = [
    {"QueryId": "q-1", "Rows": [], "ColumnInfo": TOP_COLUMNS, "NextToken": "t1",
     "QueryStatus": {"ProgressPercentage": 40.0, "CumulativeBytesScanned": 10_485_760}},
    {"QueryId": "q-1", "Rows": [row("ad-7", "cmp-1", "adv-1", 412, DAY0 + 10 * HOUR_MS, DAY0 + 10 * HOUR_MS + 29_000),
                                row("ad'q", "cmp-2", "adv-0", 398, DAY0 + 10 * HOUR_MS, DAY0 + 10 * HOUR_MS + 29_000)],
     "ColumnInfo": TOP_COLUMNS, "NextToken": "t2"},
    {"QueryId": "q-1", "Rows": [row("ad-1", "cmp-1", "adv-1", 398, DAY0 + 10 * HOUR_MS, DAY0 + 10 * HOUR_MS + 29_000)],
     "ColumnInfo": TOP_COLUMNS, "QueryStatus": {"ProgressPercentage": 100.0}},
]
EMPTY_TOP = [{"QueryId": "q-2", "ColumnInfo": TOP_COLUMNS,
              "Rows": [row(None, None, None, None, DAY0 + 10 * HOUR_MS, DAY0 + 10 * HOUR_MS + 29_000)]}]
SERIES_COLUMNS = [col("bucket_ms", "BIGINT"), col("campaign_id", "VARCHAR"), col("advertiser_id", "VARCHAR"),
                  col("clicks", "BIGINT"), col("billable_clicks", "BIGINT"), col("cost_micros", "BIGINT"),
                  col("billable_cost_micros", "BIGINT"), col("wm", "BIGINT"), col("me", "BIGINT")]


class FakeTimestream:
    def __init__(self, pages):
        self.pages, self.calls = list(pages), []

    def query(self, QueryString, NextToken=None):
        self.calls.append((QueryString, NextToken))
        return self.pages.pop(0)


def store(pages):
    return TimestreamQueryStore(FakeTimestream(pages), "clickagg", "aggregates", clock_ms=lambda: NOW)


def normalized(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def test_top_sql_whole_hours_and_edge_minutes_in_one_where():
    req = parse_top({"from": str(DAY0 + 7 * HOUR_MS + 45 * MINUTE_MS), "to": str(DAY0 + 10 * HOUR_MS + 5 * MINUTE_MS),
                     "k": "5", "metric": "billable_clicks"}, NOW)
    sql = normalized(SqlBuilder("clickagg", "aggregates").top_sql(req, NOW))
    ms = lambda x: f"from_milliseconds({x})"  # noqa: E731
    assert sql.count("SELECT") == 3 and sql.count(";") == 0
    assert (f"(resolution = '1h' AND ((time >= {ms(DAY0 + 8 * HOUR_MS)} AND time < {ms(DAY0 + 10 * HOUR_MS)})))"
            in sql)
    assert (f"(resolution = '1m' AND ((time >= {ms(DAY0 + 7 * HOUR_MS + 45 * MINUTE_MS)} AND time < "
            f"{ms(DAY0 + 8 * HOUR_MS)}) OR (time >= {ms(DAY0 + 10 * HOUR_MS)} AND time < "
            f"{ms(DAY0 + 10 * HOUR_MS + 5 * MINUTE_MS)})))") in sql
    assert "sum(billable_clicks) AS total" in sql and "GROUP BY ad_id HAVING sum(billable_clicks) > 0" in sql
    assert "ORDER BY total DESC, ad_id ASC LIMIT 5" in sql
    assert 'FROM "clickagg"."aggregates"' in sql and "measure_name = 'agg'" in sql
    assert "fresh f LEFT JOIN ranked r ON TRUE" in sql
    assert f"time >= {ms(NOW - HOUR_MS)}" in sql  # freshness reads only recent 1m rows


def test_top_sql_only_minutes_and_only_hours():
    b = SqlBuilder("db", "t")
    sql = b.top_sql(parse_top({"last": "5m"}, NOW), NOW)
    assert "resolution = '1h'" not in sql and sql.count("resolution = '1m' AND ((time") == 1
    sql = b.top_sql(parse_top({"from": str(DAY0), "to": str(DAY0 + DAY_MS), "metric": "cost"}, NOW), NOW)
    assert "resolution = '1m' AND ((time" not in sql and "sum(cost_micros)" in sql


def test_filters_are_escaped_literals():
    req = parse_top({"last": "1h", "campaign_id": "x'OR'1'='1", "advertiser_id": "a\\b"}, NOW)
    sql = SqlBuilder("db", "t").top_sql(req, NOW)
    assert "campaign_id = 'x''OR''1''=''1'" in sql and "advertiser_id = 'a\\b'" in sql
    # every quote in the statement is paired: no literal is left open
    assert sql.count("'") % 2 == 0
    assert quote_literal("it's") == "'it''s'"
    for bad in ("", "x" * 129, "tab\there", "nul\x00", "é"):
        with pytest.raises(ValueError):
            quote_literal(bad)
    with pytest.raises(ValueError):
        quote_ident('t"; DROP')
    assert quote_ident("clickagg-db") == '"clickagg-db"'


def test_series_sql():
    req = parse_series("ad'q", {"resolution": "5m", "from": str(DAY0 + 7 * MINUTE_MS), "to": str(DAY0 + 21 * MINUTE_MS)}, NOW)
    sql = normalized(SqlBuilder("db", "t").series_sql(req, NOW))
    assert "ad_id = 'ad''q'" in sql and "resolution = '5m'" in sql
    assert f"time >= from_milliseconds({DAY0 + 5 * MINUTE_MS}) AND time < from_milliseconds({DAY0 + 25 * MINUTE_MS})" in sql
    assert "fresh f LEFT JOIN s ON TRUE ORDER BY s.bucket_ms ASC" in sql


def test_parse_pages_types_nulls_and_mismatch():
    rows = parse_pages([{"ColumnInfo": [col("a", "VARCHAR"), col("n", "BIGINT"), col("d", "DOUBLE"),
                                        col("b", "BOOLEAN"), col("t", "TIMESTAMP")],
                         "Rows": [row("x", 5, "3.0", "true", "2026-11-18 10:00:00.000000000"),
                                  row(None, None, None, None, None)]}])
    assert rows == [{"a": "x", "n": 5, "d": 3, "b": True, "t": "2026-11-18 10:00:00.000000000"},
                    {"a": None, "n": None, "d": None, "b": None, "t": None}]
    with pytest.raises(ValueError):
        parse_pages([{"ColumnInfo": [col("a", "VARCHAR")], "Rows": [row("x", "y")]}])


def test_top_from_recorded_pages_one_query_paginated():
    s = store(TOP_PAGES)
    svc = QueryService(s, AggregationSettings(), clock_ms=lambda: NOW)
    body = svc.top({"last": "1h", "k": "3"})
    sqls = {q for q, _ in s._ts.calls}
    assert len(sqls) == 1 and [t for _, t in s._ts.calls] == [None, "t1", "t2"]
    assert body["exact"] is True and body["error_bound"] == 0
    # ties by ad_id ascending in code-point order ("ad'q" < "ad-1": "'" sorts before "-")
    assert [(i["ad_id"], i["total"]) for i in body["items"]] == [("ad-7", 412), ("ad'q", 398), ("ad-1", 398)]
    assert body["freshness"]["watermark_ms"] == DAY0 + 10 * HOUR_MS and body["debug"]["requests"] == 3


def test_empty_top_keeps_freshness():
    body = QueryService(store(EMPTY_TOP), clock_ms=lambda: NOW).top({"last": "5m"})
    assert body["items"] == [] and body["exact"] is True
    assert body["freshness"]["newest_event_time_ms"] == DAY0 + 10 * HOUR_MS + 29_000


def test_series_from_recorded_rows_zero_filled():
    pages = [{"ColumnInfo": SERIES_COLUMNS, "Rows": [
        row(DAY0 + 10 * HOUR_MS, "cmp-1", "adv-1", 12, 10, 3_000_000, 2_500_000, DAY0, DAY0 + 1),
        row(DAY0 + 10 * HOUR_MS + 10 * MINUTE_MS, "cmp-1", "adv-1", 1, 0, 250_000, 0, DAY0, DAY0 + 1)]}]
    svc = QueryService(store(pages), clock_ms=lambda: NOW)
    body = svc.series("ad-7", {"resolution": "5m", "from": str(DAY0 + 10 * HOUR_MS), "to": str(DAY0 + 10 * HOUR_MS + 20 * MINUTE_MS)})
    assert [(p["clicks"], p["cost"]) for p in body["points"]] == [
        (12, "3.000000"), (0, "0.000000"), (1, "0.250000"), (0, "0.000000")]
    assert body["totals"] == {"clicks": 13, "billable_clicks": 10, "cost": "3.250000", "billable_cost": "2.500000"}
    assert body["campaign_id"] == "cmp-1"
    empty = [{"ColumnInfo": SERIES_COLUMNS, "Rows": [row(None, None, None, None, None, None, None, None, None)]}]
    body = QueryService(store(empty), clock_ms=lambda: NOW).series("nobody", {"last": "10m"})
    assert len(body["points"]) == 10 and body["totals"]["clicks"] == 0 and body["freshness"]["watermark"] is None


def test_health_and_bad_params_never_reach_timestream():
    s = store([{"ColumnInfo": [col("wm", "BIGINT"), col("me", "BIGINT")], "Rows": [row(DAY0, DAY0 + 5)]}])
    svc = QueryService(s, clock_ms=lambda: NOW)
    assert svc.health()["freshness"]["watermark_ms"] == DAY0 and svc.health is not None
    with pytest.raises(QueryError):
        svc.top({"k": "0"})
    assert len(s._ts.calls) == 1


def test_late_dropped_sql_and_answer():
    sql = SqlBuilder("db", "aggregates").late_dropped_sql(DAY0, DAY0 + HOUR_MS)
    assert sql == ('SELECT sum(late_dropped) AS ld FROM "db"."aggregates" WHERE measure_name = \'late\' '
                   f"AND time >= from_milliseconds({DAY0}) AND time < from_milliseconds({DAY0 + HOUR_MS})")
    fake = FakeTimestream([{"QueryId": "q", "ColumnInfo": [col("ld", "BIGINT")], "Rows": [row(17)]}])
    store = TimestreamQueryStore(fake, "db", "aggregates", clock_ms=lambda: NOW)
    assert store.late_dropped(DAY0, DAY0 + HOUR_MS) == (17, 1)
    empty = FakeTimestream([{"QueryId": "q", "ColumnInfo": [col("ld", "BIGINT")], "Rows": [row(None)]}])
    assert TimestreamQueryStore(empty, "db", "aggregates").late_dropped(DAY0, DAY0 + HOUR_MS) == (0, 1)
    assert store.last_reconciliation() == (None, None, 0)  # reconciliation reads DynamoDB only
