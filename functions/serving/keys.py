"""DynamoDB serving-table key design, shared by the sink (writes), the query API (reads) and the
nightly reconciliation (glue_jobs/reconcile.py: reads the 1h series, writes its summary).

One table, string keys `pk`/`sk` (bucket starts zero-padded so they sort as numbers):
  series       pk S#<ad>#<res>      sk <bucket_start>          one ad's series: one Query
  campaign     pk SC#<campaign>#<res> sk <bucket_start>        rollup per campaign (same attributes)
  advertiser   pk SV#<advertiser>#<res> sk <bucket_start>      rollup per advertiser
  top 1h       pk T#1h#<day_start>  sk <hour_start>#<ad>        24 h of hour leaderboards: <= 2 partitions
  top 1m       pk T#1m#<hour_start> sk <minute_start>#<ad>      a window's edge minutes: <= 2 partitions
  top 1d       pk T#1d#<30-day span start> sk <day_start>#<ad>   30 days of day leaderboards: <= 2 partitions
  spend        pk SB#<campaign>#<1m|1d> sk <bucket_start>      the budget lane's billable cost
  late dropped pk L#<day_start>     sk <minute_start>#<ad>       per ad and minute
  pulse        pk META#pulse        sk pulse                     the budget lane's liveness
  freshness    pk META#<slot>       sk freshness                 slot 0..N-1 by sink shard
  reconciled   pk R#reconciliation  sk <YYYY-MM-DD>               one summary per reconciled day
  adjustments  pk ADJ#<YYYY-MM-DD>   sk <hour_start>#<ad>#<run>     corrections ledger (one per ad-hour and run)
Leaderboard entries also carry `rk` (RANK_ATTR, rank_key: clicks inverted and zero-padded) and
are indexed by the global secondary index RANK_INDEX (hash pk, range rk, projecting the entry
attributes): the same partitions as above, each in rank order (most clicks first; commit markers,
rk '!', before every entry), so a reader can stop as soon as the ranking is proven
(serving/read/ranked.py). Tombstones and every other item have no `rk`: not in the index.
So a top-K over any window up to 24 h reads at most 4 partitions. Pages (1 MB) per partition grow
with M, id length and tombstones: with M = 1000 a 24 h window off the hour takes about 16
requests with 10-character ids and about 50 with 128-character ids (tests/query/test_query_dynamodb_paging.py).
"""
from __future__ import annotations

import zlib

from common.schema import BY_NAME
from common.times import DAY_MS, HOUR_MS, floor_to

# resolution -> partition span. 1d boards answer windows up to 30 days (30 boards); their
# partitions span 30 days from the epoch, so such a window touches at most 2.
LEADERBOARD_RESOLUTIONS = {"1m": HOUR_MS, "1h": DAY_MS, "1d": 30 * DAY_MS}
# Freshness: every sink batch advances it, so one item would be a hot key (the planner: ~2,150
# updates/s at 10B clicks/day, ~9k/s at a 500k/s peak, against DynamoDB's 1,000 writes/s per
# partition). Each aggregates shard writes the slot its shard id hashes to; readers fetch all
# slots with one BatchGetItem and take the maxima (the same value one monotonic item would hold).
# N is deploy configuration (FRESHNESS_SLOTS in the sink's and the query API's environment, from
# the stack setting `freshness_slots`, which the capacity planner sizes per profile); writers and
# readers must agree on it. At most 100: one BatchGetItem. Default and maximum: the setting's
# (common.schema).
DEFAULT_FRESHNESS_SLOTS = BY_NAME["freshness_slots"].default
DEFAULT_MINUTE_TTL_S = BY_NAME["minute_ttl_s"].default  # 1m items expire (the writer's TTL, the reader's retention)
MAX_FRESHNESS_SLOTS = BY_NAME["freshness_slots"].le
# Not under META: the freshness item is rewritten by every sink batch, a hot partition that a
# nightly write and dashboard reads should not share.
RECONCILIATION_PK = "R#reconciliation"


def ts(ms: int) -> str:
    return f"{ms:013d}"


# series partitions per level (aggregate.changes kinds: 'agg' is per ad; 'spend' is the budget
# lane's per campaign, docs/budget.md); 'S#' vs 'SC#' / 'SV#' / 'SB#' differ in their second
# character, so no id of one level can name another level's partition
SERIES_PREFIX = {"agg": "S", "campaign": "SC", "advertiser": "SV", "spend": "SB"}
SERIES_LEVELS = tuple(SERIES_PREFIX)
# The budget lane's pulse (docs/budget.md): one item, `pt` only ever raised. Written by the sink
# about twice a second and read through the budget Lambda's cache.
PULSE_KEY = {"pk": "META#pulse", "sk": "pulse"}
PULSE_ATTR = "pt"


