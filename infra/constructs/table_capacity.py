"""DynamoDB capacity, one definition for the dedup and serving tables (context
`<table>_capacity_mode`, `<table>_min_wcu`, `<table>_max_wcu`, `dynamodb_target_utilization_pct`;
the profiles take them from the capacity planner).

on_demand    PAY_PER_REQUEST. With a max: MaxWriteRequestUnits = max (a cost guard: writes
             beyond it are throttled) and, when max exceeds the 4,000 writes/s a new table is
             pre-warmed to, WarmThroughput writes = max (so a launch-day peak is not throttled
             while on-demand learns it; warm throughput can only go up).
provisioned  PROVISIONED, write capacity autoscaled (target tracking) between min and max;
             reads fixed (dedup: nothing reads it) or autoscaled (serving: query API and the
             nightly reconciliation). Application Auto Scaling uses its service-linked role.
Both are expressed with the L2 Table's own props (aws-cdk-lib 2.275 has max_write_request_units
and warm_throughput), no L1 overrides.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from aws_cdk import aws_dynamodb as dynamodb

from infra.settings import DYNAMODB_BASE_WARM_WRITES


@dataclass(frozen=True)
class TableCapacity:
    mode: str  # "on_demand" | "provisioned"
    min_wcu: Optional[int]
    max_wcu: Optional[int]
    target_utilization_pct: int
    # provisioned reads: fixed (min == max, no autoscaling) or autoscaled between the two
    min_rcu: int = 1
    max_rcu: int = 1

    def table_props(self) -> dict[str, Any]:
        """Keyword arguments for dynamodb.Table."""
        if self.mode == "provisioned":
            return {"billing_mode": dynamodb.BillingMode.PROVISIONED,
                    "write_capacity": self.min_wcu, "read_capacity": self.min_rcu}
        props: dict[str, Any] = {"billing_mode": dynamodb.BillingMode.PAY_PER_REQUEST}
        if self.max_wcu is not None:
            props["max_write_request_units"] = self.max_wcu
            if self.max_wcu > DYNAMODB_BASE_WARM_WRITES:
                props["warm_throughput"] = dynamodb.WarmThroughput(
                    write_units_per_second=self.max_wcu)
        return props

    def autoscale(self, table: dynamodb.Table) -> None:
        """Target tracking on the provisioned table (nothing to do on demand)."""
        if self.mode != "provisioned":
            return
        assert self.min_wcu is not None and self.max_wcu is not None
        table.auto_scale_write_capacity(
            min_capacity=self.min_wcu, max_capacity=self.max_wcu,
        ).scale_on_utilization(target_utilization_percent=self.target_utilization_pct)
        if self.max_rcu > self.min_rcu:
            table.auto_scale_read_capacity(
                min_capacity=self.min_rcu, max_capacity=self.max_rcu,
            ).scale_on_utilization(target_utilization_percent=self.target_utilization_pct)
