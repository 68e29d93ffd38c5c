"""Run the aggregation job locally (PyFlink MiniCluster) on the local emulator's Kinesis streams.

    PYTHONPATH=.:functions .venv-flink/bin/python -m local.flink_runner \
        --clicks-stream clickagg-clicks --aggregates-stream clickagg-aggregates \
        [--events-stream clickagg-events] \
        --checkpoint-dir C [--endpoint URL] [--set KEY=VALUE ...] [--fresh]

The job is the one `aggregate/job/main.py` submits on Managed Flink (same DDL, same SQL, same
connector jar); what differs is configuration only:
* connection: `aws.endpoint` = the emulator (`--endpoint`, default $AWS_ENDPOINT_URL), HTTP/1.1
  for the sink's client, CBOR off in the JVM (moto speaks JSON only);
* checkpoints: EXACTLY_ONCE every `checkpoint_interval_ms` into C (filesystem), retained on
  cancel; unless --fresh, the job restores the newest retained checkpoint in C: the Kinesis
  source resumes from the per-shard sequence numbers in it, and the sink re-emits at most the
  rows after it (the consumer's version rule makes those harmless);
* a fresh job reads the clicks stream from TRIM_HORIZON (as a new application on AWS does).

Stops on SIGTERM/SIGINT (cancels the job, checkpoints retained, exits 0). Emulation only: it
lives here, not in functions/aggregate/job, so the application zip holds no emulator code.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from aggregate.job.settings import ENV_LOCAL, JobSettings, load_properties
from local.flink import jvm_tmp_dir, remove_dead_runners_tmp

# moto has no CBOR: off for both AWS SDKs in the shaded jar (v2: the sink; v1, relocated by the
# shade plugin: the FlinkKinesisConsumer source).
LOCAL_JVM_OPTIONS = ("-Daws.cborEnabled=false",
                     "-Dorg.apache.flink.kinesis.shaded.com.amazonaws.sdk.disableCbor=true")


def log(msg: str) -> None:
    print(f"[flink_runner {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def latest_checkpoint(checkpoint_dir: str) -> str | None:
    """The newest retained `chk-N` (with `_metadata`) under checkpoint_dir/<job-id>/."""
    root = Path(checkpoint_dir.removeprefix("file://"))
    best: tuple[float, Path] | None = None
    for meta in root.glob("*/chk-*/_metadata"):
        m = meta.stat().st_mtime
        if best is None or m > best[0]:
            best = (m, meta.parent)
    return best[1].as_uri() if best else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="local.flink_runner", description=__doc__.split("\n")[0])
    p.add_argument("--clicks-stream", required=True, help="name of the clicks stream (source)")
    p.add_argument("--aggregates-stream", required=True, help="name of the aggregates stream (sink)")
    p.add_argument("--events-stream", help="name of the events stream (impressions, conversions; "
                   "optional: without it the job counts clicks only)")
    p.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                   help="the emulator's URL (default: $AWS_ENDPOINT_URL)")
    p.add_argument("--checkpoint-dir", required=True)
    p.add_argument("--properties", help="runtime properties JSON (AWS list shape or {group: {..}})")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a clickagg.* property, e.g. --set leaderboard_size=3")
    p.add_argument("--parallelism", type=int, default=2)
    p.add_argument("--fresh", action="store_true", help="ignore retained checkpoints")
    args = p.parse_args(argv)
    if not args.endpoint:
        p.error("give --endpoint or set AWS_ENDPOINT_URL")
    return args


def stream_arn(name: str, endpoint: str) -> str:
    """The stream's ARN as the emulator reports it (the settings take ARNs, as on AWS)."""
    import boto3

    kinesis = boto3.client("kinesis", endpoint_url=endpoint)
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def settings_from_args(args: argparse.Namespace) -> JobSettings:
    props = load_properties(args.properties) if args.properties else {}
    group = {"source_init_position": "TRIM_HORIZON", **props.get("clickagg", {})}
    group.update(dict(kv.split("=", 1) for kv in args.set))
    return JobSettings.from_properties(
        {"clickagg": group},
        environment=ENV_LOCAL,
        aws_region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_endpoint=args.endpoint,
        clicks_stream_arn=stream_arn(args.clicks_stream, args.endpoint),
        aggregates_stream_arn=stream_arn(args.aggregates_stream, args.endpoint),
        **({"events_stream_arn": stream_arn(args.events_stream, args.endpoint)}
           if args.events_stream else {}),
        checkpoint_dir=Path(args.checkpoint_dir).resolve().as_uri(),
        **({} if "parallelism" in group else {"parallelism": args.parallelism}),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from_args(args)
    Path(args.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    # the JVM's temporary files (local.flink.jvm_tmp_dir): java.io.tmpdir covers what Flink
    # writes there directly (the planner's and RPC system's jars), io.tmp.dirs the MiniCluster's
    # working directory (blob store, task executors), spill and shuffle directories
    tmp = jvm_tmp_dir(Path(args.checkpoint_dir), os.getpid())
    remove_dead_runners_tmp(tmp.parent, keep=os.getpid())
    tmp.mkdir(parents=True, exist_ok=True)
    # read by PyFlink when it launches the gateway JVM that hosts the MiniCluster
    os.environ["JVM_ARGS"] = " ".join((os.environ.get("JVM_ARGS", ""), *LOCAL_JVM_OPTIONS,
                                       f"-Djava.io.tmpdir={tmp}")).strip()

    from aggregate.job.main import connector_jar_uri, submit

    stop = threading.Event()
    submitted = threading.Event()

    def on_signal(signum, _frame) -> None:
        if not submitted.is_set():  # still planning/submitting (seconds): nothing to cancel
            log(f"signal {signum} before the job was submitted: exiting")
            sys.stderr.flush()
            os._exit(0)
        log(f"signal {signum}: cancelling")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    extra = {"pipeline.jars": connector_jar_uri(), "io.tmp.dirs": str(tmp)}
    restore = None if args.fresh else latest_checkpoint(settings.checkpoint_dir)
    if restore:
        extra["execution.state-recovery.path"] = restore
        log(f"restoring from {restore}")
    result = submit(settings, local=True, extra=extra)
    job_client = result.get_job_client()
    submitted.set()
    log(f"job {job_client.get_job_id() if job_client else '?'} submitted: "
        f"{args.clicks_stream} -> {args.aggregates_stream} at {args.endpoint}")

    status = None
    while not stop.wait(1.0):
        status = job_status(job_client)
        if status in ("FAILED", "CANCELED", "FINISHED", "GONE"):
            break
    if stop.is_set():
        try:
            job_client.cancel().result()
        except Exception as exc:  # already finished
            log(f"cancel: {exc}")
        status = "CANCELED"
    log(f"done: job {status}")
    return 1 if status in ("FAILED", "GONE") else 0



def job_status(job_client) -> str:
    try:
        return str(job_client.get_job_status().result())
    except Exception:  # the MiniCluster is gone
        return "GONE"


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # skip py4j's exit hooks: they log errors once the gateway JVM is gone
