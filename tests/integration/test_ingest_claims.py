"""The ingest claim protocol (README "Exactly-once at ingest": claim -> publish -> confirm, or
release) when DynamoDB answers badly, against in-process moto:

- a claim whose PutItem reached DynamoDB but whose response was lost: the SDK's retry fails its
  condition on our own pending claim, which must count as claimed (not duplicate, not in flight);
- confirms (BatchWriteItem) that are throttled or partly unprocessed, and releases (conditional
  DeleteItem) that fail: attempts, backoff waits, outcomes and the dedup table, exactly, and what
  a client's retry of the same request gets before and after the claim lease.
"""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ConnectionClosedError

from ingest import handler
from local.lambda_runtime import LambdaContext
from tests.conftest import api_event
from tests.integration.ingest_support import (LEASE_MS, NOW_MS, DynamoFaults, Ingest, KinesisRefusing,
                                              claim_item, click, clients, counts, dedup_items, no_response,
                                              put_claim, statuses, stream_ids, throttled)

IN_FLIGHT = "another request is processing this click_id"
STREAM_FAILED = "stream write failed after retries"
UNAVAILABLE = "dedup store unavailable"
# a DynamoDB/Kinesis call that fails after the SDK's retries: refused (a ClientError), or never
# answered (a BotoCoreError: connection lost, timeout)
ERRORS = pytest.mark.parametrize("error", [throttled, no_response], ids=["throttled", "no response"])


class LostPutItemResponse:
    """A `before-send` hook registered after moto's: the PutItem has already been applied by the
    (in-process) server when this runs; for the first `lose[click_id]` attempts of a click it then
    raises ConnectionClosedError, so the client never sees the response and the SDK's retry
    handler sends the same request again (up to its max_attempts). Counts attempts per click_id."""

    def __init__(self, client, lose: dict[str, int]):
        self.lose, self.attempts = dict(lose), {}
        client.meta.events.register("before-send", self)

    def __call__(self, request, event_name, **_):
        if not event_name.endswith(".PutItem"):
            return None
        cid = json.loads(request.body)["Item"]["click_id"]["S"]
        self.attempts[cid] = self.attempts.get(cid, 0) + 1
        if self.attempts[cid] <= self.lose.get(cid, 0):
            raise ConnectionClosedError(endpoint_url=request.url, request=request)
        return None


@pytest.fixture
def lambda_service(monkeypatch):
    """The Lambda's own service (its clients, retry config, pool), on the pinned clock, in the
    claim protocol's mode (per_click; mark mode: test_ingest_mark.py)."""
    monkeypatch.setenv("INGEST_DEDUP_MODE", "per_click")
    handler.get_service.cache_clear()
    service = handler.get_service()
    monkeypatch.setattr(service, "clock_ms", lambda: NOW_MS)
    yield service
    handler.get_service.cache_clear()


def test_claim_whose_response_was_lost_is_recognised_as_ours(clients, lambda_service):
    ddb, _ = clients
    foreign = claim_item("c2", "other-request", "pending", NOW_MS - 1_000)  # inside its lease
    put_claim(ddb, foreign)
    lost = LostPutItemResponse(lambda_service.dedup._ddb, lose={"c1": 1})

    event = api_event({"clicks": [click(1), click(2)]})
    resp = handler.lambda_handler(event, LambdaContext("clickagg-ingest"))

    rid = event["requestContext"]["requestId"]
    assert resp["statusCode"] == 202
    assert json.loads(resp["body"]) == {
        "request_id": rid, "accepted": 1, "duplicate": 0, "rejected": 0, "retryable": 1, "results": [
            {"index": 0, "click_id": "c1", "status": "accepted"},
            {"index": 1, "click_id": "c2", "status": "retryable", "reason": IN_FLIGHT}]}
    # c1: the first put landed, its response was lost, the SDK's retry failed the condition
    # on our own claim; c2's condition failure on a foreign claim is answered at once
    assert lost.attempts == {"c1": 2, "c2": 1}
    assert dedup_items() == {"c1": claim_item("c1", rid, "committed", NOW_MS), "c2": foreign}
    assert stream_ids() == ["c1"]


