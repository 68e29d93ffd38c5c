"""Query API latency and DynamoDB requests per query, against moto's in-process mock.

Dataset: N ads (default 10k) x 25 h of minute aggregates (Zipf-skewed clicks, one hot ad,
~20k clicks per minute), reduced to what the sink stores: the 1d leaderboard of the first (whole)
day, 1h leaderboards and 1m leaderboards truncated to M (default 1000), the measured ad's series
at 1m/5m/1h/1d, and META. 25 h rather than 24 h so that `last=24h` ending mid-hour has real data
at both edges. `last=30d` reads 29 day boards: that day's and 28 before it, each that day's top
ads with every count varied by +-30 % (no minute data behind them: only the 30-day top-K reads
them); the 23 hours before them are empty.

Items are written with BatchWriteItem directly (item layout from the sink's item_for). If all
1m leaderboards would take longer than --load-budget-s to load (moto writes a few thousand items
per second), only the 1m partitions that the measured queries read are loaded; the output says
so. Queries never read the partitions that are left out, so their requests, items read and
latency are the same as with the full table (moto's Query cost grows with the items it returns).

Measured: p50/p99 wall latency in-process (moto's own request handling included), DynamoDB
requests, items read, read units (RCUs, as DynamoDB bills them: bench/read_units.py) and the
merges' own CPU time per query (thread CPU), for top-K last=5m, 1h, 24h, 30d, each on two read
paths in the same process: whole boards (the read path before the rank index, the baseline) and
sorted access through the rank index (serving.read.ranked); then a 24 h 1m series and a 30-day 1h
series of one ad.

    .venv/bin/python bench/query.py [--ads 10000] [--m 1000] [--load-budget-s 300]
        [--paths whole,sorted] [--first-page N]   # tuning: the rank index alone, its first page
    .venv/bin/python bench/query.py --smoke   # seconds: 60 ads, M=5, 1 run per query (a check
                                              # that the bench still runs; its figures are not the bench's)
"""
from __future__ import annotations

import argparse
import bisect
import heapq
import itertools
import os
import random
import statistics
import sys
import time
from collections import Counter

import in_process_aws  # noqa: F401  (first: sys.path and fake credentials, before boto3)
from read_units import ReadMeter

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from aggregate.changes import AGG, TOP, Change  # noqa: E402
from common.config import AggregationSettings, ResourceNames  # noqa: E402
from local.moto_index import install as fast_index_queries  # noqa: E402
from local.resources import create_serving_table  # noqa: E402
from query.service import QueryService  # noqa: E402
from query.windows import parse_top  # noqa: E402
from serving.keys import top_pk  # noqa: E402
from serving.read import dynamodb as store_dynamodb  # noqa: E402
from serving.read import ranked  # noqa: E402
from serving.read.dynamodb import DynamoDBQueryStore, plan_top_reads  # noqa: E402
from serving.write.dynamodb import DynamoDBServingStore, item_for  # noqa: E402

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
TABLE = ResourceNames().serving_table
HOT_AD = "ad-00000"
PAST_DAYS = 28  # day boards before the data's first whole day (Data)
WHOLE, SORTED = "whole boards (before)", "rank index (after)"
# --smoke: tiny input, one measured run per query; every figure is still printed (and tests/test_bench_smoke.py
# checks the request and item counts, which do not depend on the machine)
SMOKE = {"ads": 60, "hours": 25, "m": 5, "clicks_per_minute": 300, "load_budget_s": 0.0,
         "case_budget_s": 1.0, "max_iterations": 1}


def log(msg: str) -> None:
    print(msg, flush=True)


