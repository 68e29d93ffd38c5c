"""tests/flink runs in the PyFlink venv: `.venv-flink/bin/python -m pytest tests/flink`.

The job runs on its real Kinesis connector against a moto server started here (one per session,
on a free port of 127.0.0.1); each test gets its own pair of streams."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FUNCTIONS = HERE.parents[1] / "functions"
for p in (str(FUNCTIONS), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture(scope="session")
def kinesis(tmp_path_factory):
    import harness

    emulator = harness.Emulator(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def scenario():
    """The MiniCluster scenario with impressions and conversions (datagen), and its oracle:
    what the stream job (test_flink_minicluster) and the rebuild (test_rebuild) must both equal."""
    import datagen

    return datagen.generate(events=True)


@pytest.fixture(scope="module")
def expected(scenario):
    import datagen

    return datagen.oracle(scenario)
