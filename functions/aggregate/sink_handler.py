"""Sink Lambda: the aggregates stream (Flink changelog) -> serving store, idempotently.

Kinesis event source mapping with partial batch responses (Powertools BatchProcessor); records are
read through Powertools' KinesisStreamEvent / KinesisStreamRecord data classes. The batch is
written in bulk first (concurrent conditional writes / 100-record Timestream writes), then
the processor reports exactly the records that failed, so only they (and what follows them on
the shard) are redelivered. Redelivery is harmless: every write is conditional on its version.

Metrics (EMF, service=sink): ChangesWritten, ChangesFailed, SinkLag, PulseAge (the budget lane's
newest pulse in the batch: now - its time; the BudgetLaneStale alarm, docs/budget.md), and per IVT verdict the
clicks the batch's writes added to the store (aggregate.verdicts: ClicksCounted, ClicksValid,
ClicksSuspect, ClicksInvalid; deltas, possibly negative), the IVT-rate alarm's input.
"""
from __future__ import annotations

import time

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (KinesisStreamEvent,
                                                                        KinesisStreamRecord)

from aggregate.changes import PULSE, BadChange, Change, decode_change
from aggregate.verdicts import VERDICT_METRICS
from serving import WRITE, make_store
from common.observability import handler_metrics
from common.runtime import per_container

logger = Logger(service="sink")
metrics = handler_metrics("sink")
tracer = Tracer(service="sink")
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@per_container
def get_store():
    return make_store(WRITE)


def write_batch(store, records: list[KinesisStreamRecord]) -> tuple[dict[str, Exception], list[Change]]:
    """Decode and write every record; returns {sequence_number: error} and the written changes."""
    errors: dict[str, Exception] = {}
    decoded: list[tuple[str, Change]] = []
    for rec in records:
        seq = rec.kinesis.sequence_number
        try:
            decoded.append((seq, decode_change(rec.kinesis.data_as_bytes())))
        except BadChange as exc:
            errors[seq] = exc
    results = store.apply_many([c for _, c in decoded])
    for (seq, _), error in zip(decoded, results):
        if error is not None:
            errors[seq] = error
    return errors, [c for (seq, c) in decoded if seq not in errors]


def publish_verdict_deltas(deltas) -> None:
    """One EMF value per verdict metric (none when no 1m aggregate was written, or the store
    cannot tell: Timestream). Taken after the writes, failed ones included: whatever reached the
    store is published once; a failed change adds nothing until its redelivery writes it."""
    if deltas is None:
        return
    for column, name in VERDICT_METRICS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=deltas[column])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    store = get_store()
    # no records: process_partial_response below refuses the event, as before
    records = list(KinesisStreamEvent(event).records) if event.get("Records") else []
    errors, written = write_batch(store, records)

    def record_handler(record: KinesisStreamRecord) -> None:
        error = errors.get(record.kinesis.sequence_number)
        if error is not None:
            raise error

    response = process_partial_response(event=event, record_handler=record_handler,
                                        processor=processor, context=context)
    if not errors:  # freshness only moves once everything up to it is in the store
        wms = [c.row["watermark"] for c in written if c.row.get("watermark") is not None]
        events = [c.row["max_event_time"] for c in written if c.row.get("max_event_time") is not None]
        shard = records[0].event_id.partition(":")[0] if records else ""  # "<shard id>:<sequence number>"
        store.advance_freshness(max(wms, default=None), max(events, default=None), shard)
    publish_verdict_deltas(store.take_verdict_deltas())
    pulses = [c.version for c in written if c.kind == PULSE]
    if pulses:
        metrics.add_metric(name="PulseAge", unit=MetricUnit.Milliseconds,
                           value=max(0.0, time.time() * 1000 - max(pulses)))
    metrics.add_metric(name="ChangesWritten", unit=MetricUnit.Count, value=len(written))
    metrics.add_metric(name="ChangesFailed", unit=MetricUnit.Count, value=len(errors))
    if records:
        newest_arrival = max(r.kinesis.approximate_arrival_timestamp for r in records)
        metrics.add_metric(name="SinkLag", unit=MetricUnit.Milliseconds,
                           value=max(0.0, time.time() * 1000 - newest_arrival * 1000))
    if errors:
        logger.warning("changes failed; reported as batch item failures", failed=len(errors))
    return response
