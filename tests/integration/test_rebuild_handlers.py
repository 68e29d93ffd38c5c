"""The rebuild state machine's Lambdas (serving.rebuild.handlers) against moto (in-process
`mock_aws`: S3 + DynamoDB) with exact values.

Oracle for the parallel load: the single-process loader (RebuildLoader.load, what
local/rebuild.py runs) over the same rows on a second table that starts identical. Loading the
job's output file by file (load_file, in any order, a file twice) + commit must leave the
serving table exactly as that.

Not emulated: moto 5.2.5 implements kinesisanalyticsv2 CreateApplication, DescribeApplication,
ListApplications and tags only (no UpdateApplication, StartApplication, StopApplication; an
application it creates stays STARTING). `prepare`'s Managed Flink calls therefore run against
botocore's Stubber, which checks each request against the service model and the exact
parameters asserted here; what the service then does with them is not tested.
"""
from __future__ import annotations

import json
import random

import boto3
import pytest
from botocore.stub import Stubber

from common.runtime import reset_containers
from local.lambda_runtime import LambdaContext
from local.resources import create_serving_table
from serving.keys import late_key, top_key
from serving.rebuild import handlers
from serving.rebuild.loader import RebuildLoader
from serving.write.dynamodb import DynamoDBServingStore

DAY, HOUR, MIN = 86_400_000, 3_600_000, 60_000
D = 1_796_428_800_000  # 2026-12-05T00:00Z
LO, HI = D + 2 * HOUR, D + 4 * HOUR  # the rebuilt range: two hours
BUCKET, ARCHIVE, APP = "rb-bucket", "arch-bucket", "clickagg-rebuild"
PARALLEL, ORACLE = "serving-parallel", "serving-oracle"
CTX = LambdaContext("clickagg-rebuild-test")
CLICKAGG = {"aws_region": "us-east-1", "environment": "aws",
            "clicks_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/c",
            "aggregates_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/a",
            "allowed_lateness_s": "900", "watermark_delay_s": "5", "dedup_ttl_s": "1800"}


def job_rows(seed: int = 3) -> list[dict]:
    """Final rows as the job writes them (aggregate.job.sql OUTPUT_COLUMNS, one JSON object per
    line): per-ad aggregates at every resolution inside [LO, HI), rollups, leaderboards (1m, 1h),
    late counters, campaign spend."""
    rng = random.Random(seed)
    ads = [f"ad-{i}" for i in range(12)]
    rows = []

    def base(kind, res, bucket, entity, **cols):
        c = rng.randint(1, 50)
        return {"kind": kind, "resolution": res, "bucket_start": bucket, "entity_id": entity,
                "ad_id": None, "campaign_id": None, "advertiser_id": "adv-1", "clicks": c,
                "billable_clicks": c - 1, "cost_micros": c * 1000,
                "billable_cost_micros": (c - 1) * 1000, "suspect_clicks": 0, "invalid_clicks": 1,
                "impressions": c * 20, "conversions": c // 10, "conversion_value_micros": 0,
                "late_dropped": None, "version": rng.randint(1, 90), "max_event_time": bucket + 1,
                "watermark": bucket + 2, **cols}

    for res, size in (("1m", MIN), ("5m", 5 * MIN), ("1h", HOUR)):
        for bucket in range(LO, HI, size):
            for ad in rng.sample(ads, 5 if res == "1m" else 9):
                camp = f"camp-{int(ad.split('-')[1]) % 3}"
                row = base("agg", res, bucket, ad, ad_id=ad, campaign_id=camp)
                rows.append(row)
                if res != "5m":
                    rows.append({**row, "kind": "top", "version": row["version"] + 1})
            rows.append(base("campaign", res, bucket, "camp-1", campaign_id="camp-1"))
            rows.append(base("advertiser", res, bucket, "adv-1"))
    for bucket in range(LO, HI, 7 * MIN):
        rows.append(base("late", "1m", bucket, "ad-1", ad_id="ad-1", clicks=None, billable_clicks=None,
                         late_dropped=3))
        rows.append(base("spend", "1m", bucket, "camp-2", campaign_id="camp-2"))
    rng.shuffle(rows)
    return rows


