"""A plan and its parts: components with metrics, cost lines, options, warnings and the CDK
context values they imply."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capacity.planner.assumptions import SECONDS_PER_MONTH
from capacity.pricing import PriceBook


@dataclass(frozen=True)
class Metric:
    name: str
    value: Any
    unit: str = ""


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: float
    unit: str
    usd: float  # per month
    price_key: str = ""


@dataclass
class Component:
    key: str
    title: str
    mode: str = ""
    metrics: list[Metric] = field(default_factory=list)
    costs: list[CostLine] = field(default_factory=list)
    alternatives: dict[str, float] = field(default_factory=dict)  # option -> monthly USD
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    counted: bool = True  # False: shown, not in the total (per-query services)

    @property
    def monthly_usd(self) -> float:
        return sum(c.usd for c in self.costs) if self.counted else 0.0

    def metric(self, name: str) -> Any:
        for m in self.metrics:
            if m.name == name:
                return m.value
        raise KeyError(f"{self.key}: no metric {name!r}")

    def add(self, name: str, value: Any, unit: str = "") -> None:
        self.metrics.append(Metric(name, value, unit))

    def cost(self, pb: PriceBook, item: str, price_key: str, quantity: float, unit: str = "",
             after: float = 0.0) -> None:
        """A cost line; `after`: units of the same price already billed this month (tiers)."""
        price = pb[price_key]
        self.costs.append(CostLine(item, quantity, unit or price.unit, price.cost(quantity, after),
                                   price_key))

    def to_dict(self) -> dict:
        return {
            "key": self.key, "title": self.title, "mode": self.mode, "counted": self.counted,
            "monthly_usd": round(self.monthly_usd, 2),
            "metrics": [{"name": m.name, "value": m.value, "unit": m.unit} for m in self.metrics],
            "costs": [{"item": c.item, "quantity": c.quantity, "unit": c.unit,
                       "usd": round(c.usd, 2), "price": c.price_key} for c in self.costs],
            "alternatives": {k: round(v, 2) for k, v in self.alternatives.items()},
            "warnings": list(self.warnings), "notes": list(self.notes), "context": dict(self.context),
        }


@dataclass
class Plan:
    inputs: dict[str, Any]
    region: str
    prices_as_of: str
    components: list[Component]
    account_warnings: list[str] = field(default_factory=list)
    # the budget lane's monthly USD per component key (planning.lane_costs); empty without it
    lane: dict[str, float] = field(default_factory=dict)

    @property
    def clicks_per_month(self) -> float:
        return self.inputs["rate"] * SECONDS_PER_MONTH

    @property
    def monthly_usd(self) -> float:
        return sum(c.monthly_usd for c in self.components)

    @property
    def usd_per_million_clicks(self) -> float:
        return self.monthly_usd / (self.clicks_per_month / 1e6)

    @property
    def lane_usd(self) -> float:
        """What the budget lane costs a month (its components + its share of the shared ones)."""
        return sum(self.lane.values())

    @property
    def lane_usd_per_million_clicks(self) -> float:
        return self.lane_usd / (self.clicks_per_month / 1e6)

    @property
    def context(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for c in self.components:
            merged.update(c.context)
        return dict(sorted(merged.items()))

    @property
    def warnings(self) -> list[str]:
        return [f"{c.title}: {w}" for c in self.components for w in c.warnings] + [
            f"account: {w}" for w in self.account_warnings]

    @property
    def not_implemented(self) -> list[str]:
        """Inputs set to a lever setting the code does not implement (modelled only)."""
        from capacity.planner.implemented import not_implemented

        return not_implemented(self.inputs)

    def component(self, key: str) -> Component:
        for c in self.components:
            if c.key == key:
                return c
        raise KeyError(key)

    def to_dict(self) -> dict:
        return {
            "inputs": dict(self.inputs), "region": self.region, "prices_as_of": self.prices_as_of,
            "clicks_per_month": self.clicks_per_month, "monthly_usd": round(self.monthly_usd, 2),
            "usd_per_million_clicks": round(self.usd_per_million_clicks, 4),
            "components": [c.to_dict() for c in self.components],
            "warnings": self.warnings, "context": self.context,
            "not_implemented": self.not_implemented,
            "budget_lane": {"monthly_usd": round(self.lane_usd, 2),
                            "usd_per_million_clicks": round(self.lane_usd_per_million_clicks, 4),
                            "by_component": {k: round(v, 2) for k, v in self.lane.items()}},
        }