def series_pk(entity_id: str, resolution: str, level: str = "agg") -> str:
    return f"{SERIES_PREFIX[level]}#{entity_id}#{resolution}"


def series_key(entity_id: str, resolution: str, bucket_start: int, level: str = "agg") -> dict[str, str]:
    return {"pk": series_pk(entity_id, resolution, level), "sk": ts(bucket_start)}


def top_pk(resolution: str, bucket_start: int) -> str:
    return f"T#{resolution}#{ts(floor_to(bucket_start, LEADERBOARD_RESOLUTIONS[resolution]))}"


def top_key(resolution: str, bucket_start: int, ad_id: str) -> dict[str, str]:
    return {"pk": top_pk(resolution, bucket_start), "sk": f"{ts(bucket_start)}#{ad_id}"}


# The rank index (see the module doc). One definition: the table (local/resources.py,
# infra/constructs/serving_store.py), the sink (item_for), the rebuild's markers and the reader.
RANK_INDEX = "rank"
RANK_ATTR = "rk"
RANK_DIGITS = 19  # clicks are BIGINT: 0 <= clicks < 10**19
RANK_MARKER = "!"  # a commit marker's rk: sorts before every entry's digits


def rank_key(clicks: int) -> str:
    """An entry's rk: ascending rk = descending clicks (pure)."""
    clicks = int(clicks)
    if not 0 <= clicks < 10**RANK_DIGITS:
        raise ValueError(f"clicks out of range for a rank key: {clicks}")
    return f"{10**RANK_DIGITS - 1 - clicks:0{RANK_DIGITS}d}"


def clicks_of_rank(rk: str) -> int:
    return 10**RANK_DIGITS - 1 - int(rk)


def parse_top_sk(sk: str) -> tuple[int, str]:
    bucket, _, ad_id = sk.partition("#")
    return int(bucket), ad_id


def late_pk(bucket_start: int) -> str:
    return f"L#{ts(floor_to(bucket_start, DAY_MS))}"


def late_key(bucket_start: int, ad_id: str) -> dict[str, str]:
    return {"pk": late_pk(bucket_start), "sk": f"{ts(bucket_start)}#{ad_id}"}


def reconciliation_key(day: str) -> dict[str, str]:
    """Key of one day's reconciliation summary (`day`: YYYY-MM-DD sorts as a date)."""
    return {"pk": RECONCILIATION_PK, "sk": day}


def freshness_key(slot: int) -> dict[str, str]:
    return {"pk": f"META#{slot}", "sk": "freshness"}


def freshness_slot(source: str, slots: int = DEFAULT_FRESHNESS_SLOTS) -> int:
    """The slot a writer (a sink reading one aggregates shard) advances: stable per source."""
    return zlib.crc32(source.encode()) % slots


def freshness_keys(slots: int = DEFAULT_FRESHNESS_SLOTS) -> list[dict[str, str]]:
    return [freshness_key(slot) for slot in range(slots)]


def check_freshness_slots(slots: int) -> int:
    if not 1 <= slots <= MAX_FRESHNESS_SLOTS:
        raise ValueError(f"freshness slots must be within 1..{MAX_FRESHNESS_SLOTS} (one BatchGetItem), got {slots}")
    return slots


# Corrections (glue_jobs/corrections.py, docs/corrections.md): the adjustments ledger, one
# append-only item per corrected ad-hour and run, in one partition per day
#   adjustments  pk ADJ#<YYYY-MM-DD>  sk <hour_start>#<ad>#<run id>
ADJUSTMENTS_PREFIX = "ADJ#"


def adjustments_pk(day: str) -> str:
    """The ledger partition of a day (`day`: YYYY-MM-DD)."""
    return f"{ADJUSTMENTS_PREFIX}{day}"


def adjustment_key(day: str, hour_start: int, ad_id: str, run_id: str) -> dict[str, str]:
    return {"pk": adjustments_pk(day), "sk": f"{ts(hour_start)}#{ad_id}#{run_id}"}


def parse_adjustment_sk(sk: str) -> tuple[int, str, str]:
    """(hour start, ad id, run id) of a ledger sk (an ad id may hold '#', a run id does not)."""
    hour, _, rest = sk.partition("#")
    ad_id, _, run_id = rest.rpartition("#")
    return int(hour), ad_id, run_id
