"""DynamoDB serving table -> leaderboards, series and freshness (the AWS edge of the query API).

Reads exactly the partitions a request needs (key design: serving.keys):
  top-K   1d leaderboards of the whole UTC days: `T#1d#<30-day span>`, one SK range each (<= 2)
          1h leaderboards of the other whole hours: `T#1h#<day>`, one SK range per day (<= 2)
          1m leaderboards of the edge minutes: `T#1m#<hour>`, one SK range per hour (<= 2)
          META BatchGetItem (freshness slots)
          Ranked by clicks or billable_clicks: the same partitions through the rank index, most
          clicks first, a page each per round until the answer is proven (serving.read.ranked);
          the other metrics read the SK ranges whole
  series  ONE Query on `S#<ad>#<res>`, `SC#<campaign>#<res>` or `SV#<advertiser>#<res>` (SK
          range) + META BatchGetItem; a corrected bucket's marker (cx, rt_*) is projected too
  quality late drops: one Query per day partition `L#<day>` the window touches (<= 2);
          last reconciliation: one Query on `R#reconciliation`, newest day first, Limit 1;
          clicks per IVT verdict: the leaderboards of the windows' buckets (the 5 last minutes:
          `T#1m#<hour>` <= 2, the last whole hour: `T#1h#<day>` 1), summed over their entries
Partitions are read concurrently; each Query is paginated (1 MB pages, boto3's paginator) with a
projection and, for leaderboards, a filter that drops tombstones (`del`: entries that left the
top-M); items and Queries: serving.table. Every AWS call is counted and reported: for any window
up to 24 h a top-K takes 1 + (<= 4 partitions x their pages) requests, up to 30 days 1 + (<= 6
partitions x their pages); the pages grow with M, id length and tombstones (see `serving/keys.py`).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import boto3
from botocore.config import Config

from common.config import AggregationSettings, ServingSettings
from query.quality import IvtWindow, VerdictTotals
from query.series import Bucket, SeriesData
from query.ratios import RATIOS
from query.topk import Entry, Leaderboard, TopResult, merge_top_ratio, merge_topk
from common.times import DAY_MS, RESOLUTIONS, floor_to
from query.windows import SeriesRequest, TopRequest
from serving.keys import (DEFAULT_FRESHNESS_SLOTS, DEFAULT_MINUTE_TTL_S, RECONCILIATION_PK,
                          check_freshness_slots, freshness_keys, late_pk, parse_top_sk, series_pk, top_pk, ts)
from serving import generations
from serving.read import ranked
from serving.table import (ENTRY_ATTRS, METRIC_ATTRS, SK_END, VERDICT_COUNTS, RequestCounter, is_tombstone,
                           metrics_of, num, query_range, reconciliation_of, text)
from serving.table import SERIES_ATTRS, correction_of
from serving.types import SeriesAnswer, StoreFreshness, TopAnswer

MAX_PARALLEL = 8
# the query API's series levels (query.windows.SERIES_LEVELS) -> the serving table's (serving.keys)
SERIES_LEVEL = {"ad": "agg", "campaign": "campaign", "advertiser": "advertiser"}


@dataclass(frozen=True)
class PartitionRange:
    """One Query: a partition and the inclusive SK range of the buckets [first, last] in it."""

    resolution: str
    pk: str
    first_bucket: int
    last_bucket: int

    @property
    def sk_low(self) -> str:
        return ts(self.first_bucket)

    @property
    def sk_high(self) -> str:
        return ts(self.last_bucket) + SK_END  # above every '<last_bucket>#<ad>' key


def plan_top_reads(buckets_by_resolution: Mapping[str, Sequence[int]]) -> list[PartitionRange]:
    """Group the leaderboards' buckets ({resolution: bucket starts}) by the partition that holds
    them; contiguous per partition (pure)."""
    plan: list[PartitionRange] = []
    for resolution, buckets in buckets_by_resolution.items():
        groups: dict[str, list[int]] = {}
        for b in buckets:
            groups.setdefault(top_pk(resolution, b), []).append(b)
        for pk, bs in groups.items():
            plan.append(PartitionRange(resolution, pk, min(bs), max(bs)))
    return plan


class DynamoDBQueryStore:
    kind = "dynamodb"

    def __init__(self, client, table: str, leaderboard_size: int,
                 pool: Optional[ThreadPoolExecutor] = None, freshness_slots: int = DEFAULT_FRESHNESS_SLOTS,
                 sorted_access: bool = True, minute_ttl_s: int = DEFAULT_MINUTE_TTL_S):
        """`sorted_access` False: every top-K reads whole boards (the read path before the rank
        index; bench/query.py's baseline). `minute_ttl_s`: the sink's (1m items expire after it)."""
        self._ddb, self._table, self.leaderboard_size = client, table, leaderboard_size
        self.minute_retention_ms = minute_ttl_s * 1000
        self.sorted_access = sorted_access
        self._freshness_slots = check_freshness_slots(freshness_slots)
        self._pool = pool or ThreadPoolExecutor(MAX_PARALLEL, thread_name_prefix="query")

    @classmethod
    def from_env(cls) -> "DynamoDBQueryStore":
        config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2,
                        read_timeout=5, max_pool_connections=MAX_PARALLEL + 2)
        serving = ServingSettings.from_env()  # SERVING_TABLE, FRESHNESS_SLOTS
        return cls(boto3.client("dynamodb", config=config), serving.require("serving_table"),
                   AggregationSettings.from_env().leaderboard_size,
                   freshness_slots=serving.freshness_slots, minute_ttl_s=serving.minute_ttl_s)

    # -- reads ---------------------------------------------------------------------------------
    def _entries(self, counter: RequestCounter, pk: str, sk_low: str, sk_high: str,
                 skip_tombstones: bool) -> list[dict]:
        return query_range(self._ddb, self._table, pk, sk_low, sk_high,
                           attrs=(*ENTRY_ATTRS, *generations.READ_ATTRS),
                           skip_tombstones=skip_tombstones, counter=counter)

    def _meta(self, counter: RequestCounter) -> StoreFreshness:
        """All freshness slots in one BatchGetItem (retrying unprocessed keys); the maxima."""
        request = {self._table: {"Keys": [{k: {"S": v} for k, v in key.items()} for key in freshness_keys(self._freshness_slots)],
                                 "ProjectionExpression": "wm, me"}}
        items: list[dict] = []
        while request:
            counter.add()
            page = self._ddb.batch_get_item(RequestItems=request)
            items.extend(page.get("Responses", {}).get(self._table, []))
            request = page.get("UnprocessedKeys") or None
        wms = [int(i["wm"]["N"]) for i in items if "wm" in i]
        mes = [int(i["me"]["N"]) for i in items if "me" in i]
        return StoreFreshness(max(wms, default=None), max(mes, default=None))

    def freshness(self) -> tuple[StoreFreshness, int]:
        counter = RequestCounter()
        return self._meta(counter), counter.n

    def _merge(self, req: TopRequest, boards) -> TopResult:
        if req.metric in RATIOS:
            return merge_top_ratio(boards, req.k, RATIOS[req.metric], req.min_volume,
                                   self.leaderboard_size, req.campaign_id, req.advertiser_id)
        return merge_topk(boards, req.k, req.metric, self.leaderboard_size,
                          req.campaign_id, req.advertiser_id)

    def top(self, req: TopRequest) -> TopAnswer:
        if self.sorted_access and req.metric in ranked.SORTED_METRICS:
            return self._top_sorted(req)
        return self._top_whole(req)

    def _top_sorted(self, req: TopRequest) -> TopAnswer:
        """Sorted access through the rank index (serving.read.ranked)."""
        d = req.decomposition
        buckets = d.by_resolution()
        plan = plan_top_reads(buckets)
        counter = RequestCounter()
        meta_f = self._pool.submit(self._meta, counter)
        cursors = [ranked.Cursor(p.resolution, p.pk, p.first_bucket, p.last_bucket) for p in plan]

        def read_whole(c: ranked.Cursor) -> int:
            c.items = self._entries(counter, c.pk, ts(c.first_bucket), ts(c.last_bucket) + SK_END, True)
            return len(c.items)

        result, items_read, rounds = ranked.sorted_top(
            cursors, buckets, lambda c, limit: ranked.read_page(self._ddb, self._table, c, limit, counter),
            read_whole, lambda boards: self._merge(req, boards), self._pool.submit, self.leaderboard_size)
        return TopAnswer(result, meta_f.result(), counter.n, {
            "partitions": len(plan), "items_read": items_read, "buckets": d.counts(), "rounds": rounds,
            "partial_partitions": sum(not c.exhausted for c in cursors),  # proven before their end
            "truncated_buckets": result.truncated_buckets, "leaderboard_size": self.leaderboard_size,
        })

    def _top_whole(self, req: TopRequest) -> TopAnswer:
        """Every entry of every board of the window (ratios and metrics a board ordered by clicks
        does not bound: sorted access could not stop early)."""
        d = req.decomposition
        buckets = d.by_resolution()
        plan = plan_top_reads(buckets)
        counter = RequestCounter()
        meta_f = self._pool.submit(self._meta, counter)
        futures = [(p, self._pool.submit(self._entries, counter, p.pk, p.sk_low, p.sk_high, True))
                   for p in plan]
        boards = {(res, b): Leaderboard(res, b) for res, bs in buckets.items() for b in bs}
        items_read = 0
        for p, f in futures:
            items = f.result()
            items_read += len(items)
            for item in generations.committed(items):  # a rebuilt bucket: its new board only
                if is_tombstone(item):  # (in case the filter was not applied)
                    continue
                bucket, ad = parse_top_sk(item["sk"]["S"])
                board = boards.get((p.resolution, bucket))
                if board is None:  # outside the window (cannot happen with exact SK ranges)
                    continue
                board.entries.append(Entry(ad, **metrics_of(item), campaign_id=text(item, "cmp"),
                                           advertiser_id=text(item, "adv")))
        fresh = meta_f.result()
        result = self._merge(req, list(boards.values()))
        return TopAnswer(result, fresh, counter.n, {
            "partitions": len(plan), "items_read": items_read, "buckets": d.counts(),
            "truncated_buckets": result.truncated_buckets, "leaderboard_size": self.leaderboard_size,
        })

    def series(self, req: SeriesRequest) -> SeriesAnswer:
        step = RESOLUTIONS[req.resolution]
        counter = RequestCounter()
        meta_f = self._pool.submit(self._meta, counter)
        pk = series_pk(req.entity_id, req.resolution, SERIES_LEVEL[req.level])
        items = query_range(self._ddb, self._table, pk, ts(req.window.start), ts(req.window.end - step),
                            attrs=SERIES_ATTRS, counter=counter)
        data = SeriesData()
        for item in items:
            start = int(item["sk"]["S"])
            data.buckets[start] = Bucket(**metrics_of(item))
            marker = correction_of(item)
            if marker:
                data.corrections[start] = marker
            data.campaign_id = data.campaign_id or text(item, "cmp")
            data.advertiser_id = data.advertiser_id or text(item, "adv")
        return SeriesAnswer(data, meta_f.result(), counter.n, {"items_read": len(items)})

    def verdict_totals(self, windows: Sequence[IvtWindow]) -> tuple[list[VerdictTotals], int]:
        """Per window, the sums of its buckets' leaderboard entries (tombstones dropped) and
        whether every board is complete (query.topk's rule: then it lists every ad with clicks
        in its bucket). One Query per partition of each window, concurrently."""
        counter = RequestCounter()
        attrs = (*(METRIC_ATTRS[m] for m in VERDICT_COUNTS), *generations.READ_ATTRS)
        reads = []
        for w in windows:
            buckets = tuple(range(w.start, w.end, RESOLUTIONS[w.resolution]))
            plan = plan_top_reads({w.resolution: buckets})
            reads.append((w, buckets, [
                (p, self._pool.submit(query_range, self._ddb, self._table, p.pk, p.sk_low, p.sk_high,
                                      attrs=attrs, skip_tombstones=True, counter=counter))
                for p in plan]))
        out = []
        for w, buckets, futures in reads:
            boards = {b: Leaderboard(w.resolution, b) for b in buckets}
            for _, f in futures:
                # tombstones: dropped by the Query's filter; rebuilt buckets: their new board
                for item in generations.committed(f.result()):
                    bucket, ad = parse_top_sk(item["sk"]["S"])
                    if bucket in boards:
                        boards[bucket].entries.append(Entry(ad, **metrics_of(item)))
            entries = [e for board in boards.values() for e in board.entries]
            out.append(VerdictTotals(
                **{m: sum(getattr(e, m) for e in entries) for m in VERDICT_COUNTS},
                complete=all(board.is_complete(self.leaderboard_size) for board in boards.values())))
        return out, counter.n

    def late_dropped(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """(clicks dropped as late for minute buckets in [start, end), requests)."""
        counter = RequestCounter()
        days = range(floor_to(start_ms, DAY_MS), end_ms, DAY_MS)
        futures = [self._pool.submit(self._late_partition, counter, late_pk(day), start_ms, end_ms)
                   for day in days]
        return sum(f.result() for f in futures), counter.n

    def _late_partition(self, counter: RequestCounter, pk: str, start_ms: int, end_ms: int) -> int:
        items = query_range(self._ddb, self._table, pk, ts(start_ms), ts(end_ms - 1) + SK_END,
                            attrs=("ld",), counter=counter)
        return sum(num(item, "ld") for item in items)

    def last_reconciliation(self) -> tuple[Optional[dict], Optional[int], int]:
        """(summary of the newest reconciled day, when it finished (ms), requests): one page."""
        page = self._ddb.query(TableName=self._table, KeyConditionExpression="pk = :pk",
                               ExpressionAttributeValues={":pk": {"S": RECONCILIATION_PK}},
                               ScanIndexForward=False, Limit=1)
        items = page.get("Items", [])
        if not items:
            return None, None, 1
        return (*reconciliation_of(items[0]), 1)
