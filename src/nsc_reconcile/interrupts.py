"""Ctrl-C on the command line: the first interrupt stops cleanly, a second exits at once.

Only the CLI installs this handler (the library never installs a signal handler; it offers
Engine.cancel()). While apply writes (``writing(engine)``), the first Ctrl-C is acknowledged
at once, calls Engine.cancel() (no write starts after it) and names each write in flight with
what to expect in Azure; apply then ends with its summary, and the CLI exits 130. At any other
time the first Ctrl-C raises KeyboardInterrupt as usual (the CLI prints one line, exits 130).
A second Ctrl-C exits at once with 130, naming the writes it abandons (outcome unknown).

Lines go straight to the file descriptor (os.write): a signal handler must not re-enter a
buffered stream the interrupted code may be writing to.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from nsc_reconcile.engine import Engine

# 128 + SIGINT: what shells report for a program ended by Ctrl-C (Terraform, az do the same).
EXIT_INTERRUPTED = 130
ACKNOWLEDGED = "stopping after in-flight operations; a second Ctrl-C abandons them"


class Interrupts:
    """The CLI's SIGINT handler; ``count`` is how many interrupts arrived."""

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.count = 0
        self._engine: Engine | None = None

    @contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Handle SIGINT within the block (from the main thread only; elsewhere a no-op),
        then restore the previous handler."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextmanager
    def writing(self, engine: Engine) -> Iterator[None]:
        """Within the block, the first Ctrl-C cancels ``engine``'s apply instead of raising."""
        self._engine = engine
        try:
            yield
        finally:
            self._engine = None

    def say(self, *lines: str) -> None:
        """Write ``lines`` in one call (a progress line cannot come between them)."""
        with contextlib.suppress(OSError):
            os.write(self.fd, "".join(f"{line}\n" for line in lines).encode())

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.count > 1:
            self._abandon()
        engine = self._engine
        if engine is None:
            raise KeyboardInterrupt
        now = time.monotonic()
        in_flight = engine.cancel()
        named = [f"  {op.describe(now)}" for op in in_flight]
        self.say("", ACKNOWLEDGED, *(named or ["  no write in flight; nothing more starts"]))

    def _abandon(self) -> NoReturn:
        engine = self._engine
        ops = engine.in_flight() if engine is not None else []
        if ops:
            now = time.monotonic()
            self.say(
                "",
                "second Ctrl-C: exiting now; abandoned, outcome unknown:",
                *(f"  {op.address}: {op.action} sent {now - op.since:.0f}s ago; {op.expect()}"
                  for op in ops),
                "re-run apply to continue: it re-reads live state and waits for what Azure is "
                "still doing",
            )  # fmt: skip
        else:
            self.say("", "second Ctrl-C: exiting now")
        for stream in (sys.stdout, sys.stderr):  # best effort: may be mid-write
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(EXIT_INTERRUPTED)
