"""Local stand-in for Firehose (moto's Firehose neither reads Kinesis nor writes Parquet):
consumes a stream and writes Parquet objects with its archive's schema and layout
(common.archive: CLICKS for the clicks stream, EVENTS for the events stream) into the local S3
bucket.

No loss, no duplicates across restarts: an object is written before its position is
checkpointed, and its key is (partition, shard, first sequence number). After a crash between
write and checkpoint, the stream is re-read from the same first record, so the rewrite lands on
the same key and replaces the object (with the same records, possibly more)."""
from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from common.archive import CLICKS, ArchiveLayout
from common.records import decode_click
from local.kinesis_consumer import Checkpoints, ShardPoller
from local.worker import PollingWorker

ARROW_TYPES = {"string": pa.string(), "bigint": pa.int64(), "int": pa.int32()}


def arrow_schema(layout: ArchiveLayout = CLICKS) -> pa.Schema:
    return pa.schema([(name, ARROW_TYPES[t]) for name, t in layout.columns])


ARROW_SCHEMA = arrow_schema(CLICKS)


def to_parquet(records: list[dict], layout: ArchiveLayout = CLICKS) -> bytes:
    table = pa.Table.from_pylist([{k: r.get(k) for k, _ in layout.columns} for r in records],
                                 schema=arrow_schema(layout))
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    return buf.getvalue()


def objects_for(shard_id: str, records: list[dict],
                layout: ArchiveLayout = CLICKS) -> list[tuple[str, list[dict]]]:
    """Split one page of records by arrival hour: [(key, records)], keys deterministic."""
    groups: dict[str, list[dict]] = defaultdict(list)
    first_seq: dict[str, str] = {}
    for r in records:
        prefix = layout.partition_prefix(int(r["ApproximateArrivalTimestamp"].timestamp() * 1000))
        first_seq.setdefault(prefix, r["SequenceNumber"])
        groups[prefix].append(decode_click(r["Data"]))  # JSON, whatever the record
    return [(f"{prefix}{layout.name}-{shard_id}-{first_seq[prefix]}.parquet", rows)
            for prefix, rows in groups.items()]


class LocalArchiver(PollingWorker):
    def __init__(self, stream: str, bucket: str, state_dir: Path, poll_interval_s: float = 0.5,
                 page_limit: int = 5000, layout: ArchiveLayout = CLICKS):
        self.stream, self.bucket, self.poll_interval_s = stream, bucket, poll_interval_s
        self.layout = layout
        self.checkpoints = Checkpoints(state_dir / f"archiver-{stream}.json")
        self.poller = ShardPoller(stream, self.checkpoints, limit=page_limit)
        self._s3 = boto3.client("s3")
        self.archived = 0
        super().__init__(f"archiver-{layout.name}")

    def drain_once(self) -> int:
        """One polling round over all shards; returns records archived."""
        n = 0
        for shard_id, records in self.poller.poll().items():
            for key, rows in objects_for(shard_id, records, self.layout):
                self._s3.put_object(Bucket=self.bucket, Key=key, Body=to_parquet(rows, self.layout))
            self.checkpoints.save(shard_id, records[-1]["SequenceNumber"])
            n += len(records)
        self.archived += n
        return n
