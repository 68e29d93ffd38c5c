"""A local stack (moto server + local API Gateway) with serving data near now, for the contract
and CLI tests. Module-scoped on purpose: while a stack runs, AWS_ENDPOINT_URL points boto3 at its
moto server, so it must be down again before tests that use in-process moto."""
from __future__ import annotations

import time

import boto3
import pytest

from tests.query.truth import MIN, load, random_truth, serving_items


@pytest.fixture(scope="module")
def local_stack():
    from local.stack import LocalStack, StackOptions

    # the query API needs only moto + the gateway: no stream workers (Flink job, sink, archiver)
    # and no billing runs (POST /v1/reconcile only records workflow runs in moto here)
    workers = {k: False for k in ("flink", "sink", "archive", "glue") if k in StackOptions.__dataclass_fields__}
    with LocalStack(StackOptions(**workers)) as stack:
        now = int(time.time() * 1000)
        start = now - now % MIN - 3 * 60 * MIN
        truth = random_truth(21, start, 3 * 60 + 2, ads=12, p=0.3, events=True)
        load(boto3.client("dynamodb"), stack.names.serving_table, serving_items(truth, 1000))
        stack.truth = truth
        yield stack
