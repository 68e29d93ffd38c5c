"""Run a Lambda handler in-process, like the Lambda service would: one invocation at a time.

Why a process-wide lock: Powertools event-handler resolvers keep the current event on a
*class* attribute (`BaseRouter.current_event`), shared by every resolver in the process. In
Lambda one execution environment serves one invocation at a time, so that is safe there; here
concurrent HTTP requests would read each other's events (seen: one request publishing another
request's clicks). Each handler still fans its AWS calls out over its own thread pool.
"""
from __future__ import annotations

import importlib
import threading
import uuid
from dataclasses import dataclass, field

API_RESOLVER_LOCK = threading.Lock()  # shared by every function built on a Powertools resolver


def fresh_metrics(module) -> None:
    """A new container starts with no metrics. In this process the handler module (and its
    Powertools metrics object) outlives containers: earlier in-process use with metrics disabled
    (tests) never flushed, and Powertools keeps what is never flushed, so the new container's
    first flush would publish those values too (seen: /v1/quality counting a fuzz test's
    rejected clicks). Clear every Powertools metrics object of the module."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, Metrics

    for value in vars(module).values():
        if isinstance(value, (Metrics, EphemeralMetrics)):
            value.clear_metrics()


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"

    def __post_init__(self):
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}")
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


class LocalFunction:
    """`handler` is 'package.module.function', imported on first invocation."""

    def __init__(self, name: str, handler: str, lock: threading.Lock | None = None):
        """`lock`: API_RESOLVER_LOCK for resolver-based handlers (the default); functions
        without a resolver (the stream sink) get their own, so they never wait for the API."""
        self.name = name
        self.emf = None  # local.emf.EmfForwarder: what the handler prints goes through it
        self._lock = lock or API_RESOLVER_LOCK
        self._module_name, _, self._func_name = handler.rpartition(".")
        self._fn = None
        self.invocations = 0

    def invoke(self, event: dict) -> dict:
        with self._lock:
            if self._fn is None:  # cold start of this container
                module = importlib.import_module(self._module_name)
                fresh_metrics(module)
                self._fn = getattr(module, self._func_name)
            self.invocations += 1
            if self.emf is None:
                return self._fn(event, LambdaContext(self.name))
            from local.emf import capture

            with capture() as printed:
                try:
                    return self._fn(event, LambdaContext(self.name))
                finally:
                    self.emf.handle("".join(printed))
