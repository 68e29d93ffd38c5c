"""Billing recompute: the Spark job's rows per CPU-second and the time of one day at the seed's volume.

    .venv-glue/bin/python bench/billing.py [--clicks 10000000] [--impressions-per-click 5]
           [--cache /tmp/billing-bench-cache] [--engines spark,duckdb] [--shuffle-partitions 8]
           [--driver-memory 3g]
    .venv-glue/bin/python bench/billing.py --smoke   # seconds: 20k clicks and 1M impressions in
           a fresh temporary cache, 2 shuffle partitions, 1g driver; same steps, same row-for-row
           check (it runs; the times are not the bench's)

Headline (issue 21): Spark's rows per CPU-second (archive rows the job reads for day D / CPU
seconds of the Spark child's whole process tree, JVM and SparkContext start-up included) and
the time to recompute one day at the seed's 8.6B clicks/day (seed 004) on the Glue workers the
capacity planner picks for that volume (`python -m capacity plan --rate 99537 --peak 500000`:
billing_glue_workers x billing_glue_worker_type), goal < 30 min (seed 002's recompute RTO):
   rows of a seed day = the bench's rows read x (8.6B / 24 clicks per arrival hour) / (the
   bench's clicks per input hour): the same 27 input + 24 lookback click hours and, with
   events, the same impressions per click as the run;
   minutes = those rows / Spark's rows per CPU-second / ((workers - 1) x vCPU per worker): Glue
   runs the driver on one worker, the executors on the others; throughput per vCPU is assumed
   to scale linearly (S3 reads and a networked shuffle instead of local disk are not measured
   here). It says whether that meets the goal and how many workers would.
DuckDB runs the same computation as the reference engine for correctness: every output must be
identical row for row (below); its time is printed, not compared (the Spark / DuckDB ratio was
the headline until issue 21).

1. Generates the archive once (cached under --cache, keyed by N and GEN_VERSION) in its layout:
   raw/clicks/dt=YYYY-MM-DD/hr=HH/*.parquet by arrival time, all 15 columns of the click record
   (common/records.py CLICK_RECORD_SCHEMA, impression_id and issued_at included), covering the
   51 arrival hours the job reads for day D: its 27 input partitions (D-1 23 .. D+1 01, ~N rows)
   and the 24 lookback partitions before them (D-2 23 .. D-1 22, the impression_repeat lookback,
   ~0.9 N more rows at the same hourly rate). What is in it, per unique click:
   * users (~0.7 N, ~2.7 clicks each) with one address and one user agent each. Addresses:
     random IPv4 (~2.5 % of those fall in a data-centre range by chance), 2 % picked inside a range of
     ivt_data/datacenter_ipv4.csv (VPN / hosting egress), 8 % behind shared carrier-grade NAT
     addresses (100.64/10, ~8 users each), 6 % IPv6, 0.5 % IPv4-mapped IPv6 (`::ffff:a.b.c.d`),
     0.3 % none. User agents: ~300 browser / web-view / SDK strings (none a bot; Zipf
     popularity), 1.5 % of users one of 40 crawler agents built from plain-text patterns of
     ivt_data/crawler_user_agents.json (each checked to match), 0.3 % none.
   * 75 % carry a click token: a unique impression_id and issued_at = ingest_time - a human
     delay (log-normal, median 6 s), 0.5 % of them too fast (-3 s .. 1 s).
   * 1.5 % impression repeats: another click on an earlier click's impression (same token;
     70 % the same user, 30 % a replay from another user), 0.2 s .. 10 s (50 %), .. 30 min
     (35 %) or .. 20 h (15 %: past the stream's impression memory, and from the lookback days).
   * 3 % user repeats: the same user and ad, a new impression (or, 25 %, no token), 0..20 s
     later.
   * IP bursts: one per 500 rows (at most 4,000) groups of 8..16 clicks from one address (half of them in
     a data-centre range) on random ads within one second (threshold: more than 10).
   * skewed ad ids (20,000 ads); ingest 0.3 s after the event on average, 1 % of client clocks
     up to 5 min ahead, 0.2 % ingested 15 min .. 4 h late; arrival up to 90 s after ingest;
     2 % duplicate copies (a retry ingested up to 5 min later).
   And the events archive (raw/events/, common/archive.EVENTS, D's 27 input partitions; none
   with --impressions-per-click 0): N x impressions-per-click impressions (each clicked token's
   impression, served at its issued_at, then unclicked ones on skewed ads), 0.2 % ingested
   late, 5 % resent up to 5 min later; conversions of 2 % of the clicks (their own day's or the
   lookback days'): 50 % token + click_id, 20 % token only (the impression names the click),
   30 % click_id only, 3 % of all naming a click never archived, 3 % before their click, the
   rest 0..6 h after it, 10 % resent up to 2 h later.
   And the budget history (budgets.json beside the archives, made from them once: rerunnable on
   an older cache): 60 % of D's campaigns get a daily budget of 0.3 .. 1.3 x their clicks' cost
   on D (so about half of them run past it), set on D-3; a third of those had a higher one first
   and were lowered at D 12:00; some get a version set exactly at D+1 00:00 or later (not D's).
2. Runs each engine in its own child process (cold: JVM / DuckDB start included in "total"),
   sampling the RSS of the child's whole process tree (python + JVM) every 250 ms.
3. Both write D's hourly rows (transform.OUTPUT_COLUMNS without hour and dt), its campaign_spend
   rows and, with events, its events_hourly and conversions rows (glue_jobs/billing/outputs.py)
   as Parquet; the parent checks they are identical row for row and prints the verdict / reason /
   budget / attribution totals.
   Spark runs the job's own run_day (so it also writes the flagged detail, which the
   attribution reads back); no day before D is billed here, so the conversions of the lookback
   days' clicks are unverified_click in both engines.

What the DuckDB baseline computes: the job's whole computation (glue_jobs/billing/transform.py,
its docstring's steps 1-5) in SQL statements (D's clicks with verdicts as a table, then the
hourly rows; with events, glue_jobs/billing/events.py's steps 1-4 over that table: dedup,
attribution, events_hourly and conversions): the same 27 input + 24 lookback partitions (the
lookback with the job's LOOKBACK_COLUMNS, user_agent and issued_at null), dedup by click_id
(count and first copy by DEDUP_ORDER) over both, D's clicks plus the earlier clicks with an
impression_id, the six rule columns, verdict (billable = valid), the diagnostics (late, the
arrival-order elections, impression memory), the budgets (each campaign's version set last
before D's end, then a running sum of the valid clicks' cost per campaign in ORDER against it:
over_budget, not billed) and the hourly and campaign sums. Rule by rule:
   bot_ua             regexp_matches (RE2) of the same alternation of the 1,504 patterns
                      (ivt_inputs.bot_regex without its `(?d)` flag, which RE2 lacks), once per
                      distinct user agent, joined back. RE2 and java.util.regex (UNIX_LINES)
                      agree on these patterns for agents without a line terminator (checked
                      once, 2026-12-06, on the 2,123 example agents of the pinned
                      crawler-user-agents package: the same matches as ivt.BotMatcher); they
                      differ on `$` before a final '\\n' (RE2: end of text only), which no
                      generated agent has. The job's semantics at line ends are tests/glue's.
   datacenter_ip      the ip's IPv4 integer from the same regexes (ivt_inputs: Python's strip,
                      strict dotted quad, IPv4-mapped forms, scope id) run by RE2, then a join
                      on the /16 block with first <= ip <= last, as the job.
   impression_repeat, user_repeat (row_number by ORDER), ip_burst (count per ip and epoch-
   aligned window, all ads), too_fast: the same window functions and expressions.
So the reference is the same computation, not a simplification: the two engines' rows must be
identical.

Measured before issue 21 (the Spark / DuckDB ratio was the headline then; the current figures
are in README.md's Benchmarks section), 2026-12-06 (the IVT job: 4 hash exchanges + 1 small one + 2 broadcasts; 2-core machine
shared with other jobs, so wall times move with the load; CPU seconds of the process tree are
the steadier figure), `.venv-glue/bin/python bench/billing.py` (10M): 18.9M rows in the 51
partitions (10.0M in D's 27 input ones), 8.72M clicks of D (valid 7.99M, suspect 430k, invalid
290k), 479,990 hourly rows, results identical; load average 5.3 at the start, 2.9 at the end:
  Spark 169.4 s wall (work 161.7 s) / 203.5 CPU-s / 2.87 GiB   DuckDB 65.2 s (64.4 s) / 76.9 CPU-s
  / 5.29 GiB: 2.60x wall, 2.65x CPU (one run).
(These figures and the ones below predate the budgets: the bench now also caps campaigns
(module doc, 1.), which costs the Spark job one more hash exchange, by campaign_id, and DuckDB
one more window; not measured at 10M yet.)
Against the old job on the old data (below: ~100 vs ~25 CPU-s), Spark spends 2x the CPU and
DuckDB 3x (the lookback's 8.9M more rows, two more exchanges, the rules), so the ratio fell.

With events (issue 19), 2026-12-06, on a machine shared with other test runs (load average 9-10
on 2 cores: wall times are inflated, one run each): `--clicks 200000 --impressions-per-click 50`
(377,565 click rows, 10.37M event rows: 8.79M impressions of D, 3,422 conversions of D:
attributed 2,562, invalid_click 280, outside_window 111, unknown_click 99, unverified_click
370), all three outputs identical: Spark 123.7 s wall (work 118.3 s) / 80.3 CPU-s / 2.29 GiB,
DuckDB 33.7 s (32.4 s) / 18.5 CPU-s / 3.87 GiB: 3.67x wall, 4.35x CPU; the same clicks
without events (--impressions-per-click 0): Spark 44.4 s / 28.3 CPU-s, DuckDB 4.6 s / 2.4 CPU-s,
so the events part (10M impression rows, the attribution's 195-partition click scan) costs
Spark ~80 s / ~52 CPU-s and DuckDB ~29 s / ~16 CPU-s here. `--smoke` (20k clicks, 1M
impressions): Spark 53.1 s / 38.2 CPU-s, DuckDB 7.6 s / 3.0 CPU-s. The 10M-click run with events
(50M impressions at the default 5 per click) was not made.

History (the job before the IVT rules: a repeat rule per (user, ad, 10 s) and an IP burst per
(ip, ad, second), two exchanges, no lookback; 10M clicks in the 27 input hours, 479,986 hourly
rows, identical results), 2026-11-23: Spark 51-56 s wall / 93-103 CPU-s / 2.2-2.3 GiB, DuckDB
14-15 s / 25-28 CPU-s / 1.7 GiB, 3.4-3.9x wall on a quiet machine (2.6x at load ~4). Spark's
fixed cost (JVM, SparkContext, JIT, codegen) was ~23 CPU-s; a Flight Recorder profile
(--java-opts="-XX:+UseParallelGC -XX:StartFlightRecording=filename=/tmp/bill.jfr,settings=profile",
then `jfr print --events jdk.ExecutionSample`) put ~37 % of the samples in the sorts, ~13 % in
the hourly hash aggregate, ~10 % in WindowExec, ~8 % decoding dictionary-encoded Parquet strings:
Spark's row-at-a-time sort/window engine against DuckDB's vectorised hash-partitioned windows.
Tried then without gain (CPU-s within the run-to-run spread or worse): shuffle compression off,
AQE off, 2/4/16 shuffle partitions, C1-only JIT, a hash-count pre-pass before the click_id
shuffle, off-heap Tungsten memory, spark.shuffle.file.buffer=1m + lz4 blockSize 128k,
maxPartitionBytes 32m, snappy shuffle codec, dedup by groupBy + min(struct), -Xmn2g, SerialGC,
-XX:-DontCompileHugeMethods.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "functions")]

DAY = date(2026, 3, 10)
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
GEN_VERSION = 4
N_ADS = 20_000
# the headline's extrapolation (also bench/rebuild.py's)
SEED_CLICKS_PER_DAY = 8_600_000_000  # seed 004: "8.6 billion clicks a day, 500K per second at peak"
SEED_PEAK = 500_000
GOAL_S = 30 * 60  # seed 002: historical recompute RTO < 30 min
GLUE_VCPU_PER_WORKER = {"G.1X": 4, "G.2X": 8, "G.4X": 16, "G.8X": 32}


# ---------------------------------------------------------------------------- data

def user_agents() -> tuple[list[str], list[str]]:
    """(browser agents, ~300, most popular first; crawler agents, 40). Every crawler agent
    contains a plain-text pattern of the crawler list; no browser agent matches any pattern."""
    from common import ivt

    win, mac = "Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7"
    phones = ["Pixel 8", "SM-S918B", "SM-A546B", "Redmi Note 12", "moto g54 5G", "CPH2451"]
    browsers = []
    for v in range(131, 109, -1):  # newest first: the popular ones
        chrome = f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0"
        browsers += [f"Mozilla/5.0 ({win}) {chrome} Safari/537.36",
                     f"Mozilla/5.0 (Linux; Android {10 + v % 5}; K) {chrome} Mobile Safari/537.36",
                     f"Mozilla/5.0 ({mac}) {chrome} Safari/537.36",
                     f"Mozilla/5.0 ({win}) {chrome} Safari/537.36 Edg/{v}.0.{v * 13}.{v % 50}",
                     f"Mozilla/5.0 (X11; Linux x86_64; rv:{v - 2}.0) Gecko/20100101 Firefox/{v - 2}.0",
                     f"Mozilla/5.0 ({win}; rv:{v - 2}.0) Gecko/20100101 Firefox/{v - 2}.0"]
        browsers += [f"Mozilla/5.0 (Linux; Android {10 + (v + i) % 5}; {p}; wv) AppleWebKit/537.36 (KHTML, "
                     f"like Gecko) Version/4.0 Chrome/{v}.0.{v * 31 + i}.{i * 7} Mobile Safari/537.36"
                     for i, p in enumerate(phones)]
    for major in range(18, 14, -1):
        for minor in range(7):
            safari = f"AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{major}.{minor}"
            browsers += [f"Mozilla/5.0 (iPhone; CPU iPhone OS {major}_{minor} like Mac OS X) {safari} "
                         f"Mobile/15E148 Safari/604.1",
                         f"Mozilla/5.0 (iPad; CPU OS {major}_{minor} like Mac OS X) {safari} "
                         f"Mobile/15E148 Safari/604.1",
                         f"Mozilla/5.0 ({mac}) {safari} Safari/605.1.15"]
    browsers += [f"clickagg-sdk-{os_}/{x}.{y}" for os_ in ("ios", "android") for x in (3, 4) for y in range(3)]
    matcher = ivt.default_bot_matcher()
    bad = [b for b in browsers if matcher.matches(b)]
    assert not bad, bad
    plain = [p for p in ivt.load_bot_patterns() if not any(ch in p for ch in "\\^$.|?*+()[]{}")]
    crawlers = [f"Mozilla/5.0 (compatible; {p}/{i % 5 + 1}.{i % 3}; +https://crawler.example/{i})"
                for i, p in enumerate(plain[::len(plain) // 40][:40])]
    assert all(matcher.matches(c) for c in crawlers)
    return browsers[:300], crawlers


def generate(n: int, root: Path, seed: int = 42, impressions_per_click: int = 50) -> Path:
    """Write the archives (module doc, 1.) under root/raw/clicks and root/raw/events; returns the
    clicks' table root."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from common import ivt
    from common.archive import RAW_COLUMNS

    table_root = root / "raw" / "clicks"
    done = root / "_DONE"
    if done.exists():
        print(f"[gen] cached: {root} ({done.read_text().strip()})", flush=True)
        return table_root
    t0 = time.monotonic()
    rng = np.random.default_rng(seed)
    d0 = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc).timestamp() * 1000)
    lo, hi = d0 - 25 * HOUR_MS, d0 + DAY_MS + 2 * HOUR_MS  # lookback D-2 23 .. input D+1 01
    main_lo = d0 - HOUR_MS

    n_total = n * 51 // 27  # the lookback hours at the input hours' rate
    n_dup = n_total // 50
    n_unique = n_total - n_dup
    n_burst_groups = min(4_000, max(10, n_total // 500))
    burst_sizes = rng.integers(8, 17, n_burst_groups)
    n_burst = int(burst_sizes.sum())
    n_user_rep = n_unique * 3 // 100
    n_imp_rep = n_unique * 15 // 1000
    n_plain = n_unique - n_burst - n_user_rep - n_imp_rep
    print(f"[gen] {n_total:,} rows over 51 arrival hours: {n_plain:,} plain, {n_imp_rep:,} impression "
          f"repeats, {n_user_rep:,} user repeats, {n_burst:,} in {n_burst_groups} ip bursts, "
          f"{n_dup:,} duplicate copies", flush=True)

    # users: one address and one agent each
    n_users = max(1_000, n_total * 10 // 27)
    ranges = np.array([(f, last) for f, last, _ in ivt.load_datacenter_ranges()], dtype=np.int64)

    def in_datacenter(k: int):
        r = ranges[rng.integers(0, len(ranges), k)]
        return r[:, 0] + (rng.random(k) * (r[:, 1] - r[:, 0] + 1)).astype(np.int64)

    def v4_text(values) -> pa.Array:
        parts = [pc.cast(pa.array((values >> shift) & 255), pa.string()) for shift in (24, 16, 8, 0)]
        return pc.binary_join_element_wise(*parts, ".")

    v4 = rng.integers(1 << 24, 224 << 24, n_users)  # 1.0.0.0 .. 223.255.255.255
    form = rng.random(n_users)
    dc = form < 0.02
    v4[dc] = in_datacenter(int(dc.sum()))
    v6 = (form >= 0.02) & (form < 0.08)
    n_v6 = int(v6.sum())
    n_pool = max(10, n_users // 100)  # shared NAT addresses, ~8 users each
    nat = (form >= 0.08) & (form < 0.16)
    mapped = (form >= 0.16) & (form < 0.165)
    no_ip = (form >= 0.165) & (form < 0.168)
    burst_v4 = rng.integers(1 << 24, 224 << 24, n_burst_groups)
    burst_dc = rng.random(n_burst_groups) < 0.5
    burst_v4[burst_dc] = in_datacenter(int(burst_dc.sum()))
    v6_words = rng.integers(0, 1 << 16, (n_v6, 4))
    ip_table = pa.concat_arrays([
        v4_text(v4),                                                          # [0, n_users)
        pc.binary_join_element_wise("::ffff:", v4_text(v4), ""),              # [n_users, 2 n_users)
        pa.array([f"2a02:{a:x}:{b:x}:{c:x}::{d:x}" for a, b, c, d in v6_words.tolist()], pa.string()),
        v4_text((100 << 24) + (64 << 16) + np.arange(n_pool, dtype=np.int64)),  # 100.64.0.0/10
        v4_text(burst_v4),
        pa.array([None], pa.string()),
    ])
    base_v6, base_nat = 2 * n_users, 2 * n_users + n_v6
    base_burst, null_ip = base_nat + n_pool, base_nat + n_pool + n_burst_groups
    user_ip = np.arange(n_users, dtype=np.int64)
    user_ip[mapped] += n_users
    user_ip[v6] = base_v6 + np.arange(n_v6)
    user_ip[nat] = base_nat + rng.integers(0, n_pool, int(nat.sum()))
    user_ip[no_ip] = null_ip

    browsers, crawlers = user_agents()
    ua_table = pa.array(browsers + crawlers + [None], pa.string())
    zipf = 1.0 / np.arange(1, len(browsers) + 1) ** 0.9
    user_ua = rng.choice(len(browsers), n_users, p=zipf / zipf.sum())
    kind = rng.random(n_users)
    bot = kind < 0.015
    user_ua[bot] = len(browsers) + rng.integers(0, len(crawlers), int(bot.sum()))
    user_ua[(kind >= 0.015) & (kind < 0.018)] = len(browsers) + len(crawlers)  # no agent

    # plain clicks
    ad = (N_ADS * rng.random(n_plain) ** 2).astype(np.int64)  # skewed: low ids are hot
    user = rng.integers(0, n_users, n_plain)
    event = rng.integers(lo, hi - 120_000, n_plain)
    imp = np.where(rng.random(n_plain) < 0.75, np.arange(n_plain), -1)  # -1: no token
    token_src = np.flatnonzero(imp >= 0)
    # impression repeats: the same token again (70 % the same user, 30 % a replay by another)
    src = token_src[rng.integers(0, len(token_src), n_imp_rep)]
    x = rng.random(n_imp_rep)
    gap = np.where(x < 0.5, rng.integers(200, 10_000, n_imp_rep),
                   np.where(x < 0.85, rng.integers(10_000, 1_800_000, n_imp_rep),
                            rng.integers(1_800_000, 20 * HOUR_MS, n_imp_rep)))
    rep_user = np.where(rng.random(n_imp_rep) < 0.7, user[src], rng.integers(0, n_users, n_imp_rep))
    imp_src = src
    # user repeats: the same user and ad, a new impression (or none), 0..20 s later
    src = rng.integers(0, n_plain, n_user_rep)
    urep_imp = np.where(rng.random(n_user_rep) < 0.75, n_plain + np.arange(n_user_rep), -1)
    # bursts: one address, random ads, one second, users without history
    g = np.repeat(np.arange(n_burst_groups), burst_sizes)
    sec = rng.integers(lo // 1000, (hi - 120_000) // 1000, n_burst_groups)
    burst_imp = np.where(rng.random(n_burst) < 0.75, n_plain + n_user_rep + np.arange(n_burst), -1)

    ad = np.concatenate([ad, ad[imp_src], ad[src], rng.integers(0, N_ADS, n_burst)])
    user = np.concatenate([user, rep_user, user[src], n_users + rng.integers(0, 10 * n_burst, n_burst)])
    ip = np.concatenate([user_ip[user[:n_plain + n_imp_rep + n_user_rep]], base_burst + g])
    ua = np.concatenate([user_ua[user[:n_plain + n_imp_rep + n_user_rep]],
                         rng.choice(len(browsers), n_burst, p=zipf / zipf.sum())])
    event = np.concatenate([event, event[imp_src] + gap, event[src] + rng.integers(0, 20_000, n_user_rep),
                            sec[g] * 1000 + rng.integers(0, 1000, n_burst)])
    imp = np.concatenate([imp, imp[imp_src], urep_imp, burst_imp])

    ingest = event + rng.exponential(300, n_unique).astype(np.int64)
    ahead = rng.random(n_unique) < 0.01
    ingest[ahead] = event[ahead] - rng.integers(0, 300_000, int(ahead.sum()))
    late = rng.random(n_unique) < 0.002
    ingest[late] = event[late] + rng.integers(900_000, 4 * HOUR_MS, int(late.sum()))
    delay = np.clip(rng.lognormal(np.log(6_000), 1.0, n_unique), 1_000, HOUR_MS).astype(np.int64)
    fast = rng.random(n_unique) < 0.005
    delay[fast] = rng.integers(-3_000, 1_000, int(fast.sum()))
    issued = ingest - delay
    rep = slice(n_plain, n_plain + n_imp_rep)
    issued[rep] = issued[imp_src]  # the repeated token's
    arrival = ingest + rng.integers(0, 90_000, n_unique)
    cost = rng.integers(1_000, 3_000_000, n_unique)
    cid = np.arange(n_unique)
    # duplicate copies: a retry of a random click, ingested up to 5 min later
    d = rng.integers(0, n_unique, n_dup)
    later = rng.integers(0, 300_000, n_dup)

    def with_dups(v):
        return np.concatenate([v, v[d]])
    cols = {"cid": with_dups(cid), "ad": with_dups(ad), "user": with_dups(user), "ip": with_dups(ip),
            "ua": with_dups(ua), "event": with_dups(event), "imp": with_dups(imp),
            "issued": with_dups(issued), "cost": with_dups(cost),
            "ingest": np.concatenate([ingest, ingest[d] + later]),
            "arrival": np.concatenate([arrival, arrival[d] + later])}
    keep = (cols["arrival"] >= lo) & (cols["arrival"] < hi)  # what lands in the 51 partitions
    order = np.argsort(cols["arrival"][keep] // HOUR_MS, kind="stable")
    cols = {k: v[keep][order] for k, v in cols.items()}
    print(f"[gen] arrays ready in {time.monotonic() - t0:.1f}s; {len(cols['cid']):,} rows in the read "
          f"window, {int((cols['arrival'] >= main_lo).sum()):,} of them in D's 27 input partitions", flush=True)

    def s(prefix: str, values) -> pa.Array:  # null stays null
        values = values if isinstance(values, pa.Array) else pa.array(values)
        return pc.binary_join_element_wise(prefix, pc.cast(values, pa.string()), "")

    refs = pa.array(["https://news.example/a", "https://search.example/?q=x", None])
    schema = pa.schema([(c, pa.string() if t == "string" else pa.int64()) for c, t in RAW_COLUMNS])
    hours = cols["arrival"] // HOUR_MS
    bounds = np.flatnonzero(np.diff(hours)) + 1
    starts, ends = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(hours)]])
    written = 0
    for i, (a, b) in enumerate(zip(starts, ends)):
        sl = {k: v[a:b] for k, v in cols.items()}
        m = b - a
        token = sl["imp"] >= 0
        ips = ip_table.take(pa.array(sl["ip"]))
        table = pa.table({
            "click_id": s("clk-", sl["cid"]), "ad_id": s("ad-", sl["ad"]),
            "campaign_id": s("cmp-", sl["ad"] // 10), "advertiser_id": s("adv-", sl["ad"] // 100),
            "user_id": s("user-", sl["user"]), "event_time": pa.array(sl["event"]),
            "cost_micros": pa.array(sl["cost"]), "ip": ips,
            "user_agent": ua_table.take(pa.array(sl["ua"])),
            "referrer": refs.take(pa.array(rng.integers(0, len(refs), m))),
            "ingest_time": pa.array(sl["ingest"]), "request_id": s("req-", sl["ingest"] // 50),
            "source_ip": ips,
            "impression_id": s("imp-", pa.array(sl["imp"], mask=~token)),
            "issued_at": pa.array(sl["issued"], mask=~token),
        }, schema=schema)
        hr = datetime.fromtimestamp(int(hours[a]) * 3600, tz=timezone.utc)
        part = table_root / f"dt={hr:%Y-%m-%d}" / f"hr={hr:%H}"
        part.mkdir(parents=True, exist_ok=True)
        half = m // 2
        pq.write_table(table.slice(0, half), part / "part-0.snappy.parquet", compression="snappy")
        pq.write_table(table.slice(half), part / "part-1.snappy.parquet", compression="snappy")
        written += m
        if i % 10 == 9 or i == len(starts) - 1:
            print(f"[gen] partition {i + 1}/{len(starts)} {part.parent.name}/{part.name}: {m:,} rows "
                  f"({written:,} total, {time.monotonic() - t0:.0f}s)", flush=True)
    size = sum(f.stat().st_size for f in table_root.rglob("*.parquet"))
    clicks = {"cid": cid, "ad": ad, "event": event, "imp": imp, "issued": issued}
    n_events = generate_events(rng, clicks, n * impressions_per_click, root / "raw" / "events", d0) \
        if impressions_per_click else 0
    size_events = sum(f.stat().st_size for f in (root / "raw" / "events").rglob("*.parquet"))
    done.write_text(f"{written} click rows, {size / 2**20:.0f} MiB; {n_events} event rows, "
                    f"{size_events / 2**20:.0f} MiB; generated in {time.monotonic() - t0:.0f}s\n")
    print(f"[gen] done: {done.read_text().strip()}", flush=True)
    return table_root


def generate_events(rng, clicks: dict, n_impressions: int, table_root: Path, d0: int) -> int:
    """The events archive (module doc, 1.) in D's 27 input partitions: every clicked impression
    (served at its token's issued_at) plus unclicked ones up to `n_impressions`, 5 % resent;
    conversions of 2 % of the clicks. Returns rows written."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from common.archive import EVENTS

    lo, hi = d0 - HOUR_MS, d0 + DAY_MS + 2 * HOUR_MS
    imp, ad, event, cid = clicks["imp"], clicks["ad"], clicks["event"], clicks["cid"]
    # impressions: the clicked ones (first click of each), then unclicked ones
    ids, first = np.unique(imp, return_index=True)
    first = first[ids >= 0]
    n_clicked = len(first)
    n_unclicked = max(0, n_impressions - n_clicked)
    imp_id = np.concatenate([imp[first], n_clicked + 10**9 + np.arange(n_unclicked)])
    imp_ad = np.concatenate([ad[first], (N_ADS * rng.random(n_unclicked) ** 2).astype(np.int64)])
    imp_event = np.concatenate([clicks["issued"][first], rng.integers(lo, hi - 120_000, n_unclicked)])
    # conversions: 2 % of the clicks; token + click_id, token only (its impression names the
    # click), click_id only, or a click never archived; 3 % before their click; 10 % resent
    conv = np.flatnonzero(rng.random(len(cid)) < 0.02)
    k = len(conv)
    kind = rng.random(k)
    has_imp = imp[conv] >= 0
    token = (kind < 0.7) & has_imp
    by_click = ~((kind >= 0.5) & (kind < 0.7) & has_imp)
    unknown = kind >= 0.97
    conv_event = event[conv] + np.where(rng.random(k) < 0.03, -rng.integers(1, 60_000, k),
                                        rng.integers(0, 6 * HOUR_MS, k))
    rows = {  # unique events: impressions, then conversions
        "type": np.concatenate([np.zeros(len(imp_id), np.int8), np.ones(k, np.int8)]),
        "id": np.concatenate([imp_id, np.arange(k)]),
        "ad": np.concatenate([imp_ad, np.where(token, ad[conv], -1)]),
        "event": np.concatenate([imp_event, conv_event]),
        "imp": np.concatenate([imp_id, np.where(token, imp[conv], -1)]),
        "click": np.concatenate([np.full(len(imp_id), -1), np.where(by_click, cid[conv], -1)]),
        "unknown": np.concatenate([np.zeros(len(imp_id), bool), unknown]),
        "value": np.concatenate([np.zeros(len(imp_id), np.int64), rng.integers(100_000, 100_000_000, k)]),
    }
    n = len(rows["id"])
    ingest = rows["event"] + rng.exponential(300, n).astype(np.int64)
    late = rng.random(n) < 0.002
    ingest[late] = rows["event"][late] + rng.integers(900_000, 4 * HOUR_MS, int(late.sum()))
    resent = np.flatnonzero(rng.random(n) < np.where(rows["type"] == 0, 0.05, 0.10))
    again = ingest[resent] + np.where(rows["type"][resent] == 0, rng.integers(1_000, 300_000, len(resent)),
                                      rng.integers(1_000, 2 * HOUR_MS, len(resent)))
    cols = {key: np.concatenate([v, v[resent]]) for key, v in rows.items()}
    cols["ingest"] = np.concatenate([ingest, again])
    cols["arrival"] = cols["ingest"] + rng.integers(0, 90_000, len(cols["ingest"]))
    keep = (cols["arrival"] >= lo) & (cols["arrival"] < hi)
    order = np.argsort(cols["arrival"][keep] // HOUR_MS, kind="stable")
    cols = {key: v[keep][order] for key, v in cols.items()}

    def s(prefix: str, values, mask=None) -> pa.Array:
        return pc.binary_join_element_wise(prefix, pc.cast(pa.array(values, mask=mask), pa.string()), "")

    types = {"string": pa.string(), "int": pa.int32(), "bigint": pa.int64()}
    schema = pa.schema([(c, types[t]) for c, t in EVENTS.columns])
    hours = cols["arrival"] // HOUR_MS
    bounds = np.flatnonzero(np.diff(hours)) + 1
    written = 0
    for a, b in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(hours)]])):
        sl = {key: v[a:b] for key, v in cols.items()}
        is_imp, no_ad = sl["type"] == 0, sl["ad"] < 0
        click = s("clk-", sl["click"], sl["click"] < 0)
        click = pc.if_else(pa.array(sl["unknown"]), s("clk-missing-", sl["id"]), click)
        event_type = pc.if_else(pa.array(is_imp), "impression", "conversion")
        table = pa.table({
            "event_type": event_type,
            "event_id": pc.if_else(pa.array(is_imp), s("imp-", sl["id"]), s("conv-", sl["id"])),
            "schema_version": pa.array(np.ones(b - a, np.int32)),
            "ad_id": s("ad-", sl["ad"], no_ad), "campaign_id": s("cmp-", sl["ad"] // 10, no_ad),
            "advertiser_id": s("adv-", sl["ad"] // 100, no_ad), "event_time": pa.array(sl["event"]),
            "impression_id": s("imp-", sl["imp"], sl["imp"] < 0), "click_id": click,
            "placement_id": pa.nulls(b - a, pa.string()), "publisher_id": pa.nulls(b - a, pa.string()),
            "user_id": pa.nulls(b - a, pa.string()),
            "value_micros": pa.array(sl["value"], mask=is_imp),
            "currency": pc.if_else(pa.array(is_imp), pa.scalar(None, pa.string()), "USD"),
            "attributed_by": pc.if_else(pa.array(is_imp), pa.scalar(None, pa.string()),
                                        pc.if_else(pa.array(no_ad), "click_id", "token")),
            "ingest_time": pa.array(sl["ingest"]), "request_id": s("ereq-", sl["ingest"] // 50),
            "source_ip": pa.nulls(b - a, pa.string()),
        }, schema=schema)
        hr = datetime.fromtimestamp(int(hours[a]) * 3600, tz=timezone.utc)
        part = table_root / f"dt={hr:%Y-%m-%d}" / f"hr={hr:%H}"
        part.mkdir(parents=True, exist_ok=True)
        half = (b - a) // 2
        pq.write_table(table.slice(0, half), part / "part-0.snappy.parquet", compression="snappy")
        pq.write_table(table.slice(half), part / "part-1.snappy.parquet", compression="snappy")
        written += b - a
    print(f"[gen] events: {n_clicked + n_unclicked:,} impressions ({n_clicked:,} clicked), {k:,} conversions, "
          f"{len(resent):,} resent; {written:,} rows in D's 27 input partitions", flush=True)
    return written


def generate_budgets(root: Path, seed: int = 43) -> Path:
    """The budget history (module doc, 1.) as root/budgets.json (kept once written): from the
    clicks archive's rows of D (copies included: a rough cost per campaign is all it needs)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    path = root / "budgets.json"
    if path.exists():
        return path
    d0 = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc).timestamp() * 1000)
    d1 = d0 + DAY_MS
    t = ds.dataset(str(root / "raw" / "clicks"), format="parquet").to_table(
        columns=["campaign_id", "cost_micros"],
        filter=(ds.field("event_time") >= d0) & (ds.field("event_time") < d1))
    per = t.group_by("campaign_id").aggregate([("cost_micros", "sum")]).sort_by("campaign_id")
    campaigns = per.column("campaign_id").to_pylist()
    costs = pc.cast(per.column("cost_micros_sum"), "int64").to_numpy()
    rng = np.random.default_rng(seed)
    history = []

    def version(campaign: str, daily: int, rev: int, set_at: int) -> None:
        history.append({"campaign_id": campaign, "daily": max(1, int(daily)), "rev": rev, "set_at": set_at,
                        "pacing": "even", "by": "arn:aws:iam::123456789012:user/bench", "life": None})
    for campaign, cost in zip(campaigns, costs):
        x = rng.random()
        if x >= 0.6:
            continue  # no budget
        budget, rev = cost * rng.uniform(0.3, 1.3), 1
        if x < 0.2:  # lowered mid-day: a higher one before, this one from D 12:00
            version(campaign, budget * 2, rev, d0 - 3 * DAY_MS)
            rev += 1
            version(campaign, budget, rev, d0 + 12 * HOUR_MS)
        else:
            version(campaign, budget, rev, d0 - 3 * DAY_MS + int(rng.integers(0, DAY_MS)))
        if x < 0.1:  # set at D's end or later: not D's
            version(campaign, budget * 10, rev + 1, d1 if x < 0.05 else d1 + 3 * HOUR_MS)
    path.write_text(json.dumps(history))
    print(f"[gen] budgets: {len({h['campaign_id'] for h in history}):,} of {len(campaigns):,} campaigns, "
          f"{len(history):,} versions", flush=True)
    return path


def load_budgets(path: Path) -> list:
    from glue_jobs.billing.budgets import BudgetVersion

    return [BudgetVersion(campaign_id=h["campaign_id"], daily_micros=h["daily"], set_at_ms=h["set_at"],
                          revision=h["rev"], lifetime_micros=h["life"], pacing=h["pacing"], set_by=h["by"])
            for h in json.loads(path.read_text())]


# ---------------------------------------------------------------------------- engines (child)

def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def duckdb_sql(files: str, lookback_files: str, day: date, settings, out: Path,
               spend_out: Path | None = None) -> list[str]:
    """The job's computation (module doc) as DuckDB statements: each campaign's budget of D from
    table budget_history (campaign_id, daily, rev, set_at), D's clicks with their verdicts and
    over_budget (table day_clicks: the events' attribution reads them), then D's hourly rows to
    `out` and its campaign_spend rows to `spend_out`."""
    from common import ivt
    from glue_jobs.billing import ivt_inputs
    from glue_jobs.billing.outputs import CAMPAIGN_SPEND_COLUMNS, names
    from glue_jobs.billing.transform import (
        ARRIVAL_ORDER, DEDUP_ORDER, LOOKBACK_COLUMNS, MINUTE_MS, OUTPUT_COLUMNS, READ_SCHEMA, USED_COLUMNS,
        day_bounds_ms,
    )

    cfg = settings.ivt_config()
    on = {r: "true" if r in cfg.rules else "false" for r in ivt.REASONS}
    d0, d1 = day_bounds_ms(day)
    sql_type = {"StringType()": "VARCHAR", "LongType()": "BIGINT"}
    lookback_select = ", ".join(c if c in LOOKBACK_COLUMNS else f"NULL::{sql_type[repr(f.dataType)]} AS {c}"
                                for f in READ_SCHEMA.fields for c in [f.name])
    lookback = (f"UNION ALL BY NAME SELECT {lookback_select} FROM read_parquet({lookback_files})"
                if lookback_files else "")

    def order(cols) -> str:
        return ", ".join(f"{c} NULLS LAST" for c in cols)

    def floor(col: str, width: int) -> str:  # col - pmod(col, width), as Spark
        return f"({col} - (({col} % {width}) + {width}) % {width})"
    elect, arrive = order(ivt.ORDER), order(ARRIVAL_ORDER)
    invalid = " OR ".join(r for r in ivt.REASONS if ivt.TIER[r] == ivt.INVALID)
    suspect = " OR ".join(r for r in ivt.REASONS if ivt.TIER[r] == ivt.SUSPECT)
    arrival = {r: f"arr_{r}" if r in (ivt.IMPRESSION_REPEAT, ivt.USER_REPEAT) else r for r in ivt.REASONS}
    arr_invalid = " OR ".join(arrival[r] for r in ivt.REASONS if ivt.TIER[r] == ivt.INVALID)
    arr_suspect = " OR ".join(arrival[r] for r in ivt.REASONS if ivt.TIER[r] == ivt.SUSPECT)
    others = " OR ".join(arrival[r] for r in ivt.REASONS if r != ivt.IMPRESSION_REPEAT)
    octet = "string_split(quad, '.')[{}]::BIGINT"
    hextet = "(CASE WHEN tail[{0}] = '' THEN 0 ELSE ('0x' || tail[{0}])::BIGINT END)"
    bot_regex = ivt_inputs.bot_regex().removeprefix("(?d)")  # RE2 has no UNIX_LINES flag (module doc)
    assert bot_regex != ivt_inputs.bot_regex()
    select_out = ", ".join(c for c in OUTPUT_COLUMNS if c not in ("hour", "dt"))
    spend_cols = ", ".join(names(CAMPAIGN_SPEND_COLUMNS))
    billed = "verdict = 'valid' AND NOT over_budget"
    spend = [] if spend_out is None else [f"""
COPY (
SELECT {spend_cols} FROM (
    SELECT c.*, '{day.isoformat()}' AS day, b.budget_micros, b.budget_revision FROM (
        SELECT campaign_id, advertiser_id,
               count(*) FILTER (WHERE verdict = 'valid') AS valid_clicks,
               coalesce(sum(cost_micros) FILTER (WHERE verdict = 'valid'), 0)::BIGINT AS valid_cost_micros,
               count(*) FILTER (WHERE {billed}) AS billed_clicks,
               coalesce(sum(cost_micros) FILTER (WHERE {billed}), 0)::BIGINT AS billed_cost_micros,
               count(*) FILTER (WHERE over_budget) AS over_budget_clicks,
               coalesce(sum(cost_micros) FILTER (WHERE over_budget), 0)::BIGINT AS over_budget_cost_micros
        FROM day_clicks GROUP BY ALL) c
    LEFT JOIN budgets b ON c.campaign_id = b.campaign_id)
) TO '{spend_out}' (FORMAT parquet)"""]
    return [f"""
CREATE TABLE budgets AS  -- the version set last before D's end, per campaign
SELECT campaign_id, daily AS budget_micros, rev AS budget_revision FROM (
    SELECT *, row_number() OVER (PARTITION BY campaign_id ORDER BY set_at DESC, rev DESC) AS rn
    FROM budget_history WHERE set_at < {d1})
WHERE rn = 1""", f"""
CREATE TABLE day_clicks AS
WITH raw AS (
    SELECT {", ".join(USED_COLUMNS)} FROM read_parquet({files})
    {lookback}
), dedup AS (
    SELECT *, count(*) OVER w AS copies, row_number() OVER w AS rn
    FROM raw WHERE click_id IS NOT NULL
    WINDOW w AS (PARTITION BY click_id ORDER BY {order(DEDUP_ORDER)}
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
), sel AS (  -- D's clicks, and the earlier clicks of impressions (election fields only matter)
    SELECT * EXCLUDE (rn), event_time >= {d0} AND event_time < {d1} AS in_day
    FROM dedup
    WHERE rn = 1 AND ((event_time >= {d0} AND event_time < {d1})
                      OR (event_time < {d0} AND impression_id IS NOT NULL))
), imp AS (
    SELECT *,
           {on[ivt.IMPRESSION_REPEAT]} AND impression_id IS NOT NULL
               AND row_number() OVER (PARTITION BY impression_id, ik ORDER BY {elect}) > 1 AS impression_repeat,
           {on[ivt.IMPRESSION_REPEAT]} AND impression_id IS NOT NULL
               AND row_number() OVER (PARTITION BY impression_id, ik ORDER BY {arrive}) > 1
               AS arr_impression_repeat,
           CASE WHEN {on[ivt.IMPRESSION_REPEAT]} THEN min(ingest_time) OVER (PARTITION BY impression_id, ik) END
               AS imp_first_ingest
    FROM (SELECT *, CASE WHEN impression_id IS NULL THEN click_id END AS ik FROM sel)
), day AS (
    SELECT * EXCLUDE (ik, in_day) FROM imp WHERE in_day
), bots AS (  -- a filter on the grouping key would be pushed below the aggregate (one regex per
             -- row, ~0.3 ms each); reading the count keeps it above, once per distinct agent
    SELECT ua FROM (SELECT user_agent AS ua, count(*) AS n FROM day WHERE user_agent IS NOT NULL GROUP BY ua)
    WHERE CASE WHEN n > 0 THEN regexp_matches(ua, {_sql_text(bot_regex)}) END
), ip_text AS (
    SELECT *, CASE WHEN regexp_matches(ip_s, {_sql_text(ivt_inputs.ipv4_regex())}) THEN ip_s
                   WHEN regexp_matches(ip_s, {_sql_text(ivt_inputs.mapped_quad_regex())})
                       THEN regexp_extract(ip_s, {_sql_text(ivt_inputs.QUAD_TAIL_REGEX)}, 1) END AS quad,
              string_split(regexp_extract(ip_s, {_sql_text(ivt_inputs.HEX_TAIL_REGEX)}, 1), ':') AS tail
    FROM (SELECT *, regexp_replace(ip, {_sql_text(ivt_inputs.strip_regex())}, '', 'g') AS ip_s FROM day)
), ip4 AS (
    SELECT * EXCLUDE (ip_s, quad, tail),
           CASE WHEN quad IS NOT NULL
                    THEN {octet.format(1)} * 16777216 + {octet.format(2)} * 65536
                         + {octet.format(3)} * 256 + {octet.format(4)}
                WHEN regexp_matches(ip_s, {_sql_text(ivt_inputs.mapped_hex_regex())})
                    THEN {hextet.format(1)} * 65536 + {hextet.format(2)} END AS ip4
    FROM ip_text
), flags AS (
    SELECT c.* EXCLUDE (ip4),
           {on[ivt.BOT_UA]} AND b.ua IS NOT NULL AS bot_ua,
           {on[ivt.DATACENTER_IP]} AND dc.first IS NOT NULL AS datacenter_ip,
           {on[ivt.TOO_FAST]} AND issued_at IS NOT NULL AND ingest_time IS NOT NULL
               AND ingest_time - issued_at < {cfg.min_click_delay_ms} AS too_fast,
           {on[ivt.IP_BURST]} AND ip IS NOT NULL
               AND count(*) OVER (PARTITION BY ip, {floor("event_time", cfg.burst_window_ms)})
                   > {cfg.burst_threshold} AS ip_burst,
           {on[ivt.USER_REPEAT]} AND user_id IS NOT NULL
               AND row_number() OVER (PARTITION BY user_id, ad_id, {floor("event_time", cfg.user_repeat_window_ms)}
                                      ORDER BY {elect}) > 1 AS user_repeat,
           {on[ivt.USER_REPEAT]} AND user_id IS NOT NULL
               AND row_number() OVER (PARTITION BY user_id, ad_id, {floor("event_time", cfg.user_repeat_window_ms)}
                                      ORDER BY {arrive}) > 1 AS arr_user_repeat
    FROM ip4 c
    LEFT JOIN bots b ON c.user_agent = b.ua
    LEFT JOIN dc ON c.ip4 >> {ivt_inputs.BLOCK_BITS} = dc.block AND c.ip4 >= dc.first AND c.ip4 <= dc.last
), v AS (
    SELECT *,
           CASE WHEN {invalid} THEN 'invalid' WHEN {suspect} THEN 'suspect' ELSE 'valid' END AS verdict,
           CASE WHEN {arr_invalid} THEN 'invalid' WHEN {arr_suspect} THEN 'suspect' ELSE 'valid' END
               AS arrival_verdict,
           coalesce(ingest_time >= {floor("event_time", MINUTE_MS)} + {settings.late_after_ms}, false) AS late,
           {floor("event_time", HOUR_MS)} AS hour_start_ms
    FROM flags
), d AS (
    SELECT *,
           verdict <> 'valid' AND arrival_verdict = 'valid' AND NOT late AS election_gain,
           verdict = 'valid' AND arrival_verdict <> 'valid' AND NOT late AS election_loss,
           verdict <> 'valid' AND NOT late AND arr_impression_repeat AND NOT ({others})
               AND ingest_time - imp_first_ingest > {settings.impression_memory_ms} AS impression_memory
    FROM v
), b AS (  -- each campaign's valid cost so far, in ORDER, against its budget
    SELECT d.*, bu.budget_micros AS budget_cap,
           sum(CASE WHEN d.verdict = 'valid' THEN coalesce(d.cost_micros, 0) ELSE 0 END)
               OVER (PARTITION BY d.campaign_id ORDER BY {elect}
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS spent
    FROM d LEFT JOIN budgets bu ON d.campaign_id = bu.campaign_id
)
SELECT * EXCLUDE (budget_cap, spent),
       verdict = 'valid' AND budget_cap IS NOT NULL AND spent > budget_cap AS over_budget
FROM b
""", f"""
COPY (
WITH hourly AS (
    SELECT advertiser_id, campaign_id, ad_id, hour_start_ms,
           count(*) AS clicks,
           count(*) FILTER (WHERE {billed}) AS billable_clicks,
           count(*) FILTER (WHERE verdict = 'suspect') AS suspect_clicks,
           count(*) FILTER (WHERE verdict = 'invalid') AS invalid_clicks,
           {", ".join(f"count(*) FILTER (WHERE {r}) AS {r}_clicks" for r in ivt.REASONS)},
           coalesce(sum(cost_micros), 0)::BIGINT AS cost_micros,
           coalesce(sum(cost_micros) FILTER (WHERE {billed}), 0)::BIGINT AS billable_cost_micros,
           sum(copies - 1)::BIGINT AS duplicate_copies,
           count(*) FILTER (WHERE late) AS late_clicks,
           count(*) FILTER (WHERE verdict = 'valid' AND late) AS late_billable_clicks,
           count(*) FILTER (WHERE election_gain) AS election_gain_clicks,
           count(*) FILTER (WHERE election_loss) AS election_loss_clicks,
           count(*) FILTER (WHERE impression_memory) AS impression_memory_clicks,
           count(*) FILTER (WHERE over_budget) AS over_budget_clicks,
           coalesce(sum(cost_micros) FILTER (WHERE over_budget), 0)::BIGINT AS over_budget_cost_micros
    FROM day_clicks GROUP BY ALL
)
SELECT {select_out} FROM hourly
) TO '{out}' (FORMAT parquet)
""", *spend]


def duckdb_events_sql(event_files: str, attribution_files: str, day: date, settings, out: Path,
                      billed_days: list[date], flagged_files: str = "") -> list[str]:
    """The events part of the job (glue_jobs/billing/events.py, its docstring's steps) as
    DuckDB statements writing D's events_hourly and conversions rows to `out`. Needs the table
    day_clicks (duckdb_sql): D's flagged clicks are its non-valid ones; `flagged_files` are the
    other billed days' billing/flagged files ('' = none), `billed_days` every billed day (D's
    billing is the one just computed)."""
    from glue_jobs.billing import events as ev
    from glue_jobs.billing.outputs import CONVERSION_COLUMNS, EVENTS_HOURLY_COLUMNS, names
    from glue_jobs.billing.transform import DEDUP_ORDER, LOOKBACK_COLUMNS, MINUTE_MS, day_bounds_ms

    d0, d1 = day_bounds_ms(day)
    window = settings.attribution_window_ms

    def order(cols) -> str:
        return ", ".join(f"{c} NULLS LAST" for c in cols)

    def floor(col: str, width: int) -> str:
        return f"({col} - (({col} % {width}) + {width}) % {width})"

    def first_copies(event_type: str, cols) -> str:
        return f"""
    SELECT * EXCLUDE (rn) FROM (
        SELECT *, row_number() OVER w AS rn, count(*) OVER w AS copies FROM ev
        WHERE event_type = '{event_type}' AND event_id IS NOT NULL
        WINDOW w AS (PARTITION BY event_id ORDER BY {order(cols)}
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))
    WHERE rn = 1 AND event_time >= {d0} AND event_time < {d1}"""
    timing = (f"{floor('event_time', HOUR_MS)} AS hour_start_ms, coalesce(ingest_time >= "
              f"{floor('event_time', MINUTE_MS)} + {settings.late_after_ms}, false) AS late")
    billed = ", ".join(str(day_bounds_ms(d)[0]) for d in billed_days) or "NULL"
    flagged = (f"SELECT click_id, verdict FROM read_parquet({flagged_files}) UNION ALL " if flagged_files else "")
    hourly_cols = ", ".join(c for c in names(EVENTS_HOURLY_COLUMNS) if c != "hour")
    detail_cols = ", ".join(names(CONVERSION_COLUMNS))
    count_if = "count(*) FILTER (WHERE {})"
    sum_if = "coalesce(sum(coalesce(value_micros, 0)) FILTER (WHERE {}), 0)::BIGINT"
    conv, token = "t = 'conversion'", "t = 'conversion' AND token_ad"
    attributed = f"t = 'conversion' AND attribution = '{ev.ATTRIBUTED}'"
    return [f"CREATE TABLE ev AS SELECT {', '.join(ev.EVENTS_USED_COLUMNS)} FROM read_parquet({event_files})",
            f"CREATE TABLE imps AS SELECT *, {timing} FROM ({first_copies(ev.IMPRESSION, ev.IMPRESSION_ORDER)})"
            " WHERE ad_id IS NOT NULL",
            f"CREATE TABLE convs AS SELECT *, event_id AS conversion_id, {timing} "
            f"FROM ({first_copies(ev.CONVERSION, ev.CONVERSION_ORDER)})",
            f"""
CREATE TABLE idx AS
WITH arch AS (
    SELECT {', '.join(LOOKBACK_COLUMNS)}, epoch_ms(strptime(dt || ' ' || hr, '%Y-%m-%d %H')) AS arrival
    FROM read_parquet({attribution_files}, hive_partitioning = true, hive_types = {{'dt': VARCHAR, 'hr': VARCHAR}})
    WHERE click_id IS NOT NULL
      AND (click_id IN (SELECT click_id FROM convs WHERE click_id IS NOT NULL)
           OR impression_id IN (SELECT impression_id FROM convs WHERE click_id IS NULL AND impression_id IS NOT NULL))
), d AS (
    SELECT *, row_number() OVER w AS rn, min(arrival) OVER w AS first_arrival FROM arch
    WINDOW w AS (PARTITION BY click_id ORDER BY {order(DEDUP_ORDER)}
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
), flagged AS (
    {flagged}SELECT click_id, verdict FROM day_clicks WHERE verdict <> 'valid'
)
SELECT d.click_id, ad_id, campaign_id, advertiser_id, event_time, ingest_time, impression_id,
       CASE WHEN {floor('event_time', DAY_MS)} IN ({billed})
                 AND first_arrival < {floor('event_time', DAY_MS)} + {DAY_MS + settings.cutoff_hours * HOUR_MS}
            THEN coalesce(f.verdict, 'valid') END AS verdict
FROM d LEFT JOIN flagged f ON f.click_id = d.click_id
WHERE rn = 1 AND event_time >= {d0 - window} AND event_time < {d1}""",
            f"""
CREATE TABLE att AS
WITH elected AS (
    SELECT impression_id AS e_imp, click_id AS e_click FROM (
        SELECT *, row_number() OVER (PARTITION BY impression_id ORDER BY {order(ev.ORDER)}) AS rn
        FROM idx WHERE impression_id IS NOT NULL) WHERE rn = 1
)
SELECT cv.* EXCLUDE (advertiser_id, campaign_id, ad_id),
       cv.ad_id IS NOT NULL AS token_ad,
       CASE WHEN cv.ad_id IS NOT NULL THEN cv.advertiser_id ELSE c.advertiser_id END AS advertiser_id,
       CASE WHEN cv.ad_id IS NOT NULL THEN cv.campaign_id ELSE c.campaign_id END AS campaign_id,
       CASE WHEN cv.ad_id IS NOT NULL THEN cv.ad_id ELSE c.ad_id END AS ad_id,
       c.click_id AS matched_click_id, c.event_time AS click_event_time, c.verdict AS click_verdict,
       CASE WHEN c.click_id IS NULL THEN '{ev.UNKNOWN_CLICK}'
            WHEN cv.event_time - c.event_time < 0 OR cv.event_time - c.event_time > {window} THEN '{ev.OUTSIDE_WINDOW}'
            WHEN c.verdict IS NULL THEN '{ev.UNVERIFIED_CLICK}'
            WHEN c.verdict <> 'valid' THEN '{ev.INVALID_CLICK}'
            ELSE '{ev.ATTRIBUTED}' END AS attribution
FROM convs cv
LEFT JOIN elected e ON cv.click_id IS NULL AND cv.impression_id = e.e_imp
LEFT JOIN idx c ON coalesce(cv.click_id, e.e_click) = c.click_id""",
            f"COPY (SELECT {detail_cols} FROM att) TO '{out / 'conversions.parquet'}' (FORMAT parquet)",
            f"""
COPY (
WITH u AS (
    SELECT advertiser_id, campaign_id, ad_id, hour_start_ms, 'impression' AS t, copies, late,
           NULL::BIGINT AS value_micros, NULL AS attribution, false AS token_ad FROM imps
    UNION ALL
    SELECT advertiser_id, campaign_id, ad_id, hour_start_ms, 'conversion', copies, late, value_micros,
           attribution, token_ad FROM att WHERE ad_id IS NOT NULL
)
SELECT {hourly_cols} FROM (
    SELECT advertiser_id, campaign_id, ad_id, hour_start_ms,
           {count_if.format("t = 'impression'")} AS impressions,
           {count_if.format(conv)} AS conversions,
           {sum_if.format(conv)} AS conversion_value_micros,
           {count_if.format(attributed)} AS attributed_conversions,
           {sum_if.format(attributed)} AS attributed_value_micros,
           {", ".join(f"{count_if.format(f'{conv} AND attribution = {_sql_text(r)}')} AS {r}_conversions"
                      for r in ev.NOT_ATTRIBUTED)},
           {count_if.format(token)} AS token_conversions,
           {sum_if.format(token)} AS token_conversion_value_micros,
           coalesce(sum(copies - 1) FILTER (WHERE t = 'impression'), 0)::BIGINT AS duplicate_impression_copies,
           {count_if.format("t = 'impression' AND late")} AS late_impressions,
           coalesce(sum(copies - 1) FILTER (WHERE {token}), 0)::BIGINT AS duplicate_token_conversion_copies,
           {count_if.format(f"{token} AND late")} AS late_token_conversions
    FROM u GROUP BY ALL)
) TO '{out / 'events_hourly.parquet'}' (FORMAT parquet)"""]


def run_duckdb(raw_root: str, out: Path, threads: int, events_root: str | None = None,
               budgets: Path | None = None) -> dict:
    t0 = time.monotonic()
    import duckdb
    import pyarrow as pa

    from glue_jobs.billing import events as ev
    from glue_jobs.billing import ivt_inputs
    from glue_jobs.billing.transform import BillingSettings, input_partitions, lookback_partitions

    s = BillingSettings()
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(f"SET temp_directory = '{out.parent / 'duckdb_tmp'}'")
    con.execute("SET preserve_insertion_order = false")

    def files(partitions: list[str]) -> str:
        return "[" + ",".join(f"'{f}'" for p in partitions if Path(p).exists()
                              for f in sorted(Path(p).glob("*.parquet"))) + "]"
    main_files = files(input_partitions(raw_root, DAY, s.cutoff_hours))
    lookback_files = files(lookback_partitions(raw_root, DAY, s.impression_lookback_ms))
    blocks = pa.table(dict(zip(("block", "first", "last"), map(list, zip(*ivt_inputs.datacenter_blocks())))))
    con.execute("CREATE TABLE dc AS SELECT * FROM blocks")
    history = pa.Table.from_pylist(json.loads(budgets.read_text()) if budgets else [], schema=pa.schema([
        ("campaign_id", pa.string()), ("daily", pa.int64()), ("rev", pa.int64()), ("set_at", pa.int64())]))
    con.execute("CREATE TABLE budget_history AS SELECT * FROM history")
    statements = duckdb_sql(main_files, lookback_files if lookback_files != "[]" else "", DAY, s,
                            out / "hourly.parquet", out / "campaign_spend.parquet")
    if events_root:  # no earlier day is billed here: only D's own verdicts
        statements += duckdb_events_sql(files(input_partitions(events_root, DAY, s.cutoff_hours)),
                                        files(ev.attribution_partitions(raw_root, DAY, s)), DAY, s, out, [DAY])
    t1 = time.monotonic()
    for statement in statements:
        con.execute(statement)
    t2 = time.monotonic()
    return {"setup_s": t1 - t0, "work_s": t2 - t1}


def run_spark(raw_root: str, out: Path, shuffle_partitions: int, driver_memory: str, java_opts: str,
              conf: list[str], events_root: str | None = None, budgets: Path | None = None) -> dict:
    """The job's own run_day (its outputs under `out` in the bucket layout: hourly/dt=D/, ...)."""
    t0 = time.monotonic()
    from glue_jobs.billing.run import local_spark, run_day
    from glue_jobs.billing.transform import BillingSettings

    spark = local_spark(app="bench-billing", master="local[2]", shuffle_partitions=shuffle_partitions,
                        driver_memory=driver_memory,
                        extra={"spark.local.dir": str(out.parent / "spark_tmp"),
                               "spark.driver.extraJavaOptions": java_opts,
                               **dict(kv.split("=", 1) for kv in conf)})
    t1 = time.monotonic()
    run_day(spark, raw_root, str(out), DAY, BillingSettings(), write_flagged=False, events_path=events_root,
            budgets=load_budgets(budgets) if budgets else None)
    t2 = time.monotonic()
    spark.stop()
    return {"setup_s": t1 - t0, "work_s": t2 - t1}


# ---------------------------------------------------------------------------- parent

def _tree_sample(root_pid: int, cpu: dict[int, float]) -> int:
    """RSS (bytes) of root_pid and all its descendants now; records each one's CPU seconds."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, stack, tick = 0, [root_pid], os.sysconf("SC_CLK_TCK")
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            pass
    return total


def measure(cmd: list[str]) -> dict:
    """Run cmd; wall time, peak RSS of its process tree, CPU seconds of the tree (sampled every
    250 ms: the CPU of the last 250 ms of a process may be missed)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak, cpu, stop = [0], {}, threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_sample(proc.pid, cpu))
            stop.wait(0.25)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    stdout, _ = proc.communicate()
    stop.set()
    th.join()
    if proc.returncode:
        raise SystemExit(f"{cmd} failed with {proc.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return {**result, "total_s": time.monotonic() - t0, "peak_rss_gib": peak[0] / 2**30,
            "cpu_s": sum(cpu.values())}


def read_rows(path: Path, cols: list[str] | None = None) -> list[tuple]:
    """The rows an engine wrote (default: the hourly clicks, transform.OUTPUT_COLUMNS without hour
    and dt; a file or a directory of them), sorted."""
    import pyarrow.dataset as ds

    cols = cols or compared_columns()
    t = ds.dataset(str(path), format="parquet").to_table(columns=cols)
    key = lambda row: tuple((v is None, v) for v in row)  # noqa: E731  (nulls sort)
    return sorted(zip(*[[int(v) if isinstance(v, int) else v for v in t.column(c).to_pylist()] for c in cols]),
                  key=key)


def compared_columns(dataset: str = "hourly") -> list[str]:
    from glue_jobs.billing.outputs import CONVERSION_COLUMNS, EVENTS_HOURLY_COLUMNS, names
    from glue_jobs.billing.transform import OUTPUT_COLUMNS

    from glue_jobs.billing.outputs import CAMPAIGN_SPEND_COLUMNS

    columns = {"hourly": OUTPUT_COLUMNS, "events_hourly": names(EVENTS_HOURLY_COLUMNS),
               "conversions": names(CONVERSION_COLUMNS),
               "campaign_spend": names(CAMPAIGN_SPEND_COLUMNS)}[dataset]
    return [c for c in columns if c not in ("hour", "dt")]


def data_dir(a: argparse.Namespace) -> Path:
    return Path(a.cache) / f"clicks-{a.clicks}-i{a.impressions_per_click}-v{GEN_VERSION}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clicks", type=int, default=10_000_000)
    p.add_argument("--impressions-per-click", type=int,
                   help="impressions in the events archive per click (default 5; 50 with --smoke; "
                        "0: no events archive, clicks only)")
    p.add_argument("--cache", help="data and outputs (default /tmp/billing-bench-cache; with --smoke a "
                                   "temporary directory, removed afterwards)")
    p.add_argument("--engines", default="spark,duckdb")
    p.add_argument("--shuffle-partitions", type=int, default=8)
    p.add_argument("--driver-memory", default="3g")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--java-opts", default="-XX:+UseParallelGC", help="driver JVM options (local Spark)")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark conf (repeatable)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny input, seconds: --clicks 20000 --impressions-per-click 50 "
                        "--shuffle-partitions 2 --driver-memory 1g")
    p.add_argument("--child", choices=["spark", "duckdb"], help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.impressions_per_click is None:
        a.impressions_per_click = 50 if a.smoke else 5
    if a.child:
        raw_root = str(data_dir(a) / "raw" / "clicks")
        events_root = str(data_dir(a) / "raw" / "events") if a.impressions_per_click else None
        budgets = data_dir(a) / "budgets.json"
        out = Path(a.out)
        result = (run_spark(raw_root, out, a.shuffle_partitions, a.driver_memory, a.java_opts, a.conf, events_root,
                            budgets)
                  if a.child == "spark" else run_duckdb(raw_root, out, a.threads, events_root, budgets))
        print(json.dumps(result))
        return
    if a.smoke:
        a.clicks, a.shuffle_partitions, a.driver_memory = 20_000, 2, "1g"
        if a.cache is None:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="billing-bench-smoke-") as tmp:
                a.cache = tmp
                compare(a)
            return
    a.cache = a.cache or "/tmp/billing-bench-cache"
    compare(a)


