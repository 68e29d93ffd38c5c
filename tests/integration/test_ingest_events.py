"""POST /v1/events (issue 19, docs/events.md) through the real ingest handler against in-process
moto: impressions, clicks and conversions in one batch, each with its own outcome in request
order; impressions reach the events stream unclaimed (the dedup table never sees them), clicks
take the click path exactly as on POST /v1/clicks, conversions are claimed by conversion_id and
carry the ids of their click's token (authenticated, whatever its age); refusals are archived
under the route. The oracle is the request itself: each expected record is written out here."""
from __future__ import annotations

import json

import boto3
import pytest

from common.click_token import ClickClaims, StaticKeys, issue
from common.records import EVENT_RECORD_SCHEMA
from common.refused import POST_EVENTS
from local.readback import read_stream
from tests.conftest import api_event
from tests.integration.test_refused_archive import (K1, K9, NAMES, archived, clock, env,  # noqa: F401
                                                     metric_names, send)

HEADERS = {"Content-Type": "application/json", "User-Agent": "adserver/2.0", "x-api-key": "k"}
SOURCE_IP = "203.0.113.9"


def post(body, headers=HEADERS):
    return send(api_event(body, path="/v1/events", headers=headers, source_ip=SOURCE_IP))


def events_stream() -> list[dict]:
    return [r for rs in read_stream(NAMES.events_stream).values() for r in rs]


def dedup_keys() -> set[str]:
    items = boto3.client("dynamodb").scan(TableName=NAMES.dedup_table)["Items"]
    return {i["click_id"]["S"] for i in items}


def token(now_s: int, *, imp="imp-7", ad="ad-A", iat=None, ttl=3600, key=K1, kid="k1") -> str:
    iat = now_s - 60 if iat is None else iat
    return issue(ClickClaims(impression_id=imp, ad_id=ad, campaign_id="cmp-7", advertiser_id="adv-3",
                             price_micros=250_000, issued_at=iat, expires_at=iat + ttl,
                             landing_url="https://shop.example/x", placement_id="home-1"),
                 StaticKeys({kid: key}, kid))


def impression(i: int, now_ms: int, **over) -> dict:
    return {"type": "impression", "impression_id": f"imp-{i}", "ad_id": "ad-A", "campaign_id": "cmp-7",
            "advertiser_id": "adv-3", "timestamp": now_ms - 500, **over}


def click(i: int, now_ms: int, **over) -> dict:
    return {"type": "click", "click_id": f"c{i}", "ad_id": "ad-A", "campaign_id": "cmp-7",
            "advertiser_id": "adv-3", "user_id": f"u{i}", "timestamp": now_ms - 400, "cost": "0.25", **over}


def conversion(i: int, now_ms: int, **over) -> dict:
    return {"type": "conversion", "conversion_id": f"order-{i}", "value": "59.90", "currency": "USD",
            "occurred_at": now_ms - 300, **over}


def expected_impression(e: dict, now_ms: int, rid: str) -> dict:
    return {**{k: None for k in EVENT_RECORD_SCHEMA}, "event_type": "impression",
            "event_id": e["impression_id"], "schema_version": 1, "ad_id": e["ad_id"],
            "campaign_id": e["campaign_id"], "advertiser_id": e["advertiser_id"],
            "event_time": e["timestamp"], "impression_id": e["impression_id"],
            "placement_id": e.get("placement_id"), "publisher_id": e.get("publisher_id"),
            "user_id": e.get("user_id"), "ingest_time": now_ms, "request_id": rid, "source_ip": SOURCE_IP}


