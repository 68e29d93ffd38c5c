"""The one configuration schema (functions/common/schema.py): its catalog is consistent, the
Lambdas' views fail at cold start with the variable's name, and the two validation engines (the
stdlib one the Flink application zip runs, pydantic wherever it is importable) agree."""
from __future__ import annotations

from typing import Any

import pytest

from common import config, schema
from common.config import (AggregationSettings, ApiSettings, BudgetSettings, IngestSettings, QualitySettings,
                           RebuildSettings, ReconcileSettings, ServingSettings)
from common.schema import SettingsError

ENV_VIEWS = (IngestSettings, AggregationSettings, ServingSettings, ReconcileSettings,
             QualitySettings, ApiSettings, BudgetSettings, RebuildSettings)


# --- the catalog ---------------------------------------------------------------------------------
def test_names_are_unique_per_runtime():
    for key in ("name", "env", "flink", "glue"):
        names = [getattr(s, key) for s in schema.SETTINGS if getattr(s, key)]
        assert len(names) == len(set(names)), key


def test_every_setting_reaches_a_runtime_and_every_group_has_a_view():
    groups = {s.group for s in schema.SETTINGS if s.group}
    assert groups == {v.__kind__ for v in ENV_VIEWS}
    for s in schema.SETTINGS:
        assert s.context or s.group or s.flink or s.glue, s.name
        assert set(s.lambdas) <= set(schema.FUNCTIONS), s.name
        assert not s.lambdas or s.env, s.name  # written to a Lambda: it has a variable
        if s.only_if:
            assert s.only_if[0] in schema.BY_NAME, s.name


def test_every_default_passes_its_own_rules():
    for s in schema.SETTINGS:
        assert s.type_problem(s.default) is None and s.problem(s.default) is None, s.name


def test_text_round_trips_through_every_setting_converter():
    for s in schema.SETTINGS:
        assert s.parse(s.encode(s.default)) == s.default, s.name


def test_a_shared_setting_has_one_default_in_every_view():
    from aggregate.job.settings import JobSettings

    assert JobSettings().allowed_lateness_s == AggregationSettings().allowed_lateness_s \
        == schema.default("allowed_lateness_s")
    assert JobSettings().dedup_ttl_s == schema.default("flink_dedup_ttl_s")
    assert IngestSettings().dedup_ttl_s == schema.default("dedup_ttl_s")


# --- cold start: a bad variable fails with its name -------------------------------------------------
@pytest.mark.parametrize("view, env, message", [
    (IngestSettings, {"MAX_BATCH": "lots"}, "MAX_BATCH: expected an integer, got 'lots'"),
    (IngestSettings, {"HOT_AD_SALTS": "ad-1"},
     "HOT_AD_SALTS: bad entry 'ad-1': expected ad_id:N with N >= 1"),
    (IngestSettings, {"DEDUP_TTL_S": "0"}, "DEDUP_TTL_S: must be >= 1, got 0"),
    (AggregationSettings, {"LEADERBOARD_SIZE": "ten"},
     "LEADERBOARD_SIZE: expected an integer, got 'ten'"),
    (ServingSettings, {"MINUTE_TTL_S": "8d"}, "MINUTE_TTL_S: expected an integer, got '8d'"),
    (ServingSettings, {"SERVING_STORE": "dynamo"},
     "SERVING_STORE: expected one of ('timestream', 'dynamodb'), got 'dynamo'"),
    (ServingSettings, {"FRESHNESS_SLOTS": "101"},
     "FRESHNESS_SLOTS: must be within 1..100, got 101"),
    (ReconcileSettings, {"BILLING_CUTOFF_HOURS": "24"},
     "BILLING_CUTOFF_HOURS: must be within 0..23, got 24"),
    (ApiSettings, {"CORS_ALLOWED_ORIGINS": "https://a.example.com/app"},
     "CORS_ALLOWED_ORIGINS: 'https://a.example.com/app' is not an origin"),
])
def test_from_env_names_the_variable(view, env, message):
    with pytest.raises(SettingsError) as e:
        view.from_env(env)
    assert str(e.value).startswith(message), str(e.value)


def test_unset_or_empty_variables_keep_the_defaults():
    assert ServingSettings.from_env({"MINUTE_TTL_S": ""}) == ServingSettings()
    assert IngestSettings.from_env({}) == IngestSettings()


def test_required_wired_values_are_named():
    with pytest.raises(SettingsError, match="^SERVING_TABLE: required$"):
        ServingSettings.from_env({}).require("serving_table")


def test_query_lambda_cold_start_fails_naming_the_variable(monkeypatch):
    """A container's first invocation builds its service from the environment: a bad value
    stops it there, with the variable's name (what CloudWatch Logs shows)."""
    from query import handler

    monkeypatch.setenv("SERVING_TABLE", "clickagg-serving")
    monkeypatch.setenv("LEADERBOARD_SIZE", "ten")
    handler.get_service.cache_clear()
    try:
        with pytest.raises(SettingsError, match="^LEADERBOARD_SIZE: expected an integer, got 'ten'$"):
            handler.get_service()
    finally:
        handler.get_service.cache_clear()


def test_to_env_round_trips_every_view():
    for view in ENV_VIEWS:
        assert view.from_env(view().to_env()) == view(), view.__name__
    custom = IngestSettings(max_batch=42, hot_ad_salts={"ad-1": 8}, dedup_ttl_s=60)
    assert IngestSettings.from_env(custom.to_env()) == custom


# --- pydantic where importable, the same rules without it ------------------------------------------
def _cases(setting: schema.Setting) -> list[Any]:
    """Values of the right type or not, inside and outside the setting's rules."""
    out: list[Any] = [setting.default, None, True, "text", 7, -1, 0]
    if setting.ge is not None:
        out += [setting.ge, setting.ge - 1]
    if setting.le is not None:
        out += [setting.le, setting.le + 1]
    out += list(setting.choices) + [f"{c}x" for c in setting.choices]
    if setting.base == schema.Salts:
        out += [{"ad-1": 2}, {"ad-1": 0}, {"": 2}, {"ad-1": "2"}]
    return out


def _outcome(view: type, attr: str, value: Any) -> str:
    try:
        view(**{attr: value})
    except SettingsError as exc:
        return str(exc)
    return "ok"


def test_stdlib_and_pydantic_validation_agree(monkeypatch):
    """The Flink job (no pydantic in its zip) and the Lambdas/synth (pydantic) accept and refuse
    the same values with the same messages."""
    from aggregate.job.settings import JobSettings
    from infra.settings import StackSettings

    views = (*ENV_VIEWS, StackSettings, JobSettings)
    assert all(schema.pydantic_model(v) is not None for v in views)  # .venv has pydantic
    cases = [(v, attr, value) for v in views for attr, s in v.__settings__.items()
             for value in _cases(s)]
    with_pydantic = [_outcome(*case) for case in cases]
    monkeypatch.setattr(schema, "pydantic_model", lambda view: None)
    stdlib = [_outcome(*case) for case in cases]
    differ = [(v.__name__, a, value, p, s) for (v, a, value), p, s in
              zip(cases, with_pydantic, stdlib) if p != s]
    assert not differ, differ[:5]
    assert sum(o != "ok" for o in stdlib) > len(cases) / 2  # the cases do test refusals


def test_pydantic_model_documents_the_view():
    model = schema.pydantic_model(ServingSettings)
    doc = model.model_json_schema()["properties"]["minute_ttl_s"]
    assert doc["default"] == 8 * 86400 and "expire" in doc["description"]


def test_config_exports_the_views():
    assert set(config.__all__) >= {v.__name__ for v in ENV_VIEWS}
