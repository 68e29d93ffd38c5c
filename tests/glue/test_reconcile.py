"""Reconciliation: pure drift computation and classes; edges against in-process moto (DynamoDB
items written by the real serving store's item builder, CloudWatch metrics)."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glue_jobs import reconcile as rc

DAY = date(2026, 3, 10)
D0 = int(datetime(2026, 3, 10, tzinfo=timezone.utc).timestamp() * 1000)
H = 3_600_000


def batch_row(ad, hour, billable, late=0, loss=0, gain=0, memory=0, dups=0, suspect=3, invalid=2,
              campaign="k0"):
    return {"advertiser_id": "v0", "campaign_id": campaign, "ad_id": ad, "hour_start_ms": D0 + hour * H,
            "clicks": billable + suspect + invalid, "billable_clicks": billable, "suspect_clicks": suspect,
            "invalid_clicks": invalid, "user_repeat_clicks": suspect, "impression_repeat_clicks": invalid,
            "late_clicks": late, "late_billable_clicks": late, "election_gain_clicks": gain,
            "election_loss_clicks": loss, "impression_memory_clicks": memory, "duplicate_copies": dups}


def rt_row(ad, hour, billable, suspect=None, invalid=None):
    """A serving-store 1h row; suspect/invalid None: a store without those attributes yet."""
    row = {"ad_id": ad, "hour_start_ms": D0 + hour * H, "billable_clicks": billable}
    row.update({k: v for k, v in (("suspect_clicks", suspect), ("invalid_clicks", invalid)) if v is not None})
    return row


def test_zero_drift():
    batch = [batch_row(f"ad-{a}", h, 100 + a + h) for a in range(3) for h in range(24)]
    realtime = [rt_row(r["ad_id"], (r["hour_start_ms"] - D0) // H, r["billable_clicks"], 3, 2) for r in batch]
    rows, summary = rc.reconcile(batch, realtime)
    assert len(rows) == 72 and {r["class"] for r in rows} == {"none"}
    assert summary["total_drift"] == 0 and summary["worst_drift"] == 0 and summary["flag"] is False
    assert summary["batch_billable"] == summary["realtime_billable"] == sum(r["billable_clicks"] for r in batch)
    assert summary["worst_ad_id"] is None
    assert summary["diff_by_verdict"] == {"valid": 0, "suspect": 0, "invalid": 0}
    assert summary["batch_by_verdict"] == summary["realtime_by_verdict"] == {
        "valid": summary["batch_billable"], "suspect": 3 * 72, "invalid": 2 * 72}


def test_injected_late_events_give_exact_drift():
    # 2000 billable clicks; the stream dropped 3 clicks of ad-1 hour 5 that arrived after their
    # minute's end + lateness (the batch counted them and knows they were late).
    batch = [batch_row("ad-0", 5, 1000), batch_row("ad-1", 5, 997, late=3), batch_row("ad-1", 6, 3)]
    realtime = [rt_row("ad-0", 5, 1000), rt_row("ad-1", 5, 994), rt_row("ad-1", 6, 3)]
    rows, summary = rc.reconcile(batch, realtime)
    late_row = next(r for r in rows if r["ad_id"] == "ad-1" and r["hour_start_ms"] == D0 + 5 * H)
    assert late_row["diff"] == -3 and late_row["class"] == "late_beyond_lateness"
    assert late_row["explained_late"] == 3 and late_row["unexplained"] == 0
    assert late_row["drift_ratio"] == 3 / 997
    assert summary["total_diff"] == -3 and summary["total_drift"] == 3 / 2000
    assert summary["worst_drift"] == 3 / 997 and summary["worst_ad_id"] == "ad-1"
    assert summary["worst_hour_start_ms"] == D0 + 5 * H
    assert summary["flag"] is True  # 0.15 % > 0.1 %
    assert summary["explained_clicks"] == {"late": 3, "election": 0, "impression_memory": 0, "duplicates": 0}
    assert summary["classes"] == {"none": 2, "late_beyond_lateness": 1}
    # a store without suspect/invalid attributes (yet) reads as 0 of each: reported, not classified
    assert summary["diff_by_verdict"] == {"valid": -3, "suspect": -9, "invalid": -6}
    assert (late_row["batch_suspect"], late_row["realtime_suspect"], late_row["diff_suspect"]) == (3, 0, -3)
    assert (late_row["batch_invalid"], late_row["realtime_invalid"], late_row["diff_invalid"]) == (2, 0, -2)


def test_threshold_is_strict():
    batch = [batch_row("ad-0", 0, 1000)]
    assert rc.reconcile(batch, [rt_row("ad-0", 0, 999)])[1]["flag"] is False  # exactly 0.1 %
    assert rc.reconcile(batch, [rt_row("ad-0", 0, 998)])[1]["flag"] is True


def test_classes():
    batch = [batch_row("ad-g", 1, 50, gain=4), batch_row("ad-d", 1, 50, dups=3),
             batch_row("ad-gd", 1, 50, gain=1, dups=5), batch_row("ad-u", 1, 50),
             batch_row("ad-lu", 1, 50, late=1), batch_row("ad-mix", 1, 50, late=2, gain=2),
             batch_row("ad-m", 1, 50, memory=2, dups=9), batch_row("ad-gm", 1, 50, gain=1, memory=1),
             batch_row("ad-l", 1, 50, late=2, loss=5), batch_row("ad-ll", 1, 50, late=1, loss=1),
             batch_row("ad-lg", 1, 50, late=1, gain=5)]
    realtime = [rt_row("ad-g", 1, 54), rt_row("ad-d", 1, 52), rt_row("ad-gd", 1, 53), rt_row("ad-u", 1, 51),
                rt_row("ad-lu", 1, 47), rt_row("ad-mix", 1, 50), rt_row("ad-new", 1, 2), rt_row("ad-m", 1, 53),
                rt_row("ad-gm", 1, 52), rt_row("ad-l", 1, 45), rt_row("ad-ll", 1, 48), rt_row("ad-lg", 1, 49)]
    rows = {r["ad_id"]: r for r in rc.reconcile(batch, realtime)[0]}
    parts = lambda ad: tuple(rows[ad][f"explained_{c}"] for c in rc.CAUSES) + (rows[ad]["unexplained"],)  # noqa: E731
    # (late, election, impression_memory, duplicates, unexplained)
    assert rows["ad-g"]["class"] == "arrival_order_election" and parts("ad-g") == (0, 4, 0, 0, 0)
    assert rows["ad-d"]["class"] == "duplicates_missed_by_stream" and parts("ad-d") == (0, 0, 0, 2, 0)
    assert rows["ad-gd"]["class"] == "duplicates_missed_by_stream" and parts("ad-gd") == (0, 1, 0, 2, 0)
    assert rows["ad-u"]["class"] == "unexplained" and parts("ad-u") == (0, 0, 0, 0, 1)
    assert rows["ad-lu"]["class"] == "unexplained" and parts("ad-lu") == (1, 0, 0, 0, -2)
    assert rows["ad-mix"]["class"] == "none" and parts("ad-mix") == (0, 0, 0, 0, 0)  # causes cancel out
    assert rows["ad-new"]["batch_billable"] == 0 and rows["ad-new"]["drift_ratio"] == 2.0
    assert rows["ad-new"]["class"] == "unexplained"
    # memory before duplicates; ties go to the election
    assert rows["ad-m"]["class"] == "impression_memory" and parts("ad-m") == (0, 0, 2, 1, 0)
    assert rows["ad-gm"]["class"] == "arrival_order_election" and parts("ad-gm") == (0, 1, 1, 0, 0)
    # a negative diff: late first, then elections the stream held in arrival order
    assert rows["ad-l"]["class"] == "arrival_order_election" and parts("ad-l") == (2, 3, 0, 0, 0)
    assert rows["ad-ll"]["class"] == "arrival_order_election" and parts("ad-ll") == (1, 1, 0, 0, 0)  # a tie
    # causes of the other sign explain nothing
    assert rows["ad-lg"]["class"] == "late_beyond_lateness" and parts("ad-lg") == (1, 0, 0, 0, 0)


def test_diff_per_verdict():
    """Per (ad, hour) and in total: the diff of each verdict, realtime - batch."""
    batch = [batch_row("ad-0", 1, 50, suspect=4, invalid=1), batch_row("ad-0", 2, 10, suspect=0, invalid=0),
             batch_row("ad-1", 1, 7, suspect=2, invalid=3, campaign="k1"),
             batch_row("ad-1", 1, 3, suspect=1, invalid=0, campaign="k2")]
    realtime = [rt_row("ad-0", 1, 51, 3, 1), rt_row("ad-0", 2, 10, 0, 2), rt_row("ad-1", 1, 10, 1, 5),
                rt_row("ad-2", 5, 0, 1, 1)]
    rows, summary = rc.reconcile(batch, realtime)
    got = {(r["ad_id"], (r["hour_start_ms"] - D0) // H): (r["diff"], r["diff_suspect"], r["diff_invalid"])
           for r in rows}
    assert got == {("ad-0", 1): (1, -1, 0), ("ad-0", 2): (0, 0, 2), ("ad-1", 1): (0, -2, 2), ("ad-2", 5): (0, 1, 1)}
    assert summary["diff_by_verdict"] == {"valid": 1, "suspect": -2, "invalid": 5}
    assert summary["batch_by_verdict"] == {"valid": 70, "suspect": 7, "invalid": 4}
    assert summary["realtime_by_verdict"] == {"valid": 71, "suspect": 5, "invalid": 9}
    assert [r["class"] for r in rows] == ["unexplained", "none", "none", "none"]  # billable only


def test_accepts_dataframes_and_hour_timestamps():
    pd = pytest.importorskip("pandas")
    batch = pd.DataFrame([{**batch_row("ad-0", 3, 10), "hour": datetime(2026, 3, 10, 3)}])
    batch = batch.drop(columns=["hour_start_ms"])
    realtime = pd.DataFrame([{"ad_id": "ad-0", "hour": pd.Timestamp("2026-03-10T03:00:00Z"), "billable_clicks": 10}])
    rows, summary = rc.reconcile(batch, realtime)
    assert len(rows) == 1 and rows[0]["hour_start_ms"] == D0 + 3 * H and summary["total_drift"] == 0
    # several batch rows of one ad-hour (two campaigns) are summed
    rows, _ = rc.reconcile([batch_row("ad-0", 1, 4), batch_row("ad-0", 1, 6, campaign="k1")], [rt_row("ad-0", 1, 10)])
    assert [(r["batch_billable"], r["diff"]) for r in rows] == [(10, 0)]


def events_row(ad, hour, impressions=0, conversions=0, value=0, late_imp=0, dup_imp=0, late_conv=0,
               dup_conv=0, campaign="k0"):
    """A billing events_hourly row (glue_jobs/billing/outputs.EVENTS_HOURLY_COLUMNS, the columns
    the reconciliation reads + a few it does not)."""
    return {"advertiser_id": "v0", "campaign_id": campaign, "ad_id": ad, "hour_start_ms": D0 + hour * H,
            "impressions": impressions, "conversions": conversions + 1, "attributed_conversions": conversions,
            "token_conversions": conversions, "token_conversion_value_micros": value,
            "late_impressions": late_imp, "duplicate_impression_copies": dup_imp,
            "late_token_conversions": late_conv, "duplicate_token_conversion_copies": dup_conv}


def rt_events(ad, hour, impressions=0, conversions=0, value=0, billable=0):
    return {"ad_id": ad, "hour_start_ms": D0 + hour * H, "billable_clicks": billable,
            "impressions": impressions, "conversions": conversions, "conversion_value_micros": value}


def test_events_drift_classes_and_flags():
    """Impressions vs realtime impressions, token conversions vs realtime conversions, each on
    its own: late explains a negative diff, duplicates a positive one, the rest is unexplained;
    each metric has its own flag; the billable clicks' summary is unchanged by them."""
    events = [events_row("ad-1", 1, impressions=1000, late_imp=3, conversions=40, value=900, late_conv=1),
              events_row("ad-2", 1, impressions=500, dup_imp=2, conversions=10, value=100, dup_conv=5),
              events_row("ad-3", 2, impressions=100, late_imp=1, dup_imp=9),
              events_row("ad-4", 2, impressions=10, conversions=2, campaign="k1"),
              events_row("ad-4", 2, impressions=5, campaign="k2")]  # two campaigns: summed
    realtime = [rt_events("ad-1", 1, 997, 39, 850), rt_events("ad-2", 1, 502, 12, 130),
                rt_events("ad-3", 2, 98), rt_events("ad-4", 2, 15, 2), rt_events("ad-5", 3, 4, 1, 7)]
    rows, summary = rc.reconcile([batch_row("ad-1", 1, 50)], realtime + [rt_row("ad-1", 1, 50, 3, 2)], events_rows=events)
    by = {(r["ad_id"], (r["hour_start_ms"] - D0) // H): r for r in rows}
    part = lambda key, m: (by[key][f"{m}_diff"], by[key][f"{m}_explained_late"],  # noqa: E731
                           by[key][f"{m}_explained_duplicates"], by[key][f"{m}_unexplained"], by[key][f"{m}_class"])
    assert part(("ad-1", 1), "impressions") == (-3, 3, 0, 0, "late_beyond_lateness")
    assert part(("ad-1", 1), "conversions") == (-1, 1, 0, 0, "late_beyond_lateness")
    assert part(("ad-2", 1), "impressions") == (2, 0, 2, 0, "duplicates_missed_by_stream")
    assert part(("ad-2", 1), "conversions") == (2, 0, 2, 0, "duplicates_missed_by_stream")
    assert part(("ad-3", 2), "impressions") == (-2, 1, 0, -1, "unexplained")  # duplicates cannot explain a loss
    assert part(("ad-4", 2), "impressions") == (0, 0, 0, 0, "none")
    assert part(("ad-5", 3), "impressions") == (4, 0, 0, 4, "unexplained")  # stream only
    assert by[("ad-5", 3)]["impressions_drift_ratio"] == 4.0
    assert by[("ad-1", 1)]["impressions_drift_ratio"] == 3 / 1000
    imps, convs = summary["impressions"], summary["conversions"]
    assert (imps["batch"], imps["realtime"], imps["total_diff"]) == (1615, 1616, 1)
    assert imps["total_drift"] == 1 / 1615 and imps["flag"] is False  # 0.06 %
    assert (convs["batch"], convs["realtime"], convs["total_diff"]) == (52, 54, 2) and convs["flag"] is True
    assert imps["explained"] == {"late": 4, "duplicates": 2} and imps["unexplained"] == 5
    assert imps["classes"] == {"late_beyond_lateness": 1, "duplicates_missed_by_stream": 1, "unexplained": 2,
                               "none": 1}
    assert (imps["worst_ad_id"], imps["worst_hour_start_ms"], imps["worst_drift"]) == ("ad-5", D0 + 3 * H, 4.0)
    assert convs["value_micros"] == {"batch": 1000, "realtime": 987, "diff": -13}
    assert by[("ad-1", 1)]["diff_conversion_value_micros"] == -50
    # the clicks' summary: its own rows' numbers, the events-only keys as rows with no drift
    assert (summary["batch_billable"], summary["realtime_billable"], summary["flag"]) == (50, 50, False)
    assert summary["classes"] == {"none": 5}


def test_events_threshold_is_strict_and_absent_events_are_zero():
    batch = [events_row("ad-0", 0, impressions=1000, conversions=1000)]
    s = rc.reconcile([], [rt_events("ad-0", 0, 999, 999)], events_rows=batch)[1]
    assert s["impressions"]["flag"] is False and s["conversions"]["flag"] is False  # exactly 0.1 %
    s = rc.reconcile([], [rt_events("ad-0", 0, 998, 1000)], events_rows=batch)[1]
    assert s["impressions"]["flag"] is True and s["conversions"]["flag"] is False
    # no events rows (a billing run without --events_path) and a store without them: nothing to say
    rows, s = rc.reconcile([batch_row("ad-0", 0, 10)], [rt_row("ad-0", 0, 10)])
    assert s["impressions"]["total_drift"] == 0 and s["impressions"]["classes"] == {"none": 1}
    assert rows[0]["conversions_batch"] == rows[0]["conversions_realtime"] == 0


def test_serving_key_format_is_the_stores():
    from serving.keys import series_key, top_key, ts

    assert rc.ts is ts and rc.series_pk("ad-1", "1h") == series_key("ad-1", "1h", D0)["pk"]  # the store's own keys
    assert series_key("ad-1", "1h", D0)["pk"] == "S#ad-1#1h" and top_key("1h", D0 + H, "x")["pk"] == f"T#1h#{ts(D0)}"


# ---------------------------------------------------------------------------- edges (moto)

TABLE = "clickagg-serving"


def _serving_table(name: str = TABLE):
    import boto3

    ddb = boto3.client("dynamodb")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}])
    return ddb


