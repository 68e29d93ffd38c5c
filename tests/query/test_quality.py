"""GET /v1/quality and POST /v1/reconcile: the pure parts (parameters, body, metric math, EMF
parsing, workflow-day resolution) and the AWS edges against in-process moto (late drops and the
last reconciliation from DynamoDB, ingest counts from CloudWatch, the workflow run from Glue)."""
from __future__ import annotations

import json
import random
from datetime import date, datetime, timezone

import boto3
import pytest

from common.config import ResourceNames
from glue_jobs import reconcile as job
from glue_jobs.workflow_day import requested_day, workflow_run
from local.emf import metric_data, split_output
from local.resources import create_serving_table
from query.pipeline_metrics import CloudWatchPipelineMetrics, counts_from, period_for
from query.quality import (IngestCounts, PipelineMetrics, duplicate_rate, lag, parse_quality,
                           quality_body, reconciliation_json)
from query.reconcile_request import parse_reconcile
from query.service import QueryService
from query.windows import QueryError
from serving.keys import RECONCILIATION_PK, freshness_key, late_key, reconciliation_key
from serving.read.dynamodb import DynamoDBQueryStore

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
NOW = 1_795_000_000_000 + 17 * HOUR + 30 * MIN + 12_345  # some afternoon, mid-minute
TABLE = ResourceNames().serving_table


# --- parameters -----------------------------------------------------------------------------

def test_quality_window_defaults_to_the_last_hour_ending_after_this_minute():
    w = parse_quality({}, NOW).window
    assert w.end == NOW - NOW % MIN + MIN and w.start == w.end - HOUR


@pytest.mark.parametrize("params,reason", [
    ({"last": "25h"}, "24h"),
    ({"last": "1h", "from": "0"}, "either 'last' or 'from'"),
    ({"k": "3"}, "unknown parameter"),
    ({"from": str(NOW - NOW % MIN + 1_000), "to": str(NOW - NOW % MIN + 31_000)}, "no whole minute"),
])
def test_quality_refuses_bad_windows(params, reason):
    with pytest.raises(QueryError) as e:
        parse_quality(params, NOW)
    assert reason in e.value.reason and e.value.status == 400


NOON = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("raw,reason", [
    (None, "'day' is required"), ("", "'day' is required"), ("2026/03/09", "YYYY-MM-DD"),
    ("2026-02-30", "not a calendar date"), ("2026-03-11", "in the future"),
    ("2025-12-09", "older than 90 days"),
])
def test_reconcile_refuses_bad_days(raw, reason):
    params = {} if raw is None else {"day": raw}
    with pytest.raises(QueryError) as e:
        parse_reconcile(params, NOON)
    assert reason in e.value.reason and e.value.status == 400


def test_reconcile_refuses_unknown_parameters():
    with pytest.raises(QueryError, match="unknown parameter"):
        parse_reconcile({"day": "2026-03-09", "force": "1"}, NOON)


@pytest.mark.parametrize("now,day,partial", [
    (NOON, "2026-03-10", True),  # today
    (NOON, "2026-03-09", False),  # yesterday, past its 02:00 cutoff
    (datetime(2026, 3, 10, 1, 59, tzinfo=timezone.utc), "2026-03-09", True),  # before the cutoff
    (datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc), "2026-03-09", False),  # at the cutoff
    (NOON, "2025-12-10", False),  # exactly 90 days old: still accepted
])
def test_reconcile_day_and_partial_flag(now, day, partial):
    req = parse_reconcile({"day": day}, now)
    assert req.day == date.fromisoformat(day) and req.partial is partial


# --- body -----------------------------------------------------------------------------------

def test_duplicate_rate_is_duplicates_over_wellformed_clicks():
    assert duplicate_rate(IngestCounts(accepted=97, duplicates=3, rejected=50)) == 0.03
    assert duplicate_rate(IngestCounts(0, 0, 7)) is None
    assert duplicate_rate(None) is None


def test_lag_is_now_minus_the_store_times():
    fresh = {"newest_event_time_ms": NOW - 4_000, "watermark_ms": NOW - 9_000}
    assert lag(fresh, NOW, 1500) == {"end_to_end_ms": 4_000, "watermark_ms": 9_000,
                                     "clicks_stream_iterator_age_ms": 1500}
    assert lag({"newest_event_time_ms": None, "watermark_ms": None}, NOW, None) == {
        "end_to_end_ms": None, "watermark_ms": None, "clicks_stream_iterator_age_ms": None}


