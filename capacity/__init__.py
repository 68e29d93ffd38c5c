"""Capacity planning and cost model of the clickagg pipeline (pure Python, no AWS calls).

    python -m capacity plan --rate 115740 --peak 500000 [--json]
    python -m capacity profiles [--json]
    python -m capacity docs [--check]

capacity.planner.plan() sizes and costs every component; capacity.profiles publishes the CDK
context values of the small/medium/large profiles; prices live in capacity/prices/<region>.json.
"""
from __future__ import annotations

import sys
from pathlib import Path

# functions/ on sys.path (as infra/__init__.py does): the planner takes its shared defaults from
# the one configuration schema, `common.schema`, the module the Lambdas bundle as `common`.
_FUNCTIONS = str(Path(__file__).resolve().parent.parent / "functions")
if _FUNCTIONS not in sys.path:
    sys.path.insert(0, _FUNCTIONS)
