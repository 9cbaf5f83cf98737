"""JSON Lines events for CI logs (`--json-events`): one JSON object per line on stderr for
each engine event (start, retry, wait, done) and each status line of the command.

Every line has `time` (UTC, ISO 8601), `elapsed` (seconds since the command started) and
`event`; the fields are listed in docs/plan-format.md. Only addresses, actions, outcomes,
timings and messages pass through, each string through the run's redactor: never a value.
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

# Colour codes a console may still emit (its colour system is chosen before the stream is
# swapped): an event carries plain text.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class EventWriter:
    """Writes one JSON object per line, whole lines only (threads do not interleave)."""

    def __init__(
        self,
        redact: Callable[[str], str] = lambda text: text,
        stream: Callable[[], TextIO] = lambda: sys.stderr,
    ) -> None:
        self.redact = redact
        self._stream = stream  # looked up per line: tests swap sys.stderr
        self._lock = threading.Lock()
        self._t0 = time.monotonic()

    def emit(self, event: str, **fields: Any) -> None:
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "elapsed": round(time.monotonic() - self._t0, 3),
            "event": event,
        }
        for name, value in fields.items():
            record[name] = self.redact(value) if isinstance(value, str) else value
        line = json.dumps(record, ensure_ascii=False)
        with self._lock:
            stream = self._stream()
            stream.write(line + "\n")
            stream.flush()


class JsonProgress:
    """Implements engine.Progress as events: `start` (address, action), `done` (address,
    outcome, seconds), `retry` (address, error, delay) and, every ``heartbeat_s`` while a
    resource is in flight, `wait` (address, seconds so far)."""

    def __init__(self, writer: EventWriter, heartbeat_s: float = 5.0) -> None:
        self.writer = writer
        self.heartbeat_s = heartbeat_s
        # In flight, per address, innermost last (a write re-reads its resource inside it).
        self._started: dict[str, list[tuple[str, float]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> JsonProgress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def started(self, address: str, action: str) -> None:
        with self._lock:
            self._started.setdefault(address, []).append((action, time.monotonic()))
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._beat, name="events", daemon=True)
                self._thread.start()
        self.writer.emit("start", address=address, action=action)

    def finished(self, address: str, outcome: str, seconds: float) -> None:
        with self._lock:
            stack = self._started.get(address)
            if stack:
                stack.pop()
                if not stack:
                    del self._started[address]
        self.writer.emit("done", address=address, outcome=outcome, seconds=round(seconds, 3))

    def retrying(self, address: str, error: str, delay: float) -> None:
        self.writer.emit("retry", address=address, error=error, delay=round(delay, 3))

    def close(self) -> None:
        """Stop the `wait` heartbeat. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            now = time.monotonic()
            with self._lock:
                waiting = sorted((s[0][1], a, s[0][0]) for a, s in self._started.items() if s)
            for since, address, action in waiting:
                self.writer.emit(
                    "wait", address=address, action=action, seconds=round(now - since, 1)
                )


class MessageStream(io.TextIOBase):
    """A text stream whose every line becomes a `message` event (`error` for a line that
    starts with "error:"): the CLI's stderr console writes here under --json-events, so that
    every stderr line of the command is a JSON object."""

    def __init__(self, writer: EventWriter) -> None:
        super().__init__()
        self.writer = writer
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            rest, self._pending = self._pending, ""
        if rest:
            self._emit(rest)

    def _emit(self, line: str) -> None:
        text = _ANSI.sub("", line).rstrip()
        if not text:
            return
        if text.startswith("error:"):
            self.writer.emit("error", message=text.removeprefix("error:").strip())
        else:
            self.writer.emit("message", message=text)
