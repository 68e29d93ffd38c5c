"""Top-K over leaderboards of M = 1000 whose partitions do not fit in one 1 MB Query page
(in-process moto): the store follows every page, the answer is exact against the brute-force
oracle, and the AWS requests are exactly 1 (META BatchGetItem) + the pages of the <= 4
partitions read, counted on the client independently of the store's own count.

Entries are as large as the ingest API allows (128-character ad, campaign and advertiser ids:
~590 bytes an item), so a board of 900 entries is ~0.53 MB and two or four of them need two or
three pages; tombstones are read (the 1 MB counts items before the filter) but never counted.

Both read paths: whole boards (every window range, page by page), and sorted access through the
rank index, whose fallback past its budget reads the same ranges whole, page by page."""
from __future__ import annotations

import random
import threading

import boto3
import pytest

from common.config import AggregationSettings, ResourceNames
from local.resources import create_serving_table
from query.service import QueryService
from serving.keys import RANK_INDEX
from serving.read.dynamodb import DynamoDBQueryStore
from tests.query.truth import DAY, HOUR, MIN, Truth, assert_top_sound, load, oracle_top, serving_items

TABLE = ResourceNames().serving_table
DAY0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY
M = 1000
PAGE_BYTES = 1_000_000  # a Query page holds at most 1 MB of items (moto: 10^6 bytes), whole items
# 21:56 the day before to 01:02: whole hours 22:00 and 23:00 (T#1h#<day-1>) and 00:00 (T#1h#<day>),
# edge minutes 21:56-21:59 (T#1m#21:00) and 01:00-01:01 (T#1m#01:00): four partitions
FROM, TO = DAY0 - 2 * HOUR - 4 * MIN, DAY0 + HOUR + 2 * MIN


def long_id(prefix: str, i: int, rng: random.Random) -> str:
    head = f"{prefix}-{i:04d}-"
    return head + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_.'") for _ in range(128 - len(head)))


def big_truth() -> Truth:
    rng = random.Random(15)
    t = Truth()
    ads = [long_id("ad", i, rng) for i in range(1200)]
    campaigns = [long_id("cmp", i, rng) for i in range(5)]
    advertisers = [long_id("adv", i, rng) for i in range(3)]
    for i, ad in enumerate(ads):
        t.campaign[ad], t.advertiser[ad] = campaigns[i % 5], advertisers[i % 3]

    def bucket(minute: int, n: int) -> None:
        for ad in rng.sample(ads, n):
            clicks = rng.randint(1, 200)
            billable = rng.randint(0, clicks)
            unit = rng.choice([1, 250_000, 1_500_000])
            t.add(ad, minute, clicks, billable, clicks * unit, billable * unit)

    # 900 entries: the most a board may hold and still be complete (<= 0.9 M), so the answer is exact
    for minute in range(FROM, FROM + 4 * MIN, MIN):  # edge minutes read from T#1m#21:00: 4 big boards
        bucket(minute, 900)
    for hour in (DAY0 - 2 * HOUR, DAY0 - HOUR):  # whole hours 22:00, 23:00: 2 big 1h boards
        bucket(hour + 30 * MIN, 900)
    bucket(DAY0 + 17 * MIN, 40)  # whole hour 00:00 (T#1h#<day>): one small board
    for minute in (DAY0 + HOUR, DAY0 + HOUR + MIN):  # edge minutes 01:00, 01:01: small boards
        bucket(minute, 30)
    # in the same partitions but outside the window: must not be read (SK ranges)
    bucket(FROM - 20 * MIN, 100)  # 21:37: T#1m#21:00, and the 1h board of 21:00 (T#1h#<day-1>)
    bucket(TO, 100)  # 01:02: T#1m#01:00, and the 1h board of 01:00 (T#1h#<day>)
    t.watermark, t.newest_event = TO + HOUR, TO + HOUR
    return t


def window_bucket(pk: str, sk: str) -> bool:
    """Whether a leaderboard item is in the window, brute force: a 1h board of an hour wholly
    inside it, or a 1m board of a minute inside it whose hour is not."""
    bucket = int(sk.partition("#")[0])
    if pk.startswith("T#1h#"):
        return FROM <= bucket and bucket + HOUR <= TO
    hour = bucket - bucket % HOUR
    return FROM <= bucket < TO and not (FROM <= hour and hour + HOUR <= TO)


def item_bytes(item: dict) -> int:
    """DynamoDB's item size: attribute names + values (UTF-8 bytes; moto counts a number's digits)."""
    size = 0
    for name, value in item.items():
        (kind, v), = value.items()
        size += len(name.encode()) + (1 if kind == "BOOL" else len(v.encode()))
    return size


def pages(sizes: list[int]) -> int:
    """Query pages for items of these sizes in key order: a page ends before the item that would
    take it over 1 MB."""
    count, used = 1, 0
    for size in sizes:
        if used + size > PAGE_BYTES:
            count, used = count + 1, 0
        used += size
    return count


