"""The budget Lambda in-process against moto (docs/budget.md): budgets set and read with their
history and revisions, every refusal a 400/404/409 with a reason, and pacing decisions from spend
rows and a pulse written by the real sink writer, checked against figures worked out by hand."""
from __future__ import annotations

import json

import boto3
import pytest

from aggregate.changes import Change
from common.config import ResourceNames
from common.runtime import reset_containers
from common.times import DAY_MS, HOUR_MS, MINUTE_MS
from local.lambda_runtime import LambdaContext
from local.resources import create_budgets_table, create_serving_table
from query.budget import handler as budget_handler
from serving.write.dynamodb import DynamoDBServingStore
from tests.conftest import api_event

NAMES = ResourceNames()
DAY = 1_796_515_200_000  # 2026-12-06T00:00Z
NOW = DAY + 10 * HOUR_MS + 30_000  # 10:00:30
PULSE = NOW - 1_000  # 10:00:29: the figure is 1 s old
ARN = "arn:aws:iam::123456789012:user/finance"


@pytest.fixture
def budget_api(aws, monkeypatch):
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    create_budgets_table(ddb, NAMES.budgets_table)
    create_serving_table(ddb, NAMES.serving_table)
    monkeypatch.setenv("SERVING_TABLE", NAMES.serving_table)
    monkeypatch.setenv("BUDGETS_TABLE", NAMES.budgets_table)
    monkeypatch.setattr(budget_handler, "clock_ms", lambda: NOW)
    reset_containers()
    yield ddb
    reset_containers()


def call(method, path, body=None, resource=None):
    event = api_event(body, path=path, method=method, resource=resource)
    event["requestContext"]["identity"]["userArn"] = ARN
    response = budget_handler.lambda_handler(event, LambdaContext("clickagg-budget"))
    headers = {**{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()},
               **(response.get("headers") or {})}  # a REST proxy answer uses multiValueHeaders
    return response["statusCode"], json.loads(response["body"]), headers


def put(cid, body):
    return call("PUT", f"/v1/campaigns/{cid}/budget", body, "/v1/campaigns/{campaign_id}/budget")


def pacing(cid):
    return call("GET", f"/v1/campaigns/{cid}/pacing", None, "/v1/campaigns/{campaign_id}/pacing")


def write_spend(cid, day_micros, minutes: dict[int, int], pulse=PULSE):
    """What the Flink job's spend and pulse rows leave in the serving table (the real writer)."""
    store = DynamoDBServingStore(boto3.client("dynamodb", region_name="us-east-1"), NAMES.serving_table)
    rows = [("1d", DAY, day_micros)] + [("1m", m, v) for m, v in minutes.items()]
    for res, bucket, micros in rows:
        store.apply(Change("spend", True, {"kind": "spend", "resolution": res, "bucket_start": bucket,
                                           "entity_id": cid, "campaign_id": cid, "billable_clicks": 1,
                                           "billable_cost_micros": micros, "version": 1}))
    if pulse is not None:
        store.apply(Change("pulse", True, {"kind": "pulse", "entity_id": "pulse",
                                           "bucket_start": pulse, "version": pulse}))


M0 = NOW - NOW % MINUTE_MS  # 10:00:00
# 29,000 micros in the 29 s of this minute, 60,000 in the one before: short rate
# 89,000 / 89 s = 1,000/s; long rate 89,000 / (29 + 300) s = 270.5/s -> v = 1,000 micros/s
RECENT = {M0: 29_000, M0 - MINUTE_MS: 60_000}
# (the current minute alone: 29,000 / 29 s = 1,000/s too)
# unseen = 1,000 (age) + 500 (emit interval) + 1,000 (cache) + 15,000 (click delay) ms
# -> margin 17,500 micros
# even plan at now + 60 s: 5,000,000 * 36,090 / 86,400 = 2,088,541 (floor)


