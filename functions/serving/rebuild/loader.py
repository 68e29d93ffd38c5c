"""Load a rebuild's final rows (aggregate/job/rebuild.py's JSON lines) into the DynamoDB serving
table under a new generation (serving.generations, docs/rebuild.md).

    1. take a generation number (one atomic ADD on META#rebuild)
    2. write every row with version `generation << 40 | count` through the sink's own store
       (DynamoDBServingStore.apply_many: conditional, newest version wins), so an item the
       stream wrote, or a corrupted one, is replaced in one write, and a repeated load is a no-op
    3. then one commit marker per leaderboard bucket of the range, also the buckets without
       entries: readers switch to the rebuilt board of a bucket at once, and entries only the old
       board had drop out of every read; and the range's late counters the rebuild did not
       write are deleted (one Query per day finds them)
    4. a run record (META#rebuild / run#<generation>): range, counts, when

Idempotent: an interrupted load is resumed by loading the same rows with `generation=` the
run's number (writes already done are refused as not newer; counted as `unchanged`).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator, TextIO

from aggregate.changes import ID_COLUMN, KINDS, PULSE, Change
from common.times import DAY_MS, RESOLUTIONS, floor_to
from serving import generations
from serving.keys import LEADERBOARD_RESOLUTIONS, RANK_ATTR, RANK_MARKER, late_pk, top_pk, ts
from serving.table import SK_END, query_range

CHUNK = 2000  # rows per apply_many call: a progress line each


def read_rows(rows_dir: str | Path) -> Iterator[dict]:
    """The rebuild's output rows (JSON lines in every file under `rows_dir`)."""
    for f in sorted(p for p in Path(rows_dir).rglob("*") if p.is_file() and not p.name.startswith(".")):
        with f.open() as lines:
            yield from parse_lines(lines)


def parse_lines(lines: Iterable[str | bytes]) -> Iterator[dict]:
    """The rows of one output file (the job's JSON format: one object per line; blank lines
    skipped). A line that is not a JSON object is an error naming its line number."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"line {n}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise ValueError(f"line {n}: expected a JSON object, got {type(row).__name__}")
        yield row


def change_for(row: dict, generation: int) -> Change:
    """The upsert a rebuilt row becomes, at its generation's version (pure)."""
    if row.get("kind") not in KINDS or row["kind"] == PULSE:
        raise ValueError(f"not a rebuildable row: {str(row)[:200]}")
    missing = [c for c in ("bucket_start", "version", ID_COLUMN[row["kind"]]) if row.get(c) is None]
    if missing:
        raise ValueError(f"not a rebuildable row: no {', '.join(missing)}: {str(row)[:200]}")
    return Change(row["kind"], True, {**row, "version": generations.versioned(generation, int(row["version"]))})


def leaderboard_buckets(start_ms: int, end_ms: int) -> list[tuple[str, int]]:
    """Every leaderboard bucket wholly inside [start_ms, end_ms) (pure): the buckets a rebuild
    of that range owns, whether or not it has entries for them."""
    out = []
    for res in LEADERBOARD_RESOLUTIONS:
        size = RESOLUTIONS[res]
        first = floor_to(start_ms + size - 1, size)
        out += [(res, b) for b in range(first, end_ms - size + 1, size)]
    return out


def marker_item(resolution: str, bucket_start: int, generation: int) -> dict:
    return {"pk": {"S": top_pk(resolution, bucket_start)},
            "sk": {"S": generations.marker_sk(ts(bucket_start))},
            generations.MARKER_ATTR: {"N": str(generation)},
            RANK_ATTR: {"S": RANK_MARKER}}  # in the rank index too, before every entry


