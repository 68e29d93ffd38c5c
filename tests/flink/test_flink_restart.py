"""Crash and restore on real shard positions: the job is SIGKILLed (runner and MiniCluster JVM)
while clicks are still being published and after it completed a checkpoint, restarted without
--fresh (it restores that checkpoint: the Kinesis source resumes at the per-shard sequence
numbers in it), the publishing goes on, and the consumer view of the aggregates stream must
account for every click exactly once (see harness.diff_either_way)."""
from __future__ import annotations

import threading
import time

import datagen
import harness

SCENARIO = dict(seed=11, n_files=60, file_span_s=90, clicks_per_file=100, dup_max_files_later=1)


def test_crash_restore_counts_every_click_once(tmp_path, kinesis):
    sc = datagen.generate(**SCENARIO)
    expected = datagen.oracle(sc)
    rig = harness.RunnerRig(tmp_path, kinesis)
    m = harness.Materialized()
    proc, offset = rig.start(fresh=True)
    rest = threading.Event()  # the second half of the clicks waits for the crash
    publisher = threading.Thread(target=harness.publish_paced, args=(rig, sc.batches, 1.0),
                                 kwargs={"hold": (len(sc.batches) // 2, rest)}, daemon=True)
    try:
        assert rig.wait_submitted(proc, offset), rig.log()[-3000:]
        publisher.start()
        assert rig.wait_for_checkpoint(timeout_s=90), "run 1 completed no checkpoint"
        checkpoint_seen = rig.checkpoints()
        deadline = time.monotonic() + 60
        while m.records == 0 and time.monotonic() < deadline:  # output of run 1 has arrived
            for rec in rig.tail.poll():
                m.apply(rec)
            time.sleep(0.5)
        before = m.records
        rig.crash(proc)
        crashed_mid_stream = publisher.is_alive()  # clicks still to come: records in flight

        proc, offset = rig.start(fresh=False)
        rest.set()
        publisher.join(180)
        problems = harness.apply_until_converged(proc, rig.tail, m, expected, 180,
                                                 compare=harness.diff_either_way)
    finally:
        harness.stop_runner(proc)
        rig.close()
    log = rig.log()
    assert "restoring from file://" in log[offset:]
    assert checkpoint_seen and crashed_mid_stream and before > 0
    assert m.records > before
    assert problems == [], problems
    assert proc.returncode == 0, log[-3000:]
