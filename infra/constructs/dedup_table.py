"""The click_id dedup table: one item per recently seen click, expired by TTL.

Capacity from context (infra.constructs.table_capacity): on-demand by default (ingest traffic
is bursty), provisioned + write autoscaling where the planner finds it cheaper (the profiles).
Reads (provisioned): ingest_dedup_mode mark reads every click before publishing it, so reads
autoscale between dedup_min_rcu and dedup_max_rcu (the planner sizes both; unset, the maximum
follows dedup_max_wcu, so that reads never cap the clicks/s the writes allow); per_click reads
nothing (conditional writes only), so reads stay fixed at dedup_min_rcu.
Items carry `expires_at` (epoch seconds), which the ingest Lambda also checks itself since TTL
deletion is lazy. `Table`, not `TableV2`: TableV2 with a customer-managed key cannot synthesize
a region-agnostic stack.
"""
from __future__ import annotations

import math

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from common.schema import DEDUP_MARK, MARK_READ_RCU
from infra.constructs.table_capacity import TableCapacity
from infra.settings import StackSettings

TTL_ATTRIBUTE = "expires_at"


def dedup_read_max_rcu(settings: StackSettings) -> int:
    """The provisioned reads' autoscaling maximum: dedup_max_rcu in mark mode, by default what
    mark reads when the writes (1 per click) run at dedup_max_wcu; per_click: dedup_min_rcu."""
    if settings.ingest_dedup_mode != DEDUP_MARK:
        return settings.dedup_min_rcu
    if settings.dedup_max_rcu is not None:
        return settings.dedup_max_rcu
    if settings.dedup_max_wcu is None:  # on demand without a cap: no provisioned reads to size
        return settings.dedup_min_rcu
    return max(settings.dedup_min_rcu, math.ceil(settings.dedup_max_wcu * MARK_READ_RCU))


class DedupTable(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.capacity = TableCapacity(
            mode=settings.dedup_capacity_mode, min_wcu=settings.dedup_min_wcu,
            max_wcu=settings.dedup_max_wcu,
            target_utilization_pct=settings.dynamodb_target_utilization_pct,
            min_rcu=settings.dedup_min_rcu, max_rcu=dedup_read_max_rcu(settings))
        self.table = dynamodb.Table(
            self, "Table",
            table_name=settings.names.dedup_table,
            partition_key=dynamodb.Attribute(name="click_id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
            **self.capacity.table_props(),
        )
        self.capacity.autoscale(self.table)
