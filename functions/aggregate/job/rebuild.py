"""The rebuild: the stream job's SQL in Flink batch mode over the raw archive (docs/rebuild.md).

    rebuild_range(...)  which buckets a rebuild may own and which archive partitions it reads (pure)
    run(...)            plan + execute the batch job; final rows as JSON lines under `out_path`

The output rows have OUTPUT_COLUMNS (the stream's changelog row) with `version` = the row's
final sum of version weights (sql.VERSION_WEIGHT), as the stream's last emission of that key;
aggregate.rebuild_load writes them to the serving table under a rebuild generation so they
supersede what the stream wrote.

Runs wherever PyFlink runs with the job jar (flink-parquet + shaded Hadoop, pom.xml): locally a
MiniCluster over files the driver copied from the archive (local/rebuild.py); on a Flink cluster
with an S3 file system, `archive_path` may be the bucket's s3:// prefix itself. On Managed Flink
the entry is aggregate/job/rebuild_main.py: it reads the run from the property group `rebuild`
(RebuildRun, set per run by serving.rebuild.handlers.prepare) and writes `_SUCCESS` at the end
(run_managed).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import MISSING, asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Protocol

from common.archive import CLICKS, EVENTS, partition_of
from common.records import CLICK_RECORD_SCHEMA, EVENT_RECORD_SCHEMA
from common.times import DAY_MS, HOUR_MS, MINUTE_MS

from . import sql
from .settings import PROPERTY_GROUP, JobSettings


class RebuildError(ValueError):
    """A range the rebuild cannot own (message says why)."""


@dataclass(frozen=True)
class RebuildRange:
    """Buckets [start_ms, end_ms) and the arrival hours read for them.

    Read window (arrival): from start - lookback - max future skew (the dedup and IVT elections
    remember a click for `lookback_s`, the stream's dedup_ttl_s, and a client clock may run
    ahead of ingest by the skew) to end + the arrival cutoff (late clicks of the range's last
    minutes are counted as `late` when they arrive; billing reads the same cutoff)."""

    start_ms: int
    end_ms: int
    read_from_ms: int
    read_to_ms: int

    @property
    def partitions(self) -> list[tuple[str, str]]:
        """The (dt, hr) archive partitions of the read window, oldest first."""
        first = self.read_from_ms - self.read_from_ms % HOUR_MS
        return [partition_of(h) for h in range(first, self.read_to_ms, HOUR_MS)]

    def describe(self) -> str:
        iso = lambda ms: datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")  # noqa: E731
        return (f"buckets {iso(self.start_ms)}..{iso(self.end_ms)}, archive arrivals "
                f"{iso(self.read_from_ms)}..{iso(self.read_to_ms)} ({len(self.partitions)} hour partitions)")


def rebuild_range(start_ms: int, end_ms: int, now_ms: int, s: JobSettings, *,
                  lookback_s: int | None = None, max_future_skew_s: int = 300,
                  cutoff_s: int = 2 * 3600) -> RebuildRange:
    """Check a requested range and derive what to read (pure).

    Refused: an empty or unaligned range (whole minutes), and a range whose buckets may still
    change in the stream: the last bucket is final once the watermark passed its end + the
    allowed lateness, and every late click has arrived (arrival cutoff); before that, the
    stream still owns it."""
    if end_ms <= start_ms:
        raise RebuildError(f"empty range: end {end_ms} is not after start {start_ms}")
    if start_ms % MINUTE_MS or end_ms % MINUTE_MS:
        raise RebuildError("start and end must be whole minutes (UTC): buckets are whole minutes")
    # on-time clicks of the last minute arrive until the watermark passes its end + lateness;
    # late ones (counted as late) until the cutoff
    read_to = end_ms + max(cutoff_s, s.lateness_horizon_s - 60) * 1000
    final_at = read_to
    if final_at > now_ms:
        raise RebuildError(
            f"the range is not final yet: its last buckets may still change until "
            f"{datetime.fromtimestamp(final_at / 1000, timezone.utc):%Y-%m-%dT%H:%M:%SZ} (end + the "
            f"lateness horizon or the arrival cutoff of {cutoff_s} s); the stream owns them until then")
    lookback = s.dedup_ttl_s if lookback_s is None else lookback_s
    return RebuildRange(start_ms, end_ms, start_ms - (lookback + max_future_skew_s) * 1000, read_to)


def day_range(day_start_ms: int, days: int = 1) -> tuple[int, int]:
    if day_start_ms % DAY_MS:
        raise RebuildError("a day starts at 00:00 UTC")
    return day_start_ms, day_start_ms + days * DAY_MS


def create_batch_env(s: JobSettings, jar_uri: str | None, parallelism: int | None = None):
    """A StreamTableEnvironment in BATCH mode (so stage 2 can hand its verdicts over as
    DataStreams, as the stream job does: pipeline.verdicts_and_corrections) with the job jar
    (IVT functions, Parquet format)."""
    from pyflink.datastream import RuntimeExecutionMode, StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    t_env = StreamTableEnvironment.create(env, EnvironmentSettings.in_batch_mode())
    config = t_env.get_config()
    if jar_uri:
        config.set("pipeline.jars", jar_uri)
    config.set("pipeline.name", f"{sql.PIPELINE_NAME}-rebuild")
    if parallelism or s.parallelism:
        config.set("parallelism.default", str(parallelism or s.parallelism))
    for k, v in sql.batch_options(s).items():
        config.set(k, v)
    return t_env


def plan(t_env, s: JobSettings, r: RebuildRange, clicks_path: str, events_path: str | None,
         out_path: str) -> str:
    """Register sources, views and sink; returns the INSERT statement."""
    from aggregate.job import pipeline

    pipeline.register_functions(t_env)
    t_env.execute_sql(sql.archive_source_ddl(sql.ARCHIVE_CLICKS, clicks_path, CLICK_RECORD_SCHEMA,
                                             r.partitions))
    if events_path:
        t_env.execute_sql(sql.archive_source_ddl(sql.ARCHIVE_EVENTS, events_path,
                                                 EVENT_RECORD_SCHEMA, r.partitions))
    events = bool(events_path)
    for statement in sql.rebuild_stage1_views(s, r.partitions, events=events):
        t_env.execute_sql(statement)
    # stage 2: the stream job's own SQL and boundaries (pipeline.build_output_in), in arrival
    # order; the spend lane without its own translation (batch rows are final), no pulse
    pipeline.verdicts_and_corrections(t_env, s, order=sql.ARRIVAL_ORDER)
    for statement in [sql.counted_view(s, events), *sql.spend_views(s),
                      *sql.aggregate_views(s, events=events, lanes=[sql.SPEND_VIEW],
                                           with_counted=False)]:
        t_env.execute_sql(statement)
    t_env.execute_sql(sql.rebuild_output_view(r.start_ms, r.end_ms))
    t_env.execute_sql(sql.rebuild_sink_ddl(out_path))
    return sql.rebuild_insert_dml()


def run(s: JobSettings, r: RebuildRange, archive_root: str, out_path: str, *,
        jar_uri: str | None, events: bool = True, parallelism: int | None = None) -> dict:
    """Run the rebuild to completion. `archive_root`: the bucket root holding raw/clicks/ (and
    raw/events/) as a file:// or s3:// URI. Returns {seconds, out_path}."""
    root = archive_root.rstrip("/")
    # the stream's hand-over point (stream_count_from_ms) keeps the stream off what the rebuild
    # owns; the rebuild counts every bucket of its range
    s = s.with_overrides(count_from_ms=0)
    t_env = create_batch_env(s, jar_uri, parallelism)
    insert = plan(t_env, s, r, f"{root}/{CLICKS.prefix}", f"{root}/{EVENTS.prefix}" if events else None,
                  out_path)
    t0 = time.monotonic()
    t_env.execute_sql(insert).wait()
    return {"seconds": round(time.monotonic() - t0, 2), "out_path": out_path}


