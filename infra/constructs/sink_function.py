"""The sink Lambda: aggregates stream (Flink changelog) -> serving store, and its DLQ.

Kinesis event source mapping from TRIM_HORIZON (the sink is idempotent: every write is
conditional on its version, so replaying the stream is harmless) with partial batch responses:
the handler reports the records that failed; bisect-on-error splits a batch that keeps failing,
and after `sink_retry_attempts` the failed records' shard/sequence metadata goes to an SQS DLQ
(KMS, TLS only) for a replay from the stream. The role may read the aggregates stream, write the
serving store (named actions only) and send to the DLQ.
"""
from __future__ import annotations

import jsii
from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from common.schema import SINK
from infra.constructs.python_function import asset_exclude, build_python_function
from infra.constructs.serving_store import ServingStore
from infra.settings import StackSettings

HANDLER = "aggregate.sink_handler.lambda_handler"
# common + the sink's modules + the serving store's core and writers (serving/*.py, serving/write);
# not the Flink job (aggregate/job) nor its Maven build, nor the query side's readers.
ASSET_EXCLUDE = asset_exclude("common", "aggregate/*.py", "serving/*.py", "serving/write")
TIMEOUT = Duration.seconds(60)
DLQ_RETENTION = Duration.days(14)
# Lambda sends on-failure records with the function's role: SendMessage + the queue's key.
DLQ_ACTIONS = ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")
DLQ_KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


@jsii.implements(lambda_.IEventSourceDlq)
class NamedGrantSqsDlq:
    """Like aws_lambda_event_sources.SqsDlq, but granting named KMS actions instead of
    queue.grant_send_messages' kms:GenerateDataKey*/kms:ReEncrypt* wildcards."""

    def __init__(self, queue: sqs.IQueue, key: kms.IKey) -> None:
        self.queue, self.key = queue, key

    def bind(self, target: lambda_.IEventSourceMapping,
             target_handler: lambda_.IFunction) -> lambda_.DlqDestinationConfig:
        self.queue.grant(target_handler, *DLQ_ACTIONS)
        self.key.grant(target_handler, *DLQ_KMS_ACTIONS)
        return lambda_.DlqDestinationConfig(destination=self.queue.queue_arn)


class SinkFunction(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 stream: kinesis.IStream, store: ServingStore) -> None:
        super().__init__(scope, id)
        built = build_python_function(
            self, settings=settings, key=key, handler=HANDLER, exclude=ASSET_EXCLUDE,
            description="Aggregates stream (Flink changelog) -> serving store, idempotently",
            role_description="clickagg sink Lambda: aggregates stream -> serving store writes",
            service="sink",
            memory_mb=settings.sink_memory_mb,
            timeout=TIMEOUT,
            # the store's (SERVING_*, FRESHNESS_SLOTS | TIMESTREAM_*) + MINUTE_TTL_S: common.schema
            environment=settings.lambda_env(SINK, **store.wiring),
            other_star_resources=store.star_resource_reasons,
        )
        self.log_group, self.role, self.function = built.log_group, built.role, built.function
        store.grant_write(self.function)

        self.dlq = sqs.Queue(
            self, "Dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(self.dlq).acknowledge(Acknowledgment(
            id="AwsSolutions-SQS3",
            reason="This queue is itself a dead-letter queue: the on-failure destination of the "
                   "sink's Kinesis event source mapping (cdk-nag only recognizes SQS redrive).",
        ))

        self.event_source = sources.KinesisEventSource(
            stream,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=settings.sink_batch_size,
            max_batching_window=Duration.seconds(settings.sink_max_batching_window_s),
            parallelization_factor=settings.sink_parallelization_factor,
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            retry_attempts=settings.sink_retry_attempts,
            on_failure=NamedGrantSqsDlq(self.dlq, key),
        )
        self.function.add_event_source(self.event_source)
