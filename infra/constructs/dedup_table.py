"""The click_id dedup table: one item per recently seen click, expired by TTL.

On-demand billing because ingest traffic is bursty; items carry `expires_at` (epoch seconds),
which the ingest Lambda also checks itself since TTL deletion is lazy. `Table`, not `TableV2`:
TableV2 with a customer-managed key cannot synthesize a region-agnostic stack.
"""
from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.settings import StackSettings

TTL_ATTRIBUTE = "expires_at"


class DedupTable(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.table = dynamodb.Table(
            self, "Table",
            table_name=settings.names.dedup_table,
            partition_key=dynamodb.Attribute(name="click_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