def parse_time(value: str) -> int:
    """`2026-12-05` (00:00 UTC), `2026-12-05T10:30` (UTC) or epoch milliseconds."""
    if value.isdigit():
        return int(value)
    dt = datetime.fromisoformat(value.rstrip("Z"))
    return int(dt.replace(tzinfo=timezone.utc).timestamp() * 1000)


# --- one run on Managed Flink: the property group `rebuild` ------------------------------------
REBUILD_GROUP = "rebuild"  # next to the job's `clickagg` group; written per run by `prepare`
ROWS_DIR = "rows/"  # the rows: <out>rows/phase=<p>/part-*  (the load lists each phase's prefix)
PHASES = (int(sql.REBUILD_FIRST), int(sql.REBUILD_LATER))  # load order (sql.REBUILD_PHASE_COLUMN)
SUCCESS_NAME = "_SUCCESS"  # <out>_SUCCESS, written after the job finished
IDLE_GENERATION = 0  # the group's value before any run: the application has nothing to do
_URI = re.compile(r"^(s3|file)://[^\s]+$")


def phase_dir(phase: int) -> str:
    """The directory of a load phase's rows under ROWS_DIR (the sink's partition directory)."""
    return f"{sql.REBUILD_PHASE_COLUMN}={phase}/"


class RunPropertyError(ValueError):
    """The `rebuild` property group cannot describe a run (message names the property)."""


