"""Exactly-once under faults, end to end through the local stack (HTTP -> ingest -> Kinesis ->
Flink -> aggregates stream -> sink -> DynamoDB; Kinesis -> archive), all faults at once:

- ingest: Kinesis PutRecords partial failures + whole-call throttling, DynamoDB claim throttling
  and unprocessed confirm items, clients re-sending whole requests (lost responses); ingest dedups
  per_click (the default: conditional claim + confirm) until the stack restart and in mark mode
  (a read, then one write) after it, so both protocols, and a switch between them with claims
  left pending, run under the same faults (mark: throttled reads, unprocessed keys);
- the Flink job SIGKILLed mid-stream and restarted from its last checkpoint (source replay);
- sink: failing writes (partial batch responses, redelivery) and whole batches delivered twice,
  the second time in reverse order;
- the local stack (API, consumers, job) stopped and restarted while the load runs; the emulator
  (standing in for AWS) keeps running, consumers resume from their positions.

Each fault is asserted to happen where this says: while the sender is still sending, with clicks
accepted both before and after it, after the running job completed a checkpoint, with clicks
accepted after that checkpoint (which the restored job must read again). The load is sent in
parts that follow the faults instead of one paced stream long enough for both restarts to fit
in it: the first two thirds while the job is killed a third of the way in; the next sixth once
the stack restart begins (accepted by the stack being stopped, or retried across its downtime);
the last sixth once the new stack runs.

Then, against the generator's ground truth (`local.oracle`, `tests.glue.oracle`: plain loops):
0 lost and 0 double counted in the dedup table, the clicks stream and the archive; the serving
store equal to the oracle in every metric (clicks, billable clicks, cost, billable cost) at every
resolution (1m/5m/1h/1d) for every ad, with every click beyond the lateness accounted for exactly
(below); the nightly billing recompute equal to the billing oracle per advertiser, campaign, ad
and hour. `CLICKAGG_SOAK=1` runs a larger load (the soak variant: `make soak`).

Clicks beyond the lateness (an hour old, `LoadSpec.late_count`) come in two groups:
- `must_drop`: sent after the last fault, once the job has caught up. Its watermark is then
  established near the newest event time: every one of them must be dropped, counted in its
  (ad, minute) late-dropped counter and in no series.
- `either_way`: sent while the killed job is down, so the restored job reads them in its replay
  backlog. Its watermark is not known until every shard has delivered a record, which depends on
  how the shards' backlogs interleave, so each of these may be counted or dropped. Each must be
  exactly one of the two: the test finds the one set of dropped clicks that explains both the
  late-dropped counters and every series, and fails if none does.
"""
from __future__ import annotations

import dataclasses
import io
import itertools
import os
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from common.config import IngestSettings
from common.schema import DEDUP_MARK, DEDUP_PER_CLICK
from ingest import handler as ingest_handler
from local.faults import FaultCounters, describe, install_ingest_faults, install_sink_faults
from local.flink import flink_available
from local.moto_server import MotoServer, free_port
from local.oracle import RES_MS, realtime_truth
from local.readback import dedup_status_counts, read_late_dropped_cells, read_series, read_stream
from local.stack import LocalStack, StackOptions
from tools.loadgen import LoadSpec, generate
from tools.sender import SendReport, send_load

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500),  # about 5 min here; the soak variant longer
              pytest.mark.skipif(not flink_available(), reason="needs .venv-flink (make setup)")]

REPO = Path(__file__).resolve().parents[2]
SOAK = os.environ.get("CLICKAGG_SOAK") == "1"
RATES = dict(record_failure_rate=0.05, call_throttle_rate=0.02, put_throttle_rate=0.02, unprocessed_rate=0.05)
METRICS = ("clicks", "billable_clicks", "cost_micros", "billable_cost_micros")
# clicks/s of each part of the load (the parts follow the faults: see the docstring)
SEND_RATE = 80 if SOAK else 50


