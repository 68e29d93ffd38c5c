"""Versioned event schemas (issue 19): the published JSON Schemas (docs/schemas/) are what the
ingest models generate, and every published example of every version stays valid, both for the
JSON Schema of its version and for the models the API validates with today. An example's file
name says its type and version: `<type>.v<N>[.<name>].json` (tests/contract/events/)."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from ingest.models import SCHEMA_VERSIONS, ClickIn, ConversionIn, ImpressionIn
from tools import event_schemas

HERE = Path(__file__).resolve().parent
EXAMPLES = sorted((HERE / "events").glob("*.json"))
MODELS = {"click": ClickIn, "impression": ImpressionIn, "conversion": ConversionIn}


def schema_file(event_type: str, version: int) -> dict:
    return json.loads((event_schemas.SCHEMAS / f"{event_type}.v{version}.json").read_text())


def test_published_schemas_are_what_the_models_generate():
    assert event_schemas.main(["--check"]) == 0


def test_every_version_the_api_reads_is_published():
    published = {p.name for p in event_schemas.SCHEMAS.glob("*.json")}
    assert published == {f"{t}.v{v}.json" for t, versions in SCHEMA_VERSIONS.items() for v in versions}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_published_examples_stay_valid(path):
    event_type, version = path.name.split(".")[0], int(path.name.split(".")[1].removeprefix("v"))
    event = json.loads(path.read_text(), parse_float=Decimal)  # as the API parses bodies
    assert list(Draft202012Validator(schema_file(event_type, version)).iter_errors(event)) == []
    model = MODELS[event_type].model_validate(event)  # raises if today's API would refuse it
    assert model.schema_version == event.get("schema_version", 1) == version


def test_examples_cover_every_type_and_version():
    covered = {(p.name.split(".")[0], int(p.name.split(".")[1][1:])) for p in EXAMPLES}
    assert covered == {(t, v) for t, versions in SCHEMA_VERSIONS.items() for v in versions}


BASE = {
    "impression": json.loads((HERE / "events" / "impression.v1.json").read_text()),
    "conversion": json.loads((HERE / "events" / "conversion.v1.click_id.json").read_text()),
    "click": json.loads((HERE / "events" / "click.v1.legacy.json").read_text()),
}


@pytest.mark.parametrize("event_type, change", [
    ("impression", {"schema_version": 2}),
    ("impression", {"impression_id": ""}),
    ("impression", {"ad_id": "has space"}),
    ("impression", {"type": "click"}),
    ("conversion", {"click_id": None}),  # then neither click_id nor token
    ("conversion", {"currency": "eur"}),
    ("conversion", {"value": -1}),
    ("conversion", {"schema_version": "1"}),
    ("click", {"schema_version": 0}),
    ("click", {"type": "impression"}),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else v)
def test_schema_and_models_refuse_the_same_broken_events(event_type, change):
    event = {k: v for k, v in {**BASE[event_type], **change}.items() if v is not None}
    errors = list(Draft202012Validator(schema_file(event_type, 1)).iter_errors(event))
    assert errors, f"the JSON Schema accepts {event}"
    with pytest.raises(ValueError):
        MODELS[event_type].model_validate(event)