def _put(ddb, kind, ad, bucket_start, billable, resolution="1h", upsert=True, version=1, **events):
    """`events`: impressions, conversions, conversion_value_micros of the row (absent: an item
    written before the stream counted them)."""
    from aggregate.changes import Change
    from serving.write.dynamodb import item_for

    row = {"kind": kind, "ad_id": ad, "resolution": resolution, "bucket_start": bucket_start, "version": version,
           "clicks": billable + 1, "billable_clicks": billable, "cost_micros": 7, "billable_cost_micros": 5,
           "campaign_id": "k0", "advertiser_id": "v0", **events}
    ddb.put_item(TableName=TABLE, Item=item_for(Change(kind, upsert, row), 86400))


def test_realtime_rows_from_dynamodb(aws):
    ddb = _serving_table()
    for h in range(24):
        _put(ddb, "agg", "ad-1", D0 + h * H, 10 + h)
    _put(ddb, "agg", "ad-1", D0 - H, 99)            # previous day: outside
    _put(ddb, "agg", "ad-1", D0 + 24 * H, 99)       # next day: outside
    _put(ddb, "agg", "ad-1", D0 + 5 * H, 99, resolution="1m")  # other resolution
    _put(ddb, "agg", "ad-2", D0 + 7 * H, 3)
    _put(ddb, "top", "ad-9", D0 + 2 * H, 8)         # on a leaderboard only
    _put(ddb, "top", "ad-gone", D0 + 3 * H, 1, upsert=False)  # left the leaderboard (tombstone)
    _put(ddb, "agg", "ad-9", D0 + 2 * H, 8)
    assert rc.leaderboard_ads(ddb, TABLE, DAY) == {"ad-9"}
    rows = rc.realtime_hour_rows(ddb, TABLE, ["ad-1", "ad-2", "ad-9", "ad-none"], DAY, concurrency=2)
    by = {(r["ad_id"], r["hour_start_ms"]): r for r in rows}
    assert len(rows) == 26
    assert by[("ad-1", D0)]["billable_clicks"] == 10 and by[("ad-1", D0 + 23 * H)]["billable_clicks"] == 33
    # rows written before the IVT verdicts (no suspect/invalid counts) and the events (no
    # impressions / conversions) read them as 0
    assert by[("ad-2", D0 + 7 * H)] == {"ad_id": "ad-2", "hour_start_ms": D0 + 7 * H, "clicks": 4,
                                        "billable_clicks": 3, "cost_micros": 7, "billable_cost_micros": 5,
                                        "suspect_clicks": 0, "invalid_clicks": 0, "impressions": 0,
                                        "conversions": 0, "conversion_value_micros": 0}


