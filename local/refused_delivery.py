"""Local stand-in for the refused-items delivery stream's S3 delivery (the raw archive's is
local.archiver): the ingest handler's PutRecordBatch goes to moto's Firehose unchanged, which
writes each call's records, concatenated, to one S3 object under its destination prefix (plus
its own YYYY/MM/DD/HH/ path) and evaluates neither `!{timestamp:...}` prefixes nor compression.
The local delivery stream therefore delivers to STAGING_PREFIX, and this worker moves what
lands there into the archive's layout (common.refused): gzip JSON Lines under
`refused/clicks/dt=YYYY-MM-DD/hr=HH/`, the partition of each record's refused_at (on AWS:
Firehose's arrival time, the same instant give or take the call's latency).

No loss, no duplicates across restarts: an object is written before its staging object is
deleted, under a key derived from the staging key, so a crash in between rewrites the same key
with the same records."""
from __future__ import annotations

import gzip
from collections import defaultdict

import boto3

from common.refused import FILE_EXTENSION, decode_refused_lines, encode_refused, partition_prefix
from local.worker import PollingWorker

STAGING_PREFIX = "local-firehose/refused/"


def destination(bucket: str) -> dict:
    """The local delivery stream's ExtendedS3 destination (moto stores the rest of the config)."""
    return {"RoleARN": "arn:aws:iam::000000000000:role/local-refused-delivery",
            "BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": STAGING_PREFIX,
            "CompressionFormat": "UNCOMPRESSED"}


def objects_for(staging_key: str, data: bytes) -> list[tuple[str, bytes]]:
    """One staging object -> [(archive key, gzip JSON Lines)], one per partition, keys
    deterministic (the staging object's name), content deterministic (gzip mtime 0)."""
    groups: dict[str, list[bytes]] = defaultdict(list)
    for record in decode_refused_lines(data):
        groups[partition_prefix(record["refused_at"])].append(encode_refused(record))
    name = staging_key.rsplit("/", 1)[-1]
    return [(f"{prefix}{name}{FILE_EXTENSION}", gzip.compress(b"".join(lines), mtime=0))
            for prefix, lines in sorted(groups.items())]


class LocalRefusedDelivery(PollingWorker):
    def __init__(self, bucket: str, poll_interval_s: float = 0.5):
        self.bucket, self.poll_interval_s = bucket, poll_interval_s
        self._s3 = boto3.client("s3")
        self.delivered = 0
        super().__init__("refused-delivery")

    def drain_once(self) -> int:
        """Move every staged object into the layout; returns records delivered."""
        n = 0
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=STAGING_PREFIX)
        for obj in (o for page in pages for o in page.get("Contents", [])):
            data = self._s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
            for key, body in objects_for(obj["Key"], data):
                self._s3.put_object(Bucket=self.bucket, Key=key, Body=body)
            self._s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
            n += len(decode_refused_lines(data))
        self.delivered += n
        return n
