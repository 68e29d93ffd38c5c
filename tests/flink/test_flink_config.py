"""Pure tests (no JVM): settings validation, generated SQL per environment, output encoding,
the file-feeding protocol and the Kinesis writer's batching/retries."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from aggregate.job import feed, output, sql
from aggregate.job.settings import JobSettings, SettingsError

ARN_IN = "arn:aws:kinesis:eu-west-1:123456789012:stream/clickagg-clicks"
ARN_OUT = "arn:aws:kinesis:eu-west-1:123456789012:stream/clickagg-aggregates"
AWS_GROUP = {"environment": "aws", "aws_region": "eu-west-1", "clicks_stream_arn": ARN_IN,
             "aggregates_stream_arn": ARN_OUT}


def aws(**kw) -> JobSettings:
    return JobSettings.from_properties({"clickagg": {**AWS_GROUP, **kw}})


def local(**kw) -> JobSettings:
    return JobSettings(input_dir="/tmp/in", **kw).validated()


# ------------------------------------------------------------------------------ settings
def test_defaults_are_the_documented_ones():
    s = local()
    assert (s.allowed_lateness_s, s.watermark_delay_s, s.repeat_window_s) == (900, 5, 10)
    assert (s.minibatch_latency_ms, s.minibatch_size, s.dedup_ttl_s, s.leaderboard_size) == (
        2000, 5000, 1800, 1000)


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
    ("repeat_window_s", "7", "clickagg.repeat_window_s: must divide 60"),
    ("repeat_window_s", "0", "clickagg.repeat_window_s: must be > 0"),
    ("allowed_lateness_s", "ten", "clickagg.allowed_lateness_s: expected an integer"),
    ("dedup_ttl_s", "600", "clickagg.dedup_ttl_s: must be >= the lateness horizon"),
    ("leaderboard_size", "0", "clickagg.leaderboard_size: must be > 0"),
    ("minibatch_size", "-1", "clickagg.minibatch_size: must be > 0"),
    ("watermark_delay_s", "-5", "clickagg.watermark_delay_s: must be >= 0"),
    ("parallelism", "0", "clickagg.parallelism: must be >= 1"),
    ("source_init_position", "EARLIEST", "clickagg.source_init_position: must be one of"),
    ("source_init_position", "AT_TIMESTAMP", "clickagg.source_init_timestamp: required"),
    ("clicks_stream_arn", "clickagg-clicks", "clickagg.clicks_stream_arn: not a Kinesis stream ARN"),
    ("aggregates_stream_arn", ARN_OUT.replace("eu-west-1", "us-east-1"),
     "clickagg.aggregates_stream_arn: region 'us-east-1' differs"),
    ("aggregates_stream_arn", ARN_IN, "clickagg.aggregates_stream_arn: must differ"),
    ("leaderbord_size", "5", "clickagg.leaderbord_size: unknown property"),
    ("environment", "prod", "clickagg.environment: must be"),
])
def test_validation_errors_name_the_property(key, value, message):
    with pytest.raises(SettingsError) as e:
        aws(**{key: value})
    assert str(e.value).startswith(message), str(e.value)


def test_dedup_ttl_must_cover_the_lateness_horizon():
    assert local(allowed_lateness_s=1700, dedup_ttl_s=1800 + 100).dedup_ttl_s == 1900
    with pytest.raises(SettingsError, match="dedup_ttl_s"):
        local(allowed_lateness_s=1740, dedup_ttl_s=1800)  # 60 + 1740 + 5 > 1800


def test_aws_requires_region_and_streams_local_requires_input_dir():
    with pytest.raises(SettingsError, match="clickagg.aws_region: required"):
        JobSettings.from_properties({"clickagg": {"environment": "aws"}})
    with pytest.raises(SettingsError, match="clickagg.input_dir: required"):
        JobSettings.from_properties({})


# ----------------------------------------------------------------------------------- SQL
def _options(ddl: str) -> dict[str, str]:
    body = ddl.split("WITH (", 1)[1].rsplit(")", 1)[0]
    out = {}
    for line in body.strip().split(",\n"):
        k, v = line.strip().split(" = ")
        out[k.strip("'")] = v.strip("'")
    return out


def test_aws_source_ddl_is_the_kinesis_connector_with_watermark():
    ddl = sql.source_ddl(aws())
    assert _options(ddl) == {
        "connector": "kinesis", "stream.arn": ARN_IN, "aws.region": "eu-west-1",
        "source.init.position": "LATEST", "format": "json",
        "json.fail-on-missing-field": "false", "json.ignore-parse-errors": "true"}
    assert "`rowtime` AS TO_TIMESTAMP_LTZ(`event_time`, 3)" in ddl
    assert "WATERMARK FOR `rowtime` AS `rowtime` - INTERVAL '5' SECOND" in ddl
    assert "`proctime` AS PROCTIME()" in ddl
    for col in ("click_id", "event_time", "cost_micros", "ingest_time", "source_ip"):
        assert f"`{col}` " in ddl
    at = _options(sql.source_ddl(aws(source_init_position="AT_TIMESTAMP",
                                     source_init_timestamp="2024-03-10T00:00:00.000Z")))
    assert at["source.init.position"] == "AT_TIMESTAMP"
    assert at["source.init.timestamp"] == "2024-03-10T00:00:00.000Z"


def test_local_source_ddl_is_a_monitored_directory():
    opts = _options(sql.source_ddl(local(monitor_interval_ms=500)))
    assert opts["connector"] == "filesystem" and opts["path"] == "file:///tmp/in"
    assert opts["source.monitor-interval"] == "500 ms"
    assert opts["source.report-statistics"] == "NONE"  # planning must not open the files
    assert opts["format"] == "json"


def test_aws_sink_is_one_debezium_json_stream_partitioned_by_ad():
    ddl = sql.sink_ddl(aws())
    assert _options(ddl) == {"connector": "kinesis", "stream.arn": ARN_OUT,
                             "aws.region": "eu-west-1", "format": "debezium-json",
                             "sink.partitioner-field-delimiter": "|"}
    assert "PARTITIONED BY (`ad_id`)" in ddl
    cols = [line.strip().split(" ")[0].strip("`") for line in
            ddl.split("(", 1)[1].split(")\n", 1)[0].strip().split(",\n")]
    assert tuple(cols) == sql.OUTPUT_COLUMN_NAMES
    assert "PARTITIONED" not in sql.sink_ddl(local(), connector="blackhole")


def test_one_dml_over_logical_tables_with_the_documented_output_columns():
    views = sql.pipeline_views(local(leaderboard_size=7))
    assert views[-1].startswith(f"CREATE TEMPORARY VIEW {sql.OUTPUT_VIEW} AS")
    text = "\n".join(views)
    assert f"FROM `{sql.CLASSIFIED_TABLE}`" in text and "rn <= 7" in text
    assert text.count("GROUP BY") == 5  # 4 resolutions + late counts
    for res, size in sql.RESOLUTIONS.items():
        assert f"CREATE TEMPORARY VIEW agg_{res} AS" in text and f"MOD(event_time, {size})" in text
    assert "PARTITION BY user_id, ad_id, (event_time - MOD(event_time, 10000))" in text
    assert "ORDER BY clicks DESC, ad_id ASC" in text
    assert sql.insert_dml().startswith("INSERT INTO `clickagg_out` (`kind`, `resolution`")
    classify = sql.classify_query(local(allowed_lateness_s=600))
    assert "PARTITION BY click_id ORDER BY `proctime` ASC" in classify
    assert "wm_ms < minute_start + 660000" in classify  # minute end + lateness
    assert "CURRENT_WATERMARK(`rowtime`)" in classify


def test_stage_options_minibatch_only_in_stage_two_and_local_checkpoints():
    s = local(checkpoint_dir="file:///tmp/ck", parallelism=3)
    st1, st2 = sql.stage1_options(s), sql.stage2_options(s)
    assert st1["table.exec.mini-batch.enabled"] == "false"
    assert st2["table.exec.mini-batch.enabled"] == "true"
    assert st2["table.exec.mini-batch.allow-latency"] == "2000 ms"
    assert st2["table.exec.mini-batch.size"] == "5000"
    assert st2["table.optimizer.agg-phase-strategy"] == "TWO_PHASE"
    assert st1["table.exec.state.ttl"] == st2["table.exec.state.ttl"] == "1800 s"
    assert st1["table.local-time-zone"] == "UTC"
    ex = sql.execution_options(s, local=True)
    assert ex["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert ex["execution.checkpointing.storage"] == "filesystem"
    assert ex["execution.checkpointing.dir"] == "file:///tmp/ck"
    assert ex["parallelism.default"] == "3"
    assert "execution.checkpointing.interval" not in sql.execution_options(s, local=False)


# ------------------------------------------------------------------------ output encoding
def test_debezium_shape_and_partition_key():
    vals = ["agg", "1m", 0, "ad-1"] + [None] * 7 + [3, None, None]
    ins, ub = output.debezium_record("+U", vals), output.debezium_record("-U", vals)
    assert ins == {"before": None, "after": dict(zip(sql.OUTPUT_COLUMN_NAMES, vals)), "op": "c"}
    assert ub["op"] == "d" and ub["after"] is None and ub["before"]["version"] == 3
    assert output.debezium_record("+I", vals) == ins
    assert output.debezium_record("-D", vals) == ub
    assert output.partition_key(ub) == "ad-1"
    assert output.encode(ins).startswith(b'{"before":null,"after":{"kind":"agg"')


class FakeKinesis:
    def __init__(self, fail_pattern):
        self.calls, self.fail_pattern, self.stored = [], fail_pattern, []

    def put_records(self, StreamName, Records):
        self.calls.append(len(Records))
        fails = self.fail_pattern.pop(0) if self.fail_pattern else set()
        res = []
        for i, r in enumerate(Records):
            if i in fails:
                res.append({"ErrorCode": "ProvisionedThroughputExceededException"})
            else:
                self.stored.append(json.loads(r["Data"])["after"]["version"])
                res.append({"SequenceNumber": "1", "ShardId": "s"})
        return {"FailedRecordCount": len(fails), "Records": res}


def test_kinesis_writer_batches_500_and_resends_only_failed_entries():
    fake = FakeKinesis([{0, 7}, set(), {3}])
    w = output.KinesisWriter("agg", client=fake, sleep=lambda s: None)
    for v in range(1, 1201):
        w.add(output.debezium_record("+I", ["agg", "1m", 0, "ad"] + [None] * 7 + [v, None, None]))
    w.close()
    assert sorted(fake.stored) == list(range(1, 1201))  # nothing lost, nothing doubled
    assert fake.calls[:2] == [500, 2] and max(fake.calls) <= 500
    assert w.written == 1200 and w.retried == 3


def test_kinesis_writer_gives_up_after_max_attempts():
    fake = FakeKinesis([{0}] * 10)
    w = output.KinesisWriter("agg", client=fake, max_attempts=3, sleep=lambda s: None)
    w.add(output.debezium_record("+I", ["agg", "1m", 0, "ad"] + [None] * 7 + [1, None, None]))
    with pytest.raises(RuntimeError, match="still failing after 3"):
        w.flush()


# ------------------------------------------------------------------------- feed protocol
CLICK = {"click_id": "c1", "ad_id": "a", "event_time": 1, "cost_micros": 5}


def test_write_batch_publishes_atomically_in_sequence_and_waits_for_the_reader(tmp_path):
    first = feed.write_batch(tmp_path, [CLICK])
    assert first.name == "clicks-000000000001.jsonl"
    assert os.stat(first).st_atime_ns == 0 and not feed.is_consumed(first)
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temp file left behind
    done = []
    t = threading.Thread(target=lambda: done.append(feed.write_batch(tmp_path, [CLICK])))
    t.start()
    time.sleep(0.3)
    assert not done  # blocked: file 1 not opened by a reader yet
    first.read_bytes()  # what a Flink reader does (relatime updates an atime of 0)
    t.join(5)
    assert done and done[0].name == "clicks-000000000002.jsonl"
    rec = json.loads(first.read_text())
    assert rec["click_id"] == "c1" and rec["user_id"] is None  # full schema, nulls explicit
    assert feed.write_batch(tmp_path, []) is None


def test_write_batch_raises_feed_stalled_and_publishes_nothing(tmp_path):
    feed.write_batch(tmp_path, [CLICK])
    with pytest.raises(feed.FeedStalled):
        feed.write_batch(tmp_path, [CLICK], ack_timeout_s=0.2)
    assert len(feed.published_files(tmp_path)) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_write_batch_without_atime_spaces_publications(tmp_path):
    feed.write_batch(tmp_path, [CLICK], ack="none")
    t0 = time.monotonic()
    feed.write_batch(tmp_path, [CLICK], ack="none", min_interval_s=0.5)
    assert time.monotonic() - t0 >= 0.3


def test_main_entry_point_imports_without_side_effects():
    import importlib

    main = importlib.import_module("aggregate.job.main")
    assert callable(main.main)