def test_run_end_to_end_with_metrics(aws, tmp_path):
    import boto3

    ddb = _serving_table()
    batch = [batch_row("ad-1", h, 100) for h in range(24)] + [batch_row("ad-2", 7, 50, late=2)]
    part = tmp_path / "billing" / "hourly" / f"dt={DAY.isoformat()}"
    part.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(batch), part / "part-0.parquet")
    for h in range(24):
        _put(ddb, "agg", "ad-1", D0 + h * H, 100)
    _put(ddb, "agg", "ad-2", D0 + 7 * H, 48)
    _put(ddb, "top", "ad-3", D0 + 9 * H, 5)  # stream-only ad, found through the leaderboard
    _put(ddb, "agg", "ad-3", D0 + 9 * H, 5)
    cw = boto3.client("cloudwatch")
    summary = rc.run(str(tmp_path / "billing"), str(tmp_path / "report"), DAY, ddb, TABLE, cloudwatch=cw, emit=True)
    assert summary["batch_billable"] == 2450 and summary["realtime_billable"] == 2453
    assert summary["total_diff"] == 3 and summary["total_drift"] == 3 / 2450 and summary["flag"] is True
    assert summary["worst_drift"] == 5.0 and summary["worst_ad_id"] == "ad-3"
    assert summary["classes"] == {"none": 24, "late_beyond_lateness": 1, "unexplained": 1}
    report = pq.ParquetFile(summary["report"]).read().to_pylist()
    assert len(report) == 26 and list(report[0]) == list(rc.REPORT_COLUMNS)
    assert (tmp_path / "report" / f"dt={DAY.isoformat()}" / "_summary.json").exists()
    # rerun replaces the report
    rc.run(str(tmp_path / "billing"), str(tmp_path / "report"), DAY, ddb, TABLE)
    assert pq.ParquetFile(summary["report"]).read().to_pylist() == report
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="ClickAgg")["Metrics"]}
    assert names == {"TotalDrift", "WorstDrift", "ImpressionsTotalDrift", "ConversionsTotalDrift", "SpendTotalDrift"}
    stats = cw.get_metric_statistics(Namespace="ClickAgg", MetricName="TotalDrift",
                                     StartTime=datetime(2000, 1, 1), EndTime=datetime(2100, 1, 1),
                                     Period=60, Statistics=["Maximum"])
    assert stats["Datapoints"][0]["Maximum"] == pytest.approx(3 / 2450)


