"""CloudWatch's embedded-metric-format extraction, emulated for in-process handlers.

On AWS a handler's Powertools metrics are EMF JSON lines on stdout; CloudWatch Logs turns them
into metrics. Here `capture()` routes what the invoking thread prints into a buffer (other
threads print as usual), `EmfForwarder` sends each EMF line to the emulator's CloudWatch with
PutMetricData, and passes every other line through. So GET /v1/quality reads the ingest counts
from CloudWatch locally as on AWS.
"""
from __future__ import annotations

import io
import json
import queue
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

_INSTALL_LOCK = threading.Lock()
MAX_METRICS_PER_CALL = 1000  # PutMetricData: up to 1,000 metrics per request
MAX_DOCS_PER_ROUND = 200


class ThreadRoutedStdout(io.TextIOBase):
    """sys.stdout stand-in: a thread inside `capture()` writes to its buffer, others pass through."""

    def __init__(self, real):
        self.real = real
        self.local = threading.local()

    def write(self, text: str) -> int:
        buf = getattr(self.local, "buf", None)
        if buf is None:
            return self.real.write(text)
        buf.append(text)
        return len(text)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return False


@contextmanager
def capture() -> Iterator[list[str]]:
    """Collect what this thread prints; yields the list of written chunks."""
    with _INSTALL_LOCK:  # (re)install if someone (pytest, another tool) swapped sys.stdout since
        if not isinstance(sys.stdout, ThreadRoutedStdout):
            sys.stdout = ThreadRoutedStdout(sys.stdout)
        router = sys.stdout
    chunks: list[str] = []
    router.local.buf = chunks
    try:
        yield chunks
    finally:
        router.local.buf = None


def metric_data(doc: dict) -> list[tuple[str, list[dict]]]:
    """One EMF document -> [(namespace, PutMetricData MetricData entries)] (pure)."""
    aws = doc.get("_aws") or {}
    when = datetime.fromtimestamp(int(aws.get("Timestamp", 0)) / 1000, tz=timezone.utc)
    out = []
    for directive in aws.get("CloudWatchMetrics", []):
        dims_sets = directive.get("Dimensions") or [[]]
        entries = []
        for definition in directive.get("Metrics", []):
            raw = doc.get(definition["Name"])
            values = [float(v) for v in (raw if isinstance(raw, list) else [raw]) if v is not None]
            if not values:
                continue
            for dims in dims_sets:
                entries.append({
                    "MetricName": definition["Name"], "Timestamp": when,
                    "Values": values, "Counts": [1.0] * len(values),
                    "Unit": definition.get("Unit", "None"),
                    "Dimensions": [{"Name": d, "Value": str(doc[d])} for d in dims if d in doc],
                })
        if entries:
            out.append((directive["Namespace"], entries))
    return out


def split_output(text: str) -> tuple[list[dict], str]:
    """Printed text -> (EMF documents, the other lines) (pure)."""
    docs, rest = [], []
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("{") and '"_aws"' in stripped:
            try:
                docs.append(json.loads(stripped))
                continue
            except ValueError:
                pass
        rest.append(line)
    return docs, "".join(rest)


class EmfForwarder:
    """PutMetricData for captured EMF documents, off the invoking thread (a queue + one sender
    that batches whatever has queued up)."""

    def __init__(self, client=None):
        import boto3

        self._cw = client or boto3.client("cloudwatch")
        self._queue: queue.Queue = queue.Queue()
        self.sent = self.failed = 0
        self._thread = threading.Thread(target=self._run, name="emf-forwarder", daemon=True)
        self._thread.start()

    def handle(self, printed: str) -> None:
        docs, rest = split_output(printed)
        for doc in docs:
            self._queue.put(doc)
        if rest:
            sys.stdout.write(rest)

    def _run(self) -> None:
        """Take every queued document, send their metrics in as few calls as the API allows
        (the emulator is single-threaded: one call per invocation would slow the whole stack)."""
        while True:
            docs = [self._queue.get()]
            while len(docs) < MAX_DOCS_PER_ROUND:
                try:
                    docs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = None in docs
            by_namespace: dict[str, list[dict]] = {}
            for doc in docs:
                if doc is not None:
                    for namespace, entries in metric_data(doc):
                        by_namespace.setdefault(namespace, []).extend(entries)
            for namespace, entries in by_namespace.items():
                for i in range(0, len(entries), MAX_METRICS_PER_CALL):
                    batch = entries[i:i + MAX_METRICS_PER_CALL]
                    try:
                        self._cw.put_metric_data(Namespace=namespace, MetricData=batch)
                        self.sent += len(batch)
                    except Exception:  # the emulator going away at shutdown: best effort
                        self.failed += len(batch)
            for _ in docs:
                self._queue.task_done()
            if stopping:
                return

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued document was sent (tests read metrics right after)."""
        done = threading.Event()
        threading.Thread(target=lambda: (self._queue.join(), done.set()), daemon=True).start()
        done.wait(timeout_s)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
