"""Helpers for the ingest tests against in-process moto: a pinned clock, clicks, the dedup table
and the clicks stream read back exactly, and AWS clients that fail chosen calls the way DynamoDB
and Kinesis do (a failed write is really not written)."""
from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from common.config import IngestSettings, ResourceNames
from ingest.dedup import PER_CLICK, DedupStore
from ingest.publisher import KinesisPublisher
from ingest.service import IngestService, RequestMeta
from ingest.validation import parse_batch
from local.readback import read_stream
from local.resources import create_dedup_table, create_stream

NAMES = ResourceNames()
NOW_MS = 1_798_761_598_000  # 2026-12-31T23:59:58Z: 2 s before a day's, a month's, a year's end
TTL_S = IngestSettings().dedup_ttl_s
LEASE_MS = IngestSettings().claim_lease_s * 1000


def throttled(op: str) -> ClientError:
    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                  "Message": "injected"}}, op)


def no_response(op: str) -> ReadTimeoutError:
    """What the SDK raises when its last attempt got no answer (not a ClientError)."""
    return ReadTimeoutError(endpoint_url=f"https://endpoint.invalid/{op}")


def click(i: int, **over) -> dict:
    c = {"click_id": f"c{i}", "ad_id": f"ad{i % 3}", "campaign_id": "k", "advertiser_id": "v",
         "user_id": f"u{i}", "timestamp": NOW_MS - 60_000, "cost": "0.10"}
    c.update(over)
    return c


def claim_item(click_id: str, request_id: str, status: str, claimed_at_ms: int) -> dict:
    """A dedup item as the service writes it (plain values): the expectation in the tests."""
    return {"click_id": click_id, "request_id": request_id, "status": status,
            "claimed_at": claimed_at_ms, "expires_at": claimed_at_ms // 1000 + TTL_S}


def put_claim(ddb, item: dict) -> None:
    ddb.put_item(TableName=NAMES.dedup_table, Item={
        "click_id": {"S": item["click_id"]}, "request_id": {"S": item["request_id"]},
        "status": {"S": item["status"]}, "claimed_at": {"N": str(item["claimed_at"])},
        "expires_at": {"N": str(item["expires_at"])}})


def dedup_items() -> dict[str, dict]:
    """Every item of the dedup table, by click_id, attributes as plain values."""
    ddb = boto3.client("dynamodb")
    out: dict[str, dict] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=NAMES.dedup_table):
        for item in page["Items"]:
            out[item["click_id"]["S"]] = {k: (int(v["N"]) if "N" in v else v["S"]) for k, v in item.items()}
    return out


@pytest.fixture
def clients(aws):
    """(dynamodb, kinesis) clients on in-process moto with the dedup table and a 1-shard clicks
    stream (the test module imports this fixture)."""
    ddb, kinesis = boto3.client("dynamodb"), boto3.client("kinesis")
    create_dedup_table(ddb, NAMES.dedup_table)
    create_stream(kinesis, NAMES.clicks_stream, 1)
    return ddb, kinesis


def stream_ids() -> list[str]:
    """click_ids on the clicks stream, sorted, duplicates kept."""
    return sorted(r["click_id"] for recs in read_stream(NAMES.clicks_stream).values() for r in recs)


class Sleeps:
    """A sleep that only records how long it was asked to wait."""

    def __init__(self):
        self.calls: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.calls.append(seconds)


