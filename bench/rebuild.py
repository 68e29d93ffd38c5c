"""Rebuild from the archive (issue 21): rows per CPU-second of the rebuild job and the time to
rebuild one day at the seed's volume (run with the PyFlink venv):

    PYTHONPATH=functions .venv-flink/bin/python bench/rebuild.py [--clicks 10000000]
           [--impressions-per-click 0] [--cache /tmp/billing-bench-cache] [--parallelism 2]
    PYTHONPATH=functions .venv-flink/bin/python bench/rebuild.py --smoke   # ~1 min: 10k clicks,
           1 impression per click, a fresh temporary cache; the same steps but the warm-up, the
           same check (it runs and counts right; the figures are not the bench's)

Input: bench/billing.py's archive generator (imported, same cache directory and key, so the two
benches share one generated archive): raw/clicks/ (and raw/events/ with impressions) under
dt=YYYY-MM-DD/hr=HH/ by arrival, with duplicate copies, late and early clocks, impression and
user repeats, IP bursts, data-centre addresses and crawler agents; `--clicks` N clicks in the
27 arrival hours D-1 23 .. D+1 01 (billing.DAY = D) and 24 lookback hours before them. The
rebuild of day D reads the arrival hours rebuild_range gives: D 00:00 - (dedup_ttl_s + the
300 s future skew) .. D+1 00:00 + the 2 h arrival cutoff, i.e. the 27 partitions D-1 23 ..
D+1 01: the day's archive plus the lookback window (the billing generator's 24 older hours are
not read). Events: default none at full size (`--impressions-per-click 0`: 5 per click would be
50M more rows, not cheap on 2 cores); --smoke includes 1 per click so the events lane runs.

Steps, one Python process and one JVM (MiniCluster, `--parallelism` task slots), each job in
the rebuild's own batch environment (aggregate.job.rebuild.create_batch_env):
  warm-up  the rebuild over an empty archive (class loading, JIT)
  empty    the same again: the fixed cost (planning, submission, deployment, teardown)
  scan     the baseline: the same partitions of the same Parquet, every column, to a blackhole
           (after its own empty run)
  rebuild  aggregate.job.rebuild.run for day D (the stream job's SQL in batch mode) to JSON
CPU = user + sys of the gateway JVM (which hosts the MiniCluster) and its children plus this
Python process, from /proc (as bench/flink.py); net = a run minus its empty run. Rows read =
the archive records in the read window (Parquet metadata); rows per CPU-second = rows read /
net CPU. The ratio rebuild / scan (rows per CPU-second) is the headline's baseline.

Extrapolation (printed with every assumption): a day at the seed's 8.6B clicks/day (seed 004,
500K clicks/s peak) read the same way = the bench's rows read x (8.6B / 24 clicks per arrival
hour) / (the bench's clicks per input hour); CPU-seconds = that / the measured net rows per
CPU-second; on the KPUs the capacity planner gives the rebuild application for that volume
(capacity.planner.plan(rate=8.6B/86400, peak=500000).component("rebuild") with the run's
impressions per click, conversions 0.02 per click with events, none without; 1 vCPU per KPU;
the planner sizes it from its own rows-per-CPU-second input, REBUILD_ROWS_PER_CPU_S, which this
bench measures), assuming throughput scales linearly per core; + the empty run's wall time once.
Goal: < 30 min. The planner's load of the rows into the serving table is printed beside it:
phase 1 (leaderboards, late counters, 1h/1d series: the day visible) and phase 2 (1m/5m series).

The check (so the smoke test can fail): the rebuild's 1d 'agg' rows of D count exactly the
distinct clicks (first arrival by ingest time, then click_id) of D that were on time against the
watermark each met on arrival, and its 'late' rows of D's minutes the ones that were not
(computed in Python from the archive's records, independently of the SQL); with events, the
same for impressions.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "functions"), str(REPO / "bench")]

import billing  # noqa: E402  (bench/billing.py: the archive generator and its cache layout)

SEED_CLICKS_PER_DAY, SEED_PEAK, GOAL_S = billing.SEED_CLICKS_PER_DAY, billing.SEED_PEAK, billing.GOAL_S
VCPU_PER_KPU = 1  # a Managed Flink KPU: 1 vCPU, 4 GB
SMOKE_CLICKS, SMOKE_IMPRESSIONS = 10_000, 1


# ---------------------------------------------------------------------------- measuring

def cpu_seconds(jvm_pid: int) -> float:
    """user + sys of the JVM (children it waited for included) and its live descendants, plus
    this process."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    total, stack = 0.0, [jvm_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15 if pid == jvm_pid else 13]) / tick
    me = os.times()
    return total + me.user + me.system


