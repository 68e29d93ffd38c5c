"""One customer-managed KMS key for the pipeline's data at rest (table, stream, logs, alarm topic).

One key keeps the key policy in one place; rotation is on. Service principals that encrypt on
their own behalf (CloudWatch Logs, CloudWatch alarms and EventBridge rules publishing to the
encrypted SNS topic) get key-policy statements here.
"""
from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class Encryption(Construct):
    def __init__(self, scope: Construct, id: str, *, prefix: str) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self, "Key",
            alias=f"alias/{prefix}",
            description=f"{prefix}: click data at rest (DynamoDB, Kinesis, logs, alarm topic)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch Logs encrypts log groups with this key (Lambda and API access logs).
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowCloudWatchLogs",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                     "kms:Describe*"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                    f"arn:{Aws.PARTITION}:logs:{stack.region}:{stack.account}:*"}},
        ))
        # CloudWatch alarms publish to the KMS-encrypted SNS topic. AWS documents this statement
        # without conditions; with kms:CallerAccount-style conditions alarm actions fail.
        # Which alarms may publish is decided by the topic policy (infra.constructs.alarms).
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowCloudWatchAlarmsToEncryptedTopic",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
        ))
        # EventBridge rules (Glue job failures, infra.constructs.billing) publish to the same
        # topic; SNS encrypts with the publisher's key access. Named actions; which rules may
        # publish is decided by the topic policy.
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowEventBridgeToEncryptedTopic",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],
        ))
