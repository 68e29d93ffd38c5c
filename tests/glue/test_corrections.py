"""Corrections (glue_jobs/corrections.py): the pure plan against hand-computed values, and the
edges against in-process moto: a flagged day is corrected so that reconciling it again shows no
drift, the ledger holds one entry per corrected ad-hour with exact deltas, a second request
applies nothing, a re-billing corrects again (append-only ledger), a bucket changed since it was
read is not overwritten. Every expected number below is written out by hand from the scenario
(10 micros a click), not computed by the module under test."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glue_jobs import corrections as cx
from glue_jobs import reconcile as rc


@pytest.fixture(autouse=True)
def one_ad_at_a_time(monkeypatch):
    """In-process moto's transactions race with concurrent writes (cx.APPLY_CONCURRENCY)."""
    monkeypatch.setattr(cx, "APPLY_CONCURRENCY", 1)

DAY = date(2026, 3, 10)
D0 = int(datetime(2026, 3, 10, tzinfo=timezone.utc).timestamp() * 1000)
H = 3_600_000
TABLE = "clickagg-serving"
FIELDS = ("clicks", "billable_clicks", "suspect_clicks", "invalid_clicks", "cost_micros", "billable_cost_micros")


def brow(ad, hour, billable, over=0, suspect=0, invalid=0, late=0, dups=0, campaign="k1"):
    """A billing hourly row (glue_jobs/billing/outputs.HOURLY_COLUMNS' names), 10 micros a click."""
    clicks = billable + over + suspect + invalid
    return {"advertiser_id": "v1", "campaign_id": campaign, "ad_id": ad, "hour_start_ms": D0 + hour * H,
            "clicks": clicks, "billable_clicks": billable, "suspect_clicks": suspect, "invalid_clicks": invalid,
            "cost_micros": 10 * clicks, "billable_cost_micros": 10 * billable,
            "over_budget_clicks": over, "over_budget_cost_micros": 10 * over,
            "late_billable_clicks": late, "duplicate_copies": dups}


def values(c, b, sc, ic, k, bk):
    return dict(zip(FIELDS, (c, b, sc, ic, k, bk)))


# ---------------------------------------------------------------------------- pure

def test_plan_uses_the_reconciliations_definitions():
    """Over-budget clicks are valid for the stream: truth b = billable + over; bk likewise."""
    batch = [brow("ad-2", 5, 50, over=3, suspect=2, dups=2)]
    realtime = [{"ad_id": "ad-2", "hour_start_ms": D0 + 5 * H, **values(57, 55, 2, 0, 570, 550)}]
    rows, _ = rc.reconcile(batch, realtime)
    p = cx.plan(batch, realtime, rows)
    [c] = p.corrections
    assert c.before == values(57, 55, 2, 0, 570, 550)
    assert c.after == values(55, 53, 2, 0, 550, 530)
    assert c.delta == values(-2, -2, 0, 0, -20, -20)
    assert c.reason == "duplicates_missed_by_stream" and (c.campaign_id, c.advertiser_id) == ("k1", "v1")
    # the corrected values reconcile to 0 drift
    fixed = [{"ad_id": "ad-2", "hour_start_ms": D0 + 5 * H, **c.after}]
    again, summary = rc.reconcile(batch, fixed)
    assert summary["total_diff"] == 0 and again[0]["diff_suspect"] == again[0]["diff_invalid"] == 0
    assert cx.plan(batch, fixed, again).corrections == []


