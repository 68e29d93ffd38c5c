"""How `make test-main` shares the main suite between two pytest-xdist workers (both cores).

A test module is one unit of work (as `--dist loadfile`: its module-scoped fixtures, e.g. a
local stack, start once), except the modules that run the Flink job on a local stack (a JVM at
parallelism 2, moto server, the API): they are one unit, run one after another on one worker,
since two such stacks at once on 2 cores starve each other's checkpoints and timeouts. Why not
xdist's `--dist loadgroup`: with pytest 9 its group marks have no effect (it renames nodes
through `Item._nodeid`, which pytest 9 no longer reads)."""
from __future__ import annotations

FLINK_STACK_MODULES = frozenset({
    "tests/faults/test_exactly_once.py",
    "tests/integration/test_budget_lane.py",
    "tests/integration/test_bench_pipeline_smoke.py",
    "tests/integration/test_local_stack.py",
    "tests/sdk/test_sdk_browser_e2e.py",
})
FLINK_STACK = "flink_stack"


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its module, or the Flink-stack unit."""
    module = nodeid.split("::", 1)[0]
    return FLINK_STACK if module in FLINK_STACK_MODULES else module


def make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return ModuleScheduling(config, log)
