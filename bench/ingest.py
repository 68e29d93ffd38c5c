"""Per-click cost of the ingest handler vs the bare boto3 calls it must make.

Both run in this process against moto's in-process mock (`mock_aws`), on the same records, in
both dedup modes (setting ingest_dedup_mode, ingest/dedup.py), alternated:
  handler: API Gateway event -> validation -> per_click: claim (conditional PutItem per click,
           thread pool) / mark: check (BatchGetItem per 100 clicks) -> PutRecords -> confirm
           (BatchWriteItem per 25) -> response
  bare:    the same DynamoDB / PutRecords / BatchWriteItem calls, same pool, nothing else
handler / bare is the handler's own overhead; absolute numbers are the emulator's, not AWS's.
mark / per_click (handler time per click, same process) is what the capacity planner applies to
its per-click duration for mark mode (INGEST_PER_CLICK_MS_MARK).
Click tokens (issue 17): the per-click cost of verifying a click's token, in-process, against the
per-click validation without tokens on the same clicks in the same process (click_token_mode
off: ids and cost in the body, vs enforce: the token verified and its ids and price compared),
and verify() alone (HMAC-SHA256 + the canonical payload checks), in us per token.
Impressions (issue 19, POST /v1/events): the handler on 500-impression batches (validated,
published unclaimed: one PutRecords per 500) vs the bare PutRecords of the same records, and the
pure logic per impression; the capacity planner's per-impression time is taken from these.

    .venv/bin/python bench/ingest.py [--batches 6] [--batch-size 500]
    .venv/bin/python bench/ingest.py --smoke   # seconds: 3 batches of 50 (checks that it runs;
                                               # the call counts are exact, the times are not the bench's)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import in_process_aws  # noqa: F401  (first: sys.path and fake credentials, before boto3)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from common.config import IngestSettings, ResourceNames  # noqa: E402
from common.records import encode_click, encode_event, partition_key  # noqa: E402
from ingest.dedup import MARK, PER_CLICK, ClaimRecord, DedupStore  # noqa: E402
from local.apigw import build_event  # noqa: E402
from local.lambda_runtime import LambdaContext  # noqa: E402
from local.resources import create_dedup_table, create_stream  # noqa: E402

DEDUP_MODES = (PER_CLICK, MARK)  # ingest_dedup_mode: both measured, alternated


def count_calls(client, counter: Counter) -> None:
    client.meta.events.register("before-call", lambda model, **_: counter.update([model.name]))


def make_batch(b: int, size: int, now_ms: int) -> list[dict]:
    return [{"click_id": f"b{b}-{i}", "ad_id": f"ad-{i % 50}", "campaign_id": "k", "advertiser_id": "v",
             "user_id": f"u{i}", "timestamp": now_ms - 1000, "cost": "0.25"} for i in range(size)]


def make_impressions(b: int, size: int, now_ms: int) -> list[dict]:
    """Impressions as the Python SDK's impression_event builds them (UUID-sized ids)."""
    return [{"type": "impression", "schema_version": 1,
             "impression_id": f"0192f3a4-5b6c-7d8e-{b:04d}-{i:012d}", "ad_id": f"ad-{i % 50:07d}",
             "campaign_id": "cmp-000123", "advertiser_id": "adv-00012", "timestamp": now_ms - 1000,
             "placement_id": "plc-000042", "publisher_id": "pub-000007", "user_id": f"u-{i:016d}"}
            for i in range(size)]


def run_handler(batches, settings, mode: str) -> tuple[list[float], Counter]:
    from ingest import handler

    os.environ["INGEST_DEDUP_MODE"] = mode
    handler.get_service.cache_clear()
    service = handler.get_service()
    assert service.dedup.mode == mode
    calls: Counter = Counter()
    count_calls(service.dedup._ddb, calls)
    count_calls(service.publisher._kinesis, calls)
    times = []
    for batch in batches:
        event = build_event("POST", "/v1/clicks", {"Content-Type": "application/json"},
                            json.dumps({"clicks": batch}).encode(), "203.0.113.1", "/v1/clicks", {})
        t0 = time.perf_counter()
        resp = handler.lambda_handler(event, LambdaContext("bench"))
        times.append(time.perf_counter() - t0)
        assert json.loads(resp["body"])["accepted"] == len(batch), resp["body"][:300]
    return times, calls


