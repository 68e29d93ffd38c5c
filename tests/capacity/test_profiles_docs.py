"""Profiles equal hand-derived sizing, fit infra's settings; the CLI; docs/capacity.md shows them."""
from __future__ import annotations

import json
import math
from dataclasses import fields
from datetime import date

import pytest

from capacity import __main__ as cli
from capacity import docs, profiles
from capacity.planner import distinct_ads, plan
from capacity.pricing import available_regions, load_prices


# --- the profiles' CDK context, derived by hand -----------------------------------------------------
# Derived from the profiles' rates (small 10,000 clicks/s average / 20,000 peak; medium 115,740 /
# 231,480; large 115,740 / 500,000), the ASSUMPTIONS constants of capacity/planner.py and the
# us-east-1 prices; never from plan(). Defaults: 200 B clicks, 50 clicks per request, per-click
# dedup, 1 click per record, 1M ads with Zipf(0.8) popularity, 2 s mini-batches, 4 resolutions.
#
# Same in every profile:
#   *_capacity_mode provisioned: per WCU-month provisioned at 70 % costs 730 h x $0.00065 / 0.7
#     = $0.678 < on-demand 2,628,000 s x $0.625e-6 = $1.643, whatever the load.
#   kinesis_mode provisioned: small: 25 shards x 730 h x ($0.015 + $0.020 retention) + 26.28e9
#     PUT units x $0.014e-6 = $1,007 < on-demand data alone (1 KB in + 2 x 1 KB out per record)
#     26.28e9 x 1 KiB / GiB x $0.16 = $4,106; medium/large scale that data 11.574x ($47.5k)
#     against at most 625 x 730 x $0.035 + $4,259 = $20.2k.
#   aggregates_kinesis_mode provisioned: an average changelog row/s costs on-demand 2,628,000 x
#     1 KiB / GiB x $0.12 = $0.30/month, provisioned $0.037 (PUT units) + 1.25 / 1,000 shards per
#     peak row/s x 730 h x $0.015 = $0.0137 per peak row/s (peak rows <= 2.9x average).
#   firehose_buffer_interval_s 300: 128 MiB fills in 134,217,728 / (10,000 x 200 B) = 67 s <= 300.
#
# Per profile:
#   ingest_rate_limit = peak / 50 clicks per request x 1.25, rounded up to 2 significant digits:
#     400 x 1.25 = 500; 4,629.6 x 1.25 = 5,787 -> 5,800; 10,000 x 1.25 = 12,500 -> 13,000.
#   ingest_burst_limit = rate limit x 0.5: 250; 2,900; 6,500.
#   ingest_reserved_concurrency = peak requests/s x (25 + 1.5 x 50) ms x 1.5:
#     400 x 0.1 x 1.5 = 60; 4,629.6 x 0.1 x 1.5 = 694.4 -> 695; 1,000 x 1.5 = 1,500.
#   kinesis_shards = peak / 1,000 records/s x 1.25 (records bind: bytes need (200 + 16) B x
#     20,000/s / 1 MiB = 4.1 shards, reads 2 x 200 B x 20,000/s / 2 MiB = 3.8): 20 x 1.25 = 25;
#     231.48 x 1.25 = 289.35 -> 290; 500 x 1.25 = 625.
#   flink_parallelism = peak x 1.5 / 10,000 clicks/s per KPU: 3; 34.72 -> 35; 75. State never
#     binds: (2 x peak x 1,800 s dedup keys + at most (76 + 16 + 3 + 2) live buckets x 1M ads)
#     x 100 B = 15.8 GiB (small), 86.6 GiB (medium), 176.7 GiB (large); / 25 GB per KPU <= 7.1.
#   dedup_min_wcu = 2 WCU x average x 0.5 trough / 0.7: 14,285.7 -> 14,286; 165,342.9 -> 165,343.
#   dedup_max_wcu = 2 WCU x peak / 0.7: 57,142.9 -> 57,143; 661,371.4 -> 661,372;
#     1,428,571.4 -> 1,428,572.
#   billing_glue_workers = average x 86,400 s x 27/24 / 25,000 clicks/s per DPU / 3,600 / 2 h:
#     10.8 DPU-h / 2 = 5.4 -> 6; 124.999 DPU-h / 2 = 62.5 -> 63.
#   Serving path, from K = distinct ads per 2 s mini-batch (ZIPF_DISTINCT, brute force below):
#     changelog rows/s = (4 series x K + 2 boards x 1,000) / 2 s x 2 rows (-U, +U) = 4K + 2,000;
#     serving writes/s = 4K / 2 + 2 x 1,000 / 2 x 2 (upsert + tombstone) = 2K + 2,000;
#     sink lanes = ceil(peak writes / 800 per invocation x 1.5);
#     aggregates shards = ceil(peak rows / 1,000 records/s x 1.25) (350 B rows: records bind);
#     parallelization factor = ceil(lanes / shards) (<= 10);
#     invocations/s = max(average rows / 500, min(shards x factor, average rows) / 2 s);
#     freshness writes/s = 2 x invocations (average), x peak / average at peak;
#     freshness_slots = ceil(ceil(peak freshness x 2 / 500) / 8) x 8, within 16..100;
#     serving_min_wcu = ceil((average writes + freshness) x 0.5 / 0.7);
#     serving_max_wcu = ceil((peak writes + peak freshness) / 0.7).
#   small: K = 15,901.74 (20,000 clicks) average, 29,828.60 (40,000) peak. Peak rows 121,314.4
#     -> 151.6 -> 152 shards; peak writes 61,657.2 -> 115.6 -> 116 lanes -> factor 1; average
#     rows 65,607.0 -> 131.21 invocations/s -> freshness 262.4/s, 524.9/s at peak -> 3 -> 16
#     slots; min (33,803.5 + 262.4) x 0.5 / 0.7 = 24,332.8 -> 24,333; max (61,657.2 + 524.9)
#     / 0.7 = 88,831.5 -> 88,832.
#   medium: K = 134,076.62 (231,480) average, 229,271.64 (462,960) peak. Peak rows 919,086.5 ->
#     1,148.9 -> 1,149 shards; peak writes 460,543.3 -> 863.5 -> 864 lanes -> factor 1; average
#     rows 538,306.5 -> 1,076.61 invocations/s -> freshness 2,153.2/s, 4,306.5/s at peak -> 18
#     -> 24 slots; min (270,153.2 + 2,153.2) x 0.5 / 0.7 = 194,504.6 -> 194,505; max (460,543.3
#     + 4,306.5) / 0.7 = 664,071.0 -> 664,072.
#   large: average as medium; K = 391,074.13 (1,000,000) peak. Peak rows 1,566,296.5 -> 1,957.9
#     -> 1,958 shards; peak writes 784,148.3 -> 1,470.3 -> 1,471 lanes -> factor 1; freshness
#     2,153.2 x 500,000 / 115,740 = 9,302.0/s at peak -> 38 -> 40 slots; min 194,505; max
#     (784,148.3 + 9,302.0) / 0.7 = 1,133,500.4 -> 1,133,501.
# The planner integrates the Zipf tail over ~400 bins: its K is ~3e-6 above the exact sum, which
# moves serving_max_wcu by up to 3 WCU (rel 1e-5 below); every other value is exact.
_SAME = dict(aggregates_kinesis_mode="provisioned", billing_glue_worker_type="G.1X",
             dedup_capacity_mode="provisioned", dedup_ttl_s=86_400,
             dynamodb_target_utilization_pct=70, firehose_buffer_interval_s=300,
             firehose_buffer_mb=128, flink_parallelism_per_kpu=1, ingest_dedup_mode="per_click",
             ingest_memory_mb=1024, kinesis_mode="provisioned", kinesis_retention_hours=168,
             minibatch_latency_ms=2000, serving_capacity_mode="provisioned",
             serving_store="dynamodb", sink_batch_size=500, sink_memory_mb=512,
             sink_parallelization_factor=1)
