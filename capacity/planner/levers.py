"""Cost levers: each setting applied alone to a base plan; what each dedup layer catches.
A setting the code does not implement (planner.implemented) is priced and labelled so."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capacity.planner.assumptions import SERVING_RESOLUTIONS
from capacity.planner.implemented import is_implemented
from capacity.planner.planning import plan

# What each dedup layer catches (docs and the lever table).
DEDUP_LAYERS = (
    ("ingest, per click (default)", "click_id, conditional PutItem", "dedup_ttl_s (24 h)",
     "client retries and re-sends of a click in any request and any batch composition (a copy "
     "in flight at once is told to retry); an SDK retry of a PutItem whose response was lost",
     "re-sends after 24 h; the copy re-sent after a failed confirm (after the 120 s lease)"),
    ("ingest, mark", "click_id, read before and write after the stream write",
     "dedup_ttl_s (24 h)",
     "client retries and re-sends of a click in any request and any batch composition, once "
     "the first copy's mark is written",
     "re-sends after 24 h; a copy in flight at the same moment as the first, or re-sent after "
     "a failed mark"),
    ("ingest, per request (Powertools Idempotency)", "request/batch id (header or body hash)",
     "idempotency TTL (1 h)", "a replay of the same whole request",
     "a click re-sent inside another request (re-batched retries, a client that lost the "
     "response and rebuilt its batch)"),
    ("Flink keep-first", "click_id, keyed state", "dedup_ttl_s of the job (30 min)",
     "every copy that reaches the stream within 30 min: mark's copies in flight at once, "
     "confirm-failure re-sends, what per-request idempotency lets through",
     "copies more than 30 min apart: the realtime view over-counts them until the batch"),
    ("nightly Glue batch", "click_id over the day's archive", "the billing day (+ cutoff)",
     "everything inside the billing day: billing is exact", "copies across days beyond the cutoff"),
)


@dataclass(frozen=True)
class LeverResult:
    lever: str
    setting: str
    is_base: bool
    monthly_usd: float
    usd_per_million: float
    delta_pct: float
    caveat: str
    implemented: bool = True  # False: modelled, not implemented (planner.implemented)


LEVERS: tuple[tuple[str, str, tuple[tuple[Any, str, str], ...]], ...] = (
    ("clicks per API request", "batch_size", (
        (1, "1", "one click per request (no SDK batching)"),
        (10, "10", ""),
        (50, "50", ""),
        (100, "100", ""),
        (500, "500", "the API's maximum batch; client-side latency up to the batch fill time"))),
    ("API type", "api", (
        ("rest", "REST", "API keys + usage plans, request validator, X-Ray"),
        ("http", "HTTP", "no API keys/usage plans (authorizer or WAF instead), no validator, no X-Ray"))),
    ("ingest dedup", "dedup", (
        ("per_click", "per click (claim + confirm)", "catches any re-sent click within 24 h at ingest"),
        ("mark", "per click, mark (read + 1 write)",
         "catches any re-sent click within 24 h at ingest once marked; copies in flight at once "
         "are left to Flink (30 min) and the nightly batch"),
        ("per_request", "per request (Powertools Idempotency)",
         "catches only whole-request replays; re-sent clicks rely on Flink (30 min) and the nightly batch"))),
    ("clicks per Kinesis record", "clicks_per_record", (
        (1, "1", ""),
        (4, "4 (~1 KB: the on-demand unit)", "KPL aggregation: Flink source and Firehose de-aggregate"),
        (20, "20 (~5 KB: the Firehose unit)", "KPL aggregation: Flink source and Firehose de-aggregate"))),
    ("mini-batch (emit) interval", "minibatch_ms", (
        (2000, "2 s", ""),
        (10000, "10 s", "dashboards update every 10 s"),
        (60000, "60 s", "dashboards update every minute"))),
    ("changelog -U rows (flink_changelog_mode)", "changelog_update_before", (
        (True, "-U + +U (retract)", "Flink's debezium-json as it comes: every update 2 rows"),
        (False, "+U only (upsert, the default)",
         "the job drops -U rows (DropUpdateBefore); the sink keeps the newest version per key; "
         "-D rows (leaderboard exits) stay"))),
    ("emitted series resolutions", "serving_resolutions", (
        (SERVING_RESOLUTIONS, "1m, 5m, 1h, 1d", ""),
        (("1m", "1h"), "1m, 1h (5m and 1d summed at query time)",
         "the query API sums 5 x 1m / 24 x 1h buckets"))),
    ("changelog rows per aggregates record", "changelog_rows_per_record", (
        (1, "1", ""),
        (50, "50", "the Flink sink packs rows; the sink Lambda unpacks"))),
    ("bytes per click on the stream", "click_bytes", (
        (200, "200 B (seed)", ""),
        (500, "500 B (encode_click with a browser user agent)", "sensitivity, not a lever"))),
    ("impressions per click", "impressions_per_click", (
        (0, "0 (clicks and conversions only)", "sensitivity, not a lever"),
        (10, "10", "issue 19: impressions are 10-100x the clicks"),
        (50, "50", ""),
        (100, "100", "sensitivity, not a lever"))),
    ("budget lane (docs/budget.md)", "budget_lane", (
        (True, "on (spend rows, pulse, pacing decisions)", ""),
        (False, "off", "no pacing decisions: budgets only capped by the nightly billing"))),
    ("budget emit interval", "budget_emit_interval_ms", (
        (500, "0.5 s", ""),
        (2000, "2 s", "the stop margin's unseen-spend window U grows by 1.5 s"),
        (10000, "10 s", "U grows by 9.5 s: campaigns stop earlier, further from their budget"))),
    ("pacing cache TTL", "pacing_cache_ttl_ms", (
        (1000, "1 s", ""),
        (5000, "5 s", "decisions up to 5 s old at the ad server; U grows by 4 s"))),
)


def compare_levers(**base: Any) -> list[LeverResult]:
    """Each lever setting applied alone to the base inputs (modes re-chosen per setting)."""
    reference = plan(**base)
    out = []
    for lever, param, settings in LEVERS:
        for value, label, caveat in settings:
            p = reference if base.get(param, _default(param)) == value else plan(**{**base, param: value})
            out.append(LeverResult(lever, label, p is reference, p.monthly_usd,
                                   p.usd_per_million_clicks,
                                   (p.monthly_usd / reference.monthly_usd - 1) * 100, caveat,
                                   is_implemented(param, value)))
    return out


def _default(param: str) -> Any:
    import inspect

    return inspect.signature(plan).parameters[param].default
