"""POST /v1/clicks (ad servers, API key), POST /v1/public/clicks (browsers and apps, no key: the
click token is the credential, ingest.public) and GET /v1/c?t=TOKEN (click links): the ingest
Lambda (API Gateway REST proxy integration).

Thin edge: HTTP <-> pure validation (ingest.validation) <-> IngestService (DynamoDB + Kinesis,
and click tokens: ingest.tokens, keys from Secrets Manager through Powertools Parameters).
Every item refused (a whole request, a rejected click, a click link's refused token) is put to
the refused-items archive (ingest.refusals, common.refused; Firehose), best effort but counted.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from common.click_token import SecretKeys, TokenRejected, VerifyPolicy
from common.config import IngestSettings
from common import public_route
from common.observability import handler_metrics
from common.refused import POST_CLICKS, POST_EVENTS, POST_PUBLIC_CLICKS
from common.responses import api_resolver, error_response, json_response
from common.runtime import per_container
from ingest.dedup import DedupStore
from ingest.publisher import KinesisPublisher
from ingest import events, public, redirect, refusals
from ingest.service import ACCEPTED, DUPLICATE, REJECTED, RETRYABLE, IngestService, RequestMeta
from ingest.tokens import ENFORCE, OFF, KeysUnavailable, TokenVerifier
from ingest.validation import RequestError, check_content_type, decode_body, extract_items, parse_batch

logger = Logger(service="ingest")
metrics = handler_metrics("ingest")
tracer = Tracer(service="ingest")
app = api_resolver()
# how long a container reuses the click-token key set it read (Powertools Parameters' cache):
# a rotation (docs/click-token.md) reaches every container within this time
KEYS_MAX_AGE_S = 300
# the refused-items archive is best effort: a short deadline, one SDK retry (the archive puts
# Firehose's per-record failures once more itself), so a Firehose outage costs a refused request
# at most a few seconds, never its answer
FIREHOSE_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2},
                         connect_timeout=1, read_timeout=2)


@per_container
def get_service() -> IngestService:
    """Built once per container: clients and the thread pool are reused across invocations."""
    settings = IngestSettings.from_env()
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=2, read_timeout=5,
        max_pool_connections=settings.dedup_concurrency + 4,
    )
    pool = ThreadPoolExecutor(max_workers=settings.dedup_concurrency, thread_name_prefix="dedup")
    dedup = DedupStore(boto3.client("dynamodb", config=config), settings.dedup_table, pool,
                       settings.claim_lease_s, mode=settings.ingest_dedup_mode)
    publisher = KinesisPublisher(boto3.client("kinesis", config=config), settings.clicks_stream,
                                 settings.kinesis_max_attempts, settings.kinesis_backoff_base_ms)
    events_publisher = KinesisPublisher(boto3.client("kinesis", config=config), settings.events_stream,
                                        settings.kinesis_max_attempts, settings.kinesis_backoff_base_ms)
    keys, policy = token_keys(settings, config)
    return IngestService(settings, dedup, publisher, tokens=token_verifier(settings, keys, policy),
                         links=redirect.LinkVerifier(keys, policy), refused=refused_archive(settings),
                         public_tokens=TokenVerifier(ENFORCE, keys, policy),
                         events_publisher=events_publisher)


def refused_archive(settings: IngestSettings) -> Optional[refusals.RefusedArchive]:
    """The refused-items archive (setting refused_delivery_stream), or None when it is unset or
    empty: then refused items are answered and logged only."""
    name = (settings.refused_delivery_stream or "").strip()
    if not name:
        return None
    return refusals.RefusedArchive(boto3.client("firehose", config=FIREHOSE_CONFIG), name)


def archive_refused(service: IngestService, build: Callable[[], list[dict[str, Any]]]) -> None:
    """Put the refused items `build()` describes to the archive (built only when there is one);
    never raises: a refusal stays a 4xx. What could not be archived is counted
    (RefusedUnarchived) and logged record by record (the logs are then the archive)."""
    if service.refused is None:
        return
    try:
        records = build()
    except Exception:  # noqa: BLE001 - a bug in a record builder must not become a 5xx
        metrics.add_metric(name="RefusedUnarchived", unit=MetricUnit.Count, value=1)
        logger.exception("refused items could not be described for the archive")
        return
    if not records:
        return
    result = service.refused.put(records)
    metrics.add_metric(name="RefusedArchived", unit=MetricUnit.Count, value=result.archived)
    if result.unarchived:
        metrics.add_metric(name="RefusedUnarchived", unit=MetricUnit.Count,
                           value=len(result.unarchived))
        for record in result.unarchived:
            logger.error("refused item not archived", errors=result.errors, refused=record)


def _meta(event) -> RequestMeta:
    identity = event.request_context.identity
    return RequestMeta(event.request_context.request_id, identity.source_ip, identity.user_agent)


def token_keys(settings: IngestSettings, config: Config) -> tuple[SecretKeys, VerifyPolicy]:
    """The key set (the secret's current value, cached KEYS_MAX_AGE_S by this container's
    provider; read on first use only) and the verifier's limits."""
    provider = SecretsProvider(boto3_client=boto3.client("secretsmanager", config=config))
    name = settings.click_token_secret
    keys = SecretKeys(lambda: provider.get(name, max_age=KEYS_MAX_AGE_S))
    policy = VerifyPolicy(max_age_s=settings.click_token_max_age_s,
                          clock_skew_s=settings.click_token_clock_skew_s)
    return keys, policy


