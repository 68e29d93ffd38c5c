"""Reconciliation of the nightly billing recompute with the realtime serving store.

Pure core (`reconcile`): batch hourly rows + realtime hourly rows -> one drift row per
(ad_id, hour) and a summary. Edges: read the batch rows (Parquet written by the billing job),
read the realtime rows (DynamoDB serving table), write the report (Parquet), emit CloudWatch
metrics (ClickAgg / TotalDrift, WorstDrift).

Definitions
- diff = realtime_billable - batch_billable (positive: the stream billed more); billable = the
  verdict `valid` (common/ivt.py), on both sides: the batch's billable_clicks + its
  over_budget_clicks (valid clicks past their campaign's daily budget are not billed, but the
  stream, which is not capped, counts them).
- per verdict, the same difference: diff_suspect, diff_invalid (and diff for valid).
- drift_ratio = |diff| / max(batch_billable, 1)  (a row the batch has no billable click in
  counts its |diff| as the ratio, so the figure stays finite).
- total drift = |sum(diff)| / max(batch total, 1); worst drift = max drift_ratio over rows.
- flag = total drift > threshold (default 0.001 = 0.1 %). Billable only: suspect and invalid
  clicks are not money.

Difference classes. The stream applies the same IVT rules as the batch; their verdicts differ
only where the stream cannot see what the batch sees. The batch job writes, per hour row, how
many billable clicks each known cause can move (transform.OUTPUT_COLUMNS diagnostics, each an
upper bound); a row's billable diff is explained greedily by the causes that push in its
direction, each up to its count:
- diff < 0: first `late_beyond_lateness` - billable clicks whose first copy was ingested at or
  after their *minute's* end + allowed lateness (900 s) + watermark delay (5 s). The stream
  decides lateness per 1-minute bucket (its hour rollups are sums of minutes): it drops a click
  once its watermark (newest event time - delay) has passed minute end + lateness; the click's
  own ingest time stands in for the newest event time at its arrival (an approximation:
  clients' clocks and the stream's backlog move the real watermark, so this can over- or
  under-count near the limit; `unexplained` shows what it misses). Then
  `arrival_order_election` - billable clicks (by event time) that lose their impression's or
  their (user, ad, window)'s election when it is held in ARRIVAL order, as the stream holds it
  (election_loss_clicks).
- diff > 0: first `arrival_order_election` - clicks the batch does not bill that win their
  elections in arrival order and carry no other reason (election_gain_clicks); then
  `impression_memory` - impression repeats the stream may no longer recognise: repeats by
  arrival with no other reason, ingested longer than the stream's impression memory
  (flink_dedup_ttl_s) after the impression's first arrival (impression_memory_clicks); then
  `duplicates_missed_by_stream` - archive copies beyond the first of this hour's clicks (an
  upper bound: a copy the stream failed to dedup is billed only if its repeat rules missed it
  too).
- what is left is `unexplained`. A row's class is `none` when diff = 0, `unexplained` when any
  part is left unexplained, else the cause explaining the most clicks (ties: election, late,
  impression memory, duplicates).
The suspect / invalid diffs are reported, not classified: the same causes move clicks between
verdicts (an election lost in the stream turns a valid click suspect or invalid; a missed
duplicate is a repeat there; a late click is missing from every verdict).

Impressions and conversions (issue 19; the billing's events_hourly rows, glue_jobs/billing/
events.py) the same way, each on its own (EVENT_METRICS): realtime `impressions` vs the batch's
distinct impressions, realtime `conversions` vs the batch's token_conversions (the stream counts
the conversions whose record names an ad, attributed or not; the batch attributes them later).
diff, drift ratio and total drift as for billable clicks; causes: diff < 0 `late_beyond_lateness`
(late_impressions / late_token_conversions: first ingested after the minute's end + lateness +
delay), diff > 0 `duplicates_missed_by_stream` (copies beyond the first: a resend the stream no
longer remembers, its dedup state TTL having passed). Each has its own flag (> threshold) in the
summary (`impressions`, `conversions`) and the report's columns; the top-level `flag`, the
TotalDrift metric and its alarm stay the billable clicks' (money); ImpressionsTotalDrift and
ConversionsTotalDrift are put beside them. The conversion value is reported, not classified.

Spend (docs/budget.md, "Batch truth"), per campaign-day: the realtime lane's spend, the serving
table's `SB#<campaign>#1d` item of the day (sk = the day's start, 13 digits; attribute `bk`,
billable cost micros), vs the batch's valid_cost_micros (billing_campaign_spend: valid clicks,
uncapped, as the realtime lane counts). diff = realtime - batch, drift ratio = |diff| /
max(batch, 1) per campaign, total drift = |sum diff| / max(batch total, 1); the section's flag is
total drift > threshold (as the clicks'), and campaigns whose own drift is above it are counted
and the worst listed (`drifting`, at most SPEND_DRIFTING_LISTED: the summary is one DynamoDB
item). No causes are classified (the clicks' rows explain the same clicks). The campaigns asked
for are the batch's plus those named by the day's hourly leaderboard entries (their `cmp`).
Metric SpendTotalDrift; a flagged spend section adds an alert in GET /v1/quality, the status
stays the clicks'.

Realtime rows come from DynamoDB by Query, not Scan: one Query per ad on `S#<ad>#1h` with
sk between the day's first and last hour start (<= 24 items each). The ads asked for are the
batch's ads plus every ad on the day's hourly leaderboards (`T#1h#<day start>`, one or two
partitions), so an ad the stream saw but the archive did not still shows up if it made a top-M.
A Scan would read the whole table (every ad's whole history, minute series, leaderboards).
Keys, item attributes and the paginated Queries are the serving store's own (functions/serving:
serving.keys, serving.table; on Glue in the --extra-py-files zip, like `common`).

Publishing: the day's summary is also put into the serving table (serving.table.reconciliation_item:
pk `R#reconciliation`, sk = the day), where `GET /v1/quality` reads the last reconciliation with
one Query. A rerun of a day replaces its item.

Corrections (glue_jobs/corrections.py, docs/corrections.md): on request only (`--apply-corrections
true`, or the workflow run property `apply_corrections=true` that POST /v1/reconcile?...&
apply_corrections=true sets) and only for a flagged day, the batch truth is written into the
day's differing `S#<ad>#1h` buckets and their ads' `#1d` buckets, once (conditional on the values
this run read), with one adjustments-ledger entry per corrected ad-hour (pk `ADJ#<day>` and
Parquet under <report_path's parent>/adjustments/). The summary's `corrections` section says
what was applied, already applied (earlier runs), pending (not requested / within threshold) or
in conflict; a corrected bucket reconciles to 0 drift on the next run.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable

if importlib.util.find_spec("serving") is None:  # on Glue: in the zip; in a checkout: functions/serving
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "functions"))
from serving import generations  # noqa: E402
from serving.keys import DAY_MS, HOUR_MS, SERIES_PREFIX, parse_top_sk, series_pk, top_pk, ts  # noqa: E402
from serving.keys import RECONCILIATION_PK  # noqa: E402,F401  (the job's partition: infra scopes its PutItem to it)
from serving.table import (ID_ATTRS, METRIC_ATTRS, SK_END, metrics_of, num, query_range,  # noqa: E402
                           reconciliation_item, text)
from serving.table import CORRECTED_AT_ATTR, CORRECTION_ATTR, ORIGINAL_ATTRS, correction_of  # noqa: E402

DRIFT_THRESHOLD = 0.001
NONE, LATE, ELECTION, MEMORY, DUPLICATES, UNEXPLAINED = (
    "none", "late_beyond_lateness", "arrival_order_election", "impression_memory",
    "duplicates_missed_by_stream", "unexplained")
CAUSES = ("late", "election", "impression_memory", "duplicates")  # explained_<cause>
VERDICTS = ("valid", "suspect", "invalid")
# realtime metric -> (the batch's events_hourly count, its late and its duplicates diagnostic)
EVENT_METRICS = {
    "impressions": ("impressions", "late_impressions", "duplicate_impression_copies"),
    "conversions": ("token_conversions", "late_token_conversions", "duplicate_token_conversion_copies"),
}
EVENT_CAUSES = ("late", "duplicates")
VALUE = ("conversion_value_micros", "token_conversion_value_micros")  # (realtime, batch)
REPORT_COLUMNS = ("ad_id", "hour_start_ms", "hour", "batch_billable", "realtime_billable", "diff",
                  "batch_suspect", "realtime_suspect", "diff_suspect",
                  "batch_invalid", "realtime_invalid", "diff_invalid",
                  "drift_ratio", "class", *(f"explained_{c}" for c in CAUSES), "unexplained",
                  # columns are only added at the end (the Glue table billing_drift)
                  *(f"{m}_{c}" for m in EVENT_METRICS
                    for c in ("batch", "realtime", "diff", "drift_ratio", "class",
                              *(f"explained_{x}" for x in EVENT_CAUSES), "unexplained")),
                  "batch_conversion_value_micros", "realtime_conversion_value_micros",
                  "diff_conversion_value_micros")
METRICS_NAMESPACE = "ClickAgg"
SPEND_ATTR = METRIC_ATTRS["billable_cost_micros"]  # `bk` of the realtime lane's SB# items
SPEND_DRIFTING_LISTED = 20


def utc_now() -> datetime:
    """The job's clock (an aware UTC datetime). `run` and `main` take a `now` callable defaulting
    to it: it resolves `--day auto` and stamps the metrics and the published summary."""
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------------------- pure core

def _records(data) -> list[dict]:
    """list of dicts | pandas DataFrame | Spark DataFrame -> list of dicts."""
    if data is None:
        return []
    if hasattr(data, "toLocalIterator") and hasattr(data, "schema"):  # Spark DataFrame
        return [r.asDict() for r in data.collect()]
    if hasattr(data, "to_dict"):  # pandas
        return data.to_dict("records")
    return [dict(r) for r in data]


def _hour_ms(row: dict) -> int:
    if row.get("hour_start_ms") is not None:
        return int(row["hour_start_ms"])
    hour = row["hour"]
    if isinstance(hour, (int, float)):
        return int(hour)
    if hasattr(hour, "to_pydatetime"):
        hour = hour.to_pydatetime()
    if hour.tzinfo is None:  # Spark/pyarrow give naive UTC datetimes under a UTC session
        hour = hour.replace(tzinfo=timezone.utc)
    return int(hour.timestamp() * 1000)


def _int(row: dict, key: str) -> int:
    value = row.get(key)
    return 0 if value is None or value != value else int(value)  # None / NaN -> 0


def explain(diff: int, late: int = 0, loss: int = 0, gain: int = 0, memory: int = 0,
            duplicates: int = 0) -> dict:
    """Split one row's billable diff into the causes that can account for it (greedy, in the
    order of the module doc, each up to its count): late / loss explain a negative diff, gain /
    memory / duplicates a positive one."""
    parts = {f"explained_{c}": 0 for c in CAUSES}
    rest = abs(diff)
    steps = ((("late", late), ("election", loss)) if diff < 0 else
             (("election", gain), ("impression_memory", memory), ("duplicates", duplicates)))
    for cause, count in steps:
        parts[f"explained_{cause}"] = min(rest, max(count, 0))
        rest -= parts[f"explained_{cause}"]
    parts["unexplained"] = rest if diff > 0 else -rest
    if diff == 0:
        cls = NONE
    elif rest:
        cls = UNEXPLAINED
    else:
        ranked = [(parts["explained_election"], ELECTION), (parts["explained_late"], LATE),
                  (parts["explained_impression_memory"], MEMORY),
                  (parts["explained_duplicates"], DUPLICATES)]
        cls = max(ranked, key=lambda kv: kv[0])[1]  # max keeps the first of equals
    return {**parts, "class": cls}


_BATCH_KEYS = {"b": "billable_clicks", "over": "over_budget_clicks",
               "suspect": "suspect_clicks", "invalid": "invalid_clicks",
               "late": "late_billable_clicks", "loss": "election_loss_clicks",
               "gain": "election_gain_clicks", "memory": "impression_memory_clicks",
               "dup": "duplicate_copies"}
_REALTIME_KEYS = {"valid": "billable_clicks", "suspect": "suspect_clicks", "invalid": "invalid_clicks",
                  **{m: m for m in EVENT_METRICS}, "value": VALUE[0]}
_EVENT_KEYS = {**{f"{m}_{part}": col for m, cols in EVENT_METRICS.items()
                  for part, col in zip(("count", *EVENT_CAUSES), cols)}, "value": VALUE[1]}


def _sum_by_key(rows, keys: dict[str, str]) -> dict[tuple[str, int], dict[str, int]]:
    """{(ad_id, hour start): {key: sum of its column}} (several rows per key are summed)."""
    out: dict[tuple[str, int], dict[str, int]] = {}
    for r in _records(rows):
        acc = out.setdefault((r["ad_id"], _hour_ms(r)), dict.fromkeys(keys, 0))
        for k, column in keys.items():
            acc[k] += _int(r, column)
    return out


def event_drift(metric: str, batch: int, realtime: int, late: int, duplicates: int) -> dict:
    """One (ad, hour)'s drift of an events metric: its report columns `<metric>_...`."""
    diff = realtime - batch
    parts = explain(diff, late=late, duplicates=duplicates)
    return {f"{metric}_batch": batch, f"{metric}_realtime": realtime, f"{metric}_diff": diff,
            f"{metric}_drift_ratio": abs(diff) / max(batch, 1), f"{metric}_class": parts["class"],
            **{f"{metric}_explained_{c}": parts[f"explained_{c}"] for c in EVENT_CAUSES},
            f"{metric}_unexplained": parts["unexplained"]}


