"""`version` says how complete a row is, whatever the arrival order (sql.VERSION_WEIGHT).

A restored job re-reads its shards in another interleaving, so a click of an IP burst may arrive
before the burst's (N+1)th click (valid, then a correction row) in one run and after it (suspect
on arrival, no correction) in the next. Consumers keep the newest version per key, so the
complete row of either run must carry the same version, above every incomplete row of both.
This runs the job's real stage 1 + 2 (and the budget lane) twice on one burst, in the two
arrival orders, and compares the final row of every key: counts against the hand-derived
verdicts, versions across the runs. With version = COUNT(*) the burst ad's rows differ (2 vs 1).
"""
from __future__ import annotations

from pathlib import Path

import pytest

import harness
from aggregate.job import pipeline

T = 1_773_230_400_000  # 2026-03-11T12:00:00Z
THRESHOLD = 10  # ivt_burst_threshold's default: the 11th click of an IP in a second bursts
KEY = ("kind", "resolution", "bucket_start", "entity_id")
COMPARED = ("clicks", "billable_clicks", "suspect_clicks", "billable_cost_micros", "version")


def click(i: int, ad: str, ip: str, t: int) -> dict:
    return {"click_id": f"c-{i:03d}", "ad_id": ad, "campaign_id": "cmp-1", "advertiser_id": "adv-1",
            "user_id": f"u-{i:03d}", "event_time": t, "cost_micros": 1_000 * (i + 1), "ip": ip,
            "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36",
            "referrer": None, "ingest_time": t + 200, "request_id": f"r-{i}",
            "source_ip": "127.0.0.1", "impression_id": f"imp-{i:03d}", "issued_at": t - 60_000}


# One IP, THRESHOLD + 1 clicks in one second (every one suspect in the end), click 0 on ad-x and
# the others on ad-y; plus two clean clicks of ad-x from other IPs. Only the burst's order moves.
BURST = [click(i, "ad-x" if i == 0 else "ad-y", "172.16.9.9", T + 10 * i) for i in range(THRESHOLD + 1)]
CLEAN = [click(100 + i, "ad-x", f"10.0.0.{i + 1}", T + 500 + i) for i in range(2)]
ORDERS = {"x_first": BURST + CLEAN,  # x arrives valid; the 11th click corrects it
          "x_last": BURST[1:] + [BURST[0]] + CLEAN}  # x arrives as the 11th: suspect on arrival


def final_rows(rows: list[dict], tmp_path: Path) -> tuple[dict, list[str]]:
    """{key: final row} of the output changelog, and the keys whose versions did not rise."""
    settings, t_env = harness.file_source_env(rows, tmp_path, leaderboard_size="3")
    output = pipeline.build_output_in(t_env, settings)
    names = output.get_schema().get_field_names()
    final, not_rising = {}, []
    with output.execute().collect() as it:
        for r in it:
            if str(r.get_row_kind()) not in ("+I", "+U"):
                continue
            row = dict(zip(names, tuple(r)))
            key = tuple(row[k] for k in KEY)
            if key in final and row["version"] <= final[key]["version"]:
                not_rising.append(f"{key}: {final[key]['version']} then {row['version']}")
            final[key] = row
    return final, not_rising


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {name: final_rows(rows, tmp_path_factory.mktemp(name)) for name, rows in ORDERS.items()}


def test_counts_follow_the_burst_in_both_orders(runs):
    """The oracle by hand: all 11 burst clicks suspect, the two clean clicks of ad-x billable."""
    minute = T - T % 60_000
    want = {"ad-x": (3, 2, 1, CLEAN[0]["cost_micros"] + CLEAN[1]["cost_micros"]),
            "ad-y": (THRESHOLD, 0, THRESHOLD, 0)}
    for name, (final, _) in runs.items():
        for ad, (clicks, billable, suspect, billable_cost) in want.items():
            row = final[("agg", "1m", minute, ad)]
            got = (row["clicks"], row["billable_clicks"], row["suspect_clicks"], row["billable_cost_micros"])
            assert got == (clicks, billable, suspect, billable_cost), (name, ad, got)
        spend = final[("spend", "1m", minute, "cmp-1")]
        assert (spend["billable_clicks"], spend["billable_cost_micros"]) == (2, want["ad-x"][3]), name


def test_final_rows_carry_the_same_version_in_both_orders(runs):
    a, b = runs["x_first"][0], runs["x_last"][0]
    assert set(a) == set(b)
    differ = {k: ({c: a[k][c] for c in COMPARED}, {c: b[k][c] for c in COMPARED})
              for k in a if any(a[k][c] != b[k][c] for c in COMPARED)}
    assert not differ, differ
    # the weights: 2 per burst click (11), 1 per clean click; ad-x = x + 2 clean
    minute = T - T % 60_000
    assert a[("agg", "1m", minute, "ad-x")]["version"] == 2 + 2
    assert a[("agg", "1m", minute, "ad-y")]["version"] == 2 * THRESHOLD
    assert a[("spend", "1m", minute, "cmp-1")]["version"] == 2 * (THRESHOLD + 1) + 2


def test_versions_rise_with_every_emission(runs):
    for name, (_, not_rising) in runs.items():
        assert not not_rising, (name, not_rising[:5])
