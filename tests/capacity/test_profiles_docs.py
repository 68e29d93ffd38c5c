"""Profiles equal the planner's output and fit infra's settings; the CLI; docs/capacity.md is current."""
from __future__ import annotations

import json
from dataclasses import fields
from datetime import date

import pytest

from capacity import __main__ as cli
from capacity import docs, profiles
from capacity.planner import plan
from capacity.pricing import available_regions, load_prices


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_profile_context_is_the_planner_output(name):
    p = profiles.PROFILES[name]
    planned = plan(p.rate, p.peak, **dict(p.options))
    assert profiles.profile_context(name) == planned.context
    ctx = profiles.profile_context(name)
    assert ctx["kinesis_shards"] == planned.component("clicks_stream").metric("provisioned shards")
    assert ctx["flink_parallelism"] == planned.component("flink").metric("parallelism")
    assert ctx["ingest_reserved_concurrency"] == planned.component("ingest_lambda").metric(
        "reserved concurrency")
    assert ctx["sink_parallelization_factor"] == planned.component("sink_lambda").metric(
        "parallelization factor")


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