def test_body_flags_drift_above_the_threshold_only():
    req = parse_quality({"last": "5m"}, NOW)
    metrics = PipelineMetrics(IngestCounts(10, 1, 0), None, "test")
    summary = {"day": "2026-03-09", "total_drift": 0.0012, "threshold": 0.001, "flag": True}
    body = quality_body(req, NOW, {}, metrics, 3, reconciliation_json(summary, NOW))
    assert body["status"] == "drift" and len(body["alerts"]) == 1 and "0.1200%" in body["alerts"][0]
    assert body["ingest"] == {"accepted": 10, "duplicates": 1, "rejected": 0,
                              "duplicate_rate": 1 / 11, "source": "test"}
    assert body["late_dropped"] == 3 and body["reconciliation"]["finished_at_ms"] == NOW
    ok = quality_body(req, NOW, {}, metrics, 0, reconciliation_json({**summary, "flag": False}, NOW))
    assert ok["status"] == "ok" and ok["alerts"] == []
    assert quality_body(req, NOW, {}, PipelineMetrics(None, None, "x"), 0, None)["ingest"]["accepted"] is None


def test_the_events_reconciliation_is_reported_and_alerts_without_changing_the_status():
    req = parse_quality({"last": "5m"}, NOW)
    metrics = PipelineMetrics(IngestCounts(10, 1, 0), None, "test")
    impressions = {"batch": 1000, "realtime": 990, "total_diff": -10, "total_drift": 0.01,
                   "worst_drift": 0.5, "worst_ad_id": "ad-1", "threshold": 0.001, "flag": True,
                   "classes": {"late_beyond_lateness": 1}, "explained": {"late_beyond_lateness": 10},
                   "unexplained": 0, "worst_hour_start_ms": 5}
    summary = {"day": "2026-03-09", "total_drift": 0.0, "threshold": 0.001, "flag": False,
               "impressions": impressions, "conversions": {**impressions, "flag": False}}
    rec = reconciliation_json(summary, NOW)
    assert rec["impressions"] == {k: v for k, v in impressions.items() if k != "worst_hour_start_ms"}
    assert rec["conversions"]["flag"] is False
    body = quality_body(req, NOW, {}, metrics, 0, rec)
    assert body["status"] == "ok"  # the money's drift decides the status
    assert body["alerts"] == ["reconciliation of 2026-03-09: impressions drift 1.0000% is above 0.10%"]
    old = reconciliation_json({"day": "2026-03-08", "total_drift": 0.0, "flag": False}, NOW)
    assert (old["impressions"], old["conversions"]) == (None, None)  # a summary of before issue 19


# --- CloudWatch -----------------------------------------------------------------------------

def test_counts_keep_the_datapoints_of_the_window_only():
    t = [datetime.fromtimestamp((NOW - NOW % MIN - i * MIN) / 1000, tz=timezone.utc) for i in range(4)]
    results = [{"Id": "accepted", "Timestamps": t, "Values": [5.0, 6.0, 7.0, 8.0]},
               {"Id": "duplicates", "Timestamps": t[:1], "Values": [2.0]},
               {"Id": "iterator_age", "Timestamps": t, "Values": [100.0, 900.0, 50.0, 10_000.0]}]
    start = NOW - NOW % MIN - 2 * MIN  # the datapoints t[0], t[1], t[2]
    counts, age = counts_from(results, start, NOW)
    assert counts == IngestCounts(accepted=18, duplicates=2, rejected=0)
    assert age == 900  # t[3] is before the window


def test_one_period_covers_the_window():
    assert period_for(NOW - NOW % MIN - HOUR, NOW - NOW % MIN) == 3600
    assert period_for(0, DAY) == 86_400 and period_for(0, MIN) == 60


