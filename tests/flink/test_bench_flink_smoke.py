"""bench/flink.py cannot rot: its --smoke run (20k rows, the production SQL over bounded files)
completes and prints every mode's figures (the events mode included) and the ratios; and its
--modes/--state-backend/--profile plumbing on the cheapest mode (passthrough: seconds; the
stateful modes on RocksDB take ~1.5 min each even at 20k rows, RocksDB's start-up per operator)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import harness


def bench(tmp_path, *args: str) -> tuple[dict, dict, dict]:
    """bench/flink.py --smoke: (figures per mode, profile per mode, the ratios line)."""
    out = subprocess.run(
        [sys.executable, str(harness.REPO / "bench" / "flink.py"), "--smoke", "--data-dir", str(tmp_path), *args],
        env={**os.environ, "PYTHONPATH": str(harness.FUNCTIONS)}, capture_output=True, text=True,
        timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    figures = [line.split(None, 1) for line in lines if line.split(None, 1)[-1].startswith("{")]
    profiles = {line.split()[0]: json.loads(line.split(None, 2)[2]) for line in lines
                if line.split()[1:2] == ["profile"]}
    return {mode: json.loads(rest) for mode, rest in figures}, profiles, json.loads(lines[-1])


def test_bench_flink_smoke_prints_both_modes_and_the_ratio(tmp_path):
    modes, profiles, ratio = bench(tmp_path)
    assert set(modes) == {"passthrough", "pipeline", "pipeline_no_ivt", "pipeline_events"}
    for figures in modes.values():
        assert figures["cpu_s"] >= figures["empty_cpu_s"] >= 0
        # the JVM's collector and compilers worked during the run (net of the empty run: a
        # little noise either way at 20k rows), and within the process's own CPU
        assert abs(figures["gc_cpu_s"]) + abs(figures["jit_cpu_s"]) <= figures["cpu_s"]
    assert {m: f["rows"] for m, f in modes.items() if m != "pipeline_events"} == dict.fromkeys(
        ("passthrough", "pipeline", "pipeline_no_ivt"), 20_000)
    events = modes["pipeline_events"]  # --smoke: 2 impressions per click, 1% resent, 2% conversions
    assert events["clicks"] == 20_000 and 40_000 < events["events"] < 42_000
    assert events["rows"] == events["clicks"] + events["events"]
    assert not profiles
    assert set(ratio) >= {"ratio_b_over_a_wall", "ratio_b_over_a_cpu", "ratio_b_over_c_cpu",
                          "ratio_d_over_b_cpu"}
    assert ratio["parallelism"] == 2 and ratio["state_backend"] == "hashmap"


def test_bench_flink_smoke_one_mode_rocksdb_with_a_profile(tmp_path):
    """--modes runs a subset (a ratio only when both its modes ran); --profile records each."""
    modes, profiles, ratio = bench(tmp_path, "--modes", "passthrough", "--state-backend", "rocksdb",
                                   "--profile", str(tmp_path / "jfr"))
    assert set(modes) == set(profiles) == {"passthrough"} and modes["passthrough"]["rows"] == 20_000
    profile = profiles["passthrough"]  # every sample charged to one operator (or plumbing)
    assert profile["samples"] > 0 and abs(sum(profile["by_operator"].values()) - 100) < 1, profile
    assert [p.name for p in (tmp_path / "jfr").iterdir()] == ["passthrough.jfr"]
    assert not any(name.startswith("ratio_") for name in ratio) and ratio["state_backend"] == "rocksdb"
    assert ratio["managed_mb_per_slot"] == 1280  # a KPU's managed memory, not the local 128 MB


def bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_flink", harness.REPO / "bench" / "flink.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rocksdb_runs_get_a_kpus_managed_memory_per_slot():
    """The MiniCluster's local default (128 MB in all) starves RocksDB ~30x (README-flink.md)."""
    options = bench_module().backend_options
    assert options("rocksdb", 2, 1280) == {"state.backend.type": "rocksdb",
                                           "taskmanager.memory.managed.size": "2560m"}
    assert options("rocksdb", 2, 0) == {"state.backend.type": "rocksdb"}
    assert options("hashmap", 2, 1280) == {"state.backend.type": "hashmap"}


def test_thread_groups_by_the_names_the_jdk_gives_its_threads():
    """The names /proc shows for JDK 17's G1 and JIT threads (15 characters at most)."""
    flink_bench = bench_module()
    names = {"GC Thread#0": "gc", "G1 Main Marker": "gc", "G1 Conc#0": "gc", "G1 Refine#0": "gc",
             "G1 Service": "gc", "VM Thread": "gc", "C2 CompilerThre": "jit",
             "C1 CompilerThre": "jit", "Source: clicks[": None, "GroupAggregate[": None,
             "main": None, "Flink Netty Ser": None}
    assert {n: flink_bench.thread_group(n) for n in names} == names
