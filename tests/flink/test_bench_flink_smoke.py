"""bench/flink.py cannot rot: its --smoke run (20k rows, the production SQL over bounded files)
completes and prints every mode's figures (the events mode included) and the ratios."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import harness


def test_bench_flink_smoke_prints_both_modes_and_the_ratio(tmp_path):
    out = subprocess.run(
        [sys.executable, str(harness.REPO / "bench" / "flink.py"), "--smoke", "--data-dir", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(harness.FUNCTIONS)}, capture_output=True, text=True,
        timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    modes = {line.split()[0]: json.loads(line.split(None, 1)[1]) for line in lines[:4]}
    assert set(modes) == {"passthrough", "pipeline", "pipeline_no_ivt", "pipeline_events"}
    for figures in modes.values():
        assert figures["cpu_s"] >= figures["empty_cpu_s"] >= 0
    assert {m: f["rows"] for m, f in modes.items() if m != "pipeline_events"} == dict.fromkeys(
        ("passthrough", "pipeline", "pipeline_no_ivt"), 20_000)
    events = modes["pipeline_events"]  # --smoke: 2 impressions per click, 1% resent, 2% conversions
    assert events["clicks"] == 20_000 and 40_000 < events["events"] < 42_000
    assert events["rows"] == events["clicks"] + events["events"]
    ratio = json.loads(lines[4])
    assert set(ratio) >= {"ratio_b_over_a_wall", "ratio_b_over_a_cpu", "ratio_b_over_c_cpu",
                          "ratio_d_over_b_cpu"}
    assert ratio["parallelism"] == 2
