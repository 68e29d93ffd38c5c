"""GET /v1/quality's reconciliation: the spend section (docs/budget.md "Batch truth";
glue_jobs/reconcile.py reconcile_spend) is shown, its flag adds an alert and the status stays the
billable clicks'; summaries of before the budget lane have none. End to end on moto: the nightly
reconciliation's run (batch campaign_spend vs the realtime SB#<campaign>#1d items) publishes it,
the query service answers it."""
from __future__ import annotations

from datetime import date, datetime, timezone

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.config import ResourceNames
from glue_jobs import reconcile as job
from local.resources import create_serving_table
from query.quality import (IngestCounts, PipelineMetrics, SPEND_RECONCILIATION_KEYS, parse_quality,
                           quality_body, reconciliation_json)
from query.service import QueryService
from serving.keys import ts
from serving.read.dynamodb import DynamoDBQueryStore

MIN, HOUR = 60_000, 3_600_000
NOW = 1_795_000_000_000 + 17 * HOUR + 30 * MIN + 12_345
TABLE = ResourceNames().serving_table
SPEND = {"batch": 8_000_000, "realtime": 8_010_000, "total_diff": 10_000, "total_drift": 0.00125,
         "worst_drift": 0.005, "worst_campaign_id": "cmp-dr", "threshold": 0.001, "flag": True,
         "campaigns": 2, "drifting_campaigns": 1,
         "drifting": [{"campaign_id": "cmp-dr", "batch": 2_000_000, "realtime": 2_010_000, "diff": 10_000,
                       "drift_ratio": 0.005}],
         "budgeted_campaigns": 1, "billed_cost_micros": 6_000_000, "over_budget_cost_micros": 2_000_000,
         "over_budget_clicks": 4, "over_budget_campaigns": 1}


def body_of(summary):
    req = parse_quality({"last": "5m"}, NOW)
    return quality_body(req, NOW, {}, PipelineMetrics(IngestCounts(10, 1, 0), None, "test"), 0,
                        reconciliation_json(summary, NOW))


def test_the_spend_section_is_shown_and_its_flag_alerts_without_changing_the_status():
    summary = {"day": "2026-03-09", "total_drift": 0.0, "threshold": 0.001, "flag": False,
               "spend": {**SPEND, "extra": "not shown"}}
    body = body_of(summary)
    assert body["reconciliation"]["spend"] == SPEND and set(SPEND) == set(SPEND_RECONCILIATION_KEYS)
    assert body["status"] == "ok"  # the billable clicks' drift decides the status
    assert body["alerts"] == ["reconciliation of 2026-03-09: spend drift 0.1250% is above 0.10%"]
    # beside a clicks drift: both alerts, status drift
    both = body_of({**summary, "total_drift": 0.002, "flag": True})
    assert both["status"] == "drift" and len(both["alerts"]) == 2 and both["alerts"][1].startswith(
        "reconciliation of 2026-03-09: spend drift")
    quiet = body_of({**summary, "spend": {**SPEND, "flag": False}})
    assert quiet["status"] == "ok" and quiet["alerts"] == [] and quiet["reconciliation"]["spend"]["flag"] is False
    # a summary written before the budget lane
    assert body_of({"day": "2026-03-08", "total_drift": 0.0, "flag": False})["reconciliation"]["spend"] is None


@pytest.fixture
def ddb(aws):
    client = boto3.client("dynamodb")
    create_serving_table(client, TABLE)
    return client


def test_spend_reconciliation_through_get_quality(ddb, tmp_path):
    """The reconciliation run publishes; GET /v1/quality shows the spend section it computed: an
    equal campaign (over its budget, compared uncapped) and a drifting one."""
    day = date(2026, 3, 9)
    d0 = int(datetime(2026, 3, 9, tzinfo=timezone.utc).timestamp() * 1000)
    part = tmp_path / "billing" / "campaign_spend" / f"dt={day.isoformat()}"
    part.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([
        {"campaign_id": "cmp-eq", "advertiser_id": "v0", "day": day.isoformat(), "budget_micros": 3_000_000,
         "budget_revision": 2, "valid_clicks": 9, "valid_cost_micros": 5_000_000, "billed_clicks": 5,
         "billed_cost_micros": 3_000_000, "over_budget_clicks": 4, "over_budget_cost_micros": 2_000_000},
        {"campaign_id": "cmp-dr", "advertiser_id": "v0", "day": day.isoformat(), "budget_micros": None,
         "budget_revision": None, "valid_clicks": 3, "valid_cost_micros": 2_000_000, "billed_clicks": 3,
         "billed_cost_micros": 2_000_000, "over_budget_clicks": 0, "over_budget_cost_micros": 0}]),
        part / "part-0.parquet")
    for campaign, cost in (("cmp-eq", 5_000_000), ("cmp-dr", 2_010_000)):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"SB#{campaign}#1d"}, "sk": {"S": ts(d0)},
                                            "bk": {"N": str(cost)}, "b": {"N": "1"}, "v": {"N": "1"}})
    job.run(str(tmp_path / "billing"), str(tmp_path / "report"), day, ddb, TABLE, publish=True,
            now=lambda: datetime.fromtimestamp(NOW / 1000, tz=timezone.utc))
    body = QueryService(DynamoDBQueryStore(ddb, TABLE, 100), clock_ms=lambda: NOW,
                        pipeline_metrics=None).quality({"last": "15m"})
    spend = body["reconciliation"]["spend"]
    assert {k: spend[k] for k in ("batch", "realtime", "total_diff", "flag", "campaigns", "drifting_campaigns",
                                  "worst_campaign_id", "over_budget_cost_micros", "budgeted_campaigns")} == {
        "batch": 7_000_000, "realtime": 7_010_000, "total_diff": 10_000, "flag": True, "campaigns": 2,
        "drifting_campaigns": 1, "worst_campaign_id": "cmp-dr", "over_budget_cost_micros": 2_000_000,
        "budgeted_campaigns": 1}
    assert spend["total_drift"] == pytest.approx(10_000 / 7_000_000)
    assert body["status"] == "ok" and body["alerts"] == [
        "reconciliation of 2026-03-09: spend drift 0.1429% is above 0.10%"]
