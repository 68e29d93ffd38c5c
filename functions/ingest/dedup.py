"""Click identity in DynamoDB, two protocols (setting ingest_dedup_mode):

per_click  (the default: the design card's conditional-write dedup) claim (conditional write),
           confirm, release. A click_id is *claimed* (status=pending)
           before its record goes to Kinesis and *confirmed* (status=committed) after Kinesis
           accepted it. A claim whose Kinesis write failed is released; a claim left pending by
           a crashed invocation can be taken over once its lease expires. 2 writes per click.
mark       check, then mark: one eventually consistent read per click (BatchGetItem, 100 per
           call) before the Kinesis write, and the same committed item written after it (the
           confirm). 1 write + 0.5 read unit per click. Nothing is written before the stream has
           the click, so there is nothing to release. A cost lever (issue 22).
Either way only a committed item makes a later copy a duplicate, and a click is never "seen" in
DynamoDB while absent from Kinesis, which would turn a client's retry into a silent loss. What
mark gives up: two copies of a click in flight at the same moment (or one read within the
read's consistency window of the other's mark) both pass the check and both reach the stream,
where per_click would tell the second to retry. The stream job's click_id dedup (keep-first,
its dedup_ttl_s) and the nightly batch drop that copy, as they drop the copy per_click re-sends
after a confirm that failed; tests/faults checks 0 lost and 0 double counted under both modes.

Why not Powertools Idempotency: it makes one function call idempotent (a key hashed from the
event, a JMESPath subset of it or one `idempotent_function` argument) and stores that call's
response to return it again. Here the unit is the click, not the request: a POST holds up to 500
clicks, each with its own click_id and its own outcome (accepted, duplicate, rejected, retryable),
and a client's retry may mix clicks already taken with new ones, so a request key would replay a
stale answer or miss the duplicates. Per click it would also be one call each: a conditional
PutItem to lock and an UpdateItem to store the result (its docs: "2 WCU per non-idempotent
call"), 1,000 requests for 500 clicks. Here, per_click: 1 conditional PutItem per click (the
claim) + 1 BatchWriteItem per 25 clicks (the confirm; still one write unit per item), 520
requests for 500 clicks; mark: 5 BatchGetItem + 20 BatchWriteItem, 25 requests for 500 clicks;
no response stored: a repeat is simply a duplicate.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

from botocore.exceptions import BotoCoreError, ClientError

from common.schema import DEDUP_MARK as MARK, DEDUP_PER_CLICK as PER_CLICK

PENDING, COMMITTED = "pending", "committed"
BATCH_GET_KEYS = 100  # BatchGetItem's limit per call

CLAIMED, DUPLICATE, IN_FLIGHT, UNAVAILABLE = "claimed", "duplicate", "in_flight", "unavailable"

CLAIM_CONDITION = (
    "attribute_not_exists(click_id)"
    " OR expires_at < :now_s"  # TTL deletion is lazy: an expired item is not a duplicate
    " OR (#status = :pending AND claimed_at < :stale_ms)"  # abandoned by a crashed request
)


@dataclass(frozen=True)
class ClaimRecord:
    click_id: str
    request_id: str
    claimed_at_ms: int
    expires_at_s: int

    def item(self, status: str) -> dict:
        return {
            "click_id": {"S": self.click_id},
            "request_id": {"S": self.request_id},
            "status": {"S": status},
            "claimed_at": {"N": str(self.claimed_at_ms)},
            "expires_at": {"N": str(self.expires_at_s)},
        }


def classify_conflict(old_item: dict | None, request_id: str) -> str:
    """Why a conditional claim failed, from the item DynamoDB returned (ALL_OLD)."""
    if not old_item:
        return IN_FLIGHT  # condition failed but item vanished meanwhile: let the client retry
    if old_item.get("status", {}).get("S") == COMMITTED:
        return DUPLICATE
    if old_item.get("request_id", {}).get("S") == request_id:
        # our own claim: the SDK retried a put whose first attempt did land (lost response)
        return CLAIMED
    return IN_FLIGHT  # pending and still inside its lease: another request is on it right now


def check_item(item: dict | None, now_ms: int, lease_s: int) -> str:
    """mark mode: what a click's item (None: none) says about a new copy of it; CLAIM_CONDITION's
    rule read instead of written. A pending item is a per_click claim (a deployment that switched
    modes while requests ran): respected until its lease ends."""
    if item is None or int(item["expires_at"]["N"]) < now_ms // 1000:
        return CLAIMED  # unseen, or expired and not yet deleted by TTL
    status = item.get("status", {}).get("S")
    if status == COMMITTED:
        return DUPLICATE
    if status == PENDING and int(item["claimed_at"]["N"]) >= now_ms - lease_s * 1000:
        return IN_FLIGHT
    return CLAIMED


class DedupStore:
    def __init__(self, client, table: str, executor: ThreadPoolExecutor, lease_s: int,
                 sleep=time.sleep, mode: str = PER_CLICK):
        """`sleep`: the confirm backoff's wait (tests pass a recorder instead of waiting);
        `mode`: PER_CLICK or MARK (module doc)."""
        if mode not in (PER_CLICK, MARK):
            raise ValueError(f"unknown dedup mode {mode!r}")
        self._ddb, self._table, self._pool, self._lease_s = client, table, executor, lease_s
        self._sleep, self.mode = sleep, mode

    def _claim_one(self, rec: ClaimRecord) -> str:
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=rec.item(PENDING),
                ConditionExpression=CLAIM_CONDITION,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":now_s": {"N": str(rec.claimed_at_ms // 1000)},
                    ":pending": {"S": PENDING},
                    ":stale_ms": {"N": str(rec.claimed_at_ms - self._lease_s * 1000)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return CLAIMED
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return classify_conflict(exc.response.get("Item"), rec.request_id)
            return UNAVAILABLE
        except BotoCoreError:  # no response after the SDK's retries (connection lost, timeout)
            return UNAVAILABLE

    def claim(self, records: list[ClaimRecord]) -> list[str]:
        """Claim each click concurrently (mark mode: check it); outcome per record, in order:
        CLAIMED (publish it, then confirm), DUPLICATE, IN_FLIGHT or UNAVAILABLE."""
        if self.mode == MARK:
            return self._check(records)
        return list(self._pool.map(self._claim_one, records))

    def _check(self, records: list[ClaimRecord], max_attempts: int = 5) -> list[str]:
        """mark mode: the items of the records' click_ids, BATCH_GET_KEYS per BatchGetItem
        (concurrently), unprocessed keys retried with backoff; a key still unread is UNAVAILABLE."""
        ids = list(dict.fromkeys(r.click_id for r in records))  # BatchGetItem refuses repeated keys
        chunks = [ids[i : i + BATCH_GET_KEYS] for i in range(0, len(ids), BATCH_GET_KEYS)]
        found: dict[str, dict | None] = {}
        for part in self._pool.map(lambda c: self._read_chunk(c, max_attempts), chunks):
            found.update(part)
        return [UNAVAILABLE if r.click_id not in found
                else check_item(found[r.click_id], r.claimed_at_ms, self._lease_s) for r in records]

    def _read_chunk(self, ids: list[str], max_attempts: int) -> dict[str, dict | None]:
        """click_id -> its item (None: no item) for every key DynamoDB answered."""
        keys = [{"click_id": {"S": i}} for i in ids]
        out: dict[str, dict | None] = {}
        for attempt in range(max_attempts):
            try:
                resp = self._ddb.batch_get_item(RequestItems={self._table: {
                    "Keys": keys, "ConsistentRead": False,
                    "ProjectionExpression": "click_id, #status, claimed_at, expires_at",
                    "ExpressionAttributeNames": {"#status": "status"}}})
                for item in resp.get("Responses", {}).get(self._table, []):
                    out[item["click_id"]["S"]] = item
                unread = resp.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                unread_ids = {k["click_id"]["S"] for k in unread}
                for k in keys:  # answered and absent: no item
                    if k["click_id"]["S"] not in unread_ids:
                        out.setdefault(k["click_id"]["S"], None)
                keys = unread
            except (ClientError, BotoCoreError):
                pass  # retry the same keys
            if not keys:
                break
            self._backoff(attempt, max_attempts)
        return out

    def _backoff(self, attempt: int, max_attempts: int) -> None:
        """The wait before attempt `attempt` + 2 of a batch call; none after the last attempt
        (nothing follows it)."""
        if attempt + 1 < max_attempts:
            self._sleep(min(0.05 * 2**attempt, 1.0))

    def _release_one(self, rec: ClaimRecord) -> bool:
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key={"click_id": {"S": rec.click_id}},
                ConditionExpression="request_id = :rid AND #status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":rid": {"S": rec.request_id}, ":pending": {"S": PENDING}},
            )
            return True
        except ClientError as exc:
            # Condition failed = not our claim (never written, or taken over): nothing to undo.
            return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
        except BotoCoreError:  # no response after the SDK's retries: the claim may still be there
            return False

    def release(self, records: Iterable[ClaimRecord]) -> list[ClaimRecord]:
        """Undo claims whose clicks did not reach Kinesis. Returns the ones that could not be undone
        (they stay pending and are taken over after the lease). mark mode wrote nothing yet."""
        records = list(records)
        if self.mode == MARK:
            return []
        ok = list(self._pool.map(self._release_one, records))
        return [r for r, done in zip(records, ok) if not done]

    def confirm(self, records: list[ClaimRecord], max_attempts: int = 5) -> list[ClaimRecord]:
        """Mark claims committed (BatchWriteItem, 25 per call, concurrently; mark mode: the one
        write). Returns failures, which stay pending (mark: unwritten): a retry after the lease
        (mark: any retry) re-sends a click Kinesis already has, and the stream's and the batch
        job's click_id dedup drop that copy."""
        chunks = [records[i : i + 25] for i in range(0, len(records), 25)]
        failed = self._pool.map(lambda c: self._confirm_chunk(c, max_attempts), chunks)
        return [r for chunk in failed for r in chunk]

    def _confirm_chunk(self, chunk: list[ClaimRecord], max_attempts: int) -> list[ClaimRecord]:
        by_id = {r.click_id: r for r in chunk}
        requests = [{"PutRequest": {"Item": r.item(COMMITTED)}} for r in chunk]
        for attempt in range(max_attempts):
            try:
                resp = self._ddb.batch_write_item(RequestItems={self._table: requests})
                requests = resp.get("UnprocessedItems", {}).get(self._table, [])
            except (ClientError, BotoCoreError):
                pass  # retry the same requests
            if not requests:
                return []
            self._backoff(attempt, max_attempts)
        return [by_id[r["PutRequest"]["Item"]["click_id"]["S"]] for r in requests]
