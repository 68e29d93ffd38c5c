"""The Python SDK's events (issue 19) against the REAL local API (no Flink): an ad server signs
each served ad's token and reports its impression from the same claims (impression_event), an
advertiser reports conversions naming the click by token or click_id (conversion_event), both
through ClickSender(EventClient) on POST /v1/events. The oracle is what the test signed and
sent: the events stream holds every impression and conversion with exactly those fields; a
resend brings impressions again (unclaimed, counted once downstream) and conversions back as
`duplicate`."""
from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

import pytest

from clickagg_sdk import (ClickSender, EventClient, TokenIssuer, conversion_event, impression_event)
from local.readback import click_token_keys, read_stream
from local.stack import LocalStack, StackOptions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    options = StackOptions(flink=False, sink=False, archive=False, glue=False,
                           state_dir=tmp_path_factory.mktemp("state"))
    with LocalStack(options) as s:
        yield s


def events_by_id(stream: str) -> Counter:
    return Counter(r["event_id"] for rs in read_stream(stream).values() for r in rs)


def test_impressions_and_conversions_through_the_sdk(stack):
    issuer = TokenIssuer(click_token_keys(stack.names.click_token_secret), ttl_s=3600)
    now_s = int(time.time()) - 5
    served = [issuer.claims(ad_id=f"ev-ad-{i % 3}", campaign_id="ev-cmp", advertiser_id="ev-adv",
                            price_micros=100_000, landing_url="https://shop.example/ev",
                            placement_id=f"slot-{i}", issued_at=now_s) for i in range(30)]
    tokens = [issuer.issue_claims(c) for c in served]
    outcomes: list = []
    with ClickSender(EventClient(stack.api.url, max_attempts=5), batch_size=25,
                     on_result=outcomes.append) as sender:
        ids = [sender.track(impression_event(c, user_id=f"u{i}")) for i, c in enumerate(served)]
        conversions = [conversion_event(f"ev-order-{i}", Decimal("19.99") * (i + 1), "USD",
                                        now_s * 1000 + 1_000, token=tokens[i]) for i in range(5)]
        conversions.append(conversion_event("ev-order-x", 7, "USD", now_s * 1000 + 2_000, click_id="c-x"))
        ids += [sender.track(c) for c in conversions]
        assert sender.flush(timeout_s=60)
    assert ids == [c.impression_id for c in served] + [f"ev-order-{i}" for i in range(5)] + ["ev-order-x"]
    assert sorted((o.click_id, o.status) for o in outcomes) == sorted((i, "accepted") for i in ids)

    records = {r["event_id"]: r for rs in read_stream(stack.names.events_stream).values() for r in rs}
    for i, c in enumerate(served):
        r = records[c.impression_id]
        assert (r["event_type"], r["ad_id"], r["campaign_id"], r["advertiser_id"], r["event_time"],
                r["placement_id"], r["user_id"]) == ("impression", c.ad_id, c.campaign_id,
                                                     c.advertiser_id, c.issued_at * 1000, c.placement_id, f"u{i}")
    for i in range(5):
        r = records[f"ev-order-{i}"]
        assert (r["event_type"], r["ad_id"], r["impression_id"], r["value_micros"], r["currency"],
                r["attributed_by"]) == ("conversion", served[i].ad_id, served[i].impression_id,
                                        19_990_000 * (i + 1), "USD", "token")
    r = records["ev-order-x"]
    assert (r["ad_id"], r["click_id"], r["value_micros"], r["attributed_by"]) == (None, "c-x", 7_000_000, "click_id")

    # everything again, as an at-least-once sender does after a lost answer
    again = EventClient(stack.api.url).send([impression_event(c) for c in served[:3]] + conversions[:2])
    assert [(o.click_id, o.status) for o in again] == [(c.impression_id, "accepted") for c in served[:3]] + [
        ("ev-order-0", "duplicate"), ("ev-order-1", "duplicate")]
    counts = events_by_id(stack.names.events_stream)
    assert {i: counts[i] for i in ids} == {i: 2 if i in {c.impression_id for c in served[:3]} else 1 for i in ids}
