"""The budget lane end to end through the local stack (HTTP -> ingest -> Kinesis -> Flink's spend
lane and pulse -> sink -> DynamoDB -> the budget Lambda; the archive -> the nightly billing on
local Spark -> reconciliation): local/demo_budget.py, the demo's own budget section, with its
checks as assertions. A campaign with a small budget gets clicks until the pacing answer is
`stop`; the Flink job is stopped and the answer turns `stop` (stale) within the bound; billed
cost = budget within one click's price, every excess click flagged over_budget."""
from __future__ import annotations

import pytest

from local.demo import Checks
from local.demo_budget import CLICK_DELAY_S, budget_billing_section, budget_section, reconcile
from local.flink import flink_available
from local.glue_workflow import GLUE_PYTHON
from local.stack import LocalStack, StackOptions

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500),
              pytest.mark.skipif(not flink_available() or not GLUE_PYTHON.exists(),
                                 reason="needs .venv-flink and .venv-glue (make setup)")]


def test_small_budget_stops_the_campaign_fails_closed_and_bills_exactly_the_budget(tmp_path):
    from common.config import BudgetSettings, IngestSettings

    checks = Checks()
    options = StackOptions(state_dir=tmp_path, settings=IngestSettings(click_token_mode="enforce"),
                           budget=BudgetSettings(budget_click_delay_ms=int(CLICK_DELAY_S * 1000)))
    with LocalStack(options) as stack:
        stack.flink_job.wait_ready()
        run = budget_section(stack, checks)
        assert not checks.failures, checks.failures
        rec = reconcile(stack, run.day)
        assert rec.get("day") == run.day, rec
        budget_billing_section(checks, run, stack.glue_workflow.out_path, rec)
    assert not checks.failures, checks.failures
