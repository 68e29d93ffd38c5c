"""Rounding helpers shared by the components."""
from __future__ import annotations

import math


def ceil_div(a: float, b: float) -> int:
    return int(math.ceil(a / b - 1e-12))


def round_up_2sig(x: float) -> int:
    """Round up to two significant digits (12,347 -> 13,000; 257 -> 260): for limits, not counts."""
    if x <= 0:
        return 0
    magnitude = 10 ** max(0, int(math.floor(math.log10(x))) - 1)
    return int(math.ceil(x / magnitude - 1e-9) * magnitude)
