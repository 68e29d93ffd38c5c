"""The sink's per-verdict metrics (aggregate.verdicts): the pure delta rules, and end to end through
the handler on moto DynamoDB: whatever the delivery (shuffled, redelivered, failed and retried,
versions that re-classify valid clicks as suspect), the EMF values it prints sum to the clicks per
verdict the table's 1m items hold, minus what was there before (items written before the
verdicts existed included). Oracle: the changelog's newest 1m rows, computed independently."""
from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from aggregate import sink_handler
from aggregate.changes import AGG, LATE, TOP, Change
from aggregate.verdicts import VERDICT_METRICS, VerdictTally, is_counted, verdict_delta
from common.config import ResourceNames
from local.emf import metric_data, split_output
from local.esm import kinesis_event
from local.lambda_runtime import LambdaContext
from local.resources import create_serving_table
from serving.write.dynamodb import DynamoDBServingStore, item_for
from serving.write.timestream import TimestreamServingStore

TABLE = ResourceNames().serving_table
T0 = 1_795_000_020_000 - 1_795_000_020_000 % 3_600_000
COUNTS = ("clicks", "billable_clicks", "suspect_clicks", "invalid_clicks")
NAMES = {"clicks": "ClicksCounted", "billable_clicks": "ClicksValid", "suspect_clicks": "ClicksSuspect",
         "invalid_clicks": "ClicksInvalid"}  # own copy: what the alarm (infra) names


# --- pure -------------------------------------------------------------------------------------

def row(kind=AGG, res="1m", **counts) -> dict:
    return {"kind": kind, "ad_id": "a", "resolution": res, "bucket_start": T0, "version": 1, **counts}


def test_metric_names_are_the_alarms():
    assert VERDICT_METRICS == NAMES


@pytest.mark.parametrize("change,counted", [
    (Change(AGG, True, row()), True),
    (Change(AGG, False, row()), False),  # a retraction: its +U follows
    (Change(AGG, True, row(res="5m")), False), (Change(AGG, True, row(res="1h")), False),
    (Change(AGG, True, row(res="1d")), False),
    (Change(TOP, True, row(TOP)), False),  # leaderboards repeat the aggregates
    (Change(LATE, True, {"kind": LATE, "ad_id": "a", "bucket_start": T0, "version": 1, "late_dropped": 3}), False),
])
def test_only_1m_aggregate_upserts_count(change, counted):
    assert is_counted(change) is counted


def test_delta_is_new_minus_previous_missing_as_zero():
    new = row(clicks=12, billable_clicks=7, suspect_clicks=4, invalid_clicks=1, cost_micros=99)
    assert verdict_delta(new, {}) == {"clicks": 12, "billable_clicks": 7, "suspect_clicks": 4, "invalid_clicks": 1}
    # an earlier version had more valid clicks: a burst found later turned 3 of them suspect
    old = {"clicks": 10, "billable_clicks": 10, "suspect_clicks": 0, "invalid_clicks": 0}
    assert verdict_delta(new, old) == {"clicks": 2, "billable_clicks": -3, "suspect_clicks": 4, "invalid_clicks": 1}
    # a row of a job without verdicts (no columns / nulls) against an item that had them
    assert verdict_delta(row(clicks=3, billable_clicks=3, suspect_clicks=None), old) == {
        "clicks": -7, "billable_clicks": -7, "suspect_clicks": 0, "invalid_clicks": 0}


def test_tally_takes_each_delta_once():
    tally = VerdictTally()
    assert tally.take() is None
    tally.add({"clicks": 2, "suspect_clicks": 1})
    tally.add({"clicks": 3, "billable_clicks": -1})
    assert tally.take() == {"clicks": 5, "billable_clicks": -1, "suspect_clicks": 1, "invalid_clicks": 0}
    assert tally.take() is None
    tally.add({"clicks": 0})  # a counted write that changed nothing still reports (zeros)
    assert tally.take() == dict.fromkeys(COUNTS, 0)


