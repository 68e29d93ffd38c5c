"""Each Lambda handler's EMF metrics are its own, even when several handlers share one process
(the local stack runs them all in-process; so do the tests).

Regression: Powertools' `Metrics` keeps metrics and dimensions in class attributes shared by every
instance. With metrics disabled (the test environment) the query handler's metrics were never
flushed; at its 100th value Powertools serialized them anyway, which put `service=query` into the
shared dimension set, and a later `Metrics(service="ingest")` printed its metrics under
service=query (tests/query/test_quality.py::test_emf_lines_from_powertools_become_metric_data,
depending on test order)."""
from __future__ import annotations

import importlib
import json

import pytest

HANDLERS = {"ingest": "ingest.handler", "query": "query.handler", "reconcile": "query.reconcile_handler"}


def emf_docs(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"_aws"' in line]


def dimensions(doc: dict) -> dict:
    names = doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
    return {n: doc[n] for n in names}


def metric_names(doc: dict) -> set[str]:
    return {m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


@pytest.fixture
def handler_metrics(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    objs = {svc: importlib.import_module(mod).metrics for svc, mod in HANDLERS.items()}
    for m in objs.values():
        m.clear_metrics()
    yield objs
    for m in objs.values():
        m.clear_metrics()


def test_each_handler_flushes_only_its_own_metrics(handler_metrics, capsys):
    assert len({id(m.metric_set) for m in handler_metrics.values()}) == len(HANDLERS)
    assert len({id(m.dimension_set) for m in handler_metrics.values()}) == len(HANDLERS)
    for svc, m in handler_metrics.items():
        m.add_metric(name=f"Only{svc.title()}", unit="Count", value=1)
    for svc in ("query", "ingest", "reconcile"):
        handler_metrics[svc].flush_metrics()
        [doc] = emf_docs(capsys.readouterr().out)
        assert dimensions(doc) == {"service": svc}
        assert metric_names(doc) == {f"Only{svc.title()}"}


def test_an_overflowing_handler_does_not_leak_its_service_dimension(monkeypatch, capsys):
    """The order-dependent failure, reproduced in one test: 100 values on the query handler with
    metrics disabled (Powertools serializes at the 100th anyway), then a Powertools `Metrics` of
    another service."""
    from aws_lambda_powertools import Metrics

    query = importlib.import_module("query.handler").metrics
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    query.clear_metrics()
    for _ in range(100):
        query.add_metric(name="StoreRequests", unit="Count", value=1)
    capsys.readouterr()
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    other = Metrics(namespace="ClickAgg", service="ingest")
    other.add_metric(name="ClicksAccepted", unit="Count", value=3)
    other.flush_metrics()
    [doc] = emf_docs(capsys.readouterr().out)
    assert dimensions(doc) == {"service": "ingest"} and "StoreRequests" not in metric_names(doc)
    query.clear_metrics()


def test_a_new_local_container_does_not_publish_what_earlier_use_left(monkeypatch, capsys):
    """The local stack's containers share this process with everything before them: values an
    earlier in-process use recorded with metrics disabled (never flushed) must not be published
    by the new container (regression: /v1/quality counted a fuzz test's rejected clicks when
    tests/integration/test_quality_local.py ran after tests/integration/test_ingest_fuzz.py)."""
    from local.lambda_runtime import LocalFunction
    from tests.conftest import api_event

    ingest = importlib.import_module("ingest.handler")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    ingest.metrics.add_metric(name="ClicksRejected", unit="Count", value=99)
    ingest.metrics.flush_metrics()  # disabled: Powertools neither prints nor drops them
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()
    fn = LocalFunction("clickagg-ingest", "ingest.handler.lambda_handler")
    resp = fn.invoke(api_event("{}", headers={"Content-Type": "text/plain"}))  # 415 before any AWS call
    assert resp["statusCode"] == 415
    [doc] = emf_docs(capsys.readouterr().out)
    assert metric_names(doc) == {"RequestsRefused"} and dimensions(doc) == {"service": "ingest"}
    assert doc["RequestsRefused"] in (1.0, [1.0])