def as_files(rows: list[dict], n: int) -> dict[str, bytes]:
    """The rows split over `n` part files, as the filesystem sink writes them."""
    return {f"rebuild/gen=1/rows/part-0f3a-{i}-0": "".join(json.dumps(r) + "\n" for r in rows[i::n]).encode()
            for i in range(n)}


def corrupt(ddb, table: str) -> None:
    """The same damage on both tables: a ghost on top of a board, a stale late counter."""
    ghost = top_key("1m", LO, "ad-ghost")
    ddb.put_item(TableName=table, Item={"pk": {"S": ghost["pk"]}, "sk": {"S": ghost["sk"]},
                                        "v": {"N": "5"}, "c": {"N": "100000"}, "rk": {"S": "x"}})
    stale = late_key(LO + MIN, "ad-ghost")
    ddb.put_item(TableName=table, Item={"pk": {"S": stale["pk"]}, "sk": {"S": stale["sk"]},
                                        "v": {"N": "3"}, "ld": {"N": "77"}})


def scan(ddb, table: str) -> dict:
    """Every item but META#rebuild (generation counter, run and load records), by key."""
    items = [i for p in ddb.get_paginator("scan").paginate(TableName=table) for i in p["Items"]]
    return {(i["pk"]["S"], i["sk"]["S"]): i for i in items if i["pk"]["S"] != "META#rebuild"}


def run_record(ddb, table: str, generation: int) -> dict:
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "META#rebuild"},
                                              "sk": {"S": f"run#{generation:08d}"}})["Item"]
    return {k: int(item[k]["N"]) for k in ("start", "end", "rows", "written")}


@pytest.fixture
def env(aws, monkeypatch):
    monkeypatch.setenv("SERVING_TABLE", PARALLEL)
    monkeypatch.setenv("REBUILD_APPLICATION", APP)
    monkeypatch.setenv("REBUILD_BUCKET", BUCKET)
    monkeypatch.setenv("ARCHIVE_BUCKET", ARCHIVE)
    monkeypatch.setenv("BILLING_CUTOFF_HOURS", "2")
    reset_containers()  # the handlers' clients: built again inside this test's moto
    ddb = boto3.client("dynamodb")
    for table in (PARALLEL, ORACLE):
        create_serving_table(ddb, table)
        corrupt(ddb, table)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    yield ddb, s3
    reset_containers()


def file_event(key: str, generation: int = 1) -> dict:
    return {"bucket": BUCKET, "key": key, "generation": generation, "start_ms": LO, "end_ms": HI}


def test_loading_file_by_file_then_commit_equals_the_single_process_load(env):
    ddb, s3 = env
    rows = job_rows()
    files = as_files(rows, 4)
    for key, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    # the oracle: the whole load in one process, on its own table
    oracle = RebuildLoader(ddb, ORACLE, DynamoDBServingStore(ddb, ORACLE)).load(iter(rows), LO, HI)
    assert oracle["generation"] == 1 and oracle["rows"] == len(rows) == oracle["written"]

    generation = RebuildLoader(ddb, PARALLEL, None).next_generation()
    assert generation == 1
    counts = [handlers.load_file(file_event(k), CTX) for k in reversed(sorted(files))]
    assert sum(c["rows"] for c in counts) == len(rows)
    assert [c["rows"] for c in counts] == [len(rows[i::4]) for i in (3, 2, 1, 0)]
    stats = handlers.commit({"generation": 1, "start_ms": LO, "end_ms": HI}, CTX)

    assert scan(ddb, PARALLEL) == scan(ddb, ORACLE)
    assert {k: stats[k] for k in ("generation", "rows", "written", "unchanged", "markers", "late_swept")} \
        == {k: oracle[k] for k in ("generation", "rows", "written", "unchanged", "markers", "late_swept")}
    assert stats["markers"] == 120 + 2 and stats["late_swept"] == 1 and stats["files"] == 4
    assert run_record(ddb, PARALLEL, 1) == run_record(ddb, ORACLE, 1) == {
        "start": LO, "end": HI, "rows": len(rows), "written": len(rows)}


