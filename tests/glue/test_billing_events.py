"""The billing job's impressions and conversions (glue_jobs/billing/events.py) on generated
archives (tests/glue/events_scenario.py) vs the independent oracle (tests/glue/events_oracle.py),
hand-placed cases with hand-written outcomes, the reconciliation against a modelled stream and
the named reports on DuckDB over the job's output. D-1 and D are billed, in that order (D's
attribution reads D-1's verdicts); D-2 .. D-8 are not."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from common.named_queries import render
from glue_jobs.billing import events as ev
from glue_jobs.billing.outputs import CONVERSION_COLUMNS, EVENTS_HOURLY_COLUMNS, names
from glue_jobs.billing.run import run_day
from glue_jobs.billing.transform import BillingSettings
from glue_jobs.reconcile import reconcile
from tests.glue.events_oracle import click_verdicts, events_oracle
from tests.glue.oracle import billing_oracle, day_start
from tests.glue.events_scenario import build
from tests.glue.stream_model import simulated_events_stream, simulated_stream
from tests.glue.test_billing import keyed, read_day

DAY = date(2026, 3, 10)
PREV = DAY - timedelta(days=1)
SETTINGS = BillingSettings()
KEYS = ("advertiser_id", "campaign_id", "ad_id", "hour_start_ms")
EVENT_METRICS = [c for c in names(EVENTS_HOURLY_COLUMNS) if c not in KEYS + ("hour",)]


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("billing-events")
    scenario = build(DAY)
    scenario.write(root / "raw" / "clicks")
    scenario.write_events(root / "raw" / "events")
    paths = {"raw": str(root / "raw" / "clicks"), "events": str(root / "raw" / "events"), "out": str(root / "out")}
    stats = {d: run_day(spark, paths["raw"], paths["out"], d, SETTINGS, events_path=paths["events"])
             for d in (PREV, DAY)}
    billed = click_verdicts(scenario.rows, [PREV, DAY])
    oracle = {d: events_oracle(scenario.events, scenario.rows, d, {x: v for x, v in billed.items() if x <= d})
              for d in (PREV, DAY)}
    return {"scenario": scenario, **paths, "stats": stats, "oracle": oracle}


def events_keyed(rows) -> dict:
    """{key: the non-zero metrics} (the oracle leaves zeros out)."""
    return {tuple(r[k] for k in KEYS): {m: r[m] for m in EVENT_METRICS if r[m]} for r in rows}


def conversions_of(world, day) -> dict[str, dict]:
    return {r["conversion_id"]: r for r in read_day(world["out"], "conversions", day)}


def test_attribution_reads_the_window_before_the_day():
    """7 days + 5 min (max_future_skew_s) before D 00:00: from D-8 hr 23 to D's cutoff; the
    verdicts of D-7 .. D from their own runs."""
    paths = ev.attribution_partitions("s3://b/raw/clicks/", DAY, SETTINGS)
    assert paths[0] == "s3://b/raw/clicks/dt=2026-03-02/hr=23"
    assert paths[1] == "s3://b/raw/clicks/dt=2026-03-03/hr=00"
    assert paths[-1] == "s3://b/raw/clicks/dt=2026-03-11/hr=01"
    assert len(paths) == len(set(paths)) == 1 + 7 * 24 + 24 + 2
    assert ev.verdict_days(DAY, SETTINGS) == [DAY - timedelta(days=i) for i in range(7, -1, -1)]
    short = BillingSettings(attribution_window_s=3600, cutoff_hours=0)
    assert ev.attribution_partitions("/x", DAY, short) == [
        "/x/dt=2026-03-09/hr=22", "/x/dt=2026-03-09/hr=23", *[f"/x/dt=2026-03-10/hr={h:02d}" for h in range(24)]]
    assert ev.verdict_days(DAY, short) == [PREV, DAY]
    assert ev.verdict_days(DAY, BillingSettings(attribution_window_s=60)) == [PREV, DAY]


@pytest.mark.parametrize("day", [PREV, DAY], ids=["D-1", "D"])
def test_events_hourly_rows_equal_oracle(world, day):
    rows = read_day(world["out"], "events_hourly", day)
    hourly, _ = world["oracle"][day]
    assert events_keyed(rows) == hourly
    assert [c for c in rows[0] if c != "dt"] == list(names(EVENTS_HOURLY_COLUMNS))
    for r in rows:
        assert int(r["hour"].timestamp() * 1000) == r["hour_start_ms"] and r["dt"] == day.isoformat()
        assert r["conversions"] == r["attributed_conversions"] + sum(
            r[f"{x}_conversions"] for x in ev.NOT_ATTRIBUTED)
        assert r["attributed_value_micros"] <= r["conversion_value_micros"]
        assert r["token_conversions"] <= r["conversions"]
    stats = world["stats"][day]
    assert stats["impressions"] == sum(m.get("impressions", 0) for m in hourly.values()) > 100
    assert stats["attributed_conversions"] == sum(m.get("attributed_conversions", 0) for m in hourly.values())


@pytest.mark.parametrize("day", [PREV, DAY], ids=["D-1", "D"])
def test_conversions_detail_equals_oracle(world, day):
    got = conversions_of(world, day)
    _, detail = world["oracle"][day]
    assert set(got) == set(detail)
    for cid, want in detail.items():
        r = got[cid]
        assert (r["attribution"], (r["advertiser_id"], r["campaign_id"], r["ad_id"]), r["matched_click_id"],
                r["click_verdict"], r["value_micros"], r["event_time"], r["copies"]) == (
            want["attribution"], want["ids"], want["matched_click_id"], want["click_verdict"],
            want["value_micros"], want["event_time"], want["copies"]), cid
    assert [c for c in next(iter(got.values())) if c != "dt"] == list(names(CONVERSION_COLUMNS))
    stats = world["stats"][day]
    by_reason = Counter(r["attribution"] for r in got.values())
    assert stats["conversions"] == len(got)
    assert {r: stats[f"conversions_{r}"] for r in ev.NOT_ATTRIBUTED} == {r: by_reason[r] for r in ev.NOT_ATTRIBUTED}


# hand-written outcomes (events_scenario._conversion_cases)
CASES = {
    "conv_token_attributed": "attributed",
    "conv_click_id_only_attributed": "attributed",
    "conv_token_impression_only": "attributed",
    "conv_names_impression_repeat": "invalid_click",
    "conv_impression_first_click_bot": "invalid_click",
    "conv_click_id_bot": "invalid_click",
    "conv_suspect_click": "invalid_click",
    "conv_unknown_click_id_only": "unknown_click",
    "conv_unknown_token": "unknown_click",
    "conv_unclicked_impression": "unknown_click",
    "conv_gap_zero": "attributed",
    "conv_gap_minus_1": "outside_window",
    "conv_impression_clicked_after": "outside_window",
    "conv_prev_day_click_id_only": "attributed",
    "conv_prev_day_impression": "attributed",
    "conv_prev_day_bot": "invalid_click",
    "conv_click_after_its_cutoff": "unverified_click",
    "conv_impression_span": "attributed",
    "conv_unbilled_day": "unverified_click",
    "conv_window_edge": "unverified_click",  # in the window (gap = window), its day not billed
    "conv_window_edge_plus_1": "outside_window",  # 1 ms more: outside, whatever the verdict
    "conv_first_partition": "unverified_click",  # found in the first partition read
    "conv_beyond_look_back": "unknown_click",
    "conv_resent": "attributed",
    "conv_late_edge": "attributed",
    "conv_late": "attributed",
}


@pytest.mark.parametrize("source", ["job", "oracle"])
def test_each_attribution_reason(world, source):
    """Hand-placed cases against the job's output and, separately, the oracle's."""
    named = world["scenario"].named
    if source == "job":
        got = {cid: r["attribution"] for cid, r in conversions_of(world, DAY).items()}
    else:
        got = {cid: d["attribution"] for cid, d in world["oracle"][DAY][1].items()}
    assert {name: [got.get(cid, "absent") for cid in named[name]] for name in CASES} == {
        name: [want] for name, want in CASES.items()}
    for name in ("conv_prev_day_occurred", "conv_next_day_occurred"):  # other days' conversions
        assert [got.get(cid, "absent") for cid in named[name]] == ["absent"]
    assert set(Counter(got.values())) == {"attributed", *ev.NOT_ATTRIBUTED}


def test_click_id_only_conversions_take_their_clicks_ad(world):
    named, scenario = world["scenario"].named, world["scenario"]
    clicks = {c["click_id"]: c for c, _ in scenario.rows}
    got = conversions_of(world, DAY)
    for name in ("conv_click_id_only_attributed", "conv_prev_day_click_id_only", "conv_click_id_bot"):
        [cid] = named[name]
        r = got[cid]
        click = clicks[r["click_id"]]
        assert r["attributed_by"] == "click_id" and r["matched_click_id"] == click["click_id"]
        assert (r["advertiser_id"], r["campaign_id"], r["ad_id"]) == (
            click["advertiser_id"], click["campaign_id"], click["ad_id"]), name
    # attributed under ad-31 (the click's ad) in the hour it occurred
    [cid] = named["conv_click_id_only_attributed"]
    row = [r for r in read_day(world["out"], "events_hourly", DAY)
           if r["ad_id"] == "ad-31" and r["hour_start_ms"] == got[cid]["hour_start_ms"]]
    assert [(r["conversions"], r["attributed_conversions"], r["token_conversions"]) for r in row] == [(1, 1, 0)]
    # an unknown click named by click_id only: kept in the detail, no ad, no hourly row
    [cid] = named["conv_unknown_click_id_only"]
    assert got[cid]["ad_id"] is None and got[cid]["matched_click_id"] is None
    assert world["stats"][DAY]["conversions_without_ad"] == 1
    assert sum(r["conversions"] for r in read_day(world["out"], "events_hourly", DAY)) == (
        world["stats"][DAY]["conversions"] - 1)


def test_impression_lookup_elects_the_first_click(world):
    named, got = world["scenario"].named, conversions_of(world, DAY)
    assert got[named["conv_token_impression_only"][0]]["matched_click_id"] == named["click_imp_first"][0]
    assert got[named["conv_impression_span"][0]]["matched_click_id"] == named["click_span_first"][0]
    bot = got[named["conv_impression_first_click_bot"][0]]
    assert (bot["matched_click_id"], bot["click_verdict"]) == (named["click_bot"][0], "invalid")
    assert got[named["conv_suspect_click"][0]]["click_verdict"] == "suspect"


def test_look_back_across_the_day_boundary(world):
    """D's conversions of D-1 clicks carry D-1's own verdicts (its flagged output); a D-1 click
    D-1's run never saw (arrived after its cutoff) and the clicks of unbilled days are unverified."""
    named, got = world["scenario"].named, conversions_of(world, DAY)
    flagged_prev = {r["click_id"]: r["verdict"] for r in read_day(world["out"], "flagged", PREV)}
    assert flagged_prev[named["click_prev_day_bot"][0]] == "invalid"
    assert got[named["conv_prev_day_bot"][0]]["click_verdict"] == "invalid"
    prev = got[named["conv_prev_day_click_id_only"][0]]
    assert (prev["click_verdict"], prev["click_event_time"]) == ("valid", day_start(DAY) - 10 * 60_000)
    assert got[named["conv_click_after_its_cutoff"][0]]["click_verdict"] is None
    stats = world["stats"][DAY]
    assert (stats["verdict_days"], stats["verdict_days_billed"]) == (8, 2)  # D-7 .. D; D-1 and D
    assert stats["attribution_partitions_read"] > 27  # D-8 hr 23 (first), D-7 00, D-2 03, D-1 ...


