"""GET /v1/top, /v1/ads/{ad_id}/metrics, /v1/campaigns/{campaign_id}/metrics,
/v1/advertisers/{advertiser_id}/metrics, /v1/quality, /v1/health: the query Lambda (API Gateway
REST proxy). The routes, in API Gateway's syntax: query.routes.ROUTES (CDK and the local stack).

Thin edge: HTTP <-> QueryService (pure parameter parsing and merging) <-> serving store chosen by
SERVING_STORE (dynamodb | timestream). Bad parameters are 400 {"error", "status"}; a store that
cannot be reached is 503 with Retry-After; no input makes it answer 500.
"""
from __future__ import annotations

from urllib.parse import unquote

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from common.config import AggregationSettings, QualitySettings
from common.observability import handler_metrics
from common.responses import api_resolver, error_response, json_response
from common.runtime import per_container
from query.pipeline_metrics import CloudWatchPipelineMetrics
from query.service import QueryService
from query.api_errors import handle_refusals
from serving import READ, make_store

logger = Logger(service="query")
metrics = handler_metrics("query")
tracer = Tracer(service="query")
app = api_resolver()


@per_container
def get_service() -> QueryService:
    """Built once per container: the store's clients and thread pool are reused."""
    return QueryService(make_store(READ), AggregationSettings.from_env(),
                        pipeline_metrics=CloudWatchPipelineMetrics.from_env(),
                        quality=QualitySettings.from_env())  # IVT_ALERT_PERCENT


def _params() -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


def _answered(route: str, body: dict) -> Response:
    requests = body.get("debug", {}).get("requests", 0)
    metrics.add_metric(name="StoreRequests", unit=MetricUnit.Count, value=requests)
    if "exact" in body:
        metrics.add_metric(name="TopInexact", unit=MetricUnit.Count, value=0 if body["exact"] else 1)
    logger.info("answered", route=route, store_requests=requests, exact=body.get("exact"))
    return json_response(200, body)


handle_refusals(app, metrics, logger, store="serving store")


@app.get("/v1/top")
@tracer.capture_method
def get_top() -> Response:
    return _answered("top", get_service().top(_params()))


@app.get("/v1/ads/<ad_id>/metrics")
@tracer.capture_method
def get_ad_metrics(ad_id: str) -> Response:
    return _answered("series", get_service().series(unquote(ad_id), _params()))


@app.get("/v1/campaigns/<campaign_id>/metrics")
@tracer.capture_method
def get_campaign_metrics(campaign_id: str) -> Response:
    return _answered("campaign_series", get_service().series(unquote(campaign_id), _params(), "campaign"))


@app.get("/v1/advertisers/<advertiser_id>/metrics")
@tracer.capture_method
def get_advertiser_metrics(advertiser_id: str) -> Response:
    return _answered("advertiser_series", get_service().series(unquote(advertiser_id), _params(), "advertiser"))


@app.get("/v1/quality")
@tracer.capture_method
def get_quality() -> Response:
    return _answered("quality", get_service().quality(_params()))


@app.get("/v1/health")
@tracer.capture_method
def get_health() -> Response:
    service = get_service()
    metrics.add_metric(name="HealthChecks", unit=MetricUnit.Count, value=1)
    try:
        body = service.health()
    except (ClientError, BotoCoreError) as exc:
        logger.warning("health check failed", error=repr(exc))
        return error_response(503, f"serving store unreachable: {type(exc).__name__}", retry_after_s=1,
                              store=service.store.kind)
    return json_response(200, body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
