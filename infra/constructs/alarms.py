"""Alarms, published to one KMS-encrypted SNS topic (owned by IngestAlarms).

Ingest: any 5XX, Lambda error or throttle, or Kinesis write throttle in a 5-minute window is
worth a look: each means clicks were refused with a retryable error or delayed.
Aggregation: Flink downtime or a failed checkpoint, a stream consumer falling behind (iterator
age of the clicks stream: Flink and Firehose; of the aggregates stream: the sink), sink errors,
and anything in the sink's DLQ (changes that never reached the serving store).
"""
from __future__ import annotations

from typing import Optional

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)
FLINK_NAMESPACE = "AWS/KinesisAnalytics"


def add_alarm(scope: Construct, id: str, *, topic: sns.ITopic, alarm_name: str,
              description: str, metric: cw.IMetric, threshold: float = 0) -> cw.Alarm:
    """metric > threshold in one period notifies the topic; no data is not an alarm."""
    alarm = cw.Alarm(
        scope, id, alarm_name=alarm_name,
        alarm_description=description, metric=metric,
        threshold=threshold, evaluation_periods=1,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cw_actions.SnsAction(topic))
    return alarm


class IngestAlarms(Construct):
    def __init__(self, scope: Construct, id: str, *, prefix: str, key: kms.IKey,
                 api: apigw.RestApi, function: lambda_.IFunction, stream: kinesis.IStream,
                 email: Optional[str] = None) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(self, "Topic", display_name=f"{prefix} alarms",
                               master_key=key, enforce_ssl=True)
        # The SSL-only topic policy replaces SNS's default one, so alarms need an explicit allow.
        stack = Stack.of(self)
        alarms_arn = f"arn:{Aws.PARTITION}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowThisAccountsAlarms",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions={"ArnLike": {"aws:SourceArn": alarms_arn}},
        ))
        if email:
            self.topic.add_subscription(subs.EmailSubscription(email))

        metrics = {
            "Api5xx": ("API Gateway 5XXError > 0: clicks refused by a server error",
                       api.metric_server_error(period=PERIOD, statistic="Sum")),
            "LambdaErrors": ("Ingest Lambda Errors > 0: unhandled exceptions or timeouts",
                             function.metric_errors(period=PERIOD, statistic="Sum")),
            "LambdaThrottles": ("Ingest Lambda Throttles > 0: concurrency limit reached",
                                function.metric_throttles(period=PERIOD, statistic="Sum")),
            "KinesisWriteThrottled": (
                "Kinesis WriteProvisionedThroughputExceeded > 0: puts throttled (add shards or "
                "spread hot ads with hot_ad_salts)",
                stream.metric_write_provisioned_throughput_exceeded(
                    period=PERIOD, statistic="Sum")),
        }
        self.alarms: dict[str, cw.Alarm] = {
            name: add_alarm(self, name, topic=self.topic, alarm_name=f"{prefix}-ingest-{name}",
                            description=description, metric=metric)
            for name, (description, metric) in metrics.items()
        }


class AggregationAlarms(Construct):
    def __init__(self, scope: Construct, id: str, *, prefix: str, topic: sns.ITopic,
                 flink_application_name: str, clicks_stream: kinesis.IStream,
                 aggregates_stream: kinesis.IStream, sink: lambda_.IFunction, dlq: sqs.IQueue,
                 iterator_age_ms: int) -> None:
        super().__init__(scope, id)

        def flink(metric_name: str) -> cw.Metric:
            return cw.Metric(namespace=FLINK_NAMESPACE, metric_name=metric_name,
                             dimensions_map={"Application": flink_application_name},
                             period=PERIOD, statistic="Maximum")

        limit = f"{iterator_age_ms} ms"
        metrics = {
            "FlinkDowntime": (
                "Flink downtime > 0: the aggregation job is failing/restarting (no fresh "
                "aggregates)", flink("downtime"), 0),
            "FlinkFailedCheckpoints": (
                "Flink numberOfFailedCheckpoints > 0: state is not being saved; a restart "
                "replays more (counter since job start: clears on restart)",
                flink("numberOfFailedCheckpoints"), 0),
            "ClicksIteratorAge": (
                f"Clicks stream GetRecords.IteratorAgeMilliseconds > {limit}: a consumer (Flink "
                "job or archive Firehose) is behind",
                clicks_stream.metric_get_records_iterator_age_milliseconds(
                    period=PERIOD, statistic="Maximum"), iterator_age_ms),
            "AggregatesIteratorAge": (
                f"Aggregates stream GetRecords.IteratorAgeMilliseconds > {limit}: the sink is "
                "behind (serving store stale)",
                aggregates_stream.metric_get_records_iterator_age_milliseconds(
                    period=PERIOD, statistic="Maximum"), iterator_age_ms),
            "SinkErrors": (
                "Sink Lambda Errors > 0: invocations failed as a whole (retried, then DLQ)",
                sink.metric_errors(period=PERIOD, statistic="Sum"), 0),
            "SinkDlqMessages": (
                "Sink DLQ ApproximateNumberOfMessagesVisible > 0: changes that never reached the "
                "serving store; replay their shard ranges from the aggregates stream",
                dlq.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"), 0),
        }
        self.alarms: dict[str, cw.Alarm] = {
            name: add_alarm(self, name, topic=topic, alarm_name=f"{prefix}-aggregation-{name}",
                            description=description, metric=metric, threshold=threshold)
            for name, (description, metric, threshold) in metrics.items()
        }