def test_a_mixed_batch_each_event_its_path_and_its_result(env, clock, metric_names):
    env("off")
    now, now_s = clock.ms(), clock.ms() // 1000
    old_token = token(now_s, iat=now_s - 5 * 86400, ttl=3600)  # its click was 5 days ago: still names it
    body = {"events": [
        impression(1, now, placement_id="home-0", user_id="u1"),
        click(1, now),
        conversion(1, now, click_id="c-earlier"),  # attributed by the nightly batch
        conversion(2, now, token=old_token, value=12),
        impression(1, now),  # the same impression_id again in the request
        impression(2, now, ad_id="has space"),
        {"type": "view", "id": "x"},
        conversion(3, now),  # names no click
        conversion(4, now, token=token(now_s, key=K9, kid="k9")),  # not our key
    ]}
    status, answer, rid = post(body)
    assert status == 202
    assert [(r["index"], r["type"], r["id"], r["status"]) for r in answer["results"]] == [
        (0, "impression", "imp-1", "accepted"), (1, "click", "c1", "accepted"),
        (2, "conversion", "order-1", "accepted"), (3, "conversion", "order-2", "accepted"),
        (4, "impression", "imp-1", "duplicate"), (5, "impression", "imp-2", "rejected"),
        (6, None, None, "rejected"), (7, "conversion", "order-3", "rejected"),
        (8, "conversion", "order-4", "rejected")]
    assert (answer["accepted"], answer["duplicate"], answer["rejected"], answer["retryable"]) == (4, 1, 4, 0)
    reasons = {r["index"]: [x["field"] for x in r.get("reasons", [])] for r in answer["results"]}
    assert (reasons[5], reasons[6], reasons[8]) == (["ad_id"], ["type"], ["token"])
    assert answer["results"][8]["reasons"][0]["reason"] == "unknown_key"

    records = sorted(events_stream(), key=lambda r: r["event_id"])
    expected_conv = {k: None for k in EVENT_RECORD_SCHEMA}
    assert records == [
        expected_impression(body["events"][0], now, rid),
        {**expected_conv, "event_type": "conversion", "event_id": "order-1", "schema_version": 1,
         "event_time": now - 300, "click_id": "c-earlier", "value_micros": 59_900_000, "currency": "USD",
         "attributed_by": "click_id", "ingest_time": now, "request_id": rid, "source_ip": SOURCE_IP},
        {**expected_conv, "event_type": "conversion", "event_id": "order-2", "schema_version": 1,
         "ad_id": "ad-A", "campaign_id": "cmp-7", "advertiser_id": "adv-3", "event_time": now - 300,
         "impression_id": "imp-7", "placement_id": "home-1", "value_micros": 12_000_000, "currency": "USD",
         "attributed_by": "token", "ingest_time": now, "request_id": rid, "source_ip": SOURCE_IP},
    ]
    # the click took the click path: the clicks stream and its claim; impressions claimed nothing
    assert [r["click_id"] for rs in read_stream(NAMES.clicks_stream).values() for r in rs] == ["c1"]
    assert dedup_keys() == {"c1", "conversion order-1", "conversion order-2"}
    # refusals are archived under the route, with the event's id
    refused = [(rec["route"], rec["item_index"], rec["click_id"]) for _, rec in archived()]
    assert refused == [(POST_EVENTS, 5, "imp-2"), (POST_EVENTS, 6, None), (POST_EVENTS, 7, "order-3"),
                       (POST_EVENTS, 8, "order-4")]
    assert ("Events_impression_accepted", 1) in metric_names and ("Events_conversion_rejected", 2) in metric_names


def test_resent_events_impressions_go_again_conversions_and_clicks_are_duplicates(env, clock):
    """At-least-once senders resend: a conversion or click comes back duplicate (claimed); an
    impression is published again, unclaimed: the stream job and the batch count it once."""
    env("off")
    now = clock.ms()
    body = {"events": [impression(1, now), click(1, now), conversion(1, now, click_id="c1")]}
    assert [r["status"] for r in post(body)[1]["results"]] == ["accepted"] * 3
    status, answer, _ = post(body)
    assert status == 202
    assert [(r["id"], r["status"], r.get("reason")) for r in answer["results"]] == [
        ("imp-1", "accepted", None), ("c1", "duplicate", "click_id already accepted"),
        ("order-1", "duplicate", "conversion_id already accepted")]
    assert sorted(r["event_id"] for r in events_stream()) == ["imp-1", "imp-1", "order-1"]