def test_plan_reasons_missing_buckets_and_day_sums():
    batch = [brow("ad-1", 3, 100, suspect=4, invalid=1, late=2), brow("ad-1", 4, 50),
             brow("ad-2", 6, 20, suspect=3, invalid=1), brow("ad-3", 7, 5)]
    realtime = [{"ad_id": "ad-1", "hour_start_ms": D0 + 3 * H, **values(103, 98, 4, 1, 1030, 980)},
                {"ad_id": "ad-1", "hour_start_ms": D0 + 4 * H, **values(50, 50, 0, 0, 500, 500)},
                {"ad_id": "ad-2", "hour_start_ms": D0 + 6 * H, **values(24, 20, 2, 2, 240, 200)},
                {"ad_id": "ad-4", "hour_start_ms": D0 + 8 * H, **values(3, 3, 0, 0, 30, 30)}]
    rows, _ = rc.reconcile(batch, realtime)
    p = cx.plan(batch, realtime, rows)
    got = {(c.ad_id, (c.hour_start_ms - D0) // H): (c.reason, c.before, c.after) for c in p.corrections}
    assert got == {
        ("ad-1", 3): ("late_beyond_lateness", values(103, 98, 4, 1, 1030, 980), values(105, 100, 4, 1, 1050, 1000)),
        ("ad-2", 6): ("verdicts_or_cost", values(24, 20, 2, 2, 240, 200), values(24, 20, 3, 1, 240, 200)),
        ("ad-3", 7): ("unexplained", None, values(5, 5, 0, 0, 50, 50)),            # no bucket: created
        ("ad-4", 8): ("unexplained", values(3, 3, 0, 0, 30, 30), values(0, 0, 0, 0, 0, 0)),  # stream only
    }
    assert cx.day_deltas(p.corrections) == {"ad-1": values(2, 2, 0, 0, 20, 20), "ad-2": values(0, 0, 1, -1, 0, 0),
                                            "ad-3": values(5, 5, 0, 0, 50, 50), "ad-4": values(-3, -3, 0, 0, -30, -30)}
    entry = cx.ledger_row(p.corrections[0], "2026-03-10", "wr_1", 77)
    assert (entry["billable_clicks_before"], entry["billable_clicks_after"], entry["billable_clicks_delta"]) == (98, 100, 2)
    assert (entry["reason"], entry["run_id"], entry["applied_at_ms"], entry["created"]) == (
        "late_beyond_lateness", "wr_1", 77, False)


def test_plan_corrects_only_what_the_batch_has_and_never_an_empty_day():
    # a batch without cost columns: the counts are corrected, the costs are not
    batch = [{"ad_id": "a", "hour_start_ms": D0, "clicks": 4, "billable_clicks": 4, "suspect_clicks": 0,
              "invalid_clicks": 0}]
    realtime = [{"ad_id": "a", "hour_start_ms": D0, **values(3, 3, 0, 0, 30, 30)}]
    [c] = cx.plan(batch, realtime).corrections
    assert c.after == {"clicks": 4, "billable_clicks": 4, "suspect_clicks": 0, "invalid_clicks": 0}
    assert cx.ledger_row(c, "d", "r", 0)["cost_micros_delta"] is None
    # no batch row at all (a missing billing partition): nothing, rather than zeroing the day
    assert cx.plan([], realtime).corrections == []
    summary = cx.correct(cx.plan([], realtime), None, TABLE, "2026-03-10", None, requested=True, flagged=True,
                         run_id="r", applied_at_ms=0)
    assert summary["skipped"] == "no batch rows for the day" and summary["applied"] == 0


def test_ledger_path_is_beside_the_drift_report():
    assert cx.ledger_path("s3://b/reconciliation/drift") == "s3://b/reconciliation/adjustments"
    assert cx.ledger_path("/tmp/x/reconciliation/") == "/tmp/x/adjustments"


# ---------------------------------------------------------------------------- edges (moto)

def _table():
    import boto3

    from local.resources import create_serving_table  # the serving table's definition

    ddb = boto3.client("dynamodb")
    create_serving_table(ddb, TABLE)
    return ddb


def _put(ddb, ad, resolution, start, vals, kind="agg", version=7):
    """An item the sink's own builder writes."""
    from aggregate.changes import Change
    from serving.write.dynamodb import item_for

    row = {"kind": kind, "ad_id": ad, "resolution": resolution, "bucket_start": start, "version": version,
           "campaign_id": "k1", "advertiser_id": "v1", **vals}
    ddb.put_item(TableName=TABLE, Item=item_for(Change(kind, True, row), 86400))


def _get(ddb, ad, resolution, start):
    from serving.keys import series_key

    item = ddb.get_item(TableName=TABLE, Key={k: {"S": v} for k, v in series_key(ad, resolution, start).items()},
                        ConsistentRead=True).get("Item")
    return item


def _vals(item):
    from serving.table import metrics_of

    return {m: metrics_of(item)[m] for m in FIELDS}


def _write_batch(tmp_path, rows, sub="billing"):
    part = tmp_path / sub / "hourly" / f"dt={DAY.isoformat()}"
    part.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), part / "part-0.parquet")
    return str(tmp_path / sub)