def token_verifier(settings: IngestSettings, keys: SecretKeys, policy: VerifyPolicy):
    """POST's verifier: None with click_token_mode off (POST never reads the secret then)."""
    if settings.click_token_mode == OFF:
        return None
    return TokenVerifier(settings.click_token_mode, keys, policy)


def _error(exc: RequestError, service: IngestService, event, route: str = POST_CLICKS,
           metric: str = "RequestsRefused") -> Response:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    archive_refused(service, lambda: [refusals.request_record(
        _meta(event), service.clock_ms(), exc.status, exc.field, exc.code, exc.reason,
        refusals.body_bytes(event.body, event.is_base64_encoded), route)])
    return error_response(exc.status, exc.reason, details=exc.details)


def _read_items(service: IngestService, event,
                content_types: tuple[str, ...] = ("application/json",)) -> list:
    """The request's click items; raises RequestError for a request refused as a whole."""
    check_content_type(dict(event.headers or {}), content_types)
    payload = decode_body(event.body, event.is_base64_encoded, service.settings)
    return extract_items(payload, service.settings)


@app.post("/v1/clicks")
@tracer.capture_method
def post_clicks() -> Response:
    service = get_service()
    event = app.current_event
    try:
        items = _read_items(service, event)
    except RequestError as exc:
        return _error(exc, service, event)

    batch = parse_batch(items, service.settings, service.clock_ms())
    meta = _meta(event)
    outcome = service.ingest(batch, meta)

    metrics.add_metric(name="BatchSize", unit=MetricUnit.Count, value=len(items))
    for status, name in ((ACCEPTED, "ClicksAccepted"), (DUPLICATE, "ClicksDuplicate"),
                         (REJECTED, "ClicksRejected"), (RETRYABLE, "ClicksRetryable")):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=outcome.counts[status])
    metrics.add_metric(name="DedupLatency", unit=MetricUnit.Milliseconds,
                       value=outcome.timings_ms.get("dedup_ms", 0.0))
    for token_outcome, n in sorted(outcome.token_outcomes.items()):
        metrics.add_metric(name=f"ClickToken_{token_outcome}", unit=MetricUnit.Count, value=n)
    return _batch_answer(service, meta, items, outcome, POST_CLICKS)


