"""The ingest Lambda (POST /v1/clicks, /v1/public/clicks, /v1/events, GET /v1/c) and its
least-privilege role.

Code is `functions/` filtered to the two packages the handler imports (`common`, `ingest`);
packaging, layer and role conventions are infra.constructs.python_function's. The role may write
only its own log group, put/delete/batch-write dedup items (and batch-get them in the dedup's
mark mode), put records on the clicks and events streams and read the click-token key set (its
secret's name in CLICK_TOKEN_SECRET; the secret is read only with click_token_mode
observe/enforce).
"""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from common.schema import DEDUP_MARK
from infra.constructs.click_token_keys import ClickTokenKeys
from infra.constructs.python_function import asset_exclude, build_python_function
from infra.settings import StackSettings

HANDLER = "ingest.handler.lambda_handler"
TIMEOUT_S = 29  # API Gateway's integration timeout: running longer only wastes the invocation
# Everything in functions/ except the packages the ingest Lambda imports.
ASSET_EXCLUDE = asset_exclude("common", "ingest")
DEDUP_ACTIONS = ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
DEDUP_READ_ACTIONS = ("dynamodb:BatchGetItem",)  # ingest_dedup_mode mark only: its check
STREAM_ACTIONS = ("kinesis:PutRecord", "kinesis:PutRecords")
# Writers of a CMK-encrypted table/stream need the key too (Kinesis producers: GenerateDataKey).
# Named actions instead of grant_write's kms:GenerateDataKey*/kms:ReEncrypt* wildcards.
KMS_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")


class IngestFunction(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings, key: kms.IKey,
                 table: dynamodb.ITable, stream: kinesis.IStream, events: kinesis.IStream,
                 token_keys: ClickTokenKeys) -> None:
        super().__init__(scope, id)
        ingest = settings.ingest_settings()
        if ingest.claim_lease_s <= TIMEOUT_S:
            raise ValueError("claim_lease_s must exceed the Lambda timeout, or a running "
                             "invocation's claims could be taken over")

        built = build_python_function(
            self, settings=settings, key=key, handler=HANDLER, exclude=ASSET_EXCLUDE,
            description="POST /v1/clicks, /v1/events: validate, dedup, put to Kinesis",
            role_description="clickagg ingest Lambda: dedup table writes + clicks/events stream puts",
            service="ingest",
            memory_mb=settings.ingest_memory_mb,
            timeout=Duration.seconds(TIMEOUT_S),
            reserved_concurrency=settings.ingest_reserved_concurrency,
            # the secret's physical name (secret_name would be parsed out of its ARN at deploy)
            environment={**ingest.to_env(),
                         ingest.__settings__["click_token_secret"].env: token_keys.name},
        )
        self.log_group, self.role, self.function = built.log_group, built.role, built.function
        table.grant(self.function, *DEDUP_ACTIONS,
                    *(DEDUP_READ_ACTIONS if ingest.ingest_dedup_mode == DEDUP_MARK else ()))
        stream.grant(self.function, *STREAM_ACTIONS)
        events.grant(self.function, *STREAM_ACTIONS)
        key.grant(self.function, *KMS_ACTIONS)
        token_keys.secret.grant_read(self.function)
