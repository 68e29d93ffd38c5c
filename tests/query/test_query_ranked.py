"""Top-K with sorted access (serving.read.ranked, the rank index) against the brute-force oracle:
with pages small enough that reads stop part-way, every answer equals what the whole boards give
(tests.query.truth.expected_top: exact answers equal brute force, inexact ones the same bounds),
over 5m, 1h, 24h and 30d windows, truncated and complete boards, ties, filters; answers proven
before the end read fewer items; rebuilt generations stay whole. The write rules of the index
attribute are tested on item_for directly."""
from __future__ import annotations

import random

import boto3
import pytest

from aggregate.changes import TOP, Change
from common.config import AggregationSettings, ResourceNames
from local.moto_index import install as fast_index_queries
from local.resources import create_serving_table
from query.service import QueryService
from serving import generations
from serving.keys import RANK_ATTR, RANK_INDEX, RANK_MARKER, clicks_of_rank, rank_key, top_key
from serving.read import ranked
from serving.read.dynamodb import DynamoDBQueryStore
from serving.rebuild.loader import marker_item
from serving.write.dynamodb import item_for
from tests.query.test_query_dynamodb import check, load_truth
from tests.query.truth import DAY, HOUR, MIN, Truth, load, random_truth, sparse_truth

TABLE = ResourceNames().serving_table
DAY0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY
fast_index_queries()


@pytest.fixture
def ddb(aws):
    client = boto3.client("dynamodb")
    create_serving_table(client, TABLE)
    return client


@pytest.fixture
def small_pages(monkeypatch):
    """Pages of a few entries per bucket, so that reads stop part-way and continue."""
    monkeypatch.setattr(ranked, "FIRST_PAGE_PER_BUCKET", 1)
    monkeypatch.setattr(ranked, "ITEM_BUDGET", 400)


def services(ddb, m: int, now: int) -> tuple[QueryService, QueryService]:
    settings = AggregationSettings(leaderboard_size=m)
    return (QueryService(DynamoDBQueryStore(ddb, TABLE, m), settings, clock_ms=lambda: now),
            QueryService(DynamoDBQueryStore(ddb, TABLE, m, sorted_access=False), settings, clock_ms=lambda: now))


def same_answer(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k != "debug"} == {k: v for k, v in b.items() if k != "debug"}


def test_rank_keys_sort_by_clicks_descending_and_markers_first():
    keys = [rank_key(c) for c in (0, 1, 9, 10, 12345, 10**18)]
    assert sorted(keys, reverse=True) == keys and all(len(k) == 19 for k in keys)
    assert RANK_MARKER < min(keys) and [clicks_of_rank(k) for k in keys] == [0, 1, 9, 10, 12345, 10**18]
    with pytest.raises(ValueError):
        rank_key(-1)


def test_a_live_entry_is_indexed_and_a_tombstone_or_other_row_is_not():
    row = {"kind": TOP, "resolution": "1m", "bucket_start": DAY0, "ad_id": "a", "entity_id": "a",
           "version": 4, "clicks": 7, "billable_clicks": 5}
    live = item_for(Change(TOP, True, row), 86400)
    assert live[RANK_ATTR] == {"S": rank_key(7)} and {"pk": live["pk"]["S"], "sk": live["sk"]["S"]} == top_key(
        "1m", DAY0, "a")
    # the same row replayed writes the same item (the write stays one conditional put by version)
    assert item_for(Change(TOP, True, row), 86400) == live
    dead = item_for(Change(TOP, False, {**row, "version": 5}), 86400)
    assert RANK_ATTR not in dead and dead["del"] == {"BOOL": True}
    agg = item_for(Change("agg", True, {**row, "kind": "agg"}), 86400)
    assert RANK_ATTR not in agg
    assert marker_item("1h", DAY0, 3)[RANK_ATTR] == {"S": RANK_MARKER}


def test_the_sink_moves_an_entry_in_the_index_and_a_tombstone_removes_it(ddb):
    from serving.write.dynamodb import DynamoDBServingStore

    store = DynamoDBServingStore(ddb, TABLE)
    row = {"kind": TOP, "resolution": "1h", "bucket_start": DAY0, "ad_id": "a", "entity_id": "a", "clicks": 3}

    def index() -> list[tuple[str, str]]:
        items = ddb.query(TableName=TABLE, IndexName=RANK_INDEX, KeyConditionExpression="pk = :p",
                          ExpressionAttributeValues={":p": {"S": top_key("1h", DAY0, "a")["pk"]}})["Items"]
        return [(i["sk"]["S"], i[RANK_ATTR]["S"]) for i in items]

    sk = top_key("1h", DAY0, "a")["sk"]
    assert store.apply(Change(TOP, True, {**row, "version": 2, "clicks": 9}))
    assert not store.apply(Change(TOP, True, {**row, "version": 1, "clicks": 3}))  # older: refused
    assert index() == [(sk, rank_key(9))]
    assert store.apply(Change(TOP, False, {**row, "version": 2, "clicks": 9}))  # retraction at v
    assert index() == []
    assert not store.apply(Change(TOP, True, {**row, "version": 2, "clicks": 9}))  # replay: no resurrection
    assert index() == []


