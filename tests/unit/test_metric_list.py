"""One metric list (serving.table.METRIC_ATTRS / METRICS): the changelog's metric columns, in the
Flink job's order, and everything that carries metrics follows it: the DynamoDB item, the
Timestream record, the query API's series bucket and leaderboard entry, the JSON of a point."""
from __future__ import annotations

import dataclasses

from aggregate.changes import AGG, Change
from aggregate.job.sql import OUTPUT_COLUMN_NAMES
from query.ratios import RATIOS
from query.series import Bucket, metrics_json
from query.topk import COUNT_METRICS, Entry
from serving.table import METRIC_ATTRS, METRICS, VERDICT_COUNTS
from serving.write.dynamodb import item_for
from serving.write.timestream import record_for

# the metric fields of a series point (ratios, computed from them at query time, come on top)
METRIC_JSON = ("clicks", "billable_clicks", "cost", "billable_cost", "suspect_clicks",
               "invalid_clicks", "impressions", "conversions", "conversion_value")


def test_metrics_are_the_changelog_columns_between_the_ids_and_late_dropped():
    names = list(OUTPUT_COLUMN_NAMES)
    assert METRICS == tuple(names[names.index("advertiser_id") + 1:names.index("late_dropped")])
    assert METRICS[4:] == ("suspect_clicks", "invalid_clicks", "impressions", "conversions",
                           "conversion_value_micros")
    assert set(VERDICT_COUNTS) <= set(METRICS) and len(set(METRIC_ATTRS.values())) == len(METRICS)


def test_every_carrier_has_exactly_the_metrics():
    assert tuple(f.name for f in dataclasses.fields(Bucket)) == METRICS
    entry = [f.name for f in dataclasses.fields(Entry)]
    assert tuple(entry[1:entry.index("campaign_id")]) == METRICS
    point = metrics_json(Bucket(*range(1, len(METRICS) + 1)))
    assert {k: point[k] for k in METRIC_JSON} == {
        "clicks": 1, "billable_clicks": 2, "cost": "0.000003", "billable_cost": "0.000004",
        "suspect_clicks": 5, "invalid_clicks": 6, "impressions": 7, "conversions": 8,
        "conversion_value": "0.000009"}
    assert tuple(point) == (*METRIC_JSON, *RATIOS)  # the ratios of the point's own counts, last
    # (billable clicks 2 / impressions 7, conversions 8 / billable clicks 2, spend 4 micros / 2
    # billable clicks or 8 conversions (0.5 micro, half up), value 9 / spend 4 micros)
    assert {k: point[k] for k in RATIOS} == {"ctr": 0.285714, "cvr": 4.0, "cpc": "0.000002", "cpa": "0.000001",
                                            "roas": 2.25}


def test_ratios_and_top_k_name_only_stored_metrics():
    """Every ratio's numerator and denominator, and every summed top-K metric, is a stored column."""
    assert {c for r in RATIOS.values() for c in (r.numerator, r.denominator)} <= set(METRICS)
    assert set(COUNT_METRICS.values()) <= set(METRICS)
    assert not set(COUNT_METRICS) & set(RATIOS)


def test_writers_store_every_metric_and_missing_ones_as_absent_or_zero():
    full = {"kind": AGG, "ad_id": "a", "resolution": "1m", "bucket_start": 0, "version": 3,
            **{m: i + 1 for i, m in enumerate(METRICS)}}
    item = item_for(Change(AGG, True, full), 60)
    assert {attr: item[attr] for attr in METRIC_ATTRS.values()} == {
        attr: {"N": str(i + 1)} for i, attr in enumerate(METRIC_ATTRS.values())}
    record = record_for(Change(AGG, True, full))
    assert {m["Name"]: m["Value"] for m in record["MeasureValues"]} == {m: str(i + 1) for i, m in enumerate(METRICS)}
    legacy = {k: v for k, v in full.items() if k not in ("suspect_clicks", "invalid_clicks")}
    assert "sc" not in item_for(Change(AGG, True, legacy), 60)  # the reader takes absent as 0
    measures = {m["Name"]: m["Value"] for m in record_for(Change(AGG, True, legacy))["MeasureValues"]}
    assert (measures["suspect_clicks"], measures["invalid_clicks"]) == ("0", "0")
