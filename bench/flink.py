"""Throughput of the Flink aggregation job on a MiniCluster (run with the PyFlink venv):

    PYTHONPATH=functions .venv-flink/bin/python bench/flink.py [--rows 5000000]

    PYTHONPATH=functions .venv-flink/bin/python bench/flink.py --smoke   # seconds, 20k rows

(a) passthrough: JSON source (the job's columns, watermark and computed columns over bounded
    JSON files instead of Kinesis) -> blackhole
(b) the full job (stage 1 + stage 2, same SQL as production) -> blackhole (OUTPUT_COLUMNS)
(c) the same job with the IVT rules switched off (ivt_rules = ''): b/c is what the rules cost
(d) with --events N: the full job with its events source too, N impressions per click (each
    click's own + N-1 never clicked, 1% resent) and a conversion for 2% of the clicks; its
    rows per CPU-second count every input row (clicks + events)
Same MiniCluster settings for both (parallelism 2, production defaults: mini-batch 2 s / 50,000 rows,
TWO_PHASE), same input: one generated file set (zipf ads incl. one ad with 30% of the clicks,
1% duplicates, time-ordered, 2 files interleaved so both source readers work), generated once
and cached. The sources are bounded (no monitor interval), so each job ends when the input does.
`--set KEY=VALUE` changes a job setting for every mode (e.g. minibatch_size=5000).

Start-up is excluded by subtracting an EMPTY run of the same job (same SQL over an empty input:
planning, submission, task deployment, teardown): wall_net = wall(job) - wall(empty),
cpu_net = cpu(job) - cpu(empty), where cpu = user+sys of the gateway JVM (which hosts the
MiniCluster) plus this Python process, from /proc. Rows per CPU-second = rows / cpu_net;
wall rows/s = rows / wall_net. gc_cpu_s / jit_cpu_s: the part of cpu_net spent by the JVM's
garbage-collector and JIT-compiler threads (per-thread /proc figures; a profile's execution
samples do not see them). Checkpointing is off (a bounded run has nothing to recover).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "functions"))

from aggregate.job import pipeline, sql  # noqa: E402
from aggregate.job.settings import PROPERTY_GROUP, JobSettings  # noqa: E402

T0 = 1_710_112_500_000
AGENTS = tuple(
    [f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     f"Chrome/{100 + i}.0.{i * 7}.0 Safari/537.36" for i in range(300)]
    + [f"Mozilla/5.0 (compatible; Googlebot/2.{i}; +http://www.google.com/bot.html)"
       for i in range(6)])


def generate(path_dir: Path, rows: int, seed: int = 1) -> list[Path]:
    """Two JSON-lines files (even/odd rows of one time-ordered stream), cached by parameters."""
    path_dir.mkdir(parents=True, exist_ok=True)
    files = [path_dir / f"clicks-{i}.jsonl" for i in range(2)]
    marker = path_dir / "DONE"
    if marker.exists() and marker.read_text() == f"v2/{rows}/{seed}":
        return files
    rng = random.Random(seed)
    n_ads = 10_000
    weights = [1.0 / (i + 1) ** 1.1 for i in range(n_ads)]  # zipf s=1.1
    total_w = sum(weights)
    weights = [w / total_w * 0.7 for w in weights]
    weights[0] += 0.3  # one hot ad with 30%+ of the clicks
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    import bisect

    span_ms = 2 * 3600 * 1000  # two hours of event time
    outs = [open(f, "w") for f in files]
    t_start = time.monotonic()
    last = None
    for i in range(rows):
        if last is not None and rng.random() < 0.01:  # a retry: same content
            line = last
        else:
            ad = bisect.bisect_left(cum, rng.random() * acc)
            t = T0 + i * span_ms // rows + rng.randrange(-2000, 1)
            user = rng.randrange(200_000)
            # an address per user, a few hundred agents (2% of them crawlers), a token's
            # impression and issue time: the IVT rules see realistic keys and cache hit rates
            ip = f"10.{user >> 16}.{user >> 8 & 255}.{user & 255}"
            agent = AGENTS[min(int(rng.paretovariate(1.2)) - 1, len(AGENTS) - 1)]
            line = (
                f'{{"click_id":"c{i}","ad_id":"ad-{ad}","campaign_id":"cmp-{ad % 500}",'
                f'"advertiser_id":"adv-{ad % 50}","user_id":"u{user}","event_time":{t},'
                f'"cost_micros":{100000 + ad % 97 * 1000},"ip":"{ip}","user_agent":"{agent}",'
                f'"referrer":"r","ingest_time":{t + 50},"request_id":"q{i}","source_ip":"10.0.0.1",'
                f'"impression_id":"i{i}","issued_at":{t - 5000}}}\n'
            )
        outs[i % 2].write(line)
        last = line
    for o in outs:
        o.close()
    marker.write_text(f"v2/{rows}/{seed}")
    print(f"generated {rows:,} rows in {time.monotonic() - t_start:.0f}s "
          f"({sum(f.stat().st_size for f in files) / 1e9:.2f} GB)", file=sys.stderr)
    return files


def generate_events(path_dir: Path, rows: int, per_click: int, seed: int = 2) -> int:
    """JSON-lines events beside the clicks of `generate` (same ids and times): per click its
    impression and per_click - 1 unclicked ones, 1% resent, a conversion for 2% of the clicks.
    Returns the number of event rows (cached like the clicks)."""
    files = [path_dir / f"events-{i}.jsonl" for i in range(2)]
    marker = path_dir / "EVENTS_DONE"
    if marker.exists() and marker.read_text().startswith(f"v1/{rows}/{per_click}/{seed}/"):
        return int(marker.read_text().rsplit("/", 1)[1])
    rng = random.Random(seed)
    span_ms = 2 * 3600 * 1000
    outs = [open(f, "w") for f in files]
    n = 0

    def write(line: str) -> None:
        nonlocal n
        outs[n % 2].write(line)
        n += 1
    for i in range(rows):
        t = T0 + i * span_ms // rows
        ad = i % 10_000 if i % 10 else 0  # the hot ad again takes a share
        ids = f'"ad_id":"ad-{ad}","campaign_id":"cmp-{ad % 500}","advertiser_id":"adv-{ad % 50}"'
        for k in range(per_click):
            imp = f"i{i}" if k == 0 else f"u{i}-{k}"
            line = (f'{{"event_type":"impression","event_id":"{imp}","schema_version":1,{ids},'
                    f'"event_time":{t - 5000},"impression_id":"{imp}","placement_id":"p1",'
                    f'"publisher_id":"pub1","user_id":"u{i % 200_000}","ingest_time":{t - 4950},'
                    f'"request_id":"r{i}","source_ip":"10.0.0.1"}}\n')
            write(line)
            if rng.random() < 0.01:
                write(line)
        if rng.random() < 0.02:
            write(f'{{"event_type":"conversion","event_id":"o{i}","schema_version":1,{ids},'
                  f'"event_time":{t + 1000},"impression_id":"i{i}","click_id":"c{i}",'
                  f'"value_micros":{rng.randrange(1, 200) * 1_000_000},"currency":"USD",'
                  f'"attributed_by":"token","ingest_time":{t + 1100},"request_id":"q{i}",'
                  f'"source_ip":"10.0.0.2"}}\n')
    for o in outs:
        o.close()
    marker.write_text(f"v1/{rows}/{per_click}/{seed}/{n}")
    return n


def stat_cpu_seconds(stat: str) -> float:
    """utime + stime of a /proc/<pid>/stat (or task stat) line, in seconds (pure)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(jvm_pid: int) -> float:
    with open(f"/proc/{jvm_pid}/stat") as f:
        jvm = stat_cpu_seconds(f.read())
    me = os.times()
    return jvm + me.user + me.system


