"""Drives the real local runner (subprocess: the job on its Kinesis connector) against a moto
server while publishing clicks to its clicks stream, and materializes the aggregates stream the
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

VALUE_FIELDS_AGG = ("clicks", "billable_clicks", "cost_micros", "billable_cost_micros",
                    "suspect_clicks", "invalid_clicks", "impressions", "conversions",
                    "conversion_value_micros", "max_event_time", "campaign_id", "advertiser_id")
ROLLUP_KINDS = ("campaign", "advertiser")
VALUE_FIELDS_LATE = ("late_dropped", "cost_micros", "max_event_time", "campaign_id", "advertiser_id")


@dataclass
class Materialized:
    agg: dict[tuple, dict] = field(default_factory=dict)  # consumer rule: newest version wins
    rollups: dict[tuple, dict] = field(default_factory=dict)  # (kind, res, bucket, id): same rule
    late: dict[tuple, dict] = field(default_factory=dict)
    top: dict[tuple, dict] = field(default_factory=dict)  # (res, bucket, ad) -> row
    top_tombstones: dict[tuple, int] = field(default_factory=dict)
    spend: dict[tuple, dict] = field(default_factory=dict)  # (res, bucket, campaign): newest version
    pulses: list[int] = field(default_factory=list)  # the pulse rows' times, in arrival order
    # exact replay: with `upsert` (flink_changelog_mode's default) a "c" replaces its key's row
    # and only a leaderboard exit ("top" -D) may retract; without, +I/-U/+U/-D pair exactly
    upsert: bool = True
    strict: dict[tuple, dict] = field(default_factory=dict)
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
        if kind == "pulse":  # the budget lane's liveness: no key, no version rules
            assert op == "c" and row["entity_id"] == "pulse" and row["version"] == row["bucket_start"], row
            self.pulses.append(row["version"])
            return
        if kind in ROLLUP_KINDS or kind == "spend":
            id_col = "campaign_id" if kind == "spend" else f"{kind}_id"
            assert row["ad_id"] is None and row["entity_id"] == row[id_col], row
        else:
            assert row["entity_id"] == row["ad_id"], row  # the Kinesis partition key
        key = (kind, row["resolution"], row["bucket_start"], row["entity_id"])
        v = row["version"]
        # strict changelog replay
        if op == "c":
            if key in self.strict and not self.upsert:
                self.strict_errors.append(f"insert over existing {key}")
            self.strict[key] = row
            last = self.last_version.get(key)
            if last is not None and v <= last:
                self.version_errors.append(f"{key}: version {v} after {last}")
            self.last_version[key] = v
        else:
            if self.upsert and kind != "top":
                self.strict_errors.append(f"a retraction of {key} in an upsert changelog")
            if self.strict.get(key) != row:
                self.strict_errors.append(f"retraction of {key} does not match the stored row")
            self.strict.pop(key, None)
        # consumer rules
        if kind in ROLLUP_KINDS:
            if op == "c" and (key not in self.rollups or v > self.rollups[key]["version"]):
                self.rollups[key] = row
        elif kind == "spend":
            k = key[1:]
            if op == "c" and (k not in self.spend or v > self.spend[k]["version"]):
                self.spend[k] = row
        elif kind in ("agg", "late"):
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
    problems += _rollup_problems(m, exp, lambda key: True)
    problems += spend_problems(m, exp)
    return problems[:limit] + ([f"... {len(problems) - limit} more"] if len(problems) > limit else [])


SPEND_FIELDS = ("billable_clicks", "billable_cost_micros")


def spend_problems(m: Materialized, exp: Any) -> list[str]:
    """The budget lane's spend (1m, 1d per campaign) must equal the oracle's campaign rollups'
    billable clicks and cost (a campaign without valid clicks has no spend row: 0)."""
    zero = {f: 0 for f in SPEND_FIELDS}
    got = {k: {f: r[f] for f in SPEND_FIELDS} for k, r in m.spend.items()}
    want = {k[1:]: {f: r[f] for f in SPEND_FIELDS} for k, r in exp.rollups.items()
            if k[0] == "campaign" and k[1] in ("1m", "1d")}
    return [f"spend {k}: got {got.get(k, zero)} want {want.get(k, zero)}"
            for k in sorted(set(got) | set(want)) if got.get(k, zero) != want.get(k, zero)]


def _rollup_problems(m: Materialized, exp: Any, compared) -> list[str]:
    fields = VALUE_FIELDS_AGG
    got = {k: {f: r[f] for f in fields} for k, r in m.rollups.items() if compared(k)}
    want = {k: {f: r[f] for f in fields} for k, r in exp.rollups.items() if compared(k)}
    return [f"rollup {k}: got {got.get(k)} want {want.get(k)}"
            for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)]


def diff_either_way(m: Materialized, exp: Any, limit: int = 10) -> list[str]:
    """After a restore, the clicks the oracle drops as late may be counted instead: the restored
    job's watermark starts unknown (NULL: on time) until every shard of a source subtask has
    been read again. So: in each (minute, ad) cell holding such a click, counted + dropped must
    equal the oracle's counted + dropped (each click once); every aggregate, late counter and
    leaderboard (its top M) whose bucket holds no such cell must equal the oracle exactly."""
    problems: list[str] = []
    cells = set(exp.late)  # (minute, ad) cells with clicks the oracle drops as late
    for minute, ad in sorted(cells | {(k[1], k[2]) for k in m.late}):
        got = m.agg.get(("1m", minute, ad), {}).get("clicks", 0) + \
            m.late.get(("1m", minute, ad), {}).get("late_dropped", 0)
        want = exp.aggs.get(("1m", minute, ad), {}).get("clicks", 0) + exp.late.get((minute, ad), {})["late_dropped"] \
            if (minute, ad) in exp.late else None
        if got != want:
            problems.append(f"cell {(minute, ad)}: counted + dropped {got}, want {want}")

    def touched(res: str, bucket: int, ad: str | None = None) -> bool:
        size = RESOLUTION_MS[res]
        return any(bucket <= minute < bucket + size and (ad is None or a == ad) for minute, a in cells)

    got = {k: {f: r[f] for f in VALUE_FIELDS_AGG} for k, r in m.agg.items() if not touched(*k)}
    want = {k: {f: r[f] for f in VALUE_FIELDS_AGG} for k, r in exp.aggs.items() if not touched(*k)}
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            problems.append(f"agg {k}: got {got.get(k)} want {want.get(k)}")
    # after a restore an entry the lost output had pushed into a leaderboard may linger below the
    # top M (its -D is never re-emitted; its stored count is not above its true one): readers
    # take the top M, so the top M must be exact
    m_size = RunnerRig.SETTINGS["leaderboard_size"]
    got_t = {k: v[:m_size] for k, v in m.tops().items() if not touched(*k)}
    want_t = {k: v for k, v in exp.tops.items() if not touched(*k)}
    for k in sorted(set(got_t) | set(want_t)):
        if got_t.get(k) != want_t.get(k):
            problems.append(f"top {k}: got {got_t.get(k)} want {want_t.get(k)}")
    problems += _rollup_problems(m, exp, lambda key: not touched(key[1], key[2]))
    return problems[:limit] + ([f"... {len(problems) - limit} more"] if len(problems) > limit else [])


# A local job's properties for tests that read files, not streams (the ARNs are never opened).
FILE_JOB_PROPERTIES = {"environment": "local", "aws_region": "us-east-1", "parallelism": "1",
                       "aws_endpoint": "http://127.0.0.1:1",
                       "clicks_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/c",
                       "aggregates_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/a"}


def file_source_env(rows: list[dict], tmp: Path, **props: str):
    """(settings, table env) with the job's `clicks` table over `rows` written as one JSON-lines
    file, read in file order (parallelism 1: arrival order = file order)."""
    from aggregate.job import pipeline, sql
    from aggregate.job.main import connector_jar_uri
    from aggregate.job.settings import JobSettings

    settings = JobSettings.from_properties({"clickagg": {**FILE_JOB_PROPERTIES, **props}})
    (tmp / "in").mkdir()
    (tmp / "in" / "clicks.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    t_env = pipeline.create_table_env(settings, local=True, extra={"pipeline.jars": connector_jar_uri()})
    opts = {"connector": "filesystem", "path": (tmp / "in").as_uri(), **sql._JSON_OPTIONS}
    cols = sql.source_columns(settings, watermark=sql.watermark_expression(settings))
    t_env.execute_sql(f"CREATE TABLE `{sql.SOURCE_TABLE}` (\n  {cols}\n) WITH (\n  {sql._with(opts)}\n)")
    return settings, t_env


RESOLUTION_MS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000}


@dataclass
class RunResult:
    materialized: Materialized
    records: list[dict]
    problems: list[str]
    converged_after_s: float | None
    stderr: str
    publish_seconds: float
    returncode: int | None
    stop_seconds: float = 0.0
    total_seconds: float = 0.0


DEV_PYTHON = REPO / ".venv" / "bin" / "python"  # moto lives in the dev venv
AWS_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}


class Emulator:
    """The project's emulator (local.moto_serial: moto server, requests serialized) on
    127.0.0.1, with a boto3 Kinesis client."""

    def __init__(self, log_path: Path):
        import socket

        import boto3

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not DEV_PYTHON.exists():
            raise RuntimeError(f"{DEV_PYTHON} missing: run `make setup`")
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([str(DEV_PYTHON), "-m", "local.moto_serial", "-p", str(port)],
                                     env={**os.environ, **AWS_ENV, "PYTHONPATH": str(REPO)},
                                     cwd=REPO, stdout=self.log, stderr=self.log)
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = {**AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint}
        self.client = boto3.client("kinesis", endpoint_url=self.endpoint, region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client.list_streams()
                break
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise
                time.sleep(0.2)
        self._streams = 0

    def new_streams(self, clicks_shards: int = 4) -> tuple[str, str, str]:
        """Fresh (clicks, aggregates, events) streams."""
        self._streams += 1
        names = (f"t{self._streams}-clicks", f"t{self._streams}-aggregates", f"t{self._streams}-events")
        for name, shards in zip(names, (clicks_shards, 2, 2)):
            self.client.create_stream(StreamName=name, ShardCount=shards)
            self.client.get_waiter("stream_exists").wait(
                StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
        return names

    def publish(self, stream: str, clicks: list[dict]) -> None:
        """PutRecords in calls of <= 500, partition key ad_id (as ingest does), failed entries
        re-sent in order until none fails."""
        for i in range(0, len(clicks), 500):
            pending = [{"Data": json.dumps(c).encode(), "PartitionKey": c["ad_id"] or c["click_id"]}
                       for c in clicks[i:i + 500]]
            while pending:
                resp = self.client.put_records(StreamName=stream, Records=pending)
                pending = [r for r, res in zip(pending, resp["Records"]) if "ErrorCode" in res]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


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


def drain(tail: KinesisTail, m: "Materialized") -> int:
    """Apply everything on the stream now (its writer is dead); returns the records applied."""
    records = tail.poll()
    for rec in records:
        m.apply(rec)
    return len(records)


def wait_output(tail: KinesisTail, m: "Materialized", timeout_s: float) -> int:
    """Apply records as they arrive until some have (the job is running and writing); returns how
    many; 0 after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = drain(tail, m)
        if n:
            return n
        time.sleep(0.2)
    return 0


