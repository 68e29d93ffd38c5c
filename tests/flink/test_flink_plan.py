"""Planner-level facts (JVM with the connector jar, no job run): EXPLAIN of both stages,
per-operator state TTLs, why stage 1 runs without mini-batch."""
from __future__ import annotations

import json

import pytest

from aggregate.job import pipeline, sql
from aggregate.job.main import connector_jar_uri
from aggregate.job.settings import JobSettings

SETTINGS = JobSettings.from_properties({"clickagg": {
    "environment": "aws", "aws_region": "us-east-1", "parallelism": "2", "leaderboard_size": "3",
    "clicks_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/c",
    "aggregates_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/a",
    "events_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/e"}})
LEVELS, RESOLUTIONS = 3, 4  # ad, campaign, advertiser x 1m, 5m, 1h, 1d
JARS = {"pipeline.jars": connector_jar_uri()}


def optimized(plan: str) -> str:
    return plan.split("== Optimized Execution Plan ==")[1].split("== Physical Execution Plan")[0]


@pytest.fixture(scope="module")
def plans() -> dict[str, str]:
    return pipeline.explain(SETTINGS, extra=JARS)


def test_stage1_dedups_keep_first_and_reads_the_event_time_watermark(plans):
    p = optimized(plans["stage1"])
    assert "Deduplicate(keep=[FirstRow], key=[click_id], order=[PROCTIME])" in p
    assert "CURRENT_WATERMARK" in p
    assert "watermark=[SOURCE_WATERMARK()]" in p  # made per shard in the source
    assert "WatermarkAssigner" not in p
    assert "MiniBatchAssigner" not in p  # see test_minibatch_assigner_would_hide_the_watermark


def test_stage1_applies_the_per_click_ivt_rules_after_the_dedup_in_java(plans):
    p = optimized(plans["stage1"])
    lines = p.splitlines()
    dedup = next(i for i, l in enumerate(lines) if "Deduplicate(" in l)
    calc = next(i for i, l in enumerate(lines) if "IS_BOT_UA(user_agent)" in l)
    assert calc < dedup  # printed top-down: the rules run on distinct clicks only
    assert "DATACENTER_PROVIDER(ip)" in lines[calc]
    assert "(ingest_time - issued_at) < 1000" in lines[calc]
    assert "PythonCalc" not in p


def test_stage1_of_the_events_dedups_by_type_and_id_on_their_own_watermark(plans):
    p = optimized(plans["stage1_events"])
    assert "Deduplicate(keep=[FirstRow], key=[event_type, event_id], order=[PROCTIME])" in p
    assert "CURRENT_WATERMARK" in p and "watermark=[SOURCE_WATERMARK()]" in p
    assert "WatermarkAssigner" not in p and "MiniBatchAssigner" not in p
    assert "SEARCH(event_type, Sarg[_UTF-16LE'conversion', _UTF-16LE'impression'])" in p or (
        "event_type" in p and "'impression'" in p)


def test_stage2_ivt_groups_two_phase_aggregation_and_topn(plans):
    # the group rules: one running count per group, in arrival order, append-only
    verdicts = optimized(plans["verdicts"])
    overs = [line for line in verdicts.splitlines() if "OverAggregate(" in line]
    assert len(overs) == 3 and all("orderBy=[proctime ASC]" in o for o in overs)
    # the burst correction: the first N of a bucket joined with its (N+1)th click, append-only;
    # ONE join (sql.aggregate_views: without the DataStream boundaries the planner made one per
    # aggregate level) and no running count planned a second time after the boundary
    corrections = optimized(plans["corrections"])
    joins = [line for line in corrections.splitlines() if "Join(" in line]
    assert len(joins) == 1 and "InnerJoin" in joins[0] and "(burst_start = burst_start0)" in joins[0]
    assert "OverAggregate(" not in corrections
    p = optimized(plans["stage2"])
    assert "Join(" not in p and "OverAggregate(" not in p
    # per ad, campaign, advertiser: 1m, 5m, 1h, 1d; + late counts
    assert p.count("LocalGroupAggregate(") == LEVELS * RESOLUTIONS + 1
    assert p.count("GlobalGroupAggregate(") == LEVELS * RESOLUTIONS + 1  # reused by the Top-N
    assert "MiniBatchAssigner(interval=[2000ms], mode=[ProcTime])" in p
    ranks = [line for line in p.splitlines() if "Rank(" in line]
    assert len(ranks) == 3  # 1m, 1h, 1d
    for r in ranks:  # corrections lower billable_clicks but never clicks: still the fast strategy
        assert "strategy=[UpdateFastStrategy" in r and "rankEnd=3" in r
        assert "orderBy=[clicks DESC, ad_id ASC]" in r
    # the budget lane: its own translation with its own mini-batch latency (500 ms, not 2 s),
    # two aggregates over the valid clicks and corrections only, read back as one changelog
    spend = optimized(plans["spend"])
    assert "MiniBatchAssigner(interval=[500ms], mode=[ProcTime])" in spend
    assert spend.count("GlobalGroupAggregate(") == 2 and "Rank(" not in spend
    # only the rows that move billable clicks: valid clicks and corrections (no events)
    assert "(verdict = 'valid')" in spend and "events_classified" not in spend
    assert "ivt_corrected" in spend
    # the pulse: a datagen tick beside the Kinesis sources, a projection into the one output
    assert "datagen" in plans["stage2"] or "pulse_ticks" in plans["stage2"]
    for plan in plans.values():
        assert "PythonCalc" not in plan  # all per-row logic is SQL or the jar's Java


