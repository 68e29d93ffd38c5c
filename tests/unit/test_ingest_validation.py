"""Pure ingest rules: request-level errors, per-click validation, time bounds, cost precision."""
from __future__ import annotations

import json
from decimal import Decimal

from dataclasses import replace

import pytest

from common.config import IngestSettings
from common.records import CLICK_RECORD_SCHEMA, decode_click, encode_click, partition_key
from ingest.models import to_epoch_ms
from ingest.validation import (RequestError, Rejection, ValidClick, check_content_type, decode_body,
                               extract_items, parse_batch, validate_item)

S = IngestSettings()
NOW = 1_795_000_000_000


def click(**over):
    base = {"click_id": "c1", "ad_id": "a1", "campaign_id": "k1", "advertiser_id": "v1",
            "user_id": "u1", "timestamp": NOW - 1000, "cost": Decimal("0.25")}
    base.update(over)
    return base


@pytest.mark.parametrize("ct,ok", [("application/json", True), ("application/json; charset=utf-8", True),
                                   ("APPLICATION/JSON", True), ("text/plain", False), ("", False)])
def test_content_type_of_post_clicks(ct, ok):
    headers = {"content-type": ct} if ct else {}
    if ok:
        check_content_type(headers)
    else:
        with pytest.raises(RequestError) as e:
            check_content_type(headers)
        assert e.value.status == 415


@pytest.mark.parametrize("ct,ok", [("text/plain;charset=UTF-8", True), ("application/json", True),
                                   ("text/html", False), ("multipart/form-data; boundary=x", False),
                                   ("", False)])
def test_content_type_of_the_public_route(ct, ok):
    from common.public_route import CONTENT_TYPES
    headers = {"Content-Type": ct} if ct else {}
    if ok:
        check_content_type(headers, CONTENT_TYPES)
    else:
        with pytest.raises(RequestError) as e:
            check_content_type(headers, CONTENT_TYPES)
        assert (e.value.status, e.value.code) == (415, "unsupported_media_type")


@pytest.mark.parametrize("body,status,fragment", [
    ("", 400, "empty"),
    ("{not json", 400, "not valid JSON"),
    ('{"cost": NaN}', 400, "NaN is not valid JSON"),
    ('{"cost": Infinity}', 400, "Infinity"),
    ("[" * 100_000 + "]" * 100_000, 400, ""),
])
def test_decode_body_errors(body, status, fragment):
    with pytest.raises(RequestError) as e:
        decode_body(body, False, S)
    assert e.value.status == status and fragment in e.value.reason


def test_body_too_large_is_413():
    with pytest.raises(RequestError) as e:
        decode_body("x" * (S.max_body_bytes + 1), False, S)
    assert e.value.status == 413


def test_decimals_stay_exact():
    assert decode_body('{"cost": 0.1}', False, S) == {"cost": Decimal("0.1")}


@pytest.mark.parametrize("payload,n", [(click(), 1), ({"clicks": [click(), click()]}, 2), ([click()] * 3, 3)])
def test_extract_items_shapes(payload, n):
    assert len(extract_items(payload, S)) == n


@pytest.mark.parametrize("payload,status", [({"clicks": []}, 400), ({"clicks": "x"}, 400), (7, 400),
                                            ({"clicks": [click()] * 501}, 413)])
def test_extract_items_errors(payload, status):
    with pytest.raises(RequestError) as e:
        extract_items(payload, S)
    assert e.value.status == status


@pytest.mark.parametrize("over,field", [
    ({"click_id": ""}, "click_id"), ({"click_id": 5}, "click_id"), ({"ad_id": "has space"}, "ad_id"),
    ({"cost": Decimal("-0.01")}, "cost"), ({"cost": Decimal("10000.01")}, "cost"),
    ({"cost": Decimal("0.0000001")}, "cost"), ({"cost": True}, "cost"), ({"cost": "abc"}, "cost"),
    ({"timestamp": "2026-11-23T10:00:00"}, "timestamp"), ({"timestamp": "yesterday"}, "timestamp"),
    ({"timestamp": 1.5}, "timestamp"), ({"timestamp": 10**20}, "timestamp"),
    ({"ip": "999.1.1.1"}, "ip"), ({"user_agent": "\ud800"}, "user_agent"),
])
def test_invalid_fields_are_named(over, field):
    result = validate_item(0, click(**over), S, NOW)
    assert isinstance(result, Rejection)
    assert result.reasons[0]["field"].startswith(field), result.reasons


