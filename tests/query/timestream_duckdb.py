"""Timestream for LiveAnalytics, emulated on DuckDB: the query store's SQL really runs.

moto only records Timestream calls, so without this the store's SQL is a string nobody executes.
`TimestreamOnDuckDB` is one client object with both halves the serving path uses:
  write_records(...)  what the sink's TimestreamServingStore calls (Timestream's upsert rules)
  query(...)          what TimestreamQueryStore calls: the SQL is translated (below), run in
                      DuckDB, and answered in the Query response shape, paged with NextToken
Requests and responses are checked against botocore's own timestream-write/timestream-query
models, so a parameter the real API would refuse fails here too.

Data model (write side), as documented for WriteRecords:
  a table has columns measure_name, time, one VARCHAR column per dimension name and, for MULTI
  records, one column per measure name (its type); a record absent a column reads NULL.
  A record is identified by (its dimensions, measure_name, time). A write with a higher Version
  replaces the stored record (all its measures); one with an equal or lower Version is accepted
  as a no-op if its measure values are identical, else rejected (RejectedRecordsException, the
  other records of the batch are written). Time is in MILLISECONDS (the only unit the sink uses).

SQL translation (`translate`): the statement is tokenized (string literals and quoted
identifiers are never looked into) and only these rewrites are made:
  1. from_milliseconds(x) -> epoch_ms(x): Timestream's epoch-ms -> TIMESTAMP; DuckDB has no
     from_milliseconds, its epoch_ms(BIGINT) is the same function.
  2. to_milliseconds(x) -> epoch_ms(x): Timestream's TIMESTAMP -> epoch-ms BIGINT is DuckDB's
     epoch_ms(TIMESTAMP). DuckDB's OWN to_milliseconds(n) means "an INTERVAL of n ms": a false
     friend that must never reach DuckDB untranslated.
Kept as is, because both dialects mean the same by them:
  - "db"."table": Timestream's database.table; DuckDB reads schema.table, and the emulator
    creates a schema named after the database holding the table.
  - string literals: '...' with '' for a quote and no backslash escapes, in both.
  - WITH, SELECT, WHERE, GROUP BY, HAVING, ORDER BY, LIMIT, LEFT JOIN ... ON TRUE, comparisons of
    TIMESTAMPs, and the functions sum, max, min, count, rank() OVER (...), CAST(x AS DOUBLE)
    (the '/' of two DOUBLEs is IEEE division in both).
  - NULL ordering: Timestream (Presto semantics) puts NULLs last for ASC and DESC; the DuckDB
    connection is set to default_null_order='nulls_last' explicitly.
Refused with TranslationError rather than guessed (the store emits none of them; a change that
starts using one must add a checked rewrite here first):
  - ago(), now(), current_timestamp/current_date/current_time: Timestream's server clock. The
    store passes its own clock as literals, which keeps its SQL testable.
  - bin() and duration literals (1h, 15m, 30s): Timestream-only syntax with no 1:1 DuckDB form.
  - measure_value::<type>, any '::' cast: single-measure records; the sink writes MULTI records,
    whose measures are plain columns.
  - interval literals and every function not listed above: not checked against Timestream.
Result types (Query response): DuckDB's sum(BIGINT) is HUGEINT where Timestream's is BIGINT, so
HUGEINT is answered as BIGINT (a value beyond 64 bits is an error, as Timestream's overflow is);
TIMESTAMP as 'YYYY-MM-DD HH:MM:SS.fffffffff' (Timestream's nanosecond text).
String order: DuckDB compares VARCHAR by code point (binary collation); Timestream documents no
collation. `collation=` runs the SQL under another one (e.g. 'nocase') to show an answer does not
depend on the engine's string order.
"""
from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

import botocore.session
import duckdb
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator


class TranslationError(ValueError):
    """Timestream SQL this emulator has no checked DuckDB translation for."""


