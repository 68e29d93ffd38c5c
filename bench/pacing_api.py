"""Decision API cost: the budget Lambda's handler in-process against moto's in-process DynamoDB
(docs/budget.md). What it reports is what the issue asks: per decision, the in-process latency
(p50, p99), DynamoDB requests and keys read, for one campaign (cache miss and cache hit) and for
the batch form; moto's own latency is in the times, so the ratio to the baseline in the same
process is the figure to compare: the baseline is one raw BatchGetItem of the same keys (the
floor any design reading those items pays).

    .venv/bin/python bench/pacing_api.py            # 300 campaigns, 2,000 decisions per case
    .venv/bin/python bench/pacing_api.py --smoke    # seconds (tests/test_bench_smoke.py)
"""
from __future__ import annotations

import in_process_aws  # noqa: F401  (first: paths, fake credentials, quiet Powertools)

import argparse
import contextlib
import io
import json
import os
import statistics
import time

import boto3
from moto import mock_aws

from aggregate.changes import Change
from common.config import ResourceNames
from common.times import DAY_MS, MINUTE_MS
from local.lambda_runtime import LambdaContext
from local.resources import create_budgets_table, create_serving_table
from query.budgets import stop_sk
from serving.keys import PULSE_KEY, series_key
from serving.write.dynamodb import DynamoDBServingStore

NAMES = ResourceNames()


def event(method: str, path: str, resource: str, body=None) -> dict:
    from local.apigw import build_event
    raw = json.dumps(body).encode() if body is not None else b""
    return build_event(method, path, {"Content-Type": "application/json"}, raw, "203.0.113.9", resource, {})


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def seed(campaigns: int, now_ms: int) -> None:
    ddb = boto3.client("dynamodb")
    store = DynamoDBServingStore(ddb, NAMES.serving_table)
    from query.budget.store import BudgetStore
    from query.pacing import Budget
    budgets = BudgetStore(ddb, NAMES.budgets_table, NAMES.serving_table)
    day = now_ms - now_ms % DAY_MS
    for c in range(campaigns):
        cid = f"cmp-{c:05d}"
        budgets.put_budget(Budget(cid, 50_000_000, None, "even", 1, now_ms, "bench"))
        rows = [("1d", day, 20_000_000)] + [("1m", now_ms - now_ms % MINUTE_MS - i * MINUTE_MS, 30_000)
                                            for i in range(7)]
        for res, bucket, micros in rows:
            store.apply(Change("spend", True, {"kind": "spend", "resolution": res, "bucket_start": bucket,
                                               "entity_id": cid, "campaign_id": cid,
                                               "billable_cost_micros": micros, "version": 1}))
    store.apply(Change("pulse", True, {"kind": "pulse", "entity_id": "pulse", "bucket_start": now_ms,
                                       "version": now_ms}))


def measure(label: str, n: int, call) -> dict:
    times, requests = [], []
    for i in range(n):
        with contextlib.redirect_stdout(io.StringIO()):  # the handler's EMF lines
            t0 = time.perf_counter()
            body = call(i)
            times.append((time.perf_counter() - t0) * 1000)
        requests.append(body["debug"]["requests"])
    return {"case": label, "n": n, "p50": pct(times, 0.5), "p99": pct(times, 0.99),
            "requests": statistics.mean(requests)}


def run(campaigns: int, n: int) -> list[dict]:
    from query.budget import handler
    now = int(time.time() * 1000)
    handler.clock_ms = lambda: now  # the figures stay as seeded: every case sees the same data
    seed(campaigns, now)
    ctx = LambdaContext("clickagg-budget")

    def single(i: int, cached: bool) -> dict:
        if not cached:
            forget()
        cid = f"cmp-{i % campaigns:05d}"
        resp = handler.lambda_handler(event("GET", f"/v1/campaigns/{cid}/pacing",
                                            "/v1/campaigns/{campaign_id}/pacing"), ctx)
        return json.loads(resp["body"])

    def forget() -> None:
        """A warm container whose cache has expired (its clients kept, its figures not)."""
        store = handler.get_store()
        store._cache.clear()
        store._pulse = None

    def batch(i: int) -> dict:
        forget()
        ids = [f"cmp-{(i * 100 + k) % campaigns:05d}" for k in range(100)]
        resp = handler.lambda_handler(event("POST", "/v1/pacing", "/v1/pacing", {"campaign_ids": ids}), ctx)
        return json.loads(resp["body"])

    ddb = boto3.client("dynamodb")

    def baseline(i: int) -> dict:
        cid = f"cmp-{i % campaigns:05d}"
        day = now - now % DAY_MS
        keys = [{k: {"S": v} for k, v in series_key(cid, res, b, "spend").items()}
                for res, b in [("1d", day)] + [("1m", now - now % MINUTE_MS - j * MINUTE_MS) for j in range(7)]]
        keys.append({k: {"S": v} for k, v in PULSE_KEY.items()})
        ddb.batch_get_item(RequestItems={
            NAMES.serving_table: {"Keys": keys},
            NAMES.budgets_table: {"Keys": [{"campaign_id": {"S": cid}, "sk": {"S": sk}}
                                           for sk in ("current", stop_sk(now - now % DAY_MS))],
                                  "ConsistentRead": True}})
        return {"debug": {"requests": 1}}

    rows = [measure("baseline: one BatchGetItem of a decision's 11 keys", n, baseline),
            measure("GET pacing, cache miss (warm container)", n, lambda i: single(i, False))]
    with contextlib.redirect_stdout(io.StringIO()):
        single(0, False)
    rows.append(measure("GET pacing, cache hit", n, lambda i: single(0, True)))
    rows.append(measure("POST /v1/pacing, 100 campaigns, cache miss", max(1, n // 20), batch))
    rows[-1]["per_decision_p50"] = rows[-1]["p50"] / 100
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--campaigns", type=int, default=300)
    ap.add_argument("--n", type=int, default=2000, help="decisions per case")
    ap.add_argument("--smoke", action="store_true", help="100 campaigns, 40 decisions per case")
    args = ap.parse_args()
    campaigns, n = (100, 40) if args.smoke else (max(100, args.campaigns), args.n)
    os.environ.update({"SERVING_TABLE": NAMES.serving_table, "BUDGETS_TABLE": NAMES.budgets_table})
    with mock_aws():
        ddb = boto3.client("dynamodb")
        create_budgets_table(ddb, NAMES.budgets_table)
        create_serving_table(ddb, NAMES.serving_table)
        rows = run(campaigns, n)
    base = rows[0]["p50"]
    print(f"pacing API bench: {campaigns} campaigns with budgets and spend, {n} decisions per case "
          "(in-process handler, in-process moto DynamoDB)")
    print("| case | n | p50 ms | p99 ms | DynamoDB requests per call | p50 / baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['n']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['requests']:.2f} | "
              f"{r['p50'] / base:.2f} |")
    print(f"batch form: {rows[-1]['per_decision_p50']:.3f} ms per decision (p50 / 100)")
    # invariants (the figures are printed either way)
    assert rows[1]["requests"] == 1 and rows[2]["requests"] == 0, rows
    assert rows[3]["requests"] == 11, rows  # 100 campaigns x 10 keys + the pulse = 1001 keys
    print("smoke invariants hold" if args.smoke else "invariants hold")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
