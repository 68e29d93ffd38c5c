"""Planner-level facts (JVM, no job run): EXPLAIN of both stages, per-operator state TTLs,
the debezium-json encoding against Flink's own serializer, why stage 1 runs without mini-batch,
and the FileSource split order behind the feeding protocol."""
from __future__ import annotations

import json

import pytest

from aggregate.job import output, pipeline, sql
from aggregate.job.settings import JobSettings

SETTINGS = JobSettings(input_dir="/tmp/clickagg-plan-test", parallelism=2, leaderboard_size=3).validated()


def optimized(plan: str) -> str:
    return plan.split("== Optimized Execution Plan ==")[1].split("== Physical Execution Plan")[0]


@pytest.fixture(scope="module")
def plans() -> dict[str, str]:
    return pipeline.explain(SETTINGS)


def test_stage1_dedups_keep_first_and_reads_the_event_time_watermark(plans):
    p = optimized(plans["stage1"])
    assert "Deduplicate(keep=[FirstRow], key=[click_id], order=[PROCTIME])" in p
    assert "CURRENT_WATERMARK" in p
    assert "WatermarkAssigner(rowtime=[rowtime], watermark=[(rowtime - 5000:INTERVAL SECOND)])" in p
    assert "MiniBatchAssigner" not in p  # see test_minibatch_assigner_would_hide_the_watermark


def test_stage2_two_phase_aggregation_billable_dedup_and_topn(plans):
    p = optimized(plans["stage2"])
    assert p.count("LocalGroupAggregate(") == 5  # 1m, 5m, 1h, 1d + late counts
    assert p.count("GlobalGroupAggregate(") == 5  # each aggregate once: reused by the Top-N
    assert "Deduplicate(keep=[FirstRow], key=[ad_id, user_id, $" in p  # billable (repeat rule)
    assert "MiniBatchAssigner(interval=[2000ms], mode=[ProcTime])" in p
    ranks = [line for line in p.splitlines() if "Rank(" in line]
    assert len(ranks) == 2
    for r in ranks:
        assert "strategy=[UpdateFastStrategy" in r and "rankEnd=3" in r
        assert "orderBy=[clicks DESC, ad_id ASC]" in r
    assert "Join" not in p and "PythonCalc" not in p  # all per-row logic is SQL


def test_minibatch_assigner_would_hide_the_watermark():
    """With mini-batch on, a ProcTime MiniBatchAssigner sits between the WatermarkAssigner and any
    CURRENT_WATERMARK Calc; that operator forwards proctime batch markers instead of the event-time
    watermark (measured: CURRENT_WATERMARK returned the wall clock), hence the two stages."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    te = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for k, v in sql.stage2_options(SETTINGS).items():
        te.get_config().set(k, v)
    te.execute_sql(sql.source_ddl(SETTINGS))
    te.execute_sql(f"CREATE TEMPORARY VIEW c AS {sql.classify_query(SETTINGS)}")
    p = optimized(te.explain_sql("SELECT ad_id, COUNT(*), MAX(wm_ms) FROM c GROUP BY ad_id"))
    lines = p.splitlines()
    mb = next(i for i, l in enumerate(lines) if "MiniBatchAssigner" in l)
    wm_calc = next(i for i, l in enumerate(lines) if "CURRENT_WATERMARK" in l)
    assert "mode=[ProcTime]" in lines[mb]
    assert wm_calc < mb  # printed top-down: the Calc is downstream of the assigner
    assert "WatermarkAssigner" in lines[mb + 1]


def test_state_ttl_per_operator():
    """Stage 2 compiled on its own (a stand-in table for the stage-1 stream): dedup and Top-N get
    dedup_ttl_s, each aggregate bucket + lateness + delay + margin via STATE_TTL hints."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    te = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for k, v in sql.stage2_options(SETTINGS).items():
        te.get_config().set(k, v)
    te.execute_sql(sql.classified_table_ddl())
    for view in sql.pipeline_views(SETTINGS):
        te.execute_sql(view)
    te.execute_sql(sql.sink_ddl(SETTINGS, connector="blackhole"))
    plan = json.loads(te._j_tenv.compilePlanSql(sql.insert_dml()).asJsonString())
    ttl: dict[str, list[str]] = {}
    for node in plan["nodes"]:
        for st in node.get("state", []):
            ttl.setdefault(node["type"].rsplit("_", 1)[0], []).append(st["ttl"])
    assert ttl["stream-exec-deduplicate"] == ["30 min"]
    assert ttl["stream-exec-rank"] == ["30 min", "30 min"]
    margin = 900 + 5 + 3600
    assert sorted(ttl["stream-exec-global-group-aggregate"]) == sorted(
        [f"{60 + margin} s", f"{300 + margin} s", f"{3600 + margin} s", f"{86400 + margin} s",
         f"{60 + margin} s"])


