"""Brute-force ground truth from the load generator's clicks: what the realtime view must show.

Written independently of the engines under test (the Flink SQL, the Glue job): plain loops over
the distinct clicks. The IVT verdict of each click is `common.ivt.evaluate`'s, the normative
reference the engines are specified against (a pure function over the clicks, sharing no code
with either engine); the generator's own labels of what it built (tools.loadgen.EXPECTED_REASONS)
are checked against it in tests/unit/test_loadgen_ivt.py, so the two derivations agree.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from typing import Iterable, Optional

from common import ivt

# Its own copy of common.times.RESOLUTIONS on purpose: an oracle shares no code with what it checks.
RES_MS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000}
# the serving rows' metrics (billable = verdict valid; clicks = billable + suspect + invalid)
METRICS = ("clicks", "billable_clicks", "suspect_clicks", "invalid_clicks", "cost_micros",
           "billable_cost_micros")


def cost_micros(click: dict) -> int:
    return int(Decimal(str(click["cost"])) * 1_000_000) if "cost" in click else click["cost_micros"]


def click_verdicts(clicks: Iterable[dict], repeat_window_s: int = 10, *,
                   tokens: bool = True) -> dict[str, ivt.Verdict]:
    """click_id -> Verdict over these distinct clicks (every click of each group must be there).
    `tokens`: ingest stores the token's impression_id and issued_at (click_token_mode enforce);
    with off / observe it does not, so impression_repeat and too_fast cannot fire. A click's
    ingest_time is the generator's construction value (tools.loadgen: `ingest_time`), none for
    hand-made clicks without one."""
    rows = []
    for c in clicks:
        if c["event_time"] is None:
            raise ValueError(f"{c['click_id']}: no event time (a link click not settled: Load.settle_links)")
        rows.append({"click_id": c["click_id"], "ad_id": c["ad_id"], "user_id": c.get("user_id"),
                     "event_time": c["event_time"], "ip": c.get("ip"), "user_agent": c.get("user_agent"),
                     "ingest_time": c.get("ingest_time"),
                     "impression_id": c.get("impression_id") if tokens else None,
                     "issued_at": c.get("issued_at") if tokens else None})
    return ivt.evaluate(rows, ivt.IvtConfig(user_repeat_window_ms=repeat_window_s * 1000),
                        bots=_MemoBots(ivt.default_bot_matcher()))


class _MemoBots:
    """The crawler matcher, remembering each user agent's answer (a load has few distinct ones;
    ivt.evaluate's own cache matches again on every click: `seen.setdefault(ua, matches(ua))`
    evaluates its argument each time)."""

    def __init__(self, bots: ivt.BotMatcher):
        self._bots, self._seen = bots, {}

    def matches(self, user_agent) -> bool:
        if user_agent not in self._seen:
            self._seen[user_agent] = self._bots.matches(user_agent)
        return self._seen[user_agent]


def realtime_truth(clicks: list[dict], excluded_ids: set[str], repeat_window_s: int = 10, *,
                   tokens: bool = True, verdicts: Optional[dict[str, ivt.Verdict]] = None) -> dict:
    """{(ad_id, resolution, bucket_start): {METRICS}} of the distinct clicks not in
    `excluded_ids` (those later than the lateness horizon). Verdicts are evaluated over all
    `clicks` (excluded ones included: they still belong to their groups), or taken from
    `verdicts` (e.g. evaluated over a whole load when `clicks` is one day of it)."""
    if verdicts is None:
        verdicts = click_verdicts(clicks, repeat_window_s, tokens=tokens)
    out: dict = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    for c in clicks:
        if c["click_id"] in excluded_ids:
            continue
        cost, verdict = cost_micros(c), verdicts[c["click_id"]].verdict
        for res, span in RES_MS.items():
            row = out[(c["ad_id"], res, c["event_time"] - c["event_time"] % span)]
            row["clicks"] += 1
            row["cost_micros"] += cost
            if verdict == ivt.VALID:
                row["billable_clicks"] += 1
                row["billable_cost_micros"] += cost
            elif verdict == ivt.SUSPECT:
                row["suspect_clicks"] += 1
            else:
                row["invalid_clicks"] += 1
    return dict(out)


def verdict_totals(clicks: Iterable[dict], verdicts: dict[str, ivt.Verdict],
                   excluded_ids: Iterable[str] = ()) -> tuple[Counter, Counter]:
    """(clicks per verdict, clicks per reason code) of these clicks; a click with two reasons
    counts under both."""
    excluded = set(excluded_ids)
    per_verdict, per_reason = Counter(), Counter()
    for c in clicks:
        if c["click_id"] in excluded:
            continue
        v = verdicts[c["click_id"]]
        per_verdict[v.verdict] += 1
        per_reason.update(v.reasons)
    return per_verdict, per_reason


def totals(truth: dict, resolution: str = "1d") -> dict[str, int]:
    """Every metric summed over the rows of one resolution of a realtime_truth."""
    out = dict.fromkeys(METRICS, 0)
    for (_, res, _), row in truth.items():
        if res == resolution:
            for m in METRICS:
                out[m] += row[m]
    return out
