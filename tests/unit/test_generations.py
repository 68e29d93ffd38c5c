"""Rebuild generations (serving.generations) and the loader's pure parts (serving.rebuild.loader):
versions that supersede, commit markers, and which entries a reader keeps."""
from __future__ import annotations

import pytest

from serving import generations as g
from serving.keys import top_key, ts
from serving.rebuild.loader import change_for, leaderboard_buckets, marker_item

DAY, HOUR, MIN = 86_400_000, 3_600_000, 60_000
D = 1_765_000_000_000 - 1_765_000_000_000 % DAY


def entry(bucket: int, ad: str, version: int, clicks: int = 1) -> dict:
    k = top_key("1h", bucket, ad)
    return {"pk": {"S": k["pk"]}, "sk": {"S": k["sk"]}, "v": {"N": str(version)}, "c": {"N": str(clicks)}}


def marker(bucket: int, generation: int) -> dict:
    return marker_item("1h", bucket, generation)


def ads(items) -> list[str]:
    return sorted(i["sk"]["S"].partition("#")[2] for i in items)


def test_a_generations_versions_exceed_every_stream_version_and_order_among_themselves():
    assert g.versioned(0, 17) == 17
    assert g.versioned(1, 1) > g.versioned(0, (1 << 40) - 1)
    assert g.versioned(2, 1) > g.versioned(1, 10**12)
    assert g.generation_of(g.versioned(3, 12345)) == 3 and g.generation_of(999) == 0
    with pytest.raises(ValueError):
        g.versioned(1, 1 << 40)


def test_the_marker_sorts_inside_its_buckets_read_range_before_every_entry():
    b = D + 5 * HOUR
    m = marker(b, 1)["sk"]["S"]
    assert ts(b) < m < entry(b, "!", 1)["sk"]["S"] < entry(b, "a", 1)["sk"]["S"] < ts(b) + "$"
    assert m < entry(b, "", 1)["sk"]["S"]
    assert marker(b, 1)["pk"] == entry(b, "a", 1)["pk"]


def test_readers_keep_the_stream_board_until_the_marker_then_only_the_new_board():
    b1, b2 = D, D + HOUR
    stream = [entry(b1, "a", 5), entry(b1, "stale", 9), entry(b2, "x", 3)]
    half_written = [entry(b1, "a", g.versioned(1, 6))]
    # mid-load: the new entries are invisible, the old board is whole
    assert ads(g.committed(stream + half_written)) == ["a", "stale", "x"]
    assert [i["v"]["N"] for i in g.committed(stream + half_written) if "#a" in i["sk"]["S"]] == ["5"]
    # committed: only generation 1 in bucket b1 (the stale entry drops out); b2 untouched
    done = stream + half_written + [entry(b1, "b", g.versioned(1, 2)), marker(b1, 1)]
    assert ads(g.committed(done)) == ["a", "b", "x"]
    # a newer generation's marker hides generation 1, whatever the order of the items
    newer = done + [entry(b1, "c", g.versioned(2, 1)), marker(b1, 2)]
    assert ads(g.committed(list(reversed(newer)))) == ["c", "x"]
    # a committed bucket with no entries of its generation is empty (no clicks in the rebuild)
    assert ads(g.committed([entry(b2, "x", 3), marker(b2, 1)])) == []


def test_leaderboard_buckets_are_those_wholly_inside_the_range():
    got = leaderboard_buckets(D, D + DAY)
    assert len(got) == 1440 + 24 + 1 and ("1d", D) in got and ("1m", D + DAY - MIN) in got
    part = leaderboard_buckets(D + 30 * MIN, D + 2 * HOUR)
    assert [b for r, b in part if r == "1h"] == [D + HOUR]
    assert not [b for r, b in part if r == "1d"]
    assert len([b for r, b in part if r == "1m"]) == 90


def test_a_rebuilt_row_becomes_an_upsert_at_its_generations_version():
    row = {"kind": "agg", "resolution": "1m", "bucket_start": D, "entity_id": "a", "ad_id": "a", "version": 7}
    c = change_for(row, 3)
    assert c.upsert and c.kind == "agg" and c.version == (3 << 40) + 7 and row["version"] == 7
    with pytest.raises(ValueError):
        change_for({**row, "kind": "pulse"}, 1)
