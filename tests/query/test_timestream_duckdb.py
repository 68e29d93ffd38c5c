"""The Timestream -> DuckDB translation and the emulated Timestream (tests/query/timestream_duckdb.py):
each rewrite, each refusal, Timestream's upsert rules, response types and NextToken paging."""
from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest
from botocore.exceptions import ClientError

from serving.read.timestream import SqlBuilder
from query.windows import parse_series, parse_top
from tests.query.timestream_duckdb import TimestreamOnDuckDB, TranslationError, translate

T = 1_795_000_000_000 - 1_795_000_000_000 % 3_600_000


def duck(sql: str):
    return duckdb.connect().execute(translate(sql)).fetchall()


def test_from_and_to_milliseconds_become_epoch_ms_and_round_trip():
    assert translate("SELECT from_milliseconds(5)") == "SELECT epoch_ms(5)"
    assert translate("SELECT TO_MILLISECONDS(time) FROM t") == "SELECT epoch_ms(time) FROM t"
    assert duck(f"SELECT to_milliseconds(from_milliseconds({T + 123}))") == [(T + 123,)]
    # a UTC timestamp, not an interval: DuckDB's own to_milliseconds(n) is an INTERVAL of n ms
    assert duck(f"SELECT from_milliseconds({T})") == [(datetime(1970, 1, 1) + timedelta(milliseconds=T),)]
    assert "interval" in str(duckdb.connect().execute("SELECT to_milliseconds(5)").description[0][1]).lower()


def test_literals_and_quoted_identifiers_are_never_rewritten():
    sql = """SELECT 'from_milliseconds(1) ago(1h) x::bigint', "to_milliseconds" FROM "db"."t" WHERE a = 'it''s'"""
    assert translate(sql) == sql
    assert duck("SELECT 'a\\b' AS s, 'it''s' AS q") == [("a\\b", "it's")]  # no backslash escapes


def test_keywords_before_parenthesis_and_allowed_functions_pass():
    sql = ("WITH x AS (SELECT a, sum(b) AS s, max(c), min(c), count(*), rank() OVER (ORDER BY sum(b) DESC) AS r "
           "FROM t WHERE (a = 'q') AND (b IN (1, 2)) OR NOT (c = 1) GROUP BY a HAVING (sum(b) > 0)) "
           "SELECT * FROM x f LEFT JOIN x g ON TRUE")
    assert translate(sql) == sql


@pytest.mark.parametrize("sql, reason", [
    ("SELECT * FROM t WHERE time > ago(1h)", "Timestream-only"),
    ("SELECT * FROM t WHERE time > x - 15m", "duration literal"),
    ("SELECT bin(time, x) FROM t", "Timestream-only"),
    ("SELECT now()", "Timestream-only"),
    ("SELECT current_timestamp", "clock"),
    ("SELECT measure_value::bigint FROM t", "single-measure"),
    ("SELECT x::bigint FROM t", "casts"),
    ("SELECT date_trunc('hour', time) FROM t", "no checked DuckDB translation"),
    ("SELECT time + interval '1' hour FROM t", "interval"),
    ("SELECT 'open FROM t", "unterminated"),
    ('SELECT "open FROM t', "unterminated"),
])
def test_untranslated_timestream_sql_is_refused(sql, reason):
    with pytest.raises(TranslationError, match=reason):
        translate(sql)


def test_every_statement_the_store_builds_translates():
    b = SqlBuilder("clickagg", "aggregates")
    now = T + 30 * 60_000
    for sql in (b.top_sql(parse_top({"last": "3h", "metric": "cost", "campaign_id": "c'1"}, now), now),
                b.series_sql(parse_series("ad'q", {"last": "2h", "resolution": "5m"}, now), now),
                b.freshness_sql(now), b.late_dropped_sql(T, now)):
        out = translate(sql)
        assert "from_milliseconds" not in out and "to_milliseconds" not in out and "epoch_ms(" in out


def rec(ad: str, minute: int, version: int, clicks: int, res: str = "1m", **extra) -> dict:
    measures = [("clicks", clicks), *extra.items()]
    return {"Dimensions": [{"Name": "ad_id", "Value": ad, "DimensionValueType": "VARCHAR"},
                           {"Name": "resolution", "Value": res, "DimensionValueType": "VARCHAR"}],
            "MeasureName": "agg", "MeasureValueType": "MULTI", "Time": str(T + minute * 60_000),
            "TimeUnit": "MILLISECONDS", "Version": version,
            "MeasureValues": [{"Name": k, "Value": str(v), "Type": "BIGINT"} for k, v in measures]}


