"""Analysts' named queries over the raw archive and the nightly billing's outputs, in the common
subset of Athena (Trino) and DuckDB SQL; they run on Athena in AWS (infra registers them as
named queries) and on DuckDB locally, where they are tested.

The reports (CTR, conversions) read the billing tables (glue_jobs/billing/outputs.py): the
billed numbers, one row per campaign and UTC day (`dt`, the event day), clicks = billable
clicks (valid, and within the campaign's daily budget: docs/budget.md, "Batch truth"),
conversions = attributed ones (docs/events.md, "Billing and attribution"). Their window is N
whole days before today (today is not billed yet).

Dialect notes (why the SQL looks the way it does):
- No `now()`/interval arithmetic (Trino `now() - INTERVAL '2' HOUR` vs DuckDB differ in types):
  the window is passed as `?` parameters (epoch ms, dt strings) - Athena ExecutionParameters,
  DuckDB prepared-statement parameters - so the saved text is byte-identical in both. Only
  LIMIT is rendered into the text (a validated integer), as Trino does not take `LIMIT ?`.
- `/` on two integers is integer division in Trino but floating-point in DuckDB: every
  division uses a decimal literal (`/ 60000.0`) and `floor`, identical in both.
- Dates are compared as the `dt` partition strings ('YYYY-MM-DD'), which both order lexically.
- The archive is at-least-once (a retried Firehose delivery or a re-sent click repeats a
  record): counts are `COUNT(DISTINCT click_id)` / computed over `SELECT DISTINCT` rows.
- Ratios: `CAST(x AS DOUBLE) / y` (a double in both), NULL where the denominator is 0. Two
  tables are combined by UNION ALL of zero-padded rows and one GROUP BY (no FULL JOIN: a
  campaign-day may be in either table only).
- Arrays are unnested only when they hold scalars (`CROSS JOIN UNNEST(a) AS u(x)`): Trino spreads
  an array of structs over several columns, DuckDB keeps one struct column. The refused-items
  table carries its reasons flat for that (common.refused, `reason_codes`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from common import refused
from common.times import DAY_MS, HOUR_MS

TABLE = "raw_clicks"
BILLING_HOURLY, BILLING_EVENTS_HOURLY = "billing_hourly", "billing_events_hourly"  # billing's tables
BILLING_CAMPAIGN_SPEND = "billing_campaign_spend"  # per campaign-day: budget, valid and billed cost


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str  # `?` placeholders + `{k}` (validated int) only
    params: dict[str, int]  # user parameter -> default
    binds: tuple[str, ...]  # what each `?` is, in order: dt_from | since_ms | until_ms | day_from | day_until
    table: str = TABLE  # the Glue table `{table}` stands for (raw_clicks | refused_clicks | billing_*)
    joins: tuple[str, ...] = ()  # the other Glue tables its text names
    unit_ms: int = HOUR_MS  # what `n` counts: hours, or days (the billing reports)

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.table, *self.joins)


def _per_campaign_day(columns: str, events: str, clicks: str) -> str:
    """SQL of a report per campaign and billed day: `events` / `clicks` are the select lists
    (campaign_id, dt, then the value columns, zero-padded alike) of billing_events_hourly and
    billing_hourly in the window; `columns` the report's columns over their sums."""
    return (f"SELECT campaign_id, dt AS day, {columns}\n"
            f"FROM (SELECT campaign_id, dt, {events}\n"
            f"      FROM {{table}} WHERE dt >= ? AND dt < ?\n"
            f"      UNION ALL\n"
            f"      SELECT campaign_id, dt, {clicks}\n"
            f"      FROM {BILLING_HOURLY} WHERE dt >= ? AND dt < ?) AS u\n"
            "GROUP BY campaign_id, dt\nORDER BY day, campaign_id")


_ZERO = "CAST(0 AS BIGINT)"


