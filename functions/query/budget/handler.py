"""The budget Lambda (docs/budget.md): PUT/GET /v1/campaigns/{campaign_id}/budget,
GET /v1/campaigns/{campaign_id}/pacing and POST /v1/pacing (many campaigns at once).
Routes and methods: query.routes.BUDGET_ROUTES.

Its own function: it writes the budgets table (the query Lambda stays read-only) and answers ad
servers on their request path, so it has its own concurrency and alarms. Bad input is 400 with
a reason; a concurrent PUT of the same campaign 409; DynamoDB out of reach 503 with Retry-After.
"""
from __future__ import annotations

import time
from typing import Callable
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from common.config import BudgetSettings
from common.observability import handler_metrics
from common.responses import api_resolver, error_response, json_response
from common.runtime import per_container
from query.budget.store import BudgetConflict, BudgetStore
from query.budgets import budget_json, decision_json, parse_batch_body, parse_budget_body
from query.pacing import STALE, PacingPolicy, decide, holds_for_the_day
from query.api_errors import handle_refusals
from query.windows import parse_id
from serving.table import RequestCounter

logger = Logger(service="budget")
metrics = handler_metrics("budget")
tracer = Tracer(service="budget")
app = api_resolver()

# The handler's clock (tests pin it); in Lambda the real one.
clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)


@per_container
def get_store() -> BudgetStore:
    return BudgetStore.from_env()


@per_container
def get_policy() -> PacingPolicy:
    return PacingPolicy.from_settings(BudgetSettings.from_env())


handle_refusals(app, metrics, logger, store="budget store")


def _campaign(raw: str) -> str:
    return parse_id("campaign_id", unquote(raw), required=True)


def _caller() -> str:
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.caller or "unknown"


@app.put("/v1/campaigns/<campaign_id>/budget")
@tracer.capture_method
def put_budget(campaign_id: str) -> Response:
    cid = _campaign(campaign_id)
    store = get_store()
    current = store.get_budget(cid)
    budget = parse_budget_body(cid, app.current_event.body, clock_ms(), _caller(),
                               current.revision + 1 if current else 1)
    try:
        store.put_budget(budget)
    except BudgetConflict:
        metrics.add_metric(name="BudgetConflicts", unit=MetricUnit.Count, value=1)
        return error_response(409, f"the budget of campaign {cid} changed while this request "
                                   "was written; read it again and retry")
    metrics.add_metric(name="BudgetsSet", unit=MetricUnit.Count, value=1)
    logger.info("budget set", campaign_id=cid, revision=budget.revision, caller=budget.set_by,
                daily_budget_micros=budget.daily_micros, lifetime_budget_micros=budget.lifetime_micros)
    return json_response(200, budget_json(budget))


@app.get("/v1/campaigns/<campaign_id>/budget")
@tracer.capture_method
def get_budget(campaign_id: str) -> Response:
    cid = _campaign(campaign_id)
    budget = get_store().get_budget(cid)
    if budget is None:
        return error_response(404, f"no budget set for campaign {cid}")
    return json_response(200, budget_json(budget))


def _decisions(campaign_ids: list[str]) -> tuple[list[dict], int]:
    now, policy, counter = clock_ms(), get_policy(), RequestCounter()
    figures = get_store().figures(campaign_ids, now, counter)
    answers = []
    for cid in campaign_ids:
        budget, f = figures[cid]
        d = decide(budget, f, now, policy, cid)
        if holds_for_the_day(d) and f.stopped_revision != budget.revision:
            get_store().record_stop(cid, f.day_start_ms, budget.revision)
            metrics.add_metric(name="BudgetsExhausted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=f"Pacing{d.decision.capitalize()}", unit=MetricUnit.Count, value=1)
        if d.reason == STALE:
            metrics.add_metric(name="PacingStale", unit=MetricUnit.Count, value=1)
        answers.append(decision_json(d, now, policy))
    if answers and answers[0]["figure_age_ms"] is not None:
        metrics.add_metric(name="SpendFigureAge", unit=MetricUnit.Milliseconds,
                           value=answers[0]["figure_age_ms"])
    return answers, counter.n


def _cached(body: dict) -> Response:
    """The answer with how long a caller may keep it (the stop margin counts that long)."""
    response = json_response(200, body)
    seconds = get_policy().cache_ttl_ms // 1000
    response.headers["Cache-Control"] = f"max-age={seconds}" if seconds else "no-store"
    return response


@app.get("/v1/campaigns/<campaign_id>/pacing")
@tracer.capture_method
def get_pacing(campaign_id: str) -> Response:
    (answer,), requests = _decisions([_campaign(campaign_id)])
    return _cached({**answer, "debug": {"requests": requests}})


@app.post("/v1/pacing")
@tracer.capture_method
def post_pacing() -> Response:
    ids = parse_batch_body(app.current_event.body)
    answers, requests = _decisions(ids)
    return _cached({"decisions": answers, "debug": {"requests": requests}})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
