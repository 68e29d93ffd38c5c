"""Capacity planning and cost model of the clickagg pipeline (pure Python, no AWS calls).

    python -m capacity plan --rate 115740 --peak 500000 [--json]
    python -m capacity profiles [--json]
    python -m capacity docs [--check]

capacity.planner.plan() sizes and costs every component; capacity.profiles publishes the CDK
context values of the small/medium/large profiles; prices live in capacity/prices/<region>.json.
"""