def test_minibatch_assigner_would_hide_the_watermark():
    """With mini-batch on, a ProcTime MiniBatchAssigner sits between the watermarking source and any
    CURRENT_WATERMARK Calc; that operator forwards proctime batch markers instead of the event-time
    watermark (measured: CURRENT_WATERMARK returned the wall clock), hence the two stages."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    te = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for k, v in {**sql.stage2_options(SETTINGS), **JARS}.items():
        te.get_config().set(k, v)
    te.execute_sql(sql.source_ddl(SETTINGS))
    for statement in sql.ivt_functions_ddl():
        te.execute_sql(statement)
    te.execute_sql(f"CREATE TEMPORARY VIEW c AS {sql.classify_query(SETTINGS)}")
    p = optimized(te.explain_sql("SELECT ad_id, COUNT(*), MAX(wm_ms) FROM c GROUP BY ad_id"))
    lines = p.splitlines()
    mb = next(i for i, l in enumerate(lines) if "MiniBatchAssigner" in l)
    wm_calc = next(i for i, l in enumerate(lines) if "CURRENT_WATERMARK" in l)
    assert "mode=[ProcTime]" in lines[mb]
    assert wm_calc < mb  # printed top-down: the Calc is downstream of the assigner
    assert "watermark=[SOURCE_WATERMARK()]" in lines[mb + 1]


def test_state_ttl_per_operator():
    """Stage 2 compiled on its own (a stand-in table for the stage-1 stream): dedup and Top-N get
    dedup_ttl_s, each aggregate bucket + lateness + delay + margin via STATE_TTL hints."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    te = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for k, v in sql.stage2_options(SETTINGS).items():
        te.get_config().set(k, v)
    te.execute_sql(sql.classified_table_ddl())
    te.execute_sql(sql.classified_table_ddl(sql.EVENTS_CLASSIFIED_TABLE,
                                             columns=sql.EVENTS_CLASSIFIED_COLUMNS))
    for view in sql.pipeline_views(SETTINGS, events=True):
        te.execute_sql(view)
    te.execute_sql(sql.sink_ddl(SETTINGS, connector="blackhole"))
    plan = json.loads(te._j_tenv.compilePlanSql(sql.insert_dml()).asJsonString())
    ttl: dict[str, list[str]] = {}
    for node in plan["nodes"]:
        for st in node.get("state", []):
            ttl.setdefault(node["type"].rsplit("_", 1)[0], []).append(st["ttl"])
    assert "stream-exec-deduplicate" not in ttl  # stage 2 elects first clicks by over counts
    # the IVT groups' running counts: the compiled plan lists no state for over aggregates;
    # they keep a key for table.exec.state.ttl (= dedup_ttl_s) since its last row
    types = [node["type"].rsplit("_", 1)[0] for node in plan["nodes"]]
    assert types.count("stream-exec-over-aggregate") == 3
    assert sql.stage2_options(SETTINGS)["table.exec.state.ttl"] == "1800 s"
    # the burst correction: burst_memory_s (planned here once per level: these views without the
    # job's DataStream boundaries, see test_stage2_ivt_groups_two_phase_aggregation_and_topn)
    assert set(ttl["stream-exec-join"]) == {"2 min"}
    assert ttl["stream-exec-rank"] == ["30 min"] * 3
    margin = 900 + 5 + 3600
    assert sorted(ttl["stream-exec-global-group-aggregate"]) == sorted(
        [f"{60 + margin} s", f"{300 + margin} s", f"{3600 + margin} s", f"{86400 + margin} s"]
        * LEVELS + [f"{60 + margin} s"]  # + the late counts
        + [f"{60 + margin} s", f"{86400 + margin} s"])  # + the budget lane's spend (1m, 1d)


def test_aws_ddl_plans_with_the_connector_jar():
    """The deployed DDL is accepted by the 1.20 planner with the jar's factories (the source
    through clickagg-kinesis with source watermarks, the sink through the kinesis sink)."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    te = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    te.get_config().set("pipeline.jars", JARS["pipeline.jars"])
    te.execute_sql(sql.source_ddl(SETTINGS))
    te.execute_sql(sql.events_source_ddl(SETTINGS))
    te.execute_sql(sql.sink_ddl(SETTINGS))
    metrics = ", ".join(["1"] * len(sql.METRIC_COLUMNS))
    for source, ids in (("clicks", "ad_id, ad_id, campaign_id, advertiser_id"),
                        ("events", "ad_id, ad_id, campaign_id, advertiser_id")):
        plan = te.explain_sql(f"INSERT INTO clickagg_out SELECT 'agg', '1m', event_time, {ids}, "
                              f"{metrics}, 0, 1, event_time, event_time FROM {source}")
        assert f"table=[[default_catalog, default_database, {source}]]" in plan
        assert "WatermarkAssigner" not in optimized(plan)  # the source makes the watermark
