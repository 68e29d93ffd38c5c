"""Top-K leaderboards with sorted access: each partition of a window's boards is read through the
rank index (serving.keys.RANK_INDEX: most clicks first) a page at a time, and reading stops as
soon as the merge proves the answer exact. Why: a bucket's M entries are mostly ads far below the
k-th, and the proof needs only the heads of the boards (issue 22).

Rounds: the first reads FIRST_PAGE_PER_BUCKET entries per bucket of every partition (all
partitions concurrently); each later one the next pages of the partitions not yet exhausted,
sharing what is left of ITEM_BUDGET. Past the budget or MAX_ROUNDS, the partitions not exhausted
are read whole from the table (the window's SK ranges, as without the index), so an answer is
never less exact than whole boards give: only its cost is then today's.

A partition read to its end gives whole boards; one stopped gives each window bucket in it
`read_to` = the clicks of the last entry read (query.topk: every entry not read has at most as
many). Generations: commit markers (rk '!') come first in every partition, so
serving.generations.committed applies to what was read. The index is eventually consistent: an
entry seen twice (its old and new rank) keeps its newest version.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from common.times import RESOLUTIONS
from query.topk import INF, Entry, Leaderboard, TopResult
from serving import generations
from serving.keys import LEADERBOARD_RESOLUTIONS, RANK_ATTR, RANK_INDEX, RANK_MARKER, clicks_of_rank, parse_top_sk
from serving.table import RANK_PROJECTION, RequestCounter, metrics_of, text

SORTED_METRICS = ("clicks", "billable_clicks")  # bounded by a board ordered by clicks, per click 1
FIRST_PAGE_PER_BUCKET = 20
ITEM_BUDGET = 5000
MAX_ROUNDS = 3


@dataclass
class Cursor:
    """One partition's read through the index (or, past the budget, from the table)."""

    resolution: str
    pk: str
    first_bucket: int
    last_bucket: int
    items: list[dict] = field(default_factory=list)
    start_key: Optional[dict] = None
    exhausted: bool = False
    read_to: float = INF  # clicks of the last entry read (INF: none yet)

    @property
    def window_buckets(self) -> int:
        return (self.last_bucket - self.first_bucket) // RESOLUTIONS[self.resolution] + 1

    @property
    def buckets_per_partition(self) -> int:
        return LEADERBOARD_RESOLUTIONS[self.resolution] // RESOLUTIONS[self.resolution]


def read_page(ddb, table: str, cursor: Cursor, limit: int, counter: RequestCounter) -> int:
    """The cursor's next page (Limit `limit`) from the rank index; items read."""
    names = {"#sk": "sk", "#rk": RANK_ATTR, **{f"#{a}": a for a in RANK_PROJECTION}}
    request = {"TableName": table, "IndexName": RANK_INDEX, "KeyConditionExpression": "pk = :pk",
               "ExpressionAttributeValues": {":pk": {"S": cursor.pk}},
               "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names,
               "Limit": max(1, limit)}
    if cursor.start_key:
        request["ExclusiveStartKey"] = cursor.start_key
    counter.add()
    page = ddb.query(**request)
    items = page.get("Items", [])
    cursor.items.extend(items)
    entries = [i for i in items if i.get(RANK_ATTR, {}).get("S", RANK_MARKER) != RANK_MARKER]
    if entries:
        cursor.read_to = clicks_of_rank(entries[-1][RANK_ATTR]["S"])
    cursor.start_key = page.get("LastEvaluatedKey")
    cursor.exhausted = not cursor.start_key
    return len(items)


def boards_of(cursors: list[Cursor], buckets: dict[str, tuple[int, ...]]) -> list[Leaderboard]:
    """The window's boards from what the cursors read: committed generation, newest version of
    each (bucket, ad), tombstones never (not in the index); stopped partitions set read_to."""
    boards = {(res, b): Leaderboard(res, b) for res, bs in buckets.items() for b in bs}
    for c in cursors:
        newest: dict[tuple[int, str], dict] = {}
        for item in generations.committed(c.items):
            if item.get("del", {}).get("BOOL"):
                continue
            key = parse_top_sk(item["sk"]["S"])
            if (c.resolution, key[0]) not in boards:
                continue  # another bucket of the partition
            old = newest.get(key)
            if old is None or int(old["v"]["N"]) < int(item["v"]["N"]):
                newest[key] = item
        for (bucket, ad), item in newest.items():
            boards[(c.resolution, bucket)].entries.append(
                Entry(ad, **metrics_of(item), campaign_id=text(item, "cmp"), advertiser_id=text(item, "adv")))
        if not c.exhausted:
            for b in range(c.first_bucket, c.last_bucket + 1, RESOLUTIONS[c.resolution]):
                boards[(c.resolution, b)].read_to = c.read_to
    return list(boards.values())


def sorted_top(cursors: list[Cursor], buckets: dict[str, tuple[int, ...]],
               read: Callable[[Cursor, int], int], read_whole: Callable[[Cursor], int],
               merge: Callable[[list[Leaderboard]], TopResult], submit,
               leaderboard_size: int) -> tuple[TopResult, int, int]:
    """(the answer, items read, rounds). `read(cursor, limit)`: a page; `read_whole(cursor)`:
    replace its items by the table's window range; `submit`: an executor's submit (concurrency)."""
    items_read, rounds = 0, 0
    limits = {id(c): c.buckets_per_partition * (FIRST_PAGE_PER_BUCKET + 1) for c in cursors}
    # a partition whose window buckets hold fewer entries than a first page reads (small M, few
    # buckets of a partition in the window) is read whole at once: cheaper, and never partial
    small = [c for c in cursors if c.window_buckets * leaderboard_size <= limits[id(c)]]
    for c, f in [(c, submit(read_whole, c)) for c in small]:
        items_read += f.result()
        c.exhausted = True
    while True:
        active = [c for c in cursors if not c.exhausted]
        if not active:
            break
        if rounds == MAX_ROUNDS or items_read >= ITEM_BUDGET:
            for c, f in [(c, submit(read_whole, c)) for c in active]:
                items_read += f.result()
                c.exhausted = True
            break
        if rounds:
            share = max(1, (ITEM_BUDGET - items_read) // len(active))
            limits = {id(c): share for c in active}
        items_read += sum(f.result() for f in [submit(read, c, limits[id(c)]) for c in active])
        rounds += 1
        result = merge(boards_of(cursors, buckets))
        if result.exact or all(c.exhausted for c in cursors):
            return result, items_read, rounds
    return merge(boards_of(cursors, buckets)), items_read, rounds
