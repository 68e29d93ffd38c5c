"""Kinesis PutRecords with per-record retry: what fails is retried with backoff, what keeps
failing is handed back so the caller can release its dedup claim and tell the client to retry."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024


@dataclass(frozen=True)
class OutRecord:
    key: int  # caller's handle (index in the request)
    data: bytes
    partition_key: str


@dataclass
class PublishResult:
    succeeded: list[int]
    failed: list[int]
    calls: int = 0
    retried_records: int = 0


def chunk_records(records: list[OutRecord]) -> list[list[OutRecord]]:
    """Split into PutRecords calls of <= 500 records and <= 5 MiB (data + partition keys)."""
    chunks, current, size = [], [], 0
    for rec in records:
        rec_size = len(rec.data) + len(rec.partition_key.encode("utf-8"))
        if current and (len(current) == MAX_RECORDS_PER_CALL or size + rec_size > MAX_BYTES_PER_CALL):
            chunks.append(current)
            current, size = [], 0
        current.append(rec)
        size += rec_size
    if current:
        chunks.append(current)
    return chunks


class KinesisPublisher:
    def __init__(self, client, stream: str, max_attempts: int, backoff_base_ms: int, sleep=time.sleep):
        self._kinesis, self._stream = client, stream
        self._max_attempts, self._backoff_ms, self._sleep = max_attempts, backoff_base_ms, sleep

    def publish(self, records: list[OutRecord]) -> PublishResult:
        result = PublishResult([], [])
        pending = list(records)
        for attempt in range(self._max_attempts):
            if attempt:
                result.retried_records += len(pending)
                # full jitter backoff: spreads retries of many Lambdas hitting one hot shard
                self._sleep(random.uniform(0, self._backoff_ms * 2**attempt) / 1000)
            still_failing: list[OutRecord] = []
            for chunk in chunk_records(pending):
                result.calls += 1
                still_failing.extend(self._put_chunk(chunk, result))
            pending = still_failing
            if not pending:
                break
        result.failed = [r.key for r in pending]
        return result

    def _put_chunk(self, chunk: list[OutRecord], result: PublishResult) -> list[OutRecord]:
        try:
            resp = self._kinesis.put_records(
                StreamName=self._stream,
                Records=[{"Data": r.data, "PartitionKey": r.partition_key} for r in chunk],
            )
        except (ClientError, BotoCoreError):
            # Whole call refused (throttled, KMS, ...) or unanswered after the SDK's retries
            # (connection lost, timeout). If it was in fact partly written, the retry writes a
            # second copy: harmless, the stream and batch dedup by click_id.
            return chunk
        failed = []
        for rec, entry in zip(chunk, resp["Records"]):
            if "ErrorCode" in entry:
                failed.append(rec)
            else:
                result.succeeded.append(rec.key)
        return failed
