"""The local stack as one object: moto server, resources, handlers behind the local API.

Usage: `with LocalStack() as stack: ...` or `python -m local up` (runs until Ctrl-C).
"""
from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from common.archive import EVENTS
from common.config import (BudgetSettings, IngestSettings, QualitySettings, ReconcileSettings,
                           ResourceNames, ServingSettings)
from common import public_route
from common.refused import STREAM_ENV, delivery_stream_name
from common.runtime import reset_containers
from local.apigw import LocalApiGateway, Route
from local.archiver import LocalArchiver
from local.refused_delivery import LocalRefusedDelivery
from local.emf import EmfForwarder
from local.esm import LocalEventSourceMapping
from local.flink import LocalFlinkJob, flink_available
from local.glue_workflow import GLUE_PYTHON, LocalGlueWorkflow
from local.lambda_runtime import LocalFunction
from local.moto_server import MotoServer
from local.web import StaticRoute
from local.resources import create_all
from query.routes import BUDGET_ROUTES, ROUTES

REPO = Path(__file__).resolve().parent.parent
QUERY_RESOURCES = ROUTES  # the query Lambda's routes: the one list infra builds from too


def aws_env(endpoint: str) -> dict[str, str]:
    """What points unchanged boto3 code at the emulator: nothing else is moto-specific."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }


def lambda_env(names: ResourceNames = ResourceNames()) -> dict[str, str]:
    """Powertools settings for in-process handlers: no X-Ray daemon here, quiet logs; EMF
    metric lines are captured and forwarded to the emulator's CloudWatch (local.emf)."""
    return {
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "false",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("CLICKAGG_LOG_LEVEL", "WARNING"),
        "POWERTOOLS_METRICS_NAMESPACE": names.metrics_namespace,
        # the handlers' own settings (common.schema): defaults, with this stack's resource names
        **ServingSettings(serving_table=names.serving_table).to_env(),
        **QualitySettings(clicks_stream_name=names.clicks_stream).to_env(),
        **ReconcileSettings(billing_workflow=names.billing_workflow).to_env(),
        **BudgetSettings(budgets_table=names.budgets_table).to_env(),
        STREAM_ENV: delivery_stream_name(names.prefix),  # the refused-items archive (ingest)
    }


@dataclass
class StackOptions:
    moto_port: int | None = None
    api_port: int = 0
    clicks_shards: int = 4
    state_dir: Path = REPO / ".local"
    settings: IngestSettings = IngestSettings()
    budget: BudgetSettings = BudgetSettings()  # the budget Lambda's (its table: this stack's)
    endpoint: str | None = None  # attach to a running emulator (positions resume) instead of starting moto
    archive: bool = True  # run the Firehose stand-ins (clicks, events streams -> Parquet in S3; refused items)
    sink: bool = True  # run the sink Lambda on the aggregates stream
    flink: bool = True  # run the Flink job (needs .venv-flink) on the clicks/aggregates streams
    glue: bool = True  # run billing workflow runs (POST /v1/reconcile) on local Spark (.venv-glue)
    flink_settings: dict = field(default_factory=lambda: {
        # short: a restore (fault test, restarted stack) replays at most ~2 s of clicks; freshness
        # does not wait for checkpoints (the Kinesis sink is not transactional)
        "checkpoint_interval_ms": "2000",
        "minibatch_latency_ms": "1000",
    })


