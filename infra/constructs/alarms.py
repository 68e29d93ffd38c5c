"""Alarms on the ingest path, published to one KMS-encrypted SNS topic.

Any 5XX, Lambda error or throttle, or Kinesis write throttle in a 5-minute window is worth a look:
each means clicks were refused with a retryable error or delayed.
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
from constructs import Construct

PERIOD = Duration.minutes(5)


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
        self.alarms: dict[str, cw.Alarm] = {}
        for name, (description, metric) in metrics.items():
            alarm = cw.Alarm(
                self, name, alarm_name=f"{prefix}-ingest-{name}",
                alarm_description=description, metric=metric,
                threshold=0, evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
            self.alarms[name] = alarm
