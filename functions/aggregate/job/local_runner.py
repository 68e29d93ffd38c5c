"""Run the aggregation job locally (MiniCluster) and ship its changelog like the AWS sink would.

    PYTHONPATH=functions .venv-flink/bin/python -m aggregate.job.local_runner \
        --input-dir D --checkpoint-dir C (--out-stream NAME | --out-file PATH|-)

* Source: the LOCAL variant of the same DDL (`filesystem`, JSON lines in D, monitored every
  `monitor_interval_ms`); feed D with `aggregate.job.feed.write_batch` (lossless protocol).
* The same stage-1/stage-2 SQL as on AWS; the output view is collected with
  `execute_sql(SELECT ...).collect()` (row kinds +I/-U/+U/-D) and each row is written as the JSON
  record Flink's debezium-json format writes on AWS (see output.py), to a Kinesis stream
  (boto3; AWS_ENDPOINT_URL selects e.g. the moto server; PutRecords <= 500, failed entries
  retried) and/or a JSON-lines file.
* Checkpoints: EXACTLY_ONCE, filesystem storage in C, retained on cancel. With checkpointing on,
  collect() hands out rows only once the checkpoint covering them completed, so a restart from
  the latest retained checkpoint in C (automatic unless --fresh) re-emits at most the rows after
  it: the consumer's version rule makes those duplicates harmless.
* Stops on SIGTERM/SIGINT (cancels the job, flushes, exits 0) or after --max-idle-s without
  output once some output was seen.
"""
from __future__ import annotations

import argparse
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

from .output import FileWriter, KinesisWriter, debezium_record
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
    restore = None if args.fresh else latest_checkpoint(settings.checkpoint_dir)
    if restore:
        extra["execution.state-recovery.path"] = restore
        log(f"restoring from {restore}")
    t_env = pipeline.create_table_env(settings, local=True, extra=extra)
    pipeline.build_output(t_env, settings)
    result = t_env.execute_sql(sql.collect_query())
    job_client = result.get_job_client()
    log(f"job {job_client.get_job_id() if job_client else '?'} submitted; reading {settings.input_dir}")

    rows: "queue.Queue[tuple | None]" = queue.Queue(maxsize=100_000)
    stop = threading.Event()
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
    threading.Thread(target=pump, name="collect", daemon=True).start()

    counts: dict[str, int] = {}
    seen = 0
    last_row = time.monotonic()
    last_progress = time.monotonic()
    dirty = False
    while True:
        try:
            item = rows.get(timeout=0.2)
        except queue.Empty:
            item = ()
        if item is None:
            break
        now = time.monotonic()
        if item:
            kind, values = item
            record = debezium_record(kind, values)
            tag = f"{values[0]}{kind}"
            counts[tag] = counts.get(tag, 0) + 1
            for w in writers:
                w.add(record)
            seen += 1
            dirty = True
            last_row = now
            if rows.qsize() == 0:  # burst over: ship it
                for w in writers:
                    w.flush()
                dirty = False
        elif dirty:
            for w in writers:
                w.flush()
            dirty = False
        if now - last_progress >= args.progress_s:
            written = ", ".join(f"{type(w).__name__}={w.written}" for w in writers)
            log(f"rows={seen} {dict(sorted(counts.items()))} written: {written}")
            last_progress = now
        if args.max_idle_s and seen and now - last_row > args.max_idle_s and not stop.is_set():
            log(f"no output for {args.max_idle_s}s: stopping")
            on_signal(0, None)
    for w in writers:
        w.close()
    log(f"done: rows={seen} {dict(sorted(counts.items()))}")
    if failure:
        log(f"collect failed: {failure[0]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