def test_claim_whose_every_response_was_lost_is_retryable(clients, lambda_service):
    # the handler's retries={"max_attempts": 3} are retries: botocore makes 4 attempts in all
    assert lambda_service.dedup._ddb.meta.config.retries["total_max_attempts"] == 4
    lost = LostPutItemResponse(lambda_service.dedup._ddb, lose={"c1": 4})
    event = api_event({"clicks": [click(0), click(1)]})
    resp = handler.lambda_handler(event, LambdaContext("clickagg-ingest"))
    rid = event["requestContext"]["requestId"]
    assert resp["statusCode"] == 202
    assert json.loads(resp["body"])["results"] == [
        {"index": 0, "click_id": "c0", "status": "accepted"},
        {"index": 1, "click_id": "c1", "status": "retryable", "reason": UNAVAILABLE}]
    assert lost.attempts == {"c0": 1, "c1": 4}
    # the first put did land: the claim stays pending (a retry is in flight until the lease)
    assert dedup_items() == {"c0": claim_item("c0", rid, "committed", NOW_MS),
                             "c1": claim_item("c1", rid, "pending", NOW_MS)}
    assert stream_ids() == ["c0"]


@ERRORS
def test_confirm_failing_four_times_succeeds_on_the_fifth_attempt(clients, error):
    ddb, kinesis = clients
    faults = DynamoFaults(ddb, batch_errors=4, error=error)
    ingest = Ingest(faults, kinesis)
    outcome = ingest.post([click(i) for i in range(3)], "req-1")
    assert statuses(outcome) == [(f"c{i}", "accepted", None) for i in range(3)]
    assert (outcome.unconfirmed_claims, outcome.unreleased_claims, outcome.status_code) == (0, 0, 202)
    assert faults.batch_calls == [["c0", "c1", "c2"]] * 5
    assert ingest.dedup_sleeps.calls == [0.05, 0.1, 0.2, 0.4]
    assert dedup_items() == {f"c{i}": claim_item(f"c{i}", "req-1", "committed", NOW_MS) for i in range(3)}
    assert stream_ids() == ["c0", "c1", "c2"]


@ERRORS
def test_confirm_that_keeps_failing_leaves_claims_pending_until_the_lease(clients, error):
    ddb, kinesis = clients
    faults = DynamoFaults(ddb, batch_errors=99, error=error)
    ingest = Ingest(faults, kinesis)
    outcome = ingest.post([click(i) for i in range(3)], "req-1")
    # the records are on the stream: accepted, though their claims stay pending
    assert statuses(outcome) == [(f"c{i}", "accepted", None) for i in range(3)]
    assert (outcome.unconfirmed_claims, outcome.unreleased_claims, outcome.status_code) == (3, 0, 202)
    assert faults.batch_calls == [["c0", "c1", "c2"]] * 5  # max_attempts
    assert ingest.dedup_sleeps.calls == [0.05, 0.1, 0.2, 0.4]  # no wait after the last attempt
    pending = {f"c{i}": claim_item(f"c{i}", "req-1", "pending", NOW_MS) for i in range(3)}
    assert dedup_items() == pending
    assert stream_ids() == ["c0", "c1", "c2"]

    # the client re-sends (the fault is gone): inside the lease the pending claims are in flight
    ingest.ddb = ddb
    ingest.now_ms = NOW_MS + LEASE_MS
    outcome = ingest.post([click(i) for i in range(3)], "req-2")
    assert statuses(outcome) == [(f"c{i}", "retryable", IN_FLIGHT) for i in range(3)]
    assert outcome.status_code == 503 and dedup_items() == pending
    # 1 ms past the lease they are taken over: published again (the stream's and the batch
    # job's click_id dedup drop the second copy) and committed by the new request
    ingest.now_ms = NOW_MS + LEASE_MS + 1
    outcome = ingest.post([click(i) for i in range(3)], "req-3")
    assert statuses(outcome) == [(f"c{i}", "accepted", None) for i in range(3)]
    assert dedup_items() == {f"c{i}": claim_item(f"c{i}", "req-3", "committed", NOW_MS + LEASE_MS + 1)
                             for i in range(3)}
    assert stream_ids() == ["c0", "c0", "c1", "c1", "c2", "c2"]


def test_unprocessed_confirms_are_retried_alone_per_chunk_of_25(clients):
    ddb, kinesis = clients
    faults = DynamoFaults(ddb, unprocessed={"c3": 2, "c27": 1})
    ingest = Ingest(faults, kinesis)
    outcome = ingest.post([click(i) for i in range(30)], "req-1")
    assert counts(outcome) == {"accepted": 30} and outcome.unconfirmed_claims == 0
    # chunks [c0..c24] and [c25..c29] are confirmed concurrently: compare as a sorted list
    assert sorted(faults.batch_calls) == sorted([[f"c{i}" for i in range(25)], ["c3"], ["c3"],
                                                 [f"c{i}" for i in range(25, 30)], ["c27"]])
    assert sorted(ingest.dedup_sleeps.calls) == [0.05, 0.05, 0.1]
    assert dedup_items() == {f"c{i}": claim_item(f"c{i}", "req-1", "committed", NOW_MS) for i in range(30)}


