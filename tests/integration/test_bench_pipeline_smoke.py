"""`bench/pipeline.py --smoke` still runs end to end on the local stack (moto, Flink job on its
Kinesis connector, sink) and prints its figures. No assertion on any time: only that the run
finishes, reports every figure, and that the clicks it reports accepted (and finds on the clicks
stream) are exactly the distinct clicks it sent."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from local.flink import flink_available

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not flink_available(), reason="needs .venv-flink (make setup)")]


def test_bench_pipeline_smoke(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'functions'}"}
    env.pop("AWS_ENDPOINT_URL", None)  # the bench starts its own emulator
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "pipeline.py"), "--smoke",
                           "--state-dir", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=500)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{proc.stderr[-3000:]}"

    counts = re.search(r"^sent (\d+) distinct clicks; accepted (\d+) clicks = \d+ clicks/s "
                       r"\(\d+ duplicates, \d+ retried items\); clicks stream holds (\d+) records$", out, re.M)
    assert counts, out
    sent, accepted, on_stream = map(int, counts.groups())
    assert sent == 300  # the smoke load (15 s x 20 clicks/s) is sent whole
    assert accepted == sent and on_stream == sent, out

    assert re.search(r"^sent for \d+s with 2 clients x 20-click requests, paced at 20 clicks/s \(smoke run\)$",
                     out, re.M), out
    assert re.search(r"^freshness \(posted -> visible in serving store, ad-0000, \d+ of \d+ clicks seen\): "
                     r"p50 [\d.]+s  p95 [\d.]+s  p99 [\d.]+s$", out, re.M), out
    cpu = re.findall(r"^ +\d+%  (.+)$", out, re.M)
    assert {c.split(" (")[0] for c in cpu} == {"moto server", "Flink job", "local stack process"}, out
    assert re.search(r"^busiest process: .+$", out, re.M), out
    assert re.search(r"^when the send ended: the job had written \d+ changelog rows to the aggregates stream "
                     r"\([\d.]+ per accepted click\), the sink had been delivered \d+$", out, re.M), out