@pytest.mark.parametrize("body,status,code", [
    ({"clicks": []}, 400, "not_an_event_batch"),
    ({"events": {}}, 400, "events_not_an_array"),
    ({"events": []}, 400, "no_events"),
    ({"events": [{"type": "impression"}] * 501}, 413, "too_many_events"),
])
def test_a_refused_request_is_archived_with_its_code(env, clock, body, status, code):
    got, answer, rid = post(body)
    assert (got, answer["status"]) == (status, status)
    [(_, record)] = archived()
    assert (record["route"], record["request_id"], record["http_status"]) == (POST_EVENTS, rid, status)
    assert [r["reason"] for r in record["reasons"]] == [code]


def test_nothing_valid_is_a_400_with_every_reason(env, clock):
    status, answer, _ = post({"events": [{"type": "impression"}, {"type": "conversion", "schema_version": 2}]})
    assert status == 400 and answer["error"] == "no valid event in request"
    assert [r["status"] for r in answer["results"]] == ["rejected", "rejected"]
    assert "schema_version" in {x["field"] for x in answer["results"][1]["reasons"]}
    assert events_stream() == []


def test_a_conversion_in_another_currency_is_refused_with_the_deployments(env, clock):
    """One billing currency per deployment (ROAS sums values with click prices): a EUR value on
    a USD deployment is rejected with the reason, archived, and never reaches the stream."""
    env("off")
    now = clock.ms()
    euro = {**conversion(2, now, click_id="c2"), "currency": "EUR"}
    status, answer, rid = post({"events": [conversion(1, now, click_id="c1"), euro]})
    assert status == 202
    assert [(r["id"], r["status"]) for r in answer["results"]] == [("order-1", "accepted"),
                                                                   ("order-2", "rejected")]
    assert answer["results"][1]["reasons"] == [{
        "field": "currency",
        "reason": "must be USD, this deployment's billing currency (convert the value before sending)"}]
    assert [r["event_id"] for r in events_stream()] == ["order-1"]
    [(_, record)] = archived()
    assert (record["route"], record["request_id"], record["click_id"]) == (POST_EVENTS, rid, "order-2")


def test_the_local_archive_of_the_events_stream(env, clock, tmp_path):
    """The events archive's local stand-in (as Firehose on AWS): every record of the events
    stream lands once as a Parquet row under raw/events/dt=/hr=/ with the archive's columns."""
    import io

    import pyarrow.parquet as pq

    from common.archive import EVENTS
    from local.archiver import LocalArchiver

    env("off")
    now = clock.ms()
    post({"events": [impression(1, now), impression(2, now, user_id="u2"),
                     conversion(1, now, click_id="c9", value="0.5")]})
    archiver = LocalArchiver(NAMES.events_stream, NAMES.archive_bucket, tmp_path, layout=EVENTS)
    assert archiver.drain_once() == 3 and archiver.drain_once() == 0
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=NAMES.archive_bucket, Prefix=EVENTS.prefix)["Contents"]]
    assert all(k.startswith(EVENTS.prefix + "dt=") and "/hr=" in k and k.endswith(".parquet") for k in keys)
    rows = []
    for key in keys:
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=NAMES.archive_bucket, Key=key)["Body"].read()))
        assert [(f.name, str(f.type)) for f in table.schema] == [
            (name, {"string": "string", "bigint": "int64", "int": "int32"}[t]) for name, t in EVENTS.columns]
        rows += table.to_pylist()
    assert sorted(rows, key=lambda r: r["event_id"]) == sorted(events_stream(), key=lambda r: r["event_id"])
