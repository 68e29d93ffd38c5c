"""The refused-items archive's pure parts (common.refused, ingest.refusals): capping raw content at
a UTF-8 boundary, re-serializing a parsed item exactly, the record's shape, PutRecordBatch chunks
and retries (with a fake Firehose client), reason codes; the local writer's object layout."""
from __future__ import annotations

import base64
import gzip
import json
from decimal import Decimal

import pytest

from common.refused import (BODY_BASE64, BODY_TEXT, COLUMN_NAMES, ITEM_JSON, RAW_MAX_BYTES, Reason,
                            capped_bytes, capped_text, decode_refused_lines, encode_refused,
                            json_text, partition_prefix, refused_record, table_projection)
from ingest.refusals import MAX_BYTES_PER_CALL, RefusedArchive, body_bytes
from local.refused_delivery import objects_for
from tools.analytics import duckdb_type

NOW_MS = 1_798_761_598_000  # 2026-12-31T23:59:58Z


def test_capped_bytes_cuts_at_a_character_boundary():
    assert capped_bytes(b"abc") == ("abc", BODY_TEXT, 3, False)
    assert capped_bytes(b"") == ("", BODY_TEXT, 0, False)
    exact = "é" * (RAW_MAX_BYTES // 2)
    assert capped_bytes(exact.encode()) == (exact, BODY_TEXT, RAW_MAX_BYTES, False)
    cut = ("x" + "é" * (RAW_MAX_BYTES // 2)).encode()  # the last é straddles the cap
    assert capped_bytes(cut) == ("x" + "é" * (RAW_MAX_BYTES // 2 - 1), BODY_TEXT, RAW_MAX_BYTES + 1, True)


def test_capped_bytes_that_are_not_utf8_are_base64():
    data = b"\xff" * (RAW_MAX_BYTES + 5)
    raw, fmt, size, truncated = capped_bytes(data)
    assert (fmt, size, truncated) == (BODY_BASE64, RAW_MAX_BYTES + 5, True)
    assert base64.b64decode(raw) == b"\xff" * RAW_MAX_BYTES
    # an invalid byte inside the cap decides, not a character cut by it
    assert capped_bytes(b"ok\xc3")[1] == BODY_BASE64
    assert capped_bytes(b"ok\xc3\xa9") == ("oké", BODY_TEXT, 4, False)


def test_capped_text_escapes_lone_surrogates_as_json_does():
    assert capped_text('{"a":"\ud800"}', ITEM_JSON) == ('{"a":"\\ud800"}', ITEM_JSON, 14, False)
    assert json.loads('{"a":"\\ud800"}') == {"a": "\ud800"}


@pytest.mark.parametrize("text", [
    '{"click_id":"c1","cost":1.10,"n":[1,-0.0,1E+3,true,false,null],"s":"é\\"\\n"}',
    '[]', '{}', '"x"', '12345678901234567890.123456789', '[{"a":{}},[[]]]',
])
def test_json_text_gives_back_the_parsed_value_as_sent(text):
    value = json.loads(text, parse_float=Decimal)
    assert json_text(value) == text


def test_json_text_follows_nesting_a_recursive_encoder_cannot():
    value = json.loads("[" * 900 + "]" * 900)
    for _ in range(5):
        value = [[[[[[[[[[[[[[[[[[[[value]]]]]]]]]]]]]]]]]]]]  # 1000 levels
    assert json_text(value) == "[" * 1000 + "]" * 1000


def test_record_shape_and_reason_codes():
    record = refused_record(
        refused_at_ms=NOW_MS, request_id="r", route="POST /v1/clicks", source_ip="192.0.2.1",
        user_agent="u" * 3000, http_status=202, item_index=3, click_id="c" * 300,
        reasons=[Reason("token", "bad_signature", "key id 'k1'"), Reason("a:b", "x:y", "m" * 3000)],
        raw=("{}", ITEM_JSON, 2, False))
    assert tuple(record) == COLUMN_NAMES
    assert (len(record["user_agent"]), len(record["click_id"])) == (2048, 256)
    assert record["reasons"] == [{"field": "token", "reason": "bad_signature", "message": "key id 'k1'"},
                                 {"field": "a:b", "reason": "x:y", "message": "m" * 2048}]
    assert record["reason_codes"] == ["token:bad_signature", "a.b:x.y"]  # one ':' per code
    line = encode_refused(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_refused_lines(line + line) == [record, record]


def test_layout():
    assert partition_prefix(NOW_MS) == "refused/clicks/dt=2026-12-31/hr=23/"
    assert partition_prefix(NOW_MS + 2000) == "refused/clicks/dt=2027-01-01/hr=00/"
    assert table_projection("b")["storage.location.template"] == \
        "s3://b/refused/clicks/dt=${dt}/hr=${hr}/"


def test_body_bytes():
    assert body_bytes(None, False) == b"" and body_bytes("", True) == b""
    assert body_bytes("é", False) == "é".encode()
    assert body_bytes(base64.b64encode(b"\xff\x00").decode(), True) == b"\xff\x00"
    assert body_bytes("not base64!", True) == b"not base64!"


class FakeFirehose:
    """Answers each call from `script` (a list per call: True = this record fails), records calls."""

    def __init__(self, script=()):
        self.script, self.calls = list(script), []

    def put_record_batch(self, DeliveryStreamName, Records):
        self.calls.append([json.loads(r["Data"])["item_index"] for r in Records])
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        fails = step or [False] * len(Records)
        return {"FailedPutCount": sum(fails), "RequestResponses": [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "busy"} if f else {"RecordId": "x"}
            for f in fails]}


def records(n: int, raw_size: int = 10) -> list[dict]:
    return [refused_record(refused_at_ms=NOW_MS, request_id="r", route="POST /v1/clicks",
                           source_ip=None, user_agent=None, http_status=400, item_index=i, click_id=None,
                           reasons=[Reason("body", "invalid_json")],
                           raw=("x" * raw_size, BODY_TEXT, raw_size, False)) for i in range(n)]


def test_put_chunks_by_500_records_and_by_4_mib():
    fh = FakeFirehose()
    assert RefusedArchive(fh, "s").put(records(1201)).archived == 1201
    assert [len(c) for c in fh.calls] == [500, 500, 201]
    big = records(600, raw_size=8192)  # ~8.4 KB per line: 4 MiB hold ~495
    per_line = len(encode_refused(big[0]))
    fh = FakeFirehose()
    result = RefusedArchive(fh, "s").put(big)
    assert result.archived == 600 and result.unarchived == []
    assert [len(c) for c in fh.calls] == [MAX_BYTES_PER_CALL // per_line, 600 - MAX_BYTES_PER_CALL // per_line]
    assert sum(fh.calls, []) == list(range(600))


def test_put_retries_failed_records_then_reports_them():
    sleeps: list[float] = []
    fh = FakeFirehose([[False, True, False, True], [True, False], [True]])
    result = RefusedArchive(fh, "s", max_attempts=3, sleep=sleeps.append).put(records(4))
    assert fh.calls == [[0, 1, 2, 3], [1, 3], [1]]
    assert (result.archived, [r["item_index"] for r in result.unarchived]) == (3, [1])
    assert result.errors == ["ServiceUnavailableException: busy"] and sleeps == [0.05, 0.1]


def test_put_never_raises():
    fh = FakeFirehose([RuntimeError("boom"), RuntimeError("boom")])
    result = RefusedArchive(fh, "s", sleep=lambda s: None).put(records(2))
    assert (result.archived, len(result.unarchived), result.errors) == (0, 2, ["RuntimeError: boom"])
    assert RefusedArchive(FakeFirehose(), "s").put([]).archived == 0


def test_put_treats_a_short_answer_as_unconfirmed():
    class Short(FakeFirehose):
        def put_record_batch(self, DeliveryStreamName, Records):
            self.calls.append(len(Records))
            return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "x"}]}

    fh = Short()
    result = RefusedArchive(fh, "s", sleep=lambda s: None).put(records(3))
    assert fh.calls == [3, 2] and result.archived == 2 and len(result.unarchived) == 1


def test_local_writer_splits_a_staged_object_by_partition():
    late = dict(records(1)[0], refused_at=NOW_MS + 2000, item_index=9)
    staged = b"".join(encode_refused(r) for r in [*records(2), late])
    out = objects_for("local-firehose/refused/2026/12/31/23/clickagg-refused-1-x", staged)
    assert [k for k, _ in out] == [
        "refused/clicks/dt=2026-12-31/hr=23/clickagg-refused-1-x.json.gz",
        "refused/clicks/dt=2027-01-01/hr=00/clickagg-refused-1-x.json.gz"]
    assert [[r["item_index"] for r in decode_refused_lines(gzip.decompress(b))] for _, b in out] == [[0, 1], [9]]
    assert objects_for("k", staged) == objects_for("k", staged)  # deterministic (a rewrite is the same)


def test_duckdb_types_of_the_glue_columns():
    assert duckdb_type("array<struct<field:string,reason:string,message:string>>") == \
        "STRUCT(field VARCHAR, reason VARCHAR, message VARCHAR)[]"
    assert duckdb_type("array<string>") == "VARCHAR[]" and duckdb_type("boolean") == "BOOLEAN"
    with pytest.raises(ValueError):
        duckdb_type("map<string,string>")


def test_a_line_is_ascii_and_one_line_whatever_the_values():
    """Hostile values (Unicode line separators, NEL, a lone surrogate, CR) stay inside one
    ASCII line and come back exactly."""
    odd = "a\u2028b\x85c\ud800d\re\nf\u00e9"
    record = refused_record(refused_at_ms=NOW_MS, request_id=odd, route="GET /v1/c", source_ip=None,
                            user_agent=odd, http_status=400, item_index=None, click_id=odd,
                            reasons=[Reason("t", "malformed", odd)], raw=(odd, BODY_TEXT, 1, False))
    line = encode_refused(record)
    assert line.isascii() and line.count(b"\n") == 1 and b"\r" not in line
    assert decode_refused_lines(line * 3) == [record] * 3
