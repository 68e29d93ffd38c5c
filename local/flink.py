"""The stream-aggregation hop locally: the Flink job in a PyFlink MiniCluster (its own venv and
process, like Managed Flink is its own service) on the job's real Kinesis connector, pointed at
the emulator:

  clicks stream (+ events stream) --(Kinesis sources, per-shard positions in checkpoints)--> job
  --(debezium-json, Kinesis sink)--> aggregates stream --(local ESM)--> sink Lambda

The job reads and writes the streams itself (`local.flink_runner`): nothing in this
process sits between the clicks stream and the job. A fresh job reads the clicks stream from
TRIM_HORIZON; a restarted one restores its newest retained checkpoint and resumes at the shard
positions stored in it.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLINK_PYTHON = REPO / ".venv-flink" / "bin" / "python"


def jvm_tmp_dir(checkpoint_dir: Path, runner_pid: int) -> Path:
    """Where a runner's JVM (gateway + MiniCluster) writes its temporary files: beside the
    checkpoints, one directory per runner process. By default Flink writes them to /tmp and
    deletes them only when the JVM exits normally, so each killed job (a crash test's SIGKILL,
    or `stop` killing the group) left ~190 MB there: the MiniCluster's working directory
    `minicluster_<id>` (its blob store holds the 127 MB connector jar), `flink-io-*`,
    `flink-netty-shuffle-*`, `flink-dist-cache-*`, the RPC system's `flink-rpc-akka*.jar` (21 MB)
    and the planner's `flink-table-planner_*.jar` (40 MB). The runner points the JVM's
    java.io.tmpdir and Flink's io.tmp.dirs here; `LocalFlinkJob` removes it once the process group
    is gone, the next runner on the same checkpoints removes those of dead runners."""
    return Path(checkpoint_dir).resolve().parent / "flink-tmp" / str(runner_pid)


def remove_dead_runners_tmp(root: Path, keep: int | None = None) -> None:
    """Remove the jvm_tmp_dir of every runner under `root` that no longer runs (but `keep`)."""
    for d in root.glob("*") if root.is_dir() else ():
        if d.name.isdigit() and int(d.name) != keep and not _pid_alive(int(d.name)):
            shutil.rmtree(d, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalFlinkJob:
    """The job as a child process (process group of its own: stopped as one)."""

    def __init__(self, clicks_stream: str, aggregates_stream: str, endpoint: str, checkpoint_dir: Path,
                 log_path: Path, settings: dict[str, str] | None = None, parallelism: int = 2,
                 events_stream: str | None = None):
        self.clicks_stream, self.aggregates_stream, self.endpoint = clicks_stream, aggregates_stream, endpoint
        self.events_stream = events_stream
        self.checkpoint_dir, self.log_path = checkpoint_dir, log_path
        self.settings, self.parallelism = settings or {}, parallelism
        self._proc: subprocess.Popen | None = None

    def start(self, fresh: bool = True) -> "LocalFlinkJob":
        if not FLINK_PYTHON.exists():
            raise RuntimeError(f"{FLINK_PYTHON} missing: run `make setup` (PyFlink has its own venv)")
        cmd = [str(FLINK_PYTHON), "-m", "local.flink_runner",
               "--clicks-stream", self.clicks_stream, "--aggregates-stream", self.aggregates_stream,
               "--endpoint", self.endpoint, "--checkpoint-dir", str(self.checkpoint_dir),
               "--parallelism", str(self.parallelism)]
        if self.events_stream:
            cmd += ["--events-stream", self.events_stream]
        cmd += [arg for k, v in self.settings.items() for arg in ("--set", f"{k}={v}")]
        if fresh:
            cmd.append("--fresh")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(REPO), str(REPO / "functions")))}
        self._started_at = time.time()
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            self._proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
        return self

    def wait_ready(self, timeout_s: float = 180) -> float:
        """Block until the driver reports the job submitted; returns seconds waited."""
        t0 = time.monotonic()
        offset = self._log_offset
        while time.monotonic() - t0 < timeout_s:
            if not self.running:
                raise RuntimeError(f"Flink job exited; see {self.log_path}")
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                if b" submitted" in f.read():
                    return time.monotonic() - t0
            time.sleep(0.5)
        raise TimeoutError(f"Flink job not submitted after {timeout_s}s; see {self.log_path}")

    def wait_checkpoint(self, timeout_s: float = 180) -> float:
        """Block until the job completes a checkpoint after this start; returns seconds waited.
        Flink triggers checkpoints only once every task runs, so this is the moment the Kinesis
        source is reading ("submitted" comes several seconds earlier, while tasks deploy)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if not self.running:
                raise RuntimeError(f"Flink job exited; see {self.log_path}")
            if any(m.stat().st_mtime >= self._started_at for m in self.checkpoint_dir.glob("*/chk-*/_metadata")):
                return time.monotonic() - t0
            time.sleep(0.2)
        raise TimeoutError(f"Flink job completed no checkpoint in {timeout_s}s; see {self.log_path}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """Crash it (SIGKILL to the whole group, no clean cancel): for fault tests. Its JVM's
        temporary files go with it (jvm_tmp_dir); checkpoints stay."""
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._proc.wait()
            shutil.rmtree(jvm_tmp_dir(self.checkpoint_dir, self._proc.pid), ignore_errors=True)

    def stop(self, timeout_s: float = 30) -> None:
        if self.running:
            # the driver cancels the job itself (and the JVM it started), checkpoints retained
            os.kill(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # whatever is left of the group (the gateway JVM), and its temporary files
        self._proc = None


def flink_available() -> bool:
    return FLINK_PYTHON.exists()


if __name__ == "__main__":  # pragma: no cover
    print(FLINK_PYTHON, flink_available(), file=sys.stderr)
