"""Apply progress on the terminal: a line per start, finish and retry, and every few
seconds what is still waiting and for how long (long LROs such as PostgreSQL stay visible).
Writes to stderr; never prints a value, only addresses, outcomes and timings.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO


class ConsoleProgress:
    """Implements engine.Progress for a terminal or a CI log."""

    def __init__(self, stream: TextIO, heartbeat_s: float = 10.0) -> None:
        self.stream = stream
        self.heartbeat_s = heartbeat_s
        self._started: dict[str, float] = {}
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="progress", daemon=True)

    def __enter__(self) -> ConsoleProgress:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(f"[{time.monotonic() - self._t0:6.1f}s] {text}\n")
            self.stream.flush()

    def started(self, address: str, action: str) -> None:
        with self._lock:
            self._started[address] = time.monotonic()
        self._line(f"start    {address} ({action})")

    def finished(self, address: str, outcome: str, seconds: float) -> None:
        with self._lock:
            self._started.pop(address, None)
        self._line(f"{outcome:<8} {address} ({seconds:.1f}s)")

    def retrying(self, address: str, error: str, delay: float) -> None:
        self._line(f"retry    {address} in {delay:.1f}s after {error}")

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            now = time.monotonic()
            with self._lock:
                waiting = sorted(self._started.items(), key=lambda kv: kv[1])
            if waiting:
                listed = ", ".join(f"{a} ({now - t:.0f}s)" for a, t in waiting)
                self._line(f"waiting  {listed}")