def test_run_with_events(aws, tmp_path):
    """The billing job's events_hourly rows next to its hourly ones; an ad with impressions but
    no click (in the batch) is queried too; the report has every column; the summary item
    published for GET /v1/quality carries both events summaries."""
    import boto3

    ddb = _serving_table()
    billing = tmp_path / "billing"
    for dataset, rows in (("hourly", [batch_row("ad-1", 3, 10)]),
                          ("events_hourly", [events_row("ad-1", 3, 400, 4, 40, late_imp=2),
                                             events_row("ad-7", 5, 100, 1, 9)])):
        part = billing / dataset / f"dt={DAY.isoformat()}"
        part.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), part / "part-0.parquet")
    _put(ddb, "agg", "ad-1", D0 + 3 * H, 10, impressions=398, conversions=4, conversion_value_micros=40)
    _put(ddb, "agg", "ad-7", D0 + 5 * H, 0, impressions=101, conversions=1, conversion_value_micros=9)
    summary = rc.run(str(billing), str(tmp_path / "report"), DAY, ddb, TABLE, cloudwatch=boto3.client("cloudwatch"),
                     emit=True, publish=True)
    assert summary["impressions"]["total_diff"] == -1 and summary["impressions"]["explained"]["late"] == 2
    assert summary["impressions"]["classes"] == {"late_beyond_lateness": 1, "unexplained": 1}
    assert summary["conversions"]["total_diff"] == 0 and summary["conversions"]["flag"] is False
    assert {m["MetricName"]: m["Value"] for m in summary["metrics"]}["ImpressionsTotalDrift"] == 1 / 500
    report = pq.ParquetFile(summary["report"]).read()
    assert report.schema.names == list(rc.REPORT_COLUMNS)
    assert str(report.schema.field("impressions_class").type) == "string"
    assert str(report.schema.field("conversions_drift_ratio").type) == "double"
    assert [(r["ad_id"], r["impressions_diff"]) for r in report.to_pylist()] == [("ad-1", -2), ("ad-7", 1)]
    import json

    item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": rc.RECONCILIATION_PK}, "sk": {"S": DAY.isoformat()}})
    published = json.loads(item["Item"]["s"]["S"])
    assert published["impressions"]["total_diff"] == -1 and published["conversions"]["batch"] == 5


