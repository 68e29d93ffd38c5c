"""Decode the Flink job's changelog (debezium-json on the aggregates stream) into typed changes.

Flink writes every changelog row separately: +I/+U as {"before": null, "after": row, "op": "c"},
-U/-D as {"before": row, "after": null, "op": "d"}. -U and -D look the same on the wire, so the
consumer never relies on telling them apart: every row carries a `version` that grows per key,
and the serving store applies a row only if it is newer than what it holds (a retraction is
recorded as a tombstone at its version, which the following +U, always newer, overwrites).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

AGG, TOP, LATE = "agg", "top", "late"  # a row's metric columns: serving.table.METRICS
CAMPAIGN, ADVERTISER = "campaign", "advertiser"  # rollups: the metrics per campaign / advertiser
ROLLUPS = (CAMPAIGN, ADVERTISER)
# the budget lane (docs/budget.md): billable spend per campaign (1m, 1d), and the job's pulse
SPEND, PULSE = "spend", "pulse"
SERIES_KINDS = (AGG, *ROLLUPS, SPEND)  # kinds written as series items (serving.keys.series_key)
KINDS = (AGG, TOP, LATE, *ROLLUPS, SPEND, PULSE)
# the id column that names a row's key, per kind (the job's `entity_id` equals it)
ID_COLUMN = {AGG: "ad_id", TOP: "ad_id", LATE: "ad_id", CAMPAIGN: "campaign_id",
             ADVERTISER: "advertiser_id", SPEND: "campaign_id", PULSE: "entity_id"}


@dataclass(frozen=True)
class Change:
    kind: str  # agg | top | late | campaign | advertiser | spend | pulse
    upsert: bool  # False = retraction (tombstone at this version)
    row: dict[str, Any]

    @property
    def version(self) -> int:
        return int(self.row["version"])

    @property
    def entity_id(self) -> str:
        """The id the row's key is about: its ad, campaign or advertiser."""
        return str(self.row[ID_COLUMN[self.kind]])

    @property
    def bucket_start(self) -> int:
        return int(self.row["bucket_start"])


class BadChange(ValueError):
    """A record that is not a well-formed changelog row (reported as a batch item failure)."""


def decode_change(data: bytes) -> Change:
    try:
        envelope = json.loads(data)
        after, before = envelope.get("after"), envelope.get("before")
        row = after if after is not None else before
        if row is None or row.get("kind") not in KINDS:
            raise BadChange(f"not a clickagg changelog row: {str(envelope)[:200]}")
        id_column = ID_COLUMN[row["kind"]]
        if row.get("version") is None or row.get("bucket_start") is None or row.get(id_column) is None:
            raise BadChange(f"changelog row without version, bucket_start or {id_column}")
        return Change(row["kind"], after is not None, row)
    except (json.JSONDecodeError, AttributeError, TypeError) as exc:
        raise BadChange(str(exc)) from None