RENAMED_FUNCTIONS = {"from_milliseconds": "epoch_ms", "to_milliseconds": "epoch_ms"}
SAME_FUNCTIONS = frozenset({"sum", "max", "min", "count", "rank", "cast"})
# words that may stand before "(" without being a function call
_KEYWORDS = frozenset({"and", "or", "not", "in", "as", "from", "join", "on", "where", "over", "exists",
                       "select", "with", "by", "having", "using", "when", "then", "else", "case", "all",
                       "any", "union", "intersect", "except", "values", "lateral"})
_FORBIDDEN_WORDS = {
    "measure_value": "measure_value is for single-measure records; MULTI measures are columns",
    "current_timestamp": "Timestream's server clock: pass the time as a literal",
    "current_date": "Timestream's server clock: pass the time as a literal",
    "current_time": "Timestream's server clock: pass the time as a literal",
    "interval": "interval literals are not translated",
}
_CLOCK_FUNCTIONS = {"ago", "now", "bin"}
_TOKEN = re.compile(r"""
    (?P<str>'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")*")
  | (?P<open>['"])
  | (?P<dur>[0-9]+(?:\.[0-9]+)?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<num>[0-9]+(?:\.[0-9]+)?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<cast>::)
  | (?P<ws>\s+)
  | (?P<other>.)
""", re.X | re.S)


def _tokens(sql: str) -> list[tuple[str, str]]:
    return [(m.lastgroup, m.group()) for m in _TOKEN.finditer(sql)]


def translate(sql: str) -> str:
    """Timestream SQL -> DuckDB SQL (rules in the module docstring)."""
    toks = _tokens(sql)
    out = []
    for i, (kind, text) in enumerate(toks):
        if kind == "open":
            raise TranslationError("unterminated string literal or quoted identifier")
        if kind == "dur":
            raise TranslationError(f"Timestream duration literal {text!r} has no DuckDB translation")
        if kind == "cast":
            raise TranslationError("'::' casts (measure_value::<type>) are not translated")
        if kind == "id":
            word = text.lower()
            nxt = next((t for k, t in toks[i + 1:] if k != "ws"), "")
            if word in _FORBIDDEN_WORDS:
                raise TranslationError(f"{text}: {_FORBIDDEN_WORDS[word]}")
            if nxt == "(" and word not in _KEYWORDS:
                if word in _CLOCK_FUNCTIONS:
                    raise TranslationError(f"{text}() is Timestream-only (clock/duration semantics)")
                if word in RENAMED_FUNCTIONS:
                    text = RENAMED_FUNCTIONS[word]
                elif word not in SAME_FUNCTIONS:
                    raise TranslationError(f"{text}() has no checked DuckDB translation")
        out.append(text)
    return "".join(out)


# -- the emulated service ----------------------------------------------------------------------
_MODELS = botocore.session.get_session()
_QUERY_OP = _MODELS.get_service_model("timestream-query").operation_model("Query")
_WRITE_OP = _MODELS.get_service_model("timestream-write").operation_model("WriteRecords")
_DUCK_TYPES = {"BIGINT": "BIGINT", "VARCHAR": "VARCHAR", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN",
               "TIMESTAMP": "TIMESTAMP"}
_INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
              "UINTEGER", "UBIGINT"}
_TYPED = {"BIGINT": int, "DOUBLE": float, "VARCHAR": str, "BOOLEAN": lambda v: v.lower() == "true"}
STALE_REASON = ("A record with the same dimensions, timestamp and measure name already exists "
                "with an equal or higher version.")


def _error(code: str, message: str, operation: str, **extra) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, **extra}, operation)


def _validate(params: dict, shape, operation: str) -> None:
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise _error("ValidationException", report.generate_report(), operation)


@dataclass
class _Stored:
    version: int
    measures: tuple  # ((name, type, value), ...) sorted


