"""The stream-aggregation hop locally: the Flink job in a PyFlink MiniCluster (its own venv and
process, like Managed Flink is its own service) fed from the local clicks stream.

  clicks stream --(FlinkFeed: this process)--> JSON files --(Flink filesystem source)-->
  job --(debezium-json, PutRecords)--> aggregates stream --(local ESM)--> sink Lambda

The feed follows the job's lossless file protocol (aggregate.job.feed): one file in flight,
published atomically, each batch sorted by event time (on AWS each Kinesis shard has its own
split and watermark; one local file mixes shards, so sorting stands in for per-shard order).
Positions are checkpointed after a file is published; a restart may re-publish a batch, which
the job's click_id dedup absorbs.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from aggregate.job.feed import FeedStalled, write_batch
from common.records import decode_click
from local.kinesis_consumer import BackgroundWorker, Checkpoints, ShardPoller

REPO = Path(__file__).resolve().parent.parent
FLINK_PYTHON = REPO / ".venv-flink" / "bin" / "python"


class FlinkFeed(BackgroundWorker):
    def __init__(self, stream: str, input_dir: Path, state_dir: Path, page_limit: int = 2000):
        self.input_dir = input_dir
        self.checkpoints = Checkpoints(state_dir / f"flinkfeed-{stream}.json")
        self.poller = ShardPoller(stream, self.checkpoints, limit=page_limit)
        self.fed = 0
        super().__init__("flink-feed")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pages = self.poller.poll()
            except Exception:  # emulator stopping during shutdown
                self._stop.wait(1)
                continue
            if not pages:
                self._stop.wait(0.2)
                continue
            clicks = sorted((decode_click(r["Data"]) for recs in pages.values() for r in recs),
                            key=lambda c: c["event_time"])
            while not self._stop.is_set():
                try:
                    write_batch(self.input_dir, clicks, ack_timeout_s=5)
                    break
                except FeedStalled:
                    continue  # the job is starting or restarting: keep the batch, try again
            else:
                return
            for shard_id, recs in pages.items():
                self.checkpoints.save(shard_id, recs[-1]["SequenceNumber"])
            self.fed += len(clicks)


class LocalFlinkJob:
    """The job as a child process (process group of its own: stopped as one)."""

    def __init__(self, input_dir: Path, checkpoint_dir: Path, out_stream: str, log_path: Path,
                 settings: dict[str, str] | None = None, parallelism: int = 2):
        self.input_dir, self.checkpoint_dir, self.out_stream = input_dir, checkpoint_dir, out_stream
        self.log_path, self.settings, self.parallelism = log_path, settings or {}, parallelism
        self._proc: subprocess.Popen | None = None

    def start(self, fresh: bool = True) -> "LocalFlinkJob":
        if not FLINK_PYTHON.exists():
            raise RuntimeError(f"{FLINK_PYTHON} missing: run `make setup` (PyFlink has its own venv)")
        cmd = [str(FLINK_PYTHON), "-m", "aggregate.job.local_runner", "--input-dir", str(self.input_dir),
               "--checkpoint-dir", str(self.checkpoint_dir), "--out-stream", self.out_stream,
               "--parallelism", str(self.parallelism)]
        cmd += [arg for k, v in self.settings.items() for arg in ("--set", f"{k}={v}")]
        if fresh:
            cmd.append("--fresh")
        env = {**os.environ, "PYTHONPATH": str(REPO / "functions")}
        log = open(self.log_path, "ab")
        self._log_offset = log.tell()
        self._proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
        return self

    def wait_ready(self, timeout_s: float = 180) -> float:
        """Block until the driver reports the job submitted; returns seconds waited."""
        import time

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

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """Crash it (SIGKILL to the whole group, no clean cancel): for fault tests."""
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._proc.wait()

    def stop(self, timeout_s: float = 30) -> None:
        if self.running:
            # the driver cancels the job itself (and the JVM it started), checkpoints retained
            os.kill(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
            self.kill()  # whatever is left of the group (the gateway JVM)
        self._proc = None


def flink_available() -> bool:
    return FLINK_PYTHON.exists()


if __name__ == "__main__":  # pragma: no cover
    print(FLINK_PYTHON, flink_available(), file=sys.stderr)