class Meter:
    def __init__(self):
        from pyflink.java_gateway import get_gateway

        self.pid = get_gateway().jvm.java.lang.ProcessHandle.current().pid()

    def run(self, fn) -> tuple[float, float]:
        """(wall s, cpu s) of fn()."""
        cpu0, wall0 = cpu_seconds(self.pid), time.monotonic()
        fn()
        return time.monotonic() - wall0, cpu_seconds(self.pid) - cpu0


# ---------------------------------------------------------------------------- jobs

def settings_for(parallelism: int):
    from aggregate.job.settings import JobSettings

    # the stream job's defaults (dedup_ttl_s, lateness, IVT rules, leaderboards, budget lane);
    # the streams are never opened
    return JobSettings.from_properties({"clickagg": {
        "aws_region": "us-east-1",
        "clicks_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/bench-in",
        "aggregates_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/bench-out",
        "parallelism": str(parallelism)}})


def day_range(s):
    from aggregate.job import rebuild

    d0 = int(datetime(billing.DAY.year, billing.DAY.month, billing.DAY.day, tzinfo=timezone.utc).timestamp() * 1000)
    start, end = rebuild.day_range(d0)
    return rebuild.rebuild_range(start, end, now_ms=end + 10 * billing.DAY_MS, s=s)


def run_rebuild(s, r, root: Path, out: Path, events: bool, parallelism: int) -> None:
    from aggregate.job import rebuild
    from aggregate.job.main import connector_jar_uri

    shutil.rmtree(out, ignore_errors=True)
    rebuild.run(s, r, root.resolve().as_uri(), out.resolve().as_uri(), jar_uri=connector_jar_uri(),
                events=events, parallelism=parallelism)


def run_scan(s, r, root: Path, events: bool, parallelism: int) -> None:
    """The baseline: every column of the read window's partitions to a blackhole (the same
    source DDL and partition filter as the rebuild's)."""
    from aggregate.job import rebuild, sql
    from aggregate.job.main import connector_jar_uri
    from common.archive import CLICKS, EVENTS
    from common.records import CLICK_RECORD_SCHEMA, EVENT_RECORD_SCHEMA

    t_env = rebuild.create_batch_env(s, connector_jar_uri(), parallelism)
    statements = t_env.create_statement_set()
    tables = [(sql.ARCHIVE_CLICKS, CLICKS, CLICK_RECORD_SCHEMA)]
    if events:
        tables.append((sql.ARCHIVE_EVENTS, EVENTS, EVENT_RECORD_SCHEMA))
    for table, layout, schema in tables:
        t_env.execute_sql(sql.archive_source_ddl(table, f"{root.resolve().as_uri()}/{layout.prefix}", schema,
                                                 r.partitions))
        cols = ", ".join(f"`{c}` {sql._FLINK_TYPES[t]}" for c, t in schema.items())
        t_env.execute_sql(f"CREATE TEMPORARY TABLE `{table}_scan` ({cols}) WITH ('connector' = 'blackhole')")
        statements.add_insert_sql(f"INSERT INTO `{table}_scan` SELECT {', '.join(f'`{c}`' for c in schema)} "
                                  f"FROM `{table}` WHERE {sql._partition_filter(r.partitions)}")
    statements.execute().wait()


