"""The local stack end to end over real HTTP: moto server child process, API Gateway events,
and a clean shutdown on Ctrl-C."""
from __future__ import annotations

from collections import Counter

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


def stream_click_ids(stack) -> Counter:
    return Counter(r["click_id"] for rs in read_stream(stack.names.clicks_stream).values() for r in rs)


def test_load_through_http_matches_ground_truth(stack):
    # the stack is the module's: other tests may have put clicks before this one (any order)
    before_stream = stream_click_ids(stack)
    before_dedup = Counter(dedup_status_counts(stack.names.dedup_table))
    load = generate(LoadSpec(clicks=600, ads=20, seed=3), end_ms=int(time.time() * 1000))
    report = send_load(stack.api.url, load.sends, batch_size=50, concurrency=3, progress=False)
    assert report.outcomes == {"accepted": 600, "duplicate": load.duplicates}
    added = stream_click_ids(stack) - before_stream
    assert added == Counter(c["click_id"] for c in load.truth)  # each once, nothing else
    assert Counter(dedup_status_counts(stack.names.dedup_table)) - before_dedup == {"committed": 600}


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


def test_public_clicks_over_http_preflight_cors_and_the_request_network_facts(stack):
    """POST /v1/public/clicks through the local API Gateway: a browser's preflight, then a click
    with a token signed with the stack's key set (no API key anywhere) recorded with the token's
    ids and price and the request's address and user agent; a click without a token refused."""
    import uuid

    import boto3

    from common.click_token import ClickClaims, issue, parse_key_set

    keys = parse_key_set(boto3.client("secretsmanager").get_secret_value(
        SecretId=stack.names.click_token_secret)["SecretString"])
    now_s = int(time.time())
    token = issue(ClickClaims(impression_id=f"imp-{uuid.uuid4()}", ad_id="ad-pub", campaign_id="cmp-pub",
                              advertiser_id="adv-pub", price_micros=120_000, issued_at=now_s - 60,
                              expires_at=now_s + 3600, landing_url="https://shop.example/"), keys)
    url, page = f"{stack.api.url}/v1/public/clicks", "https://publisher.example"
    r = requests.options(url, headers={"Origin": page, "Access-Control-Request-Method": "POST",
                                       "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 204 and {k: v for k, v in r.headers.items() if k.startswith("Access-Control-")} == {
        "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"}
    cid, ua = f"pub-{uuid.uuid4()}", "Mozilla/5.0 (public-route test)"
    headers = {"Content-Type": "application/json", "User-Agent": ua, "Origin": page}
    r = requests.post(url, headers=headers, json={"clicks": [
        {"click_id": cid, "user_id": "u-pub", "timestamp": now_s * 1000, "token": token,
         "ip": "192.0.2.1", "user_agent": "claimed/1.0"},
        {"click_id": cid + "-no-token", "user_id": "u-pub", "timestamp": now_s * 1000}]})
    assert r.status_code == 202 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert [(x["status"], x.get("reasons")) for x in r.json()["results"]] == [
        ("accepted", None), ("rejected", [{"field": "token", "reason": "missing_token"}])]
    [record] = [rec for rs in read_stream(stack.names.clicks_stream).values() for rec in rs
                if rec["click_id"].startswith(cid)]
    assert (record["click_id"], record["ad_id"], record["campaign_id"], record["advertiser_id"],
            record["cost_micros"], record["ip"], record["user_agent"]) == (
        cid, "ad-pub", "cmp-pub", "adv-pub", 120_000, "127.0.0.1", ua)
    # the API-key route's answers carry no CORS for that page (none is configured locally)
    r = requests.post(f"{stack.api.url}/v1/clicks", data="{nope", headers=headers)
    assert r.status_code == 400 and "Access-Control-Allow-Origin" not in r.headers


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
