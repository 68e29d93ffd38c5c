"""No test sees Powertools metrics recorded by another (tests/conftest.py: fresh_powertools_metrics).

With metrics disabled (the test environment) Powertools' flush neither prints nor clears, and a
`Metrics` object shares its metric, dimension and metadata sets with every other one (class
attributes); a handler's module-level `EphemeralMetrics` outlives the test that used it. Each test
here runs twice (parametrized) and first asserts that it starts from nothing, then leaves values
behind: without the per-test reset, whichever of the two runs second fails."""
from __future__ import annotations

import importlib
import os

import pytest

TURNS = ["first", "second"]


@pytest.mark.parametrize("turn", TURNS)
def test_shared_metrics_start_empty_in_every_test(turn):
    from aws_lambda_powertools import Metrics

    assert os.environ["POWERTOOLS_METRICS_DISABLED"] == "true"
    m = Metrics(namespace="ClickAgg", service=f"isolation-{turn}")
    assert (m.metric_set, m.dimension_set, m.metadata_set, m.default_dimensions) == ({}, {}, {}, {})
    m.set_default_dimensions(turn=turn)
    m.add_dimension(name="test", value="isolation")
    m.add_metadata(key="turn", value=turn)
    m.add_metric(name=f"Left{turn.title()}", unit="Count", value=1)
    m.flush_metrics()  # disabled: nothing printed, nothing cleared
    # what the next test would inherit, through any new Metrics object
    other = Metrics(namespace="ClickAgg", service="another")
    assert set(other.metric_set) == {f"Left{turn.title()}"}
    assert other.dimension_set == {"turn": turn, "test": "isolation"}
    assert other.metadata_set == {"turn": turn} and other.default_dimensions == {"turn": turn}


@pytest.mark.parametrize("turn", TURNS)
def test_handler_metrics_start_empty_in_every_test(turn):
    handlers = [importlib.import_module(m).metrics for m in ("ingest.handler", "query.handler")]
    for metrics in handlers:
        assert (metrics.metric_set, metrics.metadata_set) == ({}, {}), metrics.service
    for metrics in handlers:
        metrics.add_metric(name=f"Left{turn.title()}", unit="Count", value=1)
        metrics.add_metadata(key="turn", value=turn)
        metrics.flush_metrics()
        assert set(metrics.metric_set) == {f"Left{turn.title()}"}