def _idle() -> RunPropertyError:
    return RunPropertyError(f"{REBUILD_GROUP}.generation: 0, no rebuild requested (the "
                            "application was started without the state machine's prepare)")


@dataclass(frozen=True)
class RebuildRun:
    """What one rebuild run of the Managed Flink application does (property group `rebuild`,
    all values strings there). `out` is the run's own directory (s3://.../gen=<generation>/):
    the rows go under `rows/`, the completion object is `_SUCCESS`."""

    start_ms: int
    end_ms: int
    archive_root: str
    out: str
    generation: int
    arrival_cutoff_s: int = 2 * 3600
    max_future_skew_s: int = 300

    @property
    def rows_uri(self) -> str:
        return self.out + ROWS_DIR

    @property
    def success_uri(self) -> str:
        return self.out + SUCCESS_NAME

    def properties(self) -> dict[str, str]:
        """The property group's map (strings, as Managed Flink stores them)."""
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_properties(cls, groups: Mapping[str, Mapping[str, Any]]) -> "RebuildRun":
        """The run from the application's property groups (`{group: {key: value}}`); refuses a
        missing, idle, misspelt or invalid group with the property's name and the reason."""
        if REBUILD_GROUP not in groups:
            raise RunPropertyError(f"no property group {REBUILD_GROUP!r}: this application runs "
                                   "rebuilds only as the rebuild state machine starts them")
        raw = dict(groups[REBUILD_GROUP])
        if str(raw.get("generation", "")).strip() == str(IDLE_GENERATION):
            raise _idle()  # before the other fields: an idle group has none of them
        fields = list(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise RunPropertyError(f"{REBUILD_GROUP}: unknown properties {unknown}; known: {fields}")
        values: dict[str, Any] = {}
        for name, f in cls.__dataclass_fields__.items():
            if name not in raw:
                if f.default is MISSING:
                    raise RunPropertyError(f"{REBUILD_GROUP}.{name}: required")
                continue
            value = str(raw[name]).strip()
            if f.type == "int":
                if not re.fullmatch(r"-?\d+", value):
                    raise RunPropertyError(f"{REBUILD_GROUP}.{name}: expected an integer, got {value!r}")
                values[name] = int(value)
            else:
                values[name] = value
        run = cls(**values)
        run.check()
        return run

    def check(self) -> None:
        """Each value's rules (the range's own: rebuild_range)."""
        if self.generation == IDLE_GENERATION:
            raise _idle()
        if self.generation < 0:
            raise RunPropertyError(f"{REBUILD_GROUP}.generation: must be >= 1, got {self.generation}")
        for name in ("start_ms", "end_ms", "arrival_cutoff_s", "max_future_skew_s"):
            if getattr(self, name) < 0:
                raise RunPropertyError(f"{REBUILD_GROUP}.{name}: must be >= 0, got {getattr(self, name)}")
        if self.end_ms <= self.start_ms:
            raise RunPropertyError(f"{REBUILD_GROUP}.end_ms: must be after start_ms {self.start_ms}, "
                                   f"got {self.end_ms}")
        for name in ("archive_root", "out"):
            if not _URI.match(getattr(self, name)):
                raise RunPropertyError(f"{REBUILD_GROUP}.{name}: expected an s3:// or file:// URI, "
                                       f"got {getattr(self, name)!r}")
        if not self.out.endswith("/"):
            raise RunPropertyError(f"{REBUILD_GROUP}.out: the run's directory ends with '/', got {self.out!r}")


def success_record(run: RebuildRun, seconds: float) -> str:
    """The `_SUCCESS` object's text: which run finished, and how long the job took."""
    return json.dumps({"generation": run.generation, "start_ms": run.start_ms,
                       "end_ms": run.end_ms, "seconds": seconds}, sort_keys=True)


class FileSystem(Protocol):
    def exists(self, uri: str) -> bool: ...

    def write_text(self, uri: str, text: str) -> None: ...


def run_managed(groups: Mapping[str, Mapping[str, Any]], now_ms: int, fs: FileSystem,
                job: Callable[..., dict], log: Callable[[str], None] = print) -> int:
    """One run on Managed Flink (rebuild_main.py): the run from `groups`, the range checked as
    `prepare` checked it, the job (`job` = run), then `_SUCCESS` through `fs` (Flink's own file
    system: s3:// there, file:// in tests). A run whose `_SUCCESS` exists already returns 0 at
    once: the service may start a finished application's job again. Returns the exit code."""
    from .settings import PROPERTY_GROUP

    run = RebuildRun.from_properties(groups)
    if fs.exists(run.success_uri):
        log(f"rebuild generation {run.generation}: {run.success_uri} exists, nothing to do")
        return 0
    s = JobSettings.from_properties({PROPERTY_GROUP: groups.get(PROPERTY_GROUP, {})})
    r = rebuild_range(run.start_ms, run.end_ms, now_ms, s, max_future_skew_s=run.max_future_skew_s,
                      cutoff_s=run.arrival_cutoff_s)
    log(f"rebuild generation {run.generation}: {r.describe()} -> {run.rows_uri}")
    # jar_uri None: the service puts the application's `jarfile` on the classpath itself
    stats = job(s, r, run.archive_root, run.rows_uri, jar_uri=None,
                events=bool(s.events_stream_arn))
    fs.write_text(run.success_uri, success_record(run, stats["seconds"]))
    log(f"rebuild generation {run.generation}: done in {stats['seconds']} s, {run.success_uri} written")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the rebuild job (the loader runs after it: serving.rebuild.loader)."""
    import argparse
    import json
    import sys

    from .main import connector_jar_uri
    from .settings import load_properties

    p = argparse.ArgumentParser(prog="aggregate.job.rebuild", description=__doc__.split("\n")[0])
    p.add_argument("--start", required=True, type=parse_time, help="first bucket (UTC; whole minutes)")
    p.add_argument("--end", required=True, type=parse_time, help="end of the last bucket, exclusive")
    p.add_argument("--archive-root", required=True,
                   help="URI of the bucket root holding raw/clicks/ and raw/events/ (file:// or s3://)")
    p.add_argument("--out", required=True, help="URI of the directory for the final rows")
    p.add_argument("--properties", help="the stream job's runtime properties (JSON)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--parallelism", type=int)
    p.add_argument("--no-events", action="store_true", help="clicks only (no events archive)")
    p.add_argument("--arrival-cutoff-s", type=int, default=2 * 3600,
                   help="how long after the range's end clicks may still arrive (billing_cutoff_hours)")
    p.add_argument("--max-future-skew-s", type=int, default=300)
    args = p.parse_args(argv)
    props = load_properties(args.properties) if args.properties else {}
    group = {**props.get(PROPERTY_GROUP, {}), **dict(kv.split("=", 1) for kv in args.set)}
    s = JobSettings.from_properties({PROPERTY_GROUP: group})
    try:
        r = rebuild_range(args.start, args.end, int(time.time() * 1000), s,
                          max_future_skew_s=args.max_future_skew_s,
                          cutoff_s=args.arrival_cutoff_s)
    except RebuildError as exc:
        print(f"rebuild refused: {exc}", file=sys.stderr)
        return 2
    print(f"rebuild: {r.describe()}", file=sys.stderr, flush=True)
    stats = run(s, r, args.archive_root, args.out, jar_uri=connector_jar_uri(),
                events=not args.no_events, parallelism=args.parallelism)
    print(json.dumps({**stats, "start_ms": r.start_ms, "end_ms": r.end_ms}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
