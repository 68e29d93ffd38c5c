"""Stack settings read from CDK context (`cdk.json` or `cdk synth -c key=value`).

Every key is the field name below; a missing key (or JSON null) takes the documented default.
Values from `-c` arrive as strings and are converted to the field's type here, so a typo fails
the synth instead of deploying a surprising stack.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Optional

from constructs import Node

# infra/__init__.py has put functions/ on sys.path, so this is the Lambdas' own module.
from common.config import IngestSettings, ResourceNames, _parse_salts

KINESIS_MODES = ("on_demand", "provisioned")
_OPTIONAL = {"ingest_reserved_concurrency", "alarm_email"}
_STRINGS = {"prefix", "kinesis_mode", "hot_ad_salts", "alarm_email"}


@dataclass(frozen=True)
class StackSettings:
    """Tunables of the deployed pipeline; defaults match cdk.json and common.config."""

    prefix: str = "clickagg"  # physical names: common.config.ResourceNames(prefix)
    ingest_rate_limit: int = 10_000  # steady requests/s (stage and usage plan throttle)
    ingest_burst_limit: int = 5_000  # burst bucket of the same throttles
    kinesis_mode: str = "on_demand"  # "on_demand" | "provisioned"
    kinesis_shards: int = 4  # only used when kinesis_mode == "provisioned"
    kinesis_retention_hours: int = 168  # 7 days, so a Flink restart can replay
    dedup_ttl_s: int = 24 * 3600  # how long a click_id is remembered (table TTL)
    hot_ad_salts: str = ""  # "ad-1:8,ad-7:4": hot ads spread over N partition keys
    ingest_memory_mb: int = 1024
    ingest_reserved_concurrency: Optional[int] = None  # None = unreserved account pool
    # Public Powertools layer AWSLambdaPowertoolsPythonV3-python312-arm64:<version>.
    # Check the Powertools docs for the version that ships requirements/lambda.txt's release.
    powertools_layer_version: int = 38
    alarm_email: Optional[str] = None  # optional email subscription of the alarm topic

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", self.prefix):
            raise ValueError(f"prefix {self.prefix!r}: lowercase letters, digits, '-', max 31")
        if self.kinesis_mode not in KINESIS_MODES:
            raise ValueError(f"kinesis_mode {self.kinesis_mode!r}: expected one of {KINESIS_MODES}")
        if not 24 <= self.kinesis_retention_hours <= 8760:
            raise ValueError("kinesis_retention_hours must be within 24..8760")
        if not 128 <= self.ingest_memory_mb <= 10_240:
            raise ValueError("ingest_memory_mb must be within 128..10240")
        for name in ("ingest_rate_limit", "ingest_burst_limit", "kinesis_shards", "dedup_ttl_s",
                     "powertools_layer_version"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.ingest_reserved_concurrency is not None and self.ingest_reserved_concurrency < 1:
            raise ValueError("ingest_reserved_concurrency must be >= 1 (or null)")
        _parse_salts(self.hot_ad_salts)  # the Lambda's own parser: reject what it would reject

    @classmethod
    def from_context(cls, node: Node) -> "StackSettings":
        values = {}
        for f in fields(cls):
            raw = node.try_get_context(f.name)
            if raw is not None:
                values[f.name] = _convert(f.name, raw)
        return cls(**values)

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.prefix)

    def ingest_settings(self) -> IngestSettings:
        """What the ingest Lambda reads from its environment (IngestSettings.from_env)."""
        return IngestSettings(
            dedup_table=self.names.dedup_table,
            clicks_stream=self.names.clicks_stream,
            dedup_ttl_s=self.dedup_ttl_s,
            hot_ad_salts=_parse_salts(self.hot_ad_salts),
        )


def _convert(name: str, raw: Any) -> Any:
    if name in _OPTIONAL and isinstance(raw, str) and raw.strip().lower() in ("", "none", "null"):
        return None
    if name in _STRINGS:
        if not isinstance(raw, str):
            raise ValueError(f"context {name}={raw!r}: expected a string")
        return raw.strip()
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise ValueError(f"context {name}={raw!r}: expected an integer")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"context {name}={raw!r}: expected an integer") from None