@app.post(events.PATH)
@tracer.capture_method
def post_events() -> Response:
    """Impressions, clicks and conversions (ingest.events, docs/events.md), API key like
    POST /v1/clicks. Metrics Events_<type>_<status>."""
    service = get_service()
    event = app.current_event
    try:
        check_content_type(dict(event.headers or {}))
        payload = decode_body(event.body, event.is_base64_encoded, service.settings)
        items = events.extract_events(payload, service.settings)
    except RequestError as exc:
        return _error(exc, service, event, POST_EVENTS, "EventsRequestsRefused")
    batch = events.parse_events(items, service.settings, service.clock_ms())
    meta = _meta(event)
    outcome = service.ingest_events(batch, meta)
    metrics.add_metric(name="EventsBatchSize", unit=MetricUnit.Count, value=len(items))
    per_type: dict[str, int] = {}
    for r in outcome.results:
        key = f"Events_{r['type'] or 'unknown'}_{r['status']}"
        per_type[key] = per_type.get(key, 0) + 1
    for name, n in sorted(per_type.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=n)
    for token_outcome, n in sorted(outcome.token_outcomes.items()):
        metrics.add_metric(name=f"ClickToken_{token_outcome}", unit=MetricUnit.Count, value=n)
    return _batch_answer(service, meta, items, outcome, POST_EVENTS, "no valid event in request")


def _batch_answer(service: IngestService, meta: RequestMeta, items: list, outcome,
                  route: str, nothing_valid: str = "no valid click in request") -> Response:
    """A POST route's answer for its batch's outcome (and the archive of its rejected items)."""
    if outcome.keys_error is not None:
        logger.error("click-token key set unavailable", error=outcome.keys_error)
    if outcome.unreleased_claims or outcome.unconfirmed_claims:
        logger.warning("claims left pending (resolved by lease takeover)",
                       unreleased=outcome.unreleased_claims, unconfirmed=outcome.unconfirmed_claims)

    status = outcome.status_code
    if outcome.refusals:
        archive_refused(service, lambda: refusals.item_records(
            meta, service.clock_ms(), status, items, outcome.refusals, route))
    body = {"request_id": meta.request_id, **outcome.counts, "results": outcome.results}
    if status == 400:
        return error_response(400, nothing_valid, **body)
    return json_response(status, body, retry_after_s=1 if status == 503 else None)


def _with_public_cors(response: Response) -> Response:
    response.headers.update(public_route.response_headers())
    return response


# cors=False: this route's CORS is its own (common.public_route: `*`, whatever origins
# CORS_ALLOWED_ORIGINS lists for the other routes), added to every answer here
@app.post(public_route.PATH, cors=False)
@tracer.capture_method
def post_public_clicks() -> Response:
    """Clicks from browsers and apps, no API key (ingest.public): every click needs a valid
    token whatever click_token_mode says; ids and price are the token's, ip and user agent the
    request's. Per-outcome metrics PublicClicks_<status>, PublicClickToken_<outcome>."""
    service = get_service()
    event = app.current_event
    try:
        items = _read_items(service, event, public_route.CONTENT_TYPES)  # + text/plain (sdk/js)
    except RequestError as exc:
        return _with_public_cors(_error(exc, service, event, POST_PUBLIC_CLICKS,
                                        "PublicRequestsRefused"))

    batch = parse_batch(items, service.settings, service.clock_ms(), token_required=True,
                        ignored_fields=public.IGNORED_FIELDS)
    meta = _meta(event)
    batch = public.with_request_facts(batch, meta.user_agent, event.headers.get("referer"))
    outcome = service.ingest_public(batch, meta)

    for status in (ACCEPTED, DUPLICATE, REJECTED, RETRYABLE):
        metrics.add_metric(name=f"PublicClicks_{status}", unit=MetricUnit.Count,
                           value=outcome.counts[status])
    for token_outcome, n in sorted(outcome.token_outcomes.items()):
        metrics.add_metric(name=f"PublicClickToken_{token_outcome}", unit=MetricUnit.Count, value=n)
    return _with_public_cors(_batch_answer(service, meta, items, outcome, POST_PUBLIC_CLICKS))


