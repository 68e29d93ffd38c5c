"""Corrections: apply the nightly batch truth to the realtime buckets of a flagged day, once, and
record each change in an append-only adjustments ledger (docs/corrections.md).

Pure core (`plan`): the reconciliation's inputs (the batch's hourly rows, the serving store's 1h
rows) and its drift rows -> one Correction per (ad, hour) whose realtime values differ from the
batch's, and the per-ad sums the ad's 1d bucket moves by. Edges (`apply`, `write_ledger`): one
DynamoDB transaction per ad, the Parquet ledger beside the drift report. No AWS import at module
level; glue_jobs/reconcile.py runs it (`run(..., apply_corrections=True)`, CLI
`--apply-corrections`, run property `apply_corrections` set by POST /v1/reconcile).

Batch truth per ad-hour, with the reconciliation's own definitions (so a corrected bucket
reconciles to 0 drift): the stream is not capped by budgets, so its valid clicks and their cost
are the batch's billed + over budget ones.
  clicks               = batch clicks                       (every verdict, over budget included)
  billable_clicks      = billable_clicks + over_budget_clicks
  suspect_clicks, invalid_clicks, cost_micros = the batch's
  billable_cost_micros = billable_cost_micros + over_budget_cost_micros
A metric is corrected only when the day's batch rows have its column (over_budget_*: absent = 0);
the bucket keeps clicks = billable + suspect + invalid because the batch's rows do. Impressions,
conversions and their value are not corrected (their drift is reported, docs/corrections.md).
An ad-hour the batch has no row for is truth 0 (the archive holds no click of it); one the stream
has no bucket for gets a bucket (version 0: any stream write supersedes it). A day without any
batch row is never corrected (a missing billing partition would otherwise zero the day).

Reason of a ledger entry: the reconciliation row's billable class (late_beyond_lateness,
arrival_order_election, impression_memory, duplicates_missed_by_stream, unexplained); `verdicts_or_cost`
when the billable clicks agree and only the other metrics differ.

Writes, per ad, ONE TransactWriteItems (<= 24 hours x 2 + 1 = 49 items, under the 100 limit):
- each corrected `S#<ad>#1h` bucket: UpdateItem SET the metrics to the batch's, rt_<attr> =
  if_not_exists(rt_<attr>, before) (the stream's own value survives re-corrections), cx = run id,
  cxa = applied at; condition: the item still holds the `before` values read by the
  reconciliation (absent = 0). `v` is kept: a rebuild from the archive (higher versions) replaces
  the item, marker and all, and supersedes the correction. A bucket that did not exist: PutItem
  if it still does not.
- its ledger item (pk ADJ#<day>, sk <hour>#<ad>#<run>): PutItem if it does not exist.
- the ad's `S#<ad>#1d` bucket of the day: every corrected metric + the sum of the hours' deltas,
  conditional on the values read just before (consistent read), marked like the hours.
All or nothing per ad: a transaction cancelled by a condition (the stream or another correction
changed a bucket since it was read) applies nothing for that ad and is counted as a conflict;
reconciling again retries it. Requested twice with the same batch truth, the second run finds
no difference (its buckets equal the truth): 0 applied, the marked buckets counted as
`already_applied`; no ledger entry. A later, different batch truth (re-billing) corrects again
under its own run id; earlier ledger entries stay.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Optional

if importlib.util.find_spec("serving") is None:  # on Glue: in the zip; in a checkout: functions/serving
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "functions"))
from serving.keys import DAY_MS, adjustment_key, series_key, series_pk, ts  # noqa: E402
from serving.table import (CORRECTED_AT_ATTR, CORRECTED_METRICS, CORRECTION_ATTR, ID_ATTRS,  # noqa: E402
                           METRIC_ATTRS, ORIGINAL_ATTRS, metrics_of, query_range, text)

# realtime metric -> the batch's hourly columns whose sum is its truth (module doc)
TRUTH_COLUMNS = {
    "clicks": ("clicks",),
    "billable_clicks": ("billable_clicks", "over_budget_clicks"),
    "suspect_clicks": ("suspect_clicks",),
    "invalid_clicks": ("invalid_clicks",),
    "cost_micros": ("cost_micros",),
    "billable_cost_micros": ("billable_cost_micros", "over_budget_cost_micros"),
}
assert tuple(TRUTH_COLUMNS) == CORRECTED_METRICS
OTHER_FIELDS = "verdicts_or_cost"  # the reason when the billable clicks agree
# the partition keys a correction writes (infra grants PutItem/UpdateItem on these only): ads'
# series (serving.keys SERIES_PREFIX["agg"]) and the ledger
CORRECTION_LEADING_KEYS = ("S#*", "ADJ#*")
LEDGER_DATASET = "adjustments"
MAX_TRANSACTION_ITEMS = 100


@dataclass(frozen=True)
class Correction:
    """One ad-hour: its realtime values (None: no bucket), the batch's, why, and the stream's own
    values (its rt_* originals if an earlier correction stored them, else `before`)."""

    ad_id: str
    hour_start_ms: int
    before: Optional[dict]
    after: dict
    reason: str
    original: dict
    campaign_id: Optional[str] = None
    advertiser_id: Optional[str] = None

    @property
    def delta(self) -> dict:
        before = self.before or dict.fromkeys(self.after, 0)
        return {m: self.after[m] - before[m] for m in self.after}


@dataclass
class Plan:
    fields: tuple                                      # the metrics corrected (batch has them)
    corrections: list = field(default_factory=list)   # Correction, sorted by ad, hour
    already: list = field(default_factory=list)       # (ad, hour, marker) marked and = truth
    marked: dict = field(default_factory=dict)        # (ad, hour) -> marker of every marked bucket
    batch_rows: int = 0


def _records(rows) -> list[dict]:
    from glue_jobs.reconcile import _records as records

    return records(rows)


def _hour_ms(row: dict) -> int:
    from glue_jobs.reconcile import _hour_ms as hour_ms

    return hour_ms(row)


def _int(value) -> int:
    return 0 if value is None or value != value else int(value)  # None / NaN -> 0


def corrected_fields(batch_rows: list[dict]) -> tuple:
    """The metrics the day's batch rows can correct: those whose (first) column they carry."""
    columns = set().union(*(r.keys() for r in batch_rows)) if batch_rows else set()
    return tuple(m for m, cols in TRUTH_COLUMNS.items() if cols[0] in columns)


