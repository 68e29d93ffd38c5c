"""Drive the whole local stack (HTTP -> ingest -> Kinesis -> Flink -> sink -> DynamoDB, plus the
archiver) as fast as it sustains for a few minutes; report accepted clicks/s, end-to-end
freshness p50/p95/p99 and CPU per process, to show which component saturates first.

    .venv/bin/python bench/pipeline.py [--seconds 120] [--concurrency 6] [--batch 100] [--rate R]
    .venv/bin/python bench/pipeline.py --smoke     # ~1 min: a tiny paced load, same figures

Without --rate it sends as fast as the stack accepts (throughput; freshness then measures the
backlog). With --rate R (clicks/s, below saturation) it shows the pipeline's own latency.
--smoke checks that the bench still runs end to end (tests/integration/test_bench_pipeline_smoke.py):
it sends a small load whole (no time box) at a low rate; its figures mean little.

Scaled down: moto server stands in for DynamoDB/Kinesis and is itself the slowest part (one
Python process). The figures rank the local components; they are not AWS throughput.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "functions")]

from local.freshness import FreshnessSampler, percentiles  # noqa: E402
from local.readback import read_stream  # noqa: E402
from local.stack import LocalStack, StackOptions  # noqa: E402
from tools.loadgen import HOT_AD, LoadSpec, generate  # noqa: E402
from tools.sender import send_load  # noqa: E402
from common.config import IngestSettings  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
SMOKE = dict(seconds=15, rate=20.0, concurrency=2, batch=20)  # 300 distinct clicks, sent whole


def proc_tree_cpu(root_pid: int) -> float:
    """CPU seconds (user+sys) of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        stats[pid] = (int(fields[11]) + int(fields[12])) / TICK
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def stream_records(stream: str) -> int:
    """Records on every shard of a stream, from TRIM_HORIZON (counted, not decoded)."""
    import boto3

    kinesis, n = boto3.client("kinesis"), 0
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = kinesis.get_records(ShardIterator=it, Limit=10_000)
            n += len(page["Records"])
            if not page["Records"]:
                break
            it = page.get("NextShardIterator")
    return n


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=120, help="how long to send")
    p.add_argument("--concurrency", type=int, default=6, help="concurrent HTTP clients")
    p.add_argument("--batch", type=int, default=100, help="clicks per request")
    p.add_argument("--rate", type=float, help="pace the sending at this many clicks/s (default: flat out)")
    p.add_argument("--smoke", action="store_true",
                   help=f"a short run to check the bench works: {SMOKE} (overrides those options)")
    p.add_argument("--state-dir", type=Path, default=REPO / ".local" / "bench",
                   help="consumer positions, Flink checkpoints and logs (default: .local/bench)")
    args = p.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    est_rate = int(args.rate) if args.rate else 400  # clicks generated per second; the sender stops at --seconds
    spec = LoadSpec(clicks=est_rate * args.seconds, ads=200, span_s=args.seconds, seed=99, duplicate_rate=0.02)
    load = generate(spec, end_ms=int(time.time() * 1000) + args.seconds * 1000 // 2)
    settings = IngestSettings(hot_ad_salts={HOT_AD: 4})
    with LocalStack(StackOptions(settings=settings, state_dir=args.state_dir)) as stack:
        # measure from the job's first checkpoint: every task (the Kinesis source too) is running
        # by then; "submitted" comes several seconds earlier and would count start-up as latency
        print(f"stack up (state and logs in {args.state_dir}); Flink job submitted after "
              f"{stack.flink_job.wait_ready():.0f}s, first checkpoint {stack.flink_job.wait_checkpoint():.0f}s "
              "later", flush=True)
        sampler = FreshnessSampler(stack.names.serving_table, HOT_AD, interval_s=0.5).start()
        procs = {"moto server (DynamoDB+Kinesis emulator)": stack.moto._proc.pid,
                 "Flink job (driver + MiniCluster JVM)": stack.flink_job._proc.pid}
        cpu0 = {k: proc_tree_cpu(v) for k, v in procs.items()}
        own0, t0 = self_cpu(), time.monotonic()
        # time-box the load (only what fits in --seconds is sent); a smoke run sends all of it
        stop_at = None if args.smoke else time.monotonic() + args.seconds
        result = {}
        sender = threading.Thread(target=lambda: result.update(r=send_load(
            stack.api.url, load.sends, batch_size=args.batch, concurrency=args.concurrency, progress=False,
            deadline=stop_at, rate=args.rate)))
        sender.start()
        sender.join()
        wall = time.monotonic() - t0
        report = result["r"]
        accepted = report.outcomes["accepted"]
        cpu = {k: proc_tree_cpu(v) - cpu0[k] for k, v in procs.items()}
        cpu["local stack process (API, ingest + sink Lambdas, archiver, sampler)"] = self_cpu() - own0
        # where a backlog sits when the send ends: in the job (clicks not yet aggregated) or
        # between the aggregates stream and the store (changelog rows not yet delivered to the sink)
        produced, delivered = stream_records(stack.names.aggregates_stream), stack.sink_mapping.delivered
        # let the pipeline drain, then measure freshness of what was accepted
        hot = [(report.post_times[c["click_id"]], c["event_time"] - c["event_time"] % 60_000)
               for c in load.truth if c["ad_id"] == HOT_AD and c["click_id"] in report.post_times]
        deadline = time.monotonic() + (120 if args.smoke else 300)
        while time.monotonic() < deadline and len(sampler.latencies(hot)) < len(hot):
            time.sleep(1)
        sampler.stop()
        visible = sampler.latencies(hot)
        lat = percentiles(visible)
        on_stream = sum(len(recs) for recs in read_stream(stack.names.clicks_stream).values())
        mode = (f", paced at {args.rate:g} clicks/s" if args.rate else ", flat out") + (" (smoke run)" if args.smoke else "")
        print(f"\nsent for {wall:.0f}s with {args.concurrency} clients x {args.batch}-click requests{mode}")
        print(f"sent {len(report.sent_ids)} distinct clicks; accepted {accepted} clicks = {accepted / wall:.0f} clicks/s "
              f"({report.outcomes['duplicate']} duplicates, {report.retries} retried items); "
              f"clicks stream holds {on_stream} records")
        if lat:
            print(f"freshness (posted -> visible in serving store, {HOT_AD}, {len(visible)} of {len(hot)} clicks "
                  f"seen): p50 {lat['p50']:.1f}s  p95 {lat['p95']:.1f}s  p99 {lat['p99']:.1f}s")
            # a pipeline that sustains the rate keeps its latency; a backlog makes the last third
            # later (latencies() lists the clicks in posting order, so split it when all were seen)
            n = len(visible) // 3
            if n and len(visible) == len(hot):
                first, last = percentiles(visible[:n]), percentiles(visible[-n:])
                print(f"  first third of the send p50 {first['p50']:.1f}s / p95 {first['p95']:.1f}s, "
                      f"last third p50 {last['p50']:.1f}s / p95 {last['p95']:.1f}s"
                      + ("  (growing: a backlog, the stack does not sustain this rate)"
                         if last["p50"] > 2 * first["p50"] + 5 else ""))
        else:
            print(f"freshness: none of the {len(hot)} accepted {HOT_AD} clicks became visible in the serving store")
        print("CPU during the send (2 cores = 200%):")
        for name, secs in sorted(cpu.items(), key=lambda t: -t[1]):
            print(f"  {100 * secs / wall:5.0f}%  {name}")
        print(f"busiest process: {max(cpu, key=cpu.get)}")
        print(f"when the send ended: the job had written {produced} changelog rows to the aggregates stream "
              f"({produced / max(accepted, 1):.1f} per accepted click), the sink had been delivered {delivered}")


if __name__ == "__main__":
    main()
