"""Poll every shard of a Kinesis stream from a persisted position, like a KCL worker or the
Lambda event source mapping: positions are saved only after the consumer handled the records,
so a restart resumes where it left off (at-least-once; consumers are idempotent)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import boto3
from botocore.exceptions import ClientError


class Checkpoints:
    """{shard_id: last handled sequence number} in a JSON file, replaced atomically."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self.positions: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}

    def save(self, shard_id: str, sequence_number: str) -> None:
        with self._lock:
            self.positions[shard_id] = sequence_number
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.positions))
            tmp.replace(self.path)


class ShardPoller:
    """Reads records of all shards in rounds; `poll()` returns {shard_id: [records]}."""

    def __init__(self, stream: str, checkpoints: Checkpoints, limit: int = 1000):
        self.stream, self.checkpoints, self.limit = stream, checkpoints, limit
        self._kinesis = boto3.client("kinesis")
        self._iterators: dict[str, str] = {}

    def _iterator(self, shard_id: str) -> str:
        if shard_id not in self._iterators:
            after = self.checkpoints.positions.get(shard_id)
            kwargs = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
                      if after else {"ShardIteratorType": "TRIM_HORIZON"})
            self._iterators[shard_id] = self._kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=shard_id, **kwargs)["ShardIterator"]
        return self._iterators[shard_id]

    def rewind(self, shard_id: str) -> None:
        """Forget the iterator: the next poll restarts after the last checkpoint (redelivery)."""
        self._iterators.pop(shard_id, None)

    def poll(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for shard in self._kinesis.list_shards(StreamName=self.stream)["Shards"]:
            shard_id = shard["ShardId"]
            try:
                page = self._kinesis.get_records(ShardIterator=self._iterator(shard_id), Limit=self.limit)
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("ExpiredIteratorException",
                                                     "ProvisionedThroughputExceededException"):
                    self.rewind(shard_id)
                    continue
                raise
            if page.get("NextShardIterator"):
                self._iterators[shard_id] = page["NextShardIterator"]
            if page["Records"]:
                out[shard_id] = page["Records"]
        return out