def test_timestream_cannot_tell():
    assert TimestreamServingStore(None, "db", "t").take_verdict_deltas() is None


# --- end to end (moto) ------------------------------------------------------------------------

def changelog(seed: int) -> tuple[list[bytes], dict[tuple[str, int], tuple[int, ...]]]:
    """Debezium envelopes for 6 ads x 4 minutes: each 1m aggregate grows through 1-5 versions
    (-U/+U pairs), clicks never shrink, the verdict split moves (billable may drop), plus the
    5m/1h aggregates and leaderboard rows of the same clicks, and late counters. Returns the
    payloads and the newest 1m counts per (ad, minute)."""
    rng = random.Random(seed)
    out, final = [], {}

    def env(r: dict, upsert: bool = True) -> bytes:
        return json.dumps({"before": None if upsert else r, "after": r if upsert else None,
                           "op": "c" if upsert else "d"}).encode()

    for a in range(6):
        ad = f"ad-{a}"
        for mnt in range(4):
            bucket = T0 + mnt * 60_000
            clicks = 0
            prev = None
            for v in range(1, rng.randint(1, 5) + 1):
                clicks += rng.randint(0, 9)
                valid = rng.randint(0, clicks)
                suspect = rng.randint(0, clicks - valid)
                counts = (clicks, valid, suspect, clicks - valid - suspect)
                r = {"kind": AGG, "ad_id": ad, "campaign_id": "c", "advertiser_id": "v", "resolution": "1m",
                     "bucket_start": bucket, "version": v, "cost_micros": clicks * 10,
                     "billable_cost_micros": valid * 10, "max_event_time": bucket + v, "watermark": bucket,
                     **dict(zip(COUNTS, counts))}
                if prev is not None:
                    out.append(env(prev, upsert=False))
                out.append(env(r))
                for res in ("5m", "1h"):  # the same clicks again: never counted twice
                    out.append(env({**r, "resolution": res, "bucket_start": T0, "version": 10 * mnt + v}))
                out.append(env({**r, "kind": TOP}))
                prev, final[(ad, bucket)] = r, counts
        out.append(env({"kind": LATE, "ad_id": ad, "resolution": "1m", "bucket_start": T0, "version": 1,
                        "late_dropped": 2, "cost_micros": 5}))
    return out, final


def emf_sums(printed: str) -> dict[str, float]:
    """{metric: sum of every value} over the sink's EMF documents (service=sink) in `printed`."""
    sums: dict[str, float] = {}
    docs, _ = split_output(printed)
    for doc in docs:
        for namespace, entries in metric_data(doc):
            for e in entries:
                if e["MetricName"] in NAMES.values():
                    assert namespace == "ClickAgg" and e["Dimensions"] == [{"Name": "service", "Value": "sink"}]
                    sums[e["MetricName"]] = sums.get(e["MetricName"], 0) + sum(e["Values"])
    return sums


class FlakyStore(DynamoDBServingStore):
    """Fails a random share of writes (before writing): their records are reported and resent."""

    def __init__(self, ddb, rate: float, seed: int):
        super().__init__(ddb, TABLE)
        self.rate, self.rng = rate, random.Random(seed)

    def apply(self, change):
        if self.rng.random() < self.rate:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}, "PutItem")
        return super().apply(change)


