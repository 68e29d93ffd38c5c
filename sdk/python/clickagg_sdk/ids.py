"""Click ids: UUIDv7 (RFC 9562, section 5.7), made by the client once per click.

Why the client makes the id: the API deduplicates on `click_id`, so a click re-sent after a
lost response, a timeout or a 5xx is counted once as long as it keeps its id. UUIDv7 because its
first 48 bits are the Unix time in milliseconds (ids sort by creation time, which keeps the
dedup table's and the logs' keys roughly ordered) and the rest is random (no coordination
between senders).

Hand-written because Python 3.11's `uuid` module has no uuid7 (it arrived in 3.14).

Monotonic within a process (RFC 9562 section 6.2, method 1, "fixed-length dedicated counter"):
the 12-bit `rand_a` field is a counter, seeded with 11 random bits at each new millisecond (the
top bit left free for increments) and incremented for each further id in the same millisecond;
should it overflow, or the clock step back, the timestamp is advanced by 1 ms instead. The 62-bit
`rand_b` field is fresh randomness from `os.urandom` for every id.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable, Optional

__all__ = ["uuid7", "Uuid7Generator", "uuid7_time_ms"]


class Uuid7Generator:
    """Makes UUIDv7 strings (lowercase, 8-4-4-4-12), strictly increasing per generator (as
    strings and as integers). Thread-safe. `clock_ms` and `randbytes` are injectable for tests."""

    def __init__(self, clock_ms: Optional[Callable[[], int]] = None,
                 randbytes: Callable[[int], bytes] = os.urandom) -> None:
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._randbytes = randbytes
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def __call__(self) -> str:
        rand = int.from_bytes(self._randbytes(10), "big")  # 80 bits: 11 for the counter seed, 62 for rand_b
        with self._lock:
            ms = self._clock_ms()
            if ms > self._last_ms:
                self._last_ms, self._counter = ms, rand >> 69  # 11-bit seed: room to count up
            else:  # same millisecond (or the clock stepped back): count on from the last id
                self._counter += 1
                if self._counter > 0xFFF:  # counter overflow: borrow the next millisecond
                    self._last_ms += 1
                    self._counter = rand >> 69
            ms, counter = self._last_ms, self._counter
        if not 0 <= ms < 1 << 48:
            raise ValueError(f"timestamp {ms} ms does not fit UUIDv7's 48 bits")
        rand_b = rand & ((1 << 62) - 1)
        value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand_b
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_default = Uuid7Generator()


def uuid7() -> str:
    """A new UUIDv7 string, e.g. '01950f7e-3a2b-7c4d-8e5f-0123456789ab' (process-wide generator:
    each id sorts after the previous one)."""
    return _default()


def uuid7_time_ms(value: str) -> int:
    """The Unix time in milliseconds a UUIDv7 carries (its first 48 bits)."""
    return int(value.replace("-", "")[:12], 16)
