"""Faults on the writes of a full apply, and applies killed mid-way: a rerun converges (plan
clean) and no generated secret is ever rotated (one version each; PostgreSQL accepts the
vault's password).

Fault matrix, sampled: for each fault kind, one apply with that fault on the first write(s)
of EVERY resource type the apply writes (count 1 or 2, alternating), so each (kind, type)
cell is met once in six applies instead of one apply per cell. SIGKILL trials: a CLI apply
killed once the request log shows N writes, then a rerun (the dead run's lease is taken over:
same host, process gone)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from nsc_reconcile import apply, load_desired_state, plan
from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.retry import RetryPolicy
from tests.engine.convergence import assert_converged, resource_writes
from tests.paths import DESIRED_STATE, ROOT

# (method, path regex) of the first write of each resource type a full apply makes.
WRITE_TYPES: dict[str, tuple[str, str]] = {
    "action group": ("PUT", r"/actionGroups/[^/]+$"),
    "private DNS zone": ("PUT", r"/privateDnsZones/privatelink[^/]+$"),
    "apply lease zone": ("PUT", r"/privateDnsZones/nsc-reconcile-lease[^/]+$"),
    "apply lease record": ("PUT", r"/privateDnsZones/[^/]+/TXT/[^/]+$"),
    "private DNS zone link": ("PUT", r"/virtualNetworkLinks/[^/]+$"),
    "OpenAI account": ("PUT", r"/Microsoft.CognitiveServices/accounts/[^/]+$"),
    "OpenAI deployment": ("PUT", r"/accounts/[^/]+/deployments/[^/]+$"),
    "Log Analytics table": ("PUT", r"/workspaces/[^/]+/tables/[^/]+$"),
    "PostgreSQL server": ("PUT", r"/flexibleServers/[^/]+$"),
    "PostgreSQL database": ("PUT", r"/flexibleServers/[^/]+/databases/[^/]+$"),
    "private endpoint": ("PUT", r"/privateEndpoints/[^/]+$"),
    "DNS zone group": ("PUT", r"/privateDnsZoneGroups/[^/]+$"),
    "data collection rule": ("PUT", r"/dataCollectionRules/[^/]+$"),
    "log alert": ("PUT", r"/scheduledQueryRules/[^/]+$"),
    "NSG rule": ("PUT", r"/securityRules/[^/]+$"),
    "Key Vault secret value": ("PUT", r"^/secrets/[^/]+$"),
    "Key Vault secret version pin": ("PATCH", r"^/secrets/[^/]+/[^/]+$"),
    "Kubernetes namespace": ("PATCH", r"^/api/v1/namespaces/[^/]+$"),
    "Kubernetes Secret": ("PATCH", r"/namespaces/[^/]+/secrets/[^/]+$"),
    "Kubernetes Service": ("PATCH", r"/services/[^/]+$"),
    "Kubernetes StatefulSet": ("PATCH", r"/statefulsets/[^/]+$"),
    "Kubernetes Deployment": ("PATCH", r"^/apis/apps/v1/namespaces/[^/]+/deployments/[^/]+$"),
}
FAULT_KINDS: dict[str, dict[str, Any]] = {
    "429": {"status": 429, "code": "TooManyRequests", "retry_after": 0},
    "500": {"status": 500, "code": "InternalServerError"},
    "503": {"status": 503, "code": "ServiceUnavailable"},
    "409": {"status": 409, "code": "AnotherOperationInProgress",
            "message": "Another operation on this or a dependent resource is in progress."},
    "dropped connection": {"action": "drop"},
    "failed LRO": {"action": "fail_lro", "code": "InternalServerError",
                   "message": "The operation failed (injected)."},
}  # fmt: skip


# Retries as in production, with short waits (the waits are not what is tested).
FAST = RetryPolicy(attempts=4, initial_wait_s=0.01, max_wait_s=0.05, patience_s=5)


@pytest.fixture
def state() -> DesiredState:
    return load_desired_state(DESIRED_STATE)


@pytest.fixture
def fast(make_clients: Callable[..., Clients], ctl: Callable[..., Any]) -> Clients:
    """Clients whose transport retries wait 10 ms, against operations that end at once."""
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    clients = make_clients()
    clients.target.retry_backoff_s = 0.01
    return clients


def full_apply(state: DesiredState, clients: Clients) -> Any:
    return apply(plan(state, clients), state, clients, retry=FAST)


@pytest.mark.parametrize("kind", list(FAULT_KINDS))
def test_faults_on_the_first_write_of_every_type_then_a_rerun_converges(
    state: DesiredState, fast: Clients, ctl: Callable[..., Any], kind: str
) -> None:
    clients = fast
    shift = list(FAULT_KINDS).index(kind)
    rules = [
        # count 1 or 2, alternating over types and kinds; Kubernetes writes once (the
        # client's transport waits seconds before a second retry: slow, not more telling).
        {"method": method, "path": path, **FAULT_KINDS[kind],
         "count": 1 if name.startswith("Kubernetes") else 1 + (i + shift) % 2}
        for i, (name, (method, path)) in enumerate(WRITE_TYPES.items())
        # The Kubernetes API has no long-running operations to fail.
        if not (kind == "failed LRO" and name.startswith("Kubernetes"))
    ]  # fmt: skip
    ctl("POST", "faults", rules)
    counts = {rule["path"]: rule["count"] for rule in rules}
    # A write that fails for good skips what comes after it: applies go on until every
    # type has met its fault, so each (kind, type) cell is exercised.
    for _ in range(3):
        full_apply(state, clients)  # may end incomplete: what matters is the rerun
        unmet = [r["path"] for r in ctl("GET", "faults") if r["count"] == counts[r["path"]]]
        if not unmet:
            break
    assert unmet == [], f"faults never met (those types were not written): {unmet}"
    ctl("DELETE", "faults")  # a second try of a repaired resource may use another verb

    full_apply(state, clients)  # the rerun, without faults
    assert_converged(clients, state, ctl)


def _writes_so_far(ctl: Callable[..., Any]) -> int:
    return len(resource_writes(ctl("GET", "requests")))


@pytest.mark.parametrize("after_writes", [3, 15, 40])
def test_an_apply_killed_mid_way_then_a_rerun_converges(
    state: DesiredState, fast: Clients, ctl: Callable[..., Any], emu: Emulator,
    after_writes: int,
) -> None:  # fmt: skip
    clients = fast
    command = [sys.executable, "-m", "nsc_reconcile", "apply", str(DESIRED_STATE),
               "--emulator", emu.info["arm"], "--yes"]  # fmt: skip
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _writes_so_far(ctl) < after_writes and run.poll() is None:
        assert time.monotonic() < deadline, "the apply made too few writes"
        time.sleep(0.005)
    run.send_signal(signal.SIGKILL)
    run.wait()  # reaped: its lease names a process that is gone
    assert run.returncode == -signal.SIGKILL, "the apply ended before it could be killed"

    full_apply(state, clients)
    assert_converged(clients, state, ctl)
