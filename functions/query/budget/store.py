"""The budget lane's DynamoDB edge (docs/budget.md): budgets in the budgets table, and the
figures a pacing decision needs from the serving table, read in as few requests as DynamoDB
allows and kept in memory for `pacing_cache_ttl_ms`.

A campaign's figures are one BatchGetItem (with others: 100 keys per request): its budget and
today's stop record if any (strongly consistent: a PUT takes effect at once, within this cache),
its spend today and the spend of the last 7 minutes; the pulse is read once per cache period for all campaigns (one item
every decision needs: read per container, not per campaign). A lifetime budget adds one Query
of the campaign's daily spend items.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import boto3
from botocore.exceptions import ClientError

from common.config import BudgetSettings, ServingSettings
from common.times import DAY_MS, MINUTE_MS, floor_to
from query.budgets import CURRENT, budget_item, budget_of, history_sk, stop_sk
from query.pacing import VELOCITY_MINUTES, Budget, SpendFigures
from serving.keys import PULSE_ATTR, PULSE_KEY, series_key, series_pk, ts
from serving.table import RequestCounter, num, query_pages

BATCH_KEYS = 100  # BatchGetItem's limit
MINUTES_READ = VELOCITY_MINUTES + 1  # the figure's minute may be the one before now's
UNPROCESSED_RETRIES = 5


class BudgetConflict(Exception):
    """The campaign's budget changed between reading its revision and writing the next."""


@dataclass(frozen=True)
class _Cached:
    fetched_ms: int
    budget: Optional[Budget]
    figures: SpendFigures  # without the pulse (cached on its own)


