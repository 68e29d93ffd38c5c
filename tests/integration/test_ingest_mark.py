"""The ingest dedup's mark mode (ingest/dedup.py: read the click_id's item, publish, then write
it; setting ingest_dedup_mode, default per_click) against in-process moto: exact answers,
DynamoDB calls, waits, dedup items and stream contents, with DynamoDB and Kinesis failing the
way they do. The per_click protocol's own tests: test_ingest_claims.py."""
from __future__ import annotations

import json

import pytest

from common.config import IngestSettings
from ingest import handler
from ingest.dedup import CLAIMED, DUPLICATE, IN_FLIGHT, MARK, PER_CLICK, check_item
from local.lambda_runtime import LambdaContext
from tests.conftest import api_event
from tests.integration.ingest_support import (LEASE_MS, NOW_MS, TTL_S, DynamoFaults, Ingest,
                                              KinesisRefusing, claim_item, click, clients, counts,
                                              dedup_items, no_response, put_claim, statuses,
                                              stream_ids, throttled)

IN_FLIGHT_REASON = "another request is processing this click_id"
STREAM_FAILED = "stream write failed after retries"
UNAVAILABLE = "dedup store unavailable"
ERRORS = pytest.mark.parametrize("error", [throttled, no_response], ids=["throttled", "no response"])


def item(status: str, claimed_at: int, expires_at: int) -> dict:
    return {"click_id": {"S": "c"}, "status": {"S": status}, "claimed_at": {"N": str(claimed_at)},
            "expires_at": {"N": str(expires_at)}}


def test_check_item_reads_the_claim_condition():
    """CLAIM_CONDITION's rule, read: the boundaries are where the conditional write puts them
    (a committed item expires when expires_at < now in seconds; a pending claim is taken over
    when claimed_at < now - lease)."""
    now_s = NOW_MS // 1000
    assert check_item(None, NOW_MS, 120) == CLAIMED
    assert check_item(item("committed", 0, now_s), NOW_MS, 120) == DUPLICATE
    assert check_item(item("committed", 0, now_s - 1), NOW_MS, 120) == CLAIMED
    assert check_item(item("pending", NOW_MS - 120_000, now_s + 5), NOW_MS, 120) == IN_FLIGHT
    assert check_item(item("pending", NOW_MS - 120_001, now_s + 5), NOW_MS, 120) == CLAIMED
    assert check_item(item("pending", NOW_MS, now_s - 1), NOW_MS, 120) == CLAIMED  # expired


def test_one_read_and_one_write_per_click_then_duplicates(clients):
    ddb, kinesis = clients
    faults = DynamoFaults(ddb)
    ingest = Ingest(faults, kinesis, mode=MARK)
    first = ingest.post([click(i) for i in range(3)], "req-1")
    assert statuses(first) == [(f"c{i}", "accepted", None) for i in range(3)]
    assert faults.get_calls == [["c0", "c1", "c2"]] and faults.batch_calls == [["c0", "c1", "c2"]]
    assert faults.put_calls == [] and faults.delete_calls == []
    marked = {f"c{i}": claim_item(f"c{i}", "req-1", "committed", NOW_MS) for i in range(3)}
    assert dedup_items() == marked

    ingest.now_ms += 5_000
    again = ingest.post([click(1), click(3), click(2)], "req-2")  # two resent, one new
    assert statuses(again) == [("c1", "duplicate", "click_id already accepted"), ("c3", "accepted", None),
                               ("c2", "duplicate", "click_id already accepted")]
    assert faults.get_calls[1:] == [["c1", "c3", "c2"]] and faults.batch_calls[1:] == [["c3"]]
    assert dedup_items() == {**marked, "c3": claim_item("c3", "req-2", "committed", NOW_MS + 5_000)}
    assert stream_ids() == ["c0", "c1", "c2", "c3"]


def test_an_expired_mark_is_not_a_duplicate(clients):
    ddb, kinesis = clients
    old = claim_item("c0", "old", "committed", NOW_MS - (TTL_S + 1) * 1000)  # TTL passed, not deleted yet
    put_claim(ddb, old)
    outcome = Ingest(ddb, kinesis, mode=MARK).post([click(0)], "req-1")
    assert statuses(outcome) == [("c0", "accepted", None)]
    assert dedup_items() == {"c0": claim_item("c0", "req-1", "committed", NOW_MS)}
    assert stream_ids() == ["c0"]


