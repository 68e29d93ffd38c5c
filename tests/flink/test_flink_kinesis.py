"""The runner's other output path end to end: `--emit collect` (PyFlink collect + the Python
debezium encoder) shipping to a Kinesis stream on a moto server with boto3 (AWS_ENDPOINT_URL),
on a smaller scenario; the records read back from the stream must equal the oracle."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import datagen
import harness

MOTO = shutil.which("moto_server") or str(harness.REPO / ".venv" / "bin" / "moto_server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def kinesis():
    if not Path(MOTO).exists():
        pytest.skip("moto_server not installed (it lives in the dev venv: make setup)")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    os.environ.update({k: env[k] for k in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                                           "AWS_SECRET_ACCESS_KEY")})
    proc = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_stream(StreamName="clickagg-aggregates", ShardCount=2)
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.3)
    client.get_waiter("stream_exists").wait(StreamName="clickagg-aggregates",
                                            WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    yield client, "clickagg-aggregates", endpoint
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def scenario():
    return datagen.generate(seed=7, n_files=18, file_span_s=300, clicks_per_file=120,
                            dup_max_files_later=1)


def test_collect_mode_to_kinesis_equals_the_oracle(tmp_path, kinesis, scenario):
    expected = datagen.oracle(scenario)
    run = harness.run_local_runner(
        tmp_path, scenario.batches, expected, emit="collect", kinesis=kinesis,
        overrides={"leaderboard_size": 3, "monitor_interval_ms": 300,
                   "minibatch_latency_ms": 500, "checkpoint_interval_ms": 2000},
        python=sys.executable)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.problems == [], run.problems
    assert run.materialized.strict_tops() == expected.tops
    assert run.materialized.version_errors == [] and run.materialized.strict_errors == []
    assert sum(v["late_dropped"] for v in run.materialized.late.values()) == 3
    assert "KinesisWriter=" in run.stderr