# ---------------------------------------------------------------------------- spend (budget lane)

def spend_row(campaign, valid, billed=None, budget=None, over_clicks=0, advertiser="v0"):
    """A billing campaign_spend row (glue_jobs/billing/outputs.CAMPAIGN_SPEND_COLUMNS)."""
    billed = valid if billed is None else billed
    return {"campaign_id": campaign, "advertiser_id": advertiser, "day": DAY.isoformat(), "budget_micros": budget,
            "budget_revision": None if budget is None else 1, "valid_clicks": 9, "valid_cost_micros": valid,
            "billed_clicks": 9 - over_clicks, "billed_cost_micros": billed, "over_budget_clicks": over_clicks,
            "over_budget_cost_micros": valid - billed}


def test_spend_section_equal_and_drifting_campaigns():
    """Realtime spend vs the batch's valid (uncapped) cost per campaign-day: a campaign capped by
    its budget but equal uncapped has no drift; the drifting one is flagged and listed."""
    batch = [spend_row("cmp-eq", 5_000_000, billed=3_000_000, budget=3_000_000, over_clicks=4),
             spend_row("cmp-dr", 2_000_000),
             spend_row("cmp-two", 600_000, advertiser="v0"), spend_row("cmp-two", 400_000, advertiser="v1")]
    realtime = [{"campaign_id": "cmp-eq", "cost_micros": 5_000_000}, {"campaign_id": "cmp-dr", "cost_micros": 2_010_000},
                {"campaign_id": "cmp-two", "cost_micros": 1_000_000}, {"campaign_id": "cmp-rt", "cost_micros": 7}]
    rows, spend = rc.reconcile_spend(batch, realtime)
    by = {r["campaign_id"]: r for r in rows}
    assert [r["campaign_id"] for r in rows] == ["cmp-dr", "cmp-eq", "cmp-rt", "cmp-two"]
    assert (by["cmp-eq"]["diff"], by["cmp-eq"]["drift_ratio"], by["cmp-eq"]["flag"]) == (0, 0.0, False)
    assert (by["cmp-two"]["batch"], by["cmp-two"]["diff"], by["cmp-two"]["flag"]) == (1_000_000, 0, False)  # summed
    assert (by["cmp-dr"]["diff"], by["cmp-dr"]["drift_ratio"], by["cmp-dr"]["flag"]) == (10_000, 0.005, True)
    assert (by["cmp-rt"]["batch"], by["cmp-rt"]["drift_ratio"], by["cmp-rt"]["flag"]) == (0, 7.0, True)  # stream only
    assert spend == {
        "batch": 8_000_000, "realtime": 8_010_007, "total_diff": 10_007, "total_drift": 10_007 / 8_000_000,
        "worst_drift": 7.0, "worst_campaign_id": "cmp-rt", "threshold": 0.001, "flag": True, "campaigns": 4,
        "drifting_campaigns": 2,
        "drifting": [{"campaign_id": "cmp-rt", "batch": 0, "realtime": 7, "diff": 7, "drift_ratio": 7.0},
                     {"campaign_id": "cmp-dr", "batch": 2_000_000, "realtime": 2_010_000, "diff": 10_000,
                      "drift_ratio": 0.005}],
        "budgeted_campaigns": 1, "billed_cost_micros": 6_000_000, "over_budget_cost_micros": 2_000_000,
        "over_budget_clicks": 4, "over_budget_campaigns": 1}
    # the flag is the total's (as the clicks'): 0.1 % exactly is not above it
    _, equal = rc.reconcile_spend([spend_row("a", 1_000_000)], [{"campaign_id": "a", "cost_micros": 1_001_000}])
    assert (equal["total_drift"], equal["flag"], equal["drifting_campaigns"]) == (0.001, False, 0)
    _, above = rc.reconcile_spend([spend_row("a", 1_000_000)], [{"campaign_id": "a", "cost_micros": 1_001_001}])
    assert above["flag"] is True and above["drifting"][0]["campaign_id"] == "a"
    # nothing on either side (a billing day before the budget lane, an idle day)
    _, empty = rc.reconcile_spend(None, None)
    assert (empty["batch"], empty["total_drift"], empty["flag"], empty["worst_campaign_id"]) == (0, 0.0, False, None)


