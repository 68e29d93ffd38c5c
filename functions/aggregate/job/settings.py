"""Settings of the click-aggregation Flink job, read from Managed Flink runtime properties.

On AWS the job reads `/etc/flink/application_properties.json` (a list of
`{"PropertyGroupId": ..., "PropertyMap": {...}}`); locally the same shape can be given in a file
or as a plain dict. Every job property lives in the single group `clickagg` (see `PROPERTY_GROUP`),
keyed by the field names of `JobSettings` below; values are strings, as Managed Flink stores them.

Validation errors raise `SettingsError` naming the offending property, e.g.
`clickagg.repeat_window_s: must divide 60, got 7`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

PROPERTY_GROUP = "clickagg"
AWS_PROPERTIES_FILE = Path("/etc/flink/application_properties.json")

ENV_AWS = "aws"
ENV_LOCAL = "local"
INIT_POSITIONS = ("LATEST", "TRIM_HORIZON", "AT_TIMESTAMP")
_STREAM_ARN = re.compile(r"^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream/([A-Za-z0-9_.-]{1,128})$")


class SettingsError(ValueError):
    """A runtime property is missing or invalid; the message starts with `group.property`."""


@dataclass(frozen=True)
class JobSettings:
    """Every tunable of the job. Defaults are the documented production defaults."""

    # Both run the same source/sink DDL (Kinesis in, Kinesis out); "local" adds the emulator's
    # endpoint (aws_endpoint) and lets the job configure its own checkpoints.
    environment: str = ENV_AWS

    # --- semantics -------------------------------------------------------------------------
    allowed_lateness_s: int = 900  # a 1-minute bucket accepts clicks until watermark >= end + this
    watermark_delay_s: int = 5  # bounded out-of-orderness of the event-time watermark
    repeat_window_s: int = 10  # one billable click per (user, ad, window); must divide 60
    dedup_ttl_s: int = 1800  # click_id / repeat-bucket memory; must cover the lateness horizon
    leaderboard_size: int = 1000  # M of the top-M leaderboards (1m and 1h, by clicks)
    agg_state_margin_s: int = 3600  # aggregate state lives bucket + lateness + this (idle TTL)

    # --- performance -----------------------------------------------------------------------
    minibatch_latency_ms: int = 2000
    minibatch_size: int = 5000
    parallelism: int | None = None  # None: the runtime's default (Managed Flink: KPU setting)
    source_idle_timeout_ms: int = 60000  # a split silent this long stops holding the watermark

    # --- checkpointing (applied locally; on AWS the service configures checkpoints) --------
    checkpoint_interval_ms: int = 10000
    checkpoint_dir: str | None = None  # local: file:///... ; None disables local checkpoints

    # --- AWS source / sink -----------------------------------------------------------------
    aws_region: str | None = None
    clicks_stream_arn: str | None = None
    aggregates_stream_arn: str | None = None
    source_init_position: str = "LATEST"
    source_init_timestamp: str | None = None  # ISO-8601 with offset, for AT_TIMESTAMP
    getrecords_interval_ms: int = 200  # per-shard GetRecords pause (5 calls/s/shard is the AWS limit)
    getrecords_max_records: int = 10000  # records per GetRecords (the AWS maximum)
    aws_endpoint: str | None = None  # local only: the emulator's URL (e.g. moto server)

    # ---------------------------------------------------------------------------------------
    @property
    def allowed_lateness_ms(self) -> int:
        return self.allowed_lateness_s * 1000

    @property
    def lateness_horizon_s(self) -> int:
        """Longest time a click can stay countable after its event time (in watermark time)."""
        return 60 + self.allowed_lateness_s + self.watermark_delay_s

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
        """
        groups = _groups(properties)
        raw = dict(groups.get(PROPERTY_GROUP, {}))
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise SettingsError(f"{PROPERTY_GROUP}.{key}: unknown property")
            values[key] = _coerce(key, value, known[key].type)
        values.update(overrides)
        return cls(**values).validated()


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


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    name = f"{PROPERTY_GROUP}.{key}"
    ann = str(annotation)
    if value is None:
        return None
    if "int" in ann:
        if isinstance(value, bool):
            raise SettingsError(f"{name}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text == "" and "None" in ann:
            return None
        if not re.fullmatch(r"-?\d+", text):
            raise SettingsError(f"{name}: expected an integer, got {value!r}")
        return int(text)
    text = str(value).strip()
    if text == "" and "None" in ann:
        return None
    return text


def _validate(s: JobSettings) -> None:
    def err(key: str, msg: str) -> SettingsError:
        return SettingsError(f"{PROPERTY_GROUP}.{key}: {msg}")

    if s.environment not in (ENV_AWS, ENV_LOCAL):
        raise err("environment", f"must be {ENV_AWS!r} or {ENV_LOCAL!r}, got {s.environment!r}")
    positive = (
        "allowed_lateness_s", "repeat_window_s", "dedup_ttl_s", "leaderboard_size",
        "minibatch_latency_ms", "minibatch_size", "checkpoint_interval_ms", "getrecords_interval_ms",
        "getrecords_max_records",
    )
    for key in positive:
        if getattr(s, key) <= 0:
            raise err(key, f"must be > 0, got {getattr(s, key)}")
    for key in ("watermark_delay_s", "agg_state_margin_s", "source_idle_timeout_ms"):
        if getattr(s, key) < 0:
            raise err(key, f"must be >= 0, got {getattr(s, key)}")
    if 60 % s.repeat_window_s:
        raise err("repeat_window_s", f"must divide 60, got {s.repeat_window_s}")
    if s.dedup_ttl_s < s.lateness_horizon_s:
        raise err(
            "dedup_ttl_s",
            f"must be >= the lateness horizon 60 + allowed_lateness_s + watermark_delay_s = "
            f"{s.lateness_horizon_s}, got {s.dedup_ttl_s}",
        )
    if s.parallelism is not None and s.parallelism < 1:
        raise err("parallelism", f"must be >= 1, got {s.parallelism}")
    if s.checkpoint_interval_ms < 100:
        raise err("checkpoint_interval_ms", f"must be >= 100, got {s.checkpoint_interval_ms}")

    if not s.aws_region:
        raise err("aws_region", "required")
    for key in ("clicks_stream_arn", "aggregates_stream_arn"):
        arn = getattr(s, key)
        if not arn:
            raise err(key, "required")
        m = _STREAM_ARN.match(arn)
        if not m:
            raise err(key, f"not a Kinesis stream ARN: {arn!r}")
        if m.group(1) != s.aws_region:
            raise err(key, f"region {m.group(1)!r} differs from aws_region {s.aws_region!r}")
    if s.clicks_stream_arn == s.aggregates_stream_arn:
        raise err("aggregates_stream_arn", "must differ from clicks_stream_arn")
    if s.source_init_position not in INIT_POSITIONS:
        raise err("source_init_position", f"must be one of {INIT_POSITIONS}, got {s.source_init_position!r}")
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