class TimestreamOnDuckDB:
    """timestream-write WriteRecords + timestream-query Query over one in-memory DuckDB. Calls are
    serialized (one lock): like a boto3 client, it may be shared by threads (the query API reads
    GET /v1/quality's parts concurrently)."""

    def __init__(self, database: str, table: str, page_size: int = 1000, empty_first_page: bool = True,
                 collation: str = ""):
        self.database, self.table = database, table
        self.page_size, self.empty_first_page, self.collation = page_size, empty_first_page, collation
        self.records: dict[tuple, _Stored] = {}
        self.queries: list[tuple[str, Optional[str]]] = []  # (QueryString, NextToken) per call
        self.translated: list[str] = []
        self._dirty, self._pending, self._ids = True, {}, itertools.count(1)
        self._lock = threading.RLock()
        self._con = duckdb.connect()
        self._con.execute("SET default_null_order = 'nulls_last'")
        self._con.execute(f"SET default_collation = '{collation}'")
        self._con.execute(f'CREATE SCHEMA "{database}"')

    # -- WriteRecords ---------------------------------------------------------------------
    def write_records(self, **params) -> dict:
        with self._lock:
            return self._write_records(**params)

    def _write_records(self, **params) -> dict:
        _validate(params, _WRITE_OP.input_shape, "WriteRecords")
        if (params["DatabaseName"], params["TableName"]) != (self.database, self.table):
            raise _error("ResourceNotFoundException", "no such table", "WriteRecords")
        records = params["Records"]
        if "CommonAttributes" in params:
            raise _error("ValidationException", "CommonAttributes is not emulated", "WriteRecords")
        if len(records) > 100:
            raise _error("ValidationException", "at most 100 records per WriteRecords", "WriteRecords")
        rejected = []
        for index, rec in enumerate(records):
            if (rec.get("TimeUnit", "MILLISECONDS") != "MILLISECONDS" or rec.get("MeasureValueType") != "MULTI"
                    or any(m["Type"] not in _TYPED for m in rec["MeasureValues"])):
                raise _error("ValidationException", "the emulator stores MULTI records in MILLISECONDS",
                             "WriteRecords")
            dims = tuple(sorted((d["Name"], d["Value"]) for d in rec.get("Dimensions", [])))
            key = (dims, rec["MeasureName"], int(rec["Time"]))
            measures = tuple(sorted((m["Name"], m["Type"], m["Value"]) for m in rec["MeasureValues"]))
            version = int(rec.get("Version", 1))
            old = self.records.get(key)
            if old is not None and version <= old.version:
                if measures != old.measures:
                    rejected.append({"RecordIndex": index, "Reason": STALE_REASON,
                                     "ExistingVersion": old.version})
                continue
            self.records[key] = _Stored(version, measures)
            self._dirty = True
        if rejected:
            raise _error("RejectedRecordsException", "One or more records have been rejected.",
                         "WriteRecords", RejectedRecords=rejected)
        written = len(records) - len(rejected)
        return {"RecordsIngested": {"Total": written, "MemoryStore": written, "MagneticStore": 0}}

    def rows(self) -> list[dict[str, Any]]:
        """The table as Timestream holds it: one dict per stored record (typed values)."""
        out = []
        for (dims, name, ms), stored in self.records.items():
            row = {"measure_name": name, "time_ms": ms, **dict(dims)}
            for m, kind, value in stored.measures:
                row[m] = _TYPED[kind](value)
            out.append(row)
        return out

    def _load(self) -> None:
        columns: dict[str, str] = {}
        for (dims, _, _), stored in self.records.items():
            for name, _ in dims:
                columns.setdefault(name, "VARCHAR")
            for name, kind, _ in stored.measures:
                if columns.setdefault(name, _DUCK_TYPES[kind]) != _DUCK_TYPES[kind]:
                    raise _error("ValidationException", f"column {name} has two types", "Query")
        names = sorted(columns)
        source = f'"{self.database}"."{self.table}"'
        self._con.execute(f"DROP TABLE IF EXISTS {source}")
        defs = ", ".join([f'"{n}" {columns[n]}' for n in names])
        self._con.execute(f"CREATE TABLE {source} (measure_name VARCHAR, time TIMESTAMP"
                          f"{', ' + defs if defs else ''})")
        rows = self.rows()
        lists = [[r["measure_name"] for r in rows], [r["time_ms"] for r in rows]]
        lists += [[r.get(n) for r in rows] for n in names]
        selects = ["unnest($1::VARCHAR[])", "epoch_ms(unnest($2::BIGINT[]))"]
        selects += [f"unnest(${i + 3}::{columns[n]}[])" for i, n in enumerate(names)]
        if rows:
            self._con.execute(f"INSERT INTO {source} SELECT {', '.join(selects)}", lists)
        self._dirty = False

    # -- Query ----------------------------------------------------------------------------
    def query(self, **params) -> dict:
        with self._lock:
            return self._query(**params)

    def _query(self, **params) -> dict:
        _validate(params, _QUERY_OP.input_shape, "Query")
        sql, token = params["QueryString"], params.get("NextToken")
        self.queries.append((sql, token))
        if token is None:
            if self._dirty:
                self._load()
            try:
                duck_sql = translate(sql)
            except TranslationError as exc:
                raise _error("ValidationException", str(exc), "Query") from None
            self.translated.append(duck_sql)
            try:
                cur = self._con.execute(duck_sql)
            except duckdb.Error as exc:
                raise _error("ValidationException", f"DuckDB: {exc}", "Query") from None
            columns = [(d[0], _scalar_type(str(d[1]))) for d in cur.description]
            rows = [_row(values, columns) for values in cur.fetchall()]
            query_id = f"q-{next(self._ids)}"
            size = min(self.page_size, params.get("MaxRows") or self.page_size)
            pages = [rows[i : i + size] for i in range(0, len(rows), size)] or [[]]
            if self.empty_first_page and rows:  # Timestream may answer a running query with no rows
                pages.insert(0, [])
            token = f"{query_id}/0"
            self._pending[token] = {"sql": sql, "query_id": query_id, "columns": columns, "pages": pages}
        state = self._pending.pop(token, None)
        if state is None:
            raise _error("ValidationException", f"unknown or used NextToken {token!r}", "Query")
        if state["sql"] != sql:
            raise _error("ValidationException", "NextToken belongs to another QueryString", "Query")
        index = int(token.rsplit("/", 1)[1])
        resp = {"QueryId": state["query_id"], "Rows": state["pages"][index],
                "ColumnInfo": [{"Name": n, "Type": {"ScalarType": t}} for n, t in state["columns"]],
                "QueryStatus": {"ProgressPercentage": 100.0 * (index + 1) / len(state["pages"]),
                                "CumulativeBytesScanned": 0, "CumulativeBytesMetered": 0}}
        if index + 1 < len(state["pages"]):
            resp["NextToken"] = f"{state['query_id']}/{index + 1}"
            self._pending[resp["NextToken"]] = state
        _validate(resp, _QUERY_OP.output_shape, "Query")  # the response is Timestream's shape
        return resp