def reconcile(batch_rows, realtime_rows, threshold: float = DRIFT_THRESHOLD,
              events_rows=None, spend_rows=None, realtime_spend=None) -> tuple[list[dict], dict]:
    """(drift rows sorted by ad_id, hour; summary). Batch rows: billing job output rows (any
    columns beyond ad_id, hour_start_ms|hour, billable_clicks are optional: over_budget_clicks,
    verdict counts and diagnostics); realtime rows: ad_id, hour_start_ms|hour, billable_clicks,
    and suspect_clicks / invalid_clicks, impressions, conversions, conversion_value_micros when
    the serving store has them (absent = 0); events rows: the billing job's events_hourly rows
    (absent: none); spend rows: its campaign_spend rows, realtime spend: campaign_id,
    cost_micros (reconcile_spend). Several rows per key are summed."""
    batch = _sum_by_key(batch_rows, _BATCH_KEYS)
    realtime = _sum_by_key(realtime_rows, _REALTIME_KEYS)
    events = _sum_by_key(events_rows, _EVENT_KEYS)

    rows = []
    empty_b, empty_rt = dict.fromkeys(_BATCH_KEYS, 0), dict.fromkeys(_REALTIME_KEYS, 0)
    empty_ev = dict.fromkeys(_EVENT_KEYS, 0)
    for key in sorted(set(batch) | set(realtime) | set(events)):
        b, rt, ev = batch.get(key, empty_b), realtime.get(key, empty_rt), events.get(key, empty_ev)
        valid = b["b"] + b["over"]  # over budget: valid, not billed, counted by the stream
        diff = rt["valid"] - valid
        rows.append({
            "ad_id": key[0], "hour_start_ms": key[1],
            "hour": datetime.fromtimestamp(key[1] / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "batch_billable": valid, "realtime_billable": rt["valid"], "diff": diff,
            **{f"{side}_{v}": n for v in ("suspect", "invalid")
               for side, n in (("batch", b[v]), ("realtime", rt[v]))},
            "diff_suspect": rt["suspect"] - b["suspect"], "diff_invalid": rt["invalid"] - b["invalid"],
            "drift_ratio": abs(diff) / max(valid, 1),
            **explain(diff, b["late"], b["loss"], b["gain"], b["memory"], b["dup"]),
            **{k: v for m in EVENT_METRICS for k, v in event_drift(
                m, ev[f"{m}_count"], rt[m], ev[f"{m}_late"], ev[f"{m}_duplicates"]).items()},
            "batch_conversion_value_micros": ev["value"], "realtime_conversion_value_micros": rt["value"],
            "diff_conversion_value_micros": rt["value"] - ev["value"],
        })
    summary = summarize(rows, threshold)
    for m in EVENT_METRICS:
        summary[m] = summarize_events(rows, m, threshold)
    summary["conversions"]["value_micros"] = {
        side: sum(r[f"{side}_conversion_value_micros"] for r in rows) for side in ("batch", "realtime", "diff")}
    summary["spend"] = reconcile_spend(spend_rows, realtime_spend, threshold)[1]
    return rows, summary


_SPEND_KEYS = {"valid": "valid_cost_micros", "billed": "billed_cost_micros",
               "over": "over_budget_cost_micros", "over_clicks": "over_budget_clicks"}


def reconcile_spend(spend_rows, realtime_spend, threshold: float = DRIFT_THRESHOLD
                    ) -> tuple[list[dict], dict]:
    """(per-campaign rows sorted by campaign_id; the summary's `spend` section). `spend_rows`:
    the billing job's campaign_spend rows of the day (several per campaign are summed; a budget
    is the campaign's, the same on each); `realtime_spend`: campaign_id, cost_micros (the
    serving table's SB#<campaign>#1d `bk`). Module doc, "Spend"."""
    batch: dict[str, dict] = {}
    for r in _records(spend_rows):
        acc = batch.setdefault(r["campaign_id"], {**dict.fromkeys(_SPEND_KEYS, 0), "budget": None})
        for k, column in _SPEND_KEYS.items():
            acc[k] += _int(r, column)
        if r.get("budget_micros") is not None:
            acc["budget"] = int(r["budget_micros"])
    realtime: dict[str, int] = {}
    for r in _records(realtime_spend):
        realtime[r["campaign_id"]] = realtime.get(r["campaign_id"], 0) + _int(r, "cost_micros")
    rows = []
    empty = {**dict.fromkeys(_SPEND_KEYS, 0), "budget": None}
    for campaign in sorted(set(batch) | set(realtime), key=lambda c: (c is None, c or "")):
        b, rt = batch.get(campaign, empty), realtime.get(campaign, 0)
        diff = rt - b["valid"]
        ratio = abs(diff) / max(b["valid"], 1)
        rows.append({"campaign_id": campaign, "batch": b["valid"], "realtime": rt, "diff": diff,
                     "drift_ratio": ratio, "flag": ratio > threshold, "budget_micros": b["budget"],
                     "billed_cost_micros": b["billed"], "over_budget_cost_micros": b["over"],
                     "over_budget_clicks": b["over_clicks"]})
    batch_total = sum(r["batch"] for r in rows)
    total_diff = sum(r["realtime"] for r in rows) - batch_total
    total_drift = abs(total_diff) / max(batch_total, 1)
    drifting = sorted((r for r in rows if r["flag"]),
                      key=lambda r: (-r["drift_ratio"], -abs(r["diff"]), r["campaign_id"] or ""))
    worst = max(rows, key=lambda r: (r["drift_ratio"], abs(r["diff"])), default=None)
    has_worst = bool(worst and worst["diff"])
    section = {
        "batch": batch_total, "realtime": batch_total + total_diff, "total_diff": total_diff,
        "total_drift": total_drift, "worst_drift": worst["drift_ratio"] if worst else 0.0,
        "worst_campaign_id": worst["campaign_id"] if has_worst else None,
        "threshold": threshold, "flag": total_drift > threshold, "campaigns": len(rows),
        "drifting_campaigns": len(drifting),
        "drifting": [{k: r[k] for k in ("campaign_id", "batch", "realtime", "diff", "drift_ratio")}
                     for r in drifting[:SPEND_DRIFTING_LISTED]],
        "budgeted_campaigns": sum(1 for r in rows if r["budget_micros"] is not None),
        "billed_cost_micros": sum(r["billed_cost_micros"] for r in rows),
        "over_budget_cost_micros": sum(r["over_budget_cost_micros"] for r in rows),
        "over_budget_clicks": sum(r["over_budget_clicks"] for r in rows),
        "over_budget_campaigns": sum(1 for r in rows if r["over_budget_clicks"]),
    }
    return rows, section


def summarize(rows: list[dict], threshold: float = DRIFT_THRESHOLD) -> dict:
    batch_total = sum(r["batch_billable"] for r in rows)
    realtime_total = sum(r["realtime_billable"] for r in rows)
    total_diff = realtime_total - batch_total
    worst = max(rows, key=lambda r: (r["drift_ratio"], abs(r["diff"])), default=None)
    classes: dict[str, int] = {}
    for r in rows:
        classes[r["class"]] = classes.get(r["class"], 0) + 1
    total_drift = abs(total_diff) / max(batch_total, 1)
    side = {"valid": "billable"}
    return {
        "rows": len(rows), "batch_billable": batch_total, "realtime_billable": realtime_total,
        "total_diff": total_diff, "total_drift": total_drift,
        "worst_drift": worst["drift_ratio"] if worst else 0.0,
        "worst_ad_id": worst["ad_id"] if worst and worst["diff"] else None,
        "worst_hour_start_ms": worst["hour_start_ms"] if worst and worst["diff"] else None,
        "threshold": threshold, "flag": total_drift > threshold,
        "classes": classes,
        "explained_clicks": {c: sum(r[f"explained_{c}"] for r in rows) for c in CAUSES},
        "unexplained_clicks": sum(abs(r["unexplained"]) for r in rows),
        "batch_by_verdict": {v: sum(r[f"batch_{side.get(v, v)}"] for r in rows) for v in VERDICTS},
        "realtime_by_verdict": {v: sum(r[f"realtime_{side.get(v, v)}"] for r in rows) for v in VERDICTS},
        "diff_by_verdict": {v: sum(r["diff" if v == "valid" else f"diff_{v}"] for r in rows)
                            for v in VERDICTS},
    }


def summarize_events(rows: list[dict], metric: str, threshold: float = DRIFT_THRESHOLD) -> dict:
    """An events metric's totals, drift, flag and classes over the day's rows (as `summarize`)."""
    batch_total = sum(r[f"{metric}_batch"] for r in rows)
    realtime_total = sum(r[f"{metric}_realtime"] for r in rows)
    total_diff = realtime_total - batch_total
    total_drift = abs(total_diff) / max(batch_total, 1)
    worst = max(rows, key=lambda r: (r[f"{metric}_drift_ratio"], abs(r[f"{metric}_diff"])), default=None)
    has_worst = bool(worst and worst[f"{metric}_diff"])
    classes: dict[str, int] = {}
    for r in rows:
        classes[r[f"{metric}_class"]] = classes.get(r[f"{metric}_class"], 0) + 1
    return {"batch": batch_total, "realtime": realtime_total, "total_diff": total_diff,
            "total_drift": total_drift, "worst_drift": worst[f"{metric}_drift_ratio"] if worst else 0.0,
            "worst_ad_id": worst["ad_id"] if has_worst else None,
            "worst_hour_start_ms": worst["hour_start_ms"] if has_worst else None,
            "threshold": threshold, "flag": total_drift > threshold, "classes": classes,
            "explained": {c: sum(r[f"{metric}_explained_{c}"] for r in rows) for c in EVENT_CAUSES},
            "unexplained": sum(abs(r[f"{metric}_unexplained"]) for r in rows)}


# ---------------------------------------------------------------------------- edges

def _day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def leaderboard_ads(ddb, table: str, day: date) -> set[str]:
    """Ads on the day's hourly leaderboards (pk T#1h#<day start>, sk <hour start>#<ad>), not
    the tombstones of ads that left one."""
    start = _day_start_ms(day)
    items = query_range(ddb, table, top_pk("1h", start), ts(start), ts(start + DAY_MS - HOUR_MS) + SK_END,
                        attrs=generations.READ_ATTRS, skip_tombstones=True)
    return {parse_top_sk(i["sk"]["S"])[1] for i in generations.committed(items)}


def spend_pk(campaign_id: str) -> str:
    """The realtime lane's day partition of a campaign, `SB#<campaign>#1d` (serving.keys; its
    `spend` level when the store's keys have it, else the same format)."""
    if "spend" in SERIES_PREFIX:
        return series_pk(campaign_id, "1d", "spend")
    return f"SB#{campaign_id}#1d"


def leaderboard_campaigns(ddb, table: str, day: date) -> set[str]:
    """Campaigns of the ads on the day's hourly leaderboards (the entries' `cmp`)."""
    start = _day_start_ms(day)
    items = query_range(ddb, table, top_pk("1h", start), ts(start), ts(start + DAY_MS - HOUR_MS) + SK_END,
                        attrs=(ID_ATTRS["campaign_id"], *generations.READ_ATTRS), skip_tombstones=True)
    return {c for c in (text(i, ID_ATTRS["campaign_id"]) for i in generations.committed(items)) if c}


def realtime_spend_rows(ddb, table: str, campaign_ids: Iterable[str], day: date,
                        concurrency: int = 8, consistent_read: bool = False) -> list[dict]:
    """The realtime lane's spend of `day` for these campaigns (campaign_id, cost_micros): one
    Query per campaign on SB#<campaign>#1d, sk = the day's start (absent: no row)."""
    start = ts(_day_start_ms(day))

    def one(campaign_id: str) -> list[dict]:
        items = query_range(ddb, table, spend_pk(campaign_id), start, start, attrs=(SPEND_ATTR,),
                            skip_tombstones=True, consistent_read=consistent_read)
        return [{"campaign_id": campaign_id, "cost_micros": num(i, SPEND_ATTR)} for i in items]

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        return [row for rows in pool.map(one, sorted(set(campaign_ids))) for row in rows]


def realtime_hour_rows(ddb, table: str, ad_ids: Iterable[str], day: date,
                       concurrency: int = 8, consistent_read: bool = False) -> list[dict]:
    """The serving store's 1h series items of `day` for these ads: one Query per ad. A corrected
    bucket's row also has `correction` (serving.table.correction_of: run id, the stream's own
    values)."""
    start = _day_start_ms(day)
    attrs = (*METRIC_ATTRS.values(), CORRECTION_ATTR, CORRECTED_AT_ATTR, *ORIGINAL_ATTRS.values())

    def row(ad_id: str, item: dict) -> dict:
        out = {"ad_id": ad_id, "hour_start_ms": int(item["sk"]["S"]), **metrics_of(item)}
        marker = correction_of(item)
        return {**out, "correction": marker} if marker else out

    def one(ad_id: str) -> list[dict]:
        items = query_range(ddb, table, series_pk(ad_id, "1h"), ts(start), ts(start + DAY_MS - HOUR_MS),
                            attrs=attrs, skip_tombstones=True, consistent_read=consistent_read)
        return [row(ad_id, i) for i in items]

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        return [row for rows in pool.map(one, sorted(set(ad_ids))) for row in rows]


def _filesystem(uri: str):
    from pyarrow import fs

    if "://" not in uri:
        uri = os.path.abspath(uri)
    return fs.FileSystem.from_uri(uri)


def read_batch_rows(out_path: str, day: date, dataset: str | None = None) -> list[dict]:
    """The billing job's rows of `day` in `dataset` (glue_jobs/billing/outputs.py; default its
    hourly clicks: <out_path>/hourly/dt=YYYY-MM-DD/), via pyarrow: the reconciliation needs no
    Spark (a Glue Python shell job or a Lambda can run it). A missing partition reads as no rows."""
    import pyarrow.dataset as ds

    from glue_jobs.billing.outputs import HOURLY  # on Glue: in the zip; locally: main's sys.path

    dataset = dataset or HOURLY
    filesystem, path = _filesystem(f"{out_path.rstrip('/')}/{dataset}/dt={day.isoformat()}")
    info = filesystem.get_file_info(path)
    if info.type.name == "NotFound":
        return []
    return ds.dataset(path, filesystem=filesystem, format="parquet").to_table().to_pylist()


def write_report(rows: list[dict], summary: dict, report_path: str, day: date) -> str:
    """Parquet drift report at <report_path>/dt=YYYY-MM-DD/drift.parquet (replaced on rerun),
    plus _summary.json beside it (underscore: Athena skips it when reading the partition).
    Returns the Parquet path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def type_of(column: str):
        if column in ("ad_id", "hour") or column.endswith("class"):
            return pa.string()
        return pa.float64() if column.endswith("drift_ratio") else pa.int64()
    schema = pa.schema([(c, type_of(c)) for c in REPORT_COLUMNS])
    table = pa.Table.from_pylist([{c: r[c] for c in REPORT_COLUMNS} for r in rows], schema=schema)
    filesystem, root = _filesystem(f"{report_path.rstrip('/')}/dt={day.isoformat()}")
    filesystem.create_dir(root, recursive=True)
    pq.write_table(table, f"{root}/drift.parquet", filesystem=filesystem)
    with filesystem.open_output_stream(f"{root}/_summary.json") as out:
        out.write(json.dumps({"day": day.isoformat(), **summary}, indent=1).encode())
    return f"{root}/drift.parquet"


def emit_metrics(summary: dict, cloudwatch=None, namespace: str = METRICS_NAMESPACE,
                 dimensions: list[dict] | None = None, timestamp: datetime | None = None) -> dict:
    """put_metric_data ClickAgg/TotalDrift and WorstDrift (billable clicks), ImpressionsTotalDrift,
    ConversionsTotalDrift and SpendTotalDrift when the summary has them (ratios, unit None).
    Returns the request sent. Timestamped now by default (so an alarm on the latest data sees it)."""
    if cloudwatch is None:
        import boto3

        cloudwatch = boto3.client("cloudwatch")
    when = timestamp or utc_now()
    values = [("TotalDrift", summary["total_drift"]), ("WorstDrift", summary["worst_drift"])]
    values += [(f"{m.title()}TotalDrift", summary[m]["total_drift"]) for m in (*EVENT_METRICS, "spend")
               if m in summary]
    data = [{"MetricName": name, "Value": float(value), "Unit": "None", "Timestamp": when,
             **({"Dimensions": dimensions} if dimensions else {})} for name, value in values]
    request = {"Namespace": namespace, "MetricData": data}
    cloudwatch.put_metric_data(**request)
    return request


def summary_item(summary: dict, finished_at: datetime, workflow_run_id: str | None = None) -> dict:
    """The serving-table item of a day's summary (pure): serving.table.reconciliation_item of the
    summary without the metrics request."""
    return reconciliation_item({k: v for k, v in summary.items() if k != "metrics"},
                               int(finished_at.timestamp() * 1000), workflow_run_id)


def publish_summary(ddb, table: str, summary: dict, finished_at: datetime | None = None,
                    workflow_run_id: str | None = None) -> dict:
    """Put the day's summary where the query API reads the last reconciliation."""
    item = summary_item(summary, finished_at or utc_now(), workflow_run_id)
    ddb.put_item(TableName=table, Item=item)
    return item


def run(out_path: str, report_path: str, day: date, ddb, table: str, *,
        threshold: float = DRIFT_THRESHOLD, extra_ad_ids: Iterable[str] = (),
        extra_campaign_ids: Iterable[str] = (),
        cloudwatch=None, emit: bool = False, publish: bool = False,
        workflow_run_id: str | None = None, now: Callable[[], datetime] = utc_now,
        apply_corrections: bool = False) -> dict:
    """Batch rows (Parquet) + realtime rows (DynamoDB) -> report (Parquet) + summary dict;
    `publish`: also put the summary into the serving table (for GET /v1/quality). The metrics'
    timestamp and the summary's finished-at time are `now()` at the end of the run.
    `apply_corrections`: correct a flagged day (glue_jobs/corrections.py) under the run id
    `workflow_run_id` (none: `manual-<ms>`); the summary's `corrections` section either way."""
    from glue_jobs import corrections
    from glue_jobs.billing.outputs import CAMPAIGN_SPEND, EVENTS_HOURLY

    batch_rows = read_batch_rows(out_path, day)
    events_rows = read_batch_rows(out_path, day, EVENTS_HOURLY)
    spend_rows = read_batch_rows(out_path, day, CAMPAIGN_SPEND)
    ads = ({r["ad_id"] for r in batch_rows + events_rows} | leaderboard_ads(ddb, table, day)
           | set(extra_ad_ids))
    realtime_rows = realtime_hour_rows(ddb, table, ads, day)
    campaigns = ({r["campaign_id"] for r in spend_rows if r["campaign_id"] is not None}
                 | leaderboard_campaigns(ddb, table, day) | set(extra_campaign_ids))
    realtime_spend = realtime_spend_rows(ddb, table, campaigns, day)
    rows, summary = reconcile(batch_rows, realtime_rows, threshold, events_rows, spend_rows, realtime_spend)
    started = now()
    summary["corrections"] = corrections.correct(
        corrections.plan(batch_rows, realtime_rows, rows), ddb, table, day.isoformat(), report_path,
        requested=apply_corrections, flagged=summary["flag"],
        run_id=workflow_run_id or f"manual-{int(started.timestamp() * 1000)}",
        applied_at_ms=int(started.timestamp() * 1000))
    summary = {"day": day.isoformat(), **summary,
               "report": write_report(rows, summary, report_path, day)}
    finished_at = now()
    if emit:
        summary["metrics"] = emit_metrics(summary, cloudwatch, timestamp=finished_at)["MetricData"]
    if publish:
        publish_summary(ddb, table, summary, finished_at=finished_at, workflow_run_id=workflow_run_id)
    return summary


def main(argv: list[str] | None = None, now: Callable[[], datetime] = utc_now) -> dict:
    import boto3

    from common.config import ResourceNames, ServingSettings  # on Glue: in the zip, like serving
    from glue_jobs.workflow_day import CORRECTIONS_PROPERTY, DAY_PROPERTY, run_properties, workflow_run

    p = argparse.ArgumentParser(description="reconcile the billing recompute with the serving store")
    p.add_argument("--day", default="auto", help="YYYY-MM-DD or auto (= yesterday UTC)")
    p.add_argument("--out-path", "--out_path", dest="out_path", required=True,
                   help="the billing job's --out-path")
    p.add_argument("--report-path", "--report_path", dest="report_path", required=True)
    serving = ServingSettings.from_env()  # SERVING_TABLE (common.schema), else the default name
    p.add_argument("--table", default=serving.serving_table or ResourceNames().serving_table)
    p.add_argument("--threshold", type=float, default=DRIFT_THRESHOLD)
    p.add_argument("--emit-metrics", "--emit_metrics", dest="emit_metrics", nargs="?", const="true",
                   default="false", help="true/false (Glue passes key/value pairs)")
    p.add_argument("--publish", nargs="?", const="true", default="true",
                   help="true/false: put the summary into the serving table (GET /v1/quality)")
    p.add_argument("--apply-corrections", "--apply_corrections", dest="apply_corrections", nargs="?",
                   const="true", default="false",
                   help="true/false: correct a flagged day's realtime buckets (glue_jobs/corrections.py); "
                        "a workflow run's property apply_corrections=true does the same")
    argv = sys.argv[1:] if argv is None else argv
    a, _glue_own = p.parse_known_args(argv)  # Glue adds --JOB_ID, --JOB_RUN_ID, ... of its own
    a.emit_metrics = str(a.emit_metrics).lower() in ("true", "1", "yes")
    a.publish = str(a.publish).lower() in ("true", "1", "yes")
    props = run_properties(argv)  # a run started by POST /v1/reconcile?day=D names its day
    wanted = props.get(DAY_PROPERTY) or None
    a.apply_corrections = (str(a.apply_corrections).lower() in ("true", "1", "yes")
                           or props.get(CORRECTIONS_PROPERTY) == "true")
    try:
        day = _parse_day(wanted or a.day, now)
    except ValueError:
        p.error(f"argument --day: {wanted or a.day!r} is not YYYY-MM-DD or auto")
    run_ids = workflow_run(argv)
    summary = run(a.out_path, a.report_path, day, boto3.client("dynamodb"), a.table,
                  threshold=a.threshold, emit=a.emit_metrics, publish=a.publish,
                  workflow_run_id=run_ids[1] if run_ids else None, now=now,
                  apply_corrections=a.apply_corrections)
    print(json.dumps(summary, default=str))
    return summary


def _parse_day(value: str, now: Callable[[], datetime] = utc_now) -> date:
    """YYYY-MM-DD, or auto / empty = yesterday (UTC) by the clock `now`."""
    if value in ("", "auto"):
        return (now().astimezone(timezone.utc) - timedelta(days=1)).date()
    return date.fromisoformat(value)


if __name__ == "__main__":
    _repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if _repo not in sys.path:  # local runs: glue_jobs importable (on Glue: --extra-py-files)
        sys.path.insert(0, _repo)
    main()  # drift above the threshold pages through the TotalDrift alarm, not a FAILED run
    sys.exit(0)