def test_a_per_click_claim_in_its_lease_is_respected(clients):
    """A deployment switching from per_click: a pending claim is another request's work until
    its lease ends, then the click goes on (as per_click would take the claim over)."""
    ddb, kinesis = clients
    pending = claim_item("c0", "other", "pending", NOW_MS - 1_000)
    put_claim(ddb, pending)
    ingest = Ingest(ddb, kinesis, mode=MARK)
    outcome = ingest.post([click(0), click(1)], "req-1")
    assert statuses(outcome) == [("c0", "retryable", IN_FLIGHT_REASON), ("c1", "accepted", None)]
    assert dedup_items() == {"c0": pending, "c1": claim_item("c1", "req-1", "committed", NOW_MS)}
    ingest.now_ms = NOW_MS - 1_000 + LEASE_MS + 1
    later = ingest.post([click(0)], "req-2")
    assert statuses(later) == [("c0", "accepted", None)]
    assert dedup_items()["c0"] == claim_item("c0", "req-2", "committed", ingest.now_ms)
    assert stream_ids() == ["c0", "c1"]


def test_a_click_the_stream_refused_is_not_marked(clients):
    ddb, kinesis = clients
    faults = DynamoFaults(ddb)
    ingest = Ingest(faults, KinesisRefusing(kinesis, refused={"c1"}), mode=MARK)
    outcome = ingest.post([click(0), click(1)], "req-1")
    assert statuses(outcome) == [("c0", "accepted", None), ("c1", "retryable", STREAM_FAILED)]
    assert (outcome.unreleased_claims, outcome.unconfirmed_claims) == (0, 0)
    assert faults.batch_calls == [["c0"]] and faults.delete_calls == []  # nothing to release
    assert dedup_items() == {"c0": claim_item("c0", "req-1", "committed", NOW_MS)}
    ingest.kinesis = kinesis
    retry = ingest.post([click(0), click(1)], "req-2")
    assert statuses(retry) == [("c0", "duplicate", "click_id already accepted"), ("c1", "accepted", None)]
    assert stream_ids() == ["c0", "c1"]


@ERRORS
def test_a_read_failing_four_times_succeeds_on_the_fifth_attempt(clients, error):
    ddb, kinesis = clients
    faults = DynamoFaults(ddb, get_errors=4, error=error)
    ingest = Ingest(faults, kinesis, mode=MARK)
    outcome = ingest.post([click(0), click(1)], "req-1")
    assert statuses(outcome) == [("c0", "accepted", None), ("c1", "accepted", None)]
    assert faults.get_calls == [["c0", "c1"]] * 5
    assert ingest.dedup_sleeps.calls == [0.05, 0.1, 0.2, 0.4]
    assert stream_ids() == ["c0", "c1"]


@ERRORS
def test_a_read_that_keeps_failing_publishes_nothing(clients, error):
    ddb, kinesis = clients
    faults = DynamoFaults(ddb, get_errors=99, error=error)
    ingest = Ingest(faults, kinesis, mode=MARK)
    outcome = ingest.post([click(0), click(1)], "req-1")
    assert statuses(outcome) == [("c0", "retryable", UNAVAILABLE), ("c1", "retryable", UNAVAILABLE)]
    assert outcome.status_code == 503
    assert faults.get_calls == [["c0", "c1"]] * 5 and faults.batch_calls == []
    assert ingest.dedup_sleeps.calls == [0.05, 0.1, 0.2, 0.4]  # no wait after the last attempt
    assert dedup_items() == {} and stream_ids() == []


def test_unprocessed_keys_are_read_again_and_the_unread_are_retryable(clients):
    ddb, kinesis = clients
    put_claim(ddb, claim_item("c2", "old", "committed", NOW_MS - 60_000))
    faults = DynamoFaults(ddb, unread={"c1": 2, "c2": 1, "c3": 99})
    ingest = Ingest(faults, kinesis, mode=MARK)
    outcome = ingest.post([click(i) for i in range(4)], "req-1")
    assert statuses(outcome) == [("c0", "accepted", None), ("c1", "accepted", None),
                                 ("c2", "duplicate", "click_id already accepted"),
                                 ("c3", "retryable", UNAVAILABLE)]
    assert faults.get_calls == [["c0", "c1", "c2", "c3"], ["c1", "c2", "c3"], ["c1", "c3"], ["c3"], ["c3"]]
    assert stream_ids() == ["c0", "c1"]