def test_rerun_of_the_previous_day_changes_what_is_verified(world, spark, tmp_path):
    """The order matters: billed alone (D-1 not billed), D's conversions of D-1 clicks are
    unverified; the clicks of D keep their verdicts (the flagged detail is written with events,
    whatever write_flagged says: attributions read it)."""
    out = str(tmp_path / "out")
    run_day(spark, world["raw"], out, DAY, SETTINGS, write_flagged=False, events_path=world["events"])
    assert (tmp_path / "out" / "flagged" / f"dt={DAY.isoformat()}").is_dir()
    got = {cid: r["attribution"] for cid, r in conversions_of({"out": out}, DAY).items()}
    billed = click_verdicts(world["scenario"].rows, [DAY])
    _, want = events_oracle(world["scenario"].events, world["scenario"].rows, DAY, billed)
    assert got == {cid: d["attribution"] for cid, d in want.items()}
    named = world["scenario"].named
    for name in ("conv_prev_day_click_id_only", "conv_prev_day_bot", "conv_prev_day_impression"):
        assert got[named[name][0]] == "unverified_click", name
    assert got[named["conv_token_attributed"][0]] == "attributed"


def test_duplicates_are_counted_once(world):
    named, scenario = world["scenario"].named, world["scenario"]
    rows = read_day(world["out"], "events_hourly", DAY)
    copies = Counter(e["event_id"] for e, _ in scenario.events)
    # impressions: three copies, one impression; the first copy by ingest time decides ad and hour
    [imp] = set(named["imp_resent_twice"])
    assert copies[imp] == 3
    t = day_start(DAY) + 9 * 3_600_000
    ad20 = [r for r in rows if r["ad_id"] == "ad-20" and r["hour_start_ms"] == t]
    # 2 copies of imp_resent_twice beyond its first, 1 of imp_first_copy_wins, imp_ingest_not_arrival
    assert [(r["impressions"], r["duplicate_impression_copies"]) for r in ad20] == [(3, 4)]
    assert not [r for r in rows if r["ad_id"] == "ad-21"]  # later copies' ad never counts
    # conversions: five copies, four read (one after the cutoff); the first copy's value
    [cid] = set(named["conv_resent"])
    assert copies[cid] == 5
    r = conversions_of(world, DAY)[cid]
    assert (r["copies"], r["value_micros"], r["attribution"]) == (4, 7_000_000, "attributed")
    # the cutoff and other days
    got = {k for r in rows for k in [r["ad_id"]]}
    assert "ad-20" in got
    imp_rows = {e["event_id"] for e, _ in scenario.events if e["event_type"] == "impression"}
    assert set(named["imp_after_cutoff"]) <= imp_rows
    prev_rows = read_day(world["out"], "events_hourly", PREV)
    hour23 = [r for r in prev_rows if r["ad_id"] == "ad-20"]
    assert sum(r["impressions"] for r in hour23) == 1  # imp_prev_day: D-1's, arrived on D
    last = [r for r in rows if r["ad_id"] == "ad-20" and r["hour_start_ms"] == day_start(DAY) + 23 * 3_600_000]
    assert [r["impressions"] for r in last] == [1]  # imp_last_ms_before_cutoff; imp_after_cutoff not read