def compare(a: argparse.Namespace) -> None:
    """Generate (or reuse) the data, run each engine in a child process, compare their rows."""
    generate(a.clicks, data_dir(a), impressions_per_click=a.impressions_per_click)
    generate_budgets(data_dir(a))
    load_start = os.getloadavg()[0]
    results = {}
    for engine in a.engines.split(","):
        out = Path(a.cache) / f"out-{engine}"
        subprocess.run(["rm", "-rf", str(out), str(Path(a.cache) / "duckdb_tmp"), str(Path(a.cache) / "spark_tmp")],
                       check=True)
        out.mkdir(parents=True)
        print(f"[run] {engine} ...", flush=True)
        r = measure([sys.executable, __file__, "--child", engine, "--out", str(out), "--clicks", str(a.clicks),
                     "--impressions-per-click", str(a.impressions_per_click),
                     "--cache", a.cache, "--shuffle-partitions", str(a.shuffle_partitions),
                     "--driver-memory", a.driver_memory, "--threads", str(a.threads),
                     f"--java-opts={a.java_opts}", *[f"--conf={kv}" for kv in a.conf]])
        results[engine] = r
        print(f"[run] {engine}: total {r['total_s']:.1f}s (start-up {r['setup_s']:.1f}s, work {r['work_s']:.1f}s), "
              f"CPU {r['cpu_s']:.1f}s, peak RSS {r['peak_rss_gib']:.2f} GiB", flush=True)
    if {"spark", "duckdb"} <= results.keys():
        s, d = results["spark"], results["duckdb"]
        spark_rows = read_rows(Path(a.cache) / "out-spark" / "hourly")
        duckdb_rows = read_rows(Path(a.cache) / "out-duckdb" / "hourly.parquet")
        same = spark_rows == duckdb_rows
        print(f"\nclicks={a.clicks:,}  day={DAY}  hourly rows={len(duckdb_rows):,}  identical results: {same}")
        cols = compared_columns()
        totals = {c: sum(r[i] for r in duckdb_rows) for i, c in enumerate(cols) if c.endswith("clicks")
                  or c == "duplicate_copies"}
        print("D's clicks (DuckDB's rows): "
              + ", ".join(f"{c.removesuffix('_clicks')} {v:,}" for c, v in totals.items()))
        same = compare_spend(a) and same
        if a.impressions_per_click:
            same = compare_events(a) and same
        print(f"load average (1 min) at the start: {load_start:.1f}, at the end: {os.getloadavg()[0]:.1f} "
              f"(2 cores; other jobs share them)")
        print(f"{'':8}{'total s':>10}{'work s':>10}{'CPU s':>10}{'peak RSS GiB':>14}")
        for name, r in (("spark", s), ("duckdb", d)):
            print(f"{name:8}{r['total_s']:>10.1f}{r['work_s']:>10.1f}{r['cpu_s']:>10.1f}{r['peak_rss_gib']:>14.2f}")
        print("(DuckDB: the reference engine for correctness; its time is not the headline)")
    if "spark" in results:
        headline(a, results["spark"])
    if {"spark", "duckdb"} <= results.keys() and not same:
        raise SystemExit("Spark and DuckDB disagree")


