"""The DynamoDB serving table's items: attribute names, decoding, the reconciliation summary item,
and the paginated Queries its readers make (the query API: serving.read.dynamodb; the nightly
reconciliation: glue_jobs/reconcile.py, which ships this module in its --extra-py-files zip, so
it imports only the standard library and serving.keys).

Attributes (short: every item stores them). Aggregates, leaderboard entries, late drops:
  c clicks   b billable_clicks   k cost_micros   bk billable_cost_micros
  sc suspect_clicks   ic invalid_clicks   i impressions   cv conversions
  cvv conversion_value_micros                                              (METRIC_ATTRS)
  ad / cmp / adv  the ad's ids   me max_event_time   wm watermark   ld late_dropped
  v version (the conditional writes' order)   ttl expiry (1m rows)   del tombstone (BOOL)
Freshness slots: wm, me. Reconciliation summaries: fin finished (ms), td total drift, flag,
s the summary as JSON, run the workflow run. Keys: serving.keys.
Corrected buckets (glue_jobs/corrections.py, docs/corrections.md; `S#<ad>#1h` and `#1d` items only):
  cx  the run id of the latest correction applied   cxa  when (ms)
  rt_<attr>  the stream's own value of each corrected metric before the first correction
             (CORRECTED_METRICS: rt_c, rt_b, rt_sc, rt_ic, rt_k, rt_bk)
Adjustments ledger items (pk ADJ#<day>): ad, cmp, hs hour start (ms), run, at applied (ms), why
the reason (the drift class), new (BOOL: the bucket did not exist), bf / af / dl maps {metric:
before / after / delta}.

Every page of a Query is one request; a RequestCounter shared by one answer's reads counts them
(the query API reports it as `requests`).
"""
from __future__ import annotations

import json
import threading
from typing import Iterator, Optional

from serving.keys import reconciliation_key

# THE metric list of the serving store: the changelog columns every 'agg' / 'top' row carries
# (aggregate/job/sql.py OUTPUT_COLUMNS, in that order) -> their attributes. The sink's writers, the
# query API's readers and answers, and the reconciliation all iterate this mapping (or METRICS).
# IVT verdicts (common/ivt.py): billable_clicks are the valid clicks, so in every row
#   clicks = billable_clicks + suspect_clicks + invalid_clicks
# and billable_cost_micros is the cost of the valid clicks. Items written before the verdicts
# (or impressions and conversions) existed have no sc / ic (i / cv / cvv): read as 0 (num()).
METRIC_ATTRS = {"clicks": "c", "billable_clicks": "b", "cost_micros": "k", "billable_cost_micros": "bk",
                "suspect_clicks": "sc", "invalid_clicks": "ic", "impressions": "i",
                "conversions": "cv", "conversion_value_micros": "cvv"}
METRICS = tuple(METRIC_ATTRS)
# The counts that split a row's clicks by verdict (clicks = billable + suspect + invalid): the
# sink's per-verdict metrics (aggregate.verdicts) and GET /v1/quality's ivt section.
VERDICT_COUNTS = ("clicks", "billable_clicks", "suspect_clicks", "invalid_clicks")
NUMBER_ATTRS = {**METRIC_ATTRS, "max_event_time": "me", "watermark": "wm", "late_dropped": "ld"}
ID_ATTRS = {"ad_id": "ad", "campaign_id": "cmp", "advertiser_id": "adv"}
TOMBSTONE = "del"
ENTRY_ATTRS = (*METRIC_ATTRS.values(), ID_ATTRS["campaign_id"], ID_ATTRS["advertiser_id"])
# what the rank index (serving.keys.RANK_INDEX) projects besides its keys and the table's: an
# entry's attributes and what serving.generations.committed needs
RANK_PROJECTION = (*ENTRY_ATTRS, "v", "g")
# '$' (0x24) sorts after '#' (0x23): every '<bucket>#<ad>' key of a bucket is below ts(bucket) + SK_END
SK_END = "$"


class RequestCounter:
    """AWS requests of one answer, from the threads that read for it."""

    def __init__(self) -> None:
        self._lock, self.n = threading.Lock(), 0

    def add(self) -> None:
        with self._lock:
            self.n += 1


def num(item: dict, attr: str) -> int:
    value = item.get(attr)
    return int(value["N"]) if value and "N" in value else 0


