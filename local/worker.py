"""The scaffolding every background part of the local stack shares (archivers, event source
mapping, Glue workflow runner): a daemon thread running `_run` until `stop()`; `PollingWorker`
for the ones that drain something in rounds."""
from __future__ import annotations

import threading


class BackgroundWorker:
    """A daemon thread running `_run` until `stop()`. `_run` checks `self._stop`."""

    def __init__(self, thread_name: str):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class PollingWorker(BackgroundWorker):
    """Calls `drain_once()` (-> how much it moved) until `stop()`; waits `poll_interval_s` after
    a round that moved nothing, 1 s after a failure (the emulator stopping during shutdown)."""

    poll_interval_s: float = 0.5

    def drain_once(self) -> int:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.drain_once():
                    self._stop.wait(self.poll_interval_s)
            except Exception:  # emulator stopping underneath us during shutdown
                self._stop.wait(1)
