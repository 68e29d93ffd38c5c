"""The nightly billing's budgets (docs/budget.md, "Batch truth"): which daily budget applies to a
campaign's UTC day, read from the budgets table's history. Pure Python + boto3 (no Spark): the
selection is a plain function, tested on its own; transform.with_over_budget applies its result.

Budgets table (infra/constructs/budget_table.py), partition key `campaign_id`, sort key `sk`:
`h#<set_at, 13 digits>` items are every version ever set, with `daily` (N, micros), `life` (N,
optional), `pacing` (S), `rev` (N), `set_at` (N, ms), `by` (S). The `current` item is not read:
the history holds it too, and only the history says what was in force on a past day.

The budget of campaign-day D (UTC) is the version with the greatest set_at < D+1 00:00 (the last
set before the day's end; ties, which the table's keys cannot hold, by the greater revision). A
campaign with no version set before D's end has no budget on D: nothing of it is over budget.

Read on the driver (`read_history`): one paginated Scan with a filter on the sort key's `h#`
prefix (the table is small: a few items per campaign), consistent reads, through boto3 (so
AWS_ENDPOINT_URL reaches moto locally). A malformed history item fails the run rather than drop
a budget: billing without a campaign's cap would bill its excess clicks.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Iterable, Mapping, Optional

HISTORY_PREFIX = "h#"
PARTITION_KEY, SORT_KEY = "campaign_id", "sk"  # = infra/constructs/budget_table.py's
DAY_MS = 86_400_000


@dataclass(frozen=True)
class BudgetVersion:
    campaign_id: str
    daily_micros: int
    set_at_ms: int
    revision: int
    lifetime_micros: Optional[int] = None
    pacing: Optional[str] = None
    set_by: Optional[str] = None


def _number(item: Mapping, attr: str) -> Optional[int]:
    value = item.get(attr)
    if value is None or "NULL" in value:
        return None
    if "N" not in value:
        raise ValueError(f"{attr} is not a number: {value!r}")
    text = value["N"]
    number = int(text) if text.lstrip("-").isdigit() else None
    if number is None:
        raise ValueError(f"{attr} is not an integer: {text!r}")
    return number


def _text(item: Mapping, attr: str) -> Optional[str]:
    value = item.get(attr)
    return value["S"] if value and "S" in value else None


def parse_item(item: Mapping) -> BudgetVersion:
    """A history item (DynamoDB's typed attribute values) -> BudgetVersion. ValueError names the
    item's key when it is not a usable version (no daily budget, no time it was set)."""
    campaign, sk = _text(item, PARTITION_KEY), _text(item, SORT_KEY) or ""
    try:
        if not campaign or not sk.startswith(HISTORY_PREFIX):
            raise ValueError("not a budget history item")
        daily = _number(item, "daily")
        if daily is None:
            raise ValueError("no daily budget")
        set_at = _number(item, "set_at")
        if set_at is None:  # the sort key carries it too
            digits = sk[len(HISTORY_PREFIX):]
            if not digits.isdigit():
                raise ValueError("no set_at")
            set_at = int(digits)
        return BudgetVersion(campaign_id=campaign, daily_micros=daily, set_at_ms=set_at,
                             revision=_number(item, "rev") or 0, lifetime_micros=_number(item, "life"),
                             pacing=_text(item, "pacing"), set_by=_text(item, "by"))
    except ValueError as exc:
        raise ValueError(f"budget item campaign_id={campaign!r} sk={sk!r}: {exc}") from None


def read_history(table: str, client=None, page_size: Optional[int] = None) -> list[BudgetVersion]:
    """Every budget version in `table` (one paginated Scan, filtered to `h#` items; `page_size`:
    items read per request, default DynamoDB's 1 MB pages)."""
    if client is None:
        import boto3

        client = boto3.client("dynamodb")
    pages = client.get_paginator("scan").paginate(
        TableName=table, ConsistentRead=True,
        FilterExpression="begins_with(#sk, :history)",
        ExpressionAttributeNames={"#sk": SORT_KEY},
        ExpressionAttributeValues={":history": {"S": HISTORY_PREFIX}},
        **({"PaginationConfig": {"PageSize": page_size}} if page_size else {}))
    return [parse_item(item) for page in pages for item in page.get("Items", [])]


def day_end_ms(day: date) -> int:
    """D+1 00:00 UTC in epoch ms."""
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000) + DAY_MS


def budgets_for_day(history: Iterable[BudgetVersion], day: date) -> dict[str, BudgetVersion]:
    """{campaign_id: the version in force for campaign-day `day`}: per campaign, the version
    with the greatest set_at < the day's end (module doc). Campaigns without one are absent."""
    end = day_end_ms(day)
    chosen: dict[str, BudgetVersion] = {}
    for version in history:
        if version.set_at_ms >= end:
            continue
        best = chosen.get(version.campaign_id)
        if best is None or (version.set_at_ms, version.revision) > (best.set_at_ms, best.revision):
            chosen[version.campaign_id] = version
    return chosen
