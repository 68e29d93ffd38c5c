"""local.flink's temporary-directory bookkeeping for the runner's JVM (pure filesystem logic):
where a runner's directory is, and which ones the next runner removes."""
from __future__ import annotations

import os
import subprocess
import sys

from local.flink import jvm_tmp_dir, remove_dead_runners_tmp


def test_a_runners_directory_is_beside_the_checkpoints_one_per_runner(tmp_path):
    assert jvm_tmp_dir(tmp_path / "state" / "flink-checkpoints", 4242) == tmp_path / "state" / "flink-tmp" / "4242"
    assert jvm_tmp_dir(tmp_path / "ck", 1) != jvm_tmp_dir(tmp_path / "ck", 2)


def test_only_the_directories_of_runners_that_no_longer_run_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that ran a moment ago and has exited (reaped)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        root = tmp_path / "flink-tmp"
        dirs = {name: root / name for name in (str(dead.pid), str(alive.pid), str(os.getpid()), "notes")}
        for d in dirs.values():
            (d / "minicluster_x" / "blobStorage").mkdir(parents=True)
        remove_dead_runners_tmp(root, keep=os.getpid())
        assert sorted(p.name for p in root.iterdir()) == sorted([str(alive.pid), str(os.getpid()), "notes"])
        assert (dirs[str(alive.pid)] / "minicluster_x" / "blobStorage").is_dir()
    finally:
        alive.kill()
        alive.wait()


def test_no_directory_yet_is_nothing_to_remove(tmp_path):
    remove_dead_runners_tmp(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()
