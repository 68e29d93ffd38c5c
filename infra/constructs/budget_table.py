"""The budgets table: each campaign's budget in force (`sk = current`) and every version ever set
(`sk = h#<set_at>`), docs/budget.md.

Truth, not a view: kept apart from the serving table (which can be dropped and rebuilt), with
point-in-time recovery and RETAIN. Small and read through the budget Lambda's cache: on-demand.
`Table`, not `TableV2`: TableV2 with a customer-managed key cannot synthesize a region-agnostic
stack (as the dedup table).
"""
from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.settings import StackSettings

PARTITION_KEY, SORT_KEY = "campaign_id", "sk"  # = query.budgets' item keys


class BudgetTable(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.table = dynamodb.Table(
            self, "Table",
            table_name=settings.names.budgets_table,
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
