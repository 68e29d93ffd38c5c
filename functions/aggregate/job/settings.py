"""Settings of the click-aggregation Flink job, read from Managed Flink runtime properties.

On AWS the job reads `/etc/flink/application_properties.json` (a list of
`{"PropertyGroupId": ..., "PropertyMap": {...}}`); locally the same shape can be given in a file
or as a plain dict. Every job property lives in the single group `clickagg` (see `PROPERTY_GROUP`),
keyed by the field names of `JobSettings`; values are strings, as Managed Flink stores them.

`JobSettings` is the `flink` view of the one schema (common.schema): its fields, defaults, rules
and the text converter come from there (stdlib only: the application zip has no pydantic), and
infra writes the deployed properties from the same definitions (infra.settings
StackSettings.flink_properties). Here: what only the job checks (ARNs, required values).

Validation errors raise `SettingsError` naming the offending property, e.g.
`clickagg.repeat_window_s: must divide 60, got 7`.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from common import schema
from common.times import DAY_MS
from common.schema import SettingsError  # noqa: F401  (re-exported)

PROPERTY_GROUP = schema.FLINK_PROPERTY_GROUP
AWS_PROPERTIES_FILE = Path("/etc/flink/application_properties.json")

ENV_AWS, ENV_LOCAL = schema.JOB_ENVIRONMENTS
INIT_POSITIONS = schema.INIT_POSITIONS
_STREAM_ARN = re.compile(r"^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream/([A-Za-z0-9_.-]{1,128})$")


class _Job(schema.View):
    """Every tunable of the job (fields: common.schema, kind `flink`). Constructing one checks
    each value's type and rules; `validated()` adds what a runnable job needs (region, ARNs)."""

    @property
    def allowed_lateness_ms(self) -> int:
        return self.allowed_lateness_s * 1000

    @property
    def lateness_horizon_s(self) -> int:
        """Longest time a click can stay countable after its event time (in watermark time)."""
        return schema.lateness_horizon_s(self.allowed_lateness_s, self.watermark_delay_s)

    def validated(self) -> "JobSettings":
        _validate(self)
        return self

    def with_overrides(self, **kwargs: Any) -> "JobSettings":
        return replace(self, **kwargs).validated()

    @classmethod
    def from_properties(
        cls, properties: Mapping[str, Any] | list[dict[str, Any]], **overrides: Any
    ) -> "JobSettings":
        """Build from runtime properties: `{group: {key: value}}` or the AWS list shape.

        Only the `clickagg` group is read; an unknown key in it is an error (typo guard).
        `overrides` are typed values (they win over the properties).
        """
        groups = _groups(properties)
        raw = dict(groups.get(PROPERTY_GROUP, {}))
        return schema.load(cls, raw, unknown="unknown property", **overrides).validated()


JobSettings = schema.make_view("JobSettings", schema.FLINK, _Job, module=__name__)


def load_properties(path: str | Path | None = None) -> dict[str, dict[str, str]]:
    """Runtime properties from `path`, else the Managed Flink file when it exists, else {}."""
    candidate = Path(path) if path else AWS_PROPERTIES_FILE
    if not candidate.exists():
        if path:
            raise SettingsError(f"properties file {candidate} does not exist")
        return {}
    return _groups(json.loads(candidate.read_text()))


def _groups(properties: Mapping[str, Any] | list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if isinstance(properties, list):  # AWS: [{"PropertyGroupId": g, "PropertyMap": {...}}]
        return {p["PropertyGroupId"]: dict(p.get("PropertyMap", {})) for p in properties}
    return {g: dict(m) for g, m in properties.items()}


def _validate(s: JobSettings) -> None:
    """What a runnable job needs beyond each property's own rules (those: construction)."""
    err = s.error
    if not s.aws_region:
        raise err("aws_region", "required")
    for key in ("clicks_stream_arn", "aggregates_stream_arn", "events_stream_arn"):
        arn = getattr(s, key)
        if not arn:
            if key == "events_stream_arn":
                continue  # optional: a clicks-only job
            raise err(key, "required")
        m = _STREAM_ARN.match(arn)
        if not m:
            raise err(key, f"not a Kinesis stream ARN: {arn!r}")
        if m.group(1) != s.aws_region:
            raise err(key, f"region {m.group(1)!r} differs from aws_region {s.aws_region!r}")
    if s.clicks_stream_arn == s.aggregates_stream_arn:
        raise err("aggregates_stream_arn", "must differ from clicks_stream_arn")
    if s.events_stream_arn in (s.clicks_stream_arn, s.aggregates_stream_arn):
        raise err("events_stream_arn", "must differ from clicks_stream_arn and aggregates_stream_arn")
    if s.count_from_ms % DAY_MS:
        raise err("count_from_ms", "must be a UTC day start (epoch ms): every bucket, 1d included, "
                                   "then lies wholly on one side of the hand-over")
    if s.source_init_position == "AT_TIMESTAMP" and not s.source_init_timestamp:
        raise err("source_init_timestamp", "required when source_init_position is AT_TIMESTAMP")
    if s.environment == ENV_LOCAL and not s.aws_endpoint:
        raise err("aws_endpoint", "required when environment is 'local' (the emulator's URL)")
    if s.environment == ENV_AWS and s.aws_endpoint:
        raise err("aws_endpoint", "only for environment 'local': on AWS the connector uses the regional endpoint")


def stream_name(arn: str) -> str:
    """The stream name of a Kinesis stream ARN (the 4.x connector addresses streams by name)."""
    m = _STREAM_ARN.match(arn)
    if not m:
        raise SettingsError(f"not a Kinesis stream ARN: {arn!r}")
    return m.group(3)