def test_missing_fields_all_reported():
    result = validate_item(3, {"click_id": "c9"}, S, NOW)
    assert isinstance(result, Rejection) and result.index == 3 and result.click_id == "c9"
    assert {r["field"] for r in result.reasons} == {"ad_id", "campaign_id", "advertiser_id", "user_id",
                                                     "timestamp", "cost"}


def test_time_bounds():
    future = validate_item(0, click(timestamp=NOW + S.max_future_skew_s * 1000 + 1), S, NOW)
    edge_future = validate_item(0, click(timestamp=NOW + S.max_future_skew_s * 1000), S, NOW)
    old = validate_item(0, click(timestamp=NOW - S.max_age_s * 1000 - 1), S, NOW)
    edge_old = validate_item(0, click(timestamp=NOW - S.max_age_s * 1000), S, NOW)
    assert isinstance(future, Rejection) and "future" in future.reasons[0]["reason"]
    assert isinstance(old, Rejection) and "maximum age" in old.reasons[0]["reason"]
    assert isinstance(edge_future, ValidClick) and isinstance(edge_old, ValidClick)


@pytest.mark.parametrize("value,ms", [
    (1_795_000_000_123, 1_795_000_000_123),
    ("2026-11-23T10:00:00.123Z", 1_795_428_000_123),
    ("2026-11-23T11:00:00.123+01:00", 1_795_428_000_123),
    ("2026-11-23T10:00:00.999999Z", 1_795_428_000_999),
])
def test_epoch_ms(value, ms):
    assert to_epoch_ms(value) == ms


def test_cost_micros_exact():
    vc = validate_item(0, click(cost="1234.567891"), S, NOW)
    assert vc.click.cost_micros == 1_234_567_891


def test_parse_batch_keeps_valid_items_and_flags_in_batch_duplicates():
    items = [click(click_id="a"), click(click_id="b", cost=-1), click(click_id="a"), "junk", click(click_id="c")]
    batch = parse_batch(items, S, NOW)
    assert [v.index for v in batch.valid] == [0, 4]
    assert [r.index for r in batch.rejected] == [1, 3]
    assert [d.index for d in batch.in_batch_duplicates] == [2]


def test_partition_key_salting_is_stable_and_bounded():
    salts = {"hot": 8}
    keys = {partition_key("hot", f"c{i}", salts) for i in range(1000)}
    assert keys == {f"hot#{i}" for i in range(8)}
    assert partition_key("hot", "c1", salts) == partition_key("hot", "c1", salts)
    assert partition_key("cold", "c1", salts) == "cold"


def test_record_roundtrip_has_exactly_the_schema_fields():
    rec = {"extra": 1, "source_ip": "203.0.113.9", "click_id": "é", "ad_id": "a1",
           "campaign_id": "k1", "advertiser_id": "v1", "user_id": "u1", "event_time": NOW - 1000,
           "cost_micros": 250_000, "ip": "198.51.100.7", "user_agent": "Mozilla/5.0 (X11)",
           "ingest_time": NOW, "request_id": "r-1"}  # no referrer; an unknown key; shuffled
    data = encode_click(rec)
    # schema order, no spaces, UTF-8 (not \u escapes), missing field -> null, unknown key dropped
    assert data == ('{"click_id":"é","ad_id":"a1","campaign_id":"k1","advertiser_id":"v1",'
                    '"user_id":"u1","event_time":1794999999000,"cost_micros":250000,'
                    '"ip":"198.51.100.7","user_agent":"Mozilla/5.0 (X11)","referrer":null,'
                    '"ingest_time":1795000000000,"request_id":"r-1","source_ip":"203.0.113.9",'
                    '"impression_id":null,"issued_at":null}'
                    ).encode("utf-8")
    assert decode_click(data) == {
        "click_id": "é", "ad_id": "a1", "campaign_id": "k1", "advertiser_id": "v1",
        "user_id": "u1", "event_time": 1_794_999_999_000, "cost_micros": 250_000,
        "ip": "198.51.100.7", "user_agent": "Mozilla/5.0 (X11)", "referrer": None,
        "ingest_time": 1_795_000_000_000, "request_id": "r-1", "source_ip": "203.0.113.9",
        "impression_id": None, "issued_at": None}
    assert list(decode_click(data)) == list(CLICK_RECORD_SCHEMA)