def run_events_handler(batches, settings) -> tuple[list[float], Counter]:
    """POST /v1/events with impressions only: validation, no claim, one PutRecords per 500."""
    from ingest import handler

    handler.get_service.cache_clear()
    service = handler.get_service()
    calls: Counter = Counter()
    count_calls(service.dedup._ddb, calls)
    count_calls(service.events_publisher._kinesis, calls)
    times = []
    for batch in batches:
        event = build_event("POST", "/v1/events", {"Content-Type": "application/json"},
                            json.dumps({"events": batch}).encode(), "203.0.113.1", "/v1/events", {})
        t0 = time.perf_counter()
        resp = handler.lambda_handler(event, LambdaContext("bench"))
        times.append(time.perf_counter() - t0)
        assert json.loads(resp["body"])["accepted"] == len(batch), resp["body"][:300]
    return times, calls


def run_events_bare(batches, settings) -> tuple[list[float], Counter]:
    """The PutRecords calls the handler must make for the same impressions, nothing else."""
    from ingest.events import impression_record, parse_events

    kinesis = boto3.client("kinesis")
    calls: Counter = Counter()
    count_calls(kinesis, calls)
    times = []
    for batch in batches:
        now = int(time.time() * 1000)
        records = [{"Data": encode_event(impression_record(ve.event, now, "bare", "203.0.113.1")),
                    "PartitionKey": partition_key(ve.event.ad_id, ve.event_id, {})}
                   for ve in parse_events(batch, settings, now).impressions]
        t0 = time.perf_counter()
        for i in range(0, len(records), 500):
            resp = kinesis.put_records(StreamName=settings.events_stream, Records=records[i:i + 500])
            assert resp["FailedRecordCount"] == 0
        times.append(time.perf_counter() - t0)
    return times, calls


def pure_logic_us_per_impression(batch: list[dict], settings) -> float:
    from ingest.events import extract_events, impression_record, parse_events
    from ingest.validation import decode_body

    body = json.dumps({"events": batch})
    t0, n = time.perf_counter(), 20
    for _ in range(n):
        parsed = parse_events(extract_events(decode_body(body, False, settings), settings), settings,
                              int(time.time() * 1000))
        for ve in parsed.impressions:
            encode_event(impression_record(ve.event, 0, "r", "203.0.113.1"))
    return (time.perf_counter() - t0) / (n * len(batch)) * 1e6


