"""The rebuild's entry on Managed Flink without a JVM (aggregate.job.rebuild: RebuildRun,
run_managed, the `_SUCCESS` record): which property group, the values' rules, what runs and
what is written. The gateway file system itself: tests/flink/test_rebuild_entry.py."""
from __future__ import annotations

import json

import pytest

from aggregate.job import rebuild as rb

DAY, HOUR, MIN = 86_400_000, 3_600_000, 60_000
D = 1_796_428_800_000  # 2026-12-05T00:00Z
CLICKAGG = {"aws_region": "us-east-1", "environment": "aws",
            "clicks_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/c",
            "aggregates_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/a",
            "events_stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/e",
            "allowed_lateness_s": "900", "watermark_delay_s": "5", "dedup_ttl_s": "1800"}
RUN = {"start_ms": str(D), "end_ms": str(D + DAY), "archive_root": "s3://arch",
       "out": "s3://rb/rebuild/gen=7/", "generation": "7"}


def test_d_is_the_day_it_claims():
    assert rb.parse_time("2026-12-05") == D


def test_a_run_reads_its_group_with_the_defaults_of_the_read_window():
    run = rb.RebuildRun.from_properties({"clickagg": CLICKAGG, "rebuild": RUN})
    assert run == rb.RebuildRun(D, D + DAY, "s3://arch", "s3://rb/rebuild/gen=7/", 7, 7200, 300)
    assert (run.rows_uri, run.success_uri) == ("s3://rb/rebuild/gen=7/rows/", "s3://rb/rebuild/gen=7/_SUCCESS")
    # the map prepare writes is what the job reads back
    assert rb.RebuildRun.from_properties({"rebuild": run.properties()}) == run
    assert run.properties()["arrival_cutoff_s"] == "7200"


@pytest.mark.parametrize("groups, message", [
    ({"clickagg": CLICKAGG}, "no property group 'rebuild'"),
    ({"rebuild": {"generation": "0"}}, "rebuild.generation: 0, no rebuild requested"),
    ({"rebuild": {**RUN, "genration": "7"}}, "unknown properties ['genration']"),
    ({"rebuild": {k: v for k, v in RUN.items() if k != "out"}}, "rebuild.out: required"),
    ({"rebuild": {**RUN, "start_ms": "2026-12-05"}}, "rebuild.start_ms: expected an integer, got '2026-12-05'"),
    ({"rebuild": {**RUN, "end_ms": RUN["start_ms"]}}, "rebuild.end_ms: must be after start_ms"),
    ({"rebuild": {**RUN, "generation": "-2"}}, "rebuild.generation: must be >= 1, got -2"),
    ({"rebuild": {**RUN, "archive_root": "arch"}}, "rebuild.archive_root: expected an s3:// or file:// URI"),
    ({"rebuild": {**RUN, "out": "s3://rb/rebuild/gen=7"}}, "rebuild.out: the run's directory ends with '/'"),
    ({"rebuild": {**RUN, "arrival_cutoff_s": "-1"}}, "rebuild.arrival_cutoff_s: must be >= 0, got -1"),
])
def test_an_unusable_group_is_refused_with_the_property_and_the_reason(groups, message):
    with pytest.raises(rb.RunPropertyError) as err:
        rb.RebuildRun.from_properties(groups)
    assert message in str(err.value)


def test_success_record_names_its_run():
    run = rb.RebuildRun.from_properties({"rebuild": RUN})
    text = rb.success_record(run, 12.5)
    assert json.loads(text) == {"generation": 7, "start_ms": D, "end_ms": D + DAY, "seconds": 12.5}


class FakeFs:
    def __init__(self, existing=()):
        self.files = {uri: "" for uri in existing}

    def exists(self, uri):
        return uri in self.files

    def write_text(self, uri, text):
        self.files[uri] = text


class FakeJob:
    def __init__(self):
        self.calls = []

    def __call__(self, s, r, archive_root, out_path, **kwargs):
        self.calls.append((s, r, archive_root, out_path, kwargs))
        return {"seconds": 42.0, "out_path": out_path}


def test_a_run_executes_the_job_over_the_checked_range_then_writes_success():
    fs, job, lines = FakeFs(), FakeJob(), []
    now = D + DAY + 3 * HOUR
    assert rb.run_managed({"clickagg": CLICKAGG, "rebuild": RUN}, now, fs, job, log=lines.append) == 0
    (s, r, root, out, kwargs), = job.calls
    # the range as prepare checks it: lookback = dedup_ttl_s + skew, read to end + the cutoff
    assert (r.start_ms, r.end_ms, r.read_from_ms, r.read_to_ms) == (
        D, D + DAY, D - (1800 + 300) * 1000, D + DAY + 7200 * 1000)
    assert s.allowed_lateness_s == 900 and s.dedup_ttl_s == 1800
    assert (root, out, kwargs) == ("s3://arch", "s3://rb/rebuild/gen=7/rows/", {"jar_uri": None, "events": True})
    assert json.loads(fs.files["s3://rb/rebuild/gen=7/_SUCCESS"]) == {
        "generation": 7, "start_ms": D, "end_ms": D + DAY, "seconds": 42.0}


def test_a_finished_run_started_again_exits_without_running():
    fs, job, lines = FakeFs({"s3://rb/rebuild/gen=7/_SUCCESS"}), FakeJob(), []
    assert rb.run_managed({"clickagg": CLICKAGG, "rebuild": RUN}, D + 2 * DAY, fs, job, log=lines.append) == 0
    assert job.calls == [] and fs.files == {"s3://rb/rebuild/gen=7/_SUCCESS": ""}
    assert "exists, nothing to do" in lines[0]


def test_a_range_not_final_yet_is_refused_before_the_job_runs():
    fs, job = FakeFs(), FakeJob()
    with pytest.raises(rb.RebuildError, match="not final yet"):
        rb.run_managed({"clickagg": CLICKAGG, "rebuild": RUN}, D + DAY + HOUR, fs, job, log=lambda _: None)
    assert job.calls == [] and fs.files == {}


def test_a_clicks_only_deployment_runs_without_the_events_archive():
    fs, job = FakeFs(), FakeJob()
    clicks_only = {k: v for k, v in CLICKAGG.items() if k != "events_stream_arn"}
    rb.run_managed({"clickagg": clicks_only, "rebuild": RUN}, D + 2 * DAY, fs, job, log=lambda _: None)
    assert job.calls[0][4]["events"] is False