def stop_runner(proc: subprocess.Popen) -> None:
    """SIGTERM (the runner cancels the job); the whole group is killed after 60 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class RunnerRig:
    """The local runner (`python -m local.flink_runner`) on a fresh pair of streams of
    the session's emulator: checkpoints under `tmp`, the runner's stderr in one file across
    runs, the aggregates stream tailed from TRIM_HORIZON; start / crash / wait for a checkpoint.

    Test settings: leaderboards of 3 (entries enter and leave), checkpoints every 2 s, and a burst
    memory longer than any test: the oracle corrects every IP burst, while the job keeps a click
    for burst_memory_s of processing time, which a restart on a loaded machine can outlast (the
    job then leaves the correction to the nightly billing, by design)."""

    SETTINGS = {"leaderboard_size": 3, "minibatch_latency_ms": 500, "checkpoint_interval_ms": 2000,
                "burst_memory_s": 3600}

    def __init__(self, tmp: Path, emulator: Emulator, overrides: dict[str, Any] | None = None,
                 events: bool = False):
        """`events`: the job also reads an events stream (impressions, conversions)."""
        self.emulator = emulator
        self.clicks, self.aggregates, events_stream = emulator.new_streams()
        self.events = events_stream if events else None
        self.ck = tmp / "ck"
        self.tail = KinesisTail(emulator.client, self.aggregates)
        self.err_path = tmp / "runner.stderr"
        self.err = open(self.err_path, "a")
        self.env = {**os.environ, **emulator.env, "PYTHONPATH": os.pathsep.join((str(REPO), str(FUNCTIONS)))}
        self.settings = {**self.SETTINGS, **(overrides or {})}

    def start(self, fresh: bool, overrides: dict[str, Any] | None = None) -> tuple[subprocess.Popen, int]:
        """(the runner process, the stderr offset its output starts at)."""
        self.err.flush()
        offset = self.err_path.stat().st_size
        cmd = [sys.executable, "-m", "local.flink_runner", "--clicks-stream", self.clicks,
               "--aggregates-stream", self.aggregates, "--checkpoint-dir", str(self.ck)]
        if self.events:
            cmd += ["--events-stream", self.events]
        for k, v in {**self.settings, **(overrides or {})}.items():
            cmd += ["--set", f"{k}={v}"]
        proc = subprocess.Popen(cmd + (["--fresh"] if fresh else []), env=self.env, stderr=self.err,
                                stdout=subprocess.DEVNULL, start_new_session=True, cwd=REPO)
        return proc, offset

    def wait_submitted(self, proc: subprocess.Popen, offset: int, timeout_s: float = 180) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            if " submitted" in self.err_path.read_text()[offset:]:
                return True
            time.sleep(0.2)
        return False

    def publish(self, batch: list[dict], events: list[dict] = ()) -> None:
        self.emulator.publish(self.clicks, batch)
        if events:
            self.emulator.publish(self.events, list(events))

    @staticmethod
    def crash(proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)  # runner and MiniCluster JVM
        proc.wait()

    def checkpoints(self) -> set[str]:
        return {str(p.parent) for p in self.ck.glob("*/chk-*/_metadata")}

    def wait_for_checkpoint(self, after: set[str] = frozenset(), timeout_s: float = 60) -> bool:
        """True once a checkpoint not in `after` completed."""
        deadline = time.monotonic() + timeout_s
        while not (self.checkpoints() - after):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def log(self) -> str:
        return self.err_path.read_text()

    def close(self) -> None:
        self.err.close()


def apply_until_converged(proc: subprocess.Popen, tail: KinesisTail, m: Materialized, expected: Any,
                          timeout_s: float, compare=diff) -> list[str]:
    """Apply the job's output to `m` until `compare` finds no difference from the oracle, the
    runner exits or the timeout passes; the remaining differences (empty: converged)."""
    deadline = time.monotonic() + timeout_s
    problems = ["not yet"]
    while problems and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(1)
        for rec in tail.poll():
            m.apply(rec)
        problems = compare(m, expected)
    return problems


def publish_paced(rig: "RunnerRig", batches: list[list[dict]], pace_s: float = 0.5,
                  event_batches: list[list[dict]] = (),
                  hold: tuple[int, threading.Event] | None = None) -> None:
    """One batch every `pace_s`. `hold` = (i, event): batch i and the rest wait for the event, so
    a test can crash the job while clicks are certainly still to come, however slow the machine."""
    t0 = time.monotonic()
    for i, batch in enumerate(batches):
        if hold and i == hold[0]:
            hold[1].wait()
            t0 = time.monotonic() - i * pace_s
        rig.publish(batch, event_batches[i] if i < len(event_batches) else ())
        time.sleep(max(0.0, t0 + (i + 1) * pace_s - time.monotonic()))


def run_local_runner(
    tmp: Path,
    emulator: Emulator,
    batches: list[list[dict]],
    expected: Any,
    *,
    overrides: dict[str, Any] | None = None,
    pace_s: float = 0.5,
    converge_timeout_s: float = 240.0,
    quiet_s: float = 8.0,
    event_batches: list[list[dict]] = (),
) -> RunResult:
    """Start the job, publish the batches to its clicks stream (and `event_batches` to its
    events stream) one every `pace_s` while it runs, and materialize its changelog until it
    equals the oracle and stays quiet."""
    rig = RunnerRig(tmp, emulator, overrides, events=bool(event_batches))
    proc, offset = rig.start(fresh=True)
    m = Materialized()
    records: list[dict] = []
    t_start = time.monotonic()
    converged_at = None
    publish_s = 0.0
    problems: list[str] = ["not started"]

    def drain() -> int:
        new = rig.tail.poll()
        for rec in new:
            records.append(rec)
            m.apply(rec)
        return len(new)

    try:
        if not rig.wait_submitted(proc, offset):
            raise RuntimeError(f"job not submitted: {rig.log()[-3000:]}")
        t0 = time.monotonic()
        publish_paced(rig, batches, pace_s, event_batches)
        publish_s = time.monotonic() - t0
        last_growth = time.monotonic()
        while proc.poll() is None:
            if drain():
                last_growth = time.monotonic()
            if converged_at is None:
                problems = diff(m, expected)
                if not problems:
                    converged_at = time.monotonic() - t_start
            elif time.monotonic() - last_growth > quiet_s:
                break  # converged and quiet: nothing more is coming
            if time.monotonic() - t0 > converge_timeout_s + publish_s:
                break
            time.sleep(0.5)
    finally:
        t_stop = time.monotonic()
        stop_runner(proc)
        rig.close()
    stop_seconds = time.monotonic() - t_stop
    drain()  # whatever the sink flushed while stopping
    return RunResult(
        materialized=m,
        records=records,
        problems=diff(m, expected),
        converged_after_s=converged_at,
        stderr=rig.log(),
        publish_seconds=publish_s,
        returncode=proc.returncode,
        stop_seconds=stop_seconds,
        total_seconds=time.monotonic() - t_start,
    )
