"""Rebuild generations in the serving table (docs/rebuild.md): how rows a rebuild recomputed
from the archive supersede what the stream wrote, without readers seeing a mix of the two.

* Versions. The stream's versions are per-key counts (< 2**GENERATION_SHIFT). Generation g >= 1
  writes version `g << GENERATION_SHIFT | count`, so the store's conditional write ("newer
  version wins", serving.write.dynamodb) lets it replace the stream's item for that bucket in
  one write, and keeps the stream (or an older generation, or a replayed write of the same
  one) from writing over it. A bucket is one item for series, late and spend rows, so readers
  see the old or the new value, never a mix.
* Leaderboards. A bucket's board is up to M items (M = 1000 by default: beyond one
  TransactWriteItems), so a rebuild first writes its entries, then one COMMIT MARKER per bucket
  (sk `<bucket>!`, sorting just before the bucket's `<bucket>#<ad>` entries, so every read of
  the bucket returns it too: no extra request). Readers keep only the entries of the bucket's
  committed generation (its marker's, else 0 = the stream's): before the marker the old board,
  after it the new one, whole. Entries the new board lacks (stale or corrupt ones) drop out
  of every read without being deleted.
"""
from __future__ import annotations

from typing import Iterable

GENERATION_SHIFT = 40  # 1.1e12 per key and bucket: more clicks than a hot ad makes in a year
STREAM_GENERATION = 0
MARKER = "!"  # 0x21 sorts before '#' (0x23): `<bucket>!` precedes every `<bucket>#<ad>`
MARKER_ATTR = "g"
# one item counts generations: ADD 1 returns the new run's number (atomic, no two runs share one)
GENERATION_KEY = {"pk": "META#rebuild", "sk": "generation"}
READ_ATTRS = ("v", MARKER_ATTR)  # what a leaderboard read projects for `committed`


def versioned(generation: int, version: int) -> int:
    """The version a row of `generation` is written with (pure)."""
    if not 0 <= version < 1 << GENERATION_SHIFT:
        raise ValueError(f"version {version} out of range for generation {generation}")
    return generation << GENERATION_SHIFT | version


def generation_of(version: int) -> int:
    return int(version) >> GENERATION_SHIFT


def marker_sk(bucket_sk: str) -> str:
    """The commit marker's sort key of the leaderboard bucket whose entries start `bucket_sk`."""
    return bucket_sk + MARKER


def is_marker(sk: str) -> bool:
    return sk.endswith(MARKER)


def committed(items: Iterable[dict]) -> list[dict]:
    """The leaderboard entries of the committed generation of their bucket (pure).

    `items`: DynamoDB items (sk `<bucket>#<ad>` entries with `v`; `<bucket>!` markers with `g`)
    of one or more buckets, markers and entries in any order."""
    generation: dict[str, int] = {}
    entries: list[tuple[str, dict]] = []
    for item in items:
        sk = item["sk"]["S"]
        if is_marker(sk):
            bucket = sk[:-1]
            generation[bucket] = max(generation.get(bucket, 0), int(item[MARKER_ATTR]["N"]))
        else:
            entries.append((sk.partition("#")[0], item))
    return [item for bucket, item in entries
            if generation_of(int(item.get("v", {"N": "0"})["N"])) == generation.get(bucket, STREAM_GENERATION)]