def test_loading_a_file_twice_changes_nothing(env):
    ddb, s3 = env
    rows = job_rows(seed=5)
    files = as_files(rows, 2)
    for key, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    RebuildLoader(ddb, PARALLEL, None).next_generation()
    first_key = sorted(files)[0]
    first = handlers.load_file(file_event(first_key), CTX)
    before = scan(ddb, PARALLEL)
    again = handlers.load_file(file_event(first_key), CTX)  # a retried map item
    assert (again["rows"], again["written"], again["unchanged"]) == (first["rows"], 0, first["rows"])
    assert scan(ddb, PARALLEL) == before
    handlers.load_file(file_event(sorted(files)[1]), CTX)
    stats = handlers.commit({"generation": 1, "start_ms": LO, "end_ms": HI}, CTX)
    # the per-file records keep the exact totals across the retry
    assert (stats["rows"], stats["written"], stats["unchanged"], stats["files"]) == (len(rows), len(rows), 0, 2)
    after_commit = scan(ddb, PARALLEL)
    again = handlers.commit({"generation": 1, "start_ms": LO, "end_ms": HI}, CTX)  # a retried commit
    assert (again["markers"], again["late_swept"]) == (0, 0) and scan(ddb, PARALLEL) == after_commit


def test_marker_and_hidden_files_are_skipped_and_bad_lines_named(env):
    ddb, s3 = env
    for key in ("rebuild/gen=1/_SUCCESS", "rebuild/gen=1/rows/.part-1.inprogress.0", "rebuild/gen=1/rows/"):
        assert handlers.load_file(file_event(key), CTX) == {"key": key, "skipped": True}
    s3.put_object(Bucket=BUCKET, Key="rebuild/gen=1/rows/part-x", Body=b'{"kind": "agg"}\nnot json\n')
    with pytest.raises(ValueError, match="^row 1: not a rebuildable row: no bucket_start, version, ad_id"):
        handlers.load_file(file_event("rebuild/gen=1/rows/part-x"), CTX)
    outside = json.dumps({**job_rows()[0], "bucket_start": HI}).encode()
    s3.put_object(Bucket=BUCKET, Key="rebuild/gen=1/rows/part-y", Body=outside)
    with pytest.raises(ValueError, match=r"^row 1: row outside the range"):
        handlers.load_file(file_event("rebuild/gen=1/rows/part-y"), CTX)
    s3.put_object(Bucket=BUCKET, Key="rebuild/gen=1/rows/part-z", Body=b'\n[1]\n')
    with pytest.raises(ValueError, match="^line 2: expected a JSON object, got list"):
        handlers.load_file(file_event("rebuild/gen=1/rows/part-z"), CTX)
    with pytest.raises(handlers.RebuildRefused, match="expected generation, start_ms, end_ms"):
        handlers.load_file({"bucket": BUCKET, "key": "k"}, CTX)


# --- prepare ----------------------------------------------------------------------------------
def describe(status: str, version: int = 7) -> dict:
    groups = [{"PropertyGroupId": "kinesis.analytics.flink.run.options",
               "PropertyMap": {"python": "aggregate/job/rebuild_main.py", "jarfile": "lib/clickagg-flink-deps.jar"}},
              {"PropertyGroupId": "clickagg", "PropertyMap": CLICKAGG},
              {"PropertyGroupId": "rebuild", "PropertyMap": {"generation": "0"}}]
    return {"ApplicationDetail": {
        "ApplicationARN": f"arn:aws:kinesisanalytics:us-east-1:123456789012:application/{APP}",
        "ApplicationName": APP, "RuntimeEnvironment": "FLINK-1_20", "ApplicationStatus": status,
        "ApplicationVersionId": version,
        "ApplicationConfigurationDescription": {"EnvironmentPropertyDescriptions": {
            "PropertyGroupDescriptions": groups}}}}


@pytest.fixture
def flink(env, monkeypatch):
    client = boto3.client("kinesisanalyticsv2")
    stub = Stubber(client)
    monkeypatch.setattr(handlers, "_flink", lambda: client)
    monkeypatch.setattr(handlers, "sleep", lambda s: None)
    with stub:
        yield stub
    stub.assert_no_pending_responses()


def generation_counter(ddb) -> dict | None:
    return ddb.get_item(TableName=PARALLEL, Key={"pk": {"S": "META#rebuild"}, "sk": {"S": "generation"}}).get("Item")