def test_a_mark_that_fails_leaves_the_click_accepted_and_a_resend_reaches_the_stream_again(clients):
    """The documented copy: the click is on the stream but unmarked, so a resend passes the check;
    the stream job's and the batch's click_id dedup drop it (tests/faults, tests/flink)."""
    ddb, kinesis = clients
    faults = DynamoFaults(ddb, unprocessed={"c1": 99})
    ingest = Ingest(faults, kinesis, mode=MARK)
    outcome = ingest.post([click(0), click(1)], "req-1")
    assert statuses(outcome) == [("c0", "accepted", None), ("c1", "accepted", None)]
    assert (outcome.unconfirmed_claims, outcome.unreleased_claims) == (1, 0)
    assert faults.batch_calls == [["c0", "c1"]] + [["c1"]] * 4
    assert dedup_items() == {"c0": claim_item("c0", "req-1", "committed", NOW_MS)}
    faults.unprocessed.clear()
    resent = ingest.post([click(0), click(1)], "req-2")
    assert statuses(resent) == [("c0", "duplicate", "click_id already accepted"), ("c1", "accepted", None)]
    assert stream_ids() == ["c0", "c1", "c1"]


def test_two_copies_in_flight_at_once_both_reach_the_stream(clients):
    """What mark gives up against per_click: a copy checked before the other's mark passes. Here
    the second request runs entirely inside the first's stream write."""
    ddb, kinesis = clients
    ingest = Ingest(ddb, kinesis, mode=MARK)
    inner: list = []

    class SecondRequestDuringPublish:
        def put_records(self, StreamName, Records):
            if not inner:
                inner.append(None)
                inner[0] = ingest.post([click(0)], "req-2")
            return kinesis.put_records(StreamName=StreamName, Records=Records)

    ingest.kinesis = SecondRequestDuringPublish()
    outcome = ingest.post([click(0)], "req-1")
    assert statuses(outcome) == [("c0", "accepted", None)]
    assert statuses(inner[0]) == [("c0", "accepted", None)]
    assert stream_ids() == ["c0", "c0"]
    assert dedup_items() == {"c0": claim_item("c0", "req-1", "committed", NOW_MS)}  # the last mark


def test_batches_over_a_hundred_clicks_read_a_hundred_keys_per_call(clients):
    ddb, kinesis = clients
    faults = DynamoFaults(ddb)
    ingest = Ingest(faults, kinesis, mode=MARK)
    outcome = ingest.post([click(i) for i in range(250)], "req-1")
    assert counts(outcome) == {"accepted": 250}
    assert sorted(len(c) for c in faults.get_calls) == [50, 100, 100]
    assert sorted(cid for c in faults.get_calls for cid in c) == sorted(f"c{i}" for i in range(250))
    assert len(faults.batch_calls) == 10 and sorted(len(c) for c in faults.batch_calls) == [25] * 10
    assert len(dedup_items()) == 250 and stream_ids() == sorted(f"c{i}" for i in range(250))


def test_the_lambda_runs_mark_mode_when_configured(clients, monkeypatch):
    """INGEST_DEDUP_MODE=mark (the CDK context ingest_dedup_mode), through the handler; the
    default is per_click (common.schema)."""
    assert IngestSettings().ingest_dedup_mode == PER_CLICK
    monkeypatch.setenv("INGEST_DEDUP_MODE", MARK)
    handler.get_service.cache_clear()
    try:
        service = handler.get_service()
        monkeypatch.setattr(service, "clock_ms", lambda: NOW_MS)
        assert service.dedup.mode == MARK
        event = api_event({"clicks": [click(0), click(1)]})
        resp = handler.lambda_handler(event, LambdaContext("clickagg-ingest"))
        again = handler.lambda_handler(api_event({"clicks": [click(1)]}), LambdaContext("clickagg-ingest"))
    finally:
        handler.get_service.cache_clear()
    rid = event["requestContext"]["requestId"]
    assert resp["statusCode"] == 202 and json.loads(resp["body"])["accepted"] == 2
    assert json.loads(again["body"])["results"] == [
        {"index": 0, "click_id": "c1", "status": "duplicate", "reason": "click_id already accepted"}]
    assert dedup_items() == {f"c{i}": claim_item(f"c{i}", rid, "committed", NOW_MS) for i in range(2)}
    assert stream_ids() == ["c0", "c1"]