@pytest.fixture(scope="module")
def paged():
    """One moto table with the four partitions the window reads (and META); the other
    partitions the sink would write (series, 1m boards of other hours) are never read."""
    from moto import mock_aws

    t = big_truth()
    items = [i for i in serving_items(t, M) if i["pk"]["S"].startswith(("T#1h#", "META#"))
             or i["pk"]["S"] in {f"T#1m#{DAY0 - 3 * HOUR:013d}", f"T#1m#{DAY0 + HOUR:013d}"}]
    with mock_aws():
        ddb = boto3.client("dynamodb")
        create_serving_table(ddb, TABLE)
        load(ddb, TABLE, items)
        calls: list[tuple[str, str | None, bool, str | None]] = []
        lock = threading.Lock()

        def record(model, params, **_):
            with lock:
                pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S")
                calls.append((model.name, pk, "ExclusiveStartKey" in params, params.get("IndexName")))

        ddb.meta.events.register("before-parameter-build.dynamodb.*", record)
        yield t, items, ddb, calls


def service(ddb, sorted_access: bool) -> QueryService:
    return QueryService(DynamoDBQueryStore(ddb, TABLE, M, sorted_access=sorted_access),
                        AggregationSettings(leaderboard_size=M), clock_ms=lambda: TO + 2 * HOUR)


def window_pages(items: list[dict]) -> tuple[dict[str, int], int]:
    """Per partition, the Query pages of its window range (brute force), and the live entries."""
    read = {}  # partition -> its window items in key order (what each Query range returns)
    for item in sorted(items, key=lambda i: i["sk"]["S"]):
        pk = item["pk"]["S"]
        if pk.startswith("T#") and window_bucket(pk, item["sk"]["S"]):
            read.setdefault(pk, []).append(item)
    live = sum(1 for its in read.values() for i in its if "del" not in i)
    assert live < sum(len(its) for its in read.values())  # tombstones are in the pages too
    return {pk: pages([item_bytes(i) for i in its]) for pk, its in read.items()}, live


def assert_exact_answer(t: Truth, body: dict) -> None:
    assert (body["window"]["from_ms"], body["window"]["to_ms"]) == (FROM, TO)
    expected, _ = oracle_top(t, FROM, TO, 100, "clicks")
    assert body["exact"] is True and len(expected) == 100
    assert [(i["ad_id"], i["total"], i["total_upper"]) for i in body["items"]] == [(a, v, v) for a, v in expected]
    assert [(i["campaign_id"], i["advertiser_id"]) for i in body["items"]] == [
        (t.campaign[a], t.advertiser[a]) for a, _ in expected]
    assert_top_sound([(i["ad_id"], i["total"], i["total_upper"]) for i in body["items"]], body["exact"],
                     body["error_bound"], t, FROM, TO, 100, "clicks", m=M)


def test_paged_partitions_exact_answer_and_request_count(paged):
    t, items, ddb, calls = paged
    calls.clear()
    expected_pages, live = window_pages(items)
    # the claim under test needs real paging: two partitions span several pages
    assert expected_pages == {f"T#1h#{DAY0 - DAY:013d}": 2, f"T#1h#{DAY0:013d}": 1,
                              f"T#1m#{DAY0 - 3 * HOUR:013d}": 3, f"T#1m#{DAY0 + HOUR:013d}": 1}

    body = service(ddb, sorted_access=False).top({"from": str(FROM), "to": str(TO), "k": "100"})
    assert_exact_answer(t, body)
    # every AWS call, counted on the client: 1 BatchGetItem, then per partition one Query per
    # page, each page after the first continuing where the previous one ended
    queries = [(pk, cont) for op, pk, cont, index in calls if op == "Query"]
    assert all(index is None for *_, index in calls)
    assert [c[0] for c in calls].count("BatchGetItem") == 1 and len(calls) == 1 + len(queries)
    for pk, n in expected_pages.items():
        assert sorted(cont for p, cont in queries if p == pk) == [False] + [True] * (n - 1), pk
    assert {pk for pk, _ in queries} == set(expected_pages)
    assert body["debug"]["requests"] == len(calls) == 1 + sum(expected_pages.values()) == 8
    assert body["debug"]["partitions"] == 4 and body["debug"]["items_read"] == live


def test_sorted_access_falls_back_to_the_same_paged_ranges(paged):
    """900-entry boards of random clicks: the heads do not prove the answer within the sorted
    reads' budget, so the partitions not exhausted are read whole, following every page; the
    answer is the same exact one, and the store counts every request the client made."""
    t, items, ddb, calls = paged
    calls.clear()
    expected_pages, _ = window_pages(items)

    body = service(ddb, sorted_access=True).top({"from": str(FROM), "to": str(TO), "k": "100"})
    assert_exact_answer(t, body)
    assert [c[0] for c in calls].count("BatchGetItem") == 1
    index_reads = [c for c in calls if c[0] == "Query" and c[3] is not None]
    table_reads = [(pk, cont) for op, pk, cont, index in calls if op == "Query" and index is None]
    assert index_reads and {c[3] for c in index_reads} == {RANK_INDEX}
    assert {c[1] for c in index_reads} <= set(expected_pages)
    # a partition read whole from the table: one Query per page of its window range, chained
    whole = {pk for pk, _ in table_reads}
    assert whole and whole <= set(expected_pages)
    for pk in whole:
        assert sorted(cont for p, cont in table_reads if p == pk) == [False] + [True] * (expected_pages[pk] - 1), pk
    assert body["debug"]["requests"] == len(calls) == 1 + len(index_reads) + len(table_reads)
    assert body["debug"]["partitions"] == 4
