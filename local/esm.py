"""A local Kinesis event source mapping: polls a stream and invokes a function with real Kinesis
event shapes, handling failures as the deployed mapping is configured to
(infra/constructs/sink_function.py: ReportBatchItemFailures, BisectBatchOnFunctionError,
MaximumRetryAttempts, an on-failure destination) and as AWS documents it:

- Partial batch response (`batchItemFailures`): the records before the lowest reported sequence
  number are done (the shard's position advances to just before it) and the rest of the batch is
  retried. An empty or null list is a success; an identifier that names no record of the batch
  (empty, null, missing, unknown) fails the whole batch.
- Function error (the invocation raised), with `bisect_on_error`: the batch is split in two
  halves, delivered one after the other; splitting consumes no retry. A batch of one record
  cannot be split: it is retried.
- Retries: a failing batch is retried up to `max_retries` times (retries count per failing
  record: a retry that got further starts a new count), with backoff; then its sequence range
  goes to the on-failure destination (a list here; SQS on AWS) and the shard moves on.
Defaults are the deployed mapping's (the schema's, common.schema: sink_batch_size,
sink_retry_attempts; a test keeps them equal). Records of a shard are delivered in order, one
batch at a time; a polled batch is finished (delivered or discarded) before the next poll."""
from __future__ import annotations

import base64
import time
from collections import deque
from pathlib import Path

from local.kinesis_consumer import Checkpoints, ShardPoller
from local.lambda_runtime import LocalFunction
from local.worker import BackgroundWorker


def kinesis_event(stream_arn: str, shard_id: str, records: list[dict]) -> dict:
    return {"Records": [{
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": r["PartitionKey"],
            "sequenceNumber": r["SequenceNumber"],
            "data": base64.b64encode(r["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{r['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::000000000000:role/local-sink",
        "awsRegion": "us-east-1",
        "eventSourceARN": stream_arn,
    } for r in records]}


class LocalEventSourceMapping(BackgroundWorker):
    def __init__(self, stream: str, function: LocalFunction, state_dir: Path, batch_size: int = 500,
                 max_retries: int = 10, poll_interval_s: float = 0.2, bisect_on_error: bool = True,
                 sleep=time.sleep):
        """`sleep`: the wait between retries (tests pass a recorder instead of waiting)."""
        self.stream, self.function, self.batch_size = stream, function, batch_size
        self.max_retries, self.poll_interval_s, self.bisect_on_error = max_retries, poll_interval_s, bisect_on_error
        self.checkpoints = Checkpoints(state_dir / f"esm-{stream}.json")
        self.poller = ShardPoller(stream, self.checkpoints, limit=batch_size)
        self.arn = f"arn:aws:kinesis:us-east-1:000000000000:stream/{stream}"
        self.on_failure: list[dict] = []
        self.delivered = 0
        self._sleep = sleep
        super().__init__(f"esm-{stream}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batches = self.poller.poll()
            except Exception:  # emulator going down during shutdown
                if self._stop.wait(1):
                    return
                continue
            for shard_id, records in batches.items():
                self._deliver(shard_id, records)
            if not batches:
                self._stop.wait(self.poll_interval_s)

    def poll_once(self) -> int:
        """One polling round in the caller's thread: every shard polled once and what it returned
        delivered. Returns the number of records polled."""
        batches = self.poller.poll()
        for shard_id, records in batches.items():
            self._deliver(shard_id, records)
        return sum(map(len, batches.values()))

    def _first_failed(self, shard_id: str, batch: list[dict]) -> int | None:
        """Invoke the function on `batch`: index of the first record to retry (len(batch): all
        done), or None when the invocation failed (a function error)."""
        try:
            response = self.function.invoke(kinesis_event(self.arn, shard_id, batch))
        except Exception:
            return None
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if not failures:
            return len(batch)
        index = {r["SequenceNumber"]: i for i, r in enumerate(batch)}
        ids = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
        if not all(isinstance(i, str) and i in index for i in ids):
            return 0  # an identifier naming no record of the batch: the whole batch failed
        return min(index[i] for i in ids)

    def _deliver(self, shard_id: str, records: list[dict]) -> None:
        """Deliver one polled batch to the end: delivered, or discarded to the on-failure
        destination after its retries (see the module docstring)."""
        pending = deque([records])  # batches still to deliver, in shard order
        attempts = 0  # failed invocations of pending[0] since the last progress
        while pending:
            batch = pending[0]
            first_failed = self._first_failed(shard_id, batch)
            if first_failed is None and self.bisect_on_error and len(batch) > 1:
                pending.popleft()
                half = len(batch) // 2
                pending.extendleft((batch[half:], batch[:half]))  # the first half goes first
                attempts = 0
                continue
            if first_failed is None:  # a function error not split: the whole batch failed
                first_failed = 0
            done, rest = batch[:first_failed], batch[first_failed:]
            if done:
                self.delivered += len(done)
                self.checkpoints.save(shard_id, done[-1]["SequenceNumber"])
                attempts = 0  # progress: the next failure starts a new count
            if not rest:
                pending.popleft()
                continue
            pending[0] = rest
            attempts += 1
            if attempts > self.max_retries:  # give up on this batch: on-failure destination
                self.on_failure.append({"shard_id": shard_id, "first": rest[0]["SequenceNumber"],
                                        "last": rest[-1]["SequenceNumber"], "count": len(rest)})
                self.checkpoints.save(shard_id, rest[-1]["SequenceNumber"])
                pending.popleft()
                attempts = 0
                continue
            if self._stop.is_set():  # stopping: a restart redelivers from the saved position
                self.poller.rewind(shard_id)
                return
            self._sleep(min(0.1 * 2**attempts, 2))
