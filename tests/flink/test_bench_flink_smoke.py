"""bench/flink.py cannot rot: its --smoke run (20k rows, the production SQL over bounded files)
completes and prints both modes' figures and the ratio."""
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
    modes = {line.split()[0]: json.loads(line.split(None, 1)[1]) for line in lines[:3]}
    assert set(modes) == {"passthrough", "pipeline", "pipeline_no_ivt"}
    for figures in modes.values():
        assert figures["rows"] == 20_000
        assert figures["cpu_s"] >= figures["empty_cpu_s"] >= 0
    ratio = json.loads(lines[3])
    assert set(ratio) >= {"ratio_b_over_a_wall", "ratio_b_over_a_cpu", "ratio_b_over_c_cpu"}
    assert ratio["parallelism"] == 2