def rows_read(a: argparse.Namespace) -> dict[str, int]:
    """Archive records in the partitions the job reads for D (Parquet metadata): clicks in its 27
    input + 24 lookback partitions, events in D's 27 input partitions; `input_clicks`: the
    clicks of the 27 input partitions alone (what the extrapolation scales by)."""
    import pyarrow.parquet as pq

    from glue_jobs.billing.transform import BillingSettings, input_partitions, lookback_partitions

    s = BillingSettings()

    def count(partitions: list[str]) -> int:
        return sum(pq.ParquetFile(f).metadata.num_rows for part in partitions for f in Path(part).glob("*.parquet"))
    clicks_root, events_root = str(data_dir(a) / "raw" / "clicks"), str(data_dir(a) / "raw" / "events")
    main = count(input_partitions(clicks_root, DAY, s.cutoff_hours))
    return {"clicks": main + count(lookback_partitions(clicks_root, DAY, s.impression_lookback_ms)),
            "events": count(input_partitions(events_root, DAY, s.cutoff_hours)) if a.impressions_per_click else 0,
            "input_clicks": main}


def glue_workers() -> tuple[int, str, str]:
    """The capacity planner's Glue workers for the nightly billing at the seed's volume."""
    from capacity.planner import plan

    rate = SEED_CLICKS_PER_DAY / 86_400
    p = plan(rate=rate, peak=SEED_PEAK)
    return (int(p.context["billing_glue_workers"]), p.context["billing_glue_worker_type"],
            f"python -m capacity plan --rate {rate:.0f} --peak {SEED_PEAK}")


