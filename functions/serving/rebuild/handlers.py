"""The rebuild state machine's Lambdas (infra/constructs/rebuild.py; docs/rebuild.md "On AWS").

    prepare    {"start": "2026-12-05", "end": "2026-12-06"} (or ISO minutes, or epoch ms):
               the range checked as the job checks it (refused, with the reason, until final),
               a new generation, the application's `rebuild` property group set to this run
               (the other groups kept), the application started without a snapshot
    load_file  one output file of the job -> RebuildLoader.apply_rows under the generation;
               its counts recorded per file (META#rebuild / load#<generation>#<key>)
    commit     the per-file counts summed, then RebuildLoader.commit: markers, late sweep,
               run record; called after each load phase (phase 1's markers make its
               leaderboards visible; after phase 2 each marker is refused as already there,
               the sweep finds nothing, and the run record gets the final counts)

Errors the state machine sees by name: RebuildRefused (a request it must not run: the range is
not final, the application is busy, the input is invalid), anything else is a failure to retry
or report.

Output file size (an assumption, not measured on AWS): the job's filesystem sink rolls a file
at 128 MB (aggregate.job.sql REBUILD_FILE_SIZE, Flink's default pinned), i.e. ~300k rows of up to
~450 bytes (a row with every column set). load_file streams it line by line (memory: one CHUNK
of rows) and writes through the sink's store with 16 threads; at an assumed >= 1,000 conditional
writes/s per Lambda a full file takes <= 300 s, within Lambda's 15 min. If the table throttles
hard enough to break that, the Lambda times out and the state machine retries the file (loading
a file again is idempotent: what was written counts as unchanged).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import boto3
from aws_lambda_powertools import Logger, Tracer
from botocore.config import Config

from aggregate.job.rebuild import (PHASES, REBUILD_GROUP, ROWS_DIR, SUCCESS_NAME, RebuildError,
                                   RebuildRun, parse_time, phase_dir, rebuild_range)
from aggregate.job.settings import PROPERTY_GROUP, JobSettings
from common import schema
from common.config import RebuildSettings, ReconcileSettings, ServingSettings
from common.runtime import per_container
from serving import generations
from serving.rebuild.loader import RebuildLoader, parse_lines
from serving.write.dynamodb import DynamoDBServingStore

logger = Logger(service="rebuild")
tracer = Tracer(service="rebuild")

READY = "READY"
RESTORE = {"ApplicationRestoreConfiguration": {"ApplicationRestoreType": "SKIP_RESTORE_FROM_SNAPSHOT"}}
LOAD_RECORD = "load#"  # META#rebuild / load#<generation:08d>#<key>: one file's counts
READY_WAIT_S = 60  # an update of a READY application passes through UPDATING first


class RebuildRefused(Exception):
    """A request the state machine must not run (message says why); not retried."""


def now_ms() -> int:
    return int(time.time() * 1000)


# the handlers' clock and pause: tests pin them (monkeypatch these attributes)
clock: Callable[[], int] = now_ms
sleep: Callable[[float], None] = time.sleep

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@per_container
def _flink():
    return boto3.client("kinesisanalyticsv2", config=_CONFIG)


@per_container
def _ddb():
    return boto3.client("dynamodb", config=_CONFIG)


@per_container
def _s3():
    return boto3.client("s3", config=_CONFIG)


# --- pure ------------------------------------------------------------------------------------------
def property_groups(detail: dict) -> dict[str, dict[str, str]]:
    """Group id -> map of a DescribeApplication ApplicationDetail."""
    described = (detail.get("ApplicationConfigurationDescription", {})
                 .get("EnvironmentPropertyDescriptions", {})
                 .get("PropertyGroupDescriptions", []))
    return {g["PropertyGroupId"]: dict(g.get("PropertyMap", {})) for g in described}


def rebuild_group_update(detail: dict, run: RebuildRun) -> dict:
    """UpdateApplication's arguments that replace the `rebuild` group with `run`'s and keep
    every other group as it is (the update replaces the whole list). Refused: an application
    without the job's `clickagg` group (not the rebuild application)."""
    groups = property_groups(detail)
    if PROPERTY_GROUP not in groups:
        raise RebuildRefused(f"application {detail['ApplicationName']} has no {PROPERTY_GROUP!r} "
                             "property group: not the rebuild application")
    groups[REBUILD_GROUP] = run.properties()
    return {
        "ApplicationName": detail["ApplicationName"],
        "CurrentApplicationVersionId": detail["ApplicationVersionId"],
        "ApplicationConfigurationUpdate": {"EnvironmentPropertyUpdates": {"PropertyGroups": [
            {"PropertyGroupId": g, "PropertyMap": m} for g, m in groups.items()]}},
    }


def parse_request(event: Any) -> tuple[int, int]:
    """(start_ms, end_ms) of {"start": ..., "end": ...} (rebuild.parse_time's forms)."""
    if not isinstance(event, dict) or not {"start", "end"} <= set(event):
        raise RebuildRefused('expected {"start": ..., "end": ...} (2026-12-05, 2026-12-05T10:30 '
                             f'or epoch ms, UTC), got {str(event)[:200]}')
    try:
        return parse_time(str(event["start"])), parse_time(str(event["end"]))
    except ValueError as exc:
        raise RebuildRefused(f"unreadable time: {exc}") from None


def out_prefix(generation: int) -> str:
    return f"rebuild/gen={generation}/"