def wait_for(predicate, timeout_s, what: str):
    """Poll until `predicate()` is truthy; fail the test naming `what` if it never is."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s} s waiting for: {what}")


def newest_checkpoint(checkpoint_dir: Path) -> float:
    """Completion time (mtime of `_metadata`) of the newest retained checkpoint; 0 if none."""
    return max((m.stat().st_mtime for m in checkpoint_dir.glob("*/chk-*/_metadata")), default=0.0)


def checkpoint_ids(checkpoint_dir: Path, completed: bool) -> int:
    """Highest checkpoint number with a directory (created when the checkpoint is triggered) or,
    `completed`, with its `_metadata` written; 0 if none."""
    pattern = "*/chk-*/_metadata" if completed else "*/chk-*"
    return max((int((m.parent if completed else m).name[4:]) for m in checkpoint_dir.glob(pattern)), default=0)


def ms_of(value) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value)


def archived_rows(stack) -> list[tuple[dict, int]]:
    """Every archived row with its arrival hour (from the `dt=/hr=` key: what the billing job reads)."""
    import boto3
    import pyarrow.parquet as pq

    s3, rows = boto3.client("s3"), []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.names.archive_bucket):
        for obj in page.get("Contents", []):
            parts = dict(p.split("=", 1) for p in obj["Key"].split("/") if "=" in p)
            arrival = int(datetime.strptime(f"{parts['dt']} {parts['hr']}", "%Y-%m-%d %H")
                          .replace(tzinfo=timezone.utc).timestamp() * 1000)
            body = s3.get_object(Bucket=stack.names.archive_bucket, Key=obj["Key"])["Body"].read()
            for r in pq.read_table(io.BytesIO(body)).to_pylist():
                rows.append(({**r, "event_time": ms_of(r["event_time"]),
                              "ingest_time": ms_of(r["ingest_time"])}, arrival))
    return rows


def compare_billing(stack, rows: list[tuple[dict, int]], truth: list[dict], tmp_path) -> tuple[int, int]:
    """Run the nightly billing job (local Spark) over the archive for each event day of the load
    and compare its hourly rows with the billing oracle, key (advertiser, campaign, ad, hour) by
    key, every metric. Returns (rows compared, billable clicks)."""
    import pyarrow.parquet as pq

    from common.archive import RAW_PREFIX
    from tools.analytics import sync_archive
    from tests.glue.oracle import billing_oracle

    root, out = tmp_path / "archive", tmp_path / "billing"
    sync_archive(stack.names.archive_bucket, root)
    days = sorted({datetime.fromtimestamp(c["event_time"] / 1000, tz=timezone.utc).date() for c in truth})
    compared = billable = 0
    for day in days:
        subprocess.run([str(REPO / ".venv-glue" / "bin" / "python"), str(REPO / "glue_jobs" / "billing_job.py"),
                        "--day", day.isoformat(), "--raw-path", str(root / RAW_PREFIX), "--out-path", str(out)],
                       check=True, capture_output=True, timeout=900)
        want, _ = billing_oracle(rows, day)
        got = {(r["advertiser_id"], r["campaign_id"], r["ad_id"], r["hour_start_ms"]): r
               for r in pq.read_table(out / "hourly" / f"dt={day}").to_pylist()}
        assert set(got) == set(want), (day, sorted(set(got) ^ set(want))[:5])
        for key, metrics in want.items():
            assert {m: got[key][m] for m in metrics} == metrics, (day, key)
        # the oracle's input is the archive; check it bills every generated click of the day once
        day_truth = Counter((c["advertiser_id"], c["campaign_id"], c["ad_id"], c["event_time"] // 3_600_000 * 3_600_000)
                            for c in truth if datetime.fromtimestamp(c["event_time"] / 1000, tz=timezone.utc).date() == day)
        assert {k: m["clicks"] for k, m in want.items()} == dict(day_truth), day
        compared += len(want)
        billable += sum(m["billable_clicks"] for m in want.values())
    return compared, billable


def minute_cell(click: dict) -> tuple[str, int]:
    return click["ad_id"], click["event_time"] - click["event_time"] % 60_000


def read_store(table: str, ads: list[str]) -> dict:
    """{(ad, resolution, bucket): metrics} of every series row holding a count (a retracted row
    is a tombstone without metrics)."""
    out = {}
    for ad in ads:
        for res in RES_MS:
            for bucket, row in read_series(table, ad, res).items():
                if any(row.get(m) for m in METRICS):
                    out[(ad, res, bucket)] = {m: row.get(m, 0) for m in METRICS}
    return out


def explain_store(table: str, clicks: list[dict], must_drop: set[str], either_way: set[str]):
    """Find the set D of `either_way` clicks the realtime view dropped such that the late-dropped
    counters hold exactly must_drop + D per (ad, minute) and the series equal the oracle over
    `clicks` without must_drop + D, every metric and resolution. Returns (D, None) or (None, why)."""
    dropped = read_late_dropped_cells(table)
    by_id = {c["click_id"]: c for c in clicks}
    must = Counter(minute_cell(by_id[i]) for i in must_drop)
    may: dict[tuple, list[str]] = {}
    for i in sorted(either_way):
        may.setdefault(minute_cell(by_id[i]), []).append(i)
    choices = []
    for cell in set(dropped) | set(must) | set(may):
        k = dropped.get(cell, 0) - must[cell]
        if not 0 <= k <= len(may.get(cell, [])):
            return None, f"late-dropped counter of {cell} is {dropped.get(cell, 0)}: " \
                         f"{must[cell]} must be dropped, {len(may.get(cell, []))} may be"
        choices.append([set(c) for c in itertools.combinations(may.get(cell, []), k)])
    store = read_store(table, sorted({c["ad_id"] for c in clicks}))
    why = None
    for combo in itertools.product(*choices):
        d = set().union(*combo)
        want = {k: {m: v[m] for m in METRICS} for k, v in realtime_truth(clicks, must_drop | d).items()}
        if store == want:
            return d, None
        diff = sorted(k for k in set(store) | set(want) if store.get(k) != want.get(k))
        why = f"dropped {sorted(d)}: {len(diff)} rows differ, e.g. " + \
              "; ".join(f"{k}: store {store.get(k)} oracle {want.get(k)}" for k in diff[:3])
    return None, why


class JobOutput:
    """Follows the job's changelog on the aggregates stream from TRIM_HORIZON (the local
    consumers' ShardPoller, with positions it never saves) and keeps, for the watched (ad, minute)
    cells, the newest 1m count and late-dropped count (the sink's rule: highest version per key
    wins; a retraction leaves 0)."""

    def __init__(self, stream: str, cells: set[tuple[str, int]], scratch: Path):
        from local.kinesis_consumer import Checkpoints, ShardPoller

        self.poller = ShardPoller(stream, Checkpoints(scratch / "job-output-positions.json"), limit=10_000)
        self.cells, self.rows = cells, {}

    def poll(self) -> dict[tuple[str, int], int]:
        from aggregate.changes import decode_change

        while batches := self.poller.poll():  # until every shard is read to its end
            for record in (r for records in batches.values() for r in records):
                ch = decode_change(record["Data"])
                cell = (ch.row["ad_id"], ch.bucket_start)
                if cell in self.cells and (ch.kind == "late" or (ch.kind == "agg" and ch.row["resolution"] == "1m")):
                    value = (ch.row["late_dropped"] if ch.kind == "late" else ch.row["clicks"]) if ch.upsert else 0
                    key = (ch.kind, cell)
                    if key not in self.rows or self.rows[key][0] <= ch.version:
                        self.rows[key] = (ch.version, value)
        out: Counter = Counter()
        for (_, cell), (_, value) in self.rows.items():
            out[cell] += value
        return {cell: n for cell, n in out.items() if n}


def test_no_click_lost_or_double_counted_under_faults(tmp_path, capsys):
    def say(msg):
        with capsys.disabled():
            print(f"[faults] {msg}", flush=True)

    # event time spans about as long as the sending takes (as in production, where event time
    # follows the wall clock): a replay backlog after a crash then spans seconds to minutes and
    # stays inside the 15 min lateness; the late clicks are an hour old
    # the plain mix (no bots, data-centre addresses, bursts, too-fast or impression repeats): this
    # test is about exactly-once; the IVT verdicts are the demo's and their own tests' subject
    spec = LoadSpec.plain(clicks=10_000 if SOAK else 1_500, ads=30, late_count=10, seed=11, span_s=120)
    load = generate(spec, end_ms=int(time.time() * 1000))
    late_sends = load.sends[-spec.late_count:]
    on_time_sends = load.sends[:-spec.late_count]
    either_way_sends, must_drop_sends = late_sends[:spec.late_count // 2], late_sends[spec.late_count // 2:]
    either_way = {p["click_id"] for p in either_way_sends}
    must_drop = {p["click_id"] for p in must_drop_sends}
    assert either_way | must_drop == set(load.late_ids) and not either_way & must_drop

    counters = FaultCounters()
    placement: dict = {}
    moto = MotoServer(log_path=tmp_path / "moto.log").start()
    options = StackOptions(endpoint=moto.url, state_dir=tmp_path, api_port=free_port(),
                           settings=IngestSettings(kinesis_backoff_base_ms=5, hot_ad_salts={"ad-0000": 4}))
    checkpoints = tmp_path / "flink-checkpoints"
    stacks = []
    dead_lettered: list = []  # the sink ESM's on-failure destination, across both stacks
    try:
        stack = LocalStack(options).start()
        stacks.append(stack)
        stack.flink_job.wait_ready()
        stack.flink_job.wait_checkpoint()  # the job reads: the first fault can come a third of the way in
        install_ingest_faults(counters, **RATES)
        assert ingest_handler.get_service().dedup.mode == DEDUP_PER_CLICK
        install_sink_faults(stack, counters, failure_rate=0.01, duplicate_rate=0.2)
        stack.sink_mapping.on_failure = dead_lettered

        # the sender fills this report as responses arrive (accepted count, first-accepted times);
        # it sends the load in three parts: the first two thirds at once, the next sixth once the
        # stack restart begins, the rest once the new stack runs
        report = SendReport()
        head, tail = on_time_sends[:2 * len(on_time_sends) // 3], on_time_sends[2 * len(on_time_sends) // 3:]
        head_sent, restart_begins, restarted = threading.Event(), threading.Event(), threading.Event()

        def send_parts():
            for seed, (part, after) in enumerate(((head, None), (tail[:len(tail) // 2], restart_begins),
                                                 (tail[len(tail) // 2:], restarted))):
                if after is not None and not after.wait(timeout=900):
                    return
                send_load(stack_url, part, batch_size=50, concurrency=3, progress=False, resend_rate=0.05,
                          rate=SEND_RATE, report=report, seed=5 + seed)
                if part is head:
                    head_sent.set()
        stack_url = stack.api.url  # the restarted stack serves the same port
        sender = threading.Thread(target=send_parts)
        sender.start()
        total = len({p["click_id"] for p in on_time_sends})

        def accepted_between(t0: float, t1: float = float("inf")) -> int:
            """On-time clicks accepted by a request sent in [t0, t1)."""
            return sum(t0 <= t < t1 for t in list(report.post_times.values()))

        def in_flight_after(cp_time: float) -> int:
            """Clicks accepted after the checkpoint completed (so beyond its positions), counted once
            the replacement job runs: what it must read again, or for the first time."""
            return sum(t > cp_time for t in list(report.post_times.values()))

        # 1. a third of the way in, after the job completed a checkpoint: SIGKILL the job
        wait_for(lambda: report.outcomes["accepted"] > total // 3 and newest_checkpoint(checkpoints) > 0,
                 300, "a third of the clicks accepted and a completed checkpoint")
        stack.flink_job.kill()
        killed_at = time.time()
        counters.add("flink_killed")
        cp = newest_checkpoint(checkpoints)
        placement["kill"] = dict(accepted=report.outcomes["accepted"], of=total, sender_running=not head_sent.is_set(),
                                 checkpoint_age_s=round(killed_at - cp, 1))
        # the first late group goes out while no job runs: only the restored job ever reads it
        late_report = send_load(stack.api.url, either_way_sends, batch_size=50, concurrency=1, progress=False)
        assert late_report.outcomes["accepted"] == len(either_way), late_report.outcomes
        assert all(t > killed_at for i, t in late_report.post_times.items())
        stack.start_flink(fresh=False)
        restored_at = time.time()
        stack.flink_job.wait_ready()
        placement["kill"]["accepted_after_checkpoint"] = in_flight_after(cp)  # incl. while it was down
        placement["kill"]["accepted_before_fault"] = accepted_between(0, killed_at)
        say(f"job killed and restored: {placement['kill']}")

        # 2. two thirds of the way in, once the restored job has read the late group and completed
        # a checkpoint after that (so the late group is never replayed again): restart the stack
        late_cells = Counter(minute_cell(c) for c in load.truth if c["click_id"] in either_way)
        job_output = JobOutput(stack.names.aggregates_stream, set(late_cells), tmp_path)

        def late_group_read():
            """The job's output (not the sink's, which lags) counts each of them in its (ad,
            minute) cell, counted or dropped; the cells are an hour old: no other click is in them."""
            return job_output.poll() == dict(late_cells)
        wait_for(late_group_read, 300, "the restored job's output for the clicks sent while it was down")
        # Flink runs one checkpoint at a time and creates its directory when it triggers it: one
        # numbered above every directory present now was triggered after the job read them
        triggered = checkpoint_ids(checkpoints, completed=False)
        wait_for(lambda: checkpoint_ids(checkpoints, completed=True) > triggered and head_sent.is_set(),
                 300, "a checkpoint of the restored job triggered after it read them, and two thirds sent")
        placement["kill"]["accepted_after_fault"] = accepted_between(killed_at)
        cp = newest_checkpoint(checkpoints)
        stopping_at = time.time()
        placement["stack_restart"] = dict(
            accepted=report.outcomes["accepted"], of=total, sender_running=sender.is_alive(),
            restored_job_checkpoint_age_s=round(stopping_at - cp, 1),
            checkpoint_after_restore=cp > restored_at, accepted_before_fault=accepted_between(0, stopping_at))
        restart_begins.set()  # the next part goes out while the stack stops (and is retried while it is down)
        stack.stop()
        counters.add("stack_restarted")
        assert options.settings.ingest_dedup_mode == DEDUP_PER_CLICK
        options = dataclasses.replace(options, settings=dataclasses.replace(
            options.settings, ingest_dedup_mode=DEDUP_MARK))  # the new stack's ingest: mark mode
        stack = LocalStack(options).start()
        stacks.append(stack)
        install_ingest_faults(counters, **RATES)
        assert ingest_handler.get_service().dedup.mode == DEDUP_MARK
        install_sink_faults(stack, counters, failure_rate=0.01, duplicate_rate=0.2)
        stack.sink_mapping.on_failure = dead_lettered
        restarted_at = time.time()
        restarted.set()  # the last part goes to the new stack
        stack.flink_job.wait_ready()
        sender.join(timeout=900)
        assert not sender.is_alive(), "the sender did not finish in 900 s"
        placement["stack_restart"]["accepted_after_checkpoint"] = in_flight_after(cp)
        placement["stack_restart"]["accepted_after_fault"] = accepted_between(stopping_at)
        placement["stack_restart"]["accepted_by_new_stack"] = accepted_between(restarted_at)
        say(f"stack restarted: {placement['stack_restart']}")

        # each fault happened where the test says: mid-stream (clicks accepted before and after
        # it), after a completed checkpoint, with clicks accepted after that checkpoint (which the
        # restored job had to read again)
        for fault, where in placement.items():
            assert where["sender_running"] and where["accepted"] < where["of"], (fault, where)
            assert where["accepted_before_fault"] > 0 and where["accepted_after_fault"] > 0, (fault, where)
            assert where["accepted_after_checkpoint"] > 0, (fault, where)
        assert placement["stack_restart"]["checkpoint_after_restore"], placement
        assert placement["stack_restart"]["accepted_by_new_stack"] > 0, placement

        # 3. the on-time clicks and the first late group, everything accounted for
        sent = [c for c in load.truth if c["click_id"] not in must_drop]
        wait_for(lambda: explain_store(stack.names.serving_table, sent, set(), either_way)[0] is not None,
                             300, "the serving store to equal the oracle for every click sent so far")
        # 4. the second late group, after the last fault and with the job caught up: all dropped
        late_report = send_load(stack.api.url, must_drop_sends, batch_size=50, concurrency=1, progress=False)
        assert late_report.outcomes["accepted"] == len(must_drop), late_report.outcomes
        last = {}

        def all_accounted():
            last["d"], last["why"] = explain_store(stack.names.serving_table, load.truth, must_drop, either_way)
            return last["d"] is not None
        converged_in = time.monotonic()
        try:
            wait_for(all_accounted, 240, "every click counted once or late-dropped once")
        except pytest.fail.Exception:
            pytest.fail(f"serving store not explained by the oracle: {last['why']}; injected: {describe(counters)}")
        converged_in = time.monotonic() - converged_in
        dropped_either_way = last["d"]

        truth_ids = sorted(c["click_id"] for c in load.truth)
        stream = Counter(r["click_id"] for recs in read_stream(stack.names.clicks_stream).values() for r in recs)
        wait_for(lambda: {r["click_id"] for r, _ in archived_rows(stack)} == set(truth_ids), 120,
                 "the archive to hold every click")
        rows = archived_rows(stack)
        archive = Counter(r["click_id"] for r, _ in rows)
        statuses = dedup_status_counts(stack.names.dedup_table)
        say(f"injected: {describe(counters)}; client resent {report.resent_requests} requests, "
            f"{report.retries} retryable items re-sent, {report.connection_errors} connection errors")
        say(f"distinct clicks {len(truth_ids)}: dedup committed {statuses.get('committed')}, "
            f"stream distinct {len(stream)} (extra copies {sum(stream.values()) - len(stream)}), "
            f"archive distinct {len(archive)} (extra copies {sum(archive.values()) - len(archive)}); "
            f"serving store equal to the oracle at {', '.join(RES_MS)} for all ads ({converged_in:.0f} s after the "
            f"last send); late: {len(must_drop)} of {len(must_drop)} dropped after the faults, "
            f"{len(dropped_either_way)} of {len(either_way)} sent during the downtime dropped, the rest counted")
        assert dead_lettered == [], f"sink batches sent to the on-failure destination: {dead_lettered}"
        assert report.outcomes["rejected"] == 0 and report.outcomes["retryable"] == 0
        assert statuses == {"committed": len(truth_ids)}
        assert sorted(stream) == truth_ids  # none lost (a copy after a failed confirm is allowed: README)
        assert sorted(archive) == truth_ids  # the archive may hold copies; billing dedups by click_id
        assert counters.counts["kinesis_records_failed"] > 0 and counters.counts["sink_write_failed"] > 0
        assert counters.counts["sink_batches_redelivered"] > 0

        compared, billable = compare_billing(stack, rows, load.truth, tmp_path)
        say(f"billing recompute over the archive equal to the oracle: {compared} advertiser/campaign/ad/hour "
            f"rows, {billable} billable clicks")
    finally:
        for s in stacks:
            s.stop()
        moto.stop()