def run_bare(batches, settings, mode: str) -> tuple[list[float], Counter]:
    """The dedup store's calls in `mode` (per_click: a PutItem per click; mark: a BatchGetItem
    per 100) + PutRecords + the confirm's BatchWriteItems, nothing else."""
    ddb, kinesis = boto3.client("dynamodb"), boto3.client("kinesis")
    calls: Counter = Counter()
    count_calls(ddb, calls)
    count_calls(kinesis, calls)
    store = DedupStore(ddb, settings.dedup_table, ThreadPoolExecutor(settings.dedup_concurrency),
                       settings.claim_lease_s, mode=mode)
    times = []
    for batch in batches:
        now = int(time.time() * 1000)
        claims = [ClaimRecord(c["click_id"], "bare", now, now // 1000 + 86400) for c in batch]
        records = [{"Data": encode_click({**c, "event_time": c["timestamp"], "cost_micros": 250000}),
                    "PartitionKey": partition_key(c["ad_id"], c["click_id"], {})} for c in batch]
        t0 = time.perf_counter()
        assert all(o == "claimed" for o in store.claim(claims))
        assert kinesis.put_records(StreamName=settings.clicks_stream, Records=records)["FailedRecordCount"] == 0
        assert store.confirm(claims) == []
        times.append(time.perf_counter() - t0)
    return times, calls


def pure_logic_us_per_click(batch: list[dict], settings) -> float:
    from ingest.service import RequestMeta, build_record
    from ingest.validation import decode_body, extract_items, parse_batch

    body = json.dumps({"clicks": batch})
    meta = RequestMeta("r", "203.0.113.1", "ua")
    t0, n = time.perf_counter(), 20
    for _ in range(n):
        parsed = parse_batch(extract_items(decode_body(body, False, settings), settings), settings,
                             int(time.time() * 1000))
        for vc in parsed.valid:
            encode_click(build_record(vc, meta, 0))
    return (time.perf_counter() - t0) / (n * len(batch)) * 1e6


def token_cost_us(batch: list[dict], rounds: int) -> tuple[float, float, float]:
    """(us/click validating without tokens, us/click validating + checking a valid token,
    us per verify() alone): medians over `rounds` passes over the same clicks."""
    from common.click_token import ClickClaims, StaticKeys, VerifyPolicy, issue, verify
    from ingest.tokens import VALID, TokenVerifier
    from ingest.validation import parse_batch

    keys = StaticKeys({"k1": bytes(range(32))}, "k1")
    now_ms = int(time.time() * 1000)
    now_s = now_ms // 1000
    tokens = [issue(ClickClaims(impression_id=f"imp-{c['click_id']}", ad_id=c["ad_id"],
                                campaign_id=c["campaign_id"], advertiser_id=c["advertiser_id"],
                                price_micros=250_000, issued_at=now_s - 60, expires_at=now_s + 3600,
                                landing_url="https://shop.example/landing"), keys) for c in batch]
    with_tokens = [dict(c, token=t) for c, t in zip(batch, tokens)]
    off, enforce = IngestSettings(), IngestSettings(click_token_mode="enforce")
    policy = VerifyPolicy(enforce.click_token_max_age_s, enforce.click_token_clock_skew_s)
    verifier = TokenVerifier("enforce", keys, policy)

    def plain() -> None:
        assert len(parse_batch(batch, off, now_ms).valid) == len(batch)

    def checked() -> None:
        parsed = parse_batch(with_tokens, enforce, now_ms)
        assert all(verifier.check(vc.click, now_s).outcome == VALID for vc in parsed.valid)
        assert len(parsed.valid) == len(batch)

    def verify_only() -> None:
        for t in tokens:
            verify(t, keys, now_s, policy=policy)

    medians = []
    for fn in (plain, checked, verify_only):
        fn()  # warm-up
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        medians.append(statistics.median(times) / len(batch) * 1e6)
    return medians[0], medians[1], medians[2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--smoke", action="store_true", help="tiny input, seconds: --batches 3 --batch-size 50")
    args = p.parse_args()
    if args.smoke:
        args.batches, args.batch_size = 3, 50
    if args.batches < 2:
        p.error("--batches must be >= 2 (the first one is a warm-up)")
    names = ResourceNames()
    settings = IngestSettings()
    os.environ.update(settings.to_env())
    now = int(time.time() * 1000)
    results: dict = {}
    pure_us = pure_logic_us_per_click(make_batch(0, args.batch_size, now), settings)
    print(f"pure handler logic (parse, validate, encode; no AWS): {pure_us:.1f} us/click")
    base_us, token_us, verify_us = token_cost_us(make_batch(0, args.batch_size, now),
                                                 rounds=3 if args.smoke else 15)
    print(f"click-token verification: {verify_us:.1f} us per verify(); per-click validation "
          f"{base_us:.1f} us without tokens, {token_us:.1f} us with the token checked "
          f"(+{token_us - base_us:.1f} us/click, {token_us / base_us:.2f}x)")
    # alternated, so drift in the emulator hits every kind of run alike
    rounds = [(mode, name, runner, f"{mode}-{name[:4]}{i}") for i in (1, 2) for mode in DEDUP_MODES
              for name, runner in (("bare boto3", run_bare), ("handler", run_handler))]
    for mode, name, runner, prefix in rounds:
        with mock_aws():
            create_dedup_table(boto3.client("dynamodb"), names.dedup_table)
            create_stream(boto3.client("kinesis"), names.clicks_stream, 4)
            batches = [make_batch(b, args.batch_size, now) for b in range(args.batches)]
            for batch in batches:
                for c in batch:
                    c["click_id"] = f"{prefix}-{c['click_id']}"
            runner(batches[:1], settings, mode)  # warm-up: imports, client creation, table pages
            times, calls = runner(batches[1:], settings, mode)
            clicks = args.batch_size * (args.batches - 1)
            results.setdefault((mode, name), []).extend(times)
            print(f"{mode:>9} {name:>10}: median {statistics.median(times) * 1000:8.1f} ms per "
                  f"{args.batch_size}-click batch = {statistics.median(times) / args.batch_size * 1e6:7.1f} "
                  "us/click; AWS calls per 1000 clicks: "
                  + ", ".join(f"{k} {v * 1000 / clicks:.0f}" for k, v in sorted(calls.items())), flush=True)
    median = {k: statistics.median(v) for k, v in results.items()}
    for mode in DEDUP_MODES:
        print(f"{mode} handler / bare = {median[mode, 'handler'] / median[mode, 'bare boto3']:.2f}x  "
              "(moto in-process; the ratio is the handler's own overhead)")
    print(f"mark / per_click handler time per click = "
          f"{median[MARK, 'handler'] / median[PER_CLICK, 'handler']:.2f}x  (the capacity planner's "
          "INGEST_PER_CLICK_MS_MARK is INGEST_PER_CLICK_MS x this)")
    os.environ["INGEST_DEDUP_MODE"] = settings.ingest_dedup_mode
    events_bench(args, names, settings, now)


def events_bench(args, names, settings, now: int) -> None:
    """Impressions on POST /v1/events: handler vs bare PutRecords, alternated like the clicks."""
    pure_us = pure_logic_us_per_impression(make_impressions(0, args.batch_size, now), settings)
    print(f"pure handler logic per impression (parse, validate, encode; no AWS): {pure_us:.1f} us/impression")
    results: dict = {}
    rounds = (("bare boto3", run_events_bare, "ebare1"), ("handler", run_events_handler, "ehdl1"),
              ("bare boto3", run_events_bare, "ebare2"), ("handler", run_events_handler, "ehdl2"))
    for name, runner, prefix in rounds:
        with mock_aws():
            create_dedup_table(boto3.client("dynamodb"), names.dedup_table)
            create_stream(boto3.client("kinesis"), names.events_stream, 4)
            batches = [make_impressions(b, args.batch_size, now) for b in range(args.batches)]
            for batch in batches:
                for e in batch:
                    e["impression_id"] = f"{prefix}-{e['impression_id']}"
            runner(batches[:1], settings)  # warm-up
            times, calls = runner(batches[1:], settings)
            n = args.batch_size * (args.batches - 1)
            results.setdefault(name, []).extend(times)
            print(f"{name:>10}: median {statistics.median(times) * 1000:8.1f} ms per {args.batch_size}-impression "
                  f"batch = {statistics.median(times) / args.batch_size * 1e6:7.1f} us/impression; "
                  "AWS calls per 1000 impressions: "
                  + ", ".join(f"{k} {v * 1000 / n:.0f}" for k, v in sorted(calls.items())), flush=True)
    ratio = statistics.median(results["handler"]) / statistics.median(results["bare boto3"])
    print(f"impressions: handler / bare = {ratio:.2f}x  (moto in-process)")


if __name__ == "__main__":
    main()