EXPECTED_CONTEXT = {
    "small": _SAME | dict(
        ingest_rate_limit=500, ingest_burst_limit=250, ingest_reserved_concurrency=60,
        kinesis_shards=25, flink_parallelism=3, dedup_min_wcu=14_286, dedup_max_wcu=57_143,
        billing_glue_workers=6, aggregates_kinesis_shards=152, freshness_slots=16,
        serving_min_wcu=24_333, serving_max_wcu=88_832),
    "medium": _SAME | dict(
        ingest_rate_limit=5_800, ingest_burst_limit=2_900, ingest_reserved_concurrency=695,
        kinesis_shards=290, flink_parallelism=35, dedup_min_wcu=165_343, dedup_max_wcu=661_372,
        billing_glue_workers=63, aggregates_kinesis_shards=1_149, freshness_slots=24,
        serving_min_wcu=194_505, serving_max_wcu=664_072),
    "large": _SAME | dict(
        ingest_rate_limit=13_000, ingest_burst_limit=6_500, ingest_reserved_concurrency=1_500,
        kinesis_shards=625, flink_parallelism=75, dedup_min_wcu=165_343, dedup_max_wcu=1_428_572,
        billing_glue_workers=63, aggregates_kinesis_shards=1_958, freshness_slots=40,
        serving_min_wcu=194_505, serving_max_wcu=1_133_501),
}
APPROX_KEYS = {"serving_max_wcu": 1e-5}  # the planner's binned Zipf (see above)

# Distinct ads among N Poisson clicks over 1,000,000 ads with Zipf(0.8) popularity, summed over
# every rank (sum_i 1 - exp(-N p_i), p_i = i^-0.8 / sum_j j^-0.8): the K values above.
ZIPF_DISTINCT = {20_000: 15_901.74, 40_000: 29_828.60, 231_480: 134_076.62,
                 462_960: 229_271.64, 1_000_000: 391_074.13}


def _matches(key: str, actual, expected) -> bool:
    if key in APPROX_KEYS:
        return actual == pytest.approx(expected, rel=APPROX_KEYS[key])
    return actual == expected and type(actual) is type(expected)


def test_zipf_distinct_ads_behind_the_profiles_by_brute_force():
    weights = [i ** -0.8 for i in range(1, 1_000_001)]
    total = math.fsum(weights)
    for clicks, expected in ZIPF_DISTINCT.items():
        exact = math.fsum(-math.expm1(-clicks * w / total) for w in weights)
        assert exact == pytest.approx(expected, abs=0.01), clicks
        assert distinct_ads(clicks, 1_000_000, 0.8) == pytest.approx(exact, rel=1e-5), clicks


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