def write(ts, *records):
    return ts.write_records(DatabaseName="db", TableName="t", Records=list(records))


def test_upserts_higher_version_wins_stale_rejected_rest_of_batch_written():
    ts = TimestreamOnDuckDB("db", "t")
    write(ts, rec("a", 0, 2, 5), rec("a", 0, 2, 5), rec("a", 0, 1, 5))  # same values: no-op
    with pytest.raises(ClientError) as err:
        write(ts, rec("a", 0, 1, 3), rec("b", 0, 1, 4), rec("a", 0, 2, 9), rec("a", 0, 3, 7))
    assert err.value.response["Error"]["Code"] == "RejectedRecordsException"
    assert [r["RecordIndex"] for r in err.value.response["RejectedRecords"]] == [0, 2]
    # a record is (dimensions, measure_name, time): 1m and 5m rows of one ad and time are two
    write(ts, rec("a", 0, 1, 11, res="5m", watermark=T))
    rows = sorted(ts.rows(), key=lambda r: (r["ad_id"], r["resolution"]))
    assert [(r["ad_id"], r["resolution"], r["clicks"], r.get("watermark")) for r in rows] == [
        ("a", "1m", 7, None), ("a", "5m", 11, T), ("b", "1m", 4, None)]
    with pytest.raises(ClientError, match="Unknown parameter"):
        ts.write_records(DatabaseName="db", TableName="t", Records=[rec("a", 0, 9, 1)], Bogus=1)
    with pytest.raises(ClientError, match="at most 100"):
        write(ts, *[rec("a", i, 1, 1) for i in range(101)])


def test_query_types_nulls_and_paging_with_next_token():
    ts = TimestreamOnDuckDB("db", "t", page_size=2)
    write(ts, *[rec(f"ad-{i}", i, 1, 10 + i) for i in range(5)], rec("x", 9, 1, 2, watermark=T))
    sql = ('SELECT ad_id, sum(clicks) AS s, max(watermark) AS wm, from_milliseconds(0) AS t0, '
           'to_milliseconds(max(time)) AS last FROM "db"."t" GROUP BY ad_id ORDER BY s DESC')
    pages, token = [], None
    while True:
        page = ts.query(QueryString=sql, **({"NextToken": token} if token else {}))
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p["Rows"]) for p in pages] == [0, 2, 2, 2]  # empty first page, then 2 per page
    assert {p["QueryId"] for p in pages} == {"q-1"}
    assert [(c["Name"], c["Type"]["ScalarType"]) for c in pages[0]["ColumnInfo"]] == [
        ("ad_id", "VARCHAR"), ("s", "BIGINT"), ("wm", "BIGINT"), ("t0", "TIMESTAMP"), ("last", "BIGINT")]
    first = pages[1]["Rows"][0]["Data"]
    assert first == [{"ScalarValue": "ad-4"}, {"ScalarValue": "14"}, {"NullValue": True},
                     {"ScalarValue": "1970-01-01 00:00:00.000000000"}, {"ScalarValue": str(T + 4 * 60_000)}]
    last = pages[-1]["Rows"][-1]["Data"][:3]
    assert last == [{"ScalarValue": "x"}, {"ScalarValue": "2"}, {"ScalarValue": str(T)}]
    # a NextToken is used once, with the query it belongs to
    page = ts.query(QueryString=sql)
    with pytest.raises(ClientError, match="another QueryString"):
        ts.query(QueryString=sql + " ", NextToken=page["NextToken"])
    with pytest.raises(ClientError, match="unknown or used"):
        ts.query(QueryString=sql, NextToken=pages[1]["NextToken"])
    with pytest.raises(ClientError, match="Timestream-only"):
        ts.query(QueryString='SELECT * FROM "db"."t" WHERE time > ago(15m)')


def test_collation_option_changes_string_order():
    for collation, expected in (("", ["B", "a"]), ("nocase", ["a", "B"])):
        ts = TimestreamOnDuckDB("db", "t", empty_first_page=False, collation=collation)
        write(ts, rec("a", 0, 1, 1), rec("B", 0, 1, 1))
        page = ts.query(QueryString='SELECT ad_id FROM "db"."t" ORDER BY ad_id')
        assert [r["Data"][0]["ScalarValue"] for r in page["Rows"]] == expected
