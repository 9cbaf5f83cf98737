"""One apply at a time per environment: the apply lease held in Azure (lease.py). Two CLI
applies started together against one emulator: one waits for the other, and afterwards the
plan is clean, each generated secret has one version and PostgreSQL accepts the vault's
password. A live lease held elsewhere refuses with its holder and since when; a stale one
(expired, or its process gone) is taken over."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.cli import main
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.lease import LEASE_ZONE, ApplyLease, LeaseHeldError
from nsc_reconcile.model.state import DesiredState
from tests.engine.convergence import assert_converged, resource_writes
from tests.paths import DESIRED_STATE, ROOT

GROUP = "2dt-final-team4"


@pytest.fixture
def state() -> DesiredState:
    return load_desired_state(DESIRED_STATE)


@pytest.fixture
def lease(clients: Clients) -> Iterator[ApplyLease]:
    held = ApplyLease(clients, GROUP, "dev", ttl_s=1.0)
    yield held
    held.release()


def _stamp(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def put_foreign_lease(clients: Clients, *, host: str, pid: int, expires_in_s: float) -> None:
    """The lease record as another machine's apply would have left it."""
    from azure.mgmt.privatedns.models import RecordSet

    now = datetime.datetime.now(datetime.UTC)
    metadata = {
        "holder": f"ci@{host}", "host": host, "pid": str(pid), "run": "abc123",
        "command": "apply", "since": _stamp(now - datetime.timedelta(minutes=3)),
        "expires": _stamp(now + datetime.timedelta(seconds=expires_in_s)),
    }  # fmt: skip
    ApplyLease(clients, GROUP, "dev")._ensure_zone()
    body = {"properties": {"ttl": 60, "txtRecords": [{"value": ["lease"]}], "metadata": metadata}}
    clients.privatedns.record_sets.create_or_update(
        GROUP, LEASE_ZONE, "TXT", "dev", RecordSet(body)
    )


def test_a_live_lease_refuses_naming_its_holder_and_since_when(
    clients: Clients, ctl: Callable[..., Any], emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    put_foreign_lease(clients, host="build-agent-7", pid=4242, expires_in_s=300)
    ctl("DELETE", "requests")
    with pytest.raises(SystemExit) as exit_info:
        main(["apply", str(DESIRED_STATE), "--emulator", emu.info["arm"], "--yes"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert "another apply is running on environment dev" in err
    assert "ci@build-agent-7 (pid 4242, apply run abc123) since" in err
    assert "--wait-lock" in err
    assert resource_writes(ctl("GET", "requests")) == []


def test_a_waiting_apply_gets_the_lease_when_it_is_released(
    clients: Clients, lease: ApplyLease
) -> None:
    lease.acquire()
    other = ApplyLease(clients, GROUP, "dev", poll_s=0.05)
    with pytest.raises(LeaseHeldError, match="held by"):
        other.acquire()
    seen: list[str] = []
    start = time.monotonic()
    import threading

    threading.Timer(0.5, lease.release).start()
    other.acquire(wait_s=30, on_wait=lambda holder: seen.append(holder.run))
    other.release()
    assert seen == [lease.run]
    assert time.monotonic() - start < 30


def test_the_holder_renews_its_lease_past_its_ttl(clients: Clients, lease: ApplyLease) -> None:
    lease.acquire()
    time.sleep(1.5)  # longer than the lease's ttl (1 s): renewed, not expired
    with pytest.raises(LeaseHeldError):
        ApplyLease(clients, GROUP, "dev").acquire()
    assert lease.lost is None


@pytest.mark.parametrize(
    ("host", "pid", "expires_in_s", "why"),
    [
        ("build-agent-7", 4242, -5, "expired at"),
        (os.uname().nodename, 2**22 + 7, 300, "no longer runs on this host"),
    ],
    ids=["expired", "holder process gone"],
)
def test_a_stale_lease_is_taken_over(
    clients: Clients, host: str, pid: int, expires_in_s: float, why: str
) -> None:
    put_foreign_lease(clients, host=host, pid=pid, expires_in_s=expires_in_s)
    taker = ApplyLease(clients, GROUP, "dev")
    taker.acquire()
    taker.release()
    assert taker.took_over is not None
    assert why in taker.took_over


def test_a_lease_taken_over_is_reported_lost_and_not_deleted(
    clients: Clients, lease: ApplyLease
) -> None:
    lease.acquire()
    put_foreign_lease(clients, host="build-agent-7", pid=4242, expires_in_s=300)
    time.sleep(0.5)  # the next renewal (every ttl/4) meets another holder's ETag: 412
    assert lease.lost is not None
    lease.release()
    found = clients.privatedns.record_sets.get(GROUP, LEASE_ZONE, "TXT", "dev")
    assert found.properties is not None
    assert (found.properties.metadata or {})["host"] == "build-agent-7"  # theirs, still there


def test_two_applies_started_together_one_waits_and_generated_secrets_stay_generated_once(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any], emu: Emulator
) -> None:
    # Latency as on a real network widens the window in which two unserialized applies both
    # find a generated secret missing (without the lease this test sees two versions of each);
    # a PostgreSQL create that takes seconds keeps the first apply busy meanwhile.
    ctl("POST", "config", {"latency_ms": 60,
                           "lro_seconds": {"Microsoft.DBforPostgreSQL/flexibleServers": 1}})  # fmt: skip
    command = [sys.executable, "-m", "nsc_reconcile", "apply", str(DESIRED_STATE),
               "--emulator", emu.info["arm"], "--yes", "--wait-lock", "120"]  # fmt: skip
    pipe = subprocess.PIPE
    runs = [subprocess.Popen(command, cwd=ROOT, stdout=pipe, stderr=pipe, text=True) for _ in "ab"]
    outputs = [run.communicate(timeout=240) for run in runs]
    errors = [err for _, err in outputs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(errors)
    assert sum("waiting up to 120 s for the apply lease of dev: held by" in e for e in errors) == 1

    ctl("POST", "config", {"latency_ms": 0})
    assert_converged(clients, state, ctl)
