"""The demo's rebuild section damages the serving table and first checks that the query API
answers wrong (local/demo_rebuild.py). That check must stay true of the read path: top-K reads
leaderboards through the rank index, so a damage that writes an entry without its rank key is
invisible and the demo's check fails (it did, after the index came in). Here, in-process moto:
a minute's board as the sink writes it, the demo's own `damage`, and the query API's top-10."""
from __future__ import annotations

import boto3

import local.demo_rebuild as demo
from aggregate.changes import AGG, TOP, Change
from common.config import AggregationSettings
from local.resources import create_serving_table
from query.service import QueryService
from serving.read.dynamodb import DynamoDBQueryStore
from serving.write.dynamodb import DynamoDBServingStore

B = 1_796_639_640_000  # a minute
BOARD = [("ad-0000", 30), ("ad-0001", 20), ("ad-0002", 10)]


H = B - B % 3_600_000  # an hour


def serving_with_boards(resolution: str, buckets: tuple[int, ...], now_ms: int):
    """In-process moto: BOARD's entries on `resolution` boards of `buckets`, as the sink writes
    them (series + leaderboard rows); returns the DynamoDB client and the query service."""
    from local.moto_index import install

    install()  # moto: an index Query walks its partition (as the bench and query tests do)
    ddb = boto3.client("dynamodb")
    create_serving_table(ddb, "t")
    rows = []
    for ad, clicks in BOARD:
        for b in buckets:
            row = {"kind": AGG, "ad_id": ad, "campaign_id": "c", "advertiser_id": "v",
                   "resolution": resolution, "bucket_start": b, "version": 1, "clicks": clicks,
                   "billable_clicks": clicks, "cost_micros": clicks, "billable_cost_micros": clicks}
            rows += [Change(AGG, True, row), Change(TOP, True, {**row, "kind": TOP})]
    assert DynamoDBServingStore(ddb, "t").apply_many(rows) == [None] * len(rows)
    return ddb, QueryService(DynamoDBQueryStore(ddb, "t", 1000), AggregationSettings(),
                             clock_ms=lambda: now_ms)


def top(service, start: int, end: int) -> list[tuple[str, int]]:
    answer = service.top({"from": str(start), "to": str(end), "k": "10"})
    return [(i["ad_id"], i["total"]) for i in answer["items"]]


def test_the_demos_damage_puts_the_ghost_on_top_of_the_query_apis_answer(aws, monkeypatch):
    _, service = serving_with_boards("1m", (B, B + 60_000), B + 3_600_000)
    assert top(service, B, B + 120_000) == [("ad-0000", 60), ("ad-0001", 40), ("ad-0002", 20)]
    monkeypatch.setattr(demo, "read_series", lambda table, ad, res: {B: 30, B + 60_000: 30})
    demo.damage("t", B, B + 120_000)
    assert top(service, B, B + 120_000)[0] == (demo.GHOST, 99_999)


def test_the_ghost_goes_on_the_first_board_the_query_reads():
    """A range holding a whole hour is read from its 1h board: a ghost on one of that hour's
    minutes is invisible (the demo's check failed when its range started <= 14 min before an hour)."""
    assert demo.ghost_board(H - 9 * 60_000, H + 3_600_000 + 5 * 60_000) == ("1m", H - 9 * 60_000)
    assert demo.ghost_board(H, H + 3_600_000 + 5 * 60_000) == ("1m", H + 3_600_000)
    assert demo.ghost_board(H, H + 2 * 3_600_000) == ("1h", H)


def test_the_ghost_leads_a_range_of_whole_hours(aws, monkeypatch):
    _, service = serving_with_boards("1h", (H,), H + 3 * 3_600_000)
    assert top(service, H, H + 3_600_000) == [("ad-0000", 30), ("ad-0001", 20), ("ad-0002", 10)]
    monkeypatch.setattr(demo, "read_series", lambda table, ad, res: {H + 60_000 * i: 1 for i in range(60)})
    demo.damage("t", H, H + 3_600_000)
    assert top(service, H, H + 3_600_000)[0] == (demo.GHOST, 99_999)
