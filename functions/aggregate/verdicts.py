"""What the sink adds to the serving store per IVT verdict: the input of the IVT-rate alarm.

Every counted click is in exactly one 1-minute 'agg' row (its ad's minute); the 5m/1h/1d rows and
the leaderboard entries repeat it. So the sink counts only 1m 'agg' upserts: when one replaces the
stored item (a newer version), the item's counts move from the old row's to the new row's, and
the difference per column is what the store learnt about those clicks:

  delta[m] = new_row[m] - previous_item[m]   (previous: 0 when the key was new, or for a column
                                              an item written before the verdicts existed lacks)

A stale or repeated row changes nothing and adds nothing. Per key the deltas of the writes that
happened telescope to its newest row, so summed over any set of deliveries (redelivered,
reordered, bisected batches) they equal the clicks per verdict the store holds: counted once.
The DynamoDB writer learns `previous` from its conditional PutItem (ReturnValues=ALL_OLD: the
same write, no extra request, no read capacity); the Timestream writer cannot (WriteRecords
returns no old values), so with Timestream nothing is published.

A delta may be negative: the job may re-classify clicks it counted earlier (an IP burst found
later turns valid clicks suspect), so billable_clicks of one key can shrink from one version to
the next while clicks never do. The metrics are deltas, not levels: a period's sums are "clicks
newly counted" and "suspect / invalid clicks newly known", whose ratio over 5 minutes is the
recent IVT rate (the re-classification of older clicks lands in the period it was learnt in).

Published by aggregate.sink_handler as EMF metrics (namespace ClickAgg, dimension service=sink),
one value per batch and verdict; infra.constructs.ivt_alarm alarms on
100 * (ClicksSuspect + ClicksInvalid) / ClicksCounted over 5 minutes > ivt_alert_percent.
Pure (stdlib, the changelog types, serving.table's column lists): tested directly.
"""
from __future__ import annotations

import threading
from typing import Mapping, Optional

from aggregate.changes import AGG, Change
from serving.table import VERDICT_COUNTS

COUNTED_RESOLUTION = "1m"
SERVICE = "sink"  # the EMF `service` dimension (common.observability.handler_metrics("sink"))
# changelog column (serving.table.VERDICT_COUNTS) -> EMF metric name (the alarm reads these)
VERDICT_METRICS = dict(zip(VERDICT_COUNTS, ("ClicksCounted", "ClicksValid", "ClicksSuspect", "ClicksInvalid"),
                           strict=True))


def is_counted(change: Change) -> bool:
    """A change whose deltas count clicks once: an upsert of a 1m aggregate."""
    return change.kind == AGG and change.upsert and change.row.get("resolution") == COUNTED_RESOLUTION


def verdict_delta(row: Mapping, previous: Mapping[str, int]) -> dict[str, int]:
    """{column: new - previous} for every VERDICT_METRICS column (missing or null: 0)."""
    return {m: int(row.get(m) or 0) - int(previous.get(m) or 0) for m in VERDICT_METRICS}


class VerdictTally:
    """Sums of the deltas of a store's counted writes, from its writer threads; `take` hands
    them over and starts again (each delta is taken exactly once, whoever takes it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sums: Optional[dict[str, int]] = None

    def add(self, delta: Mapping[str, int]) -> None:
        with self._lock:
            if self._sums is None:
                self._sums = dict.fromkeys(VERDICT_METRICS, 0)
            for m in VERDICT_METRICS:
                self._sums[m] += delta.get(m, 0)

    def take(self) -> Optional[dict[str, int]]:
        """The sums since the last take; None when no counted change was written since."""
        with self._lock:
            sums, self._sums = self._sums, None
        return sums
