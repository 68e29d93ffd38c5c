"""StackSettings: context parsing, defaults shared with cdk.json, and the CLI pins. No synth."""
from __future__ import annotations

import json
from dataclasses import fields

import pytest
from aws_cdk import App

from app import build_app
from capacity import profiles as capacity_profiles
from common import schema
from common.config import (AggregationSettings, IngestSettings, ReconcileSettings,
                           ServingSettings)
from common.schema import SettingsError
from infra.settings import DEFAULTS_KEY, StackSettings, profile_context, profile_keys


def test_cdk_json_repeats_no_default(cdk_config):
    """The defaults are the schema's (common.schema), defined once: cdk.json's base-default
    object is there for a deployment's own overrides and holds none in the repository."""
    assert cdk_config["context"][DEFAULTS_KEY] == {}
    for f in fields(StackSettings):
        assert f.default == schema.default(f.name) or f.default_factory() == schema.default(
            f.name), f.name


def test_every_context_setting_is_a_stack_field_and_nothing_else():
    assert [f.name for f in fields(StackSettings)] == [
        s.name for s in schema.SETTINGS if s.context]


def test_cdk_json_sets_no_setting_at_top_level(cdk_config):
    """CDK passes cdk.json's top-level context like `-c`: a setting there would beat every
    profile. Base defaults live in "clickagg:defaults" only."""
    top_level = set(cdk_config["context"]) & {f.name for f in fields(StackSettings)}
    assert not top_level


def test_cdk_json_context_gives_the_field_defaults(cdk_config):
    assert StackSettings.from_context(App(context=cdk_config["context"]).node) == StackSettings()


# --- profiles -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(capacity_profiles.PROFILES))
def test_profile_values_become_the_settings(cdk_config, name):
    settings = StackSettings.from_context(
        App(context={**cdk_config["context"], "profile": name}).node)
    planner = capacity_profiles.profile_context(name)
    assert settings.profile == name
    assert {k: getattr(settings, k) for k in planner} == planner
    untouched = {f.name for f in fields(StackSettings)} - set(planner) - {"profile"}
    assert {k: getattr(settings, k) for k in untouched} == {
        k: getattr(StackSettings(), k) for k in untouched}


def test_every_planner_key_is_a_setting():
    for name in capacity_profiles.PROFILES:
        assert set(profile_context(name)) <= {f.name for f in fields(StackSettings)}
    assert "kinesis_shards" in profile_keys() and "billing_glue_workers" in profile_keys()


def test_explicit_context_beats_the_profile_which_beats_cdk_json_defaults(cdk_config):
    context = {**cdk_config["context"],
               DEFAULTS_KEY: {**cdk_config["context"][DEFAULTS_KEY], "kinesis_shards": 9,
                              "query_memory_mb": 768}}
    large = capacity_profiles.profile_context("large")
    app = App(context={**context, "profile": "large", "ingest_rate_limit": "1234",
                       "ingest_reserved_concurrency": "none"})
    settings = StackSettings.from_context(app.node)
    assert settings.ingest_rate_limit == 1234  # explicit -c beats the profile
    assert settings.ingest_reserved_concurrency is None  # explicit "none" beats it too
    assert settings.kinesis_shards == large["kinesis_shards"]  # profile beats cdk.json default
    assert settings.query_memory_mb == 768  # no profile value: cdk.json default applies
    no_profile = StackSettings.from_context(App(context=context).node)
    assert no_profile.kinesis_shards == 9


def test_profile_can_be_a_cdk_json_default_and_still_be_overridden(cdk_config):
    context = {**cdk_config["context"],
               DEFAULTS_KEY: {**cdk_config["context"][DEFAULTS_KEY], "profile": "small"}}
    assert StackSettings.from_context(App(context=context).node).profile == "small"
    assert StackSettings.from_context(App(context={**context, "profile": "none"}).node) \
        .kinesis_mode == "on_demand"


def test_unknown_key_in_cdk_json_defaults_fails(cdk_config):
    context = {DEFAULTS_KEY: {**cdk_config["context"][DEFAULTS_KEY], "kinesis_shard": 3}}
    with pytest.raises(ValueError, match="unknown settings"):
        StackSettings.from_context(App(context=context).node)


def test_per_request_dedup_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="planner lever.*not implement"):
        StackSettings.from_context(App(context={"ingest_dedup_mode": "per_request"}).node)


