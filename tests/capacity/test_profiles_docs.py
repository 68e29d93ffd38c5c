"""Profiles equal hand-derived sizing, fit infra's settings; the CLI; docs/capacity.md shows them."""
from __future__ import annotations

import json
import math
from dataclasses import fields
from datetime import date

import pytest

from capacity import __main__ as cli
from capacity import docs, profiles
from capacity.planner import compare_levers, distinct_ads, plan
from capacity.pricing import available_regions, load_prices


# --- the profiles' CDK context, derived by hand -----------------------------------------------------
# Derived from the profiles' rates (small 10,000 clicks/s average / 20,000 peak; medium 115,740 /
# 231,480; large 115,740 / 500,000), the ASSUMPTIONS constants of capacity/planner/assumptions.py
# and the us-east-1 prices; never from plan(). Defaults: 200 B clicks, 50 clicks per request,
# per-click dedup, 1 click per record, 1M ads with Zipf(0.8) popularity, 2 s mini-batches, 4
# resolutions; issue 19's events: 50 impressions and 0.02 conversions per click (average and peak
# alike), impressions 500 per request, conversions 1 per request, impression records 521 B,
# conversion records 547 B (encode_event of the typical records: mean 521.01 B); every click,
# impression and conversion is a row the job counts: 51.02 rows per click. Rollups: 100,000
# campaigns (10 ads each), 10,000 advertisers (10 campaigns each), Zipf(0.8) like the ads.
# The budget lane (issue 20, docs/budget.md): every click is valid; per 0.5 s emit interval each
# campaign with a click emits a 1m and a 1d spend update (D = distinct campaigns among the
# interval's clicks: 2 D / 0.5 s upserts/s, 1 changelog row and 1 serving write each), plus 2
# pulse rows/s (1 row, 1 write each); Flink counts 2/12 of a row per click for it.
# The changelog: flink_changelog_mode upsert (the default): one row per update, no -U rows
# (retract would be 2: tests/capacity/test_planner.py keeps a by-hand test of each mode).
#
# Same in every profile:
#   *_capacity_mode provisioned: per WCU-month provisioned at 70 % costs 730 h x $0.00065 / 0.7
#     = $0.678 < on-demand 2,628,000 s x $0.625e-6 = $1.643, whatever the load.
#   kinesis_mode provisioned: small: 25 shards x 730 h x ($0.015 + $0.020 retention) + 26.28e9
#     PUT units x $0.014e-6 = $1,007 < on-demand data alone (1 KB in + 2 x 1 KB out per record)
#     26.28e9 x 1 KiB / GiB x $0.16 = $4,106; medium/large scale that data 11.574x ($47.5k)
#     against at most 625 x 730 x $0.035 + $4,259 = $20.2k.
#   events_kinesis_mode provisioned: per average record/s a month on-demand data alone costs
#     2,628,000 x 1 KiB / GiB x $0.16 = $0.40, provisioned $0.037 (PUT units) + 1.25 / 1,000
#     shards per peak record/s x 730 h x $0.035 = $0.032 per peak record/s; peak is 2x or 4.3x
#     the average: at most $0.037 + 4.32 x $0.032 = $0.18.
#   aggregates_kinesis_mode provisioned: an average changelog row/s costs on-demand 2,628,000 x
#     1 KiB / GiB x $0.12 = $0.30/month, provisioned $0.037 (PUT units) + 1.25 / 1,000 shards per
#     peak row/s x 730 h x $0.015 = $0.0137 per peak row/s (peak rows <= 2.9x average).
#   firehose_buffer_interval_s 300: 128 MiB fills in 134,217,728 / (10,000 x 200 B) = 67 s <= 300
#     (the clicks' archive; the events' archive shares the setting and fills faster).
#
# Per profile:
#   ingest_rate_limit = peak requests/s x 1.25, rounded up to 2 significant digits; peak
#     requests = peak / 50 clicks + peak x 50 / 500 impressions + peak x 0.02 / 1 conversions:
#     400 + 2,000 + 400 = 2,800 x 1.25 = 3,500; 4,629.6 + 23,148 + 4,629.6 = 32,407.2 x 1.25 =
#     40,509 -> 41,000; 10,000 + 50,000 + 10,000 = 70,000 x 1.25 = 87,500 -> 88,000.
#   ingest_burst_limit = rate limit x 0.5, 2 digits up: 1,750 -> 1,800; 20,500 -> 21,000; 44,000.
#   ingest_reserved_concurrency = peak concurrency x 1.5; per request (25 ms + per item): clicks
#     25 + 1.5 x 50 = 100 ms, impressions 25 + 0.2 x 500 = 125 ms, conversions 25 + 1.5 = 26.5 ms:
#     small 400 x 0.1 + 2,000 x 0.125 + 400 x 0.0265 = 300.6 -> 450.9 -> 451; medium 3,479.14
#     -> 5,218.7 -> 5,219; large 1,000 + 6,250 + 265 = 7,515 -> 11,272.5 -> 11,273.
#   kinesis_shards = peak / 1,000 records/s x 1.25 (records bind: bytes need (200 + 16) B x
#     20,000/s / 1 MiB = 4.1 shards, reads 2 x 200 B x 20,000/s / 2 MiB = 3.8): 20 x 1.25 = 25;
#     231.48 x 1.25 = 289.35 -> 290; 500 x 1.25 = 625.
#   events_kinesis_shards = peak x 50.02 records/s / 1,000 x 1.25 (records bind: bytes need
#     (521.01 + 16) B x 1,000,400/s / 1 MiB = 512.3 shards, reads 2 x 521.01 B x 1,000,400/s /
#     2 MiB = 497.1): 1,000.4 x 1.25 = 1,250.5 -> 1,251; 11,578.63 x 1.25 = 14,473.3 -> 14,474;
#     25,010 x 1.25 = 31,262.5 -> 31,263.
#   flink_parallelism = peak x (51.02 rows + 2/12 for the spend lane) x 1.5 / 5,377 rows/s per
#     KPU (bench/flink.py, RocksDB): 285.59 -> 286; 3,305.38 -> 3,306; 7,139.67 -> 7,140. State
#     never binds: (2 x
#     peak x 1,800 s click keys +
#     peak x 50.02 x 1,800 s event keys + at most (76 + 16 + 3 + 2) live buckets x 1.11M ads,
#     campaigns and advertisers) x 100 B = 184 GiB (small) / 25 GB per KPU = 7.4 KPUs; medium
#     and large need 2,029 and 4,370 GiB: 81 and 175 KPUs.
#   dedup_min_wcu = 2 WCU x (clicks + conversions) average x 0.5 trough / 0.7: 20,400 x 0.5 / 0.7
#     = 14,571.4 -> 14,572; 236,109.6 -> 168,649.7 -> 168,650.
#   dedup_max_wcu = 2 WCU x (clicks + conversions) peak / 0.7: 40,800 / 0.7 = 58,285.7 -> 58,286;
#     472,219.2 -> 674,598.9 -> 674,599; 1,020,000 -> 1,457,142.9 -> 1,457,143.
#   billing_glue_workers (clicks only) = average x 86,400 s x 27/24 / 25,000 clicks/s per DPU /
#     3,600 / 2 h: 10.8 DPU-h / 2 = 5.4 -> 6; 124.999 DPU-h / 2 = 62.5 -> 63.
#   Serving path, from K, C, V = distinct ads, campaigns, advertisers among the 2 s mini-batch's
#     rows (51.02 x clicks/s x 2 s; ZIPF_DISTINCT, brute force below) and S = K + C + V, and D =
#     distinct campaigns among a 0.5 s emit interval's clicks (clicks/s x 0.5 s):
#     changelog rows/s = (4 series x S + 3 boards x 1,000) / 2 s x 1 row (upsert: +U only) + 2
#     spend resolutions x D / 0.5 s x 1 row + 2 pulse rows = 2S + 4D + 1,502;
#     serving writes/s = 4S / 2 + 3 x 1,000 / 2 (no -U: no tombstones) + 4D + 2 = 2S + 4D + 1,502;
#     sink lanes = ceil(peak writes / 800 per invocation x 1.5);
#     aggregates shards = ceil(peak rows / 1,000 records/s x 1.25) (470 B rows: records bind);
#     parallelization factor = ceil(lanes / shards) (<= 10);
#     invocations/s = max(average rows / 500, min(shards x factor, average rows) / 2 s);
#     freshness writes/s = 2 x invocations (average), x peak / average at peak;
#     freshness_slots = ceil(ceil(peak freshness x 2 / 500) / 8) x 8, within 16..100;
#     rank index writes = 2 x 3 x 1,000 / 2 s = 3,000/s (every board update moves its entry);
#     serving_min_wcu = ceil((average writes + rank index + freshness) x 0.5 / 0.7);
#     serving_max_wcu = ceil((peak writes + rank index + peak freshness) / 0.7).
#   small: rows per batch 1,020,400 average: S = 396,146.59 + 96,740.53 + 10,000 = 502,887.12,
#     D = 3,755.50 (5,000 clicks); 2,040,800 peak: S = 590,083.03 + 99,780.15 + 10,000 =
#     699,863.18, D = 6,872.66 (10,000 clicks). Peak rows 1,399,726.4 + 27,490.6 + 1,502 =
#     1,428,719.0 -> 1,785.90 -> 1,786 shards; peak writes the same -> 2,678.8 -> 2,679 lanes
#     -> factor ceil(2,679 / 1,786) = 2; average rows 1,005,774.2 + 15,022.0 + 1,502 =
#     1,022,298.2 -> 2,044.60 invocations/s (full batches: 1,786 x 2 = 3,572 lanes / 2 s =
#     1,786 is fewer) -> freshness 4,089.2/s, 8,178.4/s at peak ->
#     32.7 -> 33 -> 40 slots; average writes = average rows: min (1,022,298.2 + 4,089.2) x 0.5 /
#     0.7 = 735,276.7 -> 735,277 (with the rank index's 3,000); max (1,428,719.0 + 3,000 + 8,178.4) /
#     0.7 = 2,056,996.3 -> 2,056,997.
#   medium: 11,810,109.6 rows average: S = 976,560.25 + 100,000 + 10,000 = 1,086,560.25, D =
#     27,659.70 (57,870 clicks); 23,620,219.2 peak: S = 998,800.74 + 110,000 = 1,108,800.74, D =
#     43,804.55 (115,740 clicks). Peak rows 2,217,601.5 + 175,218.2 + 1,502 = 2,394,321.7 ->
#     2,992.90 -> 2,993 shards; peak writes the same -> 4,489.4 -> 4,490 lanes -> factor 2;
#     average rows 2,173,120.5 + 110,638.8 + 1,502 = 2,285,261.3 -> 4,570.52 invocations/s ->
#     freshness 9,141.0/s, 18,282.1/s at peak -> 73.1 -> 74 -> 80 slots (busiest 18,282.1 / 80 x
#     2 = 457.1 updates/s <= 500); min (2,285,261.3 + 3,000 + 9,141.0) x 0.5 / 0.7 = 1,641,001.6 ->
#     1,641,002; max (2,394,321.7 + 3,000 + 18,282.1) / 0.7 = 3,450,862.6 -> 3,450,863.
#   large: average as medium; 51,020,000 rows peak: S = 999,998.04 + 110,000 = 1,109,998.04, D =
#     66,151.52 (250,000 clicks). Peak rows 2,219,996.1 + 264,606.1 + 1,502 = 2,486,104.2 ->
#     3,107.63 -> 3,108 shards; peak writes the same -> 4,661.4 -> 4,662 lanes -> factor 2;
#     freshness 9,141.0 x 500,000 / 115,740 = 39,489.6/s at peak -> 158 -> 100 slots (the
#     maximum: busiest 789.8/s > 500, which the planner warns about); min 1,641,002; max
#     (2,486,104.2 + 3,000 + 39,489.6) / 0.7 = 3,612,276.9 -> 3,612,277.
# The planner integrates the Zipf tail over ~400 bins: its K, C and D are ~3e-6 above the exact
# sum, which moves serving_min_wcu and serving_max_wcu by a few WCU (rel 1e-5 below); every
# other value is exact.
_SAME = dict(aggregates_kinesis_mode="provisioned", billing_glue_worker_type="G.1X",
             dedup_capacity_mode="provisioned", dedup_ttl_s=86_400,
             dynamodb_target_utilization_pct=70, events_kinesis_mode="provisioned",
             firehose_buffer_interval_s=300, firehose_buffer_mb=128, flink_parallelism_per_kpu=1,
             ingest_dedup_mode="per_click", ingest_memory_mb=1024, kinesis_mode="provisioned",
             kinesis_retention_hours=168, minibatch_latency_ms=2000,
             serving_capacity_mode="provisioned", serving_store="dynamodb", sink_batch_size=500,
             sink_memory_mb=512, sink_parallelization_factor=2)