def plan(batch_rows, realtime_rows, drift_rows=()) -> Plan:
    """Pure: which ad-hours to correct, to what (module doc). `realtime_rows`: the reconciliation's
    (glue_jobs/reconcile.realtime_hour_rows: metrics per (ad, hour), `correction` when the bucket
    carries a marker); `drift_rows`: its report rows (the reason)."""
    batch = _records(batch_rows)
    out = Plan(corrected_fields(batch), batch_rows=len(batch))
    truth: dict[tuple, dict] = {}
    ids: dict[str, tuple] = {}
    for r in batch:
        key = (r["ad_id"], _hour_ms(r))
        acc = truth.setdefault(key, dict.fromkeys(out.fields, 0))
        for m in out.fields:
            acc[m] += sum(_int(r.get(c)) for c in TRUTH_COLUMNS[m])
        if r["ad_id"] not in ids and (r.get("campaign_id") or r.get("advertiser_id")):
            ids[r["ad_id"]] = (r.get("campaign_id"), r.get("advertiser_id"))
    realtime = {(r["ad_id"], _hour_ms(r)): r for r in _records(realtime_rows)}
    classes = {(r["ad_id"], int(r["hour_start_ms"])): (r["class"] if r["diff"] else OTHER_FIELDS)
               for r in _records(drift_rows)}
    if not out.batch_rows or not out.fields:
        return out
    for key in sorted(set(truth) | set(realtime)):
        after = truth.get(key, dict.fromkeys(out.fields, 0))
        rt = realtime.get(key)
        marker = rt.get("correction") if rt else None
        if marker:
            out.marked[key] = marker
        before = {m: _int(rt.get(m)) for m in out.fields} if rt is not None else None
        if (before or dict.fromkeys(out.fields, 0)) == after:
            if marker:
                out.already.append((*key, {**marker, "current": before}))
            continue
        original = {m: (marker or {}).get("realtime", {}).get(m, (before or {}).get(m, 0)) for m in out.fields}
        cmp, adv = ids.get(key[0], (None, None))
        out.corrections.append(Correction(key[0], key[1], before, after, classes.get(key, "unexplained"),
                                          original, cmp, adv))
    return out


