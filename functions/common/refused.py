"""The refused-items archive (issue 17, "nothing is lost"): one definition of its records,
layout and table, used by ingest (the records it puts), infra (the Firehose delivery stream, the
Glue table, its partition projection) and the local writer (local.refused_delivery).

What lands here: every item ingest refuses, with its reasons, so a dispute can be answered
later: a click of a batch that is `rejected` (invalid fields; under click_token_mode=enforce,
and always on POST /v1/public/clicks, a token refusal), a whole request refused before its clicks
were looked at (400 bad JSON / not a click batch / no clicks, 413 too large / too many clicks, 415
wrong Content-Type), on either POST route (`route` tells them apart), and a click link
(GET /v1/c) whose token is refused (400/403/410). Not here: duplicates and retryable clicks
(nothing was refused: the client is told to send the click again), requests API Gateway or WAF
refuse before the Lambda runs (their access logs / WAF logs have them).

Format: one JSON object per refused item, newline-terminated (JSON Lines), GZIP-compressed by
Firehose into objects `refused/clicks/dt=YYYY-MM-DD/hr=HH/*.json.gz` (Firehose's arrival time,
UTC). JSON rather than the raw archive's Parquet: the item is kept as text exactly as it was
re-serialized (no schema coercion, nothing a record-format conversion could divert to the error
prefix, which is the one place a refused item must not end up), the volume is small, and Athena
(OpenX JSON SerDe, gzip by extension) and DuckDB (`read_json`) read the same objects.

`reasons` is an array of {field, reason, message}: `reason` is a code (token refusals:
click_token.REASONS + missing_token/token_mismatch; invalid fields: pydantic's error type, e.g.
`missing`, `string_too_long`, or ours: `too_far_in_future`, `too_old`, `not_an_object`; whole
requests: REQUEST_CODES), `message` what the client was told (token refusals: the verifier's
detail, which clients never see). `reason_codes` is the same as flat "field:reason" strings: the
form both Athena (Trino) and DuckDB can UNNEST alike (an array of structs unnests into columns in
Trino but into one struct column in DuckDB), used by the named query refused_clicks_by_reason.

`raw`: at most RAW_MAX_BYTES (8 KiB) of UTF-8, `truncated` when there was more, `raw_bytes` the
full size, `raw_format` what it is:
  item_json    a click of a batch, re-serialized from the parsed body (same JSON value and key
               order; numbers as sent, the whitespace between tokens is not kept)
  body_text    a whole request's body as received (UTF-8)
  body_base64  a whole request's body that is not UTF-8: base64 of its first RAW_MAX_BYTES bytes
  query_json   a click link's query string parameters as API Gateway passed them ({name: [values]})
"""
from __future__ import annotations

import base64
import codecs
import json
from decimal import Decimal
from typing import Any, Iterable, NamedTuple, Optional

from common.archive import PARTITION_KEYS, partition_of, partition_projection
from common.schema import SETTINGS

REFUSED_PREFIX = "refused/clicks/"
REFUSED_ERROR_PREFIX = "errors/refused/"
TABLE = "refused_clicks"
FILE_EXTENSION = ".json.gz"
FIREHOSE_PREFIX = REFUSED_PREFIX + "dt=!{timestamp:yyyy-MM-dd}/hr=!{timestamp:HH}/"
FIREHOSE_ERROR_PREFIX = (REFUSED_ERROR_PREFIX
                         + "!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/")
# Firehose buffering: refused items are few and a dispute is not urgent; the smallest objects
# Athena reads well, at most 5 minutes late
BUFFER_MB = 5
BUFFER_INTERVAL_S = 300

# The ingest Lambda's variable naming the delivery stream: the schema's setting
# `refused_delivery_stream` (group ingest, wired: infra writes it, the local stack sets it);
# unset or empty = no archive, the refused items are only answered and logged.
STREAM_ENV = next(s.env for s in SETTINGS if s.name == "refused_delivery_stream")