class Data:
    """Per-minute top-M boards and per-hour sums, generated without keeping all minute rows."""

    def __init__(self, ads: int, minutes: int, m: int, start: int, clicks_per_minute: int, seed: int):
        rng = random.Random(seed)
        self.ads = [f"ad-{i:05d}" for i in range(ads)]
        weights = [1.0 / (i + 1) ** 1.05 for i in range(ads)]
        weights[0] = sum(weights) * 0.15  # the hot ad: ~13% of all clicks
        cum = list(itertools.accumulate(weights))
        total = cum[-1]
        self.price = {ad: rng.choice([10_000, 250_000, 1_000_000, 3_500_000]) for ad in self.ads}
        self.minute_boards: dict[int, list[tuple[str, int]]] = {}
        self.hour_sums: dict[int, Counter] = {}
        self.hot_series: dict[int, int] = {}
        self.distinct_per_minute: list[int] = []
        t0 = time.perf_counter()
        for i in range(minutes):
            b = start + i * MIN
            n = int(clicks_per_minute * rng.uniform(0.8, 1.2))
            counts = Counter(self.ads[bisect.bisect(cum, rng.random() * total)] for _ in range(n))
            self.distinct_per_minute.append(len(counts))
            self.minute_boards[b] = heapq.nsmallest(m, counts.items(), key=lambda kv: (-kv[1], kv[0]))
            self.hour_sums.setdefault(b - b % HOUR, Counter()).update(counts)
            self.hot_series[b] = counts.get(HOT_AD, 0)
            if i % 300 == 299:
                log(f"  generated {i + 1}/{minutes} minutes ({time.perf_counter() - t0:.0f}s)")
        self.hour_boards = {h: heapq.nsmallest(m, c.items(), key=lambda kv: (-kv[1], kv[0]))
                            for h, c in self.hour_sums.items()}
        day_sums: dict[int, Counter] = {}
        for h, c in self.hour_sums.items():
            day_sums.setdefault(h - h % DAY, Counter()).update(c)
        self.day_boards = {d: heapq.nsmallest(m, c.items(), key=lambda kv: (-kv[1], kv[0]))
                           for d, c in day_sums.items() if len(self.hour_sums) and all(
                               d + i * HOUR in self.hour_sums for i in range(24))}  # whole days only
        # the 28 days before the first whole one, so that last=30d reads 29 populated day boards
        # as it would in production: each a copy of the first day's top 2M ads, every count
        # scaled by its own random factor in [0.7, 1.3], cut to the top M
        if self.day_boards:
            first = min(self.day_boards)
            pool = heapq.nsmallest(2 * m, day_sums[first].items(), key=lambda kv: (-kv[1], kv[0]))
            for back in range(1, PAST_DAYS + 1):
                varied = [(ad, max(1, round(c * rng.uniform(0.7, 1.3)))) for ad, c in pool]
                self.day_boards[first - back * DAY] = heapq.nsmallest(m, varied, key=lambda kv: (-kv[1], kv[0]))

    def row(self, ad: str, res: str, bucket: int, clicks: int, version: int = 1) -> dict:
        billable = clicks - clicks // 10
        p = self.price[ad]
        return {"ad_id": ad, "campaign_id": f"cmp-{int(ad[3:]) % 500}", "advertiser_id": f"adv-{int(ad[3:]) % 50}",
                "resolution": res, "bucket_start": bucket, "version": version, "clicks": clicks,
                "billable_clicks": billable, "cost_micros": clicks * p, "billable_cost_micros": billable * p}


def top_item(d: Data, res: str, bucket: int, ad: str, clicks: int) -> dict:
    return item_for(Change(TOP, True, {"kind": TOP, **d.row(ad, res, bucket, clicks, 2)}), 8 * 86400)


STORED: dict[tuple[str, str], dict] = {}  # every item written, for the read units