class RebuildLoader:
    def __init__(self, client, table: str, store, out: TextIO = sys.stderr):
        """`store`: the sink's DynamoDBServingStore on the same table (its writes, its rules)."""
        self._ddb, self._table, self._store, self._out = client, table, store, out

    def next_generation(self) -> int:
        item = self._ddb.update_item(
            TableName=self._table, Key={k: {"S": v} for k, v in generations.GENERATION_KEY.items()},
            UpdateExpression="ADD g :one", ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW")
        return int(item["Attributes"]["g"]["N"])

    def load(self, rows: Iterable[dict], start_ms: int, end_ms: int, *,
             generation: int | None = None) -> dict:
        """The whole load in one process: `apply_rows`, then `commit` (local/rebuild.py)."""
        generation = generation or self.next_generation()
        t0 = time.monotonic()
        stats = self.apply_rows(rows, start_ms, end_ms, generation)
        stats = self.commit(start_ms, end_ms, generation, stats)
        stats["seconds"] = round(time.monotonic() - t0, 2)
        print(f"rebuild generation {generation}: {stats['rows']} rows, {stats['written']} written, "
              f"{stats['unchanged']} unchanged, {stats['markers']} leaderboard buckets committed, "
              f"{stats['late_swept']} stale late counters deleted "
              f"in {stats['seconds']} s", file=self._out, flush=True)
        return stats

    def apply_rows(self, rows: Iterable[dict], start_ms: int, end_ms: int, generation: int) -> dict:
        """Write `rows` (entries and series) under `generation`; no markers, no sweep. Any part
        of a rebuild's rows, in any order, any number of times: a row this generation already
        wrote is refused as not newer and counted as `unchanged` (the AWS load runs one call
        per output file, in parallel: serving.rebuild.handlers)."""
        if generation < 1:
            raise ValueError(f"generation must be >= 1 (0 is the stream's), got {generation}")
        t0 = time.monotonic()
        stats = {"generation": generation, "rows": 0, "written": 0, "unchanged": 0}
        chunk: list[Change] = []
        for n, row in enumerate(rows, 1):
            try:
                change = change_for(row, generation)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"row {n}: {exc}") from None
            if not start_ms <= change.bucket_start < end_ms:
                raise ValueError(f"row {n}: row outside the range [{start_ms}, {end_ms}): {str(row)[:200]}")
            chunk.append(change)
            if len(chunk) >= CHUNK:
                self._apply(chunk, stats, t0)
                chunk = []
        if chunk:
            self._apply(chunk, stats, t0)
        return stats

    def commit(self, start_ms: int, end_ms: int, generation: int, stats: dict | None = None) -> dict:
        """After every row of the generation is written: a marker for every leaderboard bucket
        of the range, the late sweep, the run record (with `stats`' rows and written). Returns
        `stats` plus markers and late_swept. Repeatable: a marker already there counts 0."""
        stats = {"generation": generation, "rows": 0, "written": 0, "unchanged": 0,
                 **(stats or {}), "markers": 0}
        for res, bucket in leaderboard_buckets(start_ms, end_ms):
            stats["markers"] += self._commit(res, bucket, generation)
        stats["late_swept"] = self._sweep_late(start_ms, end_ms, generation)
        self._record(generation, start_ms, end_ms, stats)
        return stats

    def _apply(self, changes: list[Change], stats: dict, t0: float) -> None:
        before = self._store.applied
        errors = [e for e in self._store.apply_many(changes) if e is not None]
        if errors:
            raise RuntimeError(f"{len(errors)} writes failed, first: {errors[0]!r}") from errors[0]
        stats["rows"] += len(changes)
        written = self._store.applied - before
        stats["written"] += written
        stats["unchanged"] += len(changes) - written
        print(f"  {stats['rows']} rows loaded ({time.monotonic() - t0:.0f} s)", file=self._out, flush=True)

    def _commit(self, resolution: str, bucket_start: int, generation: int) -> int:
        try:
            self._ddb.put_item(
                TableName=self._table, Item=marker_item(resolution, bucket_start, generation),
                ConditionExpression="attribute_not_exists(g) OR g < :g",
                ExpressionAttributeValues={":g": {"N": str(generation)}})
            return 1
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return 0  # this generation (a resumed load) or a newer one committed it already

    def _sweep_late(self, start_ms: int, end_ms: int, generation: int) -> int:
        """Delete the range's late counters older than this generation: the rebuild wrote every
        (minute, ad) it found late, so an older one is stale or corrupt. One Query per UTC day
        (the late counters' partition); the delete is conditional on the item still being older
        (a newer generation's load may be running)."""
        floor = generations.versioned(generation, 0)
        swept = 0
        for day in range(floor_to(start_ms, DAY_MS), end_ms, DAY_MS):
            for item in query_range(self._ddb, self._table, late_pk(day), ts(start_ms),
                                    ts(end_ms - 1) + SK_END, attrs=("v",)):
                if int(item.get("v", {"N": "0"})["N"]) >= floor:
                    continue
                try:
                    self._ddb.delete_item(
                        TableName=self._table, Key={"pk": {"S": late_pk(day)}, "sk": item["sk"]},
                        ConditionExpression="attribute_not_exists(v) OR v < :g",
                        ExpressionAttributeValues={":g": {"N": str(floor)}})
                    swept += 1
                except self._ddb.exceptions.ConditionalCheckFailedException:
                    pass
        return swept

    def _record(self, generation: int, start_ms: int, end_ms: int, stats: dict) -> None:
        self._ddb.put_item(TableName=self._table, Item={
            "pk": {"S": generations.GENERATION_KEY["pk"]}, "sk": {"S": f"run#{generation:08d}"},
            "start": {"N": str(start_ms)}, "end": {"N": str(end_ms)},
            "rows": {"N": str(stats["rows"])}, "written": {"N": str(stats["written"])},
            "at": {"N": str(int(time.time() * 1000))}})

