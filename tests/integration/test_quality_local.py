"""POST /v1/reconcile and GET /v1/quality over HTTP against the local stack: the ingest counts
come back from (moto's) CloudWatch via the handlers' EMF lines, and a recompute started through
the API runs the Glue job code on local Spark and publishes its drift where /v1/quality reads it.

No Flink job and no sink here, so the realtime view is empty on purpose: the reconciliation must
then report every billable click of the day as drift (realtime 0 - batch N), which is exactly
known from the load generator's ground truth.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import boto3
import pytest
import requests

from local.glue_workflow import GLUE_PYTHON
from local.loadgen import LoadSpec, generate
from local.oracle import realtime_truth
from local.sender import send_load
from local.stack import LocalStack, StackOptions

DAY_MS = 86_400_000

pytestmark = pytest.mark.skipif(not GLUE_PYTHON.exists(), reason=".venv-glue not installed (make setup)")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    options = StackOptions(flink=False, sink=False, state_dir=tmp_path_factory.mktemp("state"))
    with LocalStack(options) as s:
        yield s


def test_quality_counts_and_reconcile_through_the_api(stack):
    url = stack.api.url
    load = generate(LoadSpec(clicks=300, ads=12, seed=11), end_ms=int(time.time() * 1000))
    report = send_load(url, load.sends, batch_size=50, concurrency=2, progress=False)
    assert report.outcomes == {"accepted": 300, "duplicate": load.duplicates}
    bad = requests.post(f"{url}/v1/clicks", json={"clicks": [{"click_id": "x"}]})
    assert bad.status_code == 400

    stack.emf.drain()
    q = requests.get(f"{url}/v1/quality", params={"last": "24h"})
    assert q.status_code == 200
    ingest = q.json()["ingest"]
    assert (ingest["accepted"], ingest["duplicates"], ingest["rejected"]) == (300, load.duplicates, 1)
    assert ingest["duplicate_rate"] == pytest.approx(load.duplicates / (300 + load.duplicates))
    assert q.json()["reconciliation"] is None and q.json()["status"] == "ok"

    # the recompute reads what the archive holds: wait for every click to be archived
    deadline = time.monotonic() + 60
    while stack.archiver.archived < 300 and time.monotonic() < deadline:
        time.sleep(0.2)
    day = datetime.now(timezone.utc).date()
    for bad_day, reason in (("yesterday", "YYYY-MM-DD"), ("2999-01-01", "future")):
        r = requests.post(f"{url}/v1/reconcile", params={"day": bad_day})
        assert r.status_code == 400 and reason in r.json()["error"]
    started = requests.post(f"{url}/v1/reconcile", params={"day": day.isoformat()})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]

    deadline = time.monotonic() + 600
    while not any(r.run_id == run_id for r in stack.glue_workflow.results) and time.monotonic() < deadline:
        time.sleep(1)
    [result] = [r for r in stack.glue_workflow.results if r.run_id == run_id]
    assert result.status == "SUCCEEDED", (stack.options.state_dir / f"glue-{run_id}.log").read_text()[-3000:]
    props = boto3.client("glue").get_workflow_run_properties(
        Name=stack.names.billing_workflow, RunId=run_id)["RunProperties"]
    assert props["day"] == day.isoformat() and props["local_status"] == "SUCCEEDED"

    day_start = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)
    in_day = [c for c in load.truth if day_start <= c["event_time"] < day_start + DAY_MS]
    billable = sum(v["billable_clicks"] for (ad, res, b), v in realtime_truth(in_day, set()).items()
                   if res == "1d")
    rec = requests.get(f"{url}/v1/quality").json()["reconciliation"]
    assert rec["day"] == day.isoformat()
    assert (rec["batch_billable"], rec["realtime_billable"], rec["total_diff"]) == (billable, 0, -billable)
    assert rec["flag"] is (billable > 0) and rec["finished_at_ms"] is not None
    body = requests.get(f"{url}/v1/quality").json()
    assert body["status"] == ("drift" if billable else "ok") and len(body["alerts"]) == (1 if billable else 0)