@app.route(public_route.PATH, method="OPTIONS", cors=False)
def preflight_public_clicks() -> Response:
    """The CORS preflight, as API Gateway's MOCK answers it (infra.constructs.api_cors): the
    same headers, so the local stack (and any deployment that routes OPTIONS here) agrees.
    Counted (PublicPreflights): on AWS the count stays 0 unless the MOCK method is missing."""
    metrics.add_metric(name="PublicPreflights", unit=MetricUnit.Count, value=1)
    return Response(status_code=204, content_type=None, body="",
                    headers=public_route.preflight_headers())


def _link_refused(status: int, reason: str, message: str, retry_after_s=None) -> Response:
    metrics.add_metric(name=f"ClickLinkRefused_{reason}", unit=MetricUnit.Count, value=1)
    headers = dict(redirect.NO_STORE)
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body={"error": message, "status": status, "reason": reason}, headers=headers)


@app.get(redirect.PATH)
@tracer.capture_method
def get_click_link() -> Response:
    """A click link (ingest.redirect): verify the token (always), record the click, 302 to the
    token's landing URL.

    A click that cannot be recorded after its token was verified (dedup store or stream down,
    or the same click in flight in another request) still gets its 302: the user clicked an ad
    and must reach the advertiser's page; an error page would lose the visit *and* the click,
    and a browser does not retry a 503. The loss is counted (metric ClickLinkUnrecorded) and
    logged with the click's ids, so it shows on the dashboard/alarms and can be reconciled
    from the logs. Only a key set that cannot be read answers 503 (+ Retry-After): without
    verification there is no landing URL we may trust, and redirecting anyway would be an
    open redirect."""
    service = get_service()
    event = app.current_event
    query = event.multi_value_query_string_parameters
    values = (query or {}).get("t") or []
    now_ms = service.clock_ms()
    if len(values) != 1 or not values[0]:
        message = "expected exactly one query parameter t: a click token"
        archive_refused(service, lambda: [refusals.link_record(
            _meta(event), now_ms, 400, redirect.MISSING, message, query)])
        return _link_refused(400, redirect.MISSING, message)
    try:
        claims = service.links.verify(values[0], now_ms / 1000)
    except TokenRejected as exc:
        logger.info("click link refused", reason=exc.reason, detail=exc.detail)
        status = redirect.STATUS[exc.reason]
        archive_refused(service, lambda: [refusals.link_record(
            _meta(event), now_ms, status, exc.reason, exc.detail, query)])
        return _link_refused(status, exc.reason, f"click token refused: {exc.reason}")
    except KeysUnavailable as exc:
        logger.error("click-token key set unavailable", error=str(exc))
        return _link_refused(503, "keys_unavailable", "click tokens cannot be verified now",
                             retry_after_s=1)
    identity = event.request_context.identity
    meta = _meta(event)
    batch = redirect.link_click(claims, values[0], identity.source_ip, identity.user_agent,
                                event.headers.get("referer"),
                                now_ms)
    outcome = service.ingest(batch, meta, verified=True)
    result = outcome.results[0]
    metrics.add_metric(name=f"ClickLink_{result['status']}", unit=MetricUnit.Count, value=1)
    if result["status"] not in (ACCEPTED, DUPLICATE):
        metrics.add_metric(name="ClickLinkUnrecorded", unit=MetricUnit.Count, value=1)
        logger.error("click link redirected without recording its click",
                     click_id=result["click_id"], reason=result.get("reason"),
                     impression_id=claims.impression_id, ad_id=claims.ad_id,
                     campaign_id=claims.campaign_id, price_micros=claims.price_micros)
    return Response(status_code=302, headers={"Location": claims.landing_url, **redirect.NO_STORE},
                    body="")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
