"""Rebuild a range of the serving table from the raw archive on the local stack (docs/rebuild.md):

    python -m local rebuild --endpoint http://127.0.0.1:PORT --start 2026-12-05 --end 2026-12-06

1. copy the archive partitions the range reads (common.archive layout, both archives) from the
   emulator's bucket into a work directory (the MiniCluster has no S3 file system here; a Flink
   cluster reads s3:// directly)
2. run the batch job (aggregate.job.rebuild) in the PyFlink venv, as the stream job runs there
3. load its rows under a new generation (serving.rebuild.loader) into the serving table

Progress on stderr, a JSON summary on stdout (with `python -m local rebuild`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

import boto3

from common.archive import CLICKS, EVENTS
from common.config import ResourceNames

REPO = Path(__file__).resolve().parent.parent
FLINK_PYTHON = REPO / ".venv-flink" / "bin" / "python"


def download_partitions(s3, bucket: str, partitions: list[tuple[str, str]], root: Path) -> int:
    """Copy raw/<archive>/dt=/hr=/ objects of `partitions` under `root`; returns objects copied."""
    n = 0
    for layout in (CLICKS, EVENTS):
        for dt, hr in partitions:
            prefix = f"{layout.prefix}dt={dt}/hr={hr}/"
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    target = root / obj["Key"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, obj["Key"], str(target))
                    n += 1
    return n


def job_properties(names: ResourceNames, endpoint: str, flink_settings: dict) -> dict:
    """The stream job's properties as the local runner gives them (the rebuild reads the same
    settings: lateness, delay, IVT rules, leaderboard size)."""
    kinesis = boto3.client("kinesis", endpoint_url=endpoint)

    def arn(name: str) -> str:
        return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]

    return {"clickagg": {**{k: str(v) for k, v in flink_settings.items()},
                         "aws_region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                         "clicks_stream_arn": arn(names.clicks_stream),
                         "aggregates_stream_arn": arn(names.aggregates_stream)}}


def rebuild(endpoint: str, start_ms: int, end_ms: int, *, names: ResourceNames = ResourceNames(),
            flink_settings: dict | None = None, arrival_cutoff_s: int = 2 * 3600,
            work_dir: Path | None = None, out: TextIO = sys.stderr) -> dict:
    from aggregate.job.rebuild import rebuild_range
    from aggregate.job.settings import JobSettings
    from serving.write.dynamodb import DynamoDBServingStore
    from serving.rebuild.loader import RebuildLoader, read_rows

    if not FLINK_PYTHON.exists():
        raise RuntimeError(f"{FLINK_PYTHON} missing: run `make setup` (PyFlink has its own venv)")
    props = job_properties(names, endpoint, flink_settings or {})
    settings = JobSettings.from_properties(props)
    r = rebuild_range(start_ms, end_ms, int(time.time() * 1000), settings, cutoff_s=arrival_cutoff_s)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="clickagg-rebuild-", dir=work_dir) as tmp:
        root = Path(tmp)
        copied = download_partitions(boto3.client("s3", endpoint_url=endpoint), names.archive_bucket,
                                     r.partitions, root / "archive")
        print(f"rebuild: {r.describe()}; {copied} archive objects copied", file=out, flush=True)
        (root / "props.json").write_text(json.dumps(props))
        cmd = [str(FLINK_PYTHON), "-m", "aggregate.job.rebuild", "--start", str(start_ms),
               "--end", str(end_ms), "--archive-root", (root / "archive").as_uri(),
               "--out", (root / "rows").as_uri(), "--properties", str(root / "props.json"),
               "--arrival-cutoff-s", str(arrival_cutoff_s)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(REPO), str(REPO / "functions")))}
        job = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        if job.returncode != 0:
            raise RuntimeError(f"rebuild job failed ({job.returncode}): {job.stderr[-3000:]}")
        job_stats = json.loads(job.stdout.strip().splitlines()[-1])
        print(f"rebuild job: {job_stats['seconds']} s", file=out, flush=True)
        ddb = boto3.client("dynamodb", endpoint_url=endpoint)
        loader = RebuildLoader(ddb, names.serving_table, DynamoDBServingStore(ddb, names.serving_table), out=out)
        stats = loader.load(read_rows(root / "rows"), r.start_ms, r.end_ms)
    return {**stats, "archive_objects": copied, "job_seconds": job_stats["seconds"],
            "total_seconds": round(time.monotonic() - t0, 1), "start_ms": r.start_ms, "end_ms": r.end_ms}


def main(argv: list[str] | None = None) -> int:
    import argparse

    from aggregate.job.rebuild import RebuildError, parse_time

    p = argparse.ArgumentParser(prog="python -m local rebuild", description=__doc__.split("\n")[0])
    p.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                   help="the running stack's emulator (default: $AWS_ENDPOINT_URL)")
    p.add_argument("--start", required=True, type=parse_time, help="UTC: 2026-12-05, 2026-12-05T10:00 or epoch ms")
    p.add_argument("--end", required=True, type=parse_time, help="exclusive")
    p.add_argument("--arrival-cutoff-s", type=int, default=2 * 3600)
    args = p.parse_args(argv)
    if not args.endpoint:
        p.error("give --endpoint or set AWS_ENDPOINT_URL")
    try:
        print(json.dumps(rebuild(args.endpoint, args.start, args.end, arrival_cutoff_s=args.arrival_cutoff_s)))
    except RebuildError as exc:
        print(f"rebuild refused: {exc}", file=sys.stderr)
        return 2
    return 0
