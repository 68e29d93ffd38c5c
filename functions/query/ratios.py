"""The query API's ratios (issue 19), computed at query time from counts, never stored (pure).

ONE definition, used by series points and totals (query.series) and by top-K by a ratio
(query.topk, serving.read.timestream):

  ctr   billable_clicks / impressions         a number
  cvr   conversions / billable_clicks         a number
  cpc   spend / billable_clicks               money per click
  cpa   spend / conversions                   money per conversion
  roas  conversion_value / spend              a number
  spend = billable_cost (billable_cost_micros: the valid clicks at their token's price, what is
  billed). The click in every ratio is the billable (valid) click: the clicks the spend pays for
  and the nightly billing's reports count (common/named_queries.py), so cpc is the price per
  billed click and invalid traffic never inflates ctr or deflates cvr.

JSON: the exact quotient of the integer counts (micros for money; no float arithmetic) is
rounded half up: numbers to 6 decimals (a JSON number, 0.052632), money to the micro and written
like cost ("0.250000"). A ratio whose denominator is 0 is null. Top-K ranks by the exact quotient,
so two ads whose rounded values are equal keep their true order (then ad_id).

Minimum volume (top-K by a ratio only): an ad is ranked only when its denominator over the window
is at least `min_volume` (default 100): impressions for ctr, billable clicks for cvr and cpc,
conversions for cpa, spend in whole currency units for roas. So one impression with one click
(ctr 1.0) does not win.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping, Optional, Union

MICROS = 1_000_000
MONEY_SUFFIX = "_micros"  # a serving column holding money in micros (serving.table.METRICS)
DEFAULT_MIN_VOLUME, MAX_MIN_VOLUME = 100, 10**12


def is_money(column: str) -> bool:
    return column.endswith(MONEY_SUFFIX)


@dataclass(frozen=True)
class Ratio:
    name: str
    numerator: str  # serving.table.METRICS columns
    denominator: str

    @property
    def money(self) -> bool:
        """Money per unit (cpc, cpa): the numerator is money and the denominator a count."""
        return is_money(self.numerator) and not is_money(self.denominator)

    def value(self, numerator: int, denominator: int) -> Optional[Fraction]:
        """The exact quotient; None when the denominator is 0 (or below: never stored)."""
        return Fraction(int(numerator), int(denominator)) if denominator > 0 else None

    def volume_floor(self, min_volume: int) -> int:
        """`min_volume` in the denominator's stored unit (whole currency units -> micros)."""
        return min_volume * MICROS if is_money(self.denominator) else min_volume

    def to_json(self, q: Optional[Fraction]) -> Union[float, str, None]:
        if q is None:
            return None
        if self.money:
            return micros_to_decimal(round_half_up(q))
        return round_half_up(q * MICROS) / MICROS  # int / int: the double nearest the 6-decimal value


SPEND = "billable_cost_micros"
RATIOS: dict[str, Ratio] = {r.name: r for r in (
    Ratio("ctr", "billable_clicks", "impressions"),
    Ratio("cvr", "conversions", "billable_clicks"),
    Ratio("cpc", SPEND, "billable_clicks"),
    Ratio("cpa", SPEND, "conversions"),
    Ratio("roas", "conversion_value_micros", SPEND),
)}


def round_half_up(q: Fraction) -> int:
    """The nearest integer, halves away from zero."""
    n = abs(q.numerator) * 2 + q.denominator
    units = n // (2 * q.denominator)
    return units if q >= 0 else -units


def micros_to_decimal(micros: int) -> str:
    """Exact: 12340000 -> '12.340000'."""
    sign = "-" if micros < 0 else ""
    q, r = divmod(abs(int(micros)), MICROS)
    return f"{sign}{q}.{r:06d}"


def ratios_json(values: Mapping[str, int]) -> dict:
    """Every ratio of one bucket or total ({column: count}), as the API writes it."""
    return {name: r.to_json(r.value(values[r.numerator], values[r.denominator]))
            for name, r in RATIOS.items()}
