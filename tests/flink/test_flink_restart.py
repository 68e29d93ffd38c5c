"""Crash and restore: the runner is SIGKILLed (with its JVM) halfway through the feed, restarted
without --fresh (it restores the latest retained checkpoint), the feed resumes, and the consumer
view of the output still equals the oracle exactly (re-emitted rows carry old versions)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import datagen
import harness
from aggregate.job import feed

SETTINGS = ["--set", "leaderboard_size=3", "--set", "monitor_interval_ms=300",
            "--set", "minibatch_latency_ms=500", "--set", "checkpoint_interval_ms=2000"]


def test_crash_restore_converges_to_the_oracle(tmp_path):
    sc = datagen.generate(seed=11, n_files=18, file_span_s=300, clicks_per_file=120,
                          dup_max_files_later=1)
    expected = datagen.oracle(sc)
    inp, ck, out = tmp_path / "in", tmp_path / "ck", tmp_path / "out.jsonl"
    inp.mkdir()
    tail = harness.FileTail(out)
    env = {**os.environ, "PYTHONPATH": str(harness.FUNCTIONS)}
    err = open(tmp_path / "runner.stderr", "a")

    def start(fresh: bool) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "aggregate.job.local_runner", "--input-dir", str(inp),
               "--checkpoint-dir", str(ck), "--out-file", str(out), *SETTINGS]
        return subprocess.Popen(cmd + (["--fresh"] if fresh else []), env=env, stderr=err,
                                stdout=subprocess.DEVNULL, start_new_session=True)

    m = harness.Materialized()
    proc = start(fresh=True)
    try:
        for batch in sc.batches[:9]:
            feed.write_batch(inp, batch, ack_timeout_s=180)
        deadline = time.monotonic() + 60
        while not list(ck.glob("*/chk-*/_metadata")) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)
        os.killpg(proc.pid, signal.SIGKILL)  # crash: runner and MiniCluster JVM
        proc.wait()
        for rec in tail.poll():
            m.apply(rec)
        before = m.records

        proc = start(fresh=False)
        for batch in sc.batches[9:]:
            feed.write_batch(inp, batch, ack_timeout_s=180)
        problems = harness.apply_until_converged(proc, tail, m, expected, 120)
    finally:
        harness.stop_runner(proc)
        err.close()
    log = (tmp_path / "runner.stderr").read_text()
    assert "restoring from file://" in log
    assert before > 0 and m.records > before
    assert problems == [], problems
    assert proc.returncode == 0, log[-3000:]
