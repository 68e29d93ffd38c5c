"""Invalid-traffic (IVT) verdicts, issue 17: the ONE definition of the rules, their lists and
thresholds, and a pure reference implementation of the per-click verdict.

The Flink job and the Glue billing job will implement these same definitions (docs/ivt.md says
how); this module is their specification and the cross-engine test's oracle. Stdlib only (it
ships with common/*.py in the Flink zip and the Glue --extra-py-files zip). Nothing here is
wired into ingest, the stream or billing yet.

Verdicts: every click gets `valid`, `suspect` or `invalid` plus the reason codes of every rule
that fired (all of them, in the canonical order of `REASONS`, not just the first). Only `valid`
is billable. The verdict is the worst tier among the reasons: any `invalid` reason -> invalid,
else any `suspect` reason -> suspect, else valid.

The rules (codes; each can be switched off by `IvtConfig.rules`):

  bot_ua             user_agent matches a pattern of the crawler-user-agents list
                     (ivt_data/crawler_user_agents.json): `re.search`, case-sensitive, re.ASCII
                     (so \\d \\w \\s \\b are ASCII, as in java.util.regex by default); Java: 
                     Pattern.compile(p, Pattern.UNIX_LINES).matcher(ua).find(). Null UA: no flag.
  impression_repeat  per impression_id (non-null), the click first by ORDER
                     (event_time, ingest_time, click_id; nulls last) is the impression's click;
                     every other click of that impression is flagged. One billable click per
                     impression.
  too_fast           issued_at (the impression token's, ms) and ingest_time both known and
                     ingest_time - issued_at < min_click_delay_ms (negative included: a click
                     "before" its impression was served is a forged or replayed token).
  datacenter_ip      ip is an IPv4 address (or an IPv4-mapped IPv6 one) inside a range of
                     ivt_data/datacenter_ipv4.csv (inclusive bounds). Other IPv6: no flag.
  ip_burst           per (ip, floor(event_time / burst_window_ms)) - fixed buckets aligned to
                     the epoch, keyed by the ip string as recorded, across ALL ads - more than
                     burst_threshold clicks: every click of the bucket is flagged. Exactly N is
                     not a burst, N+1 is. Null ip: never a burst.
  user_repeat        per (user_id, ad_id, floor(event_time / user_repeat_window_ms)), the
                     click first by ORDER wins, the others are flagged: today's stream/billing
                     repeat rule, kept (see docs/ivt.md for what it adds to impression_repeat).

Group rules (impression_repeat, ip_burst, user_repeat) are evaluated over the whole batch,
flagged clicks included, and independently of each other: the winner of a group is elected
among all its clicks, and a winner flagged by another rule is not replaced by the next click
(the Glue job's existing precedent: no promotion). So each rule is one column computable on its
own in SQL (a window function or a lookup), and the verdict is a pure function of the columns.

Tiers - the argument: `invalid` when the evidence is in the click itself and no genuine,
billable human click can produce it; `suspect` when the evidence is statistical or about the
network the click came from, and real people produce it too (so it is held back, not billed,
but open to review / appeal rather than declared fraud):
  invalid  bot_ua (a declared crawler/library/monitor, MRC "general IVT"); impression_repeat
           (the contract is one click per impression: a second one is a duplicate whatever its
           intent); too_fast (measured with server clocks, ingest_time - issued_at is an UPPER
           bound of the true served-to-click delay, network and client batching only add to it,
           so below the floor it cannot be a human; a client-set event_time would let a bot
           fake slowness and a skewed phone clock fake speed).
  suspect  datacenter_ip (VPNs, corporate proxies and privacy relays egress from hosting
           ranges; the list is coarse and dated); ip_burst (carrier-grade and corporate NAT
           put many people behind one address); user_repeat (a person can genuinely click a
           second impression of the same ad within seconds; the rule exists for billing
           dedup, not as proof of fraud).

Preconditions (the engines meet them as they do today): clicks are already deduplicated by
click_id (first arrival; this function raises on a repeated click_id); event_time (ms) is
known; the batch holds every click of every group it decides, e.g. a billing day plus, for
impression_repeat, the earlier clicks of the same impressions (docs/ivt.md, "batch bounds").
"""
from __future__ import annotations

import bisect
import csv
import dataclasses
import ipaddress
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Optional, Sequence

from common import schema

DATA_DIR = Path(__file__).resolve().parent / "ivt_data"
BOT_PATTERNS_FILE = DATA_DIR / "crawler_user_agents.json"
DATACENTER_FILE = DATA_DIR / "datacenter_ipv4.csv"

VALID, SUSPECT, INVALID = "valid", "suspect", "invalid"
VERDICTS = (VALID, SUSPECT, INVALID)  # in increasing severity

# Canonical order of reason codes in a verdict: the invalid ones first, then the suspect ones.
# The list itself lives in the settings schema (the `ivt_rules` setting validates against it).
REASONS = schema.IVT_REASONS
BOT_UA, IMPRESSION_REPEAT, TOO_FAST, DATACENTER_IP, IP_BURST, USER_REPEAT = REASONS
TIER: dict[str, str] = {
    BOT_UA: INVALID, IMPRESSION_REPEAT: INVALID, TOO_FAST: INVALID,
    DATACENTER_IP: SUSPECT, IP_BURST: SUSPECT, USER_REPEAT: SUSPECT,
}