def test_late_diagnostics(world):
    rows = read_day(world["out"], "events_hourly", DAY)
    ad22 = {r["hour_start_ms"]: r for r in rows if r["ad_id"] == "ad-22"}
    ten = ad22[day_start(DAY) + 10 * 3_600_000]
    assert (ten["impressions"], ten["late_impressions"]) == (3, 2)  # the edge and the clearly late one
    late = sum(r["late_token_conversions"] for r in rows)
    assert late == 2 == sum(m.get("late_token_conversions", 0) for m in world["oracle"][DAY][0].values())


def test_reconcile_events_against_simulated_stream(world):
    """The stream modelled independently (stream_model.simulated_events_stream: arrival order,
    the events' own watermark, keep-first dedup with a state TTL) against the batch's rows:
    every impression / conversion difference explained by the causes placed by hand."""
    d0 = day_start(DAY)
    scenario = world["scenario"]
    clicks_rt = simulated_stream(scenario.rows, d0)
    events_rt = simulated_events_stream(scenario.events, d0)
    realtime = defaultdict(Counter)
    for r in clicks_rt + events_rt:
        realtime[(r["ad_id"], r["hour_start_ms"])].update(
            {k: v for k, v in r.items() if k not in ("ad_id", "hour_start_ms")})
    realtime_rows = [{"ad_id": a, "hour_start_ms": h, **m} for (a, h), m in realtime.items()]
    batch = read_day(world["out"], "hourly", DAY)
    events_rows = read_day(world["out"], "events_hourly", DAY)
    rows, summary = reconcile(batch, realtime_rows, events_rows=events_rows)
    imps, convs = summary["impressions"], summary["conversions"]
    # the stream dropped the clearly late impression and conversion (it counted the edge ones)
    assert (convs["total_diff"], convs["explained"], convs["unexplained"]) == (-1, {"late": 1, "duplicates": 0}, 0)
    assert imps["explained"] == {"late": 1, "duplicates": 0}
    assert imps["classes"]["late_beyond_lateness"] == 1 == convs["classes"]["late_beyond_lateness"]
    # imp_after_cutoff reached the stream at once but the archive only after D's cutoff: the
    # stream counted it, the batch never read it (no diagnostic can know): +1 unexplained
    [after] = [r for r in rows if r["impressions_unexplained"]]
    assert (after["ad_id"], after["hour_start_ms"], after["impressions_unexplained"]) == (
        "ad-20", d0 + 23 * 3_600_000, 1)
    assert (imps["total_diff"], imps["unexplained"], imps["classes"]["unexplained"]) == (0, 1, 1)
    assert imps["batch"] == sum(r["impressions"] for r in events_rows) > 2_000
    assert convs["batch"] == sum(r["token_conversions"] for r in events_rows)
    assert imps["flag"] is False and convs["flag"] is True  # 0 of ~3,000 in total; 1 of ~40
    [late] = world["scenario"].named["conv_late"]
    value = next(e["value_micros"] for e, _ in scenario.events if e["event_id"] == late)
    assert convs["value_micros"]["diff"] == -value


