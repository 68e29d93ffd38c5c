"""Lossless feeding protocol for the LOCAL job's filesystem source (`--input-dir`).

Why a protocol is needed (Flink 1.20 FileSource, which the `filesystem` SQL source uses):

* Split order. The continuous enumerator lists the directory every `source.monitor-interval` and
  hands new files to the default `LocalityAwareSplitAssigner`, which stores splits with
  `LinkedList.offerFirst` and serves them from the head: whenever more than one file is pending
  (several files found by one listing, files piling up while the readers are busy, files present
  at start-up or restored from a checkpoint), the NEWEST pending file is read FIRST, and the
  listing order itself is the file system's, not the names'.
* Watermarks. Each reader emits max(event time seen) - delay (never decreasing) and reads one file
  at a time. After reading a newer file, the rows of an older file are behind the watermark. That
  is why replaying a directory of many files dropped ~25% of the rows as late (field notes).
* Partial files. A file is read once, when discovered; a file still being written is read short
  and never again.

The protocol (implemented by `write_batch`):

1. Atomic publish: a batch is written to a hidden temp file (`.clicks-*.tmp`; the source's file
   filter skips names starting with '.' or '_'), flushed + fsynced, then `os.rename`d to
   `clicks-<seq:012d>.jsonl` (atomic on POSIX). Sequence numbers continue after the largest file
   present, so the names sort in publish order.
2. One file in flight: before publishing file n+1 the writer waits until file n has been OPENED by
   a Flink reader. The writer sets file n's access time to 0 before publishing it; the first read
   sets it to "now" (Linux `relatime`/`strictatime` update atime when atime <= mtime). A file is
   opened only after the enumerator assigned it to a reader, so at most ONE split is ever pending
   in the assigner and splits are assigned strictly in publish order, whatever the job's speed.
   It also implies at most one new file per directory listing.
3. Readers: each reader holds one file at a time and reads it in order; the job's watermark is
   the minimum over readers, so it never exceeds max(event time of the files published before,
   and the rows before, the row being processed) - delay: a row is dropped as late only if it
   would also be dropped when the files are read one after the other in publish order. That is
   the guarantee the oracle test (`tests/flink`) checks.

If the job is not running the writer blocks (Kinesis keeps the records meanwhile); after
`ack_timeout_s` it raises `FeedStalled` and publishes nothing, so the caller may retry the same
records. On a file system without access times (`noatime`), pass `ack="none"`: the writer then
only spaces publications by `min_interval_s` (> the monitor interval) which is lossless as long
as the job keeps up, or while the backlog spans less than allowed_lateness of event time.

Restart from a checkpoint: the restored source re-lists every file published after the files the
checkpoint's enumerator knew, in ONE listing, and assigns them newest first (see Split order).
Those files span the time since the checkpoint, which is unbounded: a job restored and killed
again before its own first checkpoint had acknowledged more files meanwhile (measured: 4 files
re-listed, read 12, 11, 9, 10; within-lateness clicks of file 9 were dropped as late). So before
a restored job starts, `replay_in_order` concatenates those files, in publish order, into the
newest of them (atime 0 again) and removes the others: the restored job reads them as one file,
in order. Publication and that rewrite take the same lock (flock on the directory), so
a batch being published meanwhile is either included or published after it (and then waits for
the rewritten file to be opened, like any other).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from common.records import CLICK_RECORD_SCHEMA

FILE_PREFIX = "clicks-"
FILE_SUFFIX = ".jsonl"
_NAME = re.compile(r"^clicks-(\d{12})\.jsonl$")


class FeedStalled(TimeoutError):
    """The previous file was not picked up by the Flink job in time."""


def published_files(input_dir: str | Path) -> list[Path]:
    d = Path(input_dir)
    if not d.exists():
        return []
    return sorted(p for p in d.iterdir() if _NAME.match(p.name))


def seq_of(path: str | Path) -> int:
    return int(_NAME.match(Path(path).name).group(1))


@contextlib.contextmanager
def _publish_lock(d: Path):
    """Exclusive between the writer's publish step and `replay_in_order` (any process): an
    flock on the directory itself (no lock file for the source to list)."""
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def is_consumed(path: str | Path) -> bool:
    """True once a reader opened the file (its atime left the 0 the writer set)."""
    try:
        return os.stat(path).st_atime_ns != 0
    except FileNotFoundError:  # removed by the operator: nothing to wait for
        return True


def _encode(record: dict[str, Any]) -> str:
    return json.dumps({k: record.get(k) for k in CLICK_RECORD_SCHEMA}, separators=(",", ":"))


def write_batch(
    input_dir: str | Path,
    records: Iterable[dict[str, Any]],
    *,
    ack: str = "atime",
    ack_timeout_s: float = 120.0,
    poll_s: float = 0.05,
    min_interval_s: float = 2.0,
) -> Path | None:
    """Publish `records` as the next file of `input_dir` following the protocol above.

    Returns the published path (None for an empty batch). Blocks until the previous file was
    picked up by the job (`ack="atime"`) or for `min_interval_s` since it was published
    (`ack="none"`). Raises FeedStalled after `ack_timeout_s` without publishing.
    """
    lines = [_encode(r) for r in records]
    if not lines:
        return None
    if ack not in ("atime", "none"):
        raise ValueError(f"ack must be 'atime' or 'none', got {ack!r}")
    d = Path(input_dir)
    d.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + ack_timeout_s
    while True:
        existing = published_files(d)
        if existing:
            last = existing[-1]
            if ack == "atime":
                while not is_consumed(last):
                    if time.monotonic() > deadline:
                        raise FeedStalled(
                            f"{last} was not picked up within {ack_timeout_s}s: is the Flink local "
                            f"runner running on {d}?"
                        )
                    time.sleep(poll_s)
            else:
                wait = _mtime(last) + min_interval_s - time.time()
                if wait > 0:
                    time.sleep(wait)
        with _publish_lock(d):
            # checked again under the lock: `replay_in_order` may have rewritten the newest file
            existing = published_files(d)
            if existing and not _ready(existing[-1], ack, min_interval_s):
                continue
            seq = seq_of(existing[-1]) + 1 if existing else 1
            final = d / f"{FILE_PREFIX}{seq:012d}{FILE_SUFFIX}"
            _publish(d, final, lambda f: f.write("\n".join(lines) + "\n"))
            return final


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _ready(last: Path, ack: str, min_interval_s: float) -> bool:
    if ack == "atime":
        return is_consumed(last)
    return _mtime(last) + min_interval_s <= time.time()


def _publish(d: Path, final: Path, write) -> None:
    """Hidden temp file, fsynced, atime 0 ("not read yet"), atomically renamed to `final`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE_PREFIX}", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        st = os.stat(tmp)
        os.utime(tmp, ns=(0, st.st_mtime_ns))  # atime 0 = "not read yet"
        os.rename(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def replay_in_order(input_dir: str | Path, known_seq: int) -> list[Path]:
    """Before a job restored from a checkpoint starts: make the files it will re-list (those
    after `known_seq`, the newest file its enumerator state knows) readable only in publish
    order, by concatenating them into the newest one (published again: atime 0) and removing
    the others. Returns the files merged (empty when fewer than two: nothing to order).

    Crash-safe: the merged file replaces the newest before the others are removed, so a crash
    in between only makes the next restore merge some rows twice (dropped by the click_id
    dedup, same content, same order)."""
    d = Path(input_dir)
    if not d.exists():
        return []
    with _publish_lock(d):
        replay = [p for p in published_files(d) if seq_of(p) > known_seq]
        if len(replay) < 2:
            return []

        def concat(out) -> None:
            for p in replay:
                with open(p, encoding="utf-8") as f:
                    text = f.read()
                out.write(text if text.endswith("\n") or not text else text + "\n")

        _publish(d, replay[-1], concat)
        for p in replay[:-1]:
            p.unlink(missing_ok=True)
    return replay