NAMED_QUERIES = {q.name: q for q in (
    NamedQuery(
        "top_k_last_n_hours", "Top K ads by distinct clicks with event time in the last N hours",
        "SELECT ad_id, COUNT(DISTINCT click_id) AS clicks\n"
        "FROM {table}\n"
        "WHERE dt >= ? AND event_time >= ? AND event_time < ?\n"
        "GROUP BY ad_id\nORDER BY clicks DESC, ad_id\nLIMIT {k}",
        {"n": 1, "k": 10}, ("dt_from", "since_ms", "until_ms"),
    ),
    NamedQuery(
        "clicks_per_advertiser_per_day", "Distinct clicks and cost (micros) per advertiser per UTC event day",
        "SELECT advertiser_id, CAST(floor(event_time / 86400000.0) AS BIGINT) * 86400000 AS day_start_ms,\n"
        "       COUNT(*) AS clicks, SUM(cost_micros) AS cost_micros\n"
        "FROM (SELECT DISTINCT click_id, advertiser_id, event_time, cost_micros FROM {table}\n"
        "      WHERE dt >= ? AND event_time >= ? AND event_time < ?) AS c\n"
        "GROUP BY 1, 2\nORDER BY day_start_ms, advertiser_id",
        {"n": 24}, ("dt_from", "since_ms", "until_ms"),
    ),
    NamedQuery(
        "duplicate_rate_per_hour", "Records vs distinct clicks per arrival hour (copies that reached the archive)",
        "SELECT dt, hr, COUNT(*) AS records, COUNT(DISTINCT click_id) AS distinct_clicks,\n"
        "       COUNT(*) - COUNT(DISTINCT click_id) AS duplicate_records\n"
        "FROM {table}\nWHERE dt >= ?\nGROUP BY dt, hr\nORDER BY dt, hr",
        {"n": 24}, ("dt_from",),
    ),
    NamedQuery(
        "late_arrival_distribution", "How long after their event time clicks arrived at ingest",
        "SELECT CASE WHEN lag_ms < 60000 THEN '0-1m' WHEN lag_ms < 300000 THEN '1-5m'\n"
        "            WHEN lag_ms < 900000 THEN '5-15m' WHEN lag_ms < 3600000 THEN '15-60m'\n"
        "            ELSE '60m+' END AS lateness, COUNT(*) AS clicks, MIN(lag_ms) AS min_lag_ms\n"
        "FROM (SELECT DISTINCT click_id, ingest_time - event_time AS lag_ms FROM {table}\n"
        "      WHERE dt >= ?) AS c\n"
        "GROUP BY 1\nORDER BY min_lag_ms",
        {"n": 24}, ("dt_from",),
    ),
    NamedQuery(
        "refused_clicks_by_reason",
        "Items refused at ingest in the last N hours per arrival day, route, field and reason "
        "code (an item with several reasons counts under each)",
        "SELECT dt, route, split_part(code, ':', 1) AS field, split_part(code, ':', 2) AS reason,\n"
        "       COUNT(DISTINCT request_id || '#' || COALESCE(CAST(item_index AS VARCHAR), '-')) AS items,\n"
        "       COUNT(DISTINCT request_id) AS requests, COUNT(DISTINCT source_ip) AS source_ips,\n"
        "       MIN(refused_at) AS first_refused_ms, MAX(refused_at) AS last_refused_ms\n"
        "FROM {table} CROSS JOIN UNNEST(reason_codes) AS u(code)\n"
        "WHERE dt >= ? AND refused_at >= ? AND refused_at < ?\n"
        "GROUP BY 1, 2, 3, 4\nORDER BY dt, items DESC, route, field, reason",
        {"n": 24}, ("dt_from", "since_ms", "until_ms"), refused.TABLE,
    ),
    NamedQuery(
        "ctr_per_campaign_per_day",
        "Billed impressions, clicks (billable) and CTR per campaign and UTC day, last N days",
        _per_campaign_day(
            "SUM(impressions) AS impressions, SUM(clicks) AS clicks,\n"
            "       CASE WHEN SUM(impressions) > 0 THEN CAST(SUM(clicks) AS DOUBLE) / SUM(impressions) END AS ctr",
            f"impressions, {_ZERO} AS clicks", f"{_ZERO}, billable_clicks"),
        {"n": 7}, ("day_from", "day_until", "day_from", "day_until"), BILLING_EVENTS_HOURLY,
        (BILLING_HOURLY,), DAY_MS,
    ),
    NamedQuery(
        "conversions_per_campaign_per_day",
        "Attributed conversions, their value, billable clicks and cost, CVR, CPA (micros) and "
        "ROAS per campaign and UTC day, last N days",
        _per_campaign_day(
            "SUM(conversions) AS conversions, SUM(value_micros) AS conversion_value_micros,\n"
            "       SUM(clicks) AS clicks, SUM(cost_micros) AS cost_micros,\n"
            "       CASE WHEN SUM(clicks) > 0 THEN CAST(SUM(conversions) AS DOUBLE) / SUM(clicks) END AS cvr,\n"
            "       CASE WHEN SUM(conversions) > 0 THEN CAST(SUM(cost_micros) AS DOUBLE) / SUM(conversions) END"
            " AS cpa_micros,\n"
            "       CASE WHEN SUM(cost_micros) > 0 THEN CAST(SUM(value_micros) AS DOUBLE) / SUM(cost_micros) END"
            " AS roas",
            f"attributed_conversions AS conversions, attributed_value_micros AS value_micros, {_ZERO} AS clicks,"
            f" {_ZERO} AS cost_micros",
            f"{_ZERO}, {_ZERO}, billable_clicks, billable_cost_micros"),
        {"n": 7}, ("day_from", "day_until", "day_from", "day_until"), BILLING_EVENTS_HOURLY,
        (BILLING_HOURLY,), DAY_MS,
    ),
    NamedQuery(
        "spend_vs_budget_per_campaign_per_day",
        "Daily budget, valid (uncapped) and billed cost (micros), billed and over-budget clicks "
        "and the budget's share billed per campaign and UTC day, last N days (docs/budget.md)",
        # a campaign whose clicks name several advertisers has a row per advertiser, each with the
        # campaign's budget: MAX, not SUM, of it
        "SELECT campaign_id, dt AS day, MAX(budget_micros) AS budget_micros,\n"
        "       SUM(valid_cost_micros) AS valid_cost_micros, SUM(billed_cost_micros) AS billed_cost_micros,\n"
        "       SUM(billed_clicks) AS billed_clicks, SUM(over_budget_clicks) AS over_budget_clicks,\n"
        "       SUM(over_budget_cost_micros) AS over_budget_cost_micros,\n"
        "       CASE WHEN MAX(budget_micros) > 0 THEN CAST(SUM(billed_cost_micros) AS DOUBLE) / MAX(budget_micros) END"
        " AS budget_used\n"
        "FROM {table}\nWHERE dt >= ? AND dt < ?\n"
        "GROUP BY campaign_id, dt\nORDER BY day, campaign_id",
        {"n": 7}, ("day_from", "day_until"), BILLING_CAMPAIGN_SPEND, (), DAY_MS,
    ),
)}


