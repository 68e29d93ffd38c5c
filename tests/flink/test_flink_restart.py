"""Crash and restore: the runner is SIGKILLed (with its JVM) halfway through the feed, restarted
without --fresh (it restores the latest retained checkpoint), the feed resumes, and the consumer
view of the output still equals the oracle exactly (re-emitted rows carry old versions)."""
from __future__ import annotations

import time

import datagen
import harness
from aggregate.job import feed


def test_crash_restore_converges_to_the_oracle(tmp_path):
    sc = datagen.generate(seed=11, n_files=18, file_span_s=300, clicks_per_file=120,
                          dup_max_files_later=1)
    expected = datagen.oracle(sc)
    rig = harness.RunnerRig(tmp_path)
    m = harness.Materialized()
    proc, _ = rig.start(fresh=True)
    try:
        for batch in sc.batches[:9]:
            feed.write_batch(rig.inp, batch, ack_timeout_s=180)
        rig.wait_for_checkpoint()
        time.sleep(3)
        rig.crash(proc)  # runner and MiniCluster JVM
        for rec in rig.tail.poll():
            m.apply(rec)
        before = m.records

        proc, _ = rig.start(fresh=False)
        for batch in sc.batches[9:]:
            feed.write_batch(rig.inp, batch, ack_timeout_s=180)
        problems = harness.apply_until_converged(proc, rig.tail, m, expected, 120)
    finally:
        harness.stop_runner(proc)
        rig.close()
    log = rig.log()
    assert "restoring from file://" in log
    assert before > 0 and m.records > before
    assert problems == [], problems
    assert proc.returncode == 0, log[-3000:]
