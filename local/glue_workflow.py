"""Glue's part of the billing workflow, emulated: moto stores StartWorkflowRun but runs nothing.

The AWS code path is unchanged: `POST /v1/reconcile` calls glue:StartWorkflowRun with run
property `day`; the jobs read that property through glue:GetWorkflowRunProperties. This worker
plays the Glue service: it polls the workflow's runs, and for each new one runs what the two
triggers would start, one run at a time (the workflow's MaxConcurrentRuns is 1):
  billing job  glue_jobs/billing_job.py on local Spark (.venv-glue), raw archive synced from S3
               to a local directory first (Spark here cannot read s3a://); budgets read from the
               local budgets table (`--budgets_table`, as infra passes it: docs/budget.md)
  reconcile    glue_jobs/reconcile.py, only when the billing job succeeded (the CONDITIONAL
               trigger), publishing the summary to the serving table
Each job gets `--WORKFLOW_NAME` and `--WORKFLOW_RUN_ID` like Glue adds them, so the jobs read the
run's properties themselves, as on Glue: `day`, and `apply_corrections=true` (POST
/v1/reconcile?...&apply_corrections=true: the reconciliation corrects a flagged day,
docs/corrections.md). The outcome is
recorded as run properties (`local_status`: SUCCEEDED | FAILED, job exit codes) since moto
keeps a run RUNNING forever; job output goes to <state>/glue-<run id>.log.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3

from common.archive import EVENTS, RAW_PREFIX
from common.config import ResourceNames
from local.worker import BackgroundWorker

REPO = Path(__file__).resolve().parent.parent
GLUE_PYTHON = REPO / ".venv-glue" / "bin" / "python"
STATUS_PROPERTY = "local_status"


@dataclass
class WorkflowRunResult:
    run_id: str
    day: str | None
    status: str
    billing_rc: int
    reconcile_rc: int | None
    seconds: float
    summary: dict | None = None


class LocalGlueWorkflow(BackgroundWorker):
    def __init__(self, workflow: str, archive_bucket: str, serving_table: str, state_dir: Path,
                 poll_interval_s: float = 1.0, reconcile: bool = True, timeout_s: float = 1800,
                 budgets_table: str = ResourceNames().budgets_table):
        super().__init__(f"glue-{workflow}")
        self.workflow, self.archive_bucket, self.serving_table = workflow, archive_bucket, serving_table
        self.budgets_table = budgets_table  # the local stack's (local/resources.py creates it)
        self.state_dir, self.poll_interval_s, self.reconcile = state_dir, poll_interval_s, reconcile
        self.timeout_s = timeout_s
        self.archive_dir = state_dir / "archive"
        self.out_path, self.report_path = state_dir / "billing", state_dir / "reconciliation"
        self.results: list[WorkflowRunResult] = []
        self._glue = boto3.client("glue")
        self._proc: subprocess.Popen | None = None

    def _pending(self) -> list[dict]:
        runs = [r for page in self._glue.get_paginator("get_workflow_runs").paginate(Name=self.workflow)
                for r in page.get("Runs", [])]
        todo = [r for r in runs if r.get("Status") == "RUNNING"
                and STATUS_PROPERTY not in (r.get("WorkflowRunProperties") or {})]
        return sorted(todo, key=lambda r: str(r.get("StartedOn", "")))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for run in self._pending():
                    if self._stop.is_set():
                        return
                    self.execute(run["WorkflowRunId"],
                                 (run.get("WorkflowRunProperties") or {}).get("day"))
                    if self._stop.is_set():
                        return
            except Exception as exc:  # emulator gone at shutdown, or a transient error: poll again
                print(f"local glue workflow: {exc!r}", file=sys.stderr)
            self._stop.wait(self.poll_interval_s)

    def _job(self, script: str, args: list[str], run_id: str, log) -> int:
        cmd = [str(GLUE_PYTHON), str(REPO / "glue_jobs" / script), *args,
               "--WORKFLOW_NAME", self.workflow, "--WORKFLOW_RUN_ID", run_id]
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            return self._proc.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            log.write(f"timed out after {self.timeout_s:.0f}s\n")
            return -1
        finally:
            self._proc = None

    def stop(self) -> None:
        """A job in progress is killed (as a stopped workflow run would be)."""
        self._stop.set()
        proc = self._proc
        if proc is not None:
            proc.kill()
        super().stop()

    def execute(self, run_id: str, day: str | None) -> WorkflowRunResult:
        """Run the workflow's jobs for one run (synchronously) and record the outcome."""
        from tools.analytics import sync_archive

        t0 = time.monotonic()
        sync_archive(self.archive_bucket, self.archive_dir)
        reconcile_rc, summary = None, None
        with open(self.state_dir / f"glue-{run_id}.log", "w") as log:
            billing_rc = self._job("billing_job.py", [
                "--day", "auto", "--raw-path", str(self.archive_dir / RAW_PREFIX),
                "--events-path", str(self.archive_dir / EVENTS.prefix),  # as infra passes it
                "--budgets-table", self.budgets_table,  # as infra passes it
                "--out-path", str(self.out_path)], run_id, log)
            if billing_rc == 0 and self.reconcile:
                reconcile_rc = self._job("reconcile.py", [
                    "--day", "auto", "--out-path", str(self.out_path),
                    "--report-path", str(self.report_path), "--table", self.serving_table,
                    "--publish", "true"], run_id, log)
        if self._stop.is_set():  # killed by stop(): leave the run for the next start to redo
            return WorkflowRunResult(run_id, day, "STOPPED", billing_rc, reconcile_rc, time.monotonic() - t0)
        ok = billing_rc == 0 and reconcile_rc in (None, 0)
        if ok and reconcile_rc == 0:
            summary = _last_json_line(self.state_dir / f"glue-{run_id}.log")
        result = WorkflowRunResult(run_id, day, "SUCCEEDED" if ok else "FAILED", billing_rc,
                                   reconcile_rc, time.monotonic() - t0, summary)
        self._glue.put_workflow_run_properties(
            Name=self.workflow, RunId=run_id,
            RunProperties={STATUS_PROPERTY: result.status, "local_billing_rc": str(billing_rc),
                           "local_reconcile_rc": str(reconcile_rc)})
        self.results.append(result)
        print(f"local glue workflow {self.workflow}: run {run_id} day={day or 'auto'} {result.status} "
              f"in {result.seconds:.0f}s (log {self.state_dir / f'glue-{run_id}.log'})",
              file=sys.stderr, flush=True)
        return result


def _last_json_line(path: Path) -> dict | None:
    for line in reversed(path.read_text().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None
