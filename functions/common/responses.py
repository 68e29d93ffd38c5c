"""HTTP answers of the API Lambdas (ingest, query, reconcile): one resolver setup and one JSON shape.

Every API Lambda is an API Gateway REST proxy behind Powertools' APIGatewayRestResolver, with the
CORS of common.cors. Bodies are Powertools `Response`s with a dict body, which the resolver
serializes (compact JSON: `json.dumps(..., separators=(",", ":"))`). A refusal is
{"error": <reason a client developer can act on>, "status": <HTTP status>, ...}; a refusal the
client should retry carries `Retry-After` (seconds).
"""
from __future__ import annotations

from typing import Any, Optional

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from common.cors import cors_config


def api_resolver() -> APIGatewayRestResolver:
    """The resolver of an API Lambda: REST proxy events, CORS for the origins infra configured."""
    return APIGatewayRestResolver(cors=cors_config())


def json_response(status: int, body: dict[str, Any], retry_after_s: Optional[int] = None) -> Response:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body,
                    headers=headers)


def error_response(status: int, reason: str, *, retry_after_s: Optional[int] = None,
                   **extra: Any) -> Response:
    """{"error": reason, "status": status, **extra}."""
    return json_response(status, {"error": reason, "status": status, **extra}, retry_after_s)


def no_route(event) -> Response:
    """404 for a method and path the API does not serve (a resolver's `not_found` answer)."""
    return error_response(404, f"no route for {event.http_method} {event.path}")
