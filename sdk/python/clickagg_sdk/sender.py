"""`ClickSender`: fire-and-forget click tracking for servers, with a background thread.

`track(click)` returns at once (unless the queue is full) with the click's id; a worker thread
batches the waiting clicks and delivers them with `ClickClient.send` (retries per the SDK's
rules). The click_id is made once, in `track`, and kept on every retry: delivery is
at-least-once and the API's click_id dedup counts each click once.

Never silently dropped: a full queue blocks `track` (up to `enqueue_timeout_s`) then raises
`QueueFull`; every tracked click gets exactly one final outcome (`on_result`, `stats()`):
accepted, duplicate, rejected, or gave_up (not final after the client's attempts, or still
queued when `close` ran out of time).
"""
from __future__ import annotations

import atexit
import collections
import json
import logging
import threading
import time
from typing import Callable, Optional

from .client import ClickClient, ItemOutcome, encode_json, item_id
from .ids import uuid7
from .retry import ACCEPTED, DUPLICATE, GAVE_UP, REJECTED

__all__ = ["ClickSender", "QueueFull", "SenderClosed"]

log = logging.getLogger("clickagg_sdk")


class QueueFull(Exception):
    """`track` waited `enqueue_timeout_s` and the queue was still full: the API is slower than
    the clicks come (or unreachable). The click was not taken; the caller decides."""


class SenderClosed(RuntimeError):
    """`track` after `close`."""


