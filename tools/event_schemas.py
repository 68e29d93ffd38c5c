"""The published JSON Schemas of the ingest events (docs/schemas/<type>.v<N>.json), generated
from the request models that validate them (functions/ingest/models.py: one definition).

    python -m tools.event_schemas          # write the current version of each schema
    python -m tools.event_schemas --check  # exit 1 if a committed file differs (tests do this)

Only the newest version of each type is generated; older versions' files stay as published
(the contract tests keep their examples valid against today's models). Rules a JSON Schema
cannot state (timestamp ranges, decimal places, IP syntax) live in the models and are named in
each property's description where it matters; the models are authoritative.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "docs" / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def models() -> dict:
    from ingest.models import ClickIn, ConversionIn, ImpressionIn
    return {"click": ClickIn, "impression": ImpressionIn, "conversion": ConversionIn}


def current_schemas() -> dict[Path, str]:
    """file -> its text, for the newest version of each event type."""
    from ingest.models import SCHEMA_VERSIONS
    out = {}
    for event_type, model in models().items():
        version = max(SCHEMA_VERSIONS[event_type])
        schema = {"$schema": DIALECT, "$id": f"https://clickagg.example/schemas/{event_type}.v{version}.json",
                  **model.model_json_schema(mode="validation")}
        schema["title"] = f"clickagg {event_type} event, schema_version {version}"
        out[SCHEMAS / f"{event_type}.v{version}.json"] = json.dumps(schema, indent=2, sort_keys=False) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.event_schemas")
    ap.add_argument("--check", action="store_true", help="compare, do not write")
    args = ap.parse_args(argv)
    stale = []
    for path, text in current_schemas().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")
    for path in stale:
        print(f"{path.relative_to(REPO)} differs from the models: run python -m tools.event_schemas",
              file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