def empty_archive(root: Path) -> Path:
    from common.archive import CLICKS, EVENTS

    for layout in (CLICKS, EVENTS):
        (root / layout.prefix).mkdir(parents=True, exist_ok=True)
    return root


# ---------------------------------------------------------------------------- data and the check

def partition_files(root: Path, layout, r) -> list[Path]:
    return [f for dt, hr in r.partitions for f in sorted((root / layout.prefix / f"dt={dt}" / f"hr={hr}").glob("*.parquet"))]


def rows_read(root: Path, r, events: bool) -> dict[str, int]:
    import pyarrow.parquet as pq
    from common.archive import CLICKS, EVENTS

    layouts = [CLICKS, EVENTS] if events else [CLICKS]
    return {layout.name: sum(pq.ParquetFile(f).metadata.num_rows for f in partition_files(root, layout, r))
            for layout in layouts}


def counted_and_late(root: Path, r, s, layout, id_cols: list[str], keep) -> tuple[int, int]:
    """(on time, late) distinct records of D, brute force over the read window's records: the
    first copy per id by (arrival, id), the watermark it met = the newest event time of the
    records that arrived in earlier seconds - watermark_delay_s, late = not before the end of its
    minute + allowed_lateness. `keep(table)`: the records that count (a mask)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = partition_files(root, layout, r)
    if not files:
        return 0, 0
    cols = [*dict.fromkeys([*id_cols, "ad_id", "event_time", "ingest_time"])]
    df = pa.concat_tables([pq.read_table(f, columns=cols) for f in files]).to_pandas()
    df["arrival"] = df["ingest_time"].fillna(df["event_time"])
    # the watermark each arrival second met (every record of the window, as the stream's source)
    sec = (df["arrival"] // 1000).dropna().astype("int64")
    newest = df.loc[sec.index, "event_time"].groupby(sec).max().sort_index()
    before = newest.cummax().shift(1) - s.watermark_delay_s * 1000
    df = df[keep(df)].sort_values(["arrival", id_cols[-1]], kind="stable")
    first = df.drop_duplicates(id_cols, keep="first")
    wm = (first["arrival"] // 1000).astype("int64").map(before)
    minute = first["event_time"] // 60_000 * 60_000
    on_time = wm.isna() | (wm < minute + 60_000 + s.allowed_lateness_ms)
    in_day = (first["event_time"] >= r.start_ms) & (first["event_time"] < r.end_ms)
    return int((on_time & in_day).sum()), int((~on_time & in_day).sum())


def check(out: dict, root: Path, r, s, events: bool) -> dict:
    """The rebuild's day sums (`out`, summarize_output's) against the brute-force counts."""
    from common.archive import CLICKS, EVENTS

    def day_sum(kind: str, res: str, col: str) -> int:
        return out["day_sums"].get(f"{kind}/{res}/{col}", 0)

    def valid(df):
        return df["click_id"].notna() & df["ad_id"].notna() & df["event_time"].notna() & (df["event_time"] >= 0)
    clicks, late = counted_and_late(root, r, s, CLICKS, ["click_id"], valid)
    got = {"clicks_1d": day_sum("agg", "1d", "clicks"), "clicks_1m": day_sum("agg", "1m", "clicks"),
           "campaign_clicks_1d": day_sum("campaign", "1d", "clicks"), "late_dropped": day_sum("late", "1m", "late_dropped")}
    want = {"clicks_1d": clicks, "clicks_1m": clicks, "campaign_clicks_1d": clicks, "late_dropped": late}
    if events:
        def impression(df):
            return (df["event_type"] == "impression") & df["event_id"].notna() & df["ad_id"].notna() \
                & df["event_time"].notna() & (df["event_time"] >= 0)
        got["impressions_1d"] = day_sum("agg", "1d", "impressions")
        want["impressions_1d"] = counted_and_late(root, r, s, EVENTS, ["event_type", "event_id"], impression)[0]
    return {"got": got, "want": want, "ok": got == want}


SUMMED = ("clicks", "impressions", "late_dropped")


def summarize_output(out: Path, r) -> dict:
    """Rows per kind and, per (kind, resolution), the sums of SUMMED over D's buckets, read file by
    file with only the columns needed (a 10M-click day writes ~18M rows, 7 GB of JSON)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    schema = pa.schema([("kind", pa.string()), ("resolution", pa.string()), ("bucket_start", pa.int64()),
                        *[(c, pa.int64()) for c in SUMMED]])
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    rows, by_kind, sums = 0, {}, {}
    for f in sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")):
        t = pj.read_json(f, parse_options=options)
        rows += t.num_rows
        in_day = pc.and_(pc.greater_equal(t["bucket_start"], r.start_ms), pc.less(t["bucket_start"], r.end_ms))
        t = t.append_column("key", pc.binary_join_element_wise(t["kind"], t["resolution"], "/"))
        for row in t.group_by("kind").aggregate([("kind", "count")]).to_pylist():
            by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + row["kind_count"]
        day = t.filter(in_day).group_by("key").aggregate([(c, "sum") for c in SUMMED])
        for row in day.to_pylist():
            for c in SUMMED:
                k = f"{row['key']}/{c}"
                sums[k] = sums.get(k, 0) + (row[f"{c}_sum"] or 0)
    return {"rows": rows, "by_kind": dict(sorted(by_kind.items())), "day_sums": sums}


