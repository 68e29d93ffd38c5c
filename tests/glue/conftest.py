"""Glue-job tests: run in .venv-glue (PySpark 3.5.4 = Glue 5.0):

    .venv-glue/bin/python -m pytest tests/glue -p no:cacheprovider

One local SparkSession (local[2], 2 shuffle partitions) for the whole test session. In an
environment without pyspark (the main .venv), the Spark test modules are not collected; the
pure reconciliation tests still run there.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for p in (str(REPO / "functions"), str(REPO)):
    if p not in sys.path:
        sys.path.insert(0, p)

HAVE_SPARK = importlib.util.find_spec("pyspark") is not None
SPARK_MODULES = ["test_billing.py", "test_billing_events.py", "test_backfill.py", "test_month_end.py",
                 "test_bench_billing_smoke.py",
                 "test_ivt_shared_rows.py", "test_billing_budget.py"]
collect_ignore = [] if HAVE_SPARK else SPARK_MODULES


@pytest.fixture(scope="session")
def spark():
    from glue_jobs.billing.run import local_spark

    session = local_spark(app="clickagg-glue-tests", master="local[2]", shuffle_partitions=2,
                          driver_memory="1g",
                          extra={"spark.default.parallelism": "2",
                                 "spark.sql.adaptive.coalescePartitions.enabled": "true"})
    yield session
    session.stop()
