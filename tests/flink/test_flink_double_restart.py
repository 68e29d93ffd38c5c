"""Two crashes back to back on real shard positions: the job is SIGKILLed (with its JVM) after a
completed checkpoint while clicks are still being published, restored, and SIGKILLed AGAIN
before the restored job completed a checkpoint of its own; the third run restores the same
checkpoint a second time. The consumer view of the aggregates stream must still account for
every click exactly once (harness.diff_either_way: exact everywhere but the cells of clicks the
oracle drops as late, which a restored job may count instead)."""
from __future__ import annotations

import threading

import datagen
import harness

SCENARIO = dict(seed=11, n_files=60, file_span_s=90, clicks_per_file=100, dup_max_files_later=1)


def test_two_crashes_back_to_back_count_every_click_once(tmp_path, kinesis):
    sc = datagen.generate(**SCENARIO)
    expected = datagen.oracle(sc)
    rig = harness.RunnerRig(tmp_path, kinesis)
    m = harness.Materialized()
    rest = threading.Event()  # the last third of the clicks waits for the second crash
    publisher = threading.Thread(target=harness.publish_paced, args=(rig, sc.batches, 1.5),
                                 kwargs={"hold": (2 * len(sc.batches) // 3, rest)}, daemon=True)
    proc, offset = rig.start(fresh=True)
    try:
        # run 1: a completed checkpoint, then a crash while the publishing goes on
        assert rig.wait_submitted(proc, offset), rig.log()[-3000:]
        publisher.start()
        assert rig.wait_for_checkpoint(timeout_s=90), "run 1 completed no checkpoint"
        rig.crash(proc)
        restored_from = rig.checkpoints()
        first_crash_mid_stream = publisher.is_alive()

        # run 2: restored, crashed again once it is running but before it completed a checkpoint
        # of its own (Flink delays the first checkpoint randomly by up to one interval: a 10 min
        # interval keeps that from racing the crash)
        harness.drain(rig.tail, m)  # run 1 is dead: whatever arrives next is run 2's
        proc, offset = rig.start(fresh=False, overrides={"checkpoint_interval_ms": 600000})
        assert rig.wait_submitted(proc, offset), rig.log()[-3000:]
        run2_output = harness.wait_output(rig.tail, m, timeout_s=90)  # deployed and reading the backlog
        rig.crash(proc)
        second_crash_before_checkpoint = not (rig.checkpoints() - restored_from)
        second_crash_mid_stream = publisher.is_alive()

        # run 3: restores the same checkpoint again; the publishing completes
        proc, offset = rig.start(fresh=False)
        rest.set()
        publisher.join(180)
        problems = harness.apply_until_converged(proc, rig.tail, m, expected, 180,
                                                 compare=harness.diff_either_way)
    finally:
        harness.stop_runner(proc)
        rig.close()
    log = rig.log()
    assert log.count("restoring from file://") == 2, log[-3000:]
    assert first_crash_mid_stream and second_crash_mid_stream, "a crash came after the last click"
    assert second_crash_before_checkpoint, "run 2 completed a checkpoint: not the back-to-back case"
    assert run2_output > 0, "run 2 wrote nothing before its crash"  # it was reading the backlog
    assert problems == [], problems
    assert proc.returncode == 0, log[-3000:]
