"""The Python SDK against the REAL local API (the project's local stack without Flink, sink,
archive or billing; click_token_mode enforce): an ad server issues tokens with TokenIssuer from
the stack's key set and sends clicks with ClickSender, server to server (POST /v1/clicks, with
the ad server's user's ip and user agent) and on the public route (POST /v1/public/clicks, no
key); a whole batch sent again with the same click_ids comes back `duplicate`; the emulator's
dedup table and clicks stream hold each click_id exactly once, with the token's ad, campaign,
advertiser and price (the oracle: the claims the test itself signed)."""
from __future__ import annotations

import time
from collections import Counter

import boto3
import pytest

from clickagg_sdk import ClickClient, ClickSender, TokenIssuer, verify
from common.config import IngestSettings
from local.readback import click_token_keys, read_stream
from local.stack import LocalStack, StackOptions

pytestmark = pytest.mark.slow

N = 120  # clicks per route


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    options = StackOptions(flink=False, sink=False, archive=False, glue=False,
                           state_dir=tmp_path_factory.mktemp("state"),
                           settings=IngestSettings(click_token_mode="enforce"))
    with LocalStack(options) as s:
        yield s


def dedup_items(table: str) -> Counter:
    """click_id -> items in the dedup table (scan)."""
    ddb = boto3.client("dynamodb")
    out: Counter = Counter()
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        out.update(item["click_id"]["S"] for item in page["Items"])
    return out


def served_ads(issuer: TokenIssuer, route: str, n: int) -> list[tuple[str, object]]:
    """n served ads: (token, its claims as the test signed them) over 7 ads with their own prices."""
    out = []
    for i in range(n):
        ad = i % 7
        token = issuer.issue(ad_id=f"sdk-ad-{ad}", campaign_id=f"sdk-cmp-{ad // 3}",
                             advertiser_id=f"sdk-adv-{ad // 5}", price_micros=10_000 * (ad + 1) + 7,
                             landing_url=f"https://shop.example/{route}/{ad}",
                             issued_at=int(time.time()) - 5)
        out.append((token, verify(token, issuer.keys, time.time())))
    return out


def test_sdk_against_the_local_api(stack):
    keys = click_token_keys(stack.names.click_token_secret)
    issuer = TokenIssuer(keys, ttl_s=3600)
    results: list = []
    plan: dict[str, object] = {}  # click_id -> the claims of its token
    network: dict[str, tuple[str, str]] = {}  # server-to-server: click_id -> (ip, user_agent) it forwarded

    # server to server: POST /v1/clicks, no api key locally (the deployed API wants x-api-key)
    private = ClickSender(ClickClient(stack.api.url, max_attempts=5), batch_size=50, on_result=results.append)
    for k, (token, claims) in enumerate(served_ads(issuer, "s2s", N)):
        ip, ua = f"198.51.100.{k % 250 + 1}", f"Mozilla/5.0 (sdk-test {k})"
        cid = private.track({"user_id": f"u-s2s-{k}", "token": token, "ip": ip, "user_agent": ua})
        plan[cid], network[cid] = claims, (ip, ua)
    assert private.close(timeout_s=120)
    # browsers' clicks posted on the public route: no key, token only
    public = ClickSender(ClickClient(stack.api.url, public=True, max_attempts=5), batch_size=40,
                         on_result=results.append)
    for k, (token, claims) in enumerate(served_ads(issuer, "pub", N)):
        plan[public.track({"user_id": f"u-pub-{k}", "token": token})] = claims
    assert public.close(timeout_s=120)

    assert len(plan) == 2 * N
    assert sorted((o.click_id, o.status, o.attempts) for o in results) == sorted(
        (cid, "accepted", 1) for cid in plan)

    # the same batch again (the same click_ids, as after a lost response): all duplicate
    first_public = [cid for cid in plan if cid not in network][:40]
    client = ClickClient(stack.api.url, public=True)
    again = client.send([{"click_id": cid, "user_id": "u-again", "timestamp": int(time.time() * 1000),
                          "token": issuer.issue_claims(plan[cid])} for cid in first_public])
    assert [(o.click_id, o.status, o.attempts) for o in again] == [(cid, "duplicate", 1) for cid in first_public]
    first_private = list(network)[:50]
    again = ClickClient(stack.api.url).send([{"click_id": cid, "user_id": "u-again", "timestamp": int(time.time() * 1000),
                                              "token": issuer.issue_claims(plan[cid])} for cid in first_private])
    assert [o.status for o in again] == ["duplicate"] * 50

    # a forged price is refused per item, the rest of the batch unaffected
    token, _ = served_ads(issuer, "bad", 1)[0]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BA")
    mixed = client.send([{"click_id": "sdk-forged", "user_id": "u", "timestamp": int(time.time() * 1000),
                          "token": forged}])
    assert [(o.status, o.reasons) for o in mixed] == [
        ("rejected", [{"field": "token", "reason": "bad_signature"}])]

    # the emulator: each click_id once in the dedup table and once on the stream, with the token's facts
    in_table = dedup_items(stack.names.dedup_table)
    assert {cid: in_table[cid] for cid in plan} == {cid: 1 for cid in plan}
    assert "sdk-forged" not in in_table
    records = [r for recs in read_stream(stack.names.clicks_stream).values() for r in recs]
    mine = [r for r in records if r["click_id"] in plan or r["click_id"] == "sdk-forged"]
    assert Counter(r["click_id"] for r in mine) == Counter(list(plan))  # each once, the forged one never
    for r in mine:
        c = plan[r["click_id"]]
        assert (r["ad_id"], r["campaign_id"], r["advertiser_id"], r["cost_micros"], r["impression_id"],
                r["issued_at"]) == (c.ad_id, c.campaign_id, c.advertiser_id, c.price_micros,
                                    c.impression_id, c.issued_at * 1000)
        if r["click_id"] in network:  # server to server: the forwarded network facts are kept
            assert (r["ip"], r["user_agent"]) == network[r["click_id"]]
        else:  # public: the request's, never the body's
            assert r["ip"] == "127.0.0.1" and r["user_agent"].startswith("python-urllib3/")