# ---------------------------------------------------------------------------- extrapolation

def planner_rebuild(events_per_click: float) -> tuple[dict, str]:
    """The capacity planner's rebuild component for the seed day at this run's event mix: the
    KPUs it gives the rebuild application (sized for the < 30 min target from its own
    throughput input, which this bench measures) and its DynamoDB load time."""
    from capacity.planner import plan

    rate = SEED_CLICKS_PER_DAY / 86_400
    conversions = 0.02 if events_per_click else 0.0
    impressions = max(0.0, events_per_click - conversions)
    c = plan(rate=rate, peak=SEED_PEAK, impressions_per_click=impressions,
             conversions_per_click=conversions).component("rebuild")
    cmd = (f"python -m capacity plan --rate {rate:.0f} --peak {SEED_PEAK} --impressions-per-click "
           f"{impressions:g} --conversions-per-click {conversions:g}")
    return {"kpus": int(c.context["rebuild_parallelism"]) // VCPU_PER_KPU,
            "visible_minutes": round(c.metric("recompute visible (job + phase 1 load)"), 1),
            "complete_minutes": round(c.metric("recompute complete (+ phase 2 load)"), 1),
            "load_rate": round(c.metric("load rate (table headroom over the stream's average)")),
            "first_rows": round(c.metric("load phase 1 items (boards, late, 1h/1d series)")),
            "output_rows": round(c.metric("output rows per day (serving items)"))}, cmd


def extrapolate(read: dict[str, int], hours_read: int, rows_per_cpu_s: float, fixed_wall_s: float) -> dict:
    """One day at the seed's volume on the planner's rebuild KPUs (module doc). The generator
    writes clicks at one rate per arrival hour, so the seed's window holds the bench's rows x
    (seed clicks per hour / the bench's)."""
    scale = (SEED_CLICKS_PER_DAY / 24) / (read["clicks"] / hours_read)
    rows_day = sum(read.values()) * scale
    events_per_click = read.get("events", 0) / read["clicks"]
    planned, cmd = planner_rebuild(events_per_click)
    kpus = planned["kpus"]
    cpu_s = rows_day / rows_per_cpu_s
    seconds = cpu_s / (kpus * VCPU_PER_KPU) + fixed_wall_s
    needed = math.ceil(cpu_s / VCPU_PER_KPU / (GOAL_S - fixed_wall_s))
    return {"seed_clicks_per_day": SEED_CLICKS_PER_DAY, "hours_read": hours_read,
            "rows_read_per_day": round(rows_day), "events_per_click": round(events_per_click, 3),
            "cpu_s": round(cpu_s), "planner_kpus": kpus, "planner_command": cmd,
            "minutes": round(seconds / 60, 1), "goal_minutes": GOAL_S // 60, "meets_goal": seconds < GOAL_S,
            "kpus_for_goal": needed, "planner_visible_minutes": planned["visible_minutes"],
            "planner_complete_minutes": planned["complete_minutes"],
            "planner_load_rate": planned["load_rate"], "planner_first_rows": planned["first_rows"],
            "planner_output_rows": planned["output_rows"]}