def test_prepare_sets_the_rebuild_group_keeps_the_others_and_starts_without_snapshot(env, flink, monkeypatch):
    ddb, _ = env
    monkeypatch.setattr(handlers, "clock", lambda: D + DAY + 3 * HOUR)
    run = {"start_ms": str(D), "end_ms": str(D + DAY), "archive_root": f"s3://{ARCHIVE}",
           "out": f"s3://{BUCKET}/rebuild/gen=1/", "generation": "1", "arrival_cutoff_s": "7200",
           "max_future_skew_s": "300"}
    flink.add_response("describe_application", describe("READY"), {"ApplicationName": APP})
    flink.add_response("update_application", {"ApplicationDetail": describe("UPDATING", 8)["ApplicationDetail"]}, {
        "ApplicationName": APP, "CurrentApplicationVersionId": 7,
        "ApplicationConfigurationUpdate": {"EnvironmentPropertyUpdates": {"PropertyGroups": [
            {"PropertyGroupId": "kinesis.analytics.flink.run.options",
             "PropertyMap": {"python": "aggregate/job/rebuild_main.py", "jarfile": "lib/clickagg-flink-deps.jar"}},
            {"PropertyGroupId": "clickagg", "PropertyMap": CLICKAGG},
            {"PropertyGroupId": "rebuild", "PropertyMap": run}]}}})
    flink.add_response("describe_application", describe("UPDATING", 8), {"ApplicationName": APP})
    flink.add_response("describe_application", describe("READY", 8), {"ApplicationName": APP})
    flink.add_response("start_application", {}, {
        "ApplicationName": APP,
        "RunConfiguration": {"ApplicationRestoreConfiguration": {
            "ApplicationRestoreType": "SKIP_RESTORE_FROM_SNAPSHOT"}}})
    out = handlers.prepare({"start": "2026-12-05", "end": "2026-12-06"}, CTX)
    assert out == {"generation": 1, "start_ms": D, "end_ms": D + DAY, "out_bucket": BUCKET,
                   "out_prefix": "rebuild/gen=1/",
                   "phase1_prefix": "rebuild/gen=1/rows/phase=1/",
                   "phase2_prefix": "rebuild/gen=1/rows/phase=2/",
                   "success_key": "rebuild/gen=1/_SUCCESS"}
    assert generation_counter(ddb)["g"] == {"N": "1"}


def test_prepare_refuses_a_range_that_is_not_final_with_the_reason(env, flink, monkeypatch):
    ddb, _ = env
    # 1 h after the day's end: late clicks may still arrive until end + 2 h (the cutoff)
    monkeypatch.setattr(handlers, "clock", lambda: D + DAY + HOUR)
    flink.add_response("describe_application", describe("READY"), {"ApplicationName": APP})
    with pytest.raises(handlers.RebuildRefused) as err:
        handlers.prepare({"start": "2026-12-05", "end": str(D + DAY)}, CTX)
    assert str(err.value).startswith("the range is not final yet: its last buckets may still change "
                                     "until 2026-12-06T02:00:00Z")
    assert generation_counter(ddb) is None  # no generation taken, nothing updated or started


def test_prepare_refuses_while_a_rebuild_runs(env, flink, monkeypatch):
    monkeypatch.setattr(handlers, "clock", lambda: D + 3 * DAY)
    flink.add_response("describe_application", describe("RUNNING"), {"ApplicationName": APP})
    with pytest.raises(handlers.RebuildRefused, match=f"application {APP} is RUNNING, not READY"):
        handlers.prepare({"start": "2026-12-05", "end": "2026-12-06"}, CTX)


@pytest.mark.parametrize("event, message", [
    ({"start": "2026-12-05"}, 'expected {"start": ..., "end": ...}'),
    ("2026-12-05", 'expected {"start": ..., "end": ...}'),
    ({"start": "5 Dec", "end": "2026-12-06"}, "unreadable time"),
])
def test_prepare_refuses_unreadable_input_before_any_call(env, flink, event, message):
    with pytest.raises(handlers.RebuildRefused, match=message):
        handlers.prepare(event, CTX)


def test_the_group_update_of_an_application_without_the_job_group_is_refused():
    detail = describe("READY")["ApplicationDetail"]
    detail["ApplicationConfigurationDescription"]["EnvironmentPropertyDescriptions"][
        "PropertyGroupDescriptions"] = []
    from aggregate.job.rebuild import RebuildRun

    with pytest.raises(handlers.RebuildRefused, match="has no 'clickagg' property group"):
        handlers.rebuild_group_update(detail, RebuildRun(0, MIN, "s3://a", "s3://b/", 1))
