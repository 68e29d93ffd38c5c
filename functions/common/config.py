"""What the Lambdas read from their environment: views of the one schema (common.schema).

Each view is the settings of one `group` in common.schema, a frozen dataclass whose fields,
defaults, environment variable names and rules all come from there; `from_env()` reads and
validates them at cold start (a bad value fails with the variable's name, e.g.
`MINUTE_TTL_S: expected an integer, got 'abc'`), `to_env()` writes them (infra, local stack).
infra.settings.StackSettings.lambda_env() derives each function's environment from the same
schema, so no variable name or default is typed twice.

Not here: the AWS runtime's own variables (AWS_REGION, AWS_ENDPOINT_URL, ...) and Powertools'
(POWERTOOLS_*), which their libraries read themselves.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from common import schema
from common.schema import ResourceNames, Salts, SettingsError  # noqa: F401  (re-exported)

__all__ = ["ResourceNames", "SettingsError", "IngestSettings", "AggregationSettings",
           "ServingSettings", "ReconcileSettings", "QualitySettings", "ApiSettings", "BudgetSettings",
           "RebuildSettings"]


def _parse_salts(raw: str) -> Salts:
    """'ad-1:8,ad-7:4' -> {'ad-1': 8, 'ad-7': 4} (HOT_AD_SALTS' format)."""
    try:
        return schema.parse_salts(raw)
    except ValueError as exc:
        raise ValueError(f"bad HOT_AD_SALTS: {exc}") from None


class EnvView(schema.View):
    """A Lambda's settings from environment variables (names: common.schema)."""

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None):
        """Unset or empty variables keep the schema's defaults; a bad value raises
        SettingsError naming the variable."""
        return cls(**schema.env_values(cls, environ))

    def to_env(self) -> dict[str, str]:
        """The environment that makes from_env() return these settings."""
        return {s.env: s.encode(getattr(self, attr)) for attr, s in self.__settings__.items()}

    def require(self, attr: str) -> Any:
        """A setting this code path cannot do without (e.g. the table of the configured store)."""
        value = getattr(self, attr)
        if value is None:
            raise self.error(attr, "required")
        return value


def _view(name: str, group: str, doc: str) -> type:
    cls = schema.make_view(name, group, EnvView, module=__name__)
    cls.__doc__ = doc
    return cls


IngestSettings = _view(
    "IngestSettings", schema.INGEST,
    "The ingest Lambda: resource names, request limits, dedup and Kinesis retry tunables.")
AggregationSettings = _view(
    "AggregationSettings", "aggregation",
    "What the query side must know about how the stream aggregated (the Flink job's runtime "
    "properties carry the same settings: common.schema `flink`).")
ServingSettings = _view(
    "ServingSettings", "serving",
    "The serving store the sink writes and the query API reads (which one, its table, "
    "freshness slots, 1m-row TTL).")
ReconcileSettings = _view(
    "ReconcileSettings", "reconcile",
    "POST /v1/reconcile: the billing workflow it starts and which days it accepts.")
QualitySettings = _view(
    "QualitySettings", "quality",
    "GET /v1/quality: where the ingest metrics and the clicks stream's iterator age are.")
BudgetSettings = _view(
    "BudgetSettings", schema.BUDGET,
    "The budget Lambda (budgets, pacing decisions): its table, the fail-closed bound, the "
    "decision cache and the spend lane's emit interval (docs/budget.md).")
RebuildSettings = _view(
    "RebuildSettings", schema.REBUILD,
    "The rebuild state machine's Lambdas (serving.rebuild.handlers): the rebuild application, "
    "the bucket of its output, the archive it reads.")
ApiSettings = _view(
    "ApiSettings", "api", "The API Lambdas' CORS origins (infra adds the dashboard's).")


def _cors_origins(self) -> tuple[str, ...]:
    return tuple(o.strip() for o in self.cors_allowed_origins.split(",") if o.strip())


ApiSettings.cors_origins = property(_cors_origins)