class DynamoFaults:
    """The real (moto) DynamoDB client, except:
    - BatchWriteItem raises `error` (default: ProvisionedThroughputExceeded) for the next
      `batch_errors` calls (nothing written), then answers the items of click_ids in
      `unprocessed` as UnprocessedItems (not written) as long as their count lasts;
    - BatchGetItem raises `error` for the next `get_errors` calls, then answers the keys of
      click_ids in `unread` as UnprocessedKeys as long as their count lasts;
    - DeleteItem raises `error` for click_ids in `delete_errors` (nothing deleted), and runs
      `before_delete(click_id)` first when given.
    Every BatchWriteItem, BatchGetItem and PutItem call's click_ids and every DeleteItem's
    click_id are recorded."""

    def __init__(self, real, batch_errors: int = 0, unprocessed: dict[str, int] | None = None,
                 delete_errors: set[str] = frozenset(), before_delete=None, error=throttled,
                 get_errors: int = 0, unread: dict[str, int] | None = None):
        self.real, self.batch_errors, self.error = real, batch_errors, error
        self.unprocessed = dict(unprocessed or {})
        self.get_errors, self.unread = get_errors, dict(unread or {})
        self.delete_errors, self.before_delete = set(delete_errors), before_delete
        self.batch_calls: list[list[str]] = []
        self.get_calls: list[list[str]] = []
        self.put_calls: list[str] = []
        self.delete_calls: list[str] = []
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.real, name)

    def _fault(self, op: str, ids: list[str], calls: list, errors: str, hold: dict[str, int]) -> list[str]:
        """One batch call: records its ids in `calls`; raises `error` while the counter named
        `errors` lasts (nothing done); else the ids to answer as unprocessed (their `hold` count
        lasting)."""
        with self._lock:
            calls.append(ids)
            if getattr(self, errors) > 0:
                setattr(self, errors, getattr(self, errors) - 1)
                raise self.error(op)
            held = []
            for cid in ids:
                if hold.get(cid, 0) > 0:
                    hold[cid] -= 1
                    held.append(cid)
            return held

    def put_item(self, **kwargs):
        with self._lock:
            self.put_calls.append(kwargs["Item"]["click_id"]["S"])
        return self.real.put_item(**kwargs)

    def batch_get_item(self, RequestItems):
        (table, request), = RequestItems.items()
        ids = [k["click_id"]["S"] for k in request["Keys"]]
        held = self._fault("BatchGetItem", ids, self.get_calls, "get_errors", self.unread)
        keys = [k for k, cid in zip(request["Keys"], ids) if cid not in held]
        resp = self.real.batch_get_item(RequestItems={table: {**request, "Keys": keys}}) if keys else {
            "Responses": {table: []}}
        unprocessed = [k for k, cid in zip(request["Keys"], ids) if cid in held]
        resp["UnprocessedKeys"] = {table: {**request, "Keys": unprocessed}} if unprocessed else {}
        return resp

    def batch_write_item(self, RequestItems):
        (table, requests), = RequestItems.items()
        ids = [r["PutRequest"]["Item"]["click_id"]["S"] for r in requests]
        held = self._fault("BatchWriteItem", ids, self.batch_calls, "batch_errors", self.unprocessed)
        keep = [r for r, cid in zip(requests, ids) if cid not in held]
        if keep:
            self.real.batch_write_item(RequestItems={table: keep})
        return {"UnprocessedItems": {table: [r for r, cid in zip(requests, ids) if cid in held]} if held else {}}

    def delete_item(self, **kwargs):
        cid = kwargs["Key"]["click_id"]["S"]
        with self._lock:
            self.delete_calls.append(cid)
        if self.before_delete is not None:
            self.before_delete(cid)
        if cid in self.delete_errors:
            raise self.error("DeleteItem")
        return self.real.delete_item(**kwargs)


class KinesisRefusing:
    """The real (moto) Kinesis client whose PutRecords raises `error` for the next `call_errors`
    calls (nothing written) and fails every record of the click_ids in `refused`
    (ProvisionedThroughputExceeded, not written); counts calls."""

    def __init__(self, real, refused: set[str] = frozenset(), call_errors: int = 0, error=throttled):
        self.real, self.refused, self.calls = real, set(refused), 0
        self.call_errors, self.error = call_errors, error

    def put_records(self, StreamName, Records):
        self.calls += 1
        if self.call_errors > 0:
            self.call_errors -= 1
            raise self.error("PutRecords")
        fail = [json.loads(r["Data"])["click_id"] in self.refused for r in Records]
        passing = [r for r, f in zip(Records, fail) if not f]
        written = iter(self.real.put_records(StreamName=StreamName, Records=passing)["Records"] if passing else ())
        out = [{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}
               if f else next(written) for f in fail]
        return {"FailedRecordCount": sum(fail), "Records": out}


class Ingest:
    """IngestService on the given clients with a clock the test moves and recorded sleeps."""

    def __init__(self, ddb, kinesis, settings: IngestSettings | None = None, mode: str = PER_CLICK):
        self.settings, self.mode = settings or IngestSettings(), mode
        self.now_ms = NOW_MS
        self.dedup_sleeps, self.publish_sleeps = Sleeps(), Sleeps()
        self.pool = ThreadPoolExecutor(8)
        self.ddb, self.kinesis = ddb, kinesis

    def service(self) -> IngestService:
        s = self.settings
        return IngestService(
            s, DedupStore(self.ddb, s.dedup_table, self.pool, s.claim_lease_s, sleep=self.dedup_sleeps,
                          mode=self.mode),
            KinesisPublisher(self.kinesis, s.clicks_stream, s.kinesis_max_attempts, s.kinesis_backoff_base_ms,
                             sleep=self.publish_sleeps),
            clock_ms=lambda: self.now_ms)

    def post(self, clicks: list[dict], request_id: str):
        """One request through the service (what the handler does after parsing the body)."""
        batch = parse_batch(clicks, self.settings, self.now_ms)
        return self.service().ingest(batch, RequestMeta(request_id, "203.0.113.9", "sdk/1.0"))


def statuses(outcome) -> list[tuple]:
    """(click_id, status, reason) per result, in request order."""
    return [(r["click_id"], r["status"], r.get("reason")) for r in outcome.results]


def counts(outcome) -> Counter:
    return Counter({k: v for k, v in outcome.counts.items() if v})