def delivery_stream_name(prefix: str) -> str:
    """The delivery stream's physical name for a stack prefix (common.schema.ResourceNames')."""
    return f"{prefix}-refused"


RAW_MAX_BYTES = 8 * 1024
MAX_TEXT = 2048  # user agent, message: longer values are cut (the raw item keeps the rest)
MAX_CLICK_ID = 256  # a refused click_id may be anything (too long is one reason to refuse it)

# raw_format values
ITEM_JSON, BODY_TEXT, BODY_BASE64, QUERY_JSON = "item_json", "body_text", "body_base64", "query_json"
# routes
POST_CLICKS, GET_CLICK_LINK = "POST /v1/clicks", "GET /v1/c"
POST_PUBLIC_CLICKS = "POST /v1/public/clicks"  # browsers and apps, no API key (ingest.public)
POST_EVENTS = "POST /v1/events"  # impressions, clicks, conversions (ingest.events); click_id = the event's id

# reason codes of whole-request refusals (field: body, clicks or content_type)
REQUEST_CODES = ("empty_body", "body_too_large", "too_deeply_nested", "invalid_json",
                 "not_a_click_batch", "clicks_not_an_array", "no_clicks", "too_many_clicks",
                 "unsupported_media_type", "not_an_event_batch", "events_not_an_array", "no_events",
                 "too_many_events")

REASON_TYPE = "struct<field:string,reason:string,message:string>"
# Glue/Athena columns, in record order (the JSON objects' keys); partition keys: archive's dt/hr
COLUMNS: list[tuple[str, str]] = [
    ("refused_at", "bigint"),  # epoch ms, when ingest refused it
    ("request_id", "string"),  # API Gateway's request id (the clicks stream's request_id)
    ("route", "string"),  # POST_CLICKS | POST_PUBLIC_CLICKS | GET_CLICK_LINK
    ("source_ip", "string"),
    ("user_agent", "string"),
    ("http_status", "int"),  # of the response that refused it (202 when others were accepted)
    ("item_index", "int"),  # position in the batch; null for a whole request or a click link
    ("click_id", "string"),  # as sent, when it was a string; null otherwise
    ("reasons", f"array<{REASON_TYPE}>"),
    ("reason_codes", "array<string>"),  # "field:reason" per reason
    ("raw", "string"),
    ("raw_format", "string"),
    ("raw_bytes", "bigint"),  # the full size of what `raw` is the start of
    ("truncated", "boolean"),
]
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
__all__ = ["PARTITION_KEYS", "partition_of"]  # re-exported: the same dt/hr as the raw archive


class Reason(NamedTuple):
    field: str
    reason: str  # a code
    message: str = ""


def partition_prefix(refused_at_ms: int) -> str:
    dt, hr = partition_of(refused_at_ms)
    return f"{REFUSED_PREFIX}dt={dt}/hr={hr}/"


def table_projection(bucket: str, start_date: str = "2026-01-01") -> dict[str, str]:
    """Athena partition projection of the refused table (the raw table's, on this prefix)."""
    return partition_projection(bucket, start_date, prefix=REFUSED_PREFIX)


# --- raw content, capped ------------------------------------------------------------------------
def _cap_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def capped_bytes(data: bytes, limit: int = RAW_MAX_BYTES) -> tuple[str, str, int, bool]:
    """(raw, raw_format, raw_bytes, truncated) of a request body: its first `limit` bytes as
    text when they are UTF-8 (a character cut by the limit is left out whole), else base64."""
    head = data[:limit]
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(data) <= limit)
    except UnicodeDecodeError:
        return base64.b64encode(head).decode("ascii"), BODY_BASE64, len(data), len(data) > limit
    return text, BODY_TEXT, len(data), len(data) > limit