def test_ingest_counts_from_moto_cloudwatch_equal_what_was_put(aws):
    cw = boto3.client("cloudwatch")
    now = NOW
    rng = random.Random(5)
    truth = {"ClicksAccepted": 0, "ClicksDuplicate": 0, "ClicksRejected": 0}
    window_start = now - now % MIN - 30 * MIN
    for i in range(40):  # points inside and outside the window, one other service
        ts = now - rng.randint(0, 55) * MIN - rng.randint(0, 59_000)
        name = rng.choice(sorted(truth))
        service = "ingest" if i % 7 else "query"
        value = float(rng.randint(1, 50))
        cw.put_metric_data(Namespace="ClickAgg", MetricData=[{
            "MetricName": name, "Value": value, "Unit": "Count",
            "Timestamp": datetime.fromtimestamp(ts / 1000, tz=timezone.utc),
            "Dimensions": [{"Name": "service", "Value": service}]}])
        if service == "ingest" and window_start <= ts - ts % MIN < now:
            truth[name] += int(value)
    metrics, requests = CloudWatchPipelineMetrics(cw, "ClickAgg", "ingest", None).read(window_start, now, now)
    assert (metrics.ingest.accepted, metrics.ingest.duplicates, metrics.ingest.rejected) == (
        truth["ClicksAccepted"], truth["ClicksDuplicate"], truth["ClicksRejected"])
    assert requests == 1 and metrics.clicks_stream_iterator_age_ms is None


# --- DynamoDB: late drops and the last reconciliation ---------------------------------------

@pytest.fixture
def ddb(aws):
    client = boto3.client("dynamodb")
    create_serving_table(client, TABLE)
    return client


def test_late_dropped_sums_the_window_across_a_day_boundary(ddb):
    day = NOW - NOW % DAY
    rng = random.Random(9)
    items = {}
    for _ in range(120):
        minute = day - 3 * HOUR + rng.randint(0, 6 * 60) * MIN
        ad = f"ad-{rng.randint(1, 8)}"
        items[(minute, ad)] = rng.randint(1, 20)
    for (minute, ad), ld in items.items():
        ddb.put_item(TableName=TABLE, Item={**{k: {"S": v} for k, v in late_key(minute, ad).items()},
                                            "ld": {"N": str(ld)}})
    store = DynamoDBQueryStore(ddb, TABLE, 100)
    for start, end in ((day - 2 * HOUR, day + HOUR), (day, day + MIN), (day - HOUR, day),
                       (day + 2 * HOUR + 7 * MIN, day + 2 * HOUR + 8 * MIN)):
        want = sum(ld for (minute, _), ld in items.items() if start <= minute < end)
        got, requests = store.late_dropped(start, end)
        assert got == want, (start, end)
        assert requests == (2 if start < day < end else 1)


def test_last_reconciliation_is_the_newest_day(ddb):
    store = DynamoDBQueryStore(ddb, TABLE, 100)
    assert store.last_reconciliation() == (None, None, 1)
    base = {"rows": 1, "batch_billable": 100, "realtime_billable": 99, "total_diff": -1,
            "total_drift": 0.01, "worst_drift": 0.01, "threshold": 0.001, "flag": True,
            "classes": {"late_beyond_lateness": 1}, "explained_clicks": {"late": 1},
            "unexplained_clicks": 0, "report": "s3://b/r"}
    for day, fin in (("2026-03-09", NOW), ("2026-03-11", NOW - HOUR), ("2026-03-10", NOW + HOUR)):
        job.publish_summary(ddb, TABLE, {**base, "day": day},
                            finished_at=datetime.fromtimestamp(fin / 1000, tz=timezone.utc))
    summary, finished, requests = store.last_reconciliation()
    assert summary["day"] == "2026-03-11" and finished == NOW - HOUR and requests == 1
    assert summary == {**base, "day": "2026-03-11"}
    # a rerun of a day replaces its item
    job.publish_summary(ddb, TABLE, {**base, "day": "2026-03-11", "total_drift": 0.0, "flag": False})
    assert store.last_reconciliation()[0]["flag"] is False
    assert ddb.scan(TableName=TABLE)["Count"] == 3


