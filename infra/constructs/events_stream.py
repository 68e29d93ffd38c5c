"""The events Kinesis stream: impressions and conversions from POST /v1/events (docs/events.md).

Its own stream, not the clicks stream: impressions are 10-100x the clicks, so it is sized on its
own (`events_kinesis_mode`, `events_kinesis_shards`), and the exactly-once click path and its
consumers stay as they are. Same retention and key as the clicks stream (`encrypted_stream`).
"""
from __future__ import annotations

from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.constructs.click_stream import encrypted_stream
from infra.settings import StackSettings


class EventsStream(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.stream = encrypted_stream(
            self, "Stream", name=settings.names.events_stream, mode=settings.events_kinesis_mode,
            shards=settings.events_kinesis_shards,
            retention_hours=settings.kinesis_retention_hours, key=key)
