"""Latency of a click link (GET /v1/c?t=TOKEN: verify, claim, publish, confirm, 302) against
the single-click POST /v1/clicks in the same process: the real ingest handler, API Gateway
events, in-process moto (`mock_aws`). Rounds alternate, so drift in the emulator hits both.

    .venv/bin/python bench/redirect.py [--requests 300]
    .venv/bin/python bench/redirect.py --smoke   # seconds: 20 requests per round

Printed per path: p50/p95 ms over N requests and the AWS calls per request (exact, in the
default dedup mode, per_click: one conditional PutItem, one PutRecords, one BatchWriteItem each;
the key-set secret is read once
per container, Powertools caches it). Absolute numbers are the emulator's, not AWS's.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter

import in_process_aws  # noqa: F401  (first: sys.path and fake credentials, before boto3)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from common.click_token import ClickClaims, StaticKeys, issue  # noqa: E402
from common.config import IngestSettings, ResourceNames  # noqa: E402
from local.apigw import build_event  # noqa: E402
from local.lambda_runtime import LambdaContext  # noqa: E402
from local.resources import create_dedup_table, create_stream  # noqa: E402

KEY = bytes(range(32))
LANDING = "https://shop.example/landing?utm_source=clickagg"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def link_events(prefix: str, n: int) -> list[dict]:
    now = int(time.time())
    keys = StaticKeys({"k1": KEY}, "k1")
    out = []
    for i in range(n):
        tok = issue(ClickClaims(impression_id=f"{prefix}-imp-{i}", ad_id=f"ad-{i % 50}", campaign_id="k",
                                advertiser_id="v", price_micros=250_000, issued_at=now - 10,
                                expires_at=now + 3600, landing_url=LANDING), keys)
        out.append(build_event("GET", f"/v1/c?t={tok}", {"User-Agent": "Mozilla/5.0 bench"}, b"",
                               "203.0.113.1", "/v1/c", {}))
    return out


def post_events(prefix: str, n: int) -> list[dict]:
    now_ms = int(time.time() * 1000)
    return [build_event("POST", "/v1/clicks", {"Content-Type": "application/json", "User-Agent": "sdk"},
                        json.dumps({"click_id": f"{prefix}-{i}", "ad_id": f"ad-{i % 50}", "campaign_id": "k",
                                    "advertiser_id": "v", "user_id": f"u{i}", "timestamp": now_ms - 1000,
                                    "cost": "0.25"}).encode(), "203.0.113.1", "/v1/clicks", {})
            for i in range(n)]


def run(events: list[dict], expect: int) -> tuple[list[float], Counter]:
    from ingest import handler

    service = handler.get_service()
    calls: Counter = Counter()
    for client in (service.dedup._ddb, service.publisher._kinesis):
        client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
    times = []
    for event in events:
        t0 = time.perf_counter()
        resp = handler.lambda_handler(event, LambdaContext("bench"))
        times.append(time.perf_counter() - t0)
        assert resp["statusCode"] == expect, resp
        # metrics are off here, but Powertools still buffers them and prints a full buffer
        # (100 values) as EMF on stdout: drop them, untimed
        handler.metrics.clear_metrics()
    return times, calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--smoke", action="store_true", help="tiny input, seconds: --requests 20")
    args = p.parse_args()
    if args.smoke:
        args.requests = 20
    names = ResourceNames()
    os.environ.update(IngestSettings().to_env())
    from ingest import handler

    results: dict[str, list[float]] = {}
    rounds = (("POST /v1/clicks (1 click)", post_events, 202), ("GET /v1/c (redirect)", link_events, 302)) * 2
    print(f"redirect bench: {args.requests} requests per round, in-process moto, real ingest handler")
    for r, (name, make, expect) in enumerate(rounds):
        with mock_aws():
            create_dedup_table(boto3.client("dynamodb"), names.dedup_table)
            create_stream(boto3.client("kinesis"), names.clicks_stream, 4)
            boto3.client("secretsmanager").create_secret(
                Name=names.click_token_secret, SecretString=json.dumps({"active": "k1", "k1": KEY.hex()}))
            handler.get_service.cache_clear()
            run(make(f"w{r}", 3), expect)  # warm-up: container, clients, the key set read once
            times, calls = run(make(f"r{r}", args.requests), expect)
            results.setdefault(name, []).extend(times)
            print(f"{name:>26}: p50 {pct(times, 0.5) * 1000:7.2f} ms  p95 {pct(times, 0.95) * 1000:7.2f} ms; "
                  "AWS calls per request: "
                  + ", ".join(f"{k} {v / args.requests:.2f}" for k, v in sorted(calls.items())), flush=True)
    base, link = results["POST /v1/clicks (1 click)"], results["GET /v1/c (redirect)"]
    print(f"redirect / POST p50 = {statistics.median(link) / statistics.median(base):.2f}x  "
          f"(all rounds: redirect p50 {pct(link, 0.5) * 1000:.2f} ms p95 {pct(link, 0.95) * 1000:.2f} ms, "
          f"POST p50 {pct(base, 0.5) * 1000:.2f} ms p95 {pct(base, 0.95) * 1000:.2f} ms)")


if __name__ == "__main__":
    main()