@ERRORS
def test_failed_release_leaves_the_claim_pending_until_the_lease(clients, error):
    ddb, kinesis = clients
    faults = DynamoFaults(ddb, delete_errors={"c2"}, error=error)
    refusing = KinesisRefusing(kinesis, refused={"c1", "c2"})
    ingest = Ingest(faults, refusing)
    outcome = ingest.post([click(i) for i in range(4)], "req-1")
    assert statuses(outcome) == [("c0", "accepted", None), ("c1", "retryable", STREAM_FAILED),
                                 ("c2", "retryable", STREAM_FAILED), ("c3", "accepted", None)]
    assert (outcome.unreleased_claims, outcome.unconfirmed_claims, outcome.status_code) == (1, 0, 202)
    assert refusing.calls == ingest.settings.kinesis_max_attempts == 4
    assert len(ingest.publish_sleeps.calls) == 3
    assert sorted(faults.delete_calls) == ["c1", "c2"]  # one release attempt per failed record
    assert faults.batch_calls == [["c0", "c3"]]
    assert dedup_items() == {"c0": claim_item("c0", "req-1", "committed", NOW_MS),
                             "c2": claim_item("c2", "req-1", "pending", NOW_MS),  # not released
                             "c3": claim_item("c3", "req-1", "committed", NOW_MS)}
    assert stream_ids() == ["c0", "c3"]

    # the client retries the two (faults gone): the released one is accepted at once, the other
    # waits out the lease of the claim the release could not undo
    ingest.ddb, ingest.kinesis = ddb, kinesis
    ingest.now_ms = NOW_MS + 1_000
    outcome = ingest.post([click(1), click(2)], "req-2")
    assert statuses(outcome) == [("c1", "accepted", None), ("c2", "retryable", IN_FLIGHT)]
    ingest.now_ms = NOW_MS + LEASE_MS + 1
    outcome = ingest.post([click(2)], "req-3")
    assert statuses(outcome) == [("c2", "accepted", None)]
    assert dedup_items() == {"c0": claim_item("c0", "req-1", "committed", NOW_MS),
                             "c1": claim_item("c1", "req-2", "committed", NOW_MS + 1_000),
                             "c2": claim_item("c2", "req-3", "committed", NOW_MS + LEASE_MS + 1),
                             "c3": claim_item("c3", "req-1", "committed", NOW_MS)}
    assert stream_ids() == ["c0", "c1", "c2", "c3"]


def test_release_never_deletes_a_claim_taken_over_meanwhile(clients):
    ddb, kinesis = clients
    taken_over = claim_item("c1", "req-other", "pending", NOW_MS + 5)
    faults = DynamoFaults(ddb, before_delete=lambda cid: put_claim(ddb, taken_over))
    ingest = Ingest(faults, KinesisRefusing(kinesis, refused={"c1"}))
    outcome = ingest.post([click(0), click(1)], "req-1")
    assert statuses(outcome) == [("c0", "accepted", None), ("c1", "retryable", STREAM_FAILED)]
    # the condition failed (not our claim): nothing to undo, and nothing left unreleased
    assert outcome.unreleased_claims == 0 and faults.delete_calls == ["c1"]
    assert dedup_items() == {"c0": claim_item("c0", "req-1", "committed", NOW_MS), "c1": taken_over}


@ERRORS
def test_publish_call_failing_is_retried_then_released(clients, error):
    ddb, kinesis = clients
    refusing = KinesisRefusing(kinesis, call_errors=1, error=error)
    ingest = Ingest(ddb, refusing)
    outcome = ingest.post([click(0), click(1)], "req-1")
    assert statuses(outcome) == [("c0", "accepted", None), ("c1", "accepted", None)]
    assert (refusing.calls, len(ingest.publish_sleeps.calls)) == (2, 1)
    assert stream_ids() == ["c0", "c1"]

    ingest.kinesis = refusing = KinesisRefusing(kinesis, call_errors=99, error=error)
    outcome = ingest.post([click(2)], "req-2")
    assert statuses(outcome) == [("c2", "retryable", STREAM_FAILED)]
    assert (outcome.status_code, outcome.unreleased_claims, refusing.calls) == (503, 0, 4)
    assert dedup_items() == {"c0": claim_item("c0", "req-1", "committed", NOW_MS),
                             "c1": claim_item("c1", "req-1", "committed", NOW_MS)}  # c2 released
    assert stream_ids() == ["c0", "c1"]