def test_put_then_get_a_budget_with_revisions_and_history(budget_api):
    status, body, _ = put("cmp-1", {"daily_budget_micros": 5_000_000, "lifetime_budget_micros": 50_000_000})
    assert status == 200
    assert body == {"campaign_id": "cmp-1", "daily_budget_micros": 5_000_000,
                    "lifetime_budget_micros": 50_000_000, "pacing": "even", "revision": 1,
                    "set_at": "2026-12-06T10:00:30.000Z", "set_by": ARN}
    status, body, _ = put("cmp-1", {"daily_budget_micros": 7_000_000, "pacing": "asap"})
    assert status == 200 and body["revision"] == 2 and body["lifetime_budget_micros"] is None
    status, got, _ = call("GET", "/v1/campaigns/cmp-1/budget", None, "/v1/campaigns/{campaign_id}/budget")
    assert status == 200 and got == body
    items = budget_api.query(TableName=NAMES.budgets_table, KeyConditionExpression="campaign_id = :c",
                             ExpressionAttributeValues={":c": {"S": "cmp-1"}})["Items"]
    assert sorted(i["sk"]["S"] for i in items) == ["current", f"h#{NOW:013d}#1", f"h#{NOW:013d}#2"]
    assert call("GET", "/v1/campaigns/cmp-9/budget", None, "/v1/campaigns/{campaign_id}/budget")[:2] == (
        404, {"error": "no budget set for campaign cmp-9", "status": 404})


@pytest.mark.parametrize("body, reason", [
    (None, "a JSON body is required"),
    ("{not json", "the body is not JSON"),
    ([1], "the body must be a JSON object"),
    ({}, "'daily_budget_micros' is required"),
    ({"daily_budget_micros": "100"}, "'daily_budget_micros' must be an integer number of micros"),
    ({"daily_budget_micros": 1.5}, "'daily_budget_micros' must be an integer number of micros"),
    ({"daily_budget_micros": True}, "'daily_budget_micros' must be an integer number of micros"),
    ({"daily_budget_micros": 0}, "'daily_budget_micros' must be within 1..1000000000000000, got 0"),
    ({"daily_budget_micros": 10 ** 16}, "'daily_budget_micros' must be within 1..1000000000000000, got 1"),
    ({"daily_budget_micros": 100, "lifetime_budget_micros": 99}, "'lifetime_budget_micros' (99) must be >="),
    ({"daily_budget_micros": 100, "pacing": "fast"}, "'pacing' must be one of even, asap"),
    ({"daily_budget_micros": 100, "currency": "EUR"}, "unknown fields ['currency']"),
])
def test_bad_budgets_are_400_with_a_reason_and_nothing_is_written(budget_api, body, reason):
    status, answer, _ = put("cmp-1", body)
    assert status == 400 and answer["error"].startswith(reason), answer
    assert budget_api.scan(TableName=NAMES.budgets_table)["Count"] == 0


def test_a_bad_campaign_id_is_400(budget_api):
    status, answer, _ = put("a%20b", {"daily_budget_micros": 100})
    assert status == 400 and "campaign_id" in answer["error"]
    status, answer, _ = pacing("x" * 129)
    assert status == 400 and "campaign_id" in answer["error"]


def test_a_concurrent_change_is_409(budget_api, monkeypatch):
    put("cmp-1", {"daily_budget_micros": 100})
    # another writer's PUT lands between this request's read and its write: it read no budget
    monkeypatch.setattr(budget_handler.get_store(), "get_budget", lambda cid, counter=None: None)
    status, answer, _ = put("cmp-1", {"daily_budget_micros": 200})
    assert status == 409 and "changed while this request was written" in answer["error"]
    monkeypatch.undo()
    assert call("GET", "/v1/campaigns/cmp-1/budget", None,
                "/v1/campaigns/{campaign_id}/budget")[1]["daily_budget_micros"] == 100