# ---------------------------------------------------------------------------- main

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clicks", type=int, default=10_000_000)
    p.add_argument("--impressions-per-click", type=int, default=0,
                   help="impressions in the events archive per click (0: clicks only; --smoke: 1)")
    p.add_argument("--cache", help="the archive (bench/billing.py's cache; default /tmp/billing-bench-cache, "
                                   "with --smoke a temporary directory, removed afterwards)")
    p.add_argument("--parallelism", type=int, default=2)
    p.add_argument("--keep-output", action="store_true",
                   help="keep the rebuild's rows (JSON lines, ~0.75 GB per million clicks) under <cache>/rebuild-work/rows")
    p.add_argument("--smoke", action="store_true", help="10k clicks, 1 impression per click: about a minute "
                                                        "(keeps the output)")
    a = p.parse_args()
    if a.smoke:
        a.clicks, a.impressions_per_click, a.keep_output = SMOKE_CLICKS, SMOKE_IMPRESSIONS, True
        if a.cache is None:
            with tempfile.TemporaryDirectory(prefix="rebuild-bench-smoke-") as tmp:
                a.cache = tmp
                bench(a)
            return
    a.cache = a.cache or "/tmp/billing-bench-cache"
    bench(a)


def bench(a: argparse.Namespace) -> None:
    data = billing.data_dir(a)
    billing.generate(a.clicks, data, impressions_per_click=a.impressions_per_click)
    events = a.impressions_per_click > 0
    root, work = data, Path(a.cache) / "rebuild-work"
    shutil.rmtree(work, ignore_errors=True)
    empty = empty_archive(work / "empty")
    s = settings_for(a.parallelism)
    r = day_range(s)
    read = rows_read(root, r, events)
    print(f"[rebuild] day {billing.DAY}: {r.describe()}; rows read {json.dumps(read)}", flush=True)
    load_start = os.getloadavg()[0]

    if not a.smoke:  # class loading, JIT (--smoke: its empty runs are the warm-up too)
        run_rebuild(s, r, empty, work / "warmup", events, a.parallelism)
    meter = Meter()
    results = {}
    for mode in ("scan", "rebuild"):
        def job(archive: Path, out: str):
            if mode == "scan":
                return lambda: run_scan(s, r, archive, events, a.parallelism)
            return lambda: run_rebuild(s, r, archive, work / out, events, a.parallelism)
        empty_wall, empty_cpu = meter.run(job(empty, "empty"))
        wall, cpu = meter.run(job(root, "rows"))
        net_cpu, net_wall = cpu - empty_cpu, wall - empty_wall
        n = sum(read.values())
        results[mode] = {"rows_read": n, "wall_s": round(wall, 1), "empty_wall_s": round(empty_wall, 1),
                         "cpu_s": round(cpu, 1), "empty_cpu_s": round(empty_cpu, 1),
                         # None when a run is within the empty run's noise (tiny --smoke inputs)
                         "rows_per_cpu_s": round(n / net_cpu) if net_cpu > 0 else None,
                         "wall_rows_per_s": round(n / net_wall) if net_wall > 0 else None}
        if mode == "rebuild":
            output = summarize_output(work / "rows", r)
            if not a.keep_output:
                shutil.rmtree(work / "rows")
            results[mode].update(output_rows=output["rows"], output_by_kind=output["by_kind"])
        print(f"{mode:8s} {json.dumps(results[mode])}", flush=True)

    verdict = check(output, root, r, s, events)
    print(f"check    {json.dumps(verdict)}", flush=True)
    b, sc = results["rebuild"], results["scan"]
    ratio = round(b["rows_per_cpu_s"] / sc["rows_per_cpu_s"], 3) if b["rows_per_cpu_s"] and sc["rows_per_cpu_s"] else None
    x = extrapolate(read, len(r.partitions), b["rows_per_cpu_s"], b["empty_wall_s"]) \
        if b["rows_per_cpu_s"] else None
    summary = {"clicks": a.clicks, "impressions_per_click": a.impressions_per_click, "rows_read": read,
               "output_rows": b["output_rows"],
               "rebuild_rows_per_cpu_s": b["rows_per_cpu_s"], "scan_rows_per_cpu_s": sc["rows_per_cpu_s"],
               "ratio_rebuild_over_scan_cpu": ratio, "extrapolated": x, "check_ok": verdict["ok"],
               "cores": os.cpu_count(), "parallelism": a.parallelism,
               "load_avg_start": round(load_start, 1), "load_avg_end": round(os.getloadavg()[0], 1)}
    print(f"\nrebuild of {billing.DAY} ({a.clicks:,} clicks in D's 27 input hours, events: "
          f"{read.get('events', 0):,} rows): {sum(read.values()):,} archive rows read, "
          f"{b['output_rows']:,} output rows, {b['wall_s']:.1f} s wall, {b['cpu_s']:.1f} CPU-s "
          f"(empty run {b['empty_wall_s']:.1f} s / {b['empty_cpu_s']:.1f} CPU-s)")
    print(f"rows per CPU-second: rebuild {b['rows_per_cpu_s'] or 0:,}  scan {sc['rows_per_cpu_s'] or 0:,}  "
          f"rebuild / scan {ratio}")
    if x:
        print(f"one day at {SEED_CLICKS_PER_DAY / 1e9:.1f}B clicks/day: {x['rows_read_per_day'] / 1e9:.2f}B archive "
              f"rows in {x['hours_read']} arrival hours (the day + the {s.dedup_ttl_s} s dedup lookback + 300 s "
              f"skew, rounded to the hour, + the 2 h arrival cutoff) = {x['cpu_s']:,} CPU-s at "
              f"{b['rows_per_cpu_s']:,} rows/CPU-s; on the planner's {x['planner_kpus']} KPUs "
              f"({x['planner_command']}: the rebuild application's KPUs, 1 vCPU each), linear per core, + "
              f"{b['empty_wall_s']:.0f} s start-up: {x['minutes']} min; goal < {x['goal_minutes']} min: "
              f"{'met' if x['meets_goal'] else 'NOT met'}; {x['kpus_for_goal']} KPUs would meet it")
        print(f"then the load of its rows into the serving table (not in the figure above; the "
              f"planner, at the table's {x['planner_load_rate']:,} writes/s of headroom over the "
              f"stream): phase 1 ({x['planner_first_rows']:,} items: leaderboards, late counters, "
              f"1h/1d series) makes the day visible at {x['planner_visible_minutes']:,} min "
              f"(job included); phase 2 (the rest of {x['planner_output_rows']:,} items: 1m/5m "
              f"series) completes it at {x['planner_complete_minutes']:,} min")
    print(f"load average (1 min) at the start: {load_start:.1f}, at the end: {os.getloadavg()[0]:.1f} "
          f"({os.cpu_count()} cores; other jobs share them)")
    print(json.dumps(summary), flush=True)
    if not verdict["ok"]:
        raise SystemExit(f"the rebuild's counts differ from the brute-force count: {verdict}")


if __name__ == "__main__":
    main()
