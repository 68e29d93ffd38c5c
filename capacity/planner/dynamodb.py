"""DynamoDB capacity: on-demand vs provisioned with autoscaling, cost lines and warnings
(the dedup table and the serving table use it)."""
from __future__ import annotations

from dataclasses import dataclass

from capacity.planner.assumptions import (
    DDB_TARGET_UTILIZATION, DDB_TROUGH_RATIO, HOURS_PER_MONTH, SECONDS_PER_MONTH,
)
from capacity.planner.helpers import ceil_div
from capacity.planner.model import Component
from capacity.pricing import PriceBook


@dataclass(frozen=True)
class Capacity:
    mode: str
    on_demand_usd: float
    provisioned_usd: float
    min_wcu: int
    max_wcu: int


def ddb_capacity(pb: PriceBook, wcu_avg: float, wcu_peak: float, choice: str) -> Capacity:
    """On-demand (billed per write at the average) vs provisioned with autoscaling (capacity
    follows load at the target utilisation: average capacity = average / target; min below the
    nightly trough, max for the peak). 'auto' takes the cheaper."""
    on_demand = pb.cost("ddb_on_demand_wru", wcu_avg * SECONDS_PER_MONTH)
    provisioned = pb.cost("ddb_provisioned_wcu_hour", wcu_avg / DDB_TARGET_UTILIZATION * HOURS_PER_MONTH)
    mode = choice if choice != "auto" else ("provisioned" if provisioned < on_demand else "on_demand")
    min_wcu = max(1, ceil_div(wcu_avg * DDB_TROUGH_RATIO / DDB_TARGET_UTILIZATION, 1))
    max_wcu = max(min_wcu, ceil_div(wcu_peak / DDB_TARGET_UTILIZATION, 1))
    return Capacity(mode, on_demand, provisioned, min_wcu, max_wcu)


def capacity_lines(c: Component, pb: PriceBook, cap: Capacity, wcu_avg: float) -> None:
    if cap.mode == "on_demand":
        c.cost(pb, "writes (on-demand)", "ddb_on_demand_wru", wcu_avg * SECONDS_PER_MONTH)
    else:
        c.cost(pb, "writes (provisioned, autoscaled)", "ddb_provisioned_wcu_hour",
               wcu_avg / DDB_TARGET_UTILIZATION * HOURS_PER_MONTH)


def capacity_alternatives(c: Component, cap: Capacity, prefix: str = "") -> dict[str, float]:
    """The component's whole monthly cost under each capacity mode (storage etc. unchanged)."""
    chosen = cap.on_demand_usd if cap.mode == "on_demand" else cap.provisioned_usd
    rest = sum(line.usd for line in c.costs) - chosen
    return {f"{prefix}on_demand": cap.on_demand_usd + rest,
            f"{prefix}provisioned": cap.provisioned_usd + rest}


def capacity_warnings(c: Component, pb: PriceBook, cap: Capacity, wcu_avg: float,
                       wcu_peak: float, what: str) -> None:
    table_quota = pb.quota("ddb_table_max_wcu")
    if wcu_peak > table_quota:
        c.warnings.append(f"QUOTA: {what} peaks at {wcu_peak:,.0f} WCU/s, over the table-level "
                          f"default of {table_quota:,.0f}: raise 'Table-level write throughput "
                          f"limit' in Service Quotas.")
    if cap.mode == "on_demand":
        c.notes.append(f"On-demand: set warm throughput to >= {wcu_peak:,.0f} writes/s (a new "
                       f"table starts at 4,000) and MaxWriteRequestUnits to {cap.max_wcu:,} as a "
                       f"cost guard; on-demand absorbs 2x its previous peak instantly.")
    else:
        c.notes.append(f"Provisioned + autoscaling at {DDB_TARGET_UTILIZATION:.0%}: min "
                       f"{cap.min_wcu:,} WCU, max {cap.max_wcu:,} WCU.")
        if wcu_peak > 2 * wcu_avg:
            c.warnings.append(f"peak is {wcu_peak / wcu_avg:.1f}x the average: autoscaling "
                              f"follows in minutes, so raise the minimum (scheduled scaling) "
                              f"before known events or writes are throttled until it catches up.")