class BudgetStore:
    def __init__(self, client, budgets_table: str, serving_table: str, cache_ttl_ms: int = 1_000,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)):
        self._ddb, self._budgets, self._serving = client, budgets_table, serving_table
        self._ttl, self._clock = cache_ttl_ms, clock_ms
        self._cache: dict[str, _Cached] = {}
        self._pulse: Optional[tuple[int, Optional[int]]] = None  # (fetched, pulse ms)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="budget")

    @classmethod
    def from_env(cls) -> "BudgetStore":
        budget = BudgetSettings.from_env()
        serving = ServingSettings.from_env()
        return cls(boto3.client("dynamodb"), budget.budgets_table, serving.require("serving_table"),
                   budget.pacing_cache_ttl_ms)

    # --- budgets ------------------------------------------------------------------------
    def get_budget(self, campaign_id: str, counter: Optional[RequestCounter] = None) -> Optional[Budget]:
        item = self._ddb.get_item(TableName=self._budgets, ConsistentRead=True,
                                  Key=_budget_key(campaign_id)).get("Item")
        if counter:
            counter.add()
        return budget_of(item)

    def put_budget(self, budget: Budget) -> Budget:
        """Write `budget` as the campaign's current version and into its history, atomically;
        BudgetConflict when the current revision is no longer budget.revision - 1."""
        if budget.revision > 1:
            condition = {"ConditionExpression": "rev = :prev",
                         "ExpressionAttributeValues": {":prev": {"N": str(budget.revision - 1)}}}
        else:
            condition = {"ConditionExpression": "attribute_not_exists(campaign_id)"}
        try:
            self._ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": self._budgets, "Item": budget_item(budget, CURRENT), **condition}},
                {"Put": {"TableName": self._budgets,
                         "Item": budget_item(budget, history_sk(budget.set_at_ms, budget.revision)),
                         "ConditionExpression": "attribute_not_exists(campaign_id)"}},
            ])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise BudgetConflict(budget.campaign_id) from None
            raise
        with self._lock:
            self._cache.pop(budget.campaign_id, None)  # this container sees its own write at once
        return budget

    # --- pacing figures -----------------------------------------------------------------
    def figures(self, campaign_ids: Iterable[str], now_ms: int,
                counter: Optional[RequestCounter] = None
                ) -> dict[str, tuple[Optional[Budget], SpendFigures]]:
        """Per campaign: its budget and spend figures (cached up to the TTL), the pulse as of now."""
        ids = list(campaign_ids)
        day = floor_to(now_ms, DAY_MS)
        with self._lock:
            fresh = {c: e for c in ids if (e := self._cache.get(c)) is not None
                     and now_ms - e.fetched_ms < self._ttl and e.figures.day_start_ms == day}
            pulse_due = self._pulse is None or now_ms - self._pulse[0] >= self._ttl
        missing = [c for c in ids if c not in fresh]
        fetched, pulse = self._fetch(missing, now_ms, pulse_due, counter) if missing or pulse_due \
            else ({}, None)
        with self._lock:
            self._cache.update(fetched)
            if pulse_due:
                self._pulse = (now_ms, pulse)
            pulse_ms = self._pulse[1]
            entries = {**fresh, **fetched}
        return {c: (entries[c].budget, _with_pulse(entries[c].figures, pulse_ms)) for c in ids}

    def record_stop(self, campaign_id: str, day_start_ms: int, revision: int) -> None:
        """Hold a stop for exhaustion for the rest of the UTC day (query.pacing), under the
        budget revision it was made for; this container's cache learns it at once. Idempotent:
        one item per campaign-day, rewritten only by a newer revision."""
        try:
            self._ddb.put_item(
                TableName=self._budgets,
                Item={**_budget_key(campaign_id, stop_sk(day_start_ms)), "rev": {"N": str(revision)}},
                ConditionExpression="attribute_not_exists(campaign_id) OR rev < :rev",
                ExpressionAttributeValues={":rev": {"N": str(revision)}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        with self._lock:
            cached = self._cache.get(campaign_id)
            if cached is not None and cached.figures.day_start_ms == day_start_ms:
                f = cached.figures
                self._cache[campaign_id] = _Cached(cached.fetched_ms, cached.budget, SpendFigures(
                    f.day_start_ms, f.spent_today_micros, f.minute_spend, f.lifetime_spent_micros,
                    stopped_revision=revision))

    def _fetch(self, ids: list[str], now_ms: int, with_pulse: bool,
               counter: Optional[RequestCounter]) -> tuple[dict[str, _Cached], Optional[int]]:
        day = floor_to(now_ms, DAY_MS)
        minutes = [floor_to(now_ms, MINUTE_MS) - i * MINUTE_MS for i in range(MINUTES_READ)]
        wanted: list[tuple[str, dict]] = [(self._serving, _key(PULSE_KEY))] if with_pulse else []
        for c in ids:
            wanted.append((self._budgets, _budget_key(c)))
            wanted.append((self._budgets, _budget_key(c, stop_sk(day))))
            wanted.append((self._serving, _key(series_key(c, "1d", day, "spend"))))
            wanted += [(self._serving, _key(series_key(c, "1m", m, "spend"))) for m in minutes]
        chunks = [wanted[i:i + BATCH_KEYS] for i in range(0, len(wanted), BATCH_KEYS)]
        items: dict[tuple[str, str, str], dict] = {}
        for got in self._pool.map(lambda chunk: self._batch_get(chunk, counter), chunks):
            items.update(got)
        pulse = items.get((self._serving, PULSE_KEY["pk"], PULSE_KEY["sk"]))
        out: dict[str, _Cached] = {}
        for c in ids:
            budget = budget_of(items.get((self._budgets, c, CURRENT)))
            day_item = items.get((self._serving, series_pk(c, "1d", "spend"), ts(day)))
            minute_spend = {m: num(it, "bk") for m in minutes
                            if (it := items.get((self._serving, series_pk(c, "1m", "spend"), ts(m))))}
            lifetime = (self._lifetime_spend(c, counter)
                        if budget is not None and budget.lifetime_micros is not None else None)
            stopped = items.get((self._budgets, c, stop_sk(day)))
            out[c] = _Cached(now_ms, budget, SpendFigures(
                day, num(day_item, "bk") if day_item else 0, minute_spend, lifetime,
                stopped_revision=num(stopped, "rev") if stopped else None))
        return out, (num(pulse, PULSE_ATTR) if pulse else None)

    def _batch_get(self, keys: list[tuple[str, dict]],
                   counter: Optional[RequestCounter]) -> dict[tuple[str, str, str], dict]:
        """One BatchGetItem (<= 100 keys) and its unprocessed keys until none are left.
        Hand-written: boto3 retries throttled requests, not the keys a 200 answer leaves out."""
        request: dict = {}
        for table, key in keys:
            entry = request.setdefault(table, {"Keys": []})
            entry["Keys"].append(key)
            if table == self._budgets:
                entry["ConsistentRead"] = True
        found: dict[tuple[str, str, str], dict] = {}
        for attempt in range(UNPROCESSED_RETRIES + 1):
            response = self._ddb.batch_get_item(RequestItems=request)
            if counter:
                counter.add()
            for table, table_items in response.get("Responses", {}).items():
                for item in table_items:
                    found[_identity(table, item, self._budgets)] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
        raise RuntimeError(f"BatchGetItem left keys unprocessed after {UNPROCESSED_RETRIES} retries")

    def _lifetime_spend(self, campaign_id: str, counter: Optional[RequestCounter]) -> int:
        pages = query_pages(self._ddb, counter, TableName=self._serving,
                            KeyConditionExpression="pk = :pk",
                            ExpressionAttributeValues={":pk": {"S": series_pk(campaign_id, "1d", "spend")}},
                            ProjectionExpression="bk")
        return sum(num(item, "bk") for page in pages for item in page.get("Items", []))


def _key(key: dict[str, str]) -> dict:
    return {k: {"S": v} for k, v in key.items()}


def _budget_key(campaign_id: str, sk: str = CURRENT) -> dict:
    return {"campaign_id": {"S": campaign_id}, "sk": {"S": sk}}


def _identity(table: str, item: dict, budgets_table: str) -> tuple[str, str, str]:
    if table == budgets_table:
        return table, item["campaign_id"]["S"], item["sk"]["S"]
    return table, item["pk"]["S"], item["sk"]["S"]


def _with_pulse(figures: SpendFigures, pulse_ms: Optional[int]) -> SpendFigures:
    return SpendFigures(figures.day_start_ms, figures.spent_today_micros, figures.minute_spend,
                        figures.lifetime_spent_micros, pulse_ms, figures.stopped_revision)
