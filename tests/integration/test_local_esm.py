"""The local Kinesis event source mapping (local/esm.py) against moto Kinesis, with a function
that fails on chosen records, compared with what AWS documents for the mapping the stack deploys
(infra/constructs/sink_function.py: ReportBatchItemFailures, BisectBatchOnFunctionError,
MaximumRetryAttempts, an SQS on-failure destination):

- partial batch response: Lambda checkpoints before the lowest reported sequence number and
  retries from there ("the batch is bisected at the returned sequence number and Lambda retries
  only the remaining records"); an itemIdentifier naming no record fails the whole batch;
- function error with BisectBatchOnFunctionError: the batch is split in two and each half retried
  separately; "splitting batches doesn't consume the retry quota";
- MaximumRetryAttempts: retries after the first attempt (N retries = N + 1 invocations); then the
  batch is discarded to the on-failure destination and the shard moves on.
Sources: docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html and
.../kinesis-on-failure-destination.html (error handling).

Every test states the exact invocations (record names per batch), backoff waits, on-failure
entries (sequence number ranges), delivered count and the saved shard position."""
from __future__ import annotations

import ast
import base64
import inspect
from pathlib import Path

import boto3
import pytest

from common.schema import default
from local.esm import LocalEventSourceMapping
from local.resources import create_stream
from tests.integration.ingest_support import Sleeps

STREAM = "esm-test"
REPO = Path(__file__).resolve().parents[2]


class TestFunction:
    """Records each invocation's record names; fails as told:
    `report[name] = n`: the next n invocations containing `name` report it in batchItemFailures;
    `raise_on[name] = n`: the next n invocations containing `name` raise (a function error);
    `answer`: a response returned instead, once (for malformed responses)."""

    __test__ = False  # not a pytest class

    def __init__(self, report=None, raise_on=None, answer=None):
        self.report, self.raise_on, self.answer = dict(report or {}), dict(raise_on or {}), answer
        self.invocations: list[list[str]] = []

    def invoke(self, event):
        names = [base64.b64decode(r["kinesis"]["data"]).decode() for r in event["Records"]]
        seqs = {n: r["kinesis"]["sequenceNumber"] for n, r in zip(names, event["Records"])}
        self.invocations.append(names)
        for name in names:
            if self.raise_on.get(name, 0) > 0:
                self.raise_on[name] -= 1
                raise RuntimeError(f"function error on {name}")
        if self.answer is not None:
            answer, self.answer = self.answer, None
            return answer
        failed = []
        for name in names:
            if self.report.get(name, 0) > 0:
                self.report[name] -= 1
                failed.append(name)
        # reported in reverse order: the mapping must take the lowest sequence number
        return {"batchItemFailures": [{"itemIdentifier": seqs[n]} for n in reversed(failed)]}


@pytest.fixture
def stream(aws):
    kinesis = boto3.client("kinesis")
    create_stream(kinesis, STREAM, 1)
    seq: dict[str, str] = {}

    def put(*names: str) -> None:
        for name in names:
            seq[name] = kinesis.put_record(StreamName=STREAM, Data=name.encode(), PartitionKey="k")["SequenceNumber"]
    put.seq = seq
    put.shard = kinesis.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
    return put


def names(n: int, start: int = 0) -> list[str]:
    return [f"r{i}" for i in range(start, start + n)]


def run(esm: LocalEventSourceMapping) -> None:
    """Poll until a round finds nothing (everything delivered or dead-lettered)."""
    for _ in range(100):
        if not esm.poll_once():
            return
    raise AssertionError("the mapping never caught up")


def mapping(tmp_path, fn, **kw):
    sleeps = Sleeps()
    esm = LocalEventSourceMapping(STREAM, fn, tmp_path, poll_interval_s=0, sleep=sleeps, **kw)
    return esm, sleeps


def dead_letter(stream, first: str, last: str, count: int) -> dict:
    return {"shard_id": stream.shard, "first": stream.seq[first], "last": stream.seq[last], "count": count}


def test_partial_failure_checkpoints_before_the_lowest_reported_record(stream, tmp_path):
    stream(*names(6))
    fn = TestFunction(report={"r2": 2, "r4": 1})
    esm, sleeps = mapping(tmp_path, fn, max_retries=3)
    run(esm)
    assert fn.invocations == [names(6), names(4, 2), names(4, 2)]
    assert sleeps.calls == [0.2, 0.4]
    assert (esm.on_failure, esm.delivered) == ([], 6)
    assert esm.checkpoints.positions == {stream.shard: stream.seq["r5"]}


def test_retries_then_on_failure_destination_and_the_shard_moves_on(stream, tmp_path):
    stream(*names(6))
    fn = TestFunction(report={"r2": 99})
    esm, sleeps = mapping(tmp_path, fn, max_retries=3)
    run(esm)
    # r2 fails in 1 + 3 invocations (3 retries); the batch from r2 on is discarded
    assert fn.invocations == [names(6)] + [names(4, 2)] * 3
    assert sleeps.calls == [0.2, 0.4, 0.8]
    assert esm.on_failure == [dead_letter(stream, "r2", "r5", 4)]
    assert esm.delivered == 2
    assert esm.checkpoints.positions == {stream.shard: stream.seq["r5"]}
    stream("r6", "r7")
    run(esm)
    assert fn.invocations[-1] == ["r6", "r7"] and esm.delivered == 4
    # a restarted mapping resumes after the saved position: nothing is delivered twice
    fresh = TestFunction()
    run(mapping(tmp_path, fresh)[0])
    assert fresh.invocations == []