EXPECTED_CONTEXT = {
    "small": _SAME | dict(
        ingest_rate_limit=3_500, ingest_burst_limit=1_800, ingest_reserved_concurrency=451,
        kinesis_shards=25, events_kinesis_shards=1_251, flink_parallelism=286,
        dedup_min_wcu=14_572, dedup_max_wcu=58_286, billing_glue_workers=6,
        aggregates_kinesis_shards=1_786, freshness_slots=40, serving_min_wcu=735_277,
        serving_max_wcu=2_056_997,
        rebuild_parallelism=2_428, rebuild_load_concurrency=411),
    "medium": _SAME | dict(
        ingest_rate_limit=41_000, ingest_burst_limit=21_000, ingest_reserved_concurrency=5_219,
        kinesis_shards=290, events_kinesis_shards=14_474, flink_parallelism=3_306,
        dedup_min_wcu=168_650, dedup_max_wcu=674_599, billing_glue_workers=63,
        aggregates_kinesis_shards=2_993, freshness_slots=80, serving_min_wcu=1_641_002,
        serving_max_wcu=3_450_863,
        rebuild_parallelism=32_064, rebuild_load_concurrency=119),
    "large": _SAME | dict(
        ingest_rate_limit=88_000, ingest_burst_limit=44_000, ingest_reserved_concurrency=11_273,
        kinesis_shards=625, events_kinesis_shards=31_263, flink_parallelism=7_140,
        dedup_min_wcu=168_650, dedup_max_wcu=1_457_143, billing_glue_workers=63,
        aggregates_kinesis_shards=3_108, freshness_slots=100, serving_min_wcu=1_641_002,
        serving_max_wcu=3_612_277,
        rebuild_parallelism=29_234, rebuild_load_concurrency=232),
}
# rebuild_load_concurrency (capacity/planner/rebuild.py): the load writes at the serving table's
# headroom over the stream, peak writes - average writes = 0.7 x serving_max_wcu - 0.7 / 0.5 x
# serving_min_wcu (the two lines above, before their ceil), 1,000 writes/s per Lambda: small
# 1,439,898 - 1,029,388 = 410,510 -> 411; medium 2,415,604 - 2,297,403 = 118,201 -> 119; large
# 2,528,594 - 2,297,403 = 231,191 -> 232.
# rebuild_parallelism: a day's archive = rate x (1 + 50 impressions + 0.02 conversions) x 3,600 x
# 27 arrival hours, / 14,298 rows per CPU-second (small 3,468,418 CPU-s; medium and large
# 40,143,469), within 30 min - 5 min start-up - load phase 1 at that headroom. Phase 1 is the same
# in every profile (an hour holds every ad, campaign and advertiser): the 1h series 24 x (1M +
# 100,000 + 10,000) = 26,640,000, the 1d series 1,110,000, the boards 1,440 x 1,000 + 24 x 1,000 +
# 1,000 = 1,465,000, the 1d spend 100,000: 29,315,000 items; small 71.4 s, medium 248.0 s, large
# 126.8 s. 1 KPU per vCPU: small ceil(3,468,418 / 1,428.6) = 2,428; medium ceil(40,143,469 /
# 1,252.0) = 32,064; large ceil(40,143,469 / 1,373.2) = 29,234.
APPROX_KEYS = {"serving_min_wcu": 1e-5, "serving_max_wcu": 1e-5}  # the planner's binned Zipf (see above)

