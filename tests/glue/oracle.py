"""Independent oracle for the billing job: plain Python over the generated rows, written from the
rules (glue_jobs/billing/transform.py docstring), sharing no code with the Spark job. The
verdicts come from common/ivt.py's `evaluate` (the pure-Python reference of the IVT rules, an
implementation of its own); what it is given - which partitions, which copy of a click, which
clicks - and the diagnostics are computed here.

Input: every generated archive row with the arrival time that decides its partition; for the
budgets (docs/budget.md "Batch truth"), the budget history as plain dicts (campaign_id, daily,
set_at, rev): `budgets_of_day` picks each campaign's budget of D by brute force, and
`billing_oracle(..., budgets=...)` flags and sums the over-budget clicks.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone

from common import ivt

# Own time units, not common.times, on purpose: an oracle shares no code with what it checks.
HOUR = 3_600_000
DAY = 24 * HOUR
# How far before D 00:00 the clicks of a D click's impression can have arrived: ingest's token
# max age + 2 x its clock skew + its future event-time skew (defaults 86400, 300, 300 s).
LOOKBACK_MS = (86_400 + 2 * 300 + 300) * 1000
MEMORY_MS = 1_800 * 1000  # the stream's impression memory (flink_dedup_ttl_s default)
# The columns the job reads from the lookback partitions; the others are null there.
LOOKBACK_FIELDS = ("click_id", "ad_id", "campaign_id", "advertiser_id", "user_id", "event_time",
                   "cost_micros", "ip", "ingest_time", "impression_id")
FIELDS = LOOKBACK_FIELDS + ("user_agent", "issued_at")
VERDICTS = ("valid", "suspect", "invalid")


def _nulls_last(value):
    return (value is None, value if value is not None else 0)


def day_start(day) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * 1000


def read_window(rows: list[tuple[dict, int]], day, cutoff_hours: int = 2,
                lookback_ms: int = LOOKBACK_MS) -> list[dict]:
    """The rows the job reads for day D, as it reads them: arrival in [D 00:00 - 1 h,
    D 24:00 + cutoff h) with every field; arrival in [the hour of D 00:00 - lookback, D 00:00 - 1 h)
    with LOOKBACK_FIELDS only."""
    d0 = day_start(day)
    lo, hi = d0 - HOUR, d0 + DAY + cutoff_hours * HOUR
    back = (d0 - lookback_ms) // HOUR * HOUR
    out = []
    for c, arrival in rows:
        if lo <= arrival < hi:
            out.append({k: c.get(k) for k in FIELDS})
        elif back <= arrival < lo:
            out.append({k: c.get(k) if k in LOOKBACK_FIELDS else None for k in FIELDS})
    return out


def first_copies(read: list[dict]) -> tuple[dict[str, dict], dict[str, int]]:
    """click_id -> its first arrival (dedup order), and click_id -> copies read."""
    def rank(c):
        return tuple(_nulls_last(c[k]) for k in ("ingest_time", "event_time", "cost_micros", "ad_id",
                                                   "campaign_id", "advertiser_id", "user_id", "ip"))
    copies: dict[str, list[dict]] = defaultdict(list)
    for c in read:
        if c["click_id"] is not None:
            copies[c["click_id"]].append(c)
    return {cid: min(cs, key=rank) for cid, cs in copies.items()}, {cid: len(cs) for cid, cs in copies.items()}


def batch_of(first: dict[str, dict], day) -> tuple[list[dict], list[dict]]:
    """(D's clicks, the earlier clicks with an impression_id): what `ivt.evaluate` needs."""
    d0 = day_start(day)
    day_clicks = [c for c in first.values() if c["event_time"] is not None and d0 <= c["event_time"] < d0 + DAY]
    earlier = [c for c in first.values() if c["event_time"] is not None and c["event_time"] < d0
               and c["impression_id"] is not None]
    return day_clicks, earlier


def _arrival_losers(groups: dict) -> set[str]:
    """click_ids that are not the first ARRIVAL of their group (ingest_time, event_time, click_id)."""
    losers = set()
    for members in groups.values():
        first = min(members, key=lambda c: (_nulls_last(c["ingest_time"]), c["event_time"], c["click_id"]))
        losers |= {c["click_id"] for c in members if c is not first}
    return losers


def budgets_of_day(history: list[dict], day) -> dict[str, int]:
    """{campaign_id: daily budget of D}: for each campaign, of the versions set before D+1 00:00,
    the latest (set_at, then rev). Brute force over the whole history per campaign."""
    end = day_start(day) + DAY
    out = {}
    for campaign in {h["campaign_id"] for h in history}:
        before = [h for h in history if h["campaign_id"] == campaign and h["set_at"] < end]
        if before:
            out[campaign] = max(before, key=lambda h: (h["set_at"], h["rev"]))["daily"]
    return out


def over_budget_clicks(clicks: list[dict], verdicts: dict, budgets: dict[str, int]) -> set[str]:
    """click_ids over budget: per budgeted campaign, its valid clicks in (event_time, ingest_time
    nulls last, click_id) order, each whose running cost (itself included) exceeds the budget."""
    over = set()
    for campaign, budget in budgets.items():
        valid = sorted((c for c in clicks if c["campaign_id"] == campaign
                        and verdicts[c["click_id"]].verdict == "valid"),
                       key=lambda c: (c["event_time"], _nulls_last(c["ingest_time"]), c["click_id"]))
        spent = 0
        for c in valid:
            spent += c["cost_micros"] or 0
            if spent > budget:
                over.add(c["click_id"])
    return over


def billing_oracle(rows: list[tuple[dict, int]], day, repeat_window_s=10, burst_threshold=10,
                   cutoff_hours=2, allowed_lateness_s=900, watermark_delay_s=5, *,
                   burst_window_ms=1_000, min_click_delay_ms=1_000, rules=ivt.REASONS,
                   lookback_ms=LOOKBACK_MS, memory_ms=MEMORY_MS, budgets=None, detail=None):
    """rows: [(click, arrival_ms)]; budgets: {campaign_id: D's daily budget} (budgets_of_day).
    Returns (hourly {key: metrics}, verdicts {click_id: (verdict, reasons text)}) for D's clicks;
    `detail` (a dict) also gets `over_budget` (click_ids) and `spend` {(campaign, advertiser):
    the campaign_spend columns}."""
    d0 = day_start(day)
    first, copies = first_copies(read_window(rows, day, cutoff_hours, lookback_ms))
    clicks, earlier = batch_of(first, day)
    config = ivt.IvtConfig(rules=frozenset(rules), burst_threshold=burst_threshold,
                           burst_window_ms=burst_window_ms, min_click_delay_ms=min_click_delay_ms,
                           user_repeat_window_ms=repeat_window_s * 1000)
    verdicts = ivt.evaluate(clicks + earlier, config)
    over = over_budget_clicks(clicks, verdicts, budgets or {})

    # the stream's elections: by arrival; its impression memory: from the impression's first arrival
    impressions: dict[str, list[dict]] = defaultdict(list)
    for c in clicks + earlier:
        if c["impression_id"] is not None:
            impressions[c["impression_id"]].append(c)
    users: dict[tuple, list[dict]] = defaultdict(list)
    for c in clicks:
        if c["user_id"] is not None:
            users[(c["user_id"], c["ad_id"], c["event_time"] // (repeat_window_s * 1000))].append(c)
    arrival_loser = {
        ivt.IMPRESSION_REPEAT: _arrival_losers(impressions) if ivt.IMPRESSION_REPEAT in rules else set(),
        ivt.USER_REPEAT: _arrival_losers(users) if ivt.USER_REPEAT in rules else set()}
    first_ingest = {imp: min((c["ingest_time"] for c in cs if c["ingest_time"] is not None), default=None)
                    for imp, cs in impressions.items()}

    hourly: dict[tuple, dict] = {}
    out: dict[str, tuple[str, str]] = {}
    for c in clicks:
        cid = c["click_id"]
        v = verdicts[cid]
        out[cid] = (v.verdict, ivt.encode_reasons(v.reasons))
        by_arrival = [r for r in v.reasons if r not in arrival_loser] + [
            r for r, losers in arrival_loser.items() if cid in losers]
        arrival = ivt.verdict_of(by_arrival)
        hour = c["event_time"] // HOUR * HOUR
        # the stream drops a click once its watermark (~ ingest time - delay) passed its minute's end + lateness
        minute_end = c["event_time"] // 60_000 * 60_000 + 60_000
        late = (c["ingest_time"] is not None
                and c["ingest_time"] - watermark_delay_s * 1000 >= minute_end + allowed_lateness_s * 1000)
        valid = v.verdict == "valid"
        imp_first = first_ingest.get(c["impression_id"])
        m = hourly.setdefault((c["advertiser_id"], c["campaign_id"], c["ad_id"], hour), dict(
            clicks=0, billable_clicks=0, suspect_clicks=0, invalid_clicks=0,
            **{f"{r}_clicks": 0 for r in ivt.REASONS}, cost_micros=0, billable_cost_micros=0,
            duplicate_copies=0, late_clicks=0, late_billable_clicks=0, election_gain_clicks=0,
            election_loss_clicks=0, impression_memory_clicks=0, over_budget_clicks=0,
            over_budget_cost_micros=0))
        cost = c["cost_micros"] or 0
        billed = valid and cid not in over
        m["clicks"] += 1
        if not valid:
            m[f"{v.verdict}_clicks"] += 1
        elif billed:
            m["billable_clicks"] += 1
        else:
            m["over_budget_clicks"] += 1
            m["over_budget_cost_micros"] += cost
        for r in v.reasons:
            m[f"{r}_clicks"] += 1
        m["cost_micros"] += cost
        m["billable_cost_micros"] += cost if billed else 0
        m["duplicate_copies"] += copies[cid] - 1
        m["late_clicks"] += late
        m["late_billable_clicks"] += late and valid
        m["election_gain_clicks"] += (not valid) and arrival.verdict == "valid" and not late
        m["election_loss_clicks"] += valid and arrival.verdict != "valid" and not late
        m["impression_memory_clicks"] += (
            (not valid) and not late and arrival.reasons == (ivt.IMPRESSION_REPEAT,)
            and c["ingest_time"] is not None and imp_first is not None
            and c["ingest_time"] - imp_first > memory_ms)
    if detail is not None:
        spend: dict[tuple, dict] = {}
        for c in clicks:
            s = spend.setdefault((c["campaign_id"], c["advertiser_id"]), dict(
                budget_micros=(budgets or {}).get(c["campaign_id"]), valid_clicks=0, valid_cost_micros=0,
                billed_clicks=0, billed_cost_micros=0, over_budget_clicks=0, over_budget_cost_micros=0))
            if verdicts[c["click_id"]].verdict != "valid":
                continue
            part = "over_budget" if c["click_id"] in over else "billed"
            for p in ("valid", part):
                s[f"{p}_clicks"] += 1
                s[f"{p}_cost_micros"] += c["cost_micros"] or 0
        detail.update(over_budget=over, spend=spend)
    return hourly, out