def test_spend_lists_at_most_the_worst_drifting_campaigns():
    batch = [spend_row(f"c{i:03d}", 1_000) for i in range(30)]
    realtime = [{"campaign_id": f"c{i:03d}", "cost_micros": 1_000 + i} for i in range(30)]
    _, spend = rc.reconcile_spend(batch, realtime)
    assert spend["drifting_campaigns"] == 28  # c000 equal, c001 at 0.1 % exactly
    assert [d["campaign_id"] for d in spend["drifting"]] == [f"c{i:03d}" for i in range(29, 9, -1)]


def test_clicks_reconciliation_counts_over_budget_clicks_as_valid():
    """The batch bills 7 of 10 valid clicks (3 over budget); the stream, not capped, counts 10:
    no drift. The summary carries the spend section (empty here)."""
    rows, summary = rc.reconcile([{**batch_row("ad-0", 2, 7), "over_budget_clicks": 3}], [rt_row("ad-0", 2, 10, 3, 2)])
    assert (rows[0]["batch_billable"], rows[0]["diff"], rows[0]["class"]) == (10, 0, "none")
    assert summary["flag"] is False and summary["spend"]["campaigns"] == 0


def _put_spend(ddb, campaign, bucket_start, cost, resolution="1d"):
    """A realtime spend item, written by the sink's own item builder (a `spend` changelog row)."""
    from aggregate.changes import Change
    from serving.write.dynamodb import item_for

    row = {"kind": "spend", "entity_id": campaign, "campaign_id": campaign, "resolution": resolution,
           "bucket_start": bucket_start, "version": 1, "billable_clicks": 3, "billable_cost_micros": cost}
    item = item_for(Change("spend", True, row), 86400)
    assert item["pk"]["S"] == f"SB#{campaign}#{resolution}" and item["bk"]["N"] == str(cost)
    ddb.put_item(TableName=TABLE, Item=item)


