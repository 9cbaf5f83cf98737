"""Ctrl-C on a real terminal (a pseudo-terminal): the CLI runs in its own session with the
pty as controlling terminal, and the test types ^C, so the line discipline sends SIGINT as it
does for a user. The emulator runs in this process; its request log shows what was written."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from nsc_reconcile import apply, load_desired_state
from nsc_reconcile import plan as make_plan
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.emulator.app import Emulator
from tests.paths import DESIRED_STATE, ROOT

PG = "postgresql_server/nsc-pg-langfuse-dev"
PG_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers"
PG_LRO_S = 2.5  # the PostgreSQL create lasts this long in the emulator
ACK = "stopping after in-flight operations; a second Ctrl-C abandons them"
WRITES = {"PUT", "PATCH", "DELETE"}
LEASE_ZONE = "nsc-reconcile-lease.internal"
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # a terminal gets colour; the tests read the text
# Become the session's controlling terminal's owner (stdin is the pty), then run the CLI.
_WITH_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


class Terminal:
    """One CLI run on a pseudo-terminal (stdin, stdout and stderr), its output collected."""

    def __init__(self, *args: str) -> None:
        self._controller, terminal = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WITH_TERMINAL, "-m", "nsc_reconcile", *args],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,
            cwd=ROOT,
        )
        os.close(terminal)
        self._data = bytearray()
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._controller, 4096)
            except OSError:  # EIO: every holder of the terminal closed it
                chunk = b""
            with self._changed:
                self._data.extend(chunk)
                self._changed.notify_all()
            if not chunk:
                return

    @property
    def output(self) -> str:
        with self._changed:
            return _COLOUR.sub("", self._data.decode(errors="replace").replace("\r\n", "\n"))

    def wait_for(self, text: str, timeout: float) -> float:
        """Wait until ``text`` was shown; returns time.monotonic() then."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while text not in _COLOUR.sub("", self._data.decode(errors="replace")):
                left = deadline - time.monotonic()
                assert left > 0, f"{text!r} not shown within {timeout} s:\n{self.output}"
                self._changed.wait(left)
        return time.monotonic()

    def ctrl_c(self) -> float:
        """Type ^C; returns time.monotonic() just before."""
        now = time.monotonic()
        os.write(self._controller, b"\x03")
        return now

    def exit_code(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        os.close(self._controller)
        return code


def _apply(arm: str) -> Terminal:
    return Terminal("apply", str(DESIRED_STATE), "--emulator", arm, "--yes")


def _wait_for_pg_create(ctl: Callable[..., Any], run: Terminal) -> None:
    """Until the emulator has received the PostgreSQL server's create (its PUT)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(r["method"] == "PUT" and r["path"].endswith("/flexibleServers/nsc-pg-langfuse-dev")
               for r in ctl("GET", "requests")):  # fmt: skip
            return
        assert run.process.poll() is None, run.output
        time.sleep(0.05)
    raise AssertionError(f"no PostgreSQL create seen:\n{run.output}")


def _in_flight(output: str) -> list[str]:
    """The addresses the acknowledgement names as in progress."""
    after = output.split(ACK, 1)[1].splitlines()[1:]
    named = []
    for line in after:
        if not line.startswith("  ") or " in progress " not in line:
            break
        named.append(line.strip().split(":", 1)[0])
    return named


def _clients(emu: Emulator) -> Clients:
    return Clients(AzureTarget.for_emulator(emu.info["arm"]))


@pytest.fixture
def slow_pg(ctl: Callable[..., Any]) -> None:
    ctl("POST", "config", {"lro_seconds": {PG_TYPE: PG_LRO_S}})


@pytest.mark.usefixtures("slow_pg")
def test_first_ctrl_c_finishes_in_flight_writes_and_starts_none(
    emu: Emulator, ctl: Callable[..., Any]
) -> None:
    run = _apply(str(emu.info["arm"]))
    _wait_for_pg_create(ctl, run)
    typed = run.ctrl_c()
    acknowledged = run.wait_for(ACK, timeout=5)
    code = run.exit_code(timeout=30)
    out = run.output

    # Acknowledged at once, though the PostgreSQL create still has seconds to go.
    assert acknowledged - typed < 0.5, out
    named = _in_flight(out)
    assert PG in named, out
    pg_line = out.split(f"{PG}: create in progress", 1)[1].splitlines()[0]
    assert "Azure finishes it even if we stop waiting" in pg_line, out
    # The create in flight was waited for; the summary follows; the rest never started.
    assert code == 130, out
    table = out.split("RESOURCE", 1)[1]
    assert table.split(f"{PG} ", 1)[1].split()[0] == "created", out
    database = table.split("postgresql_database/nsc-pg-langfuse-dev/langfuse", 1)[1]
    assert database.splitlines()[0].split()[0] == "not-started", out
    assert "Apply interrupted" in out
    assert "re-run apply to continue" in out

    # No write began after the interrupt was acknowledged but the ones named in flight (and
    # the lease's own). A fast write may start and end between the key press and the signal
    # reaching the process (more so with the many grants): the acknowledgement is the bound.
    acknowledged_at = time.time() - (time.monotonic() - acknowledged)
    # A role assignment's path has its UUID name, not its label: take its id from a plan.
    names = [address.rsplit("/", 1)[1].lower() for address in named]
    if any(a.startswith("role_assignment/") for a in named):
        state = load_desired_state(DESIRED_STATE)
        ids = {r.address: r.id for r in make_plan(state, _clients(emu)).resources}
        names += [str(ids[a]).lower() for a in named if a.startswith("role_assignment/")]
    late = [
        f"{r['method']} {r['path']}"
        for r in ctl("GET", "requests")
        if r["method"] in WRITES and r["time"] >= acknowledged_at
        and LEASE_ZONE not in r["path"] and not any(n in r["path"].lower() for n in names)
    ]  # fmt: skip
    assert not late, f"writes started after Ctrl-C: {late}\n{out}"
    database_writes = [
        r for r in ctl("GET", "requests")
        if r["method"] in WRITES and "/databases/langfuse" in r["path"]
    ]  # fmt: skip
    assert not database_writes  # it waits on the server: queued, so never started


@pytest.mark.usefixtures("slow_pg")
def test_second_ctrl_c_exits_at_once_and_a_rerun_converges(
    emu: Emulator, ctl: Callable[..., Any], clients: Clients
) -> None:
    arm = str(emu.info["arm"])
    run = _apply(arm)
    _wait_for_pg_create(ctl, run)
    run.ctrl_c()
    run.wait_for(ACK, timeout=5)
    again = run.ctrl_c()
    code = run.exit_code(timeout=10)
    exited = time.monotonic()
    out = run.output

    assert code == 130, out
    assert exited - again < 1.0, out  # the create has seconds to go: it was not waited for
    abandoned = out.split("second Ctrl-C", 1)[1]
    assert "abandoned, outcome unknown" in abandoned
    assert f"{PG}: create sent" in abandoned, out
    assert "RESOURCE" not in out  # no summary: nothing was waited for

    # A rerun takes over the lease of the dead run, waits for the create Azure is still
    # doing, and finishes the rest: then live state matches the desired state.
    rerun = subprocess.run(
        [sys.executable, "-m", "nsc_reconcile", "apply", str(DESIRED_STATE), "--emulator", arm,
         "--yes"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Apply complete" in rerun.stdout
    assert not make_plan(load_desired_state(DESIRED_STATE), clients).has_changes


def test_plan_interrupt_is_one_line(emu: Emulator, ctl: Callable[..., Any]) -> None:
    ctl("POST", "config", {"latency_ms": 500})  # every read takes 0.5 s: plan takes seconds
    run = Terminal("plan", str(DESIRED_STATE), "--emulator", str(emu.info["arm"]))
    deadline = time.monotonic() + 30
    while not ctl("GET", "requests"):  # reading has begun
        assert time.monotonic() < deadline, run.output
        time.sleep(0.05)
    typed = run.ctrl_c()
    code = run.exit_code(timeout=10)
    out = run.output
    assert code == 130, out
    assert time.monotonic() - typed < 3.0, out  # the reads under way end; queued ones never run
    after = [line for line in out.split("^C", 1)[1].splitlines() if line.strip()]
    assert after == ["interrupted"], out
    assert "Plan:" not in out


def test_library_cancel_starts_no_write(ctl: Callable[..., Any], clients: Clients) -> None:
    """The library's cancellation (no signal handler): a set event lets no write start."""
    state = load_desired_state(DESIRED_STATE)
    planned = make_plan(state, clients)
    assert planned.has_changes
    cancel = threading.Event()
    cancel.set()
    result = apply(planned, state, clients, cancel=cancel)
    assert result.interrupted
    assert not result.ok
    changing = {r.address for r in planned.changes}
    assert {r.address for r in result.resources if r.outcome == "not-started"} >= changing
    writes = [r["path"] for r in ctl("GET", "requests") if r["method"] in WRITES]
    assert writes
    assert all(LEASE_ZONE in path for path in writes), writes  # only the lease's own
    assert "re-run apply to continue" in result.render()