def day_deltas(corrections: Iterable[Correction]) -> dict[str, dict]:
    """{ad: {metric: the sum of its corrected hours' deltas}}: what its 1d bucket moves by."""
    out: dict[str, dict] = {}
    for c in corrections:
        acc = out.setdefault(c.ad_id, dict.fromkeys(c.after, 0))
        for m, d in c.delta.items():
            acc[m] += d
    return out


def ledger_row(c: Correction, day: str, run_id: str, applied_at_ms: int) -> dict:
    """One ledger entry (the Parquet row; the DynamoDB item carries the same)."""
    delta = c.delta
    row = {"day": day, "ad_id": c.ad_id, "campaign_id": c.campaign_id, "hour_start_ms": c.hour_start_ms,
           "hour": datetime.fromtimestamp(c.hour_start_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "run_id": run_id, "applied_at_ms": applied_at_ms, "reason": c.reason, "created": c.before is None}
    for m in CORRECTED_METRICS:
        fixed = m in c.after
        row[f"{m}_before"] = (c.before or {}).get(m, 0) if fixed else None
        row[f"{m}_after"] = c.after[m] if fixed else None
        row[f"{m}_delta"] = delta[m] if fixed else None
    return row


LEDGER_COLUMNS = tuple(ledger_row(Correction("a", 0, None, {}, "", {}), "", "", 0))


def summarize(p: Plan, requested: bool, skipped: Optional[str], applied: list, conflicts: list,
              run_id: Optional[str], ledger: Optional[str] = None) -> dict:
    """The `corrections` section of the day's summary (GET /v1/quality): this run's counts and
    the day's corrected 1h buckets now (earlier runs' included): how many, by which runs, and the
    net change over the stream's own values."""
    now: dict[tuple, tuple] = {}  # (ad, hour) -> (current values, stream's own, run)
    for ad, hour, marker in p.already:
        cur = marker.get("current", {})
        now[(ad, hour)] = ({m: cur.get(m, 0) for m in p.fields},
                           {m: marker.get("realtime", {}).get(m, cur.get(m, 0)) for m in p.fields},
                           marker.get("run_id"))
    for c in applied:
        now[(c.ad_id, c.hour_start_ms)] = (c.after, c.original, run_id)
    delta = dict.fromkeys(p.fields, 0)
    for cur, orig, _ in now.values():
        for m in p.fields:
            delta[m] += cur[m] - orig[m]
    return {"requested": requested, "skipped": skipped, "fields": list(p.fields),
            "pending": len(p.corrections), "applied": len(applied), "conflicts": len(conflicts),
            "already_applied": len(p.already), "run_id": run_id if applied else None,
            "ad_hours": len(now), "runs": sorted({r for _, _, r in now.values() if r}),
            "delta": delta, "ledger": ledger}


# ---------------------------------------------------------------------------- edges

def _n(value: int) -> dict:
    return {"N": str(int(value))}


def _key(key: dict) -> dict:
    return {k: {"S": v} for k, v in key.items()}


def _update(table: str, key: dict, before: dict, after: dict, run_id: str, at: int) -> dict:
    names = {"#cx": CORRECTION_ATTR, "#cxa": CORRECTED_AT_ATTR}
    values = {":run": {"S": run_id}, ":at": _n(at)}
    sets, conds = ["#cx = :run", "#cxa = :at"], ["attribute_exists(pk)"]
    for i, m in enumerate(after):
        names[f"#m{i}"], names[f"#o{i}"] = METRIC_ATTRS[m], ORIGINAL_ATTRS[m]
        values[f":a{i}"], values[f":b{i}"] = _n(after[m]), _n(before[m])
        sets += [f"#m{i} = :a{i}", f"#o{i} = if_not_exists(#o{i}, :b{i})"]
        conds.append(f"#m{i} = :b{i}" if before[m] else f"(attribute_not_exists(#m{i}) OR #m{i} = :b{i})")
    return {"Update": {"TableName": table, "Key": _key(key), "UpdateExpression": "SET " + ", ".join(sets),
                       "ConditionExpression": " AND ".join(conds), "ExpressionAttributeNames": names,
                       "ExpressionAttributeValues": values}}


def _create(table: str, key: dict, ad_id: str, campaign_id, advertiser_id, after: dict, run_id: str,
            at: int) -> dict:
    item = {**_key(key), ID_ATTRS["ad_id"]: {"S": ad_id}, "v": _n(0),
            CORRECTION_ATTR: {"S": run_id}, CORRECTED_AT_ATTR: _n(at)}
    for attr, value in ((ID_ATTRS["campaign_id"], campaign_id), (ID_ATTRS["advertiser_id"], advertiser_id)):
        if value:
            item[attr] = {"S": value}
    for m, v in after.items():
        item[METRIC_ATTRS[m]], item[ORIGINAL_ATTRS[m]] = _n(v), _n(0)
    return {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


def ledger_item(row: dict) -> dict:
    """The ledger row as its DynamoDB item (serving.table's docstring: attributes)."""
    item = {**_key(adjustment_key(row["day"], row["hour_start_ms"], row["ad_id"], row["run_id"])),
            ID_ATTRS["ad_id"]: {"S": row["ad_id"]}, "hs": _n(row["hour_start_ms"]),
            "run": {"S": row["run_id"]}, "at": _n(row["applied_at_ms"]), "why": {"S": row["reason"]},
            "new": {"BOOL": bool(row["created"])}}
    if row["campaign_id"]:
        item[ID_ATTRS["campaign_id"]] = {"S": row["campaign_id"]}
    for short, part in (("bf", "before"), ("af", "after"), ("dl", "delta")):
        item[short] = {"M": {m: _n(row[f"{m}_{part}"]) for m in CORRECTED_METRICS
                             if row[f"{m}_{part}"] is not None}}
    return item


def _day_item(ddb, table: str, ad_id: str, day_start: int) -> Optional[dict]:
    items = query_range(ddb, table, series_pk(ad_id, "1d"), ts(day_start), ts(day_start), consistent_read=True)
    return items[0] if items else None


def transaction(table: str, day: str, day_start: int, ad_id: str, corrections: list, day_item: Optional[dict],
                run_id: str, at: int) -> list[dict]:
    """The TransactItems correcting one ad (module doc): its hours, their ledger entries, its 1d."""
    ops = []
    for c in corrections:
        key = series_key(ad_id, "1h", c.hour_start_ms)
        ops.append(_update(table, key, c.before, c.after, run_id, at) if c.before is not None else
                   _create(table, key, ad_id, c.campaign_id, c.advertiser_id, c.after, run_id, at))
        ops.append({"Put": {"TableName": table, "Item": ledger_item(ledger_row(c, day, run_id, at)),
                            "ConditionExpression": "attribute_not_exists(pk)"}})
    moved = day_deltas(corrections)[ad_id]
    key = series_key(ad_id, "1d", day_start)
    if day_item is None:
        ops.append(_create(table, key, ad_id, corrections[0].campaign_id, corrections[0].advertiser_id,
                           {m: max(0, d) for m, d in moved.items()}, run_id, at))
    else:
        before = {m: v for m, v in metrics_of(day_item).items() if m in moved}
        ops.append(_update(table, key, before, {m: before[m] + moved[m] for m in moved}, run_id, at))
    assert len(ops) <= MAX_TRANSACTION_ITEMS
    return ops


# ads corrected at once (one transaction each). In-process moto's TransactWriteItems deep-copies
# the whole table and races with concurrent writes ("dictionary changed size during iteration",
# measured 2026-12-06): tests with in-process moto set it to 1; the local stack's moto server
# serializes requests; DynamoDB isolates transactions.
APPLY_CONCURRENCY = 8


def apply(ddb, table: str, day: str, corrections: list, run_id: str, applied_at_ms: int,
          concurrency: int | None = None) -> tuple[list, list]:
    """(applied corrections, conflicting ones): one transaction per ad, concurrently."""
    concurrency = concurrency or APPLY_CONCURRENCY
    from botocore.exceptions import ClientError

    day_start = int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() * 1000)
    by_ad: dict[str, list] = {}
    for c in corrections:
        assert day_start <= c.hour_start_ms < day_start + DAY_MS, (c, day)
        by_ad.setdefault(c.ad_id, []).append(c)

    def one(ad_id: str) -> tuple[list, list]:
        cs = by_ad[ad_id]
        ops = transaction(table, day, day_start, ad_id, cs, _day_item(ddb, table, ad_id, day_start),
                          run_id, applied_at_ms)
        try:
            ddb.transact_write_items(TransactItems=ops)
        except ClientError as exc:
            if exc.response["Error"].get("Code") != "TransactionCanceledException":
                raise
            return [], cs
        return cs, []

    applied, conflicts = [], []
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        for ok, failed in pool.map(one, sorted(by_ad)):
            applied += ok
            conflicts += failed
    key = lambda c: (c.ad_id, c.hour_start_ms)  # noqa: E731
    return sorted(applied, key=key), sorted(conflicts, key=key)


def ledger_path(report_path: str) -> str:
    """Beside the drift report: <report_path's parent>/adjustments (on AWS: reconciliation/
    adjustments next to reconciliation/drift, so Athena's billing_drift never reads it)."""
    base = report_path.rstrip("/")
    parent = base.rpartition("/")[0]
    return f"{parent}/{LEDGER_DATASET}" if parent and not parent.endswith(":/") else LEDGER_DATASET


def write_ledger(rows: list[dict], report_path: str, day: str, run_id: str) -> str:
    """<ledger_path>/dt=D/run-<run id>.parquet: one file per applying run, never replaced."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from glue_jobs.reconcile import _filesystem

    def type_of(column: str):
        if column == "created":
            return pa.bool_()
        if column.endswith(("_before", "_after", "_delta")) or column.endswith("_ms"):
            return pa.int64()
        return pa.string()
    schema = pa.schema([(c, type_of(c)) for c in LEDGER_COLUMNS])
    filesystem, root = _filesystem(f"{ledger_path(report_path)}/dt={day}")
    filesystem.create_dir(root, recursive=True)
    path = f"{root}/run-{run_id}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, filesystem=filesystem)
    return path


def read_ledger(ddb, table: str, day: str) -> list[dict]:
    """Every ledger item of a day (all runs), oldest first per ad-hour."""
    from serving.keys import adjustments_pk

    items = query_range(ddb, table, adjustments_pk(day), "0", "9" + "$")
    return sorted(items, key=lambda i: (i["sk"]["S"].split("#")[0], text(i, "ad") or "", int(i["at"]["N"])))


def correct(p: Plan, ddb, table: str, day: str, report_path: Optional[str], *, requested: bool,
            flagged: bool, run_id: str, applied_at_ms: int) -> dict:
    """Apply the plan when requested and the day is flagged; the summary's `corrections` section."""
    skipped = (None if requested and flagged and p.batch_rows and p.fields else
               "not requested" if not requested else
               "day within the drift threshold" if not flagged else "no batch rows for the day")
    applied, conflicts, ledger = [], [], None
    if skipped is None and p.corrections:
        applied, conflicts = apply(ddb, table, day, p.corrections, run_id, applied_at_ms)
        if applied and report_path:
            ledger = write_ledger([ledger_row(c, day, run_id, applied_at_ms) for c in applied],
                                  report_path, day, run_id)
    return summarize(p, requested, skipped, applied, conflicts, run_id, ledger)
