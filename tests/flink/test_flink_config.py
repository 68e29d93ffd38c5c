"""Pure tests (no JVM): settings validation and the generated SQL on AWS and locally (the same
DDL; only the connection options differ)."""
from __future__ import annotations

import pytest

from aggregate.job import sql
from aggregate.job.settings import JobSettings, SettingsError

ARN_IN = "arn:aws:kinesis:eu-west-1:123456789012:stream/clickagg-clicks"
ARN_OUT = "arn:aws:kinesis:eu-west-1:123456789012:stream/clickagg-aggregates"
AWS_GROUP = {"environment": "aws", "aws_region": "eu-west-1", "clicks_stream_arn": ARN_IN,
             "aggregates_stream_arn": ARN_OUT}


def aws(**kw) -> JobSettings:
    return JobSettings.from_properties({"clickagg": {**AWS_GROUP, **kw}})


def local(**kw) -> JobSettings:
    return JobSettings.from_properties({"clickagg": {**AWS_GROUP, "environment": "local",
                                                     "aws_endpoint": "http://127.0.0.1:5000", **kw}})


# ------------------------------------------------------------------------------ settings
def test_defaults_are_the_documented_ones():
    s = local()
    assert (s.allowed_lateness_s, s.watermark_delay_s, s.repeat_window_s) == (900, 5, 10)
    assert (s.minibatch_latency_ms, s.minibatch_size, s.dedup_ttl_s, s.leaderboard_size) == (
        2000, 50_000, 1800, 1000)


def test_from_properties_accepts_the_managed_flink_file_shape_and_coerces_strings():
    props = [{"PropertyGroupId": "kinesis.analytics.flink.run.options",
              "PropertyMap": {"python": "aggregate/job/main.py"}},
             {"PropertyGroupId": "clickagg",
              "PropertyMap": {**AWS_GROUP, "leaderboard_size": "50", "repeat_window_s": "30",
                              "source_init_position": "TRIM_HORIZON"}}]
    s = JobSettings.from_properties(props)
    assert s.leaderboard_size == 50 and s.repeat_window_s == 30
    assert s.source_init_position == "TRIM_HORIZON" and s.environment == "aws"


@pytest.mark.parametrize("key,value,message", [
    ("repeat_window_s", "7", "clickagg.repeat_window_s: must divide 60, got 7"),
    ("repeat_window_s", "0", "clickagg.repeat_window_s: must be >= 1, got 0"),
    ("allowed_lateness_s", "ten", "clickagg.allowed_lateness_s: expected an integer, got 'ten'"),
    ("dedup_ttl_s", "600", "clickagg.dedup_ttl_s: must be >= the lateness horizon"),
    ("leaderboard_size", "0", "clickagg.leaderboard_size: must be >= 1, got 0"),
    ("minibatch_size", "-1", "clickagg.minibatch_size: must be >= 1, got -1"),
    ("watermark_delay_s", "-5", "clickagg.watermark_delay_s: must be >= 0, got -5"),
    ("parallelism", "0", "clickagg.parallelism: must be >= 1, got 0"),
    ("source_init_position", "EARLIEST", "clickagg.source_init_position: expected one of"),
    ("source_init_position", "AT_TIMESTAMP", "clickagg.source_init_timestamp: required"),
    ("clicks_stream_arn", "clickagg-clicks", "clickagg.clicks_stream_arn: not a Kinesis stream ARN"),
    ("aggregates_stream_arn", ARN_OUT.replace("eu-west-1", "us-east-1"),
     "clickagg.aggregates_stream_arn: region 'us-east-1' differs"),
    ("aggregates_stream_arn", ARN_IN, "clickagg.aggregates_stream_arn: must differ"),
    ("leaderbord_size", "5", "clickagg.leaderbord_size: unknown property"),
    ("environment", "prod", "clickagg.environment: expected one of ('aws', 'local')"),
    ("environment", "local", "clickagg.aws_endpoint: required when environment is 'local'"),
    ("aws_endpoint", "http://127.0.0.1:5000", "clickagg.aws_endpoint: only for environment 'local'"),
    ("getrecords_max_records", "0", "clickagg.getrecords_max_records: must be >= 1, got 0"),
])
def test_validation_errors_name_the_property(key, value, message):
    with pytest.raises(SettingsError) as e:
        aws(**{key: value})
    assert str(e.value).startswith(message), str(e.value)


def test_dedup_ttl_must_cover_the_lateness_horizon():
    assert local(allowed_lateness_s=1700, dedup_ttl_s=1800 + 100).dedup_ttl_s == 1900
    with pytest.raises(SettingsError, match="dedup_ttl_s"):
        local(allowed_lateness_s=1740, dedup_ttl_s=1800)  # 60 + 1740 + 5 > 1800


