"""POST /v1/reconcile?day=YYYY-MM-DD: which day to recompute, and whether it may be (pure).

A day is a UTC calendar day of event time. Refused (400): a missing or malformed day, a day
after today, a day older than the raw archive keeps in a directly readable class
(RECONCILE_MAX_AGE_DAYS, = the archive's cold-storage transition). Today is accepted but
reported as partial (so is yesterday before its cutoff): arrivals are not complete until the
day's end + the billing job's arrival cutoff.

`apply_corrections`: `true` or `false` (default; anything else is 400). `true` asks the
reconciliation to correct the day's realtime buckets to the batch truth if the day is flagged
(drift above the threshold; glue_jobs/corrections.py, docs/corrections.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Mapping

from common.schema import default
from query.windows import QueryError

DEFAULT_MAX_AGE_DAYS = default("archive_cold_after_days")  # the archive's cold transition
DEFAULT_CUTOFF_HOURS = default("billing_cutoff_hours")  # the billing job's arrival cutoff
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@dataclass(frozen=True)
class ReconcileRequest:
    day: date
    partial: bool  # now is before the day's end + the arrival cutoff: late arrivals may follow
    apply_corrections: bool = False


def parse_reconcile(params: Mapping[str, str], now: datetime,
                    max_age_days: int = DEFAULT_MAX_AGE_DAYS,
                    cutoff_hours: int = DEFAULT_CUTOFF_HOURS) -> ReconcileRequest:
    """`now`: an aware datetime (UTC)."""
    today = now.astimezone(timezone.utc).date()
    unknown = sorted(set(params) - {"day", "apply_corrections"})
    if unknown:
        raise QueryError(f"unknown parameter(s) {', '.join(unknown)}: /v1/reconcile takes day, "
                         "apply_corrections")
    corrections = params.get("apply_corrections")
    if corrections is not None and corrections not in ("true", "false"):
        raise QueryError(f"'apply_corrections' must be true or false, got {corrections[:32]!r}")
    raw = (params.get("day") or "").strip()
    if not raw:
        raise QueryError("'day' is required: the UTC day to recompute, as YYYY-MM-DD")
    if not _DAY.fullmatch(raw):
        raise QueryError(f"'day' must be YYYY-MM-DD, got {raw[:32]!r}")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise QueryError(f"'day' is not a calendar date: {raw!r}") from None
    if day > today:
        raise QueryError(f"'day' {day} is in the future (today is {today} UTC)")
    if day < today - timedelta(days=max_age_days):
        raise QueryError(f"'day' {day} is older than {max_age_days} days: its raw archive is in "
                         "cold storage; restore it, then run glue_jobs/backfill.py")
    complete_at = datetime.combine(day + timedelta(days=1), time(), timezone.utc) + timedelta(hours=cutoff_hours)
    return ReconcileRequest(day, partial=now < complete_at, apply_corrections=corrections == "true")