# Election order inside a group (impression_repeat, user_repeat): the first click wins. The
# same order as the billing job's repeat rule (glue_jobs/billing/transform.py REPEAT_ORDER);
# nulls sort last; click_id is unique after dedup, so the order is total.
ORDER = ("event_time", "ingest_time", "click_id")


@dataclasses.dataclass(frozen=True)
class IvtConfig:
    """The rules' switches and thresholds. Every default is the one schema's (common.schema),
    the same settings the Flink job and the Glue job read (`from_settings`)."""

    rules: frozenset = schema.parse_ivt_rules(schema.default("ivt_rules"))  # the enabled rules
    burst_threshold: int = schema.default("ivt_burst_threshold")  # > this many = burst
    burst_window_ms: int = schema.default("ivt_burst_window_ms")
    min_click_delay_ms: int = schema.default("ivt_min_click_delay_ms")
    user_repeat_window_ms: int = schema.default("repeat_window_s") * 1_000

    @classmethod
    def from_settings(cls, view: Any) -> "IvtConfig":
        """From a settings view: the Flink job's (JobSettings, `ivt_*` names) or the Glue job's
        (BillingSettings, its argument names)."""
        def pick(*names: str) -> Any:
            return next(getattr(view, n) for n in names if hasattr(view, n))
        return cls(rules=schema.parse_ivt_rules(pick("ivt_rules")),
                   burst_threshold=pick("ivt_burst_threshold", "burst_threshold"),
                   burst_window_ms=pick("ivt_burst_window_ms", "burst_window_ms"),
                   min_click_delay_ms=pick("ivt_min_click_delay_ms", "min_click_delay_ms"),
                   user_repeat_window_ms=pick("repeat_window_s") * 1_000)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", frozenset(self.rules))
        unknown = self.rules - set(REASONS)
        if unknown:
            raise ValueError(f"rules: unknown {sorted(unknown)}; known: {REASONS}")
        if self.burst_threshold < 1:
            raise ValueError(f"burst_threshold: must be >= 1, got {self.burst_threshold}")
        # Buckets tile the minute (the stream's 1m buckets) and so the day (billing by day).
        for name in ("burst_window_ms", "user_repeat_window_ms"):
            value = getattr(self, name)
            if value <= 0 or 60_000 % value:
                raise ValueError(f"{name}: must divide 60000, got {value}")
        if self.min_click_delay_ms < 0:
            raise ValueError(f"min_click_delay_ms: must be >= 0, got {self.min_click_delay_ms}")


class Verdict(NamedTuple):
    verdict: str  # valid | suspect | invalid
    reasons: tuple[str, ...]  # canonical order (REASONS); () for valid

    @property
    def billable(self) -> bool:
        return self.verdict == VALID


def verdict_of(reasons: Iterable[str]) -> Verdict:
    """The verdict of a set of reason codes: the worst tier, reasons in canonical order."""
    found = set(reasons)
    ordered = tuple(r for r in REASONS if r in found)
    tiers = {TIER[r] for r in ordered}
    return Verdict(INVALID if INVALID in tiers else SUSPECT if SUSPECT in tiers else VALID,
                   ordered)


def encode_reasons(reasons: Sequence[str]) -> str:
    """The engines' text form: codes in canonical order joined by ',' ('' for valid)."""
    return ",".join(reasons)


# --- data ---------------------------------------------------------------------------------------
def load_bot_patterns(path: Path = BOT_PATTERNS_FILE) -> tuple[str, ...]:
    """The crawler-user-agents patterns (a JSON array of strings), in file order."""
    patterns = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise ValueError(f"{path}: expected a JSON array of non-empty strings")
    return tuple(patterns)


def load_datacenter_ranges(path: Path = DATACENTER_FILE) -> tuple[tuple[int, int, str], ...]:
    """(first, last, provider) IPv4 ranges as integers, inclusive, sorted, non-overlapping
    (checked: a lookup by bisection depends on it)."""
    ranges = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            first = int(ipaddress.IPv4Address(row["first_ip"]))
            last = int(ipaddress.IPv4Address(row["last_ip"]))
            if last < first:
                raise ValueError(f"{path}: range {row} ends before it starts")
            ranges.append((first, last, row["provider"]))
    ranges.sort()
    for (_, last, _), (first, _, _) in zip(ranges, ranges[1:]):
        if first <= last:
            raise ValueError(f"{path}: overlapping ranges at {ipaddress.IPv4Address(first)}")
    return tuple(ranges)


class BotMatcher:
    """`matches(ua)`: does any pattern find a match in ua (re.search semantics, ASCII classes)."""

    def __init__(self, patterns: Sequence[str]):
        self.patterns = tuple(patterns)
        self._any = re.compile("|".join(f"(?:{p})" for p in self.patterns), re.ASCII)

    def matches(self, user_agent: Optional[str]) -> bool:
        return user_agent is not None and self._any.search(user_agent) is not None

    def which(self, user_agent: str) -> list[str]:
        """The patterns that match (diagnostics, tests; slow)."""
        return [p for p in self.patterns if re.search(p, user_agent, re.ASCII)]


