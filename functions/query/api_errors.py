"""The refusals the query-side API Lambdas (query, budget, reconcile) answer alike, registered
on a handler's resolver: a QueryError is its HTTP status and reason, an unknown route 404, and
(for a handler with a store) an AWS error 503 with Retry-After: never a 500 for bad input."""
from __future__ import annotations

from typing import Optional

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from common.responses import error_response, no_route
from query.windows import QueryError


def handle_refusals(app, metrics, logger, store: Optional[str] = None) -> None:
    """Register the handlers on `app`; `store` names what a 503 says is unavailable (None: the
    handler deals with its AWS errors itself). Metrics: RequestsRefused, StoreErrors."""

    @app.exception_handler(QueryError)
    def _bad_request(exc: QueryError) -> Response:
        metrics.add_metric(name="RequestsRefused", unit=MetricUnit.Count, value=1)
        return error_response(exc.status, exc.reason)

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response:
        metrics.add_metric(name="RequestsRefused", unit=MetricUnit.Count, value=1)
        return no_route(app.current_event)

    if store is not None:
        @app.exception_handler([ClientError, BotoCoreError])
        def _store_unavailable(exc: Exception) -> Response:
            logger.warning(f"{store} error", error=repr(exc))
            metrics.add_metric(name="StoreErrors", unit=MetricUnit.Count, value=1)
            return error_response(503, f"{store} unavailable; retry later", retry_after_s=1)
