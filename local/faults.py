"""Fault injection for the local stack: wrappers around the real AWS clients (and the sink's
store) that fail some calls the way AWS does. Failed writes are really not written, so the
pipeline has to recover them; tests then compare every store with the ground truth."""
from __future__ import annotations

import random
import threading
from collections import Counter

from botocore.exceptions import ClientError


def _error(code: str, op: str, message: str = "injected") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


class FaultCounters:
    def __init__(self):
        self.counts: Counter = Counter()
        self._lock = threading.Lock()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n


class _FlakyClient:
    """Delegates to the real client; `_roll(p)` decides a fault (seeded, thread-safe)."""

    def __init__(self, real, counters: FaultCounters, seed: int):
        self.real, self.counters = real, counters
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.real, name)

    def _roll(self, p: float) -> bool:
        with self._lock:
            return self._rng.random() < p


class FlakyKinesis(_FlakyClient):
    """PutRecords where each record fails with ProvisionedThroughputExceeded with probability
    `record_failure_rate` (partial failure: the others are written) and the whole call is
    throttled with probability `call_throttle_rate`."""

    def __init__(self, real, counters: FaultCounters, record_failure_rate: float = 0.0,
                 call_throttle_rate: float = 0.0, seed: int = 1):
        super().__init__(real, counters, seed)
        self.record_failure_rate, self.call_throttle_rate = record_failure_rate, call_throttle_rate

    def put_records(self, StreamName, Records):
        if self._roll(self.call_throttle_rate):
            self.counters.add("kinesis_call_throttled")
            raise _error("ProvisionedThroughputExceededException", "PutRecords", "Rate exceeded for stream")
        fail = [self._roll(self.record_failure_rate) for _ in Records]
        passing = [r for r, f in zip(Records, fail) if not f]
        written = iter(self.real.put_records(StreamName=StreamName, Records=passing)["Records"]) if passing else iter(())
        out = []
        for f in fail:
            if f:
                out.append({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"})
            else:
                out.append(next(written))
        failed = sum("ErrorCode" in r for r in out)
        self.counters.add("kinesis_records_failed", failed)
        return {"FailedRecordCount": failed, "Records": out}


class FlakyDynamo(_FlakyClient):
    """The dedup check (PutItem: per_click's claim; BatchGetItem: mark mode's read) throttled
    with probability `put_throttle_rate` per call; BatchWriteItem (confirm / mark) and
    BatchGetItem return each item or key as unprocessed with probability `unprocessed_rate`."""

    def __init__(self, real, counters: FaultCounters, put_throttle_rate: float = 0.0,
                 unprocessed_rate: float = 0.0, seed: int = 2):
        super().__init__(real, counters, seed)
        self.put_throttle_rate, self.unprocessed_rate = put_throttle_rate, unprocessed_rate

    def put_item(self, **kwargs):
        if self._roll(self.put_throttle_rate):
            self.counters.add("dynamodb_put_throttled")
            raise _error("ProvisionedThroughputExceededException", "PutItem")
        return self.real.put_item(**kwargs)

    def batch_get_item(self, RequestItems):
        if self._roll(self.put_throttle_rate):
            self.counters.add("dynamodb_read_throttled")
            raise _error("ProvisionedThroughputExceededException", "BatchGetItem")
        (table, request), = RequestItems.items()
        keys = [k for k in request["Keys"] if not self._roll(self.unprocessed_rate)]
        held = [k for k in request["Keys"] if k not in keys]
        resp = (self.real.batch_get_item(RequestItems={table: {**request, "Keys": keys}}) if keys
                else {"Responses": {table: []}})
        if held:
            self.counters.add("dynamodb_unprocessed_keys", len(held))
            resp["UnprocessedKeys"] = {table: {**request, "Keys": held}}
        return resp

    def batch_write_item(self, RequestItems):
        (table, requests), = RequestItems.items()
        keep = [r for r in requests if not self._roll(self.unprocessed_rate)]
        held = [r for r in requests if r not in keep]
        resp = self.real.batch_write_item(RequestItems={table: keep}) if keep else {"UnprocessedItems": {}}
        if held:
            self.counters.add("dynamodb_unprocessed", len(held))
            resp.setdefault("UnprocessedItems", {}).setdefault(table, []).extend(held)
        return resp


class FailingStore:
    """Serving store whose writes fail with probability `failure_rate` (before writing)."""

    def __init__(self, real, counters: FaultCounters, failure_rate: float, seed: int = 3):
        self.real, self.counters, self.failure_rate = real, counters, failure_rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.real, name)

    def apply_many(self, changes):
        out = []
        for change in changes:
            with self._lock:
                fail = self._rng.random() < self.failure_rate
            if fail:
                self.counters.add("sink_write_failed")
                out.append(_error("ProvisionedThroughputExceededException", "PutItem"))
            else:
                out.append(self.real.apply_many([change])[0])
        return out


class DuplicatingFunction:
    """Invokes a LocalFunction, and with probability `duplicate_rate` invokes it a second time
    with the same event (the ESM's at-least-once redelivery)."""

    def __init__(self, function, counters: FaultCounters, duplicate_rate: float, seed: int = 4):
        self.function, self.counters, self.duplicate_rate = function, counters, duplicate_rate
        self.name = function.name
        self._rng = random.Random(seed)

    def invoke(self, event):
        first = self.function.invoke(event)
        if self._rng.random() < self.duplicate_rate:
            self.counters.add("sink_batches_redelivered")
            shuffled = dict(event, Records=list(reversed(event["Records"])))  # and out of order
            self.function.invoke(shuffled)
        return first


def install_ingest_faults(counters: FaultCounters, **rates) -> None:
    """Wrap the in-process ingest handler's clients (after the stack started)."""
    from ingest import handler

    service = handler.get_service()
    service.publisher._kinesis = FlakyKinesis(getattr(service.publisher._kinesis, "real", service.publisher._kinesis),
                                              counters, rates.get("record_failure_rate", 0.0),
                                              rates.get("call_throttle_rate", 0.0))
    service.dedup._ddb = FlakyDynamo(getattr(service.dedup._ddb, "real", service.dedup._ddb), counters,
                                     rates.get("put_throttle_rate", 0.0), rates.get("unprocessed_rate", 0.0))


def install_sink_faults(stack, counters: FaultCounters, failure_rate: float, duplicate_rate: float) -> None:
    from aggregate import sink_handler

    store = sink_handler.get_store()  # the cached instance: the next stack start drops it
    failing = FailingStore(store, counters, failure_rate)
    real_apply_many = store.apply_many
    failing.real = type("Real", (), {"apply_many": staticmethod(real_apply_many)})()
    store.apply_many = failing.apply_many
    if stack.sink_mapping is not None:
        stack.sink_mapping.function = DuplicatingFunction(stack.sink, counters, duplicate_rate)


def describe(counters: FaultCounters) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counters.counts.items())) or "none"


