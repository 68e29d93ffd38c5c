"""POST /v1/reconcile and GET /v1/quality over HTTP against the local stack: the ingest counts
come back from (moto's) CloudWatch via the handlers' EMF lines, and a recompute started through
the API runs the Glue job code on local Spark and publishes its drift where /v1/quality reads it.

No Flink job and no sink here, so the realtime view is empty on purpose: the reconciliation must
then report every billable click of the day as drift (realtime 0 - batch N), which is exactly
known from the load generator's ground truth. The load's event times lie within one UTC day (the
reconciled one), whenever the test runs: near midnight it is pinned to the day before.
"""
from __future__ import annotations

import time
from datetime import date, datetime, timezone

import boto3
import pytest
import requests

from local.glue_workflow import GLUE_PYTHON
from local.oracle import realtime_truth
from local.stack import LocalStack, StackOptions
from tools.loadgen import LoadSpec, generate
from tools.sender import send_load

DAY_MS = 86_400_000

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not GLUE_PYTHON.exists(), reason=".venv-glue not installed (make setup)")]
# the plain mix (user repeats, no other IVT case): the billable count compared with the billing
# job's is then the same under the repeat rule alone and under the IVT verdicts
SPEC = LoadSpec.plain(clicks=300, ads=12, seed=11)


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def pinned_load_end(now_ms: int, span_s: int) -> tuple[int, date]:
    """(end of the load's event times, their UTC day): now when [now - span, now] lies in today,
    else the last millisecond of yesterday (the ingest accepts events up to 7 days old; the
    billing job reads D+1's first arrival hours, where these clicks then arrive)."""
    today = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).date()
    if now_ms - span_s * 1000 >= day_start_ms(today):
        return now_ms, today
    end = day_start_ms(today) - 1
    return end, datetime.fromtimestamp(end / 1000, tz=timezone.utc).date()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    options = StackOptions(flink=False, sink=False, state_dir=tmp_path_factory.mktemp("state"))
    with LocalStack(options) as s:
        yield s


def test_quality_counts_and_reconcile_through_the_api(stack):
    url = stack.api.url
    end_ms, day = pinned_load_end(int(time.time() * 1000), SPEC.span_s)
    load = generate(SPEC, end_ms=end_ms)
    in_day = [c for c in load.truth if day_start_ms(day) <= c["event_time"] < day_start_ms(day) + DAY_MS]
    assert len(in_day) == len(load.truth) == 300, "the load's events must all lie in the reconciled day"
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
    assert stack.archiver.archived >= 300, f"only {stack.archiver.archived} of 300 clicks archived in 60 s"
    for bad_day, reason in (("yesterday", "YYYY-MM-DD"), ("2999-01-01", "future")):
        r = requests.post(f"{url}/v1/reconcile", params={"day": bad_day})
        assert r.status_code == 400 and reason in r.json()["error"]
    started = requests.post(f"{url}/v1/reconcile", params={"day": day.isoformat()})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]

    deadline = time.monotonic() + 600
    while not any(r.run_id == run_id for r in stack.glue_workflow.results) and time.monotonic() < deadline:
        time.sleep(1)
    done = [r for r in stack.glue_workflow.results if r.run_id == run_id]
    assert done, f"workflow run {run_id} did not finish within 600 s"
    [result] = done
    assert result.status == "SUCCEEDED", (stack.options.state_dir / f"glue-{run_id}.log").read_text()[-3000:]
    props = boto3.client("glue").get_workflow_run_properties(
        Name=stack.names.billing_workflow, RunId=run_id)["RunProperties"]
    assert props["day"] == day.isoformat() and props["local_status"] == "SUCCEEDED"

    billable = sum(v["billable_clicks"] for (ad, res, b), v in realtime_truth(in_day, set()).items()
                   if res == "1d")
    assert 0 < billable <= 300  # the 300 distinct clicks less those the repeat rule flags
    rec = requests.get(f"{url}/v1/quality").json()["reconciliation"]
    assert rec["day"] == day.isoformat()
    assert (rec["batch_billable"], rec["realtime_billable"], rec["total_diff"]) == (billable, 0, -billable)
    assert rec["flag"] is True and rec["finished_at_ms"] is not None
    body = requests.get(f"{url}/v1/quality").json()
    # no stream ran: the realtime view has neither the clicks nor their spend (budget lane)
    assert body["status"] == "drift" and [a.split(":")[1].split(" drift")[0].strip() for a in body["alerts"]] == [
        "total", "spend"], body["alerts"]


def test_the_load_window_lies_in_one_day():
    d0 = day_start_ms(date(2026, 3, 10))
    assert pinned_load_end(d0 + 1_800_000, 1800) == (d0 + 1_800_000, date(2026, 3, 10))
    assert pinned_load_end(d0 + 1_799_999, 1800) == (d0 - 1, date(2026, 3, 9))
    assert pinned_load_end(d0, 1800) == (d0 - 1, date(2026, 3, 9))
