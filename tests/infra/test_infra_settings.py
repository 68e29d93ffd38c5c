"""StackSettings: context parsing, defaults shared with cdk.json, and the CLI pins. No synth."""
from __future__ import annotations

import json
from dataclasses import fields

import pytest
from aws_cdk import App

from common.config import AggregationSettings, IngestSettings
from infra.settings import StackSettings


def test_cdk_json_context_documents_every_setting_with_its_default(cdk_config):
    context = cdk_config["context"]
    for f in fields(StackSettings):
        assert f.name in context, f"cdk.json lacks context key {f.name}"
        assert context[f.name] == f.default, f.name


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


def test_job_defaults_match_the_flink_jobs_own():
    """Context defaults of the job-only knobs = JobSettings' documented defaults."""
    job = pytest.importorskip("aggregate.job.settings").JobSettings()
    stack = StackSettings()
    assert (stack.watermark_delay_s, stack.flink_dedup_ttl_s, stack.minibatch_latency_ms,
            stack.allowed_lateness_s, stack.repeat_window_s, stack.leaderboard_size) == (
        job.watermark_delay_s, job.dedup_ttl_s, job.minibatch_latency_ms,
        job.allowed_lateness_s, job.repeat_window_s, job.leaderboard_size)


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
    {"serving_store": "dynamo"},
    {"aggregates_kinesis_mode": "ondemand"},
    {"aggregates_retention_hours": 23},
    {"flink_autoscaling": "yes"},
    {"flink_autoscaling": 1},
    {"flink_parallelism": 0},
    {"flink_checkpoint_interval_ms": 500},
    {"repeat_window_s": 7},  # the job requires it to divide 60
    {"allowed_lateness_s": 3600},  # > flink_dedup_ttl_s (1800) - 60 - watermark delay
    {"sink_parallelization_factor": 11},
    {"sink_batch_size": 10001},
    {"flink_deps_jar": "lib/deps.zip"},
    {"firehose_buffer_mb": 32},  # Parquet conversion needs >= 64
    {"firehose_buffer_interval_s": 30},
    {"archive_ia_after_days": 10},
    {"archive_cold_after_days": 45},  # < IA + 30
    {"archive_cold_storage_class": "deep_archive"},
    {"athena_bytes_scanned_cutoff": 1000},
    {"timestream_memory_retention_hours": 0},
])
def test_bad_context_fails_the_synth(context):
    with pytest.raises(ValueError):
        StackSettings.from_context(App(context=context).node)


def test_lambda_env_round_trips_through_the_lambdas_own_parser(monkeypatch):
    settings = StackSettings(prefix="x", dedup_ttl_s=60, hot_ad_salts="ad-1:8,ad-2:2")
    expected = settings.ingest_settings()
    for name, value in expected.to_env().items():
        monkeypatch.setenv(name, value)
    assert IngestSettings.from_env() == expected
    assert expected.dedup_table == "x-click-dedup" and expected.clicks_stream == "x-clicks"
    assert expected.hot_ad_salts == {"ad-1": 8, "ad-2": 2}