def text(item: dict, attr: str) -> Optional[str]:
    value = item.get(attr)
    return value["S"] if value and "S" in value else None


def metrics_of(item: dict) -> dict[str, int]:
    """{metric: value} of an item for every METRICS column (absent: 0)."""
    return {column: num(item, attr) for column, attr in METRIC_ATTRS.items()}


def is_tombstone(item: dict) -> bool:
    """A leaderboard entry that left the top-M (written at the retraction's version)."""
    return bool(item.get(TOMBSTONE, {}).get("BOOL"))


def query_pages(client, counter: Optional[RequestCounter] = None, **request) -> Iterator[dict]:
    """Every page of one Query, through boto3's paginator: one page is one request (counted)."""
    for page in client.get_paginator("query").paginate(**request):
        if counter is not None:
            counter.add()
        yield page


def query_range(client, table: str, pk: str, sk_low: str, sk_high: str, *,
                attrs: Optional[tuple[str, ...]] = None, skip_tombstones: bool = False,
                consistent_read: bool = False, counter: Optional[RequestCounter] = None) -> list[dict]:
    """The items of partition `pk` with sk in [sk_low, sk_high], all pages. `attrs`: project sk
    and these (None: every attribute). `skip_tombstones`: DynamoDB drops them (they still count
    towards a page's 1 MB, which is measured before the filter)."""
    names = {"#sk": "sk"}
    request = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND #sk BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":lo": {"S": sk_low}, ":hi": {"S": sk_high}},
    }
    if attrs is not None:
        names.update({f"#{a}": a for a in attrs})
        request["ProjectionExpression"] = ", ".join(["#sk", *(f"#{a}" for a in attrs)])
    if skip_tombstones:
        names["#del"] = TOMBSTONE
        request["FilterExpression"] = "attribute_not_exists(#del)"
    if consistent_read:
        request["ConsistentRead"] = True
    request["ExpressionAttributeNames"] = names
    return [item for page in query_pages(client, counter, **request) for item in page.get("Items", [])]


def reconciliation_item(summary: dict, finished_ms: int, workflow_run_id: Optional[str] = None) -> dict:
    """A reconciled day's summary (`summary["day"]`: YYYY-MM-DD) as its item. Numbers a reader
    filters or sorts on are attributes; the whole summary rides along as JSON (`s`)."""
    item = {k: {"S": v} for k, v in reconciliation_key(summary["day"]).items()}
    item.update({
        "fin": {"N": str(int(finished_ms))},
        "td": {"N": repr(float(summary["total_drift"]))},
        "flag": {"BOOL": bool(summary["flag"])},
        "s": {"S": json.dumps(summary, separators=(",", ":"), default=str)},
    })
    if workflow_run_id:
        item["run"] = {"S": workflow_run_id}
    return item


def reconciliation_of(item: dict) -> tuple[dict, Optional[int]]:
    """(the summary, when its run finished in ms) of a reconciliation item."""
    return json.loads(item["s"]["S"]), num(item, "fin") or None


# Corrections (glue_jobs/corrections.py): the metrics the nightly batch knows per ad-hour and a
# correction sets to its truth, and the bucket attributes that mark a corrected bucket.
CORRECTED_METRICS = ("clicks", "billable_clicks", "suspect_clicks", "invalid_clicks",
                     "cost_micros", "billable_cost_micros")
CORRECTION_ATTR, CORRECTED_AT_ATTR = "cx", "cxa"
ORIGINAL_ATTRS = {m: f"rt_{METRIC_ATTRS[m]}" for m in CORRECTED_METRICS}
# what a series read projects: an entry's attributes + the correction marker and originals
SERIES_ATTRS = (*ENTRY_ATTRS, CORRECTION_ATTR, CORRECTED_AT_ATTR, *ORIGINAL_ATTRS.values())


def correction_of(item: dict) -> Optional[dict]:
    """A corrected bucket's marker: {run_id, applied_at_ms, realtime: {metric: the stream's own
    value}} (only the metrics a correction stored an original of); None: not corrected."""
    run_id = text(item, CORRECTION_ATTR)
    if run_id is None:
        return None
    return {"run_id": run_id, "applied_at_ms": num(item, CORRECTED_AT_ATTR) or None,
            "realtime": {m: num(item, a) for m, a in ORIGINAL_ATTRS.items() if a in item}}