def test_spend_keys_are_the_stores():
    from serving import keys

    assert rc.spend_pk("cmp-1") == "SB#cmp-1#1d"
    if "spend" in keys.SERIES_PREFIX:  # the stream side's key helper, once it exists
        assert rc.spend_pk("cmp-1") == keys.series_pk("cmp-1", "1d", "spend")


def test_run_reconciles_spend(aws, tmp_path):
    """campaign_spend rows vs the serving table's SB#<campaign>#1d items: one equal campaign (over
    its budget: the uncapped cost is compared), one drifting, one the stream alone saw (found on a
    leaderboard entry's campaign); other days, the 1m items and other campaigns are not read.
    SpendTotalDrift is put; the published summary, read by GET /v1/quality, has the section."""
    import json

    import boto3

    ddb = _serving_table()
    billing = tmp_path / "billing"
    for dataset, rows in (("hourly", [batch_row("ad-1", 3, 10)]),
                          ("campaign_spend", [spend_row("cmp-eq", 5_000_000, billed=3_000_000, budget=3_000_000,
                                                        over_clicks=2),
                                              spend_row("cmp-dr", 1_000_000)])):
        part = billing / dataset / f"dt={DAY.isoformat()}"
        part.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), part / "part-0.parquet")
    _put(ddb, "agg", "ad-1", D0 + 3 * H, 10)
    _put(ddb, "top", "ad-1", D0 + 3 * H, 10)  # a leaderboard entry of campaign k0 (the stream's only)
    _put_spend(ddb, "cmp-eq", D0, 5_000_000)
    _put_spend(ddb, "cmp-dr", D0, 990_000)
    _put_spend(ddb, "k0", D0, 1_234)
    _put_spend(ddb, "cmp-dr", D0 - 86_400_000, 77)            # the day before
    _put_spend(ddb, "cmp-dr", D0 + 5 * 60_000, 88, "1m")     # a minute item
    _put_spend(ddb, "cmp-other", D0, 99)                     # no click in the batch, no leaderboard entry
    cw = boto3.client("cloudwatch")
    summary = rc.run(str(billing), str(tmp_path / "report"), DAY, ddb, TABLE, cloudwatch=cw, emit=True, publish=True)
    spend = summary["spend"]
    assert (spend["batch"], spend["realtime"], spend["total_diff"]) == (6_000_000, 5_991_234, -8_766)
    assert spend["flag"] is True and spend["total_drift"] == 8_766 / 6_000_000
    assert [(d["campaign_id"], d["diff"]) for d in spend["drifting"]] == [("k0", 1_234), ("cmp-dr", -10_000)]
    assert (spend["campaigns"], spend["budgeted_campaigns"], spend["over_budget_cost_micros"]) == (3, 1, 2_000_000)
    assert summary["flag"] is False  # the clicks agree: the status stays theirs
    metrics = {m["MetricName"]: m["Value"] for m in summary["metrics"]}
    assert metrics["SpendTotalDrift"] == 8_766 / 6_000_000
    item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": rc.RECONCILIATION_PK}, "sk": {"S": DAY.isoformat()}})
    assert json.loads(item["Item"]["s"]["S"])["spend"] == spend
    assert json.loads((tmp_path / "report" / f"dt={DAY.isoformat()}" / "_summary.json").read_text())["spend"] == spend
    # extra campaigns asked for by the caller are read too
    again = rc.run(str(billing), str(tmp_path / "report"), DAY, ddb, TABLE, extra_campaign_ids=["cmp-other"])
    assert again["spend"]["realtime"] == 5_991_234 + 99 and again["spend"]["campaigns"] == 4