def test_named_reports_on_duckdb(world):
    """ctr_per_campaign_per_day and conversions_per_campaign_per_day (DuckDB, the SQL Athena
    runs) over the job's output = the oracles' hourly rows summed per campaign and day."""
    from tools.analytics import run_duckdb

    now = int(datetime(2026, 3, 11, 9, 30, tzinfo=timezone.utc).timestamp() * 1000)
    want = defaultdict(Counter)
    for d in (PREV, DAY):
        clicks, _ = billing_oracle(world["scenario"].rows, d)
        for (_, campaign, _, _), m in clicks.items():
            want[(campaign, d.isoformat())].update(clicks=m["billable_clicks"], cost=m["billable_cost_micros"])
        for (_, campaign, _, _), m in world["oracle"][d][0].items():
            want[(campaign, d.isoformat())].update(impressions=m.get("impressions", 0),
                                                   conversions=m.get("attributed_conversions", 0),
                                                   value=m.get("attributed_value_micros", 0))
    billing = world["out"]
    from pathlib import Path

    sql, binds = render("ctr_per_campaign_per_day", {"n": "3"}, now_ms=now)
    assert binds == ["2026-03-08", "2026-03-11"] * 2
    cols, rows = run_duckdb(sql, Path(world["raw"]).parent.parent, binds, billing_root=Path(billing))
    assert cols == ["campaign_id", "day", "impressions", "clicks", "ctr"]
    assert [(c, d) for c, d, *_ in rows] == sorted(want, key=lambda k: (k[1], k[0]))
    for campaign, day, impressions, clicks, ctr in rows:
        w = want[(campaign, day)]
        assert (impressions, clicks) == (w["impressions"], w["clicks"])
        assert ctr == (pytest.approx(w["clicks"] / w["impressions"]) if w["impressions"] else None)
    sql, binds = render("conversions_per_campaign_per_day", {"n": "3"}, now_ms=now)
    cols, rows = run_duckdb(sql, Path(world["raw"]).parent.parent, binds, billing_root=Path(billing))
    assert cols == ["campaign_id", "day", "conversions", "conversion_value_micros", "clicks", "cost_micros",
                    "cvr", "cpa_micros", "roas"]
    assert sum(r[2] for r in rows) == sum(w["conversions"] for w in want.values()) > 50
    for campaign, day, conversions, value, clicks, cost, cvr, cpa, roas in rows:
        w = want[(campaign, day)]
        assert (conversions, value, clicks, cost) == (w["conversions"], w["value"], w["clicks"], w["cost"])
        assert cvr == pytest.approx(w["conversions"] / w["clicks"])
        assert cpa == (pytest.approx(w["cost"] / w["conversions"]) if w["conversions"] else None)
        assert roas == pytest.approx(w["value"] / w["cost"])