def test_settings_env_roundtrip():
    s = IngestSettings(max_batch=42, hot_ad_salts={"ad-1": 8, "ad-2": 2}, dedup_table="t")
    import os
    old = dict(os.environ)
    try:
        os.environ.update(s.to_env())
        assert IngestSettings.from_env() == s
    finally:
        os.environ.clear(); os.environ.update(old)
    with pytest.raises(ValueError):
        from common.config import _parse_salts
        _parse_salts("ad-1:0")


# --- POST /v1/public/clicks (ingest.public) -------------------------------------------------------
def test_public_route_validates_as_enforce_whatever_the_mode_and_ignores_ip_and_user_agent():
    """token_required: ids and cost may be left out (the token says them) with click_token_mode
    off too; ignored_fields: ip/user_agent are neither validated nor kept."""
    from ingest.public import IGNORED_FIELDS

    S = replace(globals()["S"], click_token_mode="off")
    item = {"click_id": "c1", "user_id": "u1", "timestamp": NOW - 1000, "token": "t",
            "ip": "not an ip", "user_agent": ["x"]}
    assert isinstance(validate_item(0, item, S, NOW), Rejection)  # the API-key route, mode off
    vc = validate_item(0, item, S, NOW, token_required=True, ignored_fields=IGNORED_FIELDS)
    assert isinstance(vc, ValidClick)
    assert (vc.click.ad_id, vc.click.cost, vc.click.ip, vc.click.user_agent, vc.click.token) == (
        None, None, None, None, "t")
    # the other fields keep their rules
    bad = validate_item(0, {**item, "user_id": ""}, S, NOW, token_required=True, ignored_fields=IGNORED_FIELDS)
    assert isinstance(bad, Rejection) and [r["field"] for r in bad.reasons] == ["user_id"]


def test_public_route_takes_the_network_facts_from_the_request():
    from ingest.public import IGNORED_FIELDS, with_request_facts

    items = [{"click_id": "c1", "user_id": "u1", "timestamp": NOW - 1000, "token": "t", "ip": "192.0.2.1"},
             {"click_id": "c2", "user_id": "u2", "timestamp": NOW - 1000, "token": "t",
              "referrer": "https://app.example/"},
             {"click_id": "c1", "user_id": "u1", "timestamp": NOW - 1000, "token": "t"}]
    batch = parse_batch(items, S, NOW, token_required=True, ignored_fields=IGNORED_FIELDS)
    out = with_request_facts(batch, "UA/" + "x" * 600, "https://news.example/" + "p" * 3000)
    assert [(vc.click.click_id, vc.click.ip, vc.click.user_agent, vc.click.referrer) for vc in out.valid] == [
        ("c1", None, "UA/" + "x" * 509, "https://news.example/" + "p" * 2027),
        ("c2", None, "UA/" + "x" * 509, "https://app.example/")]
    assert [vc.click.click_id for vc in out.in_batch_duplicates] == ["c1"] and out.rejected == batch.rejected
    none = with_request_facts(batch, None, None)
    assert [(vc.click.user_agent, vc.click.referrer) for vc in none.valid] == [(None, None),
                                                                                (None, "https://app.example/")]
