"""Metrics of the Lambda handlers (ingest, query, reconcile, sink): one definition of how each
handler module gets its Powertools metrics object."""
from __future__ import annotations

import os

from aws_lambda_powertools.metrics import EphemeralMetrics

from common.schema import ResourceNames


def handler_metrics(service: str) -> EphemeralMetrics:
    """The handler module's metrics, in POWERTOOLS_METRICS_NAMESPACE (default ClickAgg).

    EphemeralMetrics, not Metrics: Metrics keeps its metrics and dimensions in class attributes
    shared by every instance in the process, so where several handlers share a process (the local
    stack, tests) one handler's flush published another's metrics under its own service dimension.
    One instance per handler module keeps the one-service-per-Lambda behaviour."""
    # Powertools' own variable (infra sets it on every function); the fallback: the same name
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or ResourceNames().metrics_namespace
    return EphemeralMetrics(namespace=namespace, service=service)
