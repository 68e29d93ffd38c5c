"""A local Kinesis event source mapping: polls a stream and invokes a function with real Kinesis
event shapes, honouring partial batch responses (`batchItemFailures`) the way Lambda does:
the shard's position advances to just before the first failed record, which is redelivered
together with everything after it. After `max_retries` a failing batch goes to the on-failure
destination (here a list; SQS on AWS) and the shard moves on."""
from __future__ import annotations

import base64
import time
from pathlib import Path

from local.kinesis_consumer import BackgroundWorker, Checkpoints, ShardPoller
from local.lambda_runtime import LocalFunction


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
                 max_retries: int = 5, poll_interval_s: float = 0.2):
        self.stream, self.function, self.batch_size = stream, function, batch_size
        self.max_retries, self.poll_interval_s = max_retries, poll_interval_s
        self.checkpoints = Checkpoints(state_dir / f"esm-{stream}.json")
        self.poller = ShardPoller(stream, self.checkpoints, limit=batch_size)
        self.arn = f"arn:aws:kinesis:us-east-1:000000000000:stream/{stream}"
        self.on_failure: list[dict] = []
        self.delivered = 0
        super().__init__(f"esm-{stream}")
        self._attempts: dict[str, int] = {}

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

    def _deliver(self, shard_id: str, records: list[dict]) -> None:
        try:
            response = self.function.invoke(kinesis_event(self.arn, shard_id, records)) or {}
            failed = [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
        except Exception:
            failed = [records[0]["SequenceNumber"]]  # whole invocation failed: retry the batch
        if not failed:
            self.delivered += len(records)
            self._attempts.pop(shard_id, None)
            self.checkpoints.save(shard_id, records[-1]["SequenceNumber"])
            return
        first_failed = min(failed, key=int)
        done = [r for r in records if int(r["SequenceNumber"]) < int(first_failed)]
        self.delivered += len(done)
        if done:
            self.checkpoints.save(shard_id, done[-1]["SequenceNumber"])
        # retries count per failing record: a retry that got further starts a new count (with
        # partial batch responses the shard advances to the first failed record each time)
        if done:
            self._attempts.pop(shard_id, None)
        attempts = self._attempts[shard_id] = self._attempts.get(shard_id, 0) + 1
        if attempts > self.max_retries:  # give up on this batch: on-failure destination
            rest = records[len(done):]
            self.on_failure.append({"shard_id": shard_id, "first": rest[0]["SequenceNumber"],
                                    "last": rest[-1]["SequenceNumber"], "count": len(rest)})
            self.checkpoints.save(shard_id, rest[-1]["SequenceNumber"])
            self._attempts.pop(shard_id, None)
        else:
            time.sleep(min(0.1 * 2**attempts, 2))
        self.poller.rewind(shard_id)
