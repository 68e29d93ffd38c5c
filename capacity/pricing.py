"""List prices and service quotas per region, from the dated JSON files in capacity/prices/.

One file per region (`<region>.json`): `as_of` (the date the prices were valid), a `note`, and
per price `unit`, `per` (the price is per this many units), either `usd` or `tiers` (cumulative
monthly `upto` in units, null = open-ended), a `source` and a `confidence`
(high | medium | low | placeholder). Prices change; the code never hard-codes one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

PRICES_DIR = Path(__file__).resolve().parent / "prices"
CONFIDENCE_LEVELS = ("high", "medium", "low", "placeholder")


@dataclass(frozen=True)
class Tier:
    upto: Optional[float]  # cumulative monthly quantity where this tier ends; None = no end
    usd: float  # price per Price.per units inside this tier


@dataclass(frozen=True)
class Price:
    key: str
    unit: str
    per: float
    tiers: tuple[Tier, ...]
    source: str
    confidence: str

    @property
    def first_usd(self) -> float:
        return self.tiers[0].usd

    def cost(self, quantity: float, after: float = 0.0) -> float:
        """Monthly cost of `quantity` units (tiers applied to the cumulative monthly quantity),
        billed after `after` units of the same price this month: tiers count per account, so a
        second consumer of one price (the events archive after the clicks') pays the later tiers."""
        if after > 0:
            return self.cost(after + quantity) - self.cost(after)
        if quantity <= 0:
            return 0.0
        total, done = 0.0, 0.0
        for tier in self.tiers:
            end = quantity if tier.upto is None else min(quantity, tier.upto)
            if end > done:
                total += (end - done) / self.per * tier.usd
                done = end
            if done >= quantity:
                break
        return total

    def describe(self) -> str:
        """'$0.015 per shard-hours' or '$3.5 up to 333,000,000; $2.8 up to ...; $1.51 beyond'."""
        per = "" if self.per == 1 else f"{self.per:,.0f} "
        if len(self.tiers) == 1:
            return f"${self.first_usd:g} per {per}{self.unit}"
        parts = [f"${t.usd:g}" + (" beyond" if t.upto is None else f" up to {t.upto:,.0f}")
                 for t in self.tiers]
        return f"per {per}{self.unit}: " + "; ".join(parts)


@dataclass(frozen=True)
class Quota:
    key: str
    value: float
    source: str
    confidence: str


@dataclass(frozen=True)
class PriceBook:
    region: str
    currency: str
    as_of: str
    note: str
    prices: dict[str, Price]
    quotas: dict[str, Quota]
    path: str

    def __getitem__(self, key: str) -> Price:
        try:
            return self.prices[key]
        except KeyError:
            raise KeyError(f"price {key!r} missing from {self.path}") from None

    def cost(self, key: str, quantity: float, after: float = 0.0) -> float:
        return self[key].cost(quantity, after)

    def quota(self, key: str) -> float:
        try:
            return self.quotas[key].value
        except KeyError:
            raise KeyError(f"quota {key!r} missing from {self.path}") from None


def available_regions() -> list[str]:
    return sorted(p.stem for p in PRICES_DIR.glob("*.json"))


def _parse_price(key: str, raw: dict, path: Path) -> Price:
    if ("usd" in raw) == ("tiers" in raw):
        raise ValueError(f"{path}: price {key} needs exactly one of 'usd' or 'tiers'")
    if "tiers" in raw:
        tiers = tuple(Tier(None if t["upto"] is None else float(t["upto"]), float(t["usd"]))
                      for t in raw["tiers"])
        if tiers[-1].upto is not None:
            raise ValueError(f"{path}: price {key}: the last tier must be open-ended (upto null)")
        ends = [t.upto for t in tiers[:-1]]
        if any(e is None for e in ends) or ends != sorted(ends):
            raise ValueError(f"{path}: price {key}: tier ends must increase")
    else:
        tiers = (Tier(None, float(raw["usd"])),)
    confidence = raw.get("confidence", "")
    if confidence not in CONFIDENCE_LEVELS:
        raise ValueError(f"{path}: price {key}: confidence must be one of {CONFIDENCE_LEVELS}")
    if not raw.get("source"):
        raise ValueError(f"{path}: price {key} has no source note")
    return Price(key, raw["unit"], float(raw.get("per", 1)), tiers, raw["source"], confidence)


@lru_cache(maxsize=None)
def load_prices(region: str = "us-east-1") -> PriceBook:
    path = PRICES_DIR / f"{region}.json"
    if not path.is_file():
        raise ValueError(f"no price file for region {region!r}: have {available_regions()}")
    raw = json.loads(path.read_text())
    if raw.get("region") != region:
        raise ValueError(f"{path}: region field {raw.get('region')!r} != {region!r}")
    if not raw.get("as_of"):
        raise ValueError(f"{path}: as_of date missing")
    prices = {k: _parse_price(k, v, path) for k, v in raw["prices"].items()}
    quotas = {k: Quota(k, float(v["value"]), v["source"], v.get("confidence", ""))
              for k, v in raw.get("quotas", {}).items()}
    return PriceBook(region, raw.get("currency", "USD"), raw["as_of"], raw.get("note", ""),
                     prices, quotas, str(path))