# Distinct entities among N Poisson rows over E entities with Zipf(0.8) popularity, summed over
# every rank (sum_i 1 - exp(-N p_i), p_i = i^-0.8 / sum_j j^-0.8): the K, C, V and D values
# above, and the clicks-only K of the 2 s mini-batches (20,000 and 40,000 clicks over 1M ads).
ZIPF_DISTINCT = {
    (20_000, 1_000_000): 15_901.74, (40_000, 1_000_000): 29_828.60,
    (1_020_400, 1_000_000): 396_146.59, (1_020_400, 100_000): 96_740.53,
    (1_020_400, 10_000): 10_000.00,
    (2_040_800, 1_000_000): 590_083.03, (2_040_800, 100_000): 99_780.15,
    (11_810_109.6, 1_000_000): 976_560.25, (11_810_109.6, 100_000): 100_000.00,
    (23_620_219.2, 1_000_000): 998_800.74, (51_020_000, 1_000_000): 999_998.04,
    (5_000, 100_000): 3_755.50, (10_000, 100_000): 6_872.66, (57_870, 100_000): 27_659.70,
    (115_740, 100_000): 43_804.55, (250_000, 100_000): 66_151.52,
}


def _matches(key: str, actual, expected) -> bool:
    if key in APPROX_KEYS:
        return actual == pytest.approx(expected, rel=APPROX_KEYS[key])
    return actual == expected and type(actual) is type(expected)