class LocalStack:
    def __init__(self, options: StackOptions | None = None):
        self.options = options or StackOptions()
        self.names = ResourceNames()
        self.moto: MotoServer | None = None
        self.endpoint: str | None = None
        self.api: LocalApiGateway | None = None
        self.ingest = LocalFunction("clickagg-ingest", "ingest.handler.lambda_handler")
        self.query = LocalFunction("clickagg-query", "query.handler.lambda_handler")
        self.sink = LocalFunction("clickagg-sink", "aggregate.sink_handler.lambda_handler", threading.Lock())
        self.reconcile = LocalFunction("clickagg-reconcile", "query.reconcile_handler.lambda_handler")
        self.budget = LocalFunction("clickagg-budget", "query.budget.handler.lambda_handler")
        self.emf: EmfForwarder | None = None
        self.glue_workflow: LocalGlueWorkflow | None = None
        self.archiver: LocalArchiver | None = None
        self.events_archiver: LocalArchiver | None = None
        self.refused_delivery: LocalRefusedDelivery | None = None
        self.sink_mapping: LocalEventSourceMapping | None = None
        self.flink_job: LocalFlinkJob | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def functions(self) -> tuple[LocalFunction, ...]:
        return (self.ingest, self.query, self.sink, self.reconcile, self.budget)

    def _set_env(self, env: dict[str, str]) -> None:
        for k, v in env.items():
            self._saved_env.setdefault(k, os.environ.get(k))
            os.environ[k] = v

    def start(self) -> "LocalStack":
        # a new stack is a new set of containers: handlers build their clients again, from the
        # environment set below (the emulator's endpoint), on first use
        reset_containers()
        state = self.options.state_dir
        state.mkdir(parents=True, exist_ok=True)
        if self.options.endpoint:  # a restart against the same emulator: consumers resume
            endpoint = self.options.endpoint
        else:
            for stale in state.glob("*.json"):  # positions of a previous emulator's streams
                stale.unlink()
            self.moto = MotoServer(self.options.moto_port, state / "moto.log").start()
            endpoint = self.moto.url
        self.endpoint = endpoint
        ingest_env = self.options.settings.to_env()
        if not self.options.settings.refused_delivery_stream:  # unset: the stack's own (lambda_env)
            ingest_env.pop(STREAM_ENV, None)
        budget_env = replace(self.options.budget, budgets_table=self.names.budgets_table).to_env()
        self._set_env({**aws_env(endpoint), **lambda_env(self.names), **ingest_env, **budget_env})
        create_all(self.names, self.options.clicks_shards)
        self.emf = EmfForwarder()
        for function in self.functions:
            function.emf = self.emf
        self.api = LocalApiGateway([Route("/v1/clicks", self.ingest), Route(public_route.PATH, self.ingest),
                                    Route("/v1/c", self.ingest), Route("/v1/events", self.ingest)]
                                   + [Route(r, self.query) for r in QUERY_RESOURCES]
                                   + [Route("/v1/reconcile", self.reconcile)]
                                   + [Route(r, self.budget) for r in BUDGET_ROUTES],
                                   port=self.options.api_port).start()
        self.api.routes.append(StaticRoute())  # the dashboard (web/dist) at /
        if self.options.archive:
            self.archiver = LocalArchiver(self.names.clicks_stream, self.names.archive_bucket, state).start()
            self.events_archiver = LocalArchiver(self.names.events_stream, self.names.archive_bucket, state,
                                                 layout=EVENTS).start()
            self.refused_delivery = LocalRefusedDelivery(self.names.archive_bucket).start()
        if self.options.sink:
            self.sink_mapping = LocalEventSourceMapping(self.names.aggregates_stream, self.sink, state).start()
        if self.options.flink and flink_available():
            self.start_flink(fresh=not self.options.endpoint)
        if self.options.glue and GLUE_PYTHON.exists():
            self.glue_workflow = LocalGlueWorkflow(self.names.billing_workflow, self.names.archive_bucket,
                                                   self.names.serving_table, state).start()
        return self

    def start_flink(self, fresh: bool) -> None:
        """Start the job on the stack's streams: fresh (from TRIM_HORIZON, old checkpoints
        removed) or restored from its newest retained checkpoint (resumes at its shard positions)."""
        state = self.options.state_dir
        checkpoints = state / "flink-checkpoints"
        if fresh:
            shutil.rmtree(checkpoints, ignore_errors=True)
        self.flink_job = LocalFlinkJob(self.names.clicks_stream, self.names.aggregates_stream, self.endpoint,
                                       checkpoints, state / "flink.log",
                                       self.options.flink_settings,
                                       events_stream=self.names.events_stream).start(fresh=fresh)

    def stop(self) -> None:
        for worker in (self.glue_workflow, self.flink_job, self.sink_mapping, self.archiver, self.events_archiver,
                       self.refused_delivery, self.emf):
            if worker:
                worker.stop()
        self.flink_job = self.sink_mapping = self.archiver = self.events_archiver = self.refused_delivery = None
        self.glue_workflow = self.emf = None
        for function in self.functions:
            function.emf = None
        if self.api:
            self.api.stop()
            self.api = None
        if self.moto:
            self.moto.stop()
            self.moto = None
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env.clear()
        reset_containers()  # the containers end with the stack: nothing keeps a client of its endpoint

    def __enter__(self) -> "LocalStack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
