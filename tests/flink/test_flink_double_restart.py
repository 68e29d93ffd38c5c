"""Two crashes back to back: the runner is SIGKILLed (with its JVM), restored from its retained
checkpoint, and SIGKILLed AGAIN before the restored job completed a checkpoint of its own; the
third run restores the same checkpoint a second time. The consumer view of the output must still
equal the brute-force oracle exactly (counts per ad and minute, every resolution, late counters,
leaderboards): no changelog row lost, none counted twice."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import datagen
import harness
from aggregate.job import feed


def _wait_log(path: Path, offset: int, needle: str, proc: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if needle in path.read_text()[offset:]:
            return True
        time.sleep(0.2)
    return False


def _per_ad_minute(rows: dict) -> dict[tuple[int, str], int]:
    return {(b, ad): r["clicks"] for (res, b, ad), r in rows.items() if res == "1m"}


def test_two_crashes_back_to_back_lose_no_changelog_row(tmp_path):
    sc = datagen.generate(seed=11, n_files=18, file_span_s=300, clicks_per_file=120,
                          dup_max_files_later=1)
    expected = datagen.oracle(sc)
    rig = harness.RunnerRig(tmp_path)
    inp, err_path = rig.inp, rig.err_path

    m = harness.Materialized()
    fed = [0]
    feed_error: list[BaseException] = []
    stop_feed = threading.Event()

    def feeder(upto: int) -> None:
        try:
            while fed[0] < upto and not stop_feed.is_set():
                try:
                    feed.write_batch(inp, sc.batches[fed[0]], ack_timeout_s=1)
                except feed.FeedStalled:
                    continue  # not picked up yet (or the job is down): publish nothing, retry
                fed[0] += 1
        except BaseException as exc:
            feed_error.append(exc)

    proc, _ = rig.start(fresh=True)
    try:
        # run 1: half the feed, a completed checkpoint, then a crash
        for batch in sc.batches[:8]:
            feed.write_batch(inp, batch, ack_timeout_s=180)
            fed[0] += 1
        rig.wait_for_checkpoint()
        time.sleep(3)
        rig.crash(proc)
        restored_from = rig.checkpoints()
        assert restored_from, "run 1 completed no checkpoint"

        # run 2: restored; it reads the files after the checkpoint plus new ones while the feed
        # keeps publishing, and is crashed again before it completes a checkpoint of its own
        # (its checkpoint interval is long so that this does not race its first checkpoint)
        proc, offset = rig.start(fresh=False, extra=("--set", "checkpoint_interval_ms=60000"))
        assert _wait_log(err_path, offset, " submitted", proc, 180), err_path.read_text()[-3000:]
        th = threading.Thread(target=feeder, args=(14,), daemon=True)
        th.start()
        deadline = time.monotonic() + 60
        while fed[0] < 12 and time.monotonic() < deadline and not (rig.checkpoints() - restored_from):
            time.sleep(0.05)
        rig.crash(proc)
        stop_feed.set()
        th.join(10)
        second_crash_before_checkpoint = not (rig.checkpoints() - restored_from)

        # run 3: restores the same checkpoint again; the feed resumes and completes
        proc, _ = rig.start(fresh=False)
        for batch in sc.batches[fed[0]:]:
            feed.write_batch(inp, batch, ack_timeout_s=180)
        problems = harness.apply_until_converged(proc, rig.tail, m, expected, 150)
    finally:
        harness.stop_runner(proc)
        rig.close()
    for rec in rig.tail.poll():
        m.apply(rec)
    log = rig.log()
    assert not feed_error, feed_error
    assert log.count("restoring from file://") == 2, log[-3000:]
    assert second_crash_before_checkpoint, "run 2 completed a checkpoint: not the back-to-back case"
    assert _per_ad_minute(m.agg) == _per_ad_minute(expected.aggs), harness.diff(m, expected, 30)
    problems = harness.diff(m, expected, 30)
    assert problems == [], problems
    assert proc.returncode == 0, log[-3000:]
