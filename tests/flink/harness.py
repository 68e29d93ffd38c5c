"""Drives the real local runner (subprocess) while feeding files, and materializes its output the
way the downstream consumer does (plus a strict changelog replay), to compare with the oracle."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
sys.path.insert(0, str(FUNCTIONS))

from aggregate.job import feed  # noqa: E402

VALUE_FIELDS_AGG = ("clicks", "billable_clicks", "cost_micros", "billable_cost_micros",
                    "max_event_time", "campaign_id", "advertiser_id")
VALUE_FIELDS_LATE = ("late_dropped", "cost_micros", "max_event_time", "campaign_id", "advertiser_id")


@dataclass
class Materialized:
    agg: dict[tuple, dict] = field(default_factory=dict)  # consumer rule: newest version wins
    late: dict[tuple, dict] = field(default_factory=dict)
    top: dict[tuple, dict] = field(default_factory=dict)  # (res, bucket, ad) -> row
    top_tombstones: dict[tuple, int] = field(default_factory=dict)
    strict: dict[tuple, dict] = field(default_factory=dict)  # exact +I/-U/+U/-D replay
    strict_errors: list[str] = field(default_factory=list)
    last_version: dict[tuple, int] = field(default_factory=dict)
    version_errors: list[str] = field(default_factory=list)
    records: int = 0
    ops: dict[str, int] = field(default_factory=dict)

    def apply(self, rec: dict) -> None:
        self.records += 1
        op = rec["op"]
        row = rec["after"] if op == "c" else rec["before"]
        assert set(rec) == {"before", "after", "op"}, rec
        assert op in ("c", "d"), rec
        assert (rec["before"] is None) != (rec["after"] is None), rec
        kind = row["kind"]
        self.ops[f"{kind}:{op}"] = self.ops.get(f"{kind}:{op}", 0) + 1
        key = (kind, row["resolution"], row["bucket_start"], row["ad_id"])
        v = row["version"]
        # strict changelog replay
        if op == "c":
            if key in self.strict:
                self.strict_errors.append(f"insert over existing {key}")
            self.strict[key] = row
            last = self.last_version.get(key)
            if last is not None and v <= last:
                self.version_errors.append(f"{key}: version {v} after {last}")
            self.last_version[key] = v
        else:
            if self.strict.get(key) != row:
                self.strict_errors.append(f"retraction of {key} does not match the stored row")
            self.strict.pop(key, None)
        # consumer rules
        if kind in ("agg", "late"):
            target = self.agg if kind == "agg" else self.late
            k = key[1:]
            if op == "c" and (k not in target or v > target[k]["version"]):
                target[k] = row
        elif kind == "top":
            k = key[1:]
            if op == "c":
                if v > max(self.top.get(k, {}).get("version", 0), self.top_tombstones.get(k, 0)):
                    self.top[k] = row
            else:
                if k in self.top and self.top[k]["version"] <= v:
                    del self.top[k]
                self.top_tombstones[k] = max(v, self.top_tombstones.get(k, 0))

    def tops(self) -> dict[tuple[str, int], list[str]]:
        out: dict[tuple[str, int], list[tuple[int, str]]] = {}
        for (res, b, ad), row in self.top.items():
            out.setdefault((res, b), []).append((-row["clicks"], ad))
        return {k: [ad for _, ad in sorted(v)] for k, v in out.items()}

    def strict_tops(self) -> dict[tuple[str, int], list[str]]:
        out: dict[tuple[str, int], list[tuple[int, str]]] = {}
        for (kind, res, b, ad), row in self.strict.items():
            if kind == "top":
                out.setdefault((res, b), []).append((-row["clicks"], ad))
        return {k: [ad for _, ad in sorted(v)] for k, v in out.items()}


def diff(m: Materialized, exp: Any, limit: int = 10) -> list[str]:
    problems: list[str] = []
    got = {k: {f: r[f] for f in VALUE_FIELDS_AGG} for k, r in m.agg.items()}
    want = {k: {f: r[f] for f in VALUE_FIELDS_AGG} for k, r in exp.aggs.items()}
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            problems.append(f"agg {k}: got {got.get(k)} want {want.get(k)}")
    got_l = {k: {f: r[f] for f in VALUE_FIELDS_LATE} for k, r in m.late.items()}
    want_l = {(("1m",) + k): {f: r[f] for f in VALUE_FIELDS_LATE} for k, r in exp.late.items()}
    for k in sorted(set(got_l) | set(want_l)):
        if got_l.get(k) != want_l.get(k):
            problems.append(f"late {k}: got {got_l.get(k)} want {want_l.get(k)}")
    got_t = m.tops()
    for k in sorted(set(got_t) | set(exp.tops)):
        if got_t.get(k) != exp.tops.get(k):
            problems.append(f"top {k}: got {got_t.get(k)} want {exp.tops.get(k)}")
    return problems[:limit] + ([f"... {len(problems) - limit} more"] if len(problems) > limit else [])


@dataclass
class RunResult:
    materialized: Materialized
    records: list[dict]
    problems: list[str]
    converged_after_s: float | None
    published: list[Path]
    unacked_waits: int
    stderr: str
    feed_seconds: float
    returncode: int | None
    stop_seconds: float = 0.0
    total_seconds: float = 0.0


class FileTail:
    def __init__(self, path: Path):
        self.path, self.pos, self.buf = path, 0, ""
        path.touch()

    def poll(self) -> list[dict]:
        with open(self.path) as f:
            f.seek(self.pos)
            chunk = f.read()
            self.pos = f.tell()
        self.buf += chunk
        *lines, self.buf = self.buf.split("\n")
        return [json.loads(line) for line in lines if line]


class KinesisTail:
    """Reads every shard of a stream from TRIM_HORIZON (one ad's records share a shard)."""

    def __init__(self, client: Any, stream: str):
        self.client, self.stream = client, stream
        shards = client.list_shards(StreamName=stream)["Shards"]
        self.iterators = {
            sh["ShardId"]: client.get_shard_iterator(
                StreamName=stream, ShardId=sh["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for sh in shards
        }

    def poll(self) -> list[dict]:
        out = []
        for shard, it in list(self.iterators.items()):
            while it:
                resp = self.client.get_records(ShardIterator=it, Limit=10000)
                it = resp.get("NextShardIterator")
                out += [json.loads(r["Data"]) for r in resp["Records"]]
                if not resp["Records"]:
                    break
            self.iterators[shard] = it
        return out


def stop_runner(proc: subprocess.Popen) -> None:
    """SIGTERM (the runner cancels the job and flushes); the whole group is killed after 60 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class RunnerRig:
    """The restart tests' local runner: input, checkpoint and output paths under `tmp`, the
    runner's stderr in one file across runs, start / crash / wait for a checkpoint."""

    SETTINGS = ("--set", "leaderboard_size=3", "--set", "monitor_interval_ms=300",
                "--set", "minibatch_latency_ms=500", "--set", "checkpoint_interval_ms=2000")

    def __init__(self, tmp: Path):
        self.inp, self.ck, self.out = tmp / "in", tmp / "ck", tmp / "out.jsonl"
        self.inp.mkdir()
        self.tail = FileTail(self.out)
        self.err_path = tmp / "runner.stderr"
        self.err = open(self.err_path, "a")
        self.env = {**os.environ, "PYTHONPATH": str(FUNCTIONS)}

    def start(self, fresh: bool, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int]:
        """(the runner process, the stderr offset its output starts at)."""
        self.err.flush()
        offset = self.err_path.stat().st_size
        cmd = [sys.executable, "-m", "aggregate.job.local_runner", "--input-dir", str(self.inp),
               "--checkpoint-dir", str(self.ck), "--out-file", str(self.out), *self.SETTINGS, *extra]
        proc = subprocess.Popen(cmd + (["--fresh"] if fresh else []), env=self.env, stderr=self.err,
                                stdout=subprocess.DEVNULL, start_new_session=True)
        return proc, offset

    @staticmethod
    def crash(proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)  # runner and MiniCluster JVM
        proc.wait()

    def checkpoints(self) -> set[str]:
        return {str(p.parent) for p in self.ck.glob("*/chk-*/_metadata")}

    def wait_for_checkpoint(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.checkpoints() and time.monotonic() < deadline:
            time.sleep(0.5)

    def log(self) -> str:
        return self.err_path.read_text()

    def close(self) -> None:
        self.err.close()


def apply_until_converged(proc: subprocess.Popen, tail: "FileTail", m: Materialized, expected: Any,
                          timeout_s: float) -> list[str]:
    """Apply the runner's output to `m` until it equals the oracle, the runner exits or the
    timeout passes; the remaining differences (empty: converged)."""
    deadline = time.monotonic() + timeout_s
    problems = ["not yet"]
    while problems and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(1)
        for rec in tail.poll():
            m.apply(rec)
        problems = diff(m, expected)
    return problems


def run_local_runner(
    tmp: Path,
    batches: list[list[dict]],
    expected: Any,
    *,
    overrides: dict[str, Any],
    python: str = sys.executable,
    emit: str = "files",
    kinesis: tuple[Any, str, str] | None = None,  # (boto3 client, stream name, endpoint url)
    converge_timeout_s: float = 240.0,
    quiet_s: float = 8.0,
) -> RunResult:
    input_dir, ckpt = tmp / "in", tmp / "ckpt"
    input_dir.mkdir()
    cmd = [python, "-m", "aggregate.job.local_runner", "--input-dir", str(input_dir),
           "--checkpoint-dir", str(ckpt), "--progress-s", "5", "--emit", emit]
    env = {**os.environ, "PYTHONPATH": str(FUNCTIONS)}
    if kinesis:
        client, stream, endpoint = kinesis
        cmd += ["--out-stream", stream]
        env["AWS_ENDPOINT_URL"] = endpoint
        tail: Any = KinesisTail(client, stream)
    else:
        out = tmp / "out.jsonl"
        cmd += ["--out-file", str(out)]
        tail = FileTail(out)
    for k, v in overrides.items():
        cmd += ["--set", f"{k}={v}"]
    err_path = tmp / "runner.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    published: list[Path] = []
    feed_error: list[BaseException] = []
    t_feed = [0.0]

    def feeder() -> None:
        t0 = time.monotonic()
        try:
            for batch in batches:
                published.append(feed.write_batch(input_dir, batch, ack_timeout_s=180))
        except BaseException as exc:
            feed_error.append(exc)
        t_feed[0] = time.monotonic() - t0

    th = threading.Thread(target=feeder, daemon=True)
    th.start()
    m = Materialized()
    records: list[dict] = []
    t_start = time.monotonic()
    converged_at = None
    last_growth = time.monotonic()
    problems: list[str] = ["not started"]
    try:
        while True:
            new = tail.poll()
            if new:
                last_growth = time.monotonic()
                for rec in new:
                    records.append(rec)
                    m.apply(rec)
            if proc.poll() is not None:
                break
            if not th.is_alive():
                if converged_at is None:
                    problems = diff(m, expected)
                    if not problems:
                        converged_at = time.monotonic() - t_start
                elif time.monotonic() - last_growth > quiet_s:
                    break  # converged and quiet: nothing more is coming
                if time.monotonic() - t_start > converge_timeout_s + t_feed[0]:
                    break
            time.sleep(0.25)
    finally:
        t_stop = time.monotonic()
        stop_runner(proc)
    stop_seconds = time.monotonic() - t_stop
    for rec in tail.poll():  # whatever the runner shipped while stopping
        records.append(rec)
        m.apply(rec)
    if feed_error:
        raise feed_error[0]
    return RunResult(
        materialized=m,
        records=records,
        problems=diff(m, expected),
        converged_after_s=converged_at,
        published=published,
        unacked_waits=0,
        stderr=err_path.read_text(),
        feed_seconds=t_feed[0],
        returncode=proc.returncode,
        stop_seconds=stop_seconds,
        total_seconds=time.monotonic() - t_start,
    )
