"""1m buckets expire (DynamoDB TTL, `minute_ttl_s`), 1h and 1d ones are kept: a window's edge
minutes older than that are trimmed to the hour instead of read as empty buckets, the answer's
window says what was counted, and a 1m series reaching past the retention is refused.

The trim rule against a brute force (every candidate window, the widest whose 1m buckets are all
kept), and end to end on in-process moto with the expired 1m items deleted, as TTL does: the
answer equals the oracle over the answer's own window; without the trim it would count minutes
whose items are gone."""
from __future__ import annotations

import random

import boto3
import pytest

from common.config import AggregationSettings, ResourceNames
from common.times import ceil_to, floor_to
from local.resources import create_serving_table
from query.service import QueryService
from query.windows import QueryError, Window, decompose, trim_to_minute_retention
from serving.keys import DEFAULT_MINUTE_TTL_S
from serving.read.dynamodb import DynamoDBQueryStore
from tests.query.truth import DAY, HOUR, MIN, load, oracle_top, serving_items, sparse_truth

TABLE = ResourceNames().serving_table
DAY0 = 1_795_000_000_000 - 1_795_000_000_000 % DAY
M = 16  # > the 10 ads: every board complete, so every answer is exact


def widest_kept(start: int, end: int, kept_from: int) -> tuple[int, int] | None:
    """Brute force: of the windows with each edge kept or moved to the hour inside, the widest
    whose 1m buckets are all at or after `kept_from` (None: none holds a minute)."""
    best = None
    for s in (start, ceil_to(start, HOUR)):
        for e in (end, floor_to(end, HOUR)):
            if s >= e:
                continue
            if all(m >= kept_from for m in decompose(Window(s, e)).minutes):
                if best is None or e - s > best[1] - best[0]:
                    best = (s, e)
    return best


def test_trim_equals_the_brute_force():
    rng = random.Random(21)
    trimmed = refused = kept = 0
    for _ in range(3000):
        start = DAY0 + rng.randrange(-3 * DAY // MIN, 3 * DAY // MIN) * MIN
        end = start + rng.choice([rng.randrange(1, 180), rng.randrange(1, 5 * 24 * 60)]) * MIN
        kept_from = start + rng.randrange(-2 * 24 * 60, 5 * 24 * 60) * MIN + rng.choice([0, 1, 30_000])
        expected = widest_kept(start, end, kept_from)
        if expected is None:
            with pytest.raises(QueryError, match="no whole hour"):
                trim_to_minute_retention(Window(start, end), kept_from)
            refused += 1
            continue
        got = trim_to_minute_retention(Window(start, end), kept_from)
        assert (got.start, got.end) == expected, (start, end, kept_from)
        trimmed += (got.start, got.end) != (start, end)
        kept += (got.start, got.end) == (start, end)
    assert min(trimmed, refused, kept) >= 100, (trimmed, refused, kept)
    assert trim_to_minute_retention(Window(DAY0 + 7 * MIN, DAY0 + 9 * MIN), None) == Window(DAY0 + 7 * MIN, DAY0 + 9 * MIN)


@pytest.fixture
def expired_table(aws):
    """33 days of sparse clicks; the 1m items older than the retention deleted (TTL's work)."""
    t = sparse_truth(5, DAY0 - 32 * DAY, 33, ads=10, rows_per_day=30)
    now = DAY0 + DAY - 7 * MIN
    kept_from = now - DEFAULT_MINUTE_TTL_S * 1000
    items = [i for i in serving_items(t, M) if not (
        i["pk"]["S"].startswith(("T#1m#", "S#")) and "ttl" in i and int(i["sk"]["S"][:13]) < kept_from)]
    assert len(items) < len(serving_items(t, M))  # some did expire
    ddb = boto3.client("dynamodb")
    create_serving_table(ddb, TABLE)
    load(ddb, TABLE, items)
    svc = QueryService(DynamoDBQueryStore(ddb, TABLE, M), AggregationSettings(leaderboard_size=M),
                       clock_ms=lambda: now)
    return t, svc, now, kept_from


def test_old_edge_minutes_are_trimmed_and_the_answer_is_exact_over_its_window(expired_table):
    t, svc, now, kept_from = expired_table
    to = now - 7 * MIN
    frm = to - 30 * DAY + 23 * MIN  # its edge minutes are 30 days old: expired
    body = svc.top({"from": str(frm), "to": str(to), "k": "5"})
    w = body["window"]
    assert (w["from_ms"], w["to_ms"]) == (ceil_to(frm, HOUR), to)  # the old edge trimmed, the new kept
    assert w["buckets"]["1m"] == (to - floor_to(to, HOUR)) // MIN
    expected, _ = oracle_top(t, w["from_ms"], w["to_ms"], 5, "clicks")
    assert body["exact"] and [(i["ad_id"], i["total"]) for i in body["items"]] == expected
    # the untrimmed window would hold clicks in the expired minutes: what the answer would miss
    lost = oracle_top(t, frm - frm % MIN, to, 100, "clicks")[0]
    assert dict(lost) != dict(oracle_top(t, w["from_ms"], to, 100, "clicks")[0])


def test_a_window_of_expired_minutes_only_is_refused(expired_table):
    _, svc, now, _ = expired_table
    frm = floor_to(now - 20 * DAY, HOUR) + 5 * MIN
    with pytest.raises(QueryError, match="no whole hour") as refused:
        svc.top({"from": str(frm), "to": str(frm + 50 * MIN)})
    assert refused.value.status == 400


def test_a_1m_series_past_the_retention_is_refused_a_1h_one_answered(expired_table):
    t, svc, now, kept_from = expired_table
    with pytest.raises(QueryError, match="1m points are kept for 8 days") as refused:
        svc.series("ad-001", {"resolution": "1m", "from": str(kept_from - MIN), "to": str(kept_from + 60 * MIN)})
    assert refused.value.status == 400
    ok = svc.series("ad-001", {"resolution": "1m", "from": str(ceil_to(kept_from, MIN)), "to": str(ceil_to(kept_from, MIN) + 60 * MIN)})
    assert len(ok["points"]) == 60
    hourly = svc.series("ad-001", {"resolution": "1h", "from": str(floor_to(now - 20 * DAY, HOUR)), "to": str(floor_to(now - 19 * DAY, HOUR))})
    assert len(hourly["points"]) == 24