def test_without_events_path_no_events_outputs(world, spark, tmp_path):
    out = str(tmp_path / "out")
    stats = run_day(spark, world["raw"], out, DAY, SETTINGS, write_flagged=False)
    assert "impressions" not in stats and not (tmp_path / "out" / "events_hourly").exists()
    assert keyed(read_day(out, "hourly", DAY)) == keyed(read_day(world["out"], "hourly", DAY))


def test_local_entry_point_takes_the_events_path(world, tmp_path):
    from glue_jobs import billing_job

    out = tmp_path / "job"
    stats = billing_job.main_local(["--day", DAY.isoformat(), "--raw-path", world["raw"], "--out-path", str(out),
                                    "--events-path", world["events"], "--shuffle-partitions", "2",
                                    "--attribution-window-s", "3600"])
    # a one-hour window: only clicks of D and D-1's last hour count; D-1 is not billed here
    assert stats["verdict_days"] == 2 and stats["verdict_days_billed"] == 1
    got = {r["conversion_id"]: r["attribution"] for r in read_day(str(out), "conversions", DAY)}
    billed = click_verdicts(world["scenario"].rows, [DAY])
    _, want = events_oracle(world["scenario"].events, world["scenario"].rows, DAY, billed, window_s=3600)
    assert got == {cid: d["attribution"] for cid, d in want.items()}
    assert json.loads(json.dumps(stats))["attributed_conversions"] < world["stats"][DAY]["attributed_conversions"]
    assert {p.name for p in out.iterdir()} == {"hourly", "flagged", "events_hourly", "conversions", "campaign_spend"}
    written = pq.read_schema(next((out / "conversions").rglob("*.parquet")))
    assert written.names[:2] == ["conversion_id", "attributed_by"]
