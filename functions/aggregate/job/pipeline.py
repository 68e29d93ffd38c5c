"""Assembles the job in a StreamTableEnvironment from the SQL in `sql.py` (shared by AWS main.py,
the local runner, the benchmark and the tests).

Two translation stages, one job graph:

1. Stage 1 (dedup by click_id + late classification with CURRENT_WATERMARK) is translated with
   mini-batch DISABLED and converted to a DataStream (`to_data_stream`). Measured on 1.20.5: with
   mini-batch enabled the planner inserts `MiniBatchAssigner(mode=[ProcTime])` directly after the
   WatermarkAssigner, and that operator swallows the event-time watermarks and emits
   processing-time batch markers instead: CURRENT_WATERMARK(rowtime) after it returns the wall
   clock (e.g. 2026 for 2023 data) and the late rule would be meaningless.
2. The DataStream is registered back as the table `clicks_classified` (+ a fresh `proctime`) and
   stage 2 is translated with mini-batch + TWO_PHASE ON. Its MiniBatchAssigner sits on that
   DataStream scan; nothing in stage 2 reads the watermark any more (`wm_ms` is a column).

Both stages run in the JVM (no Python function is applied to the DataStream), chained in the same
tasks: the conversion costs a RowData <-> Row copy per click (measured in bench/flink.py).
"""
from __future__ import annotations

from typing import Any

from . import sql
from .settings import JobSettings


def create_table_env(settings: JobSettings, *, local: bool, extra: dict[str, str] | None = None):
    """A streaming StreamTableEnvironment configured with `execution_options`."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    conf = Configuration()
    for k, v in {**sql.execution_options(settings, local=local), **(extra or {})}.items():
        conf.set_string(k, v)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    if settings.parallelism:
        env.set_parallelism(settings.parallelism)
    t_env = StreamTableEnvironment.create(
        env, environment_settings=EnvironmentSettings.new_instance().in_streaming_mode().build()
    )
    if "pipeline.jars" in (extra or {}):
        _use_jars_for_job_graph(env, t_env, extra["pipeline.jars"])
    return t_env


def _use_jars_for_job_graph(env: Any, t_env: Any, jars: str) -> None:
    """Local runs (the jar given as `pipeline.jars`): the client must see the jar's classes when
    it builds the job graph. With checkpointing on, Flink compiles every generated operator
    there (StreamingJobGraphGenerator.preValidate) with the execution environment's class
    loader, which for an environment made by PyFlink is the JVM's application loader: operators
    calling the jar's IVT functions failed ("Cannot determine simple type name com"). Setting the
    key through the table config makes PyFlink add the jar to the context class loader; the
    environment is then pointed at that loader (no API sets it; a field write, local only). On
    Managed Flink the service starts the driver with the jar on the user class path already."""
    from pyflink.java_gateway import get_gateway

    t_env.get_config().set("pipeline.jars", jars)
    jvm = get_gateway().jvm
    field = jvm.java.lang.Class.forName(
        "org.apache.flink.streaming.api.environment.StreamExecutionEnvironment"
    ).getDeclaredField("userClassloader")
    field.setAccessible(True)
    field.set(env._j_stream_execution_environment,
              jvm.java.lang.Thread.currentThread().getContextClassLoader())


def _apply(t_env: Any, options: dict[str, str]) -> None:
    config = t_env.get_config()
    for k, v in options.items():
        config.set(k, v)


def build_output(t_env: Any, settings: JobSettings, *, source_ddl: str | None = None,
                 events_source_ddl: str | None = None):
    """Register the sources, stage 1, stage 2; return the `clickagg_output` Table.

    `source_ddl` / `events_source_ddl` override the generated sources (the benchmark points
    them at fixed files); they must define the tables `clicks` / `events` with the same columns.
    The events source exists when `events_stream_arn` is set or its DDL is given.
    """
    _apply(t_env, sql.stage1_options(settings))
    t_env.execute_sql(source_ddl or sql.source_ddl(settings))
    events_ddl = events_source_ddl or (sql.events_source_ddl(settings)
                                       if settings.events_stream_arn else None)
    if events_ddl:
        t_env.execute_sql(events_ddl)
    # the pulse is an unbounded tick: only beside the unbounded Kinesis sources (a benchmark's
    # or test's bounded files must let the job finish)
    return build_output_in(t_env, settings, events=bool(events_ddl), pulse=source_ddl is None)


def explain(settings: JobSettings, *, source_ddl: str | None = None,
            events_source_ddl: str | None = None,
            extra: dict[str, str] | None = None) -> dict[str, str]:
    """EXPLAIN text of every translated part: `stage1`, `stage1_events` (with the events
    source), stage 2's `verdicts` (running counts), `corrections` (the burst join) and `stage2`
    (aggregates, leaderboards, output); for tests and reviews. `extra`: e.g. the connector jar."""
    t_env = create_table_env(settings, local=True, extra=extra)
    _apply(t_env, sql.stage1_options(settings))
    t_env.execute_sql(source_ddl or sql.source_ddl(settings))
    events_ddl = events_source_ddl or (sql.events_source_ddl(settings)
                                       if settings.events_stream_arn else None)
    if events_ddl:
        t_env.execute_sql(events_ddl)
    register_functions(t_env)
    plans = {"stage1": t_env.explain_sql(sql.classify_query(settings))}
    if events_ddl:
        plans["stage1_events"] = t_env.explain_sql(sql.classify_events_query(settings))
    output = build_output_in(t_env, settings, events=bool(events_ddl), pulse=source_ddl is None)
    plans["verdicts"] = t_env.from_path(sql.VERDICTS_VIEW).explain()
    plans["corrections"] = t_env.from_path(sql.CORRECTIONS_VIEW).explain()
    _apply(t_env, sql.spend_options(settings))  # as _spend_lane translated it
    plans["spend"] = t_env.from_path(sql.SPEND_VIEW).explain()
    _apply(t_env, sql.stage2_options(settings))
    plans["stage2"] = output.explain()
    return plans


def register_functions(t_env: Any) -> None:
    """The IVT rules' Java functions (in the job jar: `pipeline.jars` locally, the application's
    jarfile on Managed Flink)."""
    for statement in sql.ivt_functions_ddl():
        t_env.execute_sql(statement)


def build_output_in(t_env: Any, settings: JobSettings, *, events: bool = False,
                    pulse: bool = False):
    """Stage 1 + 2 on an environment whose `clicks` table (and with `events`, `events` table)
    already exists; the budget lane's spend always, its pulse with `pulse`."""
    from pyflink.table import Schema

    register_functions(t_env)
    _apply(t_env, sql.stage1_options(settings))
    stream = to_row_data_stream(t_env, t_env.sql_query(sql.classify_query(settings)))
    events_stream = (to_row_data_stream(t_env, t_env.sql_query(sql.classify_events_query(settings)))
                     if events else None)
    _apply(t_env, sql.stage2_options(settings))
    t_env.create_temporary_view(
        sql.CLASSIFIED_TABLE,
        stream,
        Schema.new_builder().column_by_expression("proctime", "PROCTIME()").build(),
    )
    if events_stream is not None:
        t_env.create_temporary_view(sql.EVENTS_CLASSIFIED_TABLE, events_stream)
    verdicts_and_corrections(t_env, settings)
    t_env.execute_sql(sql.counted_view(settings, events))
    lanes = [_spend_lane(t_env, settings)]
    if pulse:
        for statement in sql.pulse_statements(settings):
            t_env.execute_sql(statement)
        lanes.append(sql.PULSE_VIEW)
    for statement in sql.aggregate_views(settings, events=events, lanes=lanes, with_counted=False):
        t_env.execute_sql(statement)
    return t_env.from_path(sql.OUTPUT_VIEW)