@pytest.fixture
def ddb(aws, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # the handler prints its EMF lines
    client = boto3.client("dynamodb")
    create_serving_table(client, TABLE)
    sink_handler.metrics.clear_metrics()
    yield client
    sink_handler.metrics.clear_metrics()


def invoke(payloads: list[bytes], first_seq: int) -> list[int]:
    """One sink invocation; the indexes (into payloads) it reported as failed."""
    recs = [{"PartitionKey": "k", "SequenceNumber": str(first_seq + i), "Data": p,
             "ApproximateArrivalTimestamp": datetime.now(timezone.utc)} for i, p in enumerate(payloads)]
    event = kinesis_event("arn:aws:kinesis:us-east-1:000000000000:stream/aggs", "shardId-0", recs)
    try:
        resp = sink_handler.lambda_handler(event, LambdaContext("sink"))
    except BatchProcessingError:  # every record failed: the ESM retries the whole batch
        return list(range(len(payloads)))
    return [int(f["itemIdentifier"]) - first_seq for f in resp["batchItemFailures"]]


@pytest.mark.parametrize("seed,fail_rate", [(1, 0.0), (2, 0.2), (3, 0.5)])
def test_emf_deltas_sum_to_what_the_store_holds(ddb, monkeypatch, capsys, seed, fail_rate):
    store = FlakyStore(ddb, fail_rate, seed)
    monkeypatch.setattr(sink_handler, "get_store", lambda: store)
    payloads, final = changelog(seed)
    # two 1m items from before the verdicts: their counts are the starting point of the deltas
    legacy = {("ad-0", T0): (5, 4), ("ad-9", T0): (3, 3)}  # ad-9: never updated again
    for (ad, bucket), (clicks, billable) in legacy.items():
        ddb.put_item(TableName=TABLE, Item=item_for(Change(AGG, True, {
            "kind": AGG, "ad_id": ad, "resolution": "1m", "bucket_start": bucket, "version": 0,
            "clicks": clicks, "billable_clicks": billable, "cost_micros": 1, "billable_cost_micros": 1}), 86400))
    rng = random.Random(seed)
    deliveries = payloads * 2  # everything twice, in any order, in batches of 1 to 40
    rng.shuffle(deliveries)
    seq, pending = 1, deliveries
    while pending:
        i, retry = 0, []
        while i < len(pending):
            batch = pending[i:i + rng.randint(1, 40)]
            failed = invoke(batch, seq)
            retry += [batch[f] for f in failed]
            if rng.random() < 0.2:  # the ESM delivers the same batch again
                invoke(batch, seq)
            seq, i = seq + len(batch), i + len(batch)
        pending = retry  # resent (bisect / retry) until every record went through
        store.rate = 0.0 if len(pending) < 5 else store.rate
    sums = emf_sums(capsys.readouterr().out)

    # oracle 1: the newest 1m rows of the changelog, minus what the legacy items held
    want = [sum(v[j] for v in final.values()) for j in range(4)]
    want[0] -= legacy[("ad-0", T0)][0]
    want[1] -= legacy[("ad-0", T0)][1]
    assert [sums.get(NAMES[c], 0) for c in COUNTS] == want
    # oracle 2: the table's 1m items now, minus the legacy starting point
    items = [i for i in ddb.scan(TableName=TABLE)["Items"] if i["pk"]["S"].endswith("#1m") and i["pk"]["S"].startswith("S#")]
    held = [sum(int(i.get(a, {"N": "0"})["N"]) for i in items) for a in ("c", "b", "sc", "ic")]
    start = [sum(c for c, _ in legacy.values()), sum(b for _, b in legacy.values()), 0, 0]
    assert [h - s for h, s in zip(held, start)] == want
    assert sums[NAMES["suspect_clicks"]] > 0 and sums[NAMES["invalid_clicks"]] > 0


def test_no_verdict_metrics_without_a_1m_aggregate(ddb, monkeypatch, capsys):
    store = DynamoDBServingStore(ddb, TABLE)
    monkeypatch.setattr(sink_handler, "get_store", lambda: store)
    hour_row = {"kind": AGG, "ad_id": "a", "resolution": "1h", "bucket_start": T0, "version": 1, "clicks": 3,
                "billable_clicks": 1, "suspect_clicks": 2, "invalid_clicks": 0}
    assert invoke([json.dumps({"before": None, "after": hour_row, "op": "c"}).encode()], 1) == []
    printed = capsys.readouterr().out
    assert emf_sums(printed) == {} and "ChangesWritten" in printed