def test_aws_ddl_registers():
    """The AWS DDL is accepted by the 1.20 parser/catalog (the kinesis jar is not here)."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    s = JobSettings.from_properties({"clickagg": {
        "environment": "aws", "aws_region": "us-east-1",
        "clicks_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/c",
        "aggregates_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/a"}})
    te = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    te.execute_sql(sql.source_ddl(s))
    te.execute_sql(sql.sink_ddl(s))
    assert set(te.list_tables()) >= {"clicks", "clickagg_out"}


def test_debezium_json_matches_flinks_serializer_byte_for_byte():
    from pyflink.java_gateway import get_gateway
    from pyflink.table import DataTypes
    from pyflink.table.types import _to_java_data_type

    jvm = get_gateway().jvm
    F = jvm.org.apache.flink
    types = {"STRING": DataTypes.STRING(), "BIGINT": DataTypes.BIGINT()}
    row_type = _to_java_data_type(DataTypes.ROW(
        [DataTypes.FIELD(n, types[t]) for n, t, _ in sql.OUTPUT_COLUMNS])).getLogicalType()
    fmt = F.formats.common.TimestampFormat.SQL
    ser = F.formats.json.debezium.DebeziumJsonSerializationSchema(
        row_type, fmt, F.formats.json.JsonFormatOptions.MapNullKeyMode.FAIL, "null", False, False)
    ser.open(None)
    des = F.formats.json.JsonRowDataDeserializationSchema(
        row_type, F.table.runtime.typeutils.InternalTypeInfo.of(row_type), True, False, fmt)
    des.open(None)
    values = ["top", "1h", 1710111600000, "ad-hot", "cmp-0", "adv-0", 812, 700, 91_000_000,
              80_000_000, None, 41, 1710112559000, 1710112554000]
    source = json.dumps(dict(zip(sql.OUTPUT_COLUMN_NAMES, values))).encode()
    for kind, java_kind in (("+I", "INSERT"), ("-U", "UPDATE_BEFORE"), ("+U", "UPDATE_AFTER"),
                            ("-D", "DELETE")):
        row = des.deserialize(source)
        row.setRowKind(getattr(F.types.RowKind, java_kind))
        assert bytes(ser.serialize(row)) == output.encode(output.debezium_record(kind, values)), kind


def test_file_split_assigner_serves_the_newest_pending_file_first():
    """Root cause of the ~25% late drops when replaying a directory: Flink 1.20's default
    LocalityAwareSplitAssigner (used by the filesystem SQL source) is LIFO over pending splits."""
    from pyflink.java_gateway import get_gateway

    gw = get_gateway()
    F = gw.jvm.org.apache.flink
    no_hosts = gw.new_array(gw.jvm.String, 0)
    splits = gw.jvm.java.util.ArrayList()
    for i in range(1, 6):
        path = F.core.fs.Path(f"file:///in/clicks-{i:012d}.jsonl")
        splits.add(F.connector.file.src.FileSourceSplit(str(i), path, 0, 10, 0, 10, no_hosts))
    assigner = F.connector.file.src.assigners.LocalityAwareSplitAssigner(gw.jvm.java.util.ArrayList())
    assigner.addSplits(splits)  # one directory listing found five files
    order = []
    while True:
        nxt = assigner.getNext(None)
        if not nxt.isPresent():
            break
        order.append(int(nxt.get().splitId()))
    assert order == [5, 4, 3, 2, 1]
    # the protocol: a file is published only after the previous one was taken -> publish order
    served = []
    for i in range(5):
        assigner.addSplits(gw.jvm.java.util.Collections.singletonList(splits.get(i)))
        served.append(int(assigner.getNext(None).get().splitId()))
    assert served == [1, 2, 3, 4, 5]