def test_zipf_distinct_ads_behind_the_profiles_by_brute_force():
    for entities in sorted({e for _, e in ZIPF_DISTINCT}):
        weights = [i ** -0.8 for i in range(1, entities + 1)]
        total = math.fsum(weights)
        for (rows, e), expected in ZIPF_DISTINCT.items():
            if e != entities:
                continue
            exact = math.fsum(-math.expm1(-rows * w / total) for w in weights)
            assert exact == pytest.approx(expected, abs=0.01), (rows, e)
            assert distinct_ads(rows, e, 0.8) == pytest.approx(exact, rel=1e-5), (rows, e)


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_profile_context_is_the_hand_derived_plan(name):
    ctx = profiles.profile_context(name)
    expected = EXPECTED_CONTEXT[name]
    assert set(ctx) == set(expected)
    wrong = {k: (ctx[k], expected[k]) for k in expected if not _matches(k, ctx[k], expected[k])}
    assert not wrong, wrong  # key: (profile value, hand-derived value)


def test_docs_profile_table_shows_the_hand_derived_values():
    lines = docs.DOCS_PATH.read_text().splitlines()
    start = lines.index("| Context key | small | medium | large | infra |")
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("| `"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = dict(zip(("small", "medium", "large"), cells[1:4]))
    assert set(rows) == set(EXPECTED_CONTEXT["small"])
    for name, expected in EXPECTED_CONTEXT.items():
        for key, value in expected.items():
            shown = rows[key][name]
            parsed = int(shown) if isinstance(value, int) else shown
            assert _matches(key, parsed, value), (name, key, shown, value)


def test_profile_rates_follow_the_seeds():
    assert profiles.PROFILES["small"].rate == 10_000
    assert profiles.PROFILES["medium"].rate == 115_740  # 10B clicks/day
    assert profiles.PROFILES["large"].peak == 500_000
    assert profiles.PROFILES["large"].rate == profiles.PROFILES["medium"].rate


def test_bigger_profiles_get_at_least_as_much_capacity():
    small, medium, large = (profiles.profile_context(n) for n in ("small", "medium", "large"))
    for key in ("kinesis_shards", "flink_parallelism", "ingest_rate_limit",
                "ingest_reserved_concurrency", "dedup_max_wcu", "aggregates_kinesis_shards"):
        assert small[key] <= medium[key] <= large[key], key


def test_profile_keys_are_infra_settings_or_listed_as_new():
    from infra.settings import StackSettings

    known = {f.name for f in fields(StackSettings)}
    assert profiles.EXISTING_CONTEXT_KEYS <= known
    for name in profiles.PROFILES:
        for key in profiles.profile_context(name):
            assert key in known or key in profiles.NEW_CONTEXT_KEYS, key


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_profile_values_pass_infra_validation(name):
    from infra.settings import StackSettings

    known = {f.name for f in fields(StackSettings)}
    ctx = profiles.profile_context(name)
    StackSettings(**{k: v for k, v in ctx.items() if k in known})  # raises on an invalid value


def test_cdk_args_only_pass_keys_infra_knows():
    args = profiles.cdk_args("medium")
    keys = {a.split("=", 1)[0] for a in args[1::2]}
    assert keys == set(profiles.profile_context("medium")) & profiles.EXISTING_CONTEXT_KEYS


# --- prices -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("region", available_regions())
def test_price_files_are_dated_sourced_and_complete(region):
    pb = load_prices(region)
    date.fromisoformat(pb.as_of)
    reference = load_prices("us-east-1")
    assert set(pb.prices) == set(reference.prices) and set(pb.quotas) == set(reference.quotas)
    for price in pb.prices.values():
        assert price.source and price.confidence
    plan(10_000, region=region, serving_store="timestream")  # every price the planner uses exists


def test_tiered_price_by_hand():
    rest = load_prices()["apigw_rest_requests"]
    assert rest.cost(1e9) == pytest.approx(333 * 3.50 + 667 * 2.80)
    assert rest.cost(0) == 0


# --- CLI ------------------------------------------------------------------------------------------------
def test_cli_plan_text_prints_components_total_and_levers(capsys):
    assert cli.main(["plan", "--rate", "10000", "--peak", "500000", "--click-bytes", "200",
                     "--batch-size", "50"]) == 0
    out = capsys.readouterr().out
    for text in ("TOTAL", "Kinesis clicks stream", "cost levers", "CDK context", "QUOTA"):
        assert text in out


def test_cli_plan_json(capsys):
    assert cli.main(["plan", "--rate", "10000", "--json", "--no-levers"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["monthly_usd"] == pytest.approx(round(plan(10_000).monthly_usd, 2))
    assert doc["levers"] == []


def test_cli_profiles_json(capsys):
    assert cli.main(["profiles", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["profiles"]["large"] == profiles.profile_context("large")


def test_cli_rejects_bad_input(capsys):
    assert cli.main(["plan", "--rate", "10", "--peak", "1"]) == 2
    assert "peak" in capsys.readouterr().err


# --- docs ------------------------------------------------------------------------------------------------
def test_docs_capacity_md_is_up_to_date(tmp_path):
    fresh = tmp_path / "capacity.md"
    assert cli.main(["docs", "--output", str(fresh)]) == 0
    assert docs.DOCS_PATH.is_file(), "run: python -m capacity docs"
    assert docs.DOCS_PATH.read_text() == fresh.read_text(), \
        "docs/capacity.md is stale: run `python -m capacity docs`"


def test_docs_carry_the_price_date_and_every_profile():
    text = docs.render_docs()
    assert f"as of {load_prices().as_of}" in text
    for name in profiles.PROFILES:
        assert f"## Scenario: {name}" in text
    medium = profiles.PROFILES["medium"].plan()
    assert f"${medium.monthly_usd:,.0f}" in text


def test_docs_check_mode(tmp_path):
    stale = tmp_path / "capacity.md"
    stale.write_text("old")
    assert cli.main(["docs", "--check", "--output", str(stale)]) == 1


# --- issue 22: the planner models only what the code does ------------------------------------------
# Checked by hand against functions/, infra/ and sdk/ (capacity/planner/implemented.py says why):
# REST API only, per-click dedup only, one click per clicks-stream record, one changelog row per
# aggregates record, all four series resolutions emitted, polling Flink source, DynamoDB serving
# store, the budget lane always on.
NOT_IMPLEMENTED_SETTINGS = {
    ("API type", "HTTP"), ("ingest dedup", "per request (Powertools Idempotency)"),
    ("clicks per Kinesis record", "4 (~1 KB: the on-demand unit)"),
    ("clicks per Kinesis record", "20 (~5 KB: the Firehose unit)"),
    ("emitted series resolutions", "1m, 1h (5m and 1d summed at query time)"),
    ("changelog rows per aggregates record", "50"),
    ("budget lane (docs/budget.md)", "off"),
}
UNIMPLEMENTED_OPTIONS = [("api", "http"), ("dedup", "per_request"), ("clicks_per_record", 4),
                         ("changelog_rows_per_record", 50), ("serving_resolutions", ("1m", "1h")),
                         ("efo", True), ("serving_store", "timestream"), ("budget_lane", False)]


def test_the_lever_table_labels_what_the_code_does_not_implement():
    rows = compare_levers(rate=10_000, peak=20_000)
    assert {(r.lever, r.setting) for r in rows if not r.implemented} == NOT_IMPLEMENTED_SETTINGS
    assert all(r.implemented for r in rows if r.is_base)  # the base plan is deployable
    text = docs.DOCS_PATH.read_text()
    for lever, setting in NOT_IMPLEMENTED_SETTINGS:
        assert f"| {lever} | {setting} (modelled, not implemented) |" in text, (lever, setting)
    assert "(modelled, not implemented)" not in text.split("| changelog -U rows")[1].split("\n")[0]


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_profiles_select_only_what_is_implemented(name):
    p = profiles.PROFILES[name].plan()
    assert p.not_implemented == []
    assert (p.inputs["api"], p.inputs["dedup"], p.inputs["clicks_per_record"],
            p.inputs["changelog_rows_per_record"], p.inputs["serving_resolutions"], p.inputs["efo"],
            p.inputs["serving_store"], p.inputs["budget_lane"]) == (
        "rest", "per_click", 1, 1, ("1m", "5m", "1h", "1d"), False, "dynamodb", True)
    assert p.inputs["changelog_update_before"] is False  # flink_changelog_mode upsert, the default


@pytest.mark.parametrize("param, value", UNIMPLEMENTED_OPTIONS)
def test_a_profile_refuses_an_unimplemented_lever(param, value):
    with pytest.raises(ValueError, match=f"profile 'x' selects what the code does not implement: {param}="):
        profiles.Profile("x", 10_000, 20_000, "test", ((param, value),))
    # plan() still prices it and says so
    p = plan(10_000, 20_000, **{param: value})
    assert [n.split("=")[0] for n in p.not_implemented] == [param]
    assert p.to_dict()["not_implemented"] == p.not_implemented


def test_implemented_levers_are_selectable():
    for param, value in (("batch_size", 500), ("minibatch_ms", 10_000),
                         ("changelog_update_before", True), ("budget_emit_interval_ms", 2_000),
                         ("pacing_cache_ttl_ms", 5_000), ("kinesis_mode", "on_demand")):
        assert profiles.Profile("x", 10_000, 20_000, "test", ((param, value),)).plan().not_implemented == []
