"""The scaffolding every background part of the local stack shares (archiver, event source
mapping, Glue workflow runner): a daemon thread running `_run` until `stop()`."""
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
