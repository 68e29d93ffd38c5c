"""Campaign budgets (docs/budget.md): the PUT body's rules, the budgets table's items and the
JSON answers of the budget routes. Pure: the DynamoDB edge is query.budget.store.

Items (table `<prefix>-budgets`, keys campaign_id / sk): `sk = current` is the budget in force,
`sk = h#<set_at, 13 digits>#<revision>` every version ever set, `sk = stop#<YYYY-MM-DD>` a stop for
exhaustion that day (attribute rev: the budget revision it was made under) (the nightly billing applies to a day the
last version set before its end). Attributes: daily, life (absent: no lifetime budget), pacing,
rev, set_at (ms), by (the caller's IAM ARN).
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from query.pacing import PACING_MODES, EVEN, Budget, Decision
from query.windows import QueryError, iso, parse_id

CURRENT = "current"
HISTORY_PREFIX = "h#"
STOP_PREFIX = "stop#"
MAX_MICROS = 10 ** 15  # a billion currency units: beyond it is a typo, not a budget
FIELDS = ("daily_budget_micros", "lifetime_budget_micros", "pacing")
MAX_BATCH = 100  # campaign ids per POST /v1/pacing


def stop_sk(day_start_ms: int) -> str:
    """The item recording that the campaign was stopped for exhaustion on that UTC day (its
    attribute `rev`: the budget revision then); query.pacing holds the stop for the day."""
    return f"{STOP_PREFIX}{iso(day_start_ms)[:10]}"


def history_sk(set_at_ms: int, revision: int) -> str:
    """Sorts by time; the revision keeps two versions set in one millisecond apart."""
    return f"{HISTORY_PREFIX}{set_at_ms:013d}#{revision}"


def _micros(body: Mapping[str, Any], name: str, required: bool) -> Optional[int]:
    value = body.get(name)
    if value is None:
        if required:
            raise QueryError(f"'{name}' is required (integer micros, 1 currency unit = 1000000)")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise QueryError(f"'{name}' must be an integer number of micros, got {json.dumps(value)[:40]}")
    if not 1 <= value <= MAX_MICROS:
        raise QueryError(f"'{name}' must be within 1..{MAX_MICROS}, got {value}")
    return value


def parse_budget_body(campaign_id: str, raw: Optional[str], now_ms: int, caller: str,
                      revision: int) -> Budget:
    """The PUT body as the next version (`revision`) of the campaign's budget, or QueryError."""
    if raw is None or not raw.strip():
        raise QueryError("a JSON body is required: {\"daily_budget_micros\": <int>, ...}")
    try:
        body = json.loads(raw)
    except ValueError:
        raise QueryError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise QueryError("the body must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise QueryError(f"unknown fields {unknown}; known: {', '.join(FIELDS)}")
    daily = _micros(body, "daily_budget_micros", True)
    lifetime = _micros(body, "lifetime_budget_micros", False)
    if lifetime is not None and lifetime < daily:
        raise QueryError(f"'lifetime_budget_micros' ({lifetime}) must be >= "
                         f"'daily_budget_micros' ({daily})")
    pacing = body.get("pacing", EVEN)
    if pacing not in PACING_MODES:
        raise QueryError(f"'pacing' must be one of {', '.join(PACING_MODES)}, got {json.dumps(pacing)[:40]}")
    return Budget(campaign_id, daily, lifetime, pacing, revision, now_ms, caller)


def budget_item(budget: Budget, sk: str) -> dict:
    item = {"campaign_id": {"S": budget.campaign_id}, "sk": {"S": sk},
            "daily": {"N": str(budget.daily_micros)}, "pacing": {"S": budget.pacing},
            "rev": {"N": str(budget.revision)}, "set_at": {"N": str(budget.set_at_ms)},
            "by": {"S": budget.set_by}}
    if budget.lifetime_micros is not None:
        item["life"] = {"N": str(budget.lifetime_micros)}
    return item


def budget_of(item: Optional[dict]) -> Optional[Budget]:
    if not item:
        return None
    life = item.get("life")
    return Budget(item["campaign_id"]["S"], int(item["daily"]["N"]),
                  int(life["N"]) if life else None, item.get("pacing", {}).get("S", EVEN),
                  int(item["rev"]["N"]), int(item["set_at"]["N"]), item.get("by", {}).get("S", ""))


def budget_json(budget: Budget) -> dict:
    return {"campaign_id": budget.campaign_id, "daily_budget_micros": budget.daily_micros,
            "lifetime_budget_micros": budget.lifetime_micros, "pacing": budget.pacing,
            "revision": budget.revision, "set_at": iso(budget.set_at_ms), "set_by": budget.set_by}


def decision_json(d: Decision, now_ms: int, policy) -> dict:
    b = d.budget
    return {
        "campaign_id": d.campaign_id, "decision": d.decision, "serve_fraction": d.serve_fraction,
        "reason": d.reason, "day": iso(d.day_start_ms)[:10],
        "daily_budget_micros": b.daily_micros if b else None,
        "lifetime_budget_micros": b.lifetime_micros if b else None,
        "pacing": b.pacing if b else None,
        "spent_today_micros": d.spent_today_micros, "remaining_micros": d.remaining_micros,
        "lifetime_spent_micros": d.lifetime_spent_micros,
        "planned_spend_micros": d.planned_spend_micros,
        "velocity_micros_per_s": d.velocity_micros_per_s, "margin_micros": d.margin_micros,
        "projected_exhaustion": None if d.projected_exhaustion_ms is None else iso(d.projected_exhaustion_ms),
        "figure_age_ms": d.figure_age_ms, "stale_after_ms": policy.stale_after_ms,
        "valid_for_ms": policy.cache_ttl_ms, "as_of": iso(now_ms),
    }


def parse_batch_body(raw: Optional[str]) -> list[str]:
    """POST /v1/pacing's `campaign_ids`: 1..MAX_BATCH distinct valid ids, in the caller's order."""
    try:
        body = json.loads(raw or "")
    except ValueError:
        raise QueryError("the body is not JSON: {\"campaign_ids\": [...]}") from None
    ids = body.get("campaign_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids:
        raise QueryError("'campaign_ids' must be a non-empty list of campaign ids")
    if len(ids) > MAX_BATCH:
        raise QueryError(f"at most {MAX_BATCH} campaign ids per request, got {len(ids)}")
    for cid in ids:
        if not isinstance(cid, str):
            raise QueryError("'campaign_ids' must be strings")
        parse_id("campaign_id", cid, required=True)
    if len(set(ids)) != len(ids):
        raise QueryError("'campaign_ids' has duplicates")
    return ids