def ipv4_int(ip: Optional[str]) -> Optional[int]:
    """The IPv4 address of `ip` as an integer (IPv4-mapped IPv6 included), else None."""
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        addr = addr.ipv4_mapped
    return None if addr is None else int(addr)


class DatacenterRanges:
    def __init__(self, ranges: Sequence[tuple[int, int, str]]):
        self.ranges = tuple(sorted(ranges))
        self._firsts = [r[0] for r in self.ranges]

    def provider(self, ip: Optional[str]) -> Optional[str]:
        n = ipv4_int(ip)
        if n is None:
            return None
        i = bisect.bisect_right(self._firsts, n) - 1
        return self.ranges[i][2] if i >= 0 and n <= self.ranges[i][1] else None


@lru_cache(maxsize=None)
def default_bot_matcher() -> BotMatcher:
    return BotMatcher(load_bot_patterns())


@lru_cache(maxsize=None)
def default_datacenters() -> DatacenterRanges:
    return DatacenterRanges(load_datacenter_ranges())


# --- the verdicts -------------------------------------------------------------------------------
def _order_key(click: Mapping[str, Any]) -> tuple:
    """ORDER with nulls last."""
    return tuple((click.get(c) is None, click.get(c) if click.get(c) is not None else 0)
                 for c in ORDER)


def _floor(t: int, width: int) -> int:
    return t - t % width  # Python's % is a floor modulo, as Spark's pmod and Flink's TUMBLE


def _group_losers(groups: Mapping[Any, list]) -> set[str]:
    """click_ids that are not the first (by ORDER) of their group."""
    losers: set[str] = set()
    for members in groups.values():
        members = sorted(members, key=_order_key)
        losers.update(c["click_id"] for c in members[1:])
    return losers


def evaluate(clicks: Iterable[Mapping[str, Any]], config: IvtConfig = IvtConfig(), *,
             bots: Optional[BotMatcher] = None,
             datacenters: Optional[DatacenterRanges] = None) -> dict[str, Verdict]:
    """click_id -> Verdict for a batch of deduplicated clicks (mappings with click_id, ad_id,
    user_id, ip, user_agent, event_time, ingest_time, and optionally impression_id and
    issued_at; all times epoch ms). Deterministic and independent of the input order."""
    clicks = list(clicks)
    reasons: dict[str, set[str]] = {}
    for c in clicks:
        cid = c.get("click_id")
        if cid is None or c.get("event_time") is None:
            raise ValueError(f"click_id and event_time are required: {dict(c)!r}")
        if cid in reasons:
            raise ValueError(f"click_id {cid!r} twice: deduplicate first")
        reasons[cid] = set()
    on = config.rules

    if BOT_UA in on:
        bots = bots or default_bot_matcher()
        seen: dict[str, bool] = {}
        for c in clicks:
            ua = c.get("user_agent")
            if ua is None:
                continue
            hit = seen.get(ua)
            if hit is None:  # once per distinct agent: the combined pattern is the slow part
                hit = seen[ua] = bots.matches(ua)
            if hit:
                reasons[c["click_id"]].add(BOT_UA)
    if DATACENTER_IP in on:
        datacenters = datacenters or default_datacenters()
        for c in clicks:
            if datacenters.provider(c.get("ip")) is not None:
                reasons[c["click_id"]].add(DATACENTER_IP)
    if TOO_FAST in on:
        for c in clicks:
            issued, ingested = c.get("issued_at"), c.get("ingest_time")
            if issued is not None and ingested is not None \
                    and ingested - issued < config.min_click_delay_ms:
                reasons[c["click_id"]].add(TOO_FAST)
    if IP_BURST in on:
        buckets: dict[tuple, list] = {}
        for c in clicks:
            if c.get("ip") is not None:
                key = (c["ip"], _floor(c["event_time"], config.burst_window_ms))
                buckets.setdefault(key, []).append(c["click_id"])
        for members in buckets.values():
            if len(members) > config.burst_threshold:
                for cid in members:
                    reasons[cid].add(IP_BURST)
    if IMPRESSION_REPEAT in on:
        groups: dict[Any, list] = {}
        for c in clicks:
            if c.get("impression_id") is not None:
                groups.setdefault(c["impression_id"], []).append(c)
        for cid in _group_losers(groups):
            reasons[cid].add(IMPRESSION_REPEAT)
    if USER_REPEAT in on:
        groups = {}
        for c in clicks:
            if c.get("user_id") is not None:
                key = (c["user_id"], c.get("ad_id"),
                       _floor(c["event_time"], config.user_repeat_window_ms))
                groups.setdefault(key, []).append(c)
        for cid in _group_losers(groups):
            reasons[cid].add(USER_REPEAT)

    return {cid: verdict_of(found) for cid, found in reasons.items()}