def test_provisioned_capacity_needs_its_range():
    with pytest.raises(ValueError, match="needs dedup_min_wcu and dedup_max_wcu"):
        StackSettings(dedup_capacity_mode="provisioned", dedup_min_wcu=10)
    with pytest.raises(ValueError, match="serving_min_wcu must be <="):
        StackSettings(serving_capacity_mode="provisioned", serving_min_wcu=10,
                      serving_max_wcu=5)
    StackSettings(dedup_capacity_mode="on_demand", dedup_max_wcu=5)  # a cap alone is fine


def test_edge_settings():
    settings = StackSettings(cors_allowed_origins=" https://a.example.com, http://localhost:5173")
    assert settings.cors_origins == ("https://a.example.com", "http://localhost:5173")
    assert StackSettings().cors_origins == ()
    assert StackSettings(ingest_rate_limit=100).waf_rate_limit == 30_000
    assert StackSettings(waf_rate_limit_per_5min=500).waf_rate_limit == 500


def test_cdk_json_runs_the_app_with_the_project_venv(cdk_config):
    assert cdk_config["app"] == ".venv/bin/python app.py"


def test_cli_is_pinned_exactly(repo_root):
    package = json.loads((repo_root / "package.json").read_text())
    assert package["devDependencies"]["aws-cdk"] == "2.1148.1"
    lock = json.loads((repo_root / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == "2.1148.1"


def test_from_context_converts_cli_strings():
    app = App(context={"ingest_rate_limit": "2000", "kinesis_mode": "provisioned",
                       "kinesis_shards": "2", "ingest_reserved_concurrency": "none",
                       "alarm_email": "", "hot_ad_salts": "ad-9:3"})
    settings = StackSettings.from_context(app.node)
    assert settings.ingest_rate_limit == 2000 and settings.kinesis_shards == 2
    assert settings.kinesis_mode == "provisioned"
    assert settings.ingest_reserved_concurrency is None and settings.alarm_email is None
    assert settings.ingest_burst_limit == 5000  # untouched default


def test_from_context_converts_booleans_and_aggregation_strings():
    app = App(context={"flink_autoscaling": "false", "serving_store": " dynamodb ",
                       "sink_batch_size": "100", "allowed_lateness_s": "600"})
    settings = StackSettings.from_context(app.node)
    assert settings.flink_autoscaling is False and settings.serving_store == "dynamodb"
    assert settings.sink_batch_size == 100
    assert StackSettings.from_context(App(context={"flink_autoscaling": True}).node) \
        .flink_autoscaling is True
    assert settings.aggregation_settings() == AggregationSettings(allowed_lateness_s=600)


def test_shared_aggregation_defaults_are_the_query_sides():
    assert StackSettings().aggregation_settings() == AggregationSettings()


def test_job_defaults_are_the_stacks():
    """One definition: the job's property defaults are the context defaults of the same
    settings (the job's own names: flink_dedup_ttl_s is the job's dedup_ttl_s)."""
    job = pytest.importorskip("aggregate.job.settings").JobSettings()
    stack = StackSettings()
    assert (stack.watermark_delay_s, stack.flink_dedup_ttl_s, stack.minibatch_latency_ms,
            stack.allowed_lateness_s, stack.repeat_window_s, stack.leaderboard_size) == (
        job.watermark_delay_s, job.dedup_ttl_s, job.minibatch_latency_ms,
        job.allowed_lateness_s, job.repeat_window_s, job.leaderboard_size)
    assert job.checkpoint_interval_ms == stack.flink_checkpoint_interval_ms  # local = AWS


def test_from_context_without_context_gives_defaults():
    assert StackSettings.from_context(App().node) == StackSettings()


@pytest.mark.parametrize("context", [
    {"kinesis_mode": "provisionned"},
    {"kinesis_shards": "four"},
    {"ingest_rate_limit": True},
    {"ingest_rate_limit": 0},
    {"kinesis_retention_hours": 12},
    {"hot_ad_salts": "ad-1"},
    {"hot_ad_salts": "ad-1:0"},
    {"prefix": "Click_Agg"},
    {"ingest_reserved_concurrency": 0},
    {"powertools_layer_version": 0},
    {"serving_store": "dynamo"},
    {"aggregates_kinesis_mode": "ondemand"},
    {"aggregates_retention_hours": 23},
    {"flink_autoscaling": "yes"},
    {"flink_autoscaling": 1},
    {"flink_parallelism": 0},
    {"flink_checkpoint_interval_ms": 500},
    {"flink_checkpoint_interval_ms": 5000},  # = the default min pause: the pause would pace
    {"flink_min_pause_between_checkpoints_ms": 10000},
    {"repeat_window_s": 7},  # the job requires it to divide 60
    {"allowed_lateness_s": 3600},  # > flink_dedup_ttl_s (1800) - 60 - watermark delay
    {"sink_parallelization_factor": 11},
    {"sink_batch_size": 10001},
    {"flink_app_zip": "functions/aggregate/target/clickagg-flink-deps.jar"},
    {"firehose_buffer_mb": 32},  # Parquet conversion needs >= 64
    {"firehose_buffer_interval_s": 30},
    {"archive_ia_after_days": 10},
    {"archive_cold_after_days": 45},  # < IA + 30
    {"archive_cold_storage_class": "deep_archive"},
    {"athena_bytes_scanned_cutoff": 1000},
    {"timestream_memory_retention_hours": 0},
    {"profile": "huge"},
    {"ingest_dedup_mode": "per_request"},
    {"ingest_dedup_mode": "per_batch"},
    {"dedup_capacity_mode": "autoscaled"},
    {"serving_capacity_mode": "provisioned"},  # without its range
    {"dedup_min_wcu": 0},
    {"dynamodb_target_utilization_pct": 95},
    {"serving_max_rcu": 1},  # < serving_min_rcu
    {"billing_glue_worker_type": "G.025X"},  # Python shell / streaming only
    {"billing_glue_workers": 1},
    {"billing_schedule": "rate(1 day)"},
    {"billing_schedule": "cron(0 1 * * ? *)"},  # before the 2 h cutoff + archive buffering
    {"billing_cutoff_hours": 24},
    {"cors_allowed_origins": "*"},
    {"cors_allowed_origins": "https://a.example.com/app"},
    {"waf_enabled": "on"},
    {"waf_rate_limit_per_5min": 5},
])
def test_bad_context_fails_the_synth(context):
    with pytest.raises(SettingsError):
        StackSettings.from_context(App(context=context).node)


@pytest.mark.parametrize("context, message", [
    ({"minute_ttl_s": "8d"}, "minute_ttl_s: expected an integer, got '8d'"),
    ({"kinesis_mode": "provisionned"},
     "kinesis_mode: expected one of ('on_demand', 'provisioned'), got 'provisionned'"),
    ({"sink_parallelization_factor": 11}, "sink_parallelization_factor: must be within 1..10, got 11"),
    ({"repeat_window_s": "7"}, "repeat_window_s: must divide 60, got 7"),
    ({"allowed_lateness_s": 3600}, "flink_dedup_ttl_s: must be >= the lateness horizon 60 + "
                                   "allowed_lateness_s + watermark_delay_s = 3665, got 1800"),
    ({"flink_autoscaling": "yes"}, "flink_autoscaling: expected true or false, got 'yes'"),
    ({"profile": "huge"}, "profile: unknown profile 'huge'"),
])
def test_synth_fails_with_a_message_naming_the_setting(cdk_config, context, message):
    """What `cdk synth -c ...` prints: app.build_app raises before any construct exists."""
    with pytest.raises(SettingsError) as e:
        build_app(App(context={**cdk_config["context"], **context}), nag=False)
    assert str(e.value).startswith(message), str(e.value)


def test_direct_construction_is_validated_too():
    with pytest.raises(SettingsError, match="^kinesis_shards: must be >= 1, got 0$"):
        StackSettings(kinesis_shards=0)
    with pytest.raises(SettingsError, match="^ingest_rate_limit: expected an integer, got True$"):
        StackSettings(ingest_rate_limit=True)


# --- what the runtimes get: derived from the schema ----------------------------------------------

def test_lambda_environments_are_derived_from_the_schema():
    settings = StackSettings(minute_ttl_s=3600, freshness_slots=24, billing_cutoff_hours=1,
                             archive_cold_after_days=120, leaderboard_size=50)
    assert settings.lambda_env(schema.SINK, serving_table="t") == {
        "SERVING_STORE": "dynamodb", "SERVING_TABLE": "t", "MINUTE_TTL_S": "3600",
        "FRESHNESS_SLOTS": "24"}
    assert settings.lambda_env(schema.QUERY, serving_table="t", clicks_stream_name="c") == {
        "SERVING_STORE": "dynamodb", "SERVING_TABLE": "t", "FRESHNESS_SLOTS": "24", "MINUTE_TTL_S": "3600",
        "ALLOWED_LATENESS_S": "900", "LEADERBOARD_SIZE": "50", "REPEAT_WINDOW_S": "10",
        "CLICKS_STREAM_NAME": "c", "IVT_ALERT_PERCENT": "5", "IVT_ALERT_MIN_CLICKS": "100"}
    assert settings.lambda_env(schema.RECONCILE, billing_workflow="w") == {
        "SERVING_STORE": "dynamodb", "RECONCILE_MAX_AGE_DAYS": "120",
        "BILLING_CUTOFF_HOURS": "1", "BILLING_WORKFLOW": "w"}
    assert settings.lambda_env(schema.INGEST, dedup_table=settings.names.dedup_table,
                               clicks_stream=settings.names.clicks_stream,
                               events_stream=settings.names.events_stream,
                               click_token_secret=settings.names.click_token_secret) \
        == {k: v for k, v in settings.ingest_settings().to_env().items()
            if k != "REFUSED_DELIVERY_STREAM"}  # wired by infra.constructs.refused_archive
    # FRESHNESS_SLOTS belongs to the DynamoDB store only
    timestream = StackSettings(serving_store="timestream")
    assert "FRESHNESS_SLOTS" not in timestream.lambda_env(
        schema.SINK, timestream_database="d", timestream_table="t")
    with pytest.raises(SettingsError, match="^dedup_table: not a setting of the query function"):
        settings.lambda_env(schema.QUERY, dedup_table="d")


def test_lambda_environments_round_trip_through_the_lambdas_views(monkeypatch):
    settings = StackSettings(minute_ttl_s=3600, freshness_slots=24, billing_cutoff_hours=1)
    for function, view, wired in ((schema.SINK, ServingSettings, {"serving_table": "t"}),
                                  (schema.RECONCILE, ReconcileSettings,
                                   {"billing_workflow": "w"})):
        env = settings.lambda_env(function, **wired)
        parsed = view.from_env(env)
        assert parsed == settings.runtime(view, **wired), function


def test_flink_properties_are_the_jobs_settings():
    job = pytest.importorskip("aggregate.job.settings")
    settings = StackSettings(allowed_lateness_s=600, flink_dedup_ttl_s=3600, watermark_delay_s=9)
    props = settings.flink_properties(
        environment="aws", aws_region="eu-west-1", source_init_position="TRIM_HORIZON",
        clicks_stream_arn="arn:aws:kinesis:eu-west-1:123456789012:stream/a",
        aggregates_stream_arn="arn:aws:kinesis:eu-west-1:123456789012:stream/b")
    assert set(props) == {"environment", "aws_region", "source_init_position",
                          "clicks_stream_arn", "aggregates_stream_arn", "allowed_lateness_s",
                          "watermark_delay_s", "repeat_window_s", "leaderboard_size",
                          "dedup_ttl_s", "minibatch_latency_ms", "changelog_mode",
                          "budget_emit_interval_ms", "ivt_rules",
                          "ivt_burst_threshold", "ivt_burst_window_ms", "ivt_min_click_delay_ms",
                          "count_from_ms"}
    parsed = job.JobSettings.from_properties({"clickagg": props})
    assert (parsed.allowed_lateness_s, parsed.dedup_ttl_s, parsed.watermark_delay_s) == (
        600, 3600, 9)
    with pytest.raises(SettingsError, match="unknown properties"):
        settings.flink_properties(region="eu-west-1")


def test_glue_arguments_are_the_billing_jobs_settings():
    settings = StackSettings(billing_cutoff_hours=1, ivt_burst_threshold=30)
    assert settings.glue_arguments() == {
        "--allowed_lateness_s": "900", "--repeat_window_s": "10", "--watermark_delay_s": "5",
        "--cutoff_hours": "1", "--burst_threshold": "30", "--burst_window_ms": "1000",
        "--min_click_delay_ms": "1000", "--click_token_max_age_s": "86400",
        "--click_token_clock_skew_s": "300", "--flink_dedup_ttl_s": "1800",
        "--attribution_window_s": "604800",
        "--ivt_rules": "bot_ua,impression_repeat,too_fast,datacenter_ip,ip_burst,user_repeat"}


def test_lambda_env_round_trips_through_the_lambdas_own_parser(monkeypatch):
    settings = StackSettings(prefix="x", dedup_ttl_s=60, hot_ad_salts="ad-1:8,ad-2:2")
    expected = settings.ingest_settings()
    for name, value in expected.to_env().items():
        monkeypatch.setenv(name, value)
    assert IngestSettings.from_env() == expected
    assert expected.dedup_table == "x-click-dedup" and expected.clicks_stream == "x-clicks"
    assert expected.hot_ad_salts == {"ad-1": 8, "ad-2": 2}
