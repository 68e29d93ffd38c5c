"""Per-container values of the handlers (common.runtime): built once, reused, and rebuilt only
after the one reset hook a host calls when it starts new containers in the same process."""
from __future__ import annotations

import importlib
import threading
import time

import pytest

from common.runtime import per_container, reset_containers

# every handler's per-container factory: what the local stack's reset must reach
HANDLER_FACTORIES = [("ingest.handler", "get_service"), ("query.handler", "get_service"),
                     ("query.reconcile_handler", "_glue"), ("aggregate.sink_handler", "get_store")]


def test_built_once_then_reused():
    calls = []

    @per_container
    def make():
        calls.append(1)
        return object()

    assert make() is make() and len(calls) == 1


def test_reset_rebuilds_every_factory_from_the_environment_of_that_moment(monkeypatch):
    import os

    @per_container
    def a():
        return os.environ.get("RUNTIME_TEST_VALUE")

    @per_container
    def b():
        return [os.environ.get("RUNTIME_TEST_VALUE")]

    monkeypatch.setenv("RUNTIME_TEST_VALUE", "one")
    first_b = b()
    assert a() == "one"
    monkeypatch.setenv("RUNTIME_TEST_VALUE", "two")
    assert a() == "one" and b() is first_b  # no environment-keyed cache: same container, same value
    reset_containers()
    assert a() == "two" and b() == ["two"] and b() is not first_b


def test_cache_clear_drops_one_factory_only():
    @per_container
    def a():
        return object()

    @per_container
    def b():
        return object()

    a0, b0 = a(), b()
    a.cache_clear()
    assert a() is not a0 and b() is b0


def test_concurrent_first_use_builds_once():
    calls = []

    @per_container
    def slow():
        calls.append(1)
        time.sleep(0.05)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(slow())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1


@pytest.mark.parametrize("module, attr", HANDLER_FACTORIES)
def test_every_handler_factory_is_per_container(module, attr, monkeypatch):
    """Each handler's clients are built once per container, and the reset hook reaches them
    (no cache of a handler is left for a host to clear by name)."""
    monkeypatch.setenv("SERVING_TABLE", "t")
    monkeypatch.setenv("BILLING_WORKFLOW", "w")
    factory = getattr(importlib.import_module(module), attr)
    first = factory()
    assert factory() is first
    reset_containers()
    assert factory() is not first
    reset_containers()


@pytest.mark.parametrize("module", sorted({m for m, _ in HANDLER_FACTORIES}))
def test_handlers_key_nothing_on_the_environment(module):
    """No cache keyed by environment values (endpoint, table names): a module of a Lambda does
    not know that something in its process may re-point them."""
    source = importlib.import_module(module).__file__
    with open(source) as f:
        text = f.read()
    assert "lru_cache" not in text and "AWS_ENDPOINT_URL" not in text
