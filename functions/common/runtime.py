"""What a Lambda handler builds once per execution environment (container) and reuses.

Lambda keeps a module's globals for the life of its container, so AWS clients, thread pools and
the services built on them are made on first use and kept (the Powertools examples' module-level
clients). `@per_container` marks such a factory: it runs at most once per container, under a
lock, and its value is returned from then on.

A host that runs handlers in a long-lived process of its own, and then starts what stands for
new containers in that process, calls `reset_containers()`: every factory's value is dropped and
built again, from the environment of that moment, on next use. Nothing here knows what such a
host is; in Lambda nothing calls it.
"""
from __future__ import annotations

import functools
import threading
import weakref
from typing import Callable, TypeVar

T = TypeVar("T")

_UNSET = object()
# weak: a handler module that is executed again (a test's cold start) does not keep the old copy alive
_factories: "weakref.WeakSet[Callable]" = weakref.WeakSet()
_registry_lock = threading.Lock()


def per_container(factory: Callable[[], T]) -> Callable[[], T]:
    """Decorate a no-argument factory: its value is built once per container, then reused.
    `f.cache_clear()` drops the value of this factory alone (as on functools.lru_cache)."""
    lock = threading.Lock()
    value = _UNSET

    @functools.wraps(factory)
    def get() -> T:
        nonlocal value
        current = value
        if current is _UNSET:
            with lock:
                if value is _UNSET:
                    value = factory()
                current = value
        return current

    def cache_clear() -> None:
        nonlocal value
        with lock:
            value = _UNSET

    get.cache_clear = cache_clear
    with _registry_lock:
        _factories.add(get)
    return get


def reset_containers() -> None:
    """Start every handler of this process as in a new container: drop every `@per_container`
    value (the next use builds it again from the current environment)."""
    with _registry_lock:
        factories = list(_factories)
    for get in factories:
        get.cache_clear()
