"""The ratio rules (query.ratios, pure) against the oracle's own copy (tests/query/truth.py:
definitions, Decimal rounding): every ratio of any counts, the halves, null denominators, the
volume floor."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from query.ratios import RATIOS, ratios_json, round_half_up
from tests.query.truth import FIELDS, RATIO_FIELDS, point_ratios, ratio_json, volume_floor

COUNTS = st.integers(0, 10**12) | st.integers(0, 3) | st.sampled_from([1, 2, 3, 7, 10**6, 999_999, 1_000_001])


@settings(max_examples=600, deadline=None)
@given(values=st.tuples(*[COUNTS] * len(FIELDS)))
def test_every_ratio_of_any_counts_equals_the_oracle(values):
    assert ratios_json(dict(zip(FIELDS, values))) == point_ratios(values)


def test_the_definitions_are_the_issues():
    assert {n: (r.numerator, r.denominator, r.money) for n, r in RATIOS.items()} == RATIO_FIELDS
    for name in RATIOS:
        for volume in (1, 100, 10**12):
            assert RATIOS[name].volume_floor(volume) == volume_floor(name, volume)


@pytest.mark.parametrize("name,num,den,expected", [
    ("ctr", 1, 3, 0.333333), ("ctr", 2, 3, 0.666667), ("ctr", 1, 2_000_000, 0.000001),  # half: up
    ("ctr", 1, 2_000_001, 0.0), ("ctr", 5, 0, None), ("ctr", 0, 0, None), ("ctr", 0, 9, 0.0),
    ("cvr", 7, 2, 3.5), ("roas", 9_000_000, 4_000_000, 2.25), ("roas", 1, 0, None),
    ("cpc", 1, 2, "0.000001"), ("cpc", 1, 3, "0.000000"), ("cpc", 2_500_000, 13, "0.192308"),
    ("cpa", 10_000_000_000, 1, "10000.000000"), ("cpa", 3, 0, None),
])
def test_rounding_half_up_and_nulls(name, num, den, expected):
    r = RATIOS[name]
    assert r.to_json(r.value(num, den)) == expected == ratio_json(name, None if den == 0 else Fraction(num, den))


def test_round_half_up_both_signs():
    assert [round_half_up(Fraction(n, 2)) for n in (-3, -1, 0, 1, 3, 5)] == [-2, -1, 0, 1, 2, 3]
    assert round_half_up(Fraction(10**30 + 1, 10**30)) == 1
