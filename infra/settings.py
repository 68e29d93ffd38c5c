"""Stack settings read from CDK context (`cdk.json` or `cdk synth -c key=value`).

`StackSettings` is the `context` view of the one schema (functions/common/schema.py): one field
per context setting, with the schema's type, default and rules, so a typo or an invalid value
fails the synth with a message that starts with the key (`kinesis_shards: expected an integer,
got 'four'`). Here: where the values come from, the rules that relate settings of the stack, and
what the runtimes get, derived from the same schema rather than typed again:
  lambda_env(function, ...)   a Lambda's environment     (names: the settings' `env`)
  flink_properties(...)       the Flink job's property group `clickagg` (the settings' `flink`)
  glue_arguments()            the billing job's `--<name>` arguments   (the settings' `glue`)
  ingest_settings() / aggregation_settings()   the Lambdas' own views with this stack's values

Where a value comes from (first match wins):
  1. explicit context: a top-level context key (`-c key=value`, cdk.context.json, or a
     top-level key in cdk.json). JSON null there counts as "not set"; the strings
     "none"/"null"/"" set an optional field to None explicitly.
  2. the deployment profile (`-c profile=small|medium|large`): the values capacity/profiles.py
     derives from the capacity planner for that click rate.
  3. cdk.json's `"clickagg:defaults"` object: base defaults of this deployment, if any (empty
     in the repository: the defaults are the schema's).
  4. the schema's default.
So `-c profile=large -c kinesis_shards=700` deploys the large profile with 700 shards. Base
overrides sit in a nested object, not as top-level cdk.json keys, because CDK hands cdk.json's
top-level context to the app exactly like `-c` (an app cannot tell them apart): a top-level
value would always beat the profile. Unknown keys in "clickagg:defaults" fail the synth.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from constructs import Node

# infra/__init__.py has put functions/ on sys.path, so these are the Lambdas' own modules.
from common import schema
from common.config import AggregationSettings, IngestSettings, ResourceNames
from common.schema import SettingsError

DEFAULTS_KEY = "clickagg:defaults"  # cdk.json: base defaults of a deployment (layer 3 above)
PROFILE_KEY = "profile"
# A new on-demand table is pre-warmed to this many writes/s; warm throughput only goes up.
DYNAMODB_BASE_WARM_WRITES = 4_000
_SIMPLE_CRON = re.compile(r"cron\(([0-9]{1,2}) ([0-9]{1,2}) \* \* \? \*\)")


class _Stack(schema.View):
    """Tunables of the deployed pipeline (fields: common.schema, every `context` setting)."""

    # --- rules between settings of the stack (each setting's own rules: the schema) ---------
    def _check(self) -> None:
        if self.profile is not None:
            try:
                _profiles().get_profile(self.profile)
            except ValueError as exc:
                raise SettingsError(f"profile: {exc}") from None
        for table in ("dedup", "serving"):
            mode = getattr(self, f"{table}_capacity_mode")
            low, high = getattr(self, f"{table}_min_wcu"), getattr(self, f"{table}_max_wcu")
            if mode == "provisioned" and (low is None or high is None):
                raise SettingsError(
                    f"{table}_capacity_mode=provisioned needs {table}_min_wcu and "
                    f"{table}_max_wcu (the write autoscaling range)")
            if low is not None and high is not None and low > high:
                raise SettingsError(f"{table}_min_wcu must be <= {table}_max_wcu")
        for table in ("dedup", "serving"):
            high = getattr(self, f"{table}_max_rcu")
            if high is not None and high < getattr(self, f"{table}_min_rcu"):
                raise SettingsError(f"{table}_max_rcu must be >= {table}_min_rcu")
        if self.flink_min_pause_between_checkpoints_ms >= self.flink_checkpoint_interval_ms:
            raise SettingsError("flink_min_pause_between_checkpoints_ms must be < "
                                "flink_checkpoint_interval_ms (else the pause sets the interval)")
        if self.archive_cold_after_days < self.archive_ia_after_days + 30:  # S3: 30 days in IA
            raise SettingsError("archive_cold_after_days must be >= archive_ia_after_days + 30")
        simple = _SIMPLE_CRON.fullmatch(self.billing_schedule)
        if simple:  # a daily time: it must leave the cutoff hours + archive buffering behind
            minute, hour = int(simple.group(1)), int(simple.group(2))
            earliest = self.billing_cutoff_hours * 60 + -(-self.firehose_buffer_interval_s // 60)
            if not (minute < 60 and hour < 24) or hour * 60 + minute < earliest:
                raise SettingsError(
                    f"billing_schedule {self.billing_schedule!r} starts before "
                    f"{earliest // 60:02d}:{earliest % 60:02d} UTC: the run of yesterday must "
                    "start after billing_cutoff_hours + the archive's buffer interval")

    # --- derived values -----------------------------------------------------------------------
    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.prefix)

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.cors_allowed_origins.split(",") if o.strip())

    @property
    def waf_rate_limit(self) -> int:
        """Requests per IP per 5 minutes (WAF rate-based rule)."""
        if self.waf_rate_limit_per_5min is not None:
            return self.waf_rate_limit_per_5min
        return min(2_000_000_000, self.ingest_rate_limit * 300)

    # --- where the values come from ------------------------------------------------------------
    @classmethod
    def from_context(cls, node: Node) -> "StackSettings":
        """Explicit context > profile > cdk.json "clickagg:defaults" > the schema's defaults."""
        names = set(cls.__settings__)
        base = node.try_get_context(DEFAULTS_KEY) or {}
        if not isinstance(base, Mapping):
            raise SettingsError(f"context {DEFAULTS_KEY}: expected an object of setting defaults")
        unknown = sorted(set(base) - names)
        if unknown:
            raise SettingsError(f"context {DEFAULTS_KEY}: unknown settings {unknown}")

        def explicit(name: str) -> tuple[bool, Any]:
            raw = node.try_get_context(name)
            return (False, None) if raw is None else (True, cls.parse(name, raw))

        has_profile, profile = explicit(PROFILE_KEY)
        if not has_profile and base.get(PROFILE_KEY) is not None:
            profile = cls.parse(PROFILE_KEY, base[PROFILE_KEY])
        try:
            profile_values = profile_context(profile) if profile else {}
        except SettingsError:
            raise
        except ValueError as exc:  # unknown profile
            raise SettingsError(f"{PROFILE_KEY}: {exc}") from None

        values: dict[str, Any] = {}
        for name in names:
            found, value = explicit(name)
            if found:
                values[name] = value
            elif name in profile_values:
                values[name] = cls.parse(name, profile_values[name])
            elif base.get(name) is not None:
                values[name] = cls.parse(name, base[name])
        if profile:
            values[PROFILE_KEY] = profile
        return cls(**values)

    # --- what the runtimes get ------------------------------------------------------------------
    def runtime(self, view: type, **wired: Any) -> Any:
        """A runtime view (common.config) with this stack's values: its context settings from
        here, `wired` ones (resource names) as given, the rest at the schema's defaults."""
        unknown = sorted(set(wired) - set(view.__settings__))
        if unknown:
            raise SettingsError(f"{view.__name__} has no settings {unknown}")
        values = {attr: getattr(self, s.name) for attr, s in view.__settings__.items()
                  if s.context}
        return view(**{**values, **wired})

    def ingest_settings(self) -> IngestSettings:
        """What the ingest Lambda reads from its environment (IngestSettings.from_env)."""
        return self.runtime(IngestSettings, dedup_table=self.names.dedup_table,
                            clicks_stream=self.names.clicks_stream,
                            events_stream=self.names.events_stream,
                            click_token_secret=self.names.click_token_secret)

    def aggregation_settings(self) -> AggregationSettings:
        """What the query Lambda reads from its environment (AggregationSettings.from_env)."""
        return self.runtime(AggregationSettings)

    def lambda_env(self, function: str, **wired: Any) -> dict[str, str]:
        """The environment of Lambda `function` (common.schema INGEST, QUERY, SINK, RECONCILE):
        every setting written to it, by its variable name: context settings from here, settings
        without a context key at their default, `wired` ones (resource names and ARNs; CDK
        tokens welcome) as given and left out when not given. A setting with `only_if` is left
        out unless this stack has that value (FRESHNESS_SLOTS: the DynamoDB store only)."""
        for name in wired:
            setting = schema.BY_NAME.get(name)
            if setting is None or function not in setting.lambdas:
                raise SettingsError(f"{name}: not a setting of the {function} function")
        env: dict[str, str] = {}
        for s in schema.SETTINGS:
            if function not in s.lambdas:
                continue
            if s.only_if and getattr(self, s.only_if[0]) != s.only_if[1]:
                continue
            if s.name in wired:
                value = wired[s.name]
            elif s.wired:
                continue
            else:
                value = getattr(self, s.name) if s.context else s.default
            env[s.env] = s.encode(value)
        return env

    def env_of(self, *names: str, **wired: Any) -> dict[str, str]:
        """Variable -> text of the settings `names` (this stack's values) and `wired` (as given):
        part of an environment, e.g. what every user of the serving store gets. Settings with
        `only_if` are left out unless this stack has that value."""
        env: dict[str, str] = {}
        for name in (*names, *wired):
            s = schema.BY_NAME[name]
            if not s.env:
                raise SettingsError(f"{name}: not read from an environment variable")
            if s.only_if and getattr(self, s.only_if[0]) != s.only_if[1]:
                continue
            env[s.env] = s.encode(wired[name] if name in wired else getattr(self, name))
        return env

    def flink_properties(self, **wired: Any) -> dict[str, str]:
        """The job's property group (aggregate.job.settings.JobSettings reads it): every context
        setting the job has, by its property name, plus `wired` job properties (region, stream
        ARNs, environment, start position) as given. Values are strings, as Managed Flink
        stores them."""
        settings = schema.view_settings(schema.FLINK)
        unknown = sorted(set(wired) - set(settings))
        if unknown:
            raise SettingsError(f"{schema.FLINK_PROPERTY_GROUP}: unknown properties {unknown}")
        props = {attr: s.encode(getattr(self, s.name)) for attr, s in settings.items()
                 if s.context}
        props.update({attr: settings[attr].encode(v) for attr, v in wired.items()})
        return props

    def glue_arguments(self) -> dict[str, str]:
        """The billing job's `--<name>` arguments for every context setting it has
        (glue_jobs.billing.transform.BillingSettings.from_args reads them)."""
        return {f"--{attr}": s.encode(getattr(self, s.name))
                for attr, s in schema.view_settings(schema.GLUE).items() if s.context}


StackSettings = schema.make_view("StackSettings", schema.CONTEXT, _Stack, module=__name__)


def _profiles():
    # The planner lives at the repository root (capacity/), beside infra/.
    from capacity import profiles

    return profiles


def profile_context(name: str) -> dict[str, Any]:
    """The CDK context values of a profile (the planner's; region-independent today: the
    priced regions give equal values, so the us-east-1 price book stands for all)."""
    values = _profiles().profile_context(name)
    unknown = sorted(set(values) - set(StackSettings.__settings__))
    if unknown:  # a planner key infra has not wired: fail rather than ignore it
        raise SettingsError(f"profile {name!r} sets context keys infra does not know: {unknown}")
    return values


def profile_keys() -> frozenset[str]:
    """Every setting some profile sets (cdk.json keeps them out of its top-level context)."""
    return frozenset(k for name in _profiles().PROFILES for k in profile_context(name))