def test_sorted_reads_equal_whole_boards_over_5m_1h_24h_windows(ddb, small_pages):
    """40 ads, M = 6 (truncated boards) and M = 60 (complete): clicks and billable clicks, ties,
    filters; every answer the oracle's (via check) and identical to the whole-board read."""
    t0 = DAY0 - 2 * HOUR
    t = random_truth(5, t0, 28 * 60, ads=25, p=0.08, hot_p=0.9, campaigns=3)
    for ad in ("ad-007", "ad-008"):  # a tie: the same clicks everywhere
        for (a, mn), v in list(t.minute.items()):
            if a == "ad-006":
                t.minute[(ad, mn)] = v
    t.memo.clear()
    rng = random.Random(3)
    stats = {"proven_early": 0, "exact": 0, "inexact": 0}
    for m in (6, 40):
        ddb.delete_table(TableName=TABLE)
        create_serving_table(ddb, TABLE)
        load_truth(ddb, t, m)
        for _ in range(5):
            end = t0 + rng.randint(70, 28 * 60) * MIN
            new, old = services(ddb, m, end - MIN)
            params = {"last": rng.choice(["5m", "1h", "24h", "90m"]), "k": rng.choice([1, 3, 10]),
                      "metric": rng.choice(["clicks", "billable_clicks"])}
            if rng.random() < 0.25:
                params["campaign_id"] = "cmp-1"
            body = check(new, t, params)
            params = {k: str(v) for k, v in params.items()}
            assert same_answer(body, old.top(params)), params
            stats["exact" if body["exact"] else "inexact"] += 1
            if body["exact"] and body["debug"]["partial_partitions"]:
                stats["proven_early"] += 1
    assert all(stats.values()), stats


def test_thirty_day_windows_sorted(ddb, small_pages):
    start = DAY0 - 32 * DAY
    t = sparse_truth(3, start, 33, ads=10, rows_per_day=30)
    load_truth(ddb, t, 4)
    end = start + 33 * DAY
    rng = random.Random(9)
    for _ in range(8):
        new, old = services(ddb, 4, end - rng.randrange(0, DAY // MIN) * MIN)
        params = {"last": rng.choice(["30d", "7d", "29d"]), "k": rng.randint(1, 5),
                  "metric": rng.choice(["clicks", "billable_clicks"])}
        body = check(new, t, params)
        assert same_answer(body, old.top({k: str(v) for k, v in params.items()})), params


def test_a_rebuilt_bucket_is_read_whole_or_not_at_all(ddb, small_pages):
    """Generation 1 rewrites the 1h board of one hour: before its marker readers see the stream's
    board, after it only generation 1's (a stale stream entry drops out), read in part or not."""
    hour = DAY0 + 5 * HOUR
    t = Truth()
    for i, clicks in enumerate([50, 40, 30, 20, 10, 5]):
        ad = f"ad-{i}"
        t.campaign[ad], t.advertiser[ad] = "cmp-0", "adv-0"
        t.add(ad, hour + i * MIN, clicks, clicks, 0, 0)
    load_truth(ddb, t, 4)  # M = 4: truncated boards
    new, old = services(ddb, 4, hour + HOUR + 30 * MIN)
    params = {"from": str(hour), "to": str(hour + HOUR), "k": "2"}
    before = new.top(params)
    assert [(i["ad_id"], i["total"]) for i in before["items"]] == [("ad-0", 50), ("ad-1", 40)] and before["exact"]
    # generation 1: ad-1 has 60 clicks in this hour, ad-9 45, and ad-0 is not on its board
    rebuilt = [("ad-1", 60), ("ad-9", 45), ("ad-2", 30), ("ad-3", 20)]
    items = [item_for(Change(TOP, True, {"kind": TOP, "resolution": "1h", "bucket_start": hour, "ad_id": ad,
                                         "entity_id": ad, "campaign_id": "cmp-0", "advertiser_id": "adv-0",
                                         "version": generations.versioned(1, 9), "clicks": c,
                                         "billable_clicks": c}), 86400) for ad, c in rebuilt]
    load(ddb, TABLE, items)
    mid = new.top(params)  # entries written, no marker: generation 0's entries only, as whole reads
    assert all(i["ad_id"] not in dict(rebuilt) for i in mid["items"]) and same_answer(mid, old.top(params))
    load(ddb, TABLE, [marker_item("1h", hour, 1)])
    after = new.top(params)
    assert [(i["ad_id"], i["total"]) for i in after["items"]] == [("ad-1", 60), ("ad-9", 45)] and after["exact"]
    assert same_answer(after, old.top(params))