def test_region_and_streams_are_required_everywhere():
    with pytest.raises(SettingsError, match="clickagg.aws_region: required"):
        JobSettings.from_properties({"clickagg": {"environment": "aws"}})
    with pytest.raises(SettingsError, match="clickagg.clicks_stream_arn: required"):
        JobSettings.from_properties({"clickagg": {"environment": "local", "aws_region": "eu-west-1"}})


# ----------------------------------------------------------------------------------- SQL
def _options(ddl: str) -> dict[str, str]:
    body = ddl.split("WITH (", 1)[1].rsplit(")", 1)[0]
    out = {}
    for line in body.strip().split(",\n"):
        k, v = line.strip().split(" = ")
        out[k.strip("'")] = v.strip("'")
    return out


SOURCE_COMMON = {
    "connector": "clickagg-kinesis", "scan.watermark.event-time-field": "event_time",
    "scan.watermark.delay": "5 s", "stream": "clickagg-clicks", "aws.region": "eu-west-1",
    "scan.shard.getrecords.intervalmillis": "500", "scan.shard.getrecords.maxrecordcount": "10000",
    "scan.shard.idle.interval": "60000", "scan.shard-assigner": "uniform", "format": "json",
    "json.fail-on-missing-field": "false", "json.ignore-parse-errors": "true"}
LOCAL_CONNECTION = {"aws.endpoint": "http://127.0.0.1:5000", "aws.http.protocol.version": "HTTP1_1"}


def test_aws_source_ddl_is_the_kinesis_source_with_per_shard_watermarks():
    ddl = sql.source_ddl(aws())
    assert _options(ddl) == {**SOURCE_COMMON, "scan.stream.initpos": "LATEST"}
    assert "`rowtime` AS TO_TIMESTAMP_LTZ(`event_time`, 3)" in ddl
    assert "WATERMARK FOR `rowtime` AS SOURCE_WATERMARK()" in ddl
    assert "`proctime` AS PROCTIME()" in ddl
    for col in ("click_id", "event_time", "cost_micros", "ingest_time", "source_ip"):
        assert f"`{col}` " in ddl
    at = _options(sql.source_ddl(aws(source_init_position="AT_TIMESTAMP",
                                     source_init_timestamp="2024-03-10T00:00:00.000Z")))
    assert at["scan.stream.initpos"] == "AT_TIMESTAMP"
    assert at["scan.stream.initpos-timestamp"] == "2024-03-10T00:00:00.000Z"


def test_local_ddl_differs_from_aws_only_in_connection_options():
    for make in (sql.source_ddl, sql.sink_ddl):
        a, lo = _options(make(aws())), _options(make(local()))
        assert lo == {**a, **LOCAL_CONNECTION}, make.__name__
    assert sql.source_ddl(local()).split("WITH (")[0] == sql.source_ddl(aws()).split("WITH (")[0]


def test_aws_sink_is_one_debezium_json_stream_partitioned_by_entity():
    ddl = sql.sink_ddl(aws())
    assert _options(ddl) == {"connector": "kinesis", "stream": "clickagg-aggregates",
                             "aws.region": "eu-west-1", "format": "debezium-json",
                             "sink.partitioner-field-delimiter": "|",
                             "sink.requests.max-inflight": "1"}  # a key's versions in order
    assert "PARTITIONED BY (`entity_id`)" in ddl  # the ad's, campaign's or advertiser's id
    cols = [line.strip().split(" ")[0].strip("`") for line in
            ddl.split("(", 1)[1].split(")\n", 1)[0].strip().split(",\n")]
    assert tuple(cols) == sql.OUTPUT_COLUMN_NAMES
    assert "PARTITIONED" not in sql.sink_ddl(local(), connector="blackhole")