@pytest.mark.parametrize("spent, pacing_mode, decision, fraction, reason", [
    (1_000_000, "asap", "serve", 1.0, "asap"),
    (1_000_000, "even", "serve", 1.0, "on_plan"),
    # ahead = 2,050,000 + 1,000 * (17.5 + 60) - 2,088,541 = 38,959 of a 50,000 band -> 1 - 0.77918
    (2_050_000, "even", "throttle", 0.2208, "ahead_of_plan"),
    (2_100_000, "even", "stop", 0.0, "ahead_of_plan"),
    # remaining 15,000 <= margin 17,500: stop before the figure shows the budget spent
    (4_985_000, "asap", "stop", 0.0, "predicted_exhaustion"),
    (5_000_000, "asap", "stop", 0.0, "exhausted"),
])
def test_pacing_decisions_from_the_stored_spend(budget_api, spent, pacing_mode, decision, fraction, reason):
    put("cmp-1", {"daily_budget_micros": 5_000_000, "pacing": pacing_mode})
    write_spend("cmp-1", spent, RECENT)
    status, body, headers = pacing("cmp-1")
    assert status == 200 and headers["Cache-Control"] == "max-age=1"
    assert (body["decision"], body["serve_fraction"], body["reason"]) == (decision, fraction, reason)
    assert body["spent_today_micros"] == spent and body["remaining_micros"] == max(5_000_000 - spent, 0)
    assert body["velocity_micros_per_s"] == 1000.0 and body["margin_micros"] == 17_500
    assert body["figure_age_ms"] == 1_000 and body["day"] == "2026-12-06"
    assert body["planned_spend_micros"] == (5_000_000 * 36_030 // 86_400 if pacing_mode == "even" else None)
    if spent < 5_000_000:  # the pulse's time + remaining / (1,000 micros/s)
        from query.windows import iso
        assert body["projected_exhaustion"] == iso(PULSE + (5_000_000 - spent))
    assert body["debug"]["requests"] == 1  # budget, day, 7 minutes and the pulse: one BatchGetItem


def test_fail_closed_without_a_fresh_pulse_and_without_a_budget(budget_api):
    put("cmp-1", {"daily_budget_micros": 5_000_000, "pacing": "asap"})
    write_spend("cmp-1", 0, {}, pulse=None)  # the job never ran
    assert pacing("cmp-1")[1]["decision"] == "stop" and pacing("cmp-1")[1]["reason"] == "stale"
    reset_containers()
    write_spend("cmp-1", 0, {}, pulse=NOW - 10_001)  # just past budget_stale_after_ms
    body = pacing("cmp-1")[1]
    assert (body["decision"], body["reason"], body["figure_age_ms"]) == ("stop", "stale", 10_001)
    reset_containers()
    write_spend("cmp-1", 0, {}, pulse=NOW - 10_000)  # at the bound: still fresh
    assert pacing("cmp-1")[1]["decision"] == "serve"
    body = pacing("nobody")[1]
    assert (body["decision"], body["reason"], body["daily_budget_micros"]) == ("stop", "no_budget", None)


def test_a_lifetime_budget_caps_what_remains(budget_api):
    put("cmp-1", {"daily_budget_micros": 5_000_000, "lifetime_budget_micros": 9_000_000, "pacing": "asap"})
    write_spend("cmp-1", 1_000_000, RECENT)
    store = DynamoDBServingStore(boto3.client("dynamodb", region_name="us-east-1"), NAMES.serving_table)
    for day, micros in ((DAY - DAY_MS, 5_000_000), (DAY - 2 * DAY_MS, 2_500_000)):
        store.apply(Change("spend", True, {"kind": "spend", "resolution": "1d", "bucket_start": day,
                                           "entity_id": "cmp-1", "campaign_id": "cmp-1",
                                           "billable_cost_micros": micros, "version": 1}))
    body = pacing("cmp-1")[1]
    assert body["lifetime_spent_micros"] == 8_500_000 and body["remaining_micros"] == 500_000
    assert body["debug"]["requests"] == 2  # + the Query of the campaign's days


def test_the_cache_serves_repeats_and_a_put_in_the_same_container_shows_at_once(budget_api):
    put("cmp-1", {"daily_budget_micros": 5_000_000, "pacing": "asap"})
    write_spend("cmp-1", 4_000_000, RECENT)
    assert pacing("cmp-1")[1]["debug"]["requests"] == 1
    body = pacing("cmp-1")[1]
    assert body["debug"]["requests"] == 0 and body["decision"] == "serve"
    put("cmp-1", {"daily_budget_micros": 4_000_000, "pacing": "asap"})
    body = pacing("cmp-1")[1]
    assert (body["decision"], body["reason"], body["debug"]["requests"]) == ("stop", "exhausted", 1)


def test_the_batch_form_answers_in_order_and_refuses_bad_lists(budget_api):
    put("cmp-1", {"daily_budget_micros": 5_000_000, "pacing": "asap"})
    put("cmp-2", {"daily_budget_micros": 1_000_000, "pacing": "asap"})
    write_spend("cmp-1", 0, {})
    write_spend("cmp-2", 1_000_000, {})
    ids = ["cmp-2", "none", "cmp-1"] + [f"x-{i}" for i in range(20)]
    status, body, _ = call("POST", "/v1/pacing", {"campaign_ids": ids})
    assert status == 200 and [d["campaign_id"] for d in body["decisions"]] == ids
    assert [(d["decision"], d["reason"]) for d in body["decisions"][:3]] == [
        ("stop", "exhausted"), ("stop", "no_budget"), ("serve", "asap")]
    # 23 campaigns x 10 keys + the pulse = 231 keys: 3 BatchGetItems of <= 100
    assert body["debug"]["requests"] == 3
    for bad, reason in (({"campaign_ids": []}, "'campaign_ids' must be a non-empty list"),
                        ({"campaign_ids": ["a"] * 2}, "'campaign_ids' has duplicates"),
                        ({"campaign_ids": [f"c{i}" for i in range(101)]}, "at most 100 campaign ids"),
                        ({"campaign_ids": [7]}, "'campaign_ids' must be strings"),
                        ("nope", "the body is not JSON")):
        status, answer, _ = call("POST", "/v1/pacing", bad)
        assert status == 400 and answer["error"].startswith(reason), answer


def test_a_stop_for_exhaustion_holds_for_the_day_until_the_budget_changes(budget_api):
    """Once spend stops, the velocity and the margin decay to 0: without the day's stop record the
    campaign would reopen at full demand with what the margin kept back."""
    put("cmp-1", {"daily_budget_micros": 5_000_000, "pacing": "asap"})
    write_spend("cmp-1", 4_985_000, RECENT)
    assert pacing("cmp-1")[1]["reason"] == "predicted_exhaustion"
    [stop] = budget_api.query(TableName=NAMES.budgets_table,
                              KeyConditionExpression="campaign_id = :c AND begins_with(sk, :s)",
                              ExpressionAttributeValues={":c": {"S": "cmp-1"}, ":s": {"S": "stop#"}})["Items"]
    assert (stop["sk"]["S"], stop["rev"]["N"]) == ("stop#2026-12-06", "1")
    reset_containers()  # another container, minutes later: no recent spend, velocity 0
    later = NOW + 10 * MINUTE_MS
    budget_handler.clock_ms = lambda: later
    write_spend("cmp-1", 4_985_000, {}, pulse=later - 1_000)
    body = pacing("cmp-1")[1]
    assert (body["decision"], body["reason"], body["velocity_micros_per_s"], body["margin_micros"]) == (
        "stop", "predicted_exhaustion", 0.0, 0)
    put("cmp-1", {"daily_budget_micros": 6_000_000, "pacing": "asap"})  # revision 2 lifts it
    assert pacing("cmp-1")[1]["decision"] == "serve"