class ClickSender:
    """Batches `track`ed clicks in a background thread and delivers them through `client`.

    Flushes a batch when `batch_size` clicks wait, or `flush_interval_s` after the oldest
    waiting one was tracked, or on `flush`/`close`. `max_queue`: clicks waiting (not yet taken
    by the worker) at most. `on_result(outcome: ItemOutcome)`: called once per click when it is
    final, on the worker thread (keep it quick; its exceptions are logged, not raised).
    Thread-safe: any number of threads may call `track` concurrently. Flushes at interpreter
    exit (atexit) and on leaving a `with` block."""

    def __init__(self, client: ClickClient, *, batch_size: int = 100, flush_interval_s: float = 1.0,
                 max_queue: int = 100_000, on_result: Optional[Callable[[ItemOutcome], None]] = None,
                 enqueue_timeout_s: float = 5.0, close_timeout_s: float = 10.0) -> None:
        if not 1 <= batch_size <= 500:
            raise ValueError(f"batch_size must be within 1..500 (the API's limit), got {batch_size}")
        if max_queue < batch_size:
            raise ValueError("max_queue must be at least batch_size")
        self.client = client
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_queue = max_queue
        self.on_result = on_result
        self.enqueue_timeout_s = enqueue_timeout_s
        self.close_timeout_s = close_timeout_s
        self._cond = threading.Condition()
        self._queue: collections.deque = collections.deque()  # (monotonic time tracked, click)
        self._tracked = 0  # clicks taken by track
        self._finished = 0  # clicks with their final outcome (FIFO: the first _finished ones)
        self._flush_upto = 0  # flush everything tracked before this count without waiting
        self._closing = False
        self._stopped = False
        self._counts = collections.Counter({ACCEPTED: 0, DUPLICATE: 0, REJECTED: 0, GAVE_UP: 0})
        self._retries = 0
        self._requests = 0
        self._thread = threading.Thread(target=self._run, name="clickagg-sender", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    # --- producers -------------------------------------------------------------------------------
    def track(self, click: dict) -> str:
        """Queue one click (or, with an EventClient, any event of clickagg_sdk.events); returns
        its id. A copy is queued (the caller's dict is never changed); a click gets `click_id` (a
        new UUIDv7) and `timestamp` (now, epoch ms) when absent, an event must have its id.
        Raises TypeError for an item that is not JSON, ValueError for an event without its id,
        QueueFull, SenderClosed."""
        if not isinstance(click, dict):
            raise TypeError(f"a click is a dict, got {type(click).__name__}")
        item = json.loads(encode_json(click))  # a deep copy, and only JSON from here on
        if item.get("type") in (None, "click"):
            if item.get("click_id") is None:
                item["click_id"] = uuid7()
            if item.get("timestamp") is None:
                item["timestamp"] = time.time_ns() // 1_000_000
        elif item_id(item) is None:
            raise ValueError(f"a {item.get('type')!r} event needs its id")
        with self._cond:
            if self._closing:
                raise SenderClosed("track() after close()")
            if len(self._queue) >= self.max_queue:
                end = time.monotonic() + self.enqueue_timeout_s
                while len(self._queue) >= self.max_queue and not self._closing:
                    left = end - time.monotonic()
                    if left <= 0:
                        raise QueueFull(f"{self.max_queue} clicks waiting for {self.enqueue_timeout_s} s")
                    self._cond.wait(left)
                if self._closing:
                    raise SenderClosed("track() after close()")
            self._queue.append((time.monotonic(), item))
            self._tracked += 1
            self._cond.notify_all()
        return item_id(item)

    def flush(self, timeout_s: Optional[float] = None) -> bool:
        """Send what waits now and wait until every click tracked so far is final. True when
        they all are, False when `timeout_s` passed first (they stay queued or in flight)."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            target = self._tracked
            self._flush_upto = max(self._flush_upto, target)
            self._cond.notify_all()
            while self._finished < target:
                if self._stopped:
                    return False
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout_s: Optional[float] = 10.0) -> bool:
        """Flush (up to `timeout_s`), then stop the worker. Clicks still queued after that are
        reported `gave_up` (reason "sender closed"); a batch still in flight is reported by the
        worker when its request ends. True when everything tracked was final in time.
        Idempotent; `track` raises SenderClosed afterwards."""
        atexit.unregister(self._at_exit)
        with self._cond:
            if self._stopped:
                return self._finished >= self._tracked
            self._closing = True
            self._cond.notify_all()
        done = self.flush(timeout_s)
        with self._cond:
            self._stopped = True
            left = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for _, item in left:
            self._finish(ItemOutcome(item.get("click_id"), GAVE_UP,
                                     [{"field": "sender", "reason": "sender closed before delivery"}], 0))
        if done:
            self._thread.join(timeout=1.0)
        return done

    def stats(self) -> dict:
        """Clicks per final status (accepted, duplicate, rejected, gave_up), `retries` (item
        re-sends), `requests` (HTTP requests), `queued` (waiting for the worker), `in_flight`."""
        with self._cond:
            return {**self._counts, "retries": self._retries, "requests": self._requests,
                    "queued": len(self._queue),
                    "in_flight": self._tracked - self._finished - len(self._queue)}

    def __enter__(self) -> "ClickSender":
        return self

    def __exit__(self, *exc) -> None:
        self.close(self.close_timeout_s)

    def _at_exit(self) -> None:
        self.close(self.close_timeout_s)

    # --- the worker ------------------------------------------------------------------------------
    def _take(self) -> Optional[list]:
        """The next batch, waiting until one is due; None when stopped."""
        with self._cond:
            while True:
                if self._stopped:
                    return None
                if self._queue:
                    taken = self._tracked - len(self._queue)
                    due_at = self._queue[0][0] + self.flush_interval_s
                    if (len(self._queue) >= self.batch_size or self._closing
                            or taken < self._flush_upto or time.monotonic() >= due_at):
                        n = min(self.batch_size, len(self._queue))
                        batch = [self._queue.popleft()[1] for _ in range(n)]
                        self._cond.notify_all()  # room in the queue for blocked track calls
                        return batch
                    self._cond.wait(max(0.0, due_at - time.monotonic()))
                else:
                    self._cond.wait()

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                outcomes = self.client.send(batch, on_attempt=self._count_request)
            except Exception as exc:  # noqa: BLE001 - a bug must not lose the batch silently
                log.exception("clickagg sender: delivery failed")
                outcomes = [ItemOutcome(item.get("click_id"), GAVE_UP,
                                        [{"field": "sender", "reason": f"{type(exc).__name__}: {exc}"}], 0)
                            for item in batch]
            for outcome in outcomes:
                self._finish(outcome)

    def _count_request(self, attempt) -> None:
        with self._cond:
            self._requests += 1

    def _finish(self, outcome: ItemOutcome) -> None:
        # the callback first: once flush() returns, on_result has run for every flushed click
        if self.on_result is not None:
            try:
                self.on_result(outcome)
            except Exception:  # noqa: BLE001 - the caller's callback must not stop delivery
                log.exception("clickagg sender: on_result raised")
        with self._cond:
            self._counts[outcome.status] += 1
            self._retries += max(0, outcome.attempts - 1)
            self._finished += 1
            self._cond.notify_all()
