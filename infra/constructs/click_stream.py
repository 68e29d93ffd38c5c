"""The clicks Kinesis stream: the buffer between ingest and the Flink aggregator (and the archive).

Retention defaults to 7 days so a Flink job restored from an old snapshot can still replay.
`encrypted_stream` is the one definition of a pipeline stream (KMS with the pipeline key,
on-demand or provisioned), shared with the aggregates stream.
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.settings import StackSettings


def encrypted_stream(scope: Construct, id: str, *, name: str, mode: str, shards: int,
                     retention_hours: int, key: kms.IKey) -> kinesis.Stream:
    provisioned = mode == "provisioned"
    stream = kinesis.Stream(
        scope, id,
        stream_name=name,
        stream_mode=(kinesis.StreamMode.PROVISIONED if provisioned
                     else kinesis.StreamMode.ON_DEMAND),
        shard_count=shards if provisioned else None,
        retention_period=Duration.hours(retention_hours),
        encryption=kinesis.StreamEncryption.KMS,
        encryption_key=key,
    )
    Validations.of(stream).acknowledge(Acknowledgment(
        id="AwsSolutions-KDS3",
        reason="Customer-managed key on purpose: one key policy we own decides who may read "
               "pipeline data (clicks carry IPs and user agents); aws/kinesis cannot be "
               "restricted.",
    ))
    return stream


class ClickStream(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.stream = encrypted_stream(
            self, "Stream", name=settings.names.clicks_stream, mode=settings.kinesis_mode,
            shards=settings.kinesis_shards, retention_hours=settings.kinesis_retention_hours,
            key=key)
