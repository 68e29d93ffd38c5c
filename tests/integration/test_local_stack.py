"""The local stack end to end over real HTTP: moto server child process, API Gateway events,
and a clean shutdown on Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from local.readback import dedup_status_counts, read_stream
from local.stack import LocalStack, StackOptions
from tools.loadgen import LoadSpec, generate
from tools.sender import send_load

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def wait_for(condition, timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `condition` until it holds (True) or `timeout_s` passed (False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
    return True


def moto_refuses(port: str) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/moto-api/", timeout=2)
    except requests.ConnectionError:
        return True
    return False


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


def test_refused_requests_land_in_the_refused_archive(stack):
    """The local stack's ingest puts refused items to its Firehose (moto) and the local
    delivery (local.refused_delivery) moves them into the archive's refused/ layout."""
    import gzip
    import uuid

    import boto3

    from common.refused import REFUSED_PREFIX

    ua = f"refused-test/{uuid.uuid4()}"
    r = requests.post(f"{stack.api.url}/v1/clicks", data="{nope",
                      headers={"Content-Type": "application/json", "User-Agent": ua})
    assert r.status_code == 400
    r = requests.get(f"{stack.api.url}/v1/c?t=v1.garbage", headers={"User-Agent": ua},
                     allow_redirects=False)
    assert r.status_code == 400 and r.json()["reason"] == "malformed"
    s3 = boto3.client("s3")

    def mine() -> list[dict]:
        found = []
        for obj in s3.list_objects_v2(Bucket=stack.names.archive_bucket,
                                      Prefix=REFUSED_PREFIX).get("Contents", []):
            data = s3.get_object(Bucket=stack.names.archive_bucket, Key=obj["Key"])["Body"].read()
            found += [rec for rec in map(json.loads, filter(None, gzip.decompress(data).decode().split("\n")))
                      if rec["user_agent"] == ua]
        return found

    assert wait_for(lambda: len(mine()) == 2, timeout_s=30), mine()
    assert sorted((rec["route"], rec["http_status"], rec["reason_codes"][0], rec["raw"])
                  for rec in mine()) == [
        ("GET /v1/c", 400, "t:malformed", '{"t":["v1.garbage"]}'),
        ("POST /v1/clicks", 400, "body:invalid_json", "{nope")]


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
        # the dump is there once a thread header ("... (most recent call first):") is and the
        # file has stopped growing between two polls
        sizes = []

        def dump_written() -> bool:
            text = err_path.read_text()
            sizes.append(len(text))
            return "most recent call first" in text and len(sizes) > 1 and sizes[-1] == sizes[-2]

        dumped = wait_for(dump_written, timeout_s=10, interval_s=0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"`local up` did not stop within 30 s of Ctrl-C; its threads"
                    f"{'' if dumped else ' (no faulthandler dump within 10 s of SIGUSR1)'}:\n"
                    f"{err_path.read_text()[-6000:]}")
    assert proc.returncode == 0, err_path.read_text()[-3000:]
    assert "stopped" in proc.stdout.read()
    assert wait_for(lambda: moto_refuses(moto_port), timeout_s=10, interval_s=0.2), \
        f"the moto server on port {moto_port} still answers 10 s after `local up` exited"