def write(ddb, items, label: str, started: float, total_so_far: list[int]) -> float:
    """BatchWriteItem in 25s; returns items/s."""
    t0 = time.perf_counter()
    STORED.update({(it["pk"]["S"], it["sk"]["S"]): it for it in items})
    for i in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": it}} for it in items[i : i + 25]]
        while batch:
            batch = ddb.batch_write_item(RequestItems={TABLE: batch}).get("UnprocessedItems", {}).get(TABLE, [])
        total_so_far[0] += len(items[i : i + 25])
        if (i // 25) % 2000 == 1999:
            log(f"  loaded {total_so_far[0]:,} items ({time.perf_counter() - started:.0f}s)")
    elapsed = time.perf_counter() - t0
    log(f"  {label}: {len(items):,} items in {elapsed:.1f}s")
    return len(items) / max(elapsed, 1e-9)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ads", type=int, default=10_000)
    ap.add_argument("--hours", type=int, default=25)
    ap.add_argument("--m", type=int, default=1000, help="leaderboard size M")
    ap.add_argument("--clicks-per-minute", type=int, default=20_000)
    ap.add_argument("--load-budget-s", type=float, default=300)
    ap.add_argument("--case-budget-s", type=float, default=60, help="time per measured query kind")
    ap.add_argument("--max-iterations", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--paths", default="whole,sorted",
                    help="read paths to run: whole (the baseline), sorted (the rank index); sorted "
                         "alone is for tuning the rank index's page sizes (no baseline to compare)")
    ap.add_argument("--first-page", type=int, default=None,
                    help="entries per bucket of a partition in the first round "
                         f"(serving.read.ranked.FIRST_PAGE_PER_BUCKET, {ranked.FIRST_PAGE_PER_BUCKET})")
    ap.add_argument("--smoke", action="store_true", help="tiny input, seconds: " + ", ".join(
        f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{k.replace('_', '-')} {v}"
        for k, v in SMOKE.items()))
    args = ap.parse_args()
    if args.smoke:
        for k, v in SMOKE.items():
            setattr(args, k, v)
    chosen_paths = {WHOLE if name == "whole" else SORTED if name == "sorted" else ap.error(
        f"--paths: unknown path {name!r}") for name in args.paths.split(",")}
    if args.first_page is not None:
        ranked.FIRST_PAGE_PER_BUCKET = args.first_page

    minutes = args.hours * 60
    start = 1_795_000_000_000 - 1_795_000_000_000 % DAY
    now = start + minutes * MIN - 28 * MIN - 13_000  # mid-hour: every window has edge minutes
    log(f"query bench: {args.ads:,} ads x {args.hours} h of minute aggregates, M={args.m}, "
        f"~{args.clicks_per_minute:,} clicks/min (moto in-process, {os.cpu_count()} cores)")
    t0 = time.perf_counter()
    d = Data(args.ads, minutes, args.m, start, args.clicks_per_minute, args.seed)
    full_boards = sum(len(v) for v in d.minute_boards.values())
    log(f"generated in {time.perf_counter() - t0:.0f}s: {statistics.mean(d.distinct_per_minute):.0f} distinct "
        f"ads/minute on average; {full_boards:,} 1m leaderboard entries, "
        f"{sum(len(v) for v in d.hour_boards.values()):,} 1h leaderboard entries, "
        f"{sum(len(v) for v in d.day_boards.values()):,} 1d leaderboard entries")

    cases = [("top last=5m", {"last": "5m", "k": "10"}), ("top last=1h", {"last": "1h", "k": "10"}),
             ("top last=24h", {"last": "24h", "k": "10"}), ("top last=30d", {"last": "30d", "k": "10"})]
    needed_minute_pks: set[str] = set()
    for _, params in cases:
        dec = parse_top(params, now).decomposition
        needed_minute_pks |= {p.pk for p in plan_top_reads({"1m": dec.minutes})}

    fast_index_queries()  # moto: an index Query walks its partition, not the whole table
    with mock_aws():
        ddb = boto3.client("dynamodb")
        create_serving_table(ddb, TABLE)
        loaded = [0]
        t_load = time.perf_counter()
        hour_items = [top_item(d, "1h", h, ad, c) for h, board in d.hour_boards.items() for ad, c in board]
        rate = write(ddb, hour_items, "1h leaderboards", t_load, loaded)
        day_items = [top_item(d, "1d", b, ad, c) for b, board in d.day_boards.items() for ad, c in board]
        write(ddb, day_items, "1d leaderboards", t_load, loaded)
        series_items = []
        for res, step in (("1m", MIN), ("5m", 5 * MIN), ("1h", HOUR), ("1d", DAY)):
            sums: Counter = Counter()
            for b, c in d.hot_series.items():
                sums[b - b % step] += c
            series_items += [item_for(Change(AGG, True, {"kind": AGG, **d.row(HOT_AD, res, b, c)}), 8 * 86400)
                             for b, c in sums.items()]
        write(ddb, series_items, f"series of {HOT_AD} (1m/5m/1h/1d)", t_load, loaded)
        remaining = args.load_budget_s - (time.perf_counter() - t_load)
        projected = full_boards / rate
        minute_boards = d.minute_boards
        if projected > remaining:
            minute_boards = {b: v for b, v in d.minute_boards.items() if top_pk("1m", b) in needed_minute_pks}
            left_out = full_boards - sum(len(v) for v in minute_boards.values())
            log(f"SCALED DOWN: all {full_boards:,} 1m leaderboard items would take ~{projected:.0f}s at the "
                f"measured {rate:.0f} items/s (budget {args.load_budget_s:.0f}s). Loading only the "
                f"{len(needed_minute_pks)} 1m partitions the measured queries read; {left_out:,} items "
                f"of other hours and the series of the other {args.ads - 1:,} ads "
                f"(~{args.ads * minutes:,} 1m rows at most) are not loaded.")
        else:
            log(f"loading all {full_boards:,} 1m leaderboard items (~{projected:.0f}s); the series of the "
                f"other {args.ads - 1:,} ads are not loaded (no measured query reads them)")
        minute_items = [top_item(d, "1m", b, ad, c) for b, board in sorted(minute_boards.items()) for ad, c in board]
        write(ddb, minute_items, "1m leaderboards", t_load, loaded)
        # freshness as the sink writes it (one of the slot items; the query reads all slots)
        DynamoDBServingStore(ddb, TABLE).advance_freshness(now - 20_000, now - 2_000, "shardId-000000000000")
        log(f"loaded {loaded[0] + 1:,} items in {time.perf_counter() - t_load:.0f}s")

        merge_cpu = [0.0]  # merge CPU of the query being run (the sorted path merges once per round)
        real_merge = store_dynamodb.merge_topk

        def timed_merge(*a, **kw):
            t = time.thread_time()
            try:
                return real_merge(*a, **kw)
            finally:
                merge_cpu[0] += time.thread_time() - t

        store_dynamodb.merge_topk = timed_merge
        meter = ReadMeter(ddb, STORED)
        settings = AggregationSettings(leaderboard_size=args.m)
        paths = {WHOLE: QueryService(DynamoDBQueryStore(ddb, TABLE, args.m, sorted_access=False), settings,
                                     clock_ms=lambda: now),
                 SORTED: QueryService(DynamoDBQueryStore(ddb, TABLE, args.m), settings, clock_ms=lambda: now)}
        calls = [(name, path, (lambda p=params, s=svc: s.top(p))) for name, params in cases
                 for path, svc in paths.items() if path in chosen_paths]
        svc = paths[SORTED]
        calls.append((f"series {HOT_AD} 1m x 24h", "series", lambda: svc.series(HOT_AD, {"resolution": "1m", "last": "24h"})))
        calls.append((f"series {HOT_AD} 1h x 30d", "series", lambda: svc.series(HOT_AD, {"resolution": "1h", "last": "30d"})))

        log("\n| query | read path | n | p50 ms | p99 ms | DynamoDB requests | items read | RCUs | "
            "merge CPU ms (p50) | exact | error bound |")
        log("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, path, fn in calls:
            lat: list[float] = []
            merges: list[float] = []
            case_start = time.perf_counter()
            t = time.perf_counter()
            merge_cpu[0] = 0.0
            meter.take()
            body = fn()  # warm-up: counted only when slow (connection set-up is long done by then)
            units = meter.take()
            if time.perf_counter() - t > 5:
                lat.append((time.perf_counter() - t) * 1000)
                merges.append(merge_cpu[0])
            while len(lat) < args.max_iterations and (not lat or time.perf_counter() - case_start < args.case_budget_s):
                t = time.perf_counter()
                merge_cpu[0] = 0.0
                body = fn()
                lat.append((time.perf_counter() - t) * 1000)
                merges.append(merge_cpu[0])
                units = meter.take()
            dbg = body["debug"]
            merge = f"{statistics.median(merges) * 1000:.1f}" if path != "series" else "-"
            log(f"| {name} | {path} | {len(lat)} | {pct(lat, 50):.0f} | {pct(lat, 99):.0f} | {dbg['requests']} | "
                f"{dbg.get('items_read', '-')} | {units:g} | {merge} | {body.get('exact', '-')} | "
                f"{body.get('error_bound', '-')} |")
        store_dynamodb.merge_topk = real_merge
    log("\nLatency is moto's in-process emulation, not DynamoDB's: moto scans the whole partition per "
        "Query page and serialises ~1 ms per item returned, so it grows with items read (at M=1000 a "
        "5-minute window, 5000 items, takes ~45 s). Requests and items read are what DynamoDB would do; "
        "merge CPU is the Lambda's own work after the reads. n counts measured runs (a run slower "
        "than 5 s is its own warm-up).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
