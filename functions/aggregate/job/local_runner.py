"""Run the aggregation job locally (MiniCluster) and ship its changelog like the AWS sink would.

    PYTHONPATH=functions .venv-flink/bin/python -m aggregate.job.local_runner \
        --input-dir D --checkpoint-dir C (--out-stream NAME | --out-file PATH|-)

* Source: the LOCAL variant of the same DDL (`filesystem`, JSON lines in D, monitored every
  `monitor_interval_ms`); feed D with `aggregate.job.feed.write_batch` (lossless protocol).
* The same stage-1/stage-2 SQL as on AWS; the one output changelog reaches the runner in one of
  two ways, then goes as debezium-json records (the bytes Flink's debezium-json format writes to
  the Kinesis sink on AWS) to a Kinesis stream (boto3; AWS_ENDPOINT_URL selects e.g. the moto
  server; PutRecords <= 500, failed entries retried, partition key = ad_id) and/or a file:
    --emit files (default): INSERT INTO a `filesystem` sink with 'format' = 'debezium-json' in
      C/changelog: Flink itself encodes every +I/-U/+U/-D row; part files are committed on
      checkpoints and the runner ships and deletes them. Throughput is Flink's.
    --emit collect: `execute_sql(SELECT ...).collect()` and the rows are encoded in Python
      (output.debezium_record, byte-identical to Flink's serializer: tests/flink). PyFlink's
      collect costs ~3 py4j round trips per row (measured ~500 rows/s on this machine), so this
      mode throttles the job under real load; kept for debugging.
* Checkpoints: EXACTLY_ONCE, filesystem storage in C, retained on cancel. Output becomes visible
  only when the checkpoint covering it completed (both modes), so a restart from the latest
  retained checkpoint in C (automatic unless --fresh) re-emits at most the rows after it: the
  consumer's version rule makes those duplicates harmless. Before a restored job starts, the input
  files its checkpoint does not know are merged in publish order (`feed.replay_in_order`): the
  restored source would list them at once and read the newest first, and rows of the older ones
  would then be dropped as late (seen when the job was killed twice, seconds apart).
* Stops on SIGTERM/SIGINT (cancels the job, flushes, exits 0) or after --max-idle-s without
  output once some output was seen.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from . import feed
from .output import FileWriter, KinesisWriter, Spool, debezium_record
from .settings import ENV_LOCAL, JobSettings, load_properties


def log(msg: str) -> None:
    print(f"[local_runner {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def latest_checkpoint(checkpoint_dir: str) -> str | None:
    """The newest retained `chk-N` (with `_metadata`) under checkpoint_dir/<job-id>/."""
    root = Path(checkpoint_dir.removeprefix("file://"))
    if not root.exists():
        return None
    best: tuple[float, Path] | None = None
    for meta in root.glob("*/chk-*/_metadata"):
        m = meta.stat().st_mtime
        if best is None or m > best[0]:
            best = (m, meta.parent)
    return "file://" + str(best[1]) if best else None


def checkpoint_known_seq(checkpoint: str) -> int:
    """Sequence number of the newest input file the checkpoint's source enumerator knows.

    The FileSource enumerator state (every path it ever discovered, plus unassigned splits) is
    operator-coordinator state, which Flink stores inline in `_metadata`; paths are written as
    plain ASCII there. The feed protocol makes the known files a prefix of the sequence."""
    meta = Path(checkpoint.removeprefix("file://")) / "_metadata"
    names = re.findall(rb"(?<![0-9A-Za-z_.-])" + re.escape(feed.FILE_PREFIX.encode())
                       + rb"(\d{12})" + re.escape(feed.FILE_SUFFIX.encode()), meta.read_bytes())
    return max((int(n) for n in names), default=0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="aggregate.job.local_runner", description=__doc__.split("\n")[0])
    p.add_argument("--input-dir", required=True)
    p.add_argument("--checkpoint-dir", required=True)
    p.add_argument("--out-stream", help="Kinesis stream name for the debezium-json records")
    p.add_argument("--out-file", help="JSON-lines file for the records ('-' = stdout)")
    p.add_argument("--properties", help="runtime properties JSON (AWS list shape or {group: {..}})")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a clickagg.* property, e.g. --set leaderboard_size=3")
    p.add_argument("--parallelism", type=int, default=2)
    p.add_argument("--emit", choices=("files", "collect"), default="files",
                   help="how the changelog leaves Flink (see module doc)")
    p.add_argument("--fresh", action="store_true", help="ignore retained checkpoints")
    p.add_argument("--max-idle-s", type=float, default=0.0,
                   help="exit after this long without output (0 = run until signalled)")
    p.add_argument("--progress-s", type=float, default=10.0)
    args = p.parse_args(argv)
    if not args.out_stream and not args.out_file:
        p.error("give --out-stream and/or --out-file")
    return args


def settings_from_args(args: argparse.Namespace) -> JobSettings:
    props = load_properties(args.properties) if args.properties else {}
    overrides = dict(kv.split("=", 1) for kv in args.set)
    group = dict(props.get("clickagg", {}))
    group.update(overrides)
    checkpoint_uri = "file://" + os.path.abspath(args.checkpoint_dir)
    return JobSettings.from_properties(
        {"clickagg": group},
        environment=ENV_LOCAL,
        input_dir=os.path.abspath(args.input_dir),
        checkpoint_dir=checkpoint_uri,
        **({} if "parallelism" in group else {"parallelism": args.parallelism}),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from_args(args)
    Path(settings.input_dir).mkdir(parents=True, exist_ok=True)
    Path(args.checkpoint_dir).mkdir(parents=True, exist_ok=True)

    writers = []
    if args.out_file:
        writers.append(FileWriter(args.out_file))
    if args.out_stream:
        writers.append(KinesisWriter(args.out_stream))

    from . import pipeline, sql

    extra = {}
    spool_dir = Path(args.checkpoint_dir) / "changelog"
    restore = None if args.fresh else latest_checkpoint(settings.checkpoint_dir)
    if restore:
        extra["execution.state-recovery.path"] = restore
        log(f"restoring from {restore}")
        known = checkpoint_known_seq(restore)
        merged = feed.replay_in_order(settings.input_dir, known)
        if merged:  # else the restored source would list them at once and read the newest first
            log(f"input files after the checkpoint's newest ({known}) merged in publish order "
                f"into {merged[-1].name}: {', '.join(p.name for p in merged)}")
    elif spool_dir.exists():
        shutil.rmtree(spool_dir)  # a fresh job: the old run's changelog files are not ours
    t_env = pipeline.create_table_env(settings, local=True, extra=extra)
    pipeline.build_output(t_env, settings)
    if args.emit == "files":
        spool = Spool(spool_dir)
        t_env.execute_sql(sql.spool_sink_ddl(settings, str(spool_dir)))
        result = t_env.execute_sql(sql.insert_dml("clickagg_spool"))
    else:
        spool = None
        result = t_env.execute_sql(sql.collect_query())
    job_client = result.get_job_client()
    log(f"job {job_client.get_job_id() if job_client else '?'} submitted ({args.emit}); "
        f"reading {settings.input_dir}")

    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        log(f"signal {signum}: cancelling")
        stop.set()
        try:
            if job_client:
                job_client.cancel()
        except Exception as exc:  # already finished
            log(f"cancel: {exc}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stats = Stats(writers, args.progress_s)
    if spool is not None:
        failed = ship_spool(spool, writers, stats, stop, job_client, args.max_idle_s, on_signal)
    else:
        failed = ship_collect(result, writers, stats, stop, args.max_idle_s, on_signal)
    for w in writers:
        w.close()
    log(f"done: {stats.summary()}")
    return 1 if failed else 0


class Stats:
    def __init__(self, writers: list, every_s: float):
        self.writers, self.every_s = writers, every_s
        self.rows = 0
        self.by_kind: dict[str, int] = {}
        self.last_row = time.monotonic()
        self._last_log = time.monotonic()

    def count(self, tag: str) -> None:
        self.rows += 1
        self.by_kind[tag] = self.by_kind.get(tag, 0) + 1
        self.last_row = time.monotonic()

    def summary(self) -> str:
        written = ", ".join(f"{type(w).__name__}={w.written}" for w in self.writers)
        return f"rows={self.rows} {dict(sorted(self.by_kind.items()))} written: {written}"

    def tick(self) -> None:
        if time.monotonic() - self._last_log >= self.every_s:
            log(self.summary())
            self._last_log = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_row if self.rows else 0.0


def _job_finished(job_client) -> str | None:
    try:
        status = str(job_client.get_job_status().result())
    except Exception:  # the MiniCluster is gone
        return "GONE"
    return status if status in ("FAILED", "CANCELED", "FINISHED") else None


def ship_spool(spool: Spool, writers, stats: Stats, stop, job_client, max_idle_s, on_signal) -> bool:
    """Ship committed part files until the job ends; then a last pass."""
    ended = None
    while True:
        for path in spool.pending():
            for line in spool.read(path):
                row = json.loads(line)
                r = row["after"] if row["after"] is not None else row["before"]
                stats.count(f"{r['kind']}:{row['op']}")
                for w in writers:
                    w.add_line(line)
            for w in writers:
                w.flush()
            spool.done(path)
        if ended:
            break
        stats.tick()
        if max_idle_s and stats.idle_for() > max_idle_s and not stop.is_set():
            log(f"no output for {max_idle_s}s: stopping")
            on_signal(0, None)
        ended = _job_finished(job_client) if job_client else "GONE"
        if not ended:
            stop.wait(0.2)
    if ended == "FAILED":
        log("job FAILED (see the Flink log above)")
        return True
    return False


def ship_collect(result, writers, stats: Stats, stop, max_idle_s, on_signal) -> bool:
    rows: "queue.Queue[tuple | None]" = queue.Queue(maxsize=100_000)
    failure: list[BaseException] = []

    def pump() -> None:
        try:
            with result.collect() as it:
                for row in it:
                    rows.put((str(row.get_row_kind()), tuple(row)))
                    if stop.is_set():
                        break
        except BaseException as exc:  # cancelled job / broken gateway
            if not stop.is_set():
                failure.append(exc)
        finally:
            rows.put(None)

    threading.Thread(target=pump, name="collect", daemon=True).start()
    dirty = False
    while True:
        try:
            item = rows.get(timeout=0.2)
        except queue.Empty:
            item = ()
        if item is None:
            break
        if item:
            kind, values = item
            for w in writers:
                w.add(debezium_record(kind, values))
            stats.count(f"{values[0]}{kind}")
            dirty = True
        if dirty and (not item or rows.qsize() == 0):  # burst over: ship it
            for w in writers:
                w.flush()
            dirty = False
        stats.tick()
        if max_idle_s and stats.idle_for() > max_idle_s and not stop.is_set():
            log(f"no output for {max_idle_s}s: stopping")
            on_signal(0, None)
    if failure:
        log(f"collect failed: {failure[0]}")
        return True
    return False


if __name__ == "__main__":
    sys.exit(main())