def verdicts_and_corrections(t_env: Any, settings: JobSettings, order: str = sql.STREAM_ORDER) -> None:
    """The IVT views over `clicks_classified`, with the verdicts and the correction join's
    output handed over as DataStreams: the per-level aggregates' projections stop there instead
    of each planning its own copy of the join (sql.aggregate_views). The rebuild (batch mode,
    `order` = sql.ARRIVAL_ORDER) needs the boundary as much: without it the batch planner made
    13 copies of the join, one per aggregate."""
    for statement in sql.ivt_views(settings, order=order):
        t_env.execute_sql(statement)
    t_env.create_temporary_view(
        sql.VERDICTS_TABLE, to_row_data_stream(t_env, t_env.from_path(sql.VERDICTS_VIEW)))
    t_env.execute_sql(sql.correction_view(settings, sql.VERDICTS_TABLE))
    t_env.create_temporary_view(
        sql.CORRECTIONS_TABLE, to_row_data_stream(t_env, t_env.from_path(sql.CORRECTIONS_VIEW)))


def _spend_lane(t_env: Any, settings: JobSettings) -> str:
    """The budget lane's spend (sql.spend_views), translated now with its own mini-batch latency
    (budget_emit_interval_ms: the latency is one per translation, so a lane of its own needs a
    translation of its own) and handed back as a changelog table for the one output."""
    for statement in sql.spend_views(settings):
        t_env.execute_sql(statement)
    _apply(t_env, sql.spend_options(settings))
    changelog = t_env.to_changelog_stream(t_env.from_path(sql.SPEND_VIEW))
    _apply(t_env, sql.stage2_options(settings))
    t_env.create_temporary_view(sql.SPEND_TABLE, t_env.from_changelog_stream(changelog))
    return sql.SPEND_TABLE


def sink_view(t_env: Any, settings: JobSettings, output: Any) -> str:
    """The view the sink inserts from: the output changelog as it is (`changelog_mode` retract)
    or without its -U rows (upsert: the jar's DropUpdateBefore on the changelog stream;
    README-flink.md "Output row")."""
    if settings.changelog_mode != "upsert":
        return sql.OUTPUT_VIEW
    from pyflink.datastream import DataStream
    from pyflink.java_gateway import get_gateway

    changelog = t_env.to_changelog_stream(output)
    upserts = DataStream(changelog._j_data_stream.filter(
        get_gateway().jvm.com.clickagg.flink.DropUpdateBefore()).name("DropUpdateBefore"))
    t_env.create_temporary_view(sql.UPSERT_VIEW, t_env.from_changelog_stream(upserts))
    return sql.UPSERT_VIEW


def to_row_data_stream(t_env: Any, table: Any):
    """The insert-only `table` as a DataStream of Flink's internal RowData, for a boundary between
    two translations. PyFlink's `to_data_stream` converts every record to an external Row and
    `create_temporary_view` back to RowData, field by field (JFR on 1M clicks: ~11 % of the job's
    samples were Row/RowData conversions); bridged to RowData both conversions are the identity
    (measured end to end with object reuse: +2 %, within noise, README-flink). Only through the JVM: PyFlink has no API for the bridging, and Flink none for a
    changelog (`toChangelogStream` always makes Rows: the spend lane and the sink view keep them)."""
    from pyflink.datastream import DataStream
    from pyflink.java_gateway import get_gateway

    row_data = get_gateway().jvm.java.lang.Class.forName("org.apache.flink.table.data.RowData")
    data_type = table._j_table.getResolvedSchema().toPhysicalRowDataType().bridgedTo(row_data)
    return DataStream(t_env._j_tenv.toDataStream(table._j_table, data_type))
