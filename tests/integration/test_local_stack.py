"""The local stack end to end over real HTTP: moto server child process, API Gateway events,
and a clean shutdown on Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from local.loadgen import LoadSpec, generate
from local.readback import dedup_status_counts, read_stream
from local.sender import send_load
from local.stack import LocalStack, StackOptions

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # a state directory of its own: the Ctrl-C test below runs a second stack meanwhile, and a
    # fresh stack clears its directory's Flink checkpoints (which this stack's job is writing)
    with LocalStack(StackOptions(state_dir=tmp_path_factory.mktemp("stack-state"))) as s:
        yield s


def test_load_through_http_matches_ground_truth(stack):
    load = generate(LoadSpec(clicks=600, ads=20, seed=3), end_ms=int(time.time() * 1000))
    report = send_load(stack.api.url, load.sends, batch_size=50, concurrency=3, progress=False)
    assert report.outcomes == {"accepted": 600, "duplicate": load.duplicates}
    on_stream = [r["click_id"] for rs in read_stream(stack.names.clicks_stream).values() for r in rs]
    assert sorted(on_stream) == sorted(c["click_id"] for c in load.truth)
    assert dedup_status_counts(stack.names.dedup_table) == {"committed": 600}


def test_http_errors_have_status_and_reason(stack):
    r = requests.post(f"{stack.api.url}/v1/clicks", data="hello", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "Content-Type" in r.json()["error"]
    r = requests.post(f"{stack.api.url}/v1/clicks", data=b"\xff\xfe", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = requests.get(f"{stack.api.url}/nowhere")
    assert r.status_code == 404


def test_up_stops_cleanly_on_ctrl_c(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'functions'}"}
    err_path = tmp_path / "up.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "local", "up", "--port", "0", "--state-dir",
                                 str(tmp_path / "state")], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=err, text=True, start_new_session=True)
    line = proc.stdout.readline()
    assert "AWS endpoint" in line, line
    moto_port = line.split("AWS endpoint ")[1].split()[0].rsplit(":", 1)[1]
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # say where it hangs (faulthandler in `local up`), then fail
        os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"`local up` did not stop within 30 s of Ctrl-C; its threads:\n{err_path.read_text()[-6000:]}")
    assert proc.returncode == 0, err_path.read_text()[-3000:]
    assert "stopped" in proc.stdout.read()
    time.sleep(0.5)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{moto_port}/moto-api/", timeout=2)