def test_summary_item_key_matches_the_query_sides_key_design():
    summary = {"day": "2026-03-09", "total_drift": 0.5, "flag": True, "metrics": [1]}
    item = job.summary_item(summary, datetime(2026, 3, 10, 3, tzinfo=timezone.utc), "wr_1")
    assert {"pk": item["pk"]["S"], "sk": item["sk"]["S"]} == reconciliation_key("2026-03-09")
    assert job.RECONCILIATION_PK == RECONCILIATION_PK
    assert "metrics" not in json.loads(item["s"]["S"]) and item["run"] == {"S": "wr_1"}


def test_quality_service_end_to_end_on_moto(ddb):
    cw = boto3.client("cloudwatch")
    now = NOW
    minute = now - now % MIN - 5 * MIN
    ddb.put_item(TableName=TABLE, Item={**{k: {"S": v} for k, v in late_key(minute, "ad-1").items()},
                                        "ld": {"N": "4"}})
    for slot, (wm, me) in ((3, (now - 20_000, now - 9_000)), (11, (now - 25_000, now - 3_000))):
        ddb.put_item(TableName=TABLE, Item={**{k: {"S": v} for k, v in freshness_key(slot).items()},
                                            "wm": {"N": str(wm)}, "me": {"N": str(me)}})
    for name, value in (("ClicksAccepted", 90.0), ("ClicksDuplicate", 10.0)):
        cw.put_metric_data(Namespace="ClickAgg", MetricData=[{
            "MetricName": name, "Value": value, "Unit": "Count",
            "Timestamp": datetime.fromtimestamp((now - 60_000) / 1000, tz=timezone.utc),
            "Dimensions": [{"Name": "service", "Value": "ingest"}]}])
    svc = QueryService(DynamoDBQueryStore(ddb, TABLE, 100), clock_ms=lambda: now,
                       pipeline_metrics=CloudWatchPipelineMetrics(cw, "ClickAgg", "ingest", "clicks"))
    body = svc.quality({"last": "15m"})
    assert body["late_dropped"] == 4 and body["ingest"]["duplicate_rate"] == 0.1
    assert body["lag"]["end_to_end_ms"] == 3_000 and body["lag"]["watermark_ms"] == 20_000
    assert body["reconciliation"] is None and body["status"] == "ok"
    w = body["window"]
    days = len(range(w["from_ms"] - w["from_ms"] % DAY, w["to_ms"], DAY))  # L# partitions read
    # the ivt section's leaderboard partitions: one T#1m#<hour> per hour its 5 minutes touch, one
    # T#1h#<day> for the whole hour (brute force from the answer's windows)
    five, hour = body["ivt"]["last_5m"], body["ivt"]["last_hour"]
    ivt_reads = len({m - m % HOUR for m in range(five["from_ms"], five["to_ms"], MIN)}) + 1
    assert (five["from_ms"], five["to_ms"]) == (now - now % MIN - 5 * MIN, now - now % MIN)
    assert (hour["from_ms"], hour["to_ms"]) == (now - now % HOUR - HOUR, now - now % HOUR)
    assert body["debug"]["requests"] == 1 + days + 1 + 1 + ivt_reads  # META, L#, R#, GetMetricData, T#
    assert five["clicks"] == 0 and five["rates"]["both"] is None and body["ivt"]["alert"] is False
    # CloudWatch denied: ingest figures null, the rest still answers
    from botocore.exceptions import ClientError

    class Denied:
        source = "cloudwatch:ClickAgg/service=ingest"

        def read(self, *a):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetMetricData")

    body = QueryService(DynamoDBQueryStore(ddb, TABLE, 100), clock_ms=lambda: now,
                        pipeline_metrics=Denied()).quality({})
    assert body["ingest"]["accepted"] is None and "AccessDenied" in body["ingest"]["source"]
    assert body["late_dropped"] == 4


# --- EMF (what the local stack forwards to CloudWatch) --------------------------------------

