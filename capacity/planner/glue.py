"""The nightly Glue billing job: workers for a run within the target time."""
from __future__ import annotations

from typing import TYPE_CHECKING

from capacity.planner.assumptions import (
    DAYS_PER_MONTH, GLUE_CLICKS_PER_DPU_S, GLUE_DPU_PER_WORKER, GLUE_MIN_BILLED_HOURS,
    GLUE_MIN_WORKERS, GLUE_READ_FACTOR, GLUE_TARGET_HOURS, GLUE_WORKER_TYPE,
)
from capacity.planner.helpers import ceil_div
from capacity.planner.model import Component
from capacity.pricing import PriceBook

if TYPE_CHECKING:
    from capacity.planner.inputs import Inputs


def component(x: Inputs, pb: PriceBook) -> Component:
    c = Component("glue", "Glue 5.0 nightly billing job")
    clicks_per_run = x.rate * 86400 * GLUE_READ_FACTOR
    dpu_hours = clicks_per_run / GLUE_CLICKS_PER_DPU_S / 3600
    workers = max(GLUE_MIN_WORKERS, ceil_div(dpu_hours / GLUE_TARGET_HOURS, GLUE_DPU_PER_WORKER))
    run_hours = dpu_hours / (workers * GLUE_DPU_PER_WORKER)
    billed = max(dpu_hours, workers * GLUE_DPU_PER_WORKER * GLUE_MIN_BILLED_HOURS)
    c.mode = f"{workers} x {GLUE_WORKER_TYPE}"
    c.add("clicks read per run", clicks_per_run)
    c.add("DPU-hours per run", dpu_hours)
    c.add("workers", workers)
    c.add("run time", run_hours * 60, "min")
    c.cost(pb, f"DPU-hours ({DAYS_PER_MONTH:.1f} runs)", "glue_dpu_hour", billed * DAYS_PER_MONTH)
    c.context.update(billing_glue_worker_type=GLUE_WORKER_TYPE, billing_glue_workers=workers)
    c.notes.append(f"Throughput {GLUE_CLICKS_PER_DPU_S:,} clicks/s per DPU extrapolated from a "
                   f"local Spark run; measure one day on Glue and adjust.")
    c.notes.append("Clicks only: the nightly billing reads no impressions or conversions yet "
                   "(issue 19); add the events archive's volume when it does.")
    return c
