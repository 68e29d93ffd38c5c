"""The clicks Kinesis stream: the buffer between ingest and the Flink aggregator.

Retention defaults to 7 days so a Flink job restored from an old snapshot can still replay.
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.settings import StackSettings


class ClickStream(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 key: kms.IKey) -> None:
        super().__init__(scope, id)
        provisioned = settings.kinesis_mode == "provisioned"
        self.stream = kinesis.Stream(
            self, "Stream",
            stream_name=settings.names.clicks_stream,
            stream_mode=(kinesis.StreamMode.PROVISIONED if provisioned
                         else kinesis.StreamMode.ON_DEMAND),
            shard_count=settings.kinesis_shards if provisioned else None,
            retention_period=Duration.hours(settings.kinesis_retention_hours),
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=key,
        )
        Validations.of(self.stream).acknowledge(Acknowledgment(
            id="AwsSolutions-KDS3",
            reason="Customer-managed key on purpose: clicks carry IPs and user agents, and one key "
                   "policy we own decides who may read them (aws/kinesis cannot be restricted).",
        ))