BATCH = [brow("ad-1", 3, 100, suspect=4, invalid=1, late=2), brow("ad-1", 4, 50),
         brow("ad-2", 5, 50, over=3, suspect=2, dups=2), brow("ad-2", 6, 20, suspect=3, invalid=1),
         brow("ad-3", 7, 5)]


def _scenario(ddb):
    """The stream's view: ad-1 h3 lost 2 late clicks, ad-1 h4 agrees, ad-2 h5 billed 2 duplicates,
    ad-2 h6 split its verdicts differently, ad-3 h7 has no bucket, ad-4 h8 the batch never saw
    (found through its leaderboard entry). 1d buckets are the sums of the hours (ad-3: none)."""
    for ad, hour, v in (("ad-1", 3, values(103, 98, 4, 1, 1030, 980)), ("ad-1", 4, values(50, 50, 0, 0, 500, 500)),
                        ("ad-2", 5, values(57, 55, 2, 0, 570, 550)), ("ad-2", 6, values(24, 20, 2, 2, 240, 200)),
                        ("ad-4", 8, values(3, 3, 0, 0, 30, 30))):
        _put(ddb, ad, "1h", D0 + hour * H, v)
    _put(ddb, "ad-4", "1h", D0 + 8 * H, values(3, 3, 0, 0, 30, 30), kind="top")
    _put(ddb, "ad-1", "1d", D0, values(153, 148, 4, 1, 1530, 1480))
    _put(ddb, "ad-2", "1d", D0, values(81, 75, 4, 2, 810, 750))
    _put(ddb, "ad-4", "1d", D0, values(3, 3, 0, 0, 30, 30))
    _put(ddb, "ad-1", "1m", D0 + 3 * H, values(2, 2, 0, 0, 20, 20))  # a minute inside a corrected hour


def _ledger(ddb):
    from serving.keys import parse_adjustment_sk

    return [(parse_adjustment_sk(i["sk"]["S"]), i) for i in cx.read_ledger(ddb, TABLE, DAY.isoformat())]


