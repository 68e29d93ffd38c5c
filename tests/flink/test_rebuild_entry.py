"""The rebuild entry's file system on a real JVM (aggregate/job/rebuild_main.py FlinkFileSystem):
`_SUCCESS` is written and found through org.apache.flink.core.fs, here on file:// (on Managed
Flink the same calls go to its S3 file system, which is not available here)."""
from __future__ import annotations

import json


def test_success_is_written_and_found_through_flinks_file_system(tmp_path):
    from aggregate.job import rebuild
    from aggregate.job.rebuild_main import FlinkFileSystem

    fs = FlinkFileSystem()
    out = f"file://{tmp_path}/gen=3/"  # not as_uri(): it escapes "="
    run = rebuild.RebuildRun(0, 60_000, "file:///nowhere", out, 3)
    assert not fs.exists(run.success_uri)
    fs.write_text(run.success_uri, rebuild.success_record(run, 1.5))
    assert fs.exists(run.success_uri)
    written = (tmp_path / "gen=3" / "_SUCCESS").read_text()
    assert json.loads(written) == {"generation": 3, "start_ms": 0, "end_ms": 60_000, "seconds": 1.5}
    fs.write_text(run.success_uri, rebuild.success_record(run, 2.0))  # overwrite, not append
    assert json.loads((tmp_path / "gen=3" / "_SUCCESS").read_bytes())["seconds"] == 2.0


def test_a_second_start_of_a_finished_run_does_not_run_the_job(tmp_path):
    """run_managed with the real file system: `_SUCCESS` there -> exit 0, the job untouched."""
    from aggregate.job import rebuild
    from aggregate.job.rebuild_main import FlinkFileSystem

    out = f"file://{tmp_path}/gen=4/"
    (tmp_path / "gen=4").mkdir()
    (tmp_path / "gen=4" / "_SUCCESS").write_text("{}")
    props = {"rebuild": rebuild.RebuildRun(0, 60_000, "file:///nowhere", out, 4).properties()}

    def job(*args, **kwargs):
        raise AssertionError("the job must not run again")

    assert rebuild.run_managed(props, 10**13, FlinkFileSystem(), job, log=lambda _: None) == 0