def test_missing_batch_day_reads_as_empty(tmp_path):
    assert rc.read_batch_rows(str(tmp_path / "nothing"), DAY) == []


def test_glue_style_arguments_are_accepted(monkeypatch):
    """Glue passes key/value pairs and its own --JOB_ID etc.; the nightly trigger says --day auto,
    which is yesterday by the job's clock (pinned here: 2 s before and at a year's end)."""
    import glue_jobs.reconcile as rec
    from tests.clock import MONTH_END, Clock

    seen = {}
    monkeypatch.setattr(rec, "run", lambda out, report, day, ddb, table, **kw: seen.update(day=day, **kw) or {})
    clock = Clock(MONTH_END)
    argv = ["--day", "auto", "--out_path", "o", "--report_path", "r", "--table", "t",
            "--emit_metrics", "true", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1"]
    rec.main(argv, now=clock.now)
    assert seen["day"] == date(2026, 12, 30) and seen["now"]() == MONTH_END  # the run is stamped by it too
    assert seen["emit"] is True and seen["threshold"] == rec.DRIFT_THRESHOLD
    rec.main(argv, now=clock.advance(2).now)
    assert seen["day"] == date(2026, 12, 31)
    rec.main(argv[:1] + ["2027-01-01"] + argv[2:], now=clock.now)  # an explicit day wins
    assert seen["day"] == date(2027, 1, 1)
    with pytest.raises(SystemExit):
        rec.main(argv[:1] + ["2026-12-32"] + argv[2:], now=clock.now)
