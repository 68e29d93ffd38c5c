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

Restart from a checkpoint: files published after the last completed checkpoint are listed again
at once on restore; their event time spans one checkpoint interval, far below the lateness, so
no row becomes late because of it.
"""
from __future__ import annotations

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
    d = Path(input_dir)
    d.mkdir(parents=True, exist_ok=True)
    existing = published_files(d)
    if existing:
        last = existing[-1]
        deadline = time.monotonic() + ack_timeout_s
        if ack == "atime":
            while not is_consumed(last):
                if time.monotonic() > deadline:
                    raise FeedStalled(
                        f"{last} was not picked up within {ack_timeout_s}s: is the Flink local "
                        f"runner running on {d}?"
                    )
                time.sleep(poll_s)
        elif ack == "none":
            wait = last.stat().st_mtime + min_interval_s - time.time()
            if wait > 0:
                time.sleep(wait)
        else:
            raise ValueError(f"ack must be 'atime' or 'none', got {ack!r}")
        seq = int(_NAME.match(last.name).group(1)) + 1
    else:
        seq = 1
    final = d / f"{FILE_PREFIX}{seq:012d}{FILE_SUFFIX}"
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE_PREFIX}", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
            f.write("\n")
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
    return final