def extrapolate(read: dict[str, int], cpu_s: float) -> dict:
    """One day at the seed's 8.6B clicks/day on the planner's Glue workers: the archive rows the
    job reads scale with the clicks per arrival hour (the generator writes one rate over the 51
    hours; events at the run's impressions per click); CPU-seconds = rows / the measured rows per
    CPU-second (the Spark child's whole process tree, JVM and SparkContext start-up included);
    Glue runs the driver on one worker, executors on the others (4 vCPU per G.1X), and the
    throughput per vCPU is assumed to scale linearly (S3 reads and a networked shuffle instead
    of local disk: not measured here)."""
    rows = read["clicks"] + read["events"]
    scale = (SEED_CLICKS_PER_DAY / 24) / (read["input_clicks"] / 27)
    rows_day = rows * scale
    rate = rows / cpu_s
    workers, worker_type, cmd = glue_workers()
    vcpu = GLUE_VCPU_PER_WORKER[worker_type]
    day_cpu_s = rows_day / rate
    seconds = day_cpu_s / ((workers - 1) * vcpu)
    return {"rows_read": rows, "rows_per_cpu_s": round(rate), "rows_read_per_day": round(rows_day),
            "cpu_s": round(day_cpu_s), "workers": workers, "worker_type": worker_type, "planner_command": cmd,
            "minutes": round(seconds / 60, 1), "meets_goal": seconds < GOAL_S,
            "workers_for_goal": math.ceil(day_cpu_s / vcpu / GOAL_S) + 1}