def load_record_key(generation: int, key: str = "") -> dict:
    return {"pk": {"S": generations.GENERATION_KEY["pk"]},
            "sk": {"S": f"{LOAD_RECORD}{generation:08d}#{key}"}}


# --- the AWS edges -----------------------------------------------------------------------------
def _loader() -> RebuildLoader:
    table = ServingSettings.from_env().require("serving_table")
    return RebuildLoader(_ddb(), table, DynamoDBServingStore.from_env())


def _describe(application: str) -> dict:
    return _flink().describe_application(ApplicationName=application)["ApplicationDetail"]


def _wait_ready(application: str) -> dict:
    deadline = time.monotonic() + READY_WAIT_S
    while True:
        detail = _describe(application)
        if detail["ApplicationStatus"] == READY:
            return detail
        if time.monotonic() > deadline:
            raise RuntimeError(f"application {application} still {detail['ApplicationStatus']} "
                               f"{READY_WAIT_S} s after its update")
        sleep(2)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def prepare(event, context) -> dict:
    start, end = parse_request(event)
    settings = RebuildSettings.from_env()
    application = settings.require("rebuild_application")
    detail = _describe(application)
    if detail["ApplicationStatus"] != READY:
        raise RebuildRefused(f"application {application} is {detail['ApplicationStatus']}, not "
                             f"{READY}: a rebuild is running or stopping; start this one after it")
    # the job's own settings (lateness, dedup memory): what it will read the range with
    job = JobSettings.from_properties({PROPERTY_GROUP: property_groups(detail).get(PROPERTY_GROUP, {})})
    cutoff_s = ReconcileSettings.from_env().billing_cutoff_hours * 3600
    skew_s = schema.default("max_future_skew_s")
    try:
        r = rebuild_range(start, end, clock(), job, max_future_skew_s=skew_s, cutoff_s=cutoff_s)
    except RebuildError as exc:
        raise RebuildRefused(str(exc)) from None
    generation = _loader().next_generation()
    bucket = settings.require("rebuild_bucket")
    run = RebuildRun(r.start_ms, r.end_ms, f"s3://{settings.require('archive_bucket')}",
                     f"s3://{bucket}/{out_prefix(generation)}", generation, cutoff_s, skew_s)
    # CurrentApplicationVersionId: a concurrent prepare's update makes this one fail
    _flink().update_application(**rebuild_group_update(detail, run))
    _wait_ready(application)
    _flink().start_application(ApplicationName=application, RunConfiguration=RESTORE)
    logger.info("rebuild started", generation=generation, range=r.describe())
    prefix = out_prefix(generation)
    return {"generation": generation, "start_ms": r.start_ms, "end_ms": r.end_ms,
            "out_bucket": bucket, "out_prefix": prefix,
            **{f"phase{p}_prefix": prefix + ROWS_DIR + phase_dir(p) for p in PHASES},
            "success_key": prefix + SUCCESS_NAME}


def _run_of(event: dict) -> tuple[int, int, int]:
    try:
        return int(event["generation"]), int(event["start_ms"]), int(event["end_ms"])
    except (KeyError, TypeError, ValueError):
        raise RebuildRefused(f"expected generation, start_ms, end_ms; got {str(event)[:200]}") from None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def load_file(event, context) -> dict:
    """{"bucket", "key", "generation", "start_ms", "end_ms"} -> the file's counts."""
    generation, start_ms, end_ms = _run_of(event)
    bucket, key = event.get("bucket"), event.get("key")
    if not bucket or not key:
        raise RebuildRefused(f"expected bucket and key; got {str(event)[:200]}")
    name = key.rsplit("/", 1)[-1]
    if not name or name.startswith((".", "_")):  # a folder, in-progress or marker files: no rows
        return {"key": key, "skipped": True}
    body = _s3().get_object(Bucket=bucket, Key=key)["Body"]
    loader = _loader()
    stats = loader.apply_rows(parse_lines(body.iter_lines()), start_ms, end_ms, generation)
    # SET rows (the file's), ADD written (each write succeeds once per generation: exact sum)
    _ddb().update_item(
        TableName=ServingSettings.from_env().require("serving_table"),
        Key=load_record_key(generation, key), UpdateExpression="SET #r = :r ADD written :w",
        ExpressionAttributeNames={"#r": "rows"},
        ExpressionAttributeValues={":r": {"N": str(stats["rows"])}, ":w": {"N": str(stats["written"])}})
    logger.info("file loaded", key=key, **stats)
    return {"key": key, "rows": stats["rows"], "written": stats["written"],
            "unchanged": stats["unchanged"]}


def _file_totals(table: str, generation: int) -> dict:
    rows = written = files = 0
    prefix = load_record_key(generation)
    for page in _ddb().get_paginator("query").paginate(
            TableName=table, KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
            ExpressionAttributeValues={":pk": prefix["pk"], ":sk": prefix["sk"]}):
        for item in page["Items"]:
            files += 1
            rows += int(item["rows"]["N"])
            written += int(item.get("written", {"N": "0"})["N"])
    return {"generation": generation, "files": files, "rows": rows, "written": written,
            "unchanged": rows - written}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def commit(event, context) -> dict:
    """{"generation", "start_ms", "end_ms"} -> the run's stats, after markers + sweep + record."""
    generation, start_ms, end_ms = _run_of(event)
    table = ServingSettings.from_env().require("serving_table")
    stats = _loader().commit(start_ms, end_ms, generation, _file_totals(table, generation))
    logger.info("rebuild committed", **stats)
    return stats