def test_progress_starts_a_new_retry_count(stream, tmp_path):
    stream(*names(5))
    fn = TestFunction(report={"r1": 2, "r3": 4})
    esm, sleeps = mapping(tmp_path, fn, max_retries=2)
    run(esm)
    # r3 fails in 4 invocations, more than 1 + 2 retries, but only 2 of them without progress
    # (the first two also report r1, which stops the batch earlier): nothing is discarded
    assert fn.invocations == [names(5), names(4, 1), names(4, 1), names(2, 3), names(2, 3)]
    assert sleeps.calls == [0.2, 0.4, 0.2, 0.4]
    assert (esm.on_failure, esm.delivered) == ([], 5)


def test_batch_size(stream, tmp_path):
    stream(*names(12))
    fn = TestFunction()
    esm, sleeps = mapping(tmp_path, fn, batch_size=5)
    run(esm)
    assert fn.invocations == [names(5), names(5, 5), names(2, 10)]
    assert (sleeps.calls, esm.delivered) == ([], 12)


def test_function_error_bisects_down_to_the_bad_record(stream, tmp_path):
    stream(*names(8))
    fn = TestFunction(raise_on={"r5": 99})
    esm, sleeps = mapping(tmp_path, fn, max_retries=2)
    run(esm)
    assert fn.invocations == [
        names(8),                        # error: split in two
        names(4), names(4, 4),           # the first half passes; the second fails: split
        ["r4", "r5"],                    # fails: split
        ["r4"], ["r5"], ["r5"], ["r5"],  # r5 alone: 1 + 2 retries (splits used no retries)
        ["r6", "r7"]]
    assert sleeps.calls == [0.2, 0.4]
    assert esm.on_failure == [dead_letter(stream, "r5", "r5", 1)]
    assert esm.delivered == 7
    assert esm.checkpoints.positions == {stream.shard: stream.seq["r7"]}


def test_splitting_consumes_no_retry(stream, tmp_path):
    stream(*names(8))
    fn = TestFunction(raise_on={"r0": 99})
    esm, sleeps = mapping(tmp_path, fn, max_retries=2)
    run(esm)
    # three splits before r0 is alone, which still gets its 1 + 2 invocations
    assert fn.invocations == [names(8), names(4), names(2), ["r0"], ["r0"], ["r0"], ["r1"], names(2, 2),
                              names(4, 4)]
    assert sleeps.calls == [0.2, 0.4]
    assert (esm.on_failure, esm.delivered) == ([dead_letter(stream, "r0", "r0", 1)], 7)


def test_transient_function_error_is_split_without_waiting(stream, tmp_path):
    stream(*names(5))
    fn = TestFunction(raise_on={"r0": 1})
    esm, sleeps = mapping(tmp_path, fn, max_retries=0)
    run(esm)
    # 5 records split 2 + 3; no retry is consumed, so even max_retries=0 loses nothing
    assert fn.invocations == [names(5), names(2), names(3, 2)]
    assert (sleeps.calls, esm.on_failure, esm.delivered) == ([], [], 5)


def test_without_bisect_a_function_error_retries_the_whole_batch(stream, tmp_path):
    stream(*names(8))
    fn = TestFunction(raise_on={"r5": 99})
    esm, sleeps = mapping(tmp_path, fn, max_retries=2, bisect_on_error=False)
    run(esm)
    assert fn.invocations == [names(8)] * 3
    assert sleeps.calls == [0.2, 0.4]
    assert (esm.on_failure, esm.delivered) == ([dead_letter(stream, "r0", "r7", 8)], 0)


@pytest.mark.parametrize("answer", [
    {"batchItemFailures": [{"itemIdentifier": ""}]},
    {"batchItemFailures": [{"itemIdentifier": None}]},
    {"batchItemFailures": [{"itemIdentifer": "1"}]},  # wrong key name
    {"batchItemFailures": [{"itemIdentifier": "49999999999999999999999999999999999999999999999999999999"}]},
])
def test_malformed_item_failures_fail_the_whole_batch(stream, tmp_path, answer):
    stream(*names(3))
    fn = TestFunction(answer=answer)
    esm, sleeps = mapping(tmp_path, fn, max_retries=1)
    run(esm)
    assert fn.invocations == [names(3), names(3)]
    assert (sleeps.calls, esm.on_failure, esm.delivered) == ([0.2], [], 3)


def test_success_responses(stream, tmp_path):
    stream(*names(4))
    answers = iter([None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
    invocations = []

    class Fn:
        def invoke(self, event):
            invocations.append(len(event["Records"]))
            return next(answers)
    esm, sleeps = mapping(tmp_path, Fn(), batch_size=1)
    run(esm)
    assert (invocations, sleeps.calls, esm.delivered) == ([1, 1, 1, 1], [], 4)


def _event_source_keywords() -> dict[str, ast.expr]:
    tree = ast.parse((REPO / "infra" / "constructs" / "sink_function.py").read_text())
    [call] = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
              and n.func.attr == "KinesisEventSource"]
    return {k.arg: k.value for k in call.keywords}


def test_defaults_are_the_deployed_mappings():
    """The local mapping's defaults are the settings the CDK stack gives the sink's mapping."""
    kw = _event_source_keywords()
    assert ast.unparse(kw["bisect_batch_on_error"]) == "True"
    assert ast.unparse(kw["report_batch_item_failures"]) == "True"
    assert ast.unparse(kw["starting_position"]) == "lambda_.StartingPosition.TRIM_HORIZON"
    assert ast.unparse(kw["batch_size"]) == "settings.sink_batch_size"
    assert ast.unparse(kw["retry_attempts"]) == "settings.sink_retry_attempts"
    local = {k: p.default for k, p in inspect.signature(LocalEventSourceMapping).parameters.items()}
    assert (local["batch_size"], local["max_retries"], local["bisect_on_error"]) == (
        default("sink_batch_size"), default("sink_retry_attempts"), True)  # common.schema