def headline(a: argparse.Namespace, spark: dict) -> None:
    """Spark's rows per CPU-second and one day at the seed's volume on the planner's workers."""
    read = rows_read(a)
    x = extrapolate(read, spark["cpu_s"])
    print(f"\nSpark: {x['rows_read']:,} archive rows read ({read['clicks']:,} clicks in the 27 input + 24 lookback "
          f"hours, {read['events']:,} events) in {spark['cpu_s']:.1f} CPU-s: {x['rows_per_cpu_s']:,} rows per CPU-second")
    print(f"one day at {SEED_CLICKS_PER_DAY / 1e9:.1f}B clicks/day: {x['rows_read_per_day'] / 1e9:.2f}B archive rows "
          f"= {x['cpu_s']:,} CPU-s; on the planner's {x['workers']} x {x['worker_type']} "
          f"({x['planner_command']}; driver on one, {GLUE_VCPU_PER_WORKER[x['worker_type']]} vCPU per executor "
          f"worker), linear per vCPU: {x['minutes']} min; goal < {GOAL_S // 60} min: "
          f"{'met' if x['meets_goal'] else 'NOT met'}; {x['workers_for_goal']} workers would meet it")
    print(json.dumps({"spark_rows_per_cpu_s": x["rows_per_cpu_s"], "rows_read": read, "extrapolated": x}))


