"""The query CLI against the local stack over HTTP, and its SigV4 signing."""
from __future__ import annotations

import io
import json

import pytest
from botocore.credentials import Credentials

from local import cli
from tests.query.truth import oracle_top

pytestmark = pytest.mark.slow


def run(stack, *argv):
    out = io.StringIO()
    code = cli.main([*argv, "--api", stack.api.url], out=out)
    return code, out.getvalue()


def test_top_table_and_json_match_truth(local_stack):
    code, text = run(local_stack, "top", "--last", "1h", "-k", "5", "--json")
    assert code == 0
    body = json.loads(text)
    w = body["window"]
    expected, _ = oracle_top(local_stack.truth, w["from_ms"], w["to_ms"], 5, "clicks")
    assert body["exact"] and [(i["ad_id"], i["total"]) for i in body["items"]] == expected
    code, table = run(local_stack, "top", "--from", str(w["from_ms"]), "--to", str(w["to_ms"]), "-k", "5")
    assert code == 0 and "exact" in table.splitlines()[1]
    lines = table.splitlines()
    assert lines[2].split() == ["rank", "ad_id", "campaign", "advertiser", "clicks"]
    for line, (ad, total) in zip(lines[4:], expected):
        assert line.split()[1] == ad and line.split()[-1] == str(total)
    assert lines[-1].startswith("freshness: watermark ")


def test_top_cost_with_campaign_filter(local_stack):
    code, text = run(local_stack, "top", "--last", "3h", "-k", "3", "--metric", "cost", "--campaign", "cmp-1")
    assert code == 0 and "[campaign_id=cmp-1]" in text and "cost" in text


def test_series_table(local_stack):
    ad = "ad'q"
    code, text = run(local_stack, "series", ad, "--resolution", "5m", "--last", "1h")
    assert code == 0
    lines = text.splitlines()
    assert lines[0].startswith("ad ad'q") and lines[1].split()[0] == "bucket_start"
    body = json.loads(run(local_stack, "series", ad, "--resolution", "5m", "--last", "1h", "--json")[1])
    t = local_stack.truth
    w = body["window"]
    clicks = sum(v[0] for (a, m), v in t.minute.items() if a == ad and w["from_ms"] <= m < w["to_ms"])
    assert body["totals"]["clicks"] == clicks
    total_line = [line for line in lines if line.startswith("total")][0]
    assert total_line.split()[1] == str(clicks)


def test_health_and_errors(local_stack, capsys):
    code, text = run(local_stack, "health")
    assert code == 0 and text.startswith("ok: store dynamodb")
    code, _ = run(local_stack, "top", "--last", "25h")
    assert code == 1 and "HTTP 400" in capsys.readouterr().err
    assert cli.main(["health", "--api", "http://127.0.0.1:9"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_sigv4_signed_request_reaches_api(local_stack, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    code, text = run(local_stack, "health", "--sigv4")
    assert code == 0 and "ok" in text


def test_sigv4_headers():
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token")
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/v1/top?k=3&last=1h"
    headers = cli.signed_headers(url, cli.region_for(url), creds)
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in auth and "Signature=" in auth
    assert headers["X-Amz-Security-Token"] == "token" and "X-Amz-Date" in headers
    assert cli.region_for("http://127.0.0.1:8080", "ap-south-1") == "ap-south-1"


def test_api_default_from_env(monkeypatch):
    monkeypatch.setenv("CLICKAGG_API", "http://example.test:1/")
    assert cli.api_url(None) == "http://example.test:1"
    assert cli.api_url("http://x:2") == "http://x:2"
    monkeypatch.delenv("CLICKAGG_API")
    assert cli.api_url(None) == cli.DEFAULT_API


def test_quality_table_and_json(local_stack):
    import random
    import time

    import boto3

    from common.serving_keys import late_key

    rng, now = random.Random(4), int(time.time() * 1000)
    late = {}
    for _ in range(30):  # late-dropped counters, some outside the 3 h window
        minute = now - now % 60_000 - rng.randint(0, 300) * 60_000
        late[(minute, f"ad-{rng.randint(0, 5)}")] = rng.randint(1, 9)
    ddb = boto3.client("dynamodb")
    for (minute, ad), n in late.items():
        ddb.put_item(TableName=local_stack.names.serving_table,
                     Item={**{k: {"S": v} for k, v in late_key(minute, ad).items()}, "ld": {"N": str(n)}})
    code, text = run(local_stack, "quality", "--last", "3h", "--json")
    assert code == 0
    body = json.loads(text)
    late_truth = sum(n for (minute, _), n in late.items()
                     if body["window"]["from_ms"] <= minute < body["window"]["to_ms"])
    assert 0 < late_truth < sum(late.values())
    assert body["late_dropped"] == late_truth and body["reconciliation"] is None
    assert body["lag"]["end_to_end_ms"] is not None
    code, table = run(local_stack, "quality", "--last", "3h")
    lines = table.splitlines()
    assert code == 0 and lines[0].startswith("quality: ok")
    assert lines[3] == f"late-dropped (beyond allowed lateness): {late_truth}"
    assert lines[4] == "last reconciliation: none yet"


def test_reconcile_starts_a_workflow_run_for_the_day(local_stack, capsys):
    import boto3
    from datetime import datetime, timedelta, timezone

    day = (datetime.now(timezone.utc) - timedelta(days=2)).date().isoformat()
    code, text = run(local_stack, "reconcile", "--day", day)
    assert code == 0 and text.startswith(f"started: workflow {local_stack.names.billing_workflow} run ")
    run_id = text.split(" run ")[1].split()[0]
    props = boto3.client("glue").get_workflow_run_properties(
        Name=local_stack.names.billing_workflow, RunId=run_id)["RunProperties"]
    assert props == {"day": day}
    code, _ = run(local_stack, "reconcile", "--day", "03/09/2026")
    assert code == 1 and "YYYY-MM-DD" in capsys.readouterr().err