def capped_text(text: str, raw_format: str, limit: int = RAW_MAX_BYTES) -> tuple[str, str, int, bool]:
    """(raw, raw_format, raw_bytes, truncated) of text we serialized ourselves (JSON): UTF-8,
    lone surrogates (from "\\udXXX" escapes in the body) written back as the same JSON escape."""
    data = text.encode("utf-8", "backslashreplace")
    head = codecs.getincrementaldecoder("utf-8")().decode(data[:limit], final=False) \
        if len(data) > limit else data.decode("utf-8")
    return head, raw_format, len(data), len(data) > limit


class _Literal(str):
    """Already-serialized JSON text on json_text's work stack."""


def json_text(value: Any) -> str:
    """`value` (as json.loads(..., parse_float=Decimal) made it) back as compact JSON text, keys
    in their order, decimals as their own digits. Iterative: a body json.loads accepted may be
    nested deeper than a recursive encoder can follow from inside the handler."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, _Literal):
            out.append(v)
        elif isinstance(v, dict):
            parts: list[Any] = [_Literal("{")]
            for i, (k, x) in enumerate(v.items()):
                parts.append(_Literal(("," if i else "") + json.dumps(str(k), ensure_ascii=False) + ":"))
                parts.append(x)
            parts.append(_Literal("}"))
            stack.extend(reversed(parts))
        elif isinstance(v, list):
            parts = [_Literal("[")]
            for i, x in enumerate(v):
                if i:
                    parts.append(_Literal(","))
                parts.append(x)
            parts.append(_Literal("]"))
            stack.extend(reversed(parts))
        elif isinstance(v, Decimal):
            out.append(str(v))  # finite (the body's NaN/Infinity are refused): valid JSON number text
        elif isinstance(v, str) and not isinstance(v, _Literal):
            out.append(json.dumps(v, ensure_ascii=False))
        else:  # None, bool, int, float
            out.append(json.dumps(v))
    return "".join(out)


# --- the record ---------------------------------------------------------------------------------
def refused_record(*, refused_at_ms: int, request_id: Optional[str], route: str,
                   source_ip: Optional[str], user_agent: Optional[str], http_status: int,
                   item_index: Optional[int], click_id: Optional[str],
                   reasons: Iterable[Reason], raw: tuple[str, str, int, bool]) -> dict[str, Any]:
    """One refused item (keys: COLUMNS, in order). `raw`: capped_bytes / capped_text's result."""
    reasons = [Reason(r.field, r.reason, _cap_text(r.message or "", MAX_TEXT)) for r in reasons]
    text, raw_format, raw_bytes, truncated = raw
    return {
        "refused_at": refused_at_ms,
        "request_id": request_id,
        "route": route,
        "source_ip": source_ip,
        "user_agent": None if user_agent is None else _cap_text(user_agent, MAX_TEXT),
        "http_status": http_status,
        "item_index": item_index,
        "click_id": None if click_id is None else _cap_text(click_id, MAX_CLICK_ID),
        "reasons": [r._asdict() for r in reasons],
        # ':' separates field and code (named query refused_clicks_by_reason: split_part)
        "reason_codes": [f"{r.field.replace(':', '.')}:{r.reason.replace(':', '.')}" for r in reasons],
        "raw": text,
        "raw_format": raw_format,
        "raw_bytes": raw_bytes,
        "truncated": truncated,
    }


def encode_refused(record: dict[str, Any]) -> bytes:
    """One JSON line (Firehose concatenates records: the newline separates them in S3). ASCII
    only (other characters as \\u escapes): no reader can mistake a character of a hostile
    value (U+2028, U+0085, a lone surrogate) for a line end or an encoding error."""
    line = json.dumps({k: record.get(k) for k in COLUMN_NAMES}, ensure_ascii=True,
                      separators=(",", ":"))
    return (line + "\n").encode("ascii")


def decode_refused_lines(data: bytes) -> list[dict[str, Any]]:
    """The records of a JSON Lines object (uncompressed); lines end at \\n only."""
    return [json.loads(line) for line in data.split(b"\n") if line.strip()]