def _scalar_type(duck_type: str) -> str:
    if duck_type in _INT_TYPES:
        return "BIGINT"
    if duck_type in ("DOUBLE", "FLOAT"):
        return "DOUBLE"
    if duck_type.startswith("TIMESTAMP"):
        return "TIMESTAMP"
    if duck_type in ("VARCHAR", "BOOLEAN"):
        return duck_type
    raise _error("ValidationException", f"no Timestream type for DuckDB {duck_type}", "Query")


def _datum(value: Any, scalar_type: str) -> dict:
    if value is None:
        return {"NullValue": True}
    if scalar_type == "BIGINT":
        if not -(2 ** 63) <= int(value) < 2 ** 63:
            raise _error("ValidationException", f"BIGINT overflow: {value}", "Query")
        return {"ScalarValue": str(int(value))}
    if scalar_type == "BOOLEAN":
        return {"ScalarValue": "true" if value else "false"}
    if scalar_type == "DOUBLE":
        return {"ScalarValue": repr(float(value))}
    if scalar_type == "TIMESTAMP":
        assert isinstance(value, datetime)
        return {"ScalarValue": value.strftime("%Y-%m-%d %H:%M:%S.%f") + "000"}
    return {"ScalarValue": str(value)}


def _row(values: tuple, columns: list[tuple[str, str]]) -> dict:
    return {"Data": [_datum(v, t) for v, (_, t) in zip(values, columns)]}
