"""POST /v1/reconcile?day=YYYY-MM-DD: start the billing recompute + reconciliation of one day.

Starts a run of the nightly billing workflow with run property `day` (the jobs read it, see
glue_jobs/workflow_day.py) and answers 202 with the run id at once: a recompute takes minutes.
The outcome shows in GET /v1/quality (`reconciliation.day`, `finished_at`) and in the drift
report. The workflow allows one run at a time: a second request while one runs is 409.
`apply_corrections=true` adds the run property `apply_corrections` = "true": the reconciliation
then corrects the day's realtime buckets if the day is flagged (glue_jobs/corrections.py).
A separate function from the query Lambda so that the query role stays read-only: this one may
only start runs of the one workflow.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from common.config import ReconcileSettings, ServingSettings
from common.observability import handler_metrics
from common.responses import api_resolver, error_response, json_response
from common.runtime import per_container
from query.reconcile_request import parse_reconcile
from query.api_errors import handle_refusals

logger = Logger(service="reconcile")
metrics = handler_metrics("reconcile")
tracer = Tracer(service="reconcile")
app = api_resolver()
DAY_PROPERTY = "day"  # = glue_jobs.workflow_day.DAY_PROPERTY
CORRECTIONS_PROPERTY = "apply_corrections"  # = glue_jobs.workflow_day.CORRECTIONS_PROPERTY


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# The handler's clock: which days are "in the future", "older than 90 days" or still partial
# depends on it. Tests pin it (monkeypatch this attribute); in Lambda it is the real UTC clock.
clock: Callable[[], datetime] = utc_now


@per_container
def _glue():
    return boto3.client("glue", config=Config(retries={"mode": "standard", "max_attempts": 3},
                                              connect_timeout=2, read_timeout=10))


handle_refusals(app, metrics, logger)  # its Glue errors: post_reconcile answers them itself


@app.post("/v1/reconcile")
@tracer.capture_method
def post_reconcile() -> Response:
    params = dict(app.current_event.query_string_parameters or {})
    settings = ReconcileSettings.from_env()  # names, defaults and rules: common.schema
    # older days' raw archive is in the cold class (archive_cold_after_days): a restore comes first
    req = parse_reconcile(params, clock(), settings.archive_cold_after_days,
                          settings.billing_cutoff_hours)
    workflow = settings.require("billing_workflow")
    try:
        properties = {DAY_PROPERTY: req.day.isoformat()}
        if req.apply_corrections:
            properties[CORRECTIONS_PROPERTY] = "true"
        run_id = _glue().start_workflow_run(Name=workflow, RunProperties=properties)["RunId"]
    except ClientError as exc:
        code = exc.response["Error"].get("Code", "")
        if code == "ConcurrentRunsExceededException":
            metrics.add_metric(name="ReconcileConflicts", unit=MetricUnit.Count, value=1)
            return error_response(409, f"a run of {workflow} is in progress; retry when it ends",
                                  retry_after_s=60)
        logger.warning("start_workflow_run failed", error=repr(exc))
        return error_response(503, f"billing workflow unavailable: {code}", retry_after_s=5)
    except BotoCoreError as exc:
        logger.warning("start_workflow_run failed", error=repr(exc))
        return error_response(503, "billing workflow unreachable", retry_after_s=5)
    metrics.add_metric(name="ReconcileStarted", unit=MetricUnit.Count, value=1)
    logger.info("reconcile started", day=req.day.isoformat(), run_id=run_id, partial=req.partial,
                apply_corrections=req.apply_corrections)
    reconciles = ServingSettings.from_env().serving_store == "dynamodb"
    return json_response(202, {
        "status": "started", "day": req.day.isoformat(), "workflow": workflow, "run_id": run_id,
        "partial_day": req.partial, "reconciliation": reconciles,
        "apply_corrections": req.apply_corrections and reconciles,
        "result": "GET /v1/quality -> reconciliation (day, finished_at, total_drift)" if reconciles
        else "billing recompute only: reconciliation needs serving_store=dynamodb",
    })


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
