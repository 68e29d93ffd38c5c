"""KinesisPublisher splits records into PutRecords calls of at most 500 records and 5 MiB (data +
partition keys, the limits AWS documents and moto enforces). Against in-process moto Kinesis:
the exact records per call at the count and size boundaries, and every record on the stream
exactly once."""
from __future__ import annotations

from collections import Counter

import boto3
import pytest

from ingest.publisher import KinesisPublisher, OutRecord
from local.resources import create_stream
from tests.integration.ingest_support import Sleeps

STREAM = "chunking-test"
MiB = 1024 * 1024


class RecordingKinesis:
    """The real (moto) client; records (record count, bytes incl. partition keys) per call."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def put_records(self, StreamName, Records):
        self.calls.append((len(Records), sum(len(r["Data"]) + len(r["PartitionKey"].encode()) for r in Records)))
        return self.real.put_records(StreamName=StreamName, Records=Records)


@pytest.fixture
def kinesis(aws):
    client = boto3.client("kinesis")
    create_stream(client, STREAM, 2)
    return client


def record(i: int, total_bytes: int, pk: str | None = None) -> OutRecord:
    """Record i whose data + partition key is exactly `total_bytes` long (distinct data)."""
    pk = pk or f"p{i % 10}"  # 2 bytes
    head = f"{i:06d}|".encode()
    return OutRecord(i, (head + b"x" * total_bytes)[: total_bytes - len(pk)], pk)


def publish(kinesis, records: list[OutRecord]):
    recording = RecordingKinesis(kinesis)
    result = KinesisPublisher(recording, STREAM, max_attempts=4, backoff_base_ms=1, sleep=Sleeps()).publish(records)
    return result, recording.calls


def on_stream(kinesis) -> Counter:
    """(partition key, data) of every record on the stream, from TRIM_HORIZON."""
    seen: Counter = Counter()
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = kinesis.get_records(ShardIterator=it, Limit=10_000)
            seen.update((r["PartitionKey"], bytes(r["Data"])) for r in page["Records"])
            if not page["Records"]:
                break
            it = page.get("NextShardIterator")
    return seen


def sizes(*totals: int) -> list[OutRecord]:
    return [record(i, t) for i, t in enumerate(totals)]


CASES = {
    # count boundary (small records)
    "500 records": ([record(i, 100) for i in range(500)], [(500, 50_000)]),
    "501 records": ([record(i, 100) for i in range(501)], [(500, 50_000), (1, 100)]),
    "1001 records": ([record(i, 100) for i in range(1001)], [(500, 50_000), (500, 50_000), (1, 100)]),
    # size boundary: exactly 5 MiB in 6 records is one call; one byte more is two
    "exactly 5 MiB": (sizes(MiB, MiB, MiB, MiB, MiB - 10, 10), [(6, 5 * MiB)]),
    "5 MiB + 1 byte": (sizes(MiB, MiB, MiB, MiB, MiB - 10, 11), [(5, 5 * MiB - 10), (1, 11)]),
    # the partition keys count: 6 records whose data alone is 5 MiB - 6 bytes, 5 MiB + 6 with keys
    "partition keys count": (sizes(MiB, MiB, MiB, MiB, MiB - 8, 14), [(5, 5 * MiB - 8), (1, 14)]),
    # size binds before count: 300 x 20,000 bytes -> floor(5 MiB / 20,000) = 262 per call
    "size before count": ([record(i, 20_000) for i in range(300)], [(262, 5_240_000), (38, 760_000)]),
    # count binds before size: 600 x 10,240 bytes (512 would fit in 5 MiB)
    "count before size": ([record(i, 10_240) for i in range(600)], [(500, 5_120_000), (100, 1_024_000)]),
    # one record of the maximum record size (1 MiB incl. its key), then small ones
    "a 1 MiB record": ([record(0, MiB)] + [record(i, 100) for i in range(1, 501)],
                       [(500, MiB + 499 * 100), (1, 100)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_chunk_boundaries_and_every_record_once(kinesis, name):
    records, expected_calls = CASES[name]
    data_bytes = sum(len(r.data) for r in records)
    if name == "partition keys count":
        assert data_bytes == 5 * MiB - 6 and data_bytes + 2 * len(records) == 5 * MiB + 6
    result, calls = publish(kinesis, records)
    assert calls == expected_calls
    assert (result.failed, result.calls, result.retried_records) == ([], len(expected_calls), 0)
    assert sorted(result.succeeded) == [r.key for r in records]
    assert on_stream(kinesis) == Counter((r.partition_key, r.data) for r in records)
