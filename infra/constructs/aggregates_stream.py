"""The aggregates Kinesis stream: the Flink job's changelog (debezium-json), read by the sink.

Its records are per-ad aggregates and leaderboard rows (no IPs), but one key for the pipeline
keeps one key policy. 24 h retention is enough: the sink is idempotent and alarms on lag long
before a day; a longer outage is repaired by replaying the clicks stream (7 days) through Flink.
"""
from __future__ import annotations

from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.constructs.click_stream import encrypted_stream
from infra.settings import StackSettings


class AggregatesStream(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.stream = encrypted_stream(
            self, "Stream", name=settings.names.aggregates_stream,
            mode=settings.aggregates_kinesis_mode, shards=settings.aggregates_kinesis_shards,
            retention_hours=settings.aggregates_retention_hours, key=key)