def test_flagged_day_is_corrected_once_with_a_ledger(aws, tmp_path):
    ddb = _table()
    _scenario(ddb)
    billing, report = _write_batch(tmp_path, BATCH), str(tmp_path / "reconciliation" / "drift")

    first = rc.run(billing, report, DAY, ddb, TABLE, workflow_run_id="wr_1", apply_corrections=True, publish=True)
    assert first["flag"] is True and first["total_diff"] == -2  # 226 realtime vs 228 batch
    c = first["corrections"]
    assert (c["requested"], c["skipped"], c["pending"], c["applied"], c["conflicts"], c["already_applied"]) == (
        True, None, 5, 5, 0, 0)
    assert (c["run_id"], c["runs"], c["ad_hours"]) == ("wr_1", ["wr_1"], 5)
    assert c["delta"] == values(2, 2, 1, -1, 20, 20)  # +2 -2 +5 -3 clicks over the 5 ad-hours

    # the buckets hold the batch truth, the stream's own values and the marker; v is kept
    expect_1h = {("ad-1", 3): values(105, 100, 4, 1, 1050, 1000), ("ad-1", 4): values(50, 50, 0, 0, 500, 500),
                 ("ad-2", 5): values(55, 53, 2, 0, 550, 530), ("ad-2", 6): values(24, 20, 3, 1, 240, 200),
                 ("ad-3", 7): values(5, 5, 0, 0, 50, 50), ("ad-4", 8): values(0, 0, 0, 0, 0, 0)}
    for (ad, hour), want in expect_1h.items():
        item = _get(ddb, ad, "1h", D0 + hour * H)
        assert _vals(item) == want, (ad, hour)
        assert ("cx" in item) == ((ad, hour) != ("ad-1", 4)), (ad, hour)
    h3 = _get(ddb, "ad-1", "1h", D0 + 3 * H)
    assert (h3["cx"]["S"], h3["rt_b"]["N"], h3["rt_c"]["N"], h3["v"]["N"], h3["cmp"]["S"]) == ("wr_1", "98", "103", "7", "k1")
    created = _get(ddb, "ad-3", "1h", D0 + 7 * H)
    assert (created["v"]["N"], created["rt_b"]["N"], created["cmp"]["S"]) == ("0", "0", "k1")
    expect_1d = {"ad-1": values(155, 150, 4, 1, 1550, 1500), "ad-2": values(79, 73, 5, 1, 790, 730),
                 "ad-3": values(5, 5, 0, 0, 50, 50), "ad-4": values(0, 0, 0, 0, 0, 0)}
    for ad, want in expect_1d.items():
        assert _vals(_get(ddb, ad, "1d", D0)) == want, ad
    assert _get(ddb, "ad-1", "1d", D0)["rt_b"]["N"] == "148"
    assert "cx" not in _get(ddb, "ad-1", "1m", D0 + 3 * H)  # minutes are not corrected

    # the ledger: exactly one entry per corrected ad-hour, exact deltas and reasons
    ledger = _ledger(ddb)
    got = {(ad, (hour - D0) // H): (run, i["why"]["S"], {m: int(v["N"]) for m, v in i["dl"]["M"].items()})
           for (hour, ad, run), i in ledger}
    assert len(ledger) == 5 and got == {
        ("ad-1", 3): ("wr_1", "late_beyond_lateness", values(2, 2, 0, 0, 20, 20)),
        ("ad-2", 5): ("wr_1", "duplicates_missed_by_stream", values(-2, -2, 0, 0, -20, -20)),
        ("ad-2", 6): ("wr_1", "verdicts_or_cost", values(0, 0, 1, -1, 0, 0)),
        ("ad-3", 7): ("wr_1", "unexplained", values(5, 5, 0, 0, 50, 50)),
        ("ad-4", 8): ("wr_1", "unexplained", values(-3, -3, 0, 0, -30, -30))}
    parquet = pq.ParquetFile(c["ledger"]).read().to_pylist()
    assert c["ledger"].endswith(f"reconciliation/adjustments/dt={DAY.isoformat()}/run-wr_1.parquet")
    assert [(r["ad_id"], r["billable_clicks_delta"], r["created"]) for r in parquet] == [
        ("ad-1", 2, False), ("ad-2", -2, False), ("ad-2", 0, False), ("ad-3", 5, True), ("ad-4", -3, False)]

    # requested again (same batch truth): the day reconciles to 0 drift, nothing is applied
    second = rc.run(billing, report, DAY, ddb, TABLE, workflow_run_id="wr_2", apply_corrections=True, publish=True)
    assert (second["total_diff"], second["flag"], second["worst_drift"]) == (0, False, 0.0)
    assert second["diff_by_verdict"] == {"valid": 0, "suspect": 0, "invalid": 0}
    drift = pq.ParquetFile(second["report"]).read().to_pylist()
    assert {(r["ad_id"], r["diff"], r["diff_suspect"], r["diff_invalid"]) for r in drift} == {
        (ad, 0, 0, 0) for ad in ("ad-1", "ad-2", "ad-3", "ad-4")}
    c2 = second["corrections"]
    assert (c2["applied"], c2["already_applied"], c2["pending"], c2["run_id"]) == (0, 5, 0, None)
    assert (c2["skipped"], c2["runs"], c2["ad_hours"], c2["delta"]) == (
        "day within the drift threshold", ["wr_1"], 5, values(2, 2, 1, -1, 20, 20))
    assert len(_ledger(ddb)) == 5 and c2["ledger"] is None
    for (ad, hour), want in expect_1h.items():
        assert _vals(_get(ddb, ad, "1h", D0 + hour * H)) == want
    assert _vals(_get(ddb, "ad-1", "1d", D0)) == expect_1d["ad-1"]
    # what GET /v1/quality reads: the published summary carries the section
    import json

    item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": rc.RECONCILIATION_PK}, "sk": {"S": DAY.isoformat()}})
    assert json.loads(item["Item"]["s"]["S"])["corrections"]["already_applied"] == 5

    # a re-billing (one more late click found for ad-1 h3) corrects again under its own run id;
    # the ledger keeps both entries, the stream's own value stays the first one's
    billing = _write_batch(tmp_path, [brow("ad-1", 3, 101, suspect=4, invalid=1, late=3), *BATCH[1:]], "billing2")
    third = rc.run(billing, report, DAY, ddb, TABLE, workflow_run_id="wr_3", apply_corrections=True)
    c3 = third["corrections"]
    assert (third["flag"], c3["applied"], c3["already_applied"], c3["runs"]) == (True, 1, 4, ["wr_1", "wr_3"])
    assert c3["delta"]["billable_clicks"] == 3
    h3 = _get(ddb, "ad-1", "1h", D0 + 3 * H)
    assert (_vals(h3)["billable_clicks"], h3["rt_b"]["N"], h3["cx"]["S"]) == (101, "98", "wr_3")
    assert _vals(_get(ddb, "ad-1", "1d", D0))["billable_clicks"] == 151
    entries = [(run, int(i["bf"]["M"]["billable_clicks"]["N"]), int(i["af"]["M"]["billable_clicks"]["N"]))
               for (hour, ad, run), i in _ledger(ddb) if (ad, hour) == ("ad-1", D0 + 3 * H)]
    assert entries == [("wr_1", 98, 100), ("wr_3", 100, 101)] and len(_ledger(ddb)) == 6


def test_not_requested_or_within_threshold_changes_nothing(aws, tmp_path):
    ddb = _table()
    _scenario(ddb)
    billing, report = _write_batch(tmp_path, BATCH), str(tmp_path / "reconciliation" / "drift")
    summary = rc.run(billing, report, DAY, ddb, TABLE, workflow_run_id="wr_1")
    c = summary["corrections"]
    assert (c["requested"], c["skipped"], c["pending"], c["applied"], c["ad_hours"]) == (
        False, "not requested", 5, 0, 0)
    assert _ledger(ddb) == [] and "cx" not in _get(ddb, "ad-1", "1h", D0 + 3 * H)
    # within the threshold (a large day, 2 clicks off): requested, not applied
    big = [*BATCH, brow("ad-9", 10, 10_000)]
    _put(ddb, "ad-9", "1h", D0 + 10 * H, values(10_000, 10_000, 0, 0, 100_000, 100_000))
    summary = rc.run(_write_batch(tmp_path, big, "big"), report, DAY, ddb, TABLE, apply_corrections=True)
    assert summary["flag"] is False and summary["corrections"]["skipped"] == "day within the drift threshold"
    assert summary["corrections"]["applied"] == 0 and _ledger(ddb) == []


def test_a_bucket_changed_since_it_was_read_is_not_overwritten(aws, tmp_path):
    """All or nothing per ad: ad-1's hour changed after the plan (a concurrent writer), so none of
    ad-1's buckets or ledger entries are written; ad-2 is corrected."""
    ddb = _table()
    _scenario(ddb)
    rows = rc.realtime_hour_rows(ddb, TABLE, ["ad-1", "ad-2"], DAY)
    batch = [r for r in BATCH if r["ad_id"] in ("ad-1", "ad-2")]
    p = cx.plan(batch, rows, rc.reconcile(batch, rows)[0])
    assert [(c.ad_id, (c.hour_start_ms - D0) // H) for c in p.corrections] == [("ad-1", 3), ("ad-2", 5), ("ad-2", 6)]
    _put(ddb, "ad-1", "1h", D0 + 3 * H, values(104, 99, 4, 1, 1040, 990), version=8)
    # one ad at a time: moto's transactions are not isolated from each other across threads (a
    # cancelled one restores a snapshot of the whole table); DynamoDB's are
    applied, conflicts = cx.apply(ddb, TABLE, DAY.isoformat(), p.corrections, "wr_x", 5, concurrency=1)
    assert [(c.ad_id, (c.hour_start_ms - D0) // H) for c in applied] == [("ad-2", 5), ("ad-2", 6)]
    assert [(c.ad_id, (c.hour_start_ms - D0) // H) for c in conflicts] == [("ad-1", 3)]
    assert _vals(_get(ddb, "ad-1", "1h", D0 + 3 * H))["billable_clicks"] == 99
    assert _vals(_get(ddb, "ad-1", "1d", D0)) == values(153, 148, 4, 1, 1530, 1480)
    assert sorted(ad for (_, ad, _), _ in _ledger(ddb)) == ["ad-2", "ad-2"]
    # applying the same plan again: every condition fails, nothing changes
    applied, conflicts = cx.apply(ddb, TABLE, DAY.isoformat(), p.corrections, "wr_y", 6, concurrency=1)
    assert applied == [] and len(conflicts) == 3 and len(_ledger(ddb)) == 2
    assert _vals(_get(ddb, "ad-2", "1d", D0)) == values(79, 73, 5, 1, 790, 730)


def test_cli_flag_and_workflow_property(aws, monkeypatch):
    import boto3

    import glue_jobs.reconcile as rec

    seen = {}
    monkeypatch.setattr(rec, "run", lambda *a, **kw: seen.update(kw) or {})
    base = ["--day", "2026-03-10", "--out_path", "o", "--report_path", "r", "--table", "t"]
    rec.main(base)
    assert seen["apply_corrections"] is False
    rec.main(base + ["--apply-corrections"])
    assert seen["apply_corrections"] is True
    rec.main(base + ["--apply_corrections", "false"])
    assert seen["apply_corrections"] is False
    glue = boto3.client("glue")
    glue.create_workflow(Name="wf", MaxConcurrentRuns=1)
    for props, want in (({"day": "2026-03-09", "apply_corrections": "true"}, True),
                        ({"day": "2026-03-09", "apply_corrections": "false"}, False), ({}, False)):
        run_id = glue.start_workflow_run(Name="wf", RunProperties=props)["RunId"]
        rec.main(base + ["--WORKFLOW_NAME", "wf", "--WORKFLOW_RUN_ID", run_id])
        assert (seen["apply_corrections"], seen["workflow_run_id"]) == (want, run_id), props


@pytest.mark.parametrize("ad_hours", [24])
def test_one_transaction_per_ad_fits_dynamodbs_limit(ad_hours):
    from serving.table import metrics_of  # noqa: F401  (the module's own imports resolve)

    cs = [cx.Correction("a", D0 + h * H, values(1, 1, 0, 0, 10, 10), values(2, 2, 0, 0, 20, 20), "x",
                        values(1, 1, 0, 0, 10, 10)) for h in range(ad_hours)]
    ops = cx.transaction(TABLE, DAY.isoformat(), D0, "a", cs, None, "wr", 0)
    assert len(ops) == 2 * ad_hours + 1 <= cx.MAX_TRANSACTION_ITEMS