def test_one_dml_over_logical_tables_with_the_documented_output_columns():
    views = sql.pipeline_views(local(leaderboard_size=7))
    assert views[-1].startswith(f"CREATE TEMPORARY VIEW {sql.OUTPUT_VIEW} AS")
    text = "\n".join(views)
    assert f"FROM `{sql.CLASSIFIED_TABLE}`" in text and "rn <= 7" in text
    # (ad, campaign, advertiser) x 4 resolutions + late + the budget lane's spend (1m, 1d)
    assert text.count("GROUP BY") == 3 * 4 + 1 + 2
    for res, size in sql.RESOLUTIONS.items():
        assert f"CREATE TEMPORARY VIEW agg_{res} AS" in text and f"MOD(event_time, {size})" in text
        assert f"CREATE TEMPORARY VIEW campaign_{res} AS" in text
        assert f"CREATE TEMPORARY VIEW advertiser_{res} AS" in text
    assert "WHERE campaign_id IS NOT NULL\nGROUP BY (event_time - MOD(event_time, 60000)), campaign_id" in text
    assert "events_classified" not in text  # a clicks-only job without events_stream_arn
    with_events = "\n".join(sql.pipeline_views(local(), events=True))
    assert f"FROM `{sql.EVENTS_CLASSIFIED_TABLE}` WHERE on_time" in with_events
    events = sql.classify_events_query(local(allowed_lateness_s=600))
    assert "PARTITION BY event_type, event_id ORDER BY `proctime` ASC" in events
    assert "< (event_time - MOD(event_time, 60000)) + 660000) AS on_time" in events
    assert "event_type IN ('impression', 'conversion')" in events and "ad_id IS NOT NULL" in events
    # the group rules: impression, (user, ad, repeat bucket), (ip, burst bucket); NULL keys apart
    assert "PARTITION BY impression_id IS NULL, COALESCE(impression_id, click_id) " in text
    assert ("PARTITION BY user_id IS NULL, COALESCE(user_id, click_id), ad_id, "
            "(event_time - MOD(event_time, 10000))") in text
    assert "PARTITION BY ip IS NULL, COALESCE(ip, click_id), burst_start" in text
    assert "(event_time - MOD(event_time, 1000)) AS burst_start" in text
    assert "ip IS NOT NULL AND n_burst > 10" in text and "n_burst = 11" in text
    assert "ORDER BY clicks DESC, ad_id ASC" in text
    assert sql.insert_dml().startswith("INSERT INTO `clickagg_out` (`kind`, `resolution`")
    classify = sql.classify_query(local(allowed_lateness_s=600))
    assert "PARTITION BY click_id ORDER BY `proctime` ASC" in classify
    assert "wm_ms < minute_start + 660000" in classify  # minute end + lateness
    assert "CURRENT_WATERMARK(`rowtime`)" in classify
    assert "COALESCE(IS_BOT_UA(user_agent), FALSE) AS is_bot" in classify
    assert "(DATACENTER_PROVIDER(ip) IS NOT NULL) AS is_dc" in classify
    assert "ingest_time - issued_at < 1000)" in classify
    off = sql.classify_query(local(ivt_rules="ip_burst"))
    assert "IS_BOT_UA" not in off and "DATACENTER_PROVIDER" not in off and "issued_at <" not in off
    assert "OVER (PARTITION BY impression_id" not in "\n".join(
        sql.pipeline_views(local(ivt_rules="ip_burst")))


def test_stage_options_minibatch_only_in_stage_two_and_local_checkpoints():
    s = local(checkpoint_dir="file:///tmp/ck", parallelism=3)
    st1, st2 = sql.stage1_options(s), sql.stage2_options(s)
    assert st1["table.exec.mini-batch.enabled"] == "false"
    assert st2["table.exec.mini-batch.enabled"] == "true"
    assert st2["table.exec.mini-batch.allow-latency"] == "2000 ms"
    assert st2["table.exec.mini-batch.size"] == "50000"
    assert st2["table.optimizer.agg-phase-strategy"] == "TWO_PHASE"
    assert st1["table.exec.state.ttl"] == st2["table.exec.state.ttl"] == "1800 s"
    assert st1["table.local-time-zone"] == "UTC"
    ex = sql.execution_options(s, local=True)
    assert ex["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert ex["execution.checkpointing.storage"] == "filesystem"
    assert ex["execution.checkpointing.dir"] == "file:///tmp/ck"
    assert ex["parallelism.default"] == "3"
    assert "execution.checkpointing.interval" not in sql.execution_options(s, local=False)


def test_main_entry_point_imports_without_side_effects():
    import importlib

    main = importlib.import_module("aggregate.job.main")
    assert callable(main.main)


def test_the_events_source_reads_the_events_stream_like_the_clicks_stream():
    events_arn = ARN_IN.rsplit("/", 1)[0] + "/clickagg-events"
    s = aws(events_stream_arn=events_arn)
    clicks, events = _options(sql.source_ddl(s)), _options(sql.events_source_ddl(s))
    assert events.pop("stream") == "clickagg-events" and clicks.pop("stream") != "clickagg-events"
    assert events == clicks  # same connector, watermark per shard, positions, polling
    ddl = sql.events_source_ddl(s)
    assert "`event_id` STRING" in ddl and "`schema_version` INT" in ddl and "`value_micros` BIGINT" in ddl
    with pytest.raises(SettingsError, match="clickagg.events_stream_arn: must differ"):
        aws(events_stream_arn=ARN_IN)
    assert aws().events_stream_arn is None  # optional: a clicks-only job