def test_emf_lines_from_powertools_become_metric_data(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = Metrics(namespace="ClickAgg", service="ingest")
    metrics.add_metric(name="ClicksAccepted", unit=MetricUnit.Count, value=7)
    metrics.add_metric(name="ClicksDuplicate", unit=MetricUnit.Count, value=2)
    metrics.add_metric(name="ClicksDuplicate", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    printed = capsys.readouterr().out + "a log line\n"
    docs, rest = split_output(printed)
    assert rest == "a log line\n" and len(docs) == 1
    [(namespace, entries)] = metric_data(docs[0])
    assert namespace == "ClickAgg"
    by_name = {e["MetricName"]: e for e in entries}
    assert by_name["ClicksAccepted"]["Values"] == [7.0]
    assert sorted(by_name["ClicksDuplicate"]["Values"]) == [1.0, 2.0]
    assert by_name["ClicksDuplicate"]["Dimensions"] == [{"Name": "service", "Value": "ingest"}]


# --- the jobs' day ------------------------------------------------------------------------

def test_workflow_run_args_in_both_forms():
    assert workflow_run(["--day", "auto", "--WORKFLOW_NAME", "wf", "--WORKFLOW_RUN_ID", "wr_1"]) == ("wf", "wr_1")
    assert workflow_run(["--WORKFLOW_NAME=wf", "--WORKFLOW_RUN_ID=wr_2"]) == ("wf", "wr_2")
    assert workflow_run(["--WORKFLOW_NAME", "wf"]) is None
    assert requested_day(["--day", "2026-01-01"]) is None  # no workflow: --day applies


def test_requested_day_reads_the_run_property(aws):
    glue = boto3.client("glue")
    glue.create_workflow(Name="wf", MaxConcurrentRuns=1)
    with_day = glue.start_workflow_run(Name="wf", RunProperties={"day": "2026-03-09"})["RunId"]
    nightly = glue.start_workflow_run(Name="wf")["RunId"]
    assert requested_day(["--WORKFLOW_NAME", "wf", "--WORKFLOW_RUN_ID", with_day], glue) == "2026-03-09"
    assert requested_day(["--WORKFLOW_NAME", "wf", "--WORKFLOW_RUN_ID", nightly], glue) is None


def test_reconcile_handler_starts_a_workflow_run_with_the_day(aws, monkeypatch):
    from local.lambda_runtime import LambdaContext
    from query import reconcile_handler
    from tests.clock import MONTH_END, Clock
    from tests.conftest import api_event

    glue = boto3.client("glue")
    glue.create_workflow(Name="clickagg-billing", MaxConcurrentRuns=1)
    monkeypatch.setenv("BILLING_WORKFLOW", "clickagg-billing")
    clock = Clock(MONTH_END)  # 2026-12-31T23:59:58Z
    monkeypatch.setattr(reconcile_handler, "clock", clock.now)
    reconcile_handler._glue.cache_clear()
    yesterday = "2026-12-30"

    def post(query: str) -> tuple[int, dict]:
        event = api_event(None, path="/v1/reconcile", method="POST", query=query)
        r = reconcile_handler.lambda_handler(event, LambdaContext("reconcile"))
        return r["statusCode"], json.loads(r["body"])

    status, body = post(f"day={yesterday}")
    assert status == 202 and body["day"] == yesterday and body["status"] == "started"
    assert body["partial_day"] is False  # past its end + the 2 h arrival cutoff
    props = glue.get_workflow_run_properties(Name="clickagg-billing", RunId=body["run_id"])
    assert props["RunProperties"] == {"day": yesterday}
    assert post("day=tomorrow")[0] == 400
    # the month's (and year's) end by the handler's clock
    assert post("day=2026-12-31")[1]["partial_day"] is True
    status, body = post("day=2027-01-01")
    assert status == 400 and "in the future" in body["error"]
    clock.advance(2)  # 2027-01-01T00:00:00Z
    assert post("day=2027-01-01")[1]["partial_day"] is True
    assert post("day=2026-12-31")[1]["partial_day"] is True  # until 02:00, its arrival cutoff
    clock.advance(2 * 3600)
    assert post("day=2026-12-31")[1]["partial_day"] is False
    assert post("day=2026-10-03")[0] == 202 and post("day=2026-10-02")[0] == 400  # 90 days back
    monkeypatch.setenv("BILLING_WORKFLOW", "no-such-workflow")
    status, body = post(f"day={yesterday}")
    assert status == 503 and "EntityNotFound" in body["error"]
    reconcile_handler._glue.cache_clear()


def test_reconcile_handler_answers_409_while_a_run_is_in_progress(monkeypatch):
    """moto never refuses a concurrent run; Glue does (MaxConcurrentRuns=1): the AWS error is
    stubbed on the handler's own client to check the mapping to 409 + Retry-After."""
    from botocore.stub import Stubber

    from local.lambda_runtime import LambdaContext
    from query import reconcile_handler
    from tests.conftest import api_event

    monkeypatch.setenv("BILLING_WORKFLOW", "clickagg-billing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(reconcile_handler, "clock", lambda: NOON)
    reconcile_handler._glue.cache_clear()
    client = reconcile_handler._glue()
    yesterday = "2026-03-09"
    with Stubber(client) as stub:
        stub.add_client_error("start_workflow_run", service_error_code="ConcurrentRunsExceededException",
                              service_message="Concurrent runs exceeded", http_status_code=400,
                              expected_params={"Name": "clickagg-billing", "RunProperties": {"day": yesterday}})
        event = api_event(None, path="/v1/reconcile", method="POST", query=f"day={yesterday}")
        r = reconcile_handler.lambda_handler(event, LambdaContext("reconcile"))
    reconcile_handler._glue.cache_clear()
    assert r["statusCode"] == 409 and json.loads(r["body"])["status"] == 409
    headers = {**(r.get("headers") or {}), **{k: v[-1] for k, v in (r.get("multiValueHeaders") or {}).items()}}
    assert headers["Retry-After"] == "60"


def test_freshness_slots_spread_writers_and_read_back_as_the_maxima(ddb):
    """Each aggregates shard advances its own slot (no single hot item); readers see the maxima."""
    from serving.keys import DEFAULT_FRESHNESS_SLOTS, freshness_slot
    from serving.write.dynamodb import DynamoDBServingStore

    shards = [f"shardId-{i:012d}" for i in range(8)]
    assert len({freshness_slot(s) for s in shards}) >= 6  # spread, not one key
    sink = DynamoDBServingStore(ddb, TABLE)
    rng = random.Random(2)
    truth_wm = truth_me = 0
    for _ in range(60):
        shard, wm = rng.choice(shards), rng.randint(1, 10_000)
        sink.advance_freshness(wm, wm + 500, shard)
        truth_wm, truth_me = max(truth_wm, wm), max(truth_me, wm + 500)
    items = ddb.scan(TableName=TABLE)["Items"]
    assert 1 < len(items) <= DEFAULT_FRESHNESS_SLOTS
    fresh, requests = DynamoDBQueryStore(ddb, TABLE, 100).freshness()
    assert (fresh.watermark_ms, fresh.newest_event_ms, requests) == (truth_wm, truth_me, 1)


def test_configured_freshness_slots_from_the_environment(ddb, monkeypatch):
    """FRESHNESS_SLOTS (set by infra on both Lambdas) widens the spread; the query reads every slot
    in one BatchGetItem; a reader configured with the default 16 would miss the slots above 15."""
    from serving.keys import freshness_slot
    from serving.write.dynamodb import DynamoDBServingStore

    monkeypatch.setenv("SERVING_TABLE", TABLE)
    monkeypatch.setenv("FRESHNESS_SLOTS", "40")
    sink = DynamoDBServingStore.from_env()
    sink._ddb = ddb
    shards = [f"shardId-{i:012d}" for i in range(200)]
    slots = {freshness_slot(s, 40) for s in shards}
    assert max(slots) >= 16 and len(slots) > 30
    truth = {}
    for i, shard in enumerate(shards):
        sink.advance_freshness(1_000 + i, 2_000 + i, shard)
        slot = freshness_slot(shard, 40)
        truth[slot] = max(truth.get(slot, 0), 1_000 + i)
    assert len(ddb.scan(TableName=TABLE)["Items"]) == len(slots)
    reader = DynamoDBQueryStore.from_env()
    reader._ddb = ddb
    fresh, requests = reader.freshness()
    assert (fresh.watermark_ms, fresh.newest_event_ms, requests) == (1_199, 2_199, 1)
    narrow, _ = DynamoDBQueryStore(ddb, TABLE, 100).freshness()  # default 16 slots
    assert narrow.watermark_ms == max(v for s, v in truth.items() if s < 16)
    monkeypatch.setenv("FRESHNESS_SLOTS", "101")
    with pytest.raises(ValueError, match="1..100"):
        DynamoDBServingStore.from_env()
