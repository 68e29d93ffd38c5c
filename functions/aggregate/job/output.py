"""Encoding and writing of the output changelog outside Flink (local runner).

`debezium_record` reproduces what Flink 1.20's `debezium-json` serializer writes on AWS
(`DebeziumJsonSerializationSchema`, checked against the real serializer in tests/flink):

    +I, +U  ->  {"before":null,"after":{...row...},"op":"c"}
    -U, -D  ->  {"before":{...row...},"after":null,"op":"d"}

(no "u" op, no "source"/"ts_ms" fields; null columns are written as null.)
"""
from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .sql import OUTPUT_COLUMN_NAMES

INSERT_KINDS = ("+I", "+U")
DELETE_KINDS = ("-U", "-D")


def debezium_record(kind: str, values: Sequence[Any], columns: Sequence[str] = OUTPUT_COLUMN_NAMES) -> dict:
    row = dict(zip(columns, values))
    if kind in INSERT_KINDS:
        return {"before": None, "after": row, "op": "c"}
    if kind in DELETE_KINDS:
        return {"before": row, "after": None, "op": "d"}
    raise ValueError(f"unknown row kind {kind!r}")


def encode(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def partition_key(record: dict) -> str:
    """Same key as the AWS sink (`PARTITIONED BY (ad_id)`): one ad's changes stay ordered."""
    row = record["after"] if record["after"] is not None else record["before"]
    return str(row["ad_id"])


class FileWriter:
    """JSON lines to a file ('-' = stdout), flushed on every `flush()`."""

    def __init__(self, path: str):
        self.path = path
        self._f = sys.stdout if path == "-" else open(path, "a", encoding="utf-8")
        self.written = 0

    def add(self, record: dict) -> None:
        self.add_line(encode(record).decode("utf-8"))

    def add_line(self, line: str) -> None:
        self._f.write(line)
        self._f.write("\n")
        self.written += 1

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self.flush()
        if self._f is not sys.stdout:
            self._f.close()


class KinesisWriter:
    """Buffers records and writes them with PutRecords (<= 500 records, <= 5 MiB per call),
    re-sending only the entries that failed, with exponential backoff + jitter."""

    MAX_RECORDS = 500
    MAX_BYTES = 5 * 1024 * 1024
    MAX_RECORD_BYTES = 1024 * 1024

    def __init__(
        self,
        stream_name: str,
        client: Any = None,
        *,
        max_attempts: int = 8,
        backoff_base_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if client is None:
            import boto3  # AWS_ENDPOINT_URL (e.g. the moto server) is honoured by boto3 itself

            client = boto3.client("kinesis")
        self.client = client
        self.stream_name = stream_name
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.sleep = sleep
        self._buffer: list[dict] = []
        self._bytes = 0
        self.written = 0
        self.retried = 0
        self.calls = 0

    def add(self, record: dict) -> None:
        self._add(encode(record), partition_key(record))

    def add_line(self, line: str) -> None:
        self._add(line.encode("utf-8"), partition_key(json.loads(line)))

    def _add(self, data: bytes, key: str) -> None:
        size = len(data) + len(key.encode("utf-8"))
        if size > self.MAX_RECORD_BYTES:
            raise ValueError(f"record of {size} bytes exceeds the Kinesis limit")
        if len(self._buffer) >= self.MAX_RECORDS or self._bytes + size > self.MAX_BYTES:
            self.flush()
        self._buffer.append({"Data": data, "PartitionKey": key})
        self._bytes += size

    def flush(self) -> None:
        pending, self._buffer, self._bytes = self._buffer, [], 0
        attempt = 0
        while pending:
            attempt += 1
            self.calls += 1
            try:
                resp = self.client.put_records(StreamName=self.stream_name, Records=pending)
            except Exception as exc:  # throttling / transient: retry the whole call
                if attempt >= self.max_attempts:
                    raise
                print(f"[local_runner] PutRecords failed ({exc}); retrying", file=sys.stderr)
                self._backoff(attempt)
                continue
            results = resp.get("Records", [])
            failed = [entry for entry, res in zip(pending, results) if res.get("ErrorCode")]
            self.written += len(pending) - len(failed)
            if not failed:
                return
            if attempt >= self.max_attempts:
                raise RuntimeError(
                    f"{len(failed)} records still failing after {attempt} PutRecords attempts: "
                    f"{results[0].get('ErrorCode') if results else '?'}"
                )
            self.retried += len(failed)
            pending = failed  # keeps their relative order
            self._backoff(attempt)

    def _backoff(self, attempt: int) -> None:
        self.sleep(self.backoff_base_s * (2 ** (attempt - 1)) * (0.5 + random.random() / 2))

    def close(self) -> None:
        self.flush()


class Spool:
    """Reads the part files Flink's filesystem sink commits into `path` (local runner, --emit
    files): `part-<uuid>-<subtask>-<counter>`, visible only once committed by a checkpoint
    (in-progress files start with '.'). Each sink subtask's files are read in counter order; a
    key's changes always come from the same subtask (forward edges), so that is all the order
    the changelog needs. A file is deleted once shipped; a crash in between re-ships it, which
    the consumer's version rule absorbs."""

    _PART = re.compile(r"^part-(.+)-(\d+)-(\d+)$")

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def pending(self) -> list[Path]:
        files = []
        for p in self.path.iterdir():
            m = self._PART.match(p.name)
            if m and p.is_file():
                files.append(((m.group(1), int(m.group(2)), int(m.group(3))), p))
        return [p for _, p in sorted(files)]

    @staticmethod
    def read(path: Path) -> list[str]:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f if line.strip()]

    @staticmethod
    def done(path: Path) -> None:
        path.unlink(missing_ok=True)
