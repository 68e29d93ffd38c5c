"""Corrections as the API shows them (docs/corrections.md): POST /v1/reconcile's apply_corrections
(parsing, the workflow run property), the series' `corrected` flag on exactly the corrected
buckets after a real correction run (glue_jobs/reconcile.run against in-process moto), and
GET /v1/quality's `reconciliation.corrections`."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.config import ResourceNames
from glue_jobs import reconcile as rc
from local.resources import create_serving_table
from query.quality import parse_quality, quality_body, reconciliation_json, PipelineMetrics
from query.reconcile_request import parse_reconcile
from query.service import QueryService
from query.windows import QueryError
from serving.read.dynamodb import DynamoDBQueryStore

TABLE = ResourceNames().serving_table
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
DAY = date(2026, 3, 9)
D0 = int(datetime(2026, 3, 9, tzinfo=timezone.utc).timestamp() * 1000)
H, MIN = 3_600_000, 60_000


@pytest.mark.parametrize("raw,want", [(None, False), ("false", False), ("true", True)])
def test_apply_corrections_parameter(raw, want):
    params = {"day": "2026-03-09", **({} if raw is None else {"apply_corrections": raw})}
    assert parse_reconcile(params, NOON).apply_corrections is want


@pytest.mark.parametrize("raw", ["yes", "1", "TRUE", "", "force"])
def test_apply_corrections_must_be_true_or_false(raw):
    with pytest.raises(QueryError) as e:
        parse_reconcile({"day": "2026-03-09", "apply_corrections": raw}, NOON)
    assert e.value.status == 400 and "'apply_corrections' must be true or false" in e.value.reason


def test_handler_passes_the_property(aws, monkeypatch):
    from local.lambda_runtime import LambdaContext
    from query import reconcile_handler
    from tests.conftest import api_event

    glue = boto3.client("glue")
    glue.create_workflow(Name="clickagg-billing", MaxConcurrentRuns=1)
    monkeypatch.setenv("BILLING_WORKFLOW", "clickagg-billing")
    monkeypatch.setattr(reconcile_handler, "clock", lambda: NOON)
    reconcile_handler._glue.cache_clear()

    def post(query: str) -> tuple[int, dict]:
        r = reconcile_handler.lambda_handler(api_event(None, path="/v1/reconcile", method="POST", query=query),
                                             LambdaContext("reconcile"))
        return r["statusCode"], json.loads(r["body"])

    status, body = post("day=2026-03-09&apply_corrections=true")
    assert status == 202 and body["apply_corrections"] is True
    props = glue.get_workflow_run_properties(Name="clickagg-billing", RunId=body["run_id"])["RunProperties"]
    assert props == {"day": "2026-03-09", "apply_corrections": "true"}
    status, body = post("day=2026-03-09")
    assert status == 202 and body["apply_corrections"] is False
    assert glue.get_workflow_run_properties(Name="clickagg-billing", RunId=body["run_id"])["RunProperties"] == {
        "day": "2026-03-09"}
    status, body = post("day=2026-03-09&apply_corrections=maybe")
    assert status == 400 and "true or false" in body["error"]
    reconcile_handler._glue.cache_clear()


def _put(ddb, ad, resolution, start, billable, kind="agg"):
    from aggregate.changes import Change
    from serving.write.dynamodb import item_for

    row = {"kind": kind, "ad_id": ad, "resolution": resolution, "bucket_start": start, "version": 3,
           "campaign_id": "k1", "advertiser_id": "v1", "clicks": billable, "billable_clicks": billable,
           "suspect_clicks": 0, "invalid_clicks": 0, "cost_micros": 10 * billable,
           "billable_cost_micros": 10 * billable}
    ddb.put_item(TableName=TABLE, Item=item_for(Change(kind, True, row), 86400))


def test_series_flags_exactly_the_corrected_buckets(aws, tmp_path):
    """ad-1: hours 0..5 with 100 billable clicks each in the stream; the batch finds 103 in hour 2
    and 95 in hour 4 (10 micros a click). After a correction run only those two 1h buckets and
    the 1d bucket are flagged; the 1m buckets, other hours, the campaign rollup are not."""
    ddb = boto3.client("dynamodb")
    create_serving_table(ddb, TABLE)
    for h in range(6):
        _put(ddb, "ad-1", "1h", D0 + h * H, 100)
        _put(ddb, "ad-1", "1m", D0 + h * H, 2)
        _put(ddb, "k1", "1h", D0 + h * H, 100, kind="campaign")
    _put(ddb, "ad-1", "1d", D0, 600)
    truth = {2: 103, 4: 95}
    batch = [{"advertiser_id": "v1", "campaign_id": "k1", "ad_id": "ad-1", "hour_start_ms": D0 + h * H,
              "clicks": truth.get(h, 100), "billable_clicks": truth.get(h, 100), "suspect_clicks": 0,
              "invalid_clicks": 0, "cost_micros": 10 * truth.get(h, 100),
              "billable_cost_micros": 10 * truth.get(h, 100)} for h in range(6)]
    part = tmp_path / "billing" / "hourly" / f"dt={DAY.isoformat()}"
    part.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(batch), part / "p.parquet")
    summary = rc.run(str(tmp_path / "billing"), str(tmp_path / "rec" / "drift"), DAY, ddb, TABLE,
                     workflow_run_id="wr_9", apply_corrections=True, publish=True)
    assert summary["corrections"]["applied"] == 2

    now = D0 + 2 * 86_400_000
    svc = QueryService(DynamoDBQueryStore(ddb, TABLE, 100), clock_ms=lambda: now)
    window = {"from": str(D0), "to": str(D0 + 6 * H)}
    body = svc.series("ad-1", {**window, "resolution": "1h"})
    assert [p["corrected"] for p in body["points"]] == [False, False, True, False, True, False]
    assert [p["billable_clicks"] for p in body["points"]] == [100, 100, 103, 100, 95, 100]
    assert body["corrected_buckets"] == 2 and body["totals"]["billable_clicks"] == 598
    h2 = body["points"][2]["correction"]
    assert h2["run_id"] == "wr_9" and h2["realtime"]["billable_clicks"] == 100
    assert h2["realtime"]["billable_cost"] == "0.001000"  # 1000 micros, as the points' money strings
    assert "correction" not in body["points"][0]
    assert body["debug"]["requests"] == 2  # one Query + META: the marker costs no request
    day = svc.series("ad-1", {"from": str(D0), "to": str(D0 + 86_400_000), "resolution": "1d"})
    assert [(p["corrected"], p["billable_clicks"]) for p in day["points"]] == [(True, 598)]
    minutes = svc.series("ad-1", {**window, "resolution": "1m"})
    assert minutes["corrected_buckets"] == 0 and not any(p["corrected"] for p in minutes["points"])
    campaign = svc.series("k1", {**window, "resolution": "1h"}, level="campaign")
    assert campaign["corrected_buckets"] == 0

    # GET /v1/quality: the published summary's corrections, read with the reconciliation
    rec, fin, requests = DynamoDBQueryStore(ddb, TABLE, 100).last_reconciliation()
    assert requests == 1
    c = reconciliation_json(rec, fin)["corrections"]
    assert (c["applied"], c["ad_hours"], c["runs"], c["run_id"]) == (2, 2, ["wr_9"], "wr_9")
    assert c["delta"]["billable_clicks"] == -2 and c["delta"]["billable_cost_micros"] == -20
    quality = svc.quality({"last": "1h"})
    assert quality["reconciliation"]["corrections"]["ad_hours"] == 2


def test_quality_alert_names_the_corrections():
    req = parse_quality({"last": "5m"}, 1_795_000_000_000)
    metrics = PipelineMetrics(None, None, "none")
    base = {"day": "2026-03-09", "total_drift": 0.01, "threshold": 0.001, "flag": True}
    plain = quality_body(req, 1_795_000_000_000, {}, metrics, 0, reconciliation_json(base, None))
    assert plain["alerts"] == ["reconciliation of 2026-03-09: total drift 1.0000% is above 0.10%"]
    assert plain["reconciliation"]["corrections"] is None  # a summary of before corrections
    fixed = quality_body(req, 1_795_000_000_000, {}, metrics, 0, reconciliation_json(
        {**base, "corrections": {"applied": 3, "ad_hours": 3, "runs": ["wr_1"]}}, None))
    assert fixed["alerts"] == ["reconciliation of 2026-03-09: total drift 1.0000% is above 0.10% "
                               "(corrected to the batch truth: 3 ad-hours)"]
    assert fixed["status"] == "drift" and fixed["reconciliation"]["corrections"]["runs"] == ["wr_1"]