def render(name: str, params: dict[str, str] | None = None, now_ms: int | None = None,
           table: str | None = None) -> tuple[str, list]:
    """(SQL text, bind values) for a named query. User parameters must be integers (no free
    text reaches the SQL); the window ends now and starts n hours (the reports: n days)
    earlier; the reports' days are [today - n, today) (UTC)."""
    if name not in NAMED_QUERIES:
        raise ValueError(f"unknown named query {name!r}; known: {', '.join(sorted(NAMED_QUERIES))}")
    query = NAMED_QUERIES[name]
    values = dict(query.params)
    for key, raw in (params or {}).items():
        if key not in query.params:
            raise ValueError(f"{name} takes parameters {sorted(query.params)}, not {key!r}")
        if not str(raw).isdigit() or not 1 <= int(raw) <= 100_000:
            raise ValueError(f"parameter {key} must be an integer between 1 and 100000, got {raw!r}")
        values[key] = int(raw)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    since_ms = now_ms - values["n"] * query.unit_ms
    # arrival >= event time - 5 min clock skew; one more hour of margin for partition pruning
    dt_from = datetime.fromtimestamp((since_ms - 3_900_000) / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
    bind_values = {"dt_from": dt_from, "since_ms": since_ms, "until_ms": now_ms + 1,
                   "day_from": _day(since_ms), "day_until": _day(now_ms)}
    sql = query.sql.format(table=table or query.table, k=values.get("k", 10))
    return sql, [bind_values[b] for b in query.binds]


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms // DAY_MS * DAY_MS / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def athena_parameters(binds: list) -> list[str]:
    """Athena ExecutionParameters are SQL literals: strings quoted, numbers as digits."""
    return [f"'{b}'" if isinstance(b, str) else str(int(b)) for b in binds]
