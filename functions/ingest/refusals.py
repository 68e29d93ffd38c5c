"""Refused items -> the refused-items archive (issue 17; records and layout: common.refused).

Pure builders (what the handler refused -> archive records) and one AWS edge, `RefusedArchive`:
PutRecordBatch on the refused delivery stream (Firehose Direct PUT). Archiving is best effort but
counted: it never raises (a refused request stays a 4xx, never a 5xx, whatever Firehose does),
and returns what it could not archive, which the handler counts (metric RefusedUnarchived) and
logs record by record, so nothing refused is lost without a trace.
"""
from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from common.refused import (GET_CLICK_LINK, ITEM_JSON, POST_CLICKS, QUERY_JSON, Reason,
                            capped_bytes, capped_text, encode_refused, json_text, refused_record)
from ingest.service import Refusal, RequestMeta

# PutRecordBatch limits: 500 records and 4 MiB per call
MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 4 * 1024 * 1024


def body_bytes(body: Optional[str], is_base64: bool) -> bytes:
    """The request body as API Gateway received it."""
    if not body:
        return b""
    if is_base64:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            pass
    return body.encode("utf-8", "surrogatepass")


def request_record(meta: RequestMeta, now_ms: int, status: int, field_name: str, code: str,
                   message: str, body: bytes, route: str = POST_CLICKS) -> dict[str, Any]:
    """A whole POST request (`route`: POST_CLICKS or POST_PUBLIC_CLICKS) refused before its
    clicks were looked at."""
    return refused_record(
        refused_at_ms=now_ms, request_id=meta.request_id, route=route,
        source_ip=meta.source_ip, user_agent=meta.user_agent, http_status=status, item_index=None,
        click_id=None, reasons=[Reason(field_name, code, message)], raw=capped_bytes(body))


def item_records(meta: RequestMeta, now_ms: int, status: int, items: Sequence[Any],
                 refusals: Iterable[Refusal], route: str = POST_CLICKS) -> list[dict[str, Any]]:
    """The rejected clicks of a batch (`route`: POST_CLICKS or POST_PUBLIC_CLICKS), each with
    its item as sent (on the public route too: the ip/user_agent it sent, which were ignored,
    are kept here as evidence)."""
    return [refused_record(
        refused_at_ms=now_ms, request_id=meta.request_id, route=route,
        source_ip=meta.source_ip, user_agent=meta.user_agent, http_status=status,
        item_index=r.index, click_id=r.click_id, reasons=r.reasons,
        raw=capped_text(json_text(items[r.index]), ITEM_JSON)) for r in refusals]


def link_record(meta: RequestMeta, now_ms: int, status: int, reason: str, message: str,
                query: Optional[Mapping[str, list]]) -> dict[str, Any]:
    """A click link (GET /v1/c) whose token was refused; raw = its query string parameters."""
    return refused_record(
        refused_at_ms=now_ms, request_id=meta.request_id, route=GET_CLICK_LINK,
        source_ip=meta.source_ip, user_agent=meta.user_agent, http_status=status,
        item_index=None, click_id=None, reasons=[Reason("t", reason, message)],
        raw=capped_text(json.dumps(dict(query or {}), ensure_ascii=False, separators=(",", ":")),
                        QUERY_JSON))


@dataclass
class ArchiveResult:
    archived: int = 0
    unarchived: list[dict[str, Any]] = field(default_factory=list)  # the records, for the logs
    errors: list[str] = field(default_factory=list)  # why (error codes / exceptions), deduplicated


def _chunks(encoded: list[bytes]) -> Iterable[list[int]]:
    """Indexes of `encoded` in PutRecordBatch-sized calls."""
    chunk: list[int] = []
    size = 0
    for i, data in enumerate(encoded):
        if chunk and (len(chunk) == MAX_RECORDS_PER_CALL or size + len(data) > MAX_BYTES_PER_CALL):
            yield chunk
            chunk, size = [], 0
        chunk.append(i)
        size += len(data)
    if chunk:
        yield chunk


class RefusedArchive:
    """PutRecordBatch of refused records; records Firehose answers with an ErrorCode (throttling,
    service unavailable) are put again, up to `max_attempts` calls in all."""

    def __init__(self, firehose, stream_name: str, max_attempts: int = 2,
                 backoff_s: float = 0.05, sleep: Callable[[float], None] = time.sleep) -> None:
        self._firehose, self.stream_name = firehose, stream_name
        self.max_attempts, self.backoff_s, self._sleep = max_attempts, backoff_s, sleep

    def put(self, records: list[dict[str, Any]]) -> ArchiveResult:
        """Never raises: whatever could not be archived is in the result."""
        result = ArchiveResult()
        encoded = [encode_refused(r) for r in records]
        for chunk in _chunks(encoded):
            pending = chunk
            for attempt in range(self.max_attempts):
                if attempt:
                    self._sleep(self.backoff_s * attempt)
                try:
                    answer = self._firehose.put_record_batch(
                        DeliveryStreamName=self.stream_name,
                        Records=[{"Data": encoded[i]} for i in pending])
                except Exception as exc:  # noqa: BLE001 - any failure: counted, never raised
                    _note(result, f"{type(exc).__name__}: {exc}")
                    continue
                failed = []
                for i, response in zip(pending, answer.get("RequestResponses") or []):
                    if response.get("ErrorCode"):
                        failed.append(i)
                        _note(result, f"{response['ErrorCode']}: {response.get('ErrorMessage', '')}")
                # a response shorter than the request leaves its tail unconfirmed: put it again
                failed += pending[len(answer.get("RequestResponses") or []):]
                result.archived += len(pending) - len(failed)
                pending = failed
                if not pending:
                    break
            result.unarchived += [records[i] for i in pending]
        return result


def _note(result: ArchiveResult, error: str) -> None:
    if error not in result.errors:
        result.errors.append(error)
