"""Serving-table contents for the dashboard tests, written the way the sink writes them: every
aggregate and leaderboard row goes through DynamoDBServingStore.apply (versioned conditional
puts), freshness through advance_freshness. Clicks come from the load generator (tools.loadgen);
the rows are its brute-force truth (local.oracle.realtime_truth), so no code under test decides
the numbers. `add()` can be called again (more clicks later): changed rows get a newer version,
leaderboards are recomputed and ads that fell off a board get a tombstone, as the Flink job's
changelog would do."""
from __future__ import annotations

from collections import defaultdict

from aggregate.changes import AGG, TOP, Change
from local.oracle import realtime_truth
from serving.write.dynamodb import DynamoDBServingStore

LEADERBOARD_RES = ("1m", "1h")
WATERMARK_DELAY_MS = 5_000


class ServingSeeder:
    def __init__(self, store: DynamoDBServingStore, leaderboard_size: int):
        self.store, self.m = store, leaderboard_size
        self.rows: dict[tuple[str, str, int], dict] = {}  # (ad, res, bucket) -> counters
        self.ids: dict[str, tuple[str, str]] = {}
        self.versions: dict[tuple, int] = defaultdict(int)
        self.boards: dict[tuple[str, int], set[str]] = {}  # (res, bucket) -> ads listed
        self.newest_ms: int | None = None

    def _row(self, ad: str, res: str, bucket: int, counters: dict, key: tuple) -> dict:
        self.versions[key] += 1
        campaign, advertiser = self.ids[ad]
        return {"ad_id": ad, "campaign_id": campaign, "advertiser_id": advertiser, "resolution": res,
                "bucket_start": bucket, "version": self.versions[key], **counters}

    def add(self, clicks: list[dict]) -> int:
        """Fold these clicks in and write every row they change; returns the number of writes."""
        for c in clicks:
            self.ids[c["ad_id"]] = (c["campaign_id"], c["advertiser_id"])
        delta = realtime_truth(clicks, set())
        changes: list[Change] = []
        touched: set[tuple[str, int]] = set()
        for (ad, res, bucket), d in sorted(delta.items()):
            row = self.rows.setdefault((ad, res, bucket), dict.fromkeys(d, 0))
            for k, v in d.items():
                row[k] += v
            changes.append(Change(AGG, True, {"kind": AGG, **self._row(ad, res, bucket, dict(row), ("agg", ad, res, bucket))}))
            if res in LEADERBOARD_RES:
                touched.add((res, bucket))
        for res, bucket in sorted(touched):
            entries = [(ad, row) for (ad, r, b), row in self.rows.items() if r == res and b == bucket and row["clicks"] > 0]
            board = sorted(entries, key=lambda e: (-e[1]["clicks"], e[0]))[: self.m]
            listed = {ad for ad, _ in board}
            for ad, row in board:
                changes.append(Change(TOP, True, {"kind": TOP, **self._row(ad, res, bucket, dict(row), ("top", ad, res, bucket))}))
            for ad in sorted(self.boards.get((res, bucket), set()) - listed):  # fell off the board
                row = self.rows[(ad, res, bucket)]
                changes.append(Change(TOP, False, {"kind": TOP, **self._row(ad, res, bucket, dict(row), ("top", ad, res, bucket))}))
            self.boards[(res, bucket)] = listed
        errors = [e for e in self.store.apply_many(changes) if e is not None]
        if errors:
            raise errors[0]
        newest = max(c["event_time"] for c in clicks)
        self.newest_ms = max(newest, self.newest_ms or newest)
        self.store.advance_freshness(self.newest_ms - WATERMARK_DELAY_MS, self.newest_ms)
        return len(changes)
