"""Which day a job run is for: the day its workflow run was started for, else `--day`.

`POST /v1/reconcile?day=D` starts the billing workflow with run property `day=D` (and
`apply_corrections=true` when asked: the reconciliation then corrects a flagged day). A Glue trigger
passes fixed job arguments (`--day auto`), so a job run inside a workflow run reads the day from
the run's properties: Glue adds `--WORKFLOW_NAME` and `--WORKFLOW_RUN_ID` to the arguments of
every job it starts in a workflow. The nightly scheduled run sets no property: `--day` applies.
Self-contained (stdlib + boto3): the reconciliation job ships as a single script.
"""
from __future__ import annotations

from typing import Optional, Sequence

DAY_PROPERTY = "day"
# POST /v1/reconcile?...&apply_corrections=true: the reconciliation corrects a flagged day
# (glue_jobs/corrections.py); absent or "false": it does not
CORRECTIONS_PROPERTY = "apply_corrections"
WORKFLOW_ARGS = ("WORKFLOW_NAME", "WORKFLOW_RUN_ID")


def workflow_run(argv: Sequence[str]) -> Optional[tuple[str, str]]:
    """(workflow name, run id) from `--WORKFLOW_NAME x --WORKFLOW_RUN_ID y` (or `--k=v`)."""
    found: dict[str, str] = {}
    args = list(argv)
    for i, arg in enumerate(args):
        for name in WORKFLOW_ARGS:
            flag = f"--{name}"
            if arg == flag and i + 1 < len(args):
                found[name] = args[i + 1]
            elif arg.startswith(flag + "="):
                found[name] = arg[len(flag) + 1:]
    if all(found.get(n) for n in WORKFLOW_ARGS):
        return found["WORKFLOW_NAME"], found["WORKFLOW_RUN_ID"]
    return None


def run_properties(argv: Sequence[str], glue_client=None) -> dict:
    """The run properties of this job's workflow run ({} when not in a workflow): one request."""
    run = workflow_run(argv)
    if run is None:
        return {}
    if glue_client is None:
        import boto3

        glue_client = boto3.client("glue")
    return glue_client.get_workflow_run_properties(Name=run[0], RunId=run[1]).get("RunProperties") or {}


def requested_day(argv: Sequence[str], glue_client=None) -> Optional[str]:
    """The `day` run property of this job's workflow run, or None (not in a workflow, or the
    run was started without one, e.g. by the nightly schedule)."""
    return run_properties(argv, glue_client).get(DAY_PROPERTY) or None