# The gateway JVM's own long-lived threads by what they do (/proc thread names, 15 chars): the
# garbage collector's (G1: parallel workers, concurrent marking, refinement, the VM thread that
# runs the pauses) and the JIT compilers'. Flink's task threads end with their job, so their CPU
# is the process's minus these.
THREAD_GROUPS = (("gc", ("GC Thread", "G1 ", "VM Thread")), ("jit", ("C1 Compiler", "C2 Compiler")))


def thread_group(name: str) -> str | None:
    """The group of a JVM thread name (THREAD_GROUPS), None for any other thread (pure)."""
    return next((g for g, prefixes in THREAD_GROUPS if name.startswith(prefixes)), None)


def thread_cpu_seconds(jvm_pid: int) -> dict[str, float]:
    """CPU seconds (user + sys) of the JVM's live threads per THREAD_GROUPS group."""
    out = {g: 0.0 for g, _ in THREAD_GROUPS}
    for task in Path(f"/proc/{jvm_pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        group = thread_group(text[text.index("(") + 1:text.rindex(")")])
        if group:
            out[group] += stat_cpu_seconds(text)
    return out


# Heap state (the MiniCluster's default) or RocksDB, what Managed Flink runs (no checkpoints in
# either: a bounded run has nothing to recover, so RocksDB's figure is its state access alone)
STATE_BACKENDS = {"hashmap": {"state.backend.type": "hashmap"},
                  "rocksdb": {"state.backend.type": "rocksdb"}}
# RocksDB's block cache and write buffers are Flink managed memory, shared by the RocksDB
# instances of a slot (one per stateful operator: ~20 here). A local MiniCluster defaults to
# 128 MB in all (Flink's local-execution default), ~3 MB per instance at parallelism 2; a KPU
# (1 vCPU, 4 GB, one slot) gets ~1.3 GB at Flink's default managed fraction 0.4. So the rocksdb
# runs get that per slot (--managed-mb-per-slot; 0 = the local default, the earlier figure).
KPU_MANAGED_MB_PER_SLOT = 1280


def backend_options(state_backend: str, parallelism: int, managed_mb_per_slot: int) -> dict[str, str]:
    opts = dict(STATE_BACKENDS[state_backend])
    if state_backend == "rocksdb" and managed_mb_per_slot:
        opts["taskmanager.memory.managed.size"] = f"{managed_mb_per_slot * parallelism}m"
    return opts


def run_job(settings: JobSettings, input_dir: Path, mode: str, jvm_pid_box: list,
            events_dir: Path | None = None, profile: Path | None = None,
            state_backend: str = "hashmap", managed_mb_per_slot: int = KPU_MANAGED_MB_PER_SLOT,
            ) -> tuple[float, float, dict[str, float]]:
    """Build a fresh environment, run the job to completion; returns (wall s, cpu s, cpu s per
    THREAD_GROUPS group). With
    `profile`, a Java Flight Recorder recording of the run is written there (bench/jfr_operators.py
    reads it)."""
    from aggregate.job.main import connector_jar_uri

    # the jar: the IVT rules' Java functions (and the connector, unused with file sources)
    t_env = pipeline.create_table_env(settings, local=True,
                                      extra={"pipeline.jars": connector_jar_uri(),
                                             **backend_options(state_backend, settings.parallelism,
                                                               managed_mb_per_slot)})
    if not jvm_pid_box:
        from pyflink.java_gateway import get_gateway

        jvm_pid_box.append(get_gateway().jvm.java.lang.ProcessHandle.current().pid())
    source = file_source_ddl(settings, input_dir)
    cpu0, wall0, threads0 = cpu_seconds(jvm_pid_box[0]), time.monotonic(), thread_cpu_seconds(jvm_pid_box[0])
    if mode == "passthrough":
        for k, v in sql.stage1_options(settings).items():
            t_env.get_config().set(k, v)
        t_env.execute_sql(source)
        t_env.execute_sql(
            "CREATE TABLE sink_pass WITH ('connector' = 'blackhole') LIKE clicks (EXCLUDING ALL)")
        cols = ", ".join(f"`{c}`" for c in _click_columns())
        result = t_env.execute_sql(f"INSERT INTO sink_pass SELECT {cols} FROM clicks")
    else:
        pipeline.build_output(t_env, settings, source_ddl=source,
                              events_source_ddl=file_source_ddl(settings, events_dir, events=True)
                              if events_dir else None)
        view = pipeline.sink_view(t_env, settings, t_env.from_path(sql.OUTPUT_VIEW))
        t_env.execute_sql(sql.sink_ddl(settings, connector="blackhole"))
        result = t_env.execute_sql(sql.insert_dml(view=view))
    recording = _start_recording() if profile else None
    result.wait()
    if recording is not None:
        _dump_recording(recording, profile)
    threads = thread_cpu_seconds(jvm_pid_box[0])
    return (time.monotonic() - wall0, cpu_seconds(jvm_pid_box[0]) - cpu0,
            {g: threads[g] - threads0[g] for g in threads})


def _start_recording():
    """A JFR recording in the gateway JVM (which hosts the MiniCluster) with the JDK's 'profile'
    settings (an execution sample every 10 ms per running thread)."""
    from pyflink.java_gateway import get_gateway

    jfr = get_gateway().jvm.jdk.jfr
    recording = jfr.Recording(jfr.Configuration.getConfiguration("profile"))
    recording.start()
    return recording


def _dump_recording(recording, path: Path) -> None:
    from pyflink.java_gateway import get_gateway

    recording.stop()
    path.parent.mkdir(parents=True, exist_ok=True)
    recording.dump(get_gateway().jvm.java.io.File(str(path.resolve())).toPath())
    recording.close()


def file_source_ddl(settings: JobSettings, input_dir: Path, events: bool = False) -> str:
    """The job's `clicks` table (or with `events`, its `events` table) over bounded JSON files
    (read what is there and finish), with the SQL form of the watermark the Kinesis source
    makes per shard."""
    from common.records import CLICK_RECORD_SCHEMA, EVENT_RECORD_SCHEMA

    prefix = "events-" if events else "clicks-"
    opts = {"connector": "filesystem", "path": input_dir.resolve().as_uri(),
            "source.path.regex-pattern": f".*/{prefix}[^/]*", **sql._JSON_OPTIONS}
    cols = sql.source_columns(settings, watermark=sql.watermark_expression(settings),
                              record_schema=EVENT_RECORD_SCHEMA if events else CLICK_RECORD_SCHEMA)
    table = sql.EVENTS_SOURCE_TABLE if events else sql.SOURCE_TABLE
    return f"CREATE TABLE `{table}` (\n  {cols}\n) WITH (\n  {sql._with(opts)}\n)"


def _click_columns():
    from common.records import CLICK_RECORD_SCHEMA

    return CLICK_RECORD_SCHEMA.keys()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--data-dir", default="/tmp/clickagg-flink-bench")
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="20k rows: seconds, proves it still runs")
    ap.add_argument("--events", type=int, default=0, metavar="N",
                    help="also (d): the job with its events source, N impressions per click")
    ap.add_argument("--modes", default=None,
                    help="comma-separated subset of the modes (default: all); a ratio is "
                         "printed when both its modes ran")
    ap.add_argument("--state-backend", choices=tuple(STATE_BACKENDS), default="hashmap",
                    help="the jobs' state backend (Managed Flink runs rocksdb)")
    ap.add_argument("--managed-mb-per-slot", type=int, default=KPU_MANAGED_MB_PER_SLOT,
                    help="rocksdb: Flink managed memory per slot, MB (0: the MiniCluster's "
                         "local default, 128 MB in all)")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR",
                    help="record each mode's measured run with Java Flight Recorder into "
                         "DIR/<mode>.jfr and print where the CPU goes per operator")
    ap.add_argument("--ivt-rules", default=None,
                    help="(b)'s ivt_rules (default: the setting's default, every rule)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a job setting for every mode (a JobSettings property, as Managed "
                         "Flink's runtime properties give it), e.g. minibatch_size=20000")
    args = ap.parse_args()
    if args.smoke:
        args.rows = 20_000

    data = Path(args.data_dir) / f"rows-{args.rows}"
    generate(data, args.rows)
    empty = Path(args.data_dir) / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    (empty / "clicks-0.jsonl").write_text("")
    (empty / "events-0.jsonl").write_text("")
    if args.smoke and not args.events:
        args.events = 2  # the smoke run covers (d) as well, so it cannot rot
    event_rows = generate_events(data, args.rows, args.events) if args.events else 0

    bad = [kv for kv in args.set if "=" not in kv]
    if bad:
        ap.error(f"--set takes KEY=VALUE, got {', '.join(bad)}")
    overrides = dict(kv.split("=", 1) for kv in args.set)

    def settings_for(d: Path, mode: str) -> JobSettings:
        # the SQL is the production job's; the streams are never opened (bounded files instead)
        props = {**overrides, "aws_region": "us-east-1", "parallelism": str(args.parallelism),
                 "clicks_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/bench-in",
                 "aggregates_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/bench-out"}
        # (c): the same job with every IVT rule off (what the rules cost)
        if mode == "pipeline_no_ivt":
            props["ivt_rules"] = ""
        elif args.ivt_rules is not None:
            props["ivt_rules"] = args.ivt_rules
        return JobSettings.from_properties({PROPERTY_GROUP: props})

    pid: list = []
    results = {}
    modes = ("passthrough", "pipeline", "pipeline_no_ivt") + (("pipeline_events",) if args.events else ())
    if args.modes:
        modes = tuple(m for m in modes if m in args.modes.split(","))
    for mode in modes:
        job_mode = "passthrough" if mode == "passthrough" else "pipeline"
        events = mode == "pipeline_events"
        backend, managed = args.state_backend, args.managed_mb_per_slot
        run_job(settings_for(empty, mode), empty, job_mode, pid,  # warm-up (JIT, class loading)
                empty if events else None, state_backend=backend, managed_mb_per_slot=managed)
        base_wall, base_cpu, base_threads = run_job(settings_for(empty, mode), empty, job_mode, pid,
                                                    empty if events else None, state_backend=backend,
                                                    managed_mb_per_slot=managed)
        recording = args.profile / f"{mode}.jfr" if args.profile else None
        wall, cpu, threads = run_job(settings_for(data, mode), data, job_mode, pid,
                                     data if events else None, profile=recording, state_backend=backend,
                                     managed_mb_per_slot=managed)
        net_wall, net_cpu = wall - base_wall, cpu - base_cpu
        rows = args.rows + (event_rows if events else 0)
        results[mode] = {
            "rows": rows, **({"clicks": args.rows, "events": event_rows} if events else {}),
            "wall_s": round(wall, 1), "empty_wall_s": round(base_wall, 1),
            "cpu_s": round(cpu, 1), "empty_cpu_s": round(base_cpu, 1),
            # None when the run is within the empty run's noise (tiny --smoke inputs)
            "wall_rows_per_s": round(rows / net_wall) if net_wall > 0 else None,
            "rows_per_cpu_s": round(rows / net_cpu) if net_cpu > 0 else None,
            # of cpu_s net of the empty run: the garbage collector's and the JIT's threads
            **{f"{g}_cpu_s": round(threads[g] - base_threads[g], 1) for g in threads},
        }
        print(f"{mode:12s} {json.dumps(results[mode])}", flush=True)
        if recording:
            from jfr_operators import summarize

            print(f"{mode:12s} profile {json.dumps(summarize(str(recording), top=15))}", flush=True)

    def ratio(x: dict, y: dict, key: str) -> float | None:
        return round(x[key] / y[key], 3) if x[key] and y[key] else None

    ratios = {  # name: (numerator mode, denominator mode, figure)
        "ratio_b_over_a_wall": ("pipeline", "passthrough", "wall_rows_per_s"),
        "ratio_b_over_a_cpu": ("pipeline", "passthrough", "rows_per_cpu_s"),
        # < 1: the IVT rules' share of the job's cost (b with the rules, c without)
        "ratio_b_over_c_cpu": ("pipeline", "pipeline_no_ivt", "rows_per_cpu_s"),
        # (d) over (b): rows per CPU-second with the three event types vs clicks only
        "ratio_d_over_b_cpu": ("pipeline_events", "pipeline", "rows_per_cpu_s"),
    }
    print(json.dumps({  # each ratio whose two modes ran (--modes may run a subset)
        **{name: ratio(results[x], results[y], key) for name, (x, y, key) in ratios.items()
           if x in results and y in results},
        "cores": os.cpu_count(), "parallelism": args.parallelism,
        "state_backend": args.state_backend,
        **({"managed_mb_per_slot": args.managed_mb_per_slot} if args.state_backend == "rocksdb" else {}),
        **({"settings": overrides} if overrides else {}),
    }), flush=True)


if __name__ == "__main__":
    main()
