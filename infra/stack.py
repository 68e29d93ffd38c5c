"""ClickAggStack: the ingest path (API Gateway -> Lambda -> DynamoDB dedup + Kinesis)."""
from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.constructs.alarms import IngestAlarms
from infra.constructs.click_stream import ClickStream
from infra.constructs.dedup_table import DedupTable
from infra.constructs.encryption import Encryption
from infra.constructs.ingest_api import IngestApi
from infra.constructs.ingest_function import IngestFunction
from infra.settings import StackSettings


class ClickAggStack(Stack):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.settings = settings
        key = Encryption(self, "Encryption", prefix=settings.prefix).key
        self.stream = ClickStream(self, "Clicks", settings=settings, key=key).stream
        self.table = DedupTable(self, "Dedup", settings=settings, key=key).table
        self.ingest = IngestFunction(self, "IngestFunction", settings=settings, key=key,
                                     table=self.table, stream=self.stream)
        self.api = IngestApi(self, "IngestApi", settings=settings, key=key,
                             handler=self.ingest.function)
        self.alarms = IngestAlarms(self, "Alarms", prefix=settings.prefix, key=key,
                                   api=self.api.api, function=self.ingest.function,
                                   stream=self.stream, email=settings.alarm_email)

        CfnOutput(self, "IngestUrl", description="POST clicks here (header x-api-key)",
                  value=self.api.api.url_for_path("/v1/clicks"))
        CfnOutput(self, "ApiKeyId", value=self.api.api_key.key_id,
                  description="aws apigateway get-api-key --include-value --api-key <id>")
        CfnOutput(self, "ClicksStreamName", value=self.stream.stream_name)
        CfnOutput(self, "DedupTableName", value=self.table.table_name)
        CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)