def compare_spend(a: argparse.Namespace) -> bool:
    """The two engines' campaign_spend rows, row for row; prints the budget totals."""
    cols = compared_columns("campaign_spend")
    duckdb = read_rows(Path(a.cache) / "out-duckdb" / "campaign_spend.parquet", cols)
    same = read_rows(Path(a.cache) / "out-spark" / "campaign_spend", cols) == duckdb
    rows = [dict(zip(cols, r)) for r in duckdb]
    budgeted = [r for r in rows if r["budget_micros"] is not None]
    print(f"campaign spend rows={len(rows):,}  budgeted={len(budgeted):,}  "
          f"over budget={sum(1 for r in rows if r['over_budget_clicks']):,}  "
          f"over-budget clicks={sum(r['over_budget_clicks'] for r in rows):,}  "
          f"identical spend results: {same}")
    return same


def compare_events(a: argparse.Namespace) -> bool:
    """The two engines' events_hourly and conversions rows, row for row; prints the totals."""
    spark, duckdb = Path(a.cache) / "out-spark", Path(a.cache) / "out-duckdb"
    same, rows = True, {}
    for dataset in ("events_hourly", "conversions"):
        cols = compared_columns(dataset)
        rows[dataset] = read_rows(duckdb / f"{dataset}.parquet", cols)
        same = same and read_rows(spark / dataset, cols) == rows[dataset]
    cols = compared_columns("events_hourly")
    total = {c: sum(r[i] for r in rows["events_hourly"]) for i, c in enumerate(cols) if i >= 4}
    attribution = sorted(Counter(r[-1] for r in rows["conversions"]).items())
    print(f"impressions={total['impressions']:,}  conversions={len(rows['conversions']):,}  "
          f"events hourly rows={len(rows['events_hourly']):,}  identical events results: {same}")
    print("D's conversions (DuckDB's rows): " + ", ".join(f"{k} {v:,}" for k, v in attribution)
          + f"; attributed value {total['attributed_value_micros'] / 1e6:,.2f}")
    return same


if __name__ == "__main__":
    main()
