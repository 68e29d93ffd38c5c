"""Parameter parsing and window semantics (pure)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from query.freshness import freshness
from query.windows import (DAY_MS, HOUR_MS, MINUTE_MS, QueryError, decompose, iso, parse_series,
                           parse_time, parse_top, Window)

H = 1_795_000_000_000 - 1_795_000_000_000 % DAY_MS + 10 * HOUR_MS  # 10:00 UTC
NOW = H + 30 * MINUTE_MS + 12_345  # 10:30:12.345


def top(**params):
    return parse_top({k: str(v) for k, v in params.items()}, NOW)


def test_defaults_last_hour_ending_after_current_minute():
    r = top()
    assert (r.window.start, r.window.end) == (H - 29 * MINUTE_MS, H + 31 * MINUTE_MS)
    assert (r.k, r.metric, r.campaign_id) == (10, "clicks", None)


def test_last_and_to():
    r = top(last="5m", to=H)
    assert (r.window.start, r.window.end) == (H - 5 * MINUTE_MS, H)
    r = top(last="24h")
    assert r.window.end - r.window.start == DAY_MS


def test_edges_inside_a_minute_floor_both_ends():
    r = top(**{"from": H + 30_000, "to": H + 5 * MINUTE_MS + 59_999})
    assert (r.window.start, r.window.end) == (H, H + 5 * MINUTE_MS)  # partial last minute excluded
    with pytest.raises(QueryError, match="no whole minute"):
        top(**{"from": H + 1_000, "to": H + 59_000})


def test_iso_with_offsets_and_epoch_ms():
    assert parse_time("from", "2026-11-19T10:00:00Z") == parse_time("from", "2026-11-19T11:00:00+01:00")
    assert parse_time("from", "2026-11-19T11:00:00 01:00") == parse_time("from", "2026-11-19T10:00:00Z")
    assert parse_time("to", str(H)) == H
    assert iso(H) == "2026-11-18T10:00:00.000Z" and iso(H + 5) == "2026-11-18T10:00:00.005Z"


@pytest.mark.parametrize("params,reason", [
    ({"k": "0"}, "'k' out of range"), ({"k": "101"}, "'k' out of range"), ({"k": "ten"}, "'k' must"),
    ({"k": "-1"}, "'k' must"), ({"last": "721h"}, "between 1m and 30d"), ({"last": "31d"}, "between 1m and 30d"),
    ({"last": "0m"}, "between"), ({"last": "0d"}, "between"), ({"last": "1w"}, "'last' must"),
    ({"last": "90s"}, "'last' must"),
    ({"from": str(H), "to": str(H + 30 * DAY_MS + MINUTE_MS)}, "window too long: 43201 minutes \\(at most 30d\\)"),
    ({"metric": "ctr", "min_volume": "0"}, "'min_volume' out of range"),
    ({"metric": "roas", "min_volume": "1.5"}, "'min_volume' must be an integer"),
    ({"metric": "cost", "min_volume": "100"}, "applies to a ratio metric"),
    ({"from": str(H), "to": str(H)}, "before 'to'"), ({"from": str(H + 1), "to": str(H)}, "before 'to'"),
    ({"metric": "views"}, "unknown metric"), ({"from": "yesterday"}, "neither epoch"),
    ({"from": "2026-11-19T10:00:00"}, "UTC offset"), ({"from": "1"}, "out of range"),
    ({"last": "1h", "from": str(H)}, "either 'last' or 'from'"),
    ({"campaign_id": "a b"}, "printable ASCII"), ({"campaign_id": "x" * 129}, "printable ASCII"),
])
def test_bad_params(params, reason):
    with pytest.raises(QueryError, match=reason) as e:
        parse_top(params, NOW)
    assert e.value.status == 400


def test_exactly_24h_on_hour_boundaries_is_whole_hours():
    r = top(**{"from": H, "to": H + DAY_MS})
    d = r.decomposition
    assert len(d.hours) == 24 and d.minutes == ()


def test_decomposition_edges():
    d = decompose(Window(H - 7 * MINUTE_MS, H + 2 * HOUR_MS + 3 * MINUTE_MS))
    assert d.hours == (H, H + HOUR_MS)
    assert d.minutes == tuple(range(H - 7 * MINUTE_MS, H, MINUTE_MS)) + \
        tuple(range(H + 2 * HOUR_MS, H + 2 * HOUR_MS + 3 * MINUTE_MS, MINUTE_MS))
    d = decompose(Window(H + MINUTE_MS, H + 2 * HOUR_MS - MINUTE_MS))  # no whole hour inside
    assert d.hours == () and len(d.minutes) == 118


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40 * DAY_MS), st.integers(MINUTE_MS, 30 * DAY_MS), st.sampled_from([0, 1, 2]))
def test_decomposition_covers_each_minute_once(start_off, length, align):
    """Each minute of any window up to 30 days once, from the coarsest bucket that fits: whole
    UTC days from 1d, the other whole hours from 1h, the rest from 1m; every bucket starts on its
    resolution; at most 2 partitions per resolution (serving.keys' spans), at most 194 buckets."""
    start = H + start_off - (H + start_off) % (MINUTE_MS, HOUR_MS, DAY_MS)[align]
    w = Window(start, start + length - length % MINUTE_MS)
    d = decompose(w)
    covered = ([m for day in d.days for m in range(day, day + DAY_MS, MINUTE_MS)]
               + [m for h in d.hours for m in range(h, h + HOUR_MS, MINUTE_MS)] + list(d.minutes))
    assert sorted(covered) == list(w.buckets)
    assert all(b % DAY_MS == 0 for b in d.days) and all(b % HOUR_MS == 0 for b in d.hours)
    # no coarser bucket was left out: no whole day among the hours, no whole hour among the minutes
    assert not any(set(range(day, day + DAY_MS, HOUR_MS)) <= set(d.hours) for day in {h - h % DAY_MS for h in d.hours})
    assert not any(set(range(h, h + HOUR_MS, MINUTE_MS)) <= set(d.minutes) for h in {m - m % HOUR_MS for m in d.minutes})
    assert len(d.days) <= 30 and len(d.hours) <= 46 and len(d.minutes) <= 118
    assert len({b - b % (30 * DAY_MS) for b in d.days}) <= 2
    assert len({h - h % DAY_MS for h in d.hours}) <= 2 and len({m - m % HOUR_MS for m in d.minutes}) <= 2
    assert d.counts() == {"1d": len(d.days), "1h": len(d.hours), "1m": len(d.minutes)}


def test_thirty_days():
    r = top(last="30d", to=H)  # 10:00: 29 whole days, 10 + 14 whole hours at the edges
    d = r.decomposition
    assert r.window.end - r.window.start == 30 * DAY_MS == top(last="720h", to=H).window.end - top(
        last="720h", to=H).window.start
    assert d.counts() == {"1d": 29, "1h": 24, "1m": 0}
    assert d.days[0] == H - 30 * DAY_MS + 14 * HOUR_MS and d.hours[0] == H - 30 * DAY_MS
    r = top(**{"from": str(H - H % DAY_MS - 30 * DAY_MS), "to": str(H - H % DAY_MS)})  # whole days only
    assert r.decomposition.counts() == {"1d": 30, "1h": 0, "1m": 0}
    r = top(last="7d", to=H + 5 * MINUTE_MS + 30_000)  # 10:05:30 -> 10:05: 55 + 5 edge minutes, 13 + 10 hours
    assert r.decomposition.counts() == {"1d": 6, "1h": 23, "1m": 60}
    assert top(last="1d").window.end - top(last="1d").window.start == DAY_MS


def test_min_volume_only_for_ratios():
    assert top(metric="ctr").min_volume == 100 and top(metric="roas", min_volume="1").min_volume == 1
    assert top(metric="cpa", min_volume=" 7 ").min_volume == 7 and top(metric="impressions").min_volume is None
    assert top(metric="clicks", min_volume="").min_volume is None


def test_series_floor_from_ceil_to_and_point_limit():
    r = parse_series("ad-1", {"resolution": "5m", "from": str(H + 7 * MINUTE_MS), "to": str(H + 21 * MINUTE_MS + 1)}, NOW)
    assert (r.window.start, r.window.end, len(r.window.buckets)) == (H + 5 * MINUTE_MS, H + 25 * MINUTE_MS, 4)
    r = parse_series("ad-1", {"resolution": "1d", "last": "1h"}, NOW)
    assert len(r.window.buckets) == 1
    parse_series("a", {"resolution": "1m", "from": str(H), "to": str(H + 1500 * MINUTE_MS)}, NOW)
    with pytest.raises(QueryError, match="too many points"):
        parse_series("a", {"resolution": "1m", "from": str(H), "to": str(H + 1501 * MINUTE_MS)}, NOW)
    # 30 days: 720 points at 1h, 30 at 1d (31 when the window is not on the day), too many at 5m
    assert len(parse_series("c", {"resolution": "1h", "last": "30d", "to": str(H)}, NOW, "campaign").window.buckets) == 720
    assert len(parse_series("v", {"resolution": "1d", "last": "30d", "to": str(H - H % DAY_MS)}, NOW,
                            "advertiser").window.buckets) == 30
    assert len(parse_series("v", {"resolution": "1d", "last": "30d"}, NOW, "advertiser").window.buckets) == 31
    with pytest.raises(QueryError, match="too many points: 8640 at 5m"):
        parse_series("a", {"resolution": "5m", "last": "30d", "to": str(H)}, NOW)
    with pytest.raises(QueryError, match="'campaign_id' must"):
        parse_series("a b", {}, NOW, "campaign")
    with pytest.raises(QueryError, match="unknown resolution"):
        parse_series("a", {"resolution": "2m"}, NOW)
    with pytest.raises(QueryError, match="ad_id"):
        parse_series("a\u00e9", {}, NOW)


def test_freshness_final_iff_watermark_past_end_plus_lateness():
    f = freshness(H + 20 * MINUTE_MS, H + 21 * MINUTE_MS, H + 22 * MINUTE_MS, 15 * MINUTE_MS, H + 5 * MINUTE_MS)
    assert f["final"] is True and f["lag_ms"] == MINUTE_MS and f["watermark"].endswith("T10:20:00.000Z")
    f = freshness(H + 20 * MINUTE_MS - 1, None, H, 15 * MINUTE_MS, H + 5 * MINUTE_MS)
    assert f["final"] is False and f["lag_ms"] is None
    assert freshness(None, None, H, 0, H)["final"] is False
    assert "final" not in freshness(None, None, H, 0)
