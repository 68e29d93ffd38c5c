"""The ingest Lambda (POST /v1/clicks) and its least-privilege role.

Code is `functions/` filtered to the two packages the handler imports (`common`, `ingest`);
third-party libraries (Powertools, pydantic) come from AWS's public Powertools layer, so the
synth needs no Docker. The role is our own (no AWS-managed policy): it may write only its own
log group, put/delete/batch-write dedup items and put records on the clicks stream.
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import FUNCTIONS_DIR
from infra.settings import StackSettings

HANDLER = "ingest.handler.lambda_handler"
TIMEOUT_S = 29  # API Gateway's integration timeout: running longer only wastes the invocation
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# Everything in functions/ except the packages the ingest Lambda imports.
ASSET_EXCLUDE = ["*", "!common", "!common/**", "!ingest", "!ingest/**",
                 "**/__pycache__", "**/*.pyc"]
DEDUP_ACTIONS = ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
STREAM_ACTIONS = ("kinesis:PutRecord", "kinesis:PutRecords")
# Writers of a CMK-encrypted table/stream need the key too (Kinesis producers: GenerateDataKey).
# Named actions instead of grant_write's kms:GenerateDataKey*/kms:ReEncrypt* wildcards.
KMS_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")


def powertools_layer_arn(scope: Construct, version: int) -> str:
    region = Stack.of(scope).region
    return (f"arn:aws:lambda:{region}:017000801446:layer:"
            f"AWSLambdaPowertoolsPythonV3-python312-arm64:{version}")


class IngestFunction(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 table: dynamodb.ITable, stream: kinesis.IStream) -> None:
        super().__init__(scope, id)
        ingest = settings.ingest_settings()
        if ingest.claim_lease_s <= TIMEOUT_S:
            raise ValueError("claim_lease_s must exceed the Lambda timeout, or a running "
                             "invocation's claims could be taken over")

        self.log_group = logs.LogGroup(
            self, "Logs", retention=LOG_RETENTION, encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN)
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="clickagg ingest Lambda: dedup table writes + clicks stream puts")
        self.log_group.grant_write(self.role)

        self.function = lambda_.Function(
            self, "Function",
            description="POST /v1/clicks: validate, dedup by click_id, put to Kinesis",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=ASSET_EXCLUDE),
            layers=[lambda_.LayerVersion.from_layer_version_arn(
                self, "Powertools", powertools_layer_arn(self, settings.powertools_layer_version))],
            memory_size=settings.ingest_memory_mb,
            timeout=Duration.seconds(TIMEOUT_S),
            reserved_concurrent_executions=settings.ingest_reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            environment={
                **ingest.to_env(),
                "POWERTOOLS_SERVICE_NAME": "ingest",
                "POWERTOOLS_METRICS_NAMESPACE": settings.names.metrics_namespace,
            },
        )
        table.grant(self.function, *DEDUP_ACTIONS)
        stream.grant(self.function, *STREAM_ACTIONS)
        key.grant(self.function, *KMS_ACTIONS)

        Validations.of(self.role).acknowledge(Acknowledgment(
            id="AwsSolutions-IAM5[Resource::*]",
            reason="Only X-Ray (tracing ACTIVE) has Resource '*': xray:PutTraceSegments and "
                   "xray:PutTelemetryRecords support no resource-level permissions. Logs, table, "
                   "stream and key statements name their ARNs.",
        ))
        Validations.of(self.function).acknowledge(Acknowledgment(
            id="AwsSolutions-L1",
            reason="Python 3.12 on purpose: the Powertools layer (python312 build) ships "
                   "pydantic-core compiled for 3.12; move runtime and layer name together.",
        ))
