"""Timeouts on every call and every long-running operation, with a clear message; a private
vault whose data plane cannot be reached (no route, or 403 ForbiddenByFirewall) falls back to
the control plane in seconds. "Unreachable" is a loopback socket whose accept queue is full:
the kernel drops the SYN, exactly as for a private IP with no route (loopback only)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import ApplyResult, Outcome
from nsc_reconcile.retry import RetryPolicy
from tests.paths import DESIRED_STATE

SETTING = "key_vault_secret/agent-execute-mode"
ZONE = "private_dns_zone/privatelink.openai.azure.com"
FAST = RetryPolicy(attempts=2, initial_wait_s=0.01, max_wait_s=0.05)
# Not a timing assertion: a bound on "hangs" (without timeouts these calls wait minutes).
HANG = 60.0


@pytest.fixture
def state() -> DesiredState:
    return load_desired_state(DESIRED_STATE)


@pytest.fixture
def unreachable() -> Iterator[str]:
    """``127.0.0.1:PORT`` that never completes a TCP handshake."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    filler = socket.create_connection(listener.getsockname()[:2], timeout=1)
    try:
        yield address
    finally:
        filler.close()
        listener.close()


def apply_within_bound(engine: Engine, targets: list[str]) -> ApplyResult:
    """Plan and apply in a thread; fail the test if that does not end within HANG seconds."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = engine.apply(engine.plan(targets))
        except BaseException as error:  # reported below
            box["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG)
    assert not worker.is_alive(), f"apply of {targets} still hanging after {HANG:.0f} s"
    if "error" in box:
        raise box["error"]
    result: ApplyResult = box["result"]
    return result


def arm_secret_puts(ctl: Callable[..., Any]) -> list[str]:
    return [
        r["path"]
        for r in ctl("GET", "requests")
        if r["plane"] == "arm"
        and r["method"] == "PUT"
        and "/vaults/nsc-kv-dev/secrets/" in r["path"]
    ]


def test_an_unreachable_private_vault_falls_back_to_the_control_plane_in_seconds(
    state: DesiredState, make_clients: Callable[..., Clients], ctl: Callable[..., Any],
    unreachable: str,
) -> None:  # fmt: skip
    clients = make_clients()
    clients.target.vault_url = lambda _uri: f"https://{unreachable}/"
    clients.target.vault_connect_timeout_s = 1.0
    result = apply_within_bound(Engine(state, clients, retry=FAST), [SETTING])
    assert result.get(SETTING).outcome is Outcome.CREATED, result.render()
    assert any(p.endswith("/secrets/agent-execute-mode") for p in arm_secret_puts(ctl))


def test_403_forbidden_by_firewall_also_takes_the_control_plane(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    # The data plane's path (the ARM path of the secret ends the same way but starts else).
    ctl("POST", "faults", {"path": "^/secrets/agent-execute-mode", "status": 403,
                           "code": "Forbidden", "inner_code": "ForbiddenByFirewall",
                           "message": "Client address is not authorized and caller is not a "
                           "trusted service.", "count": None})  # fmt: skip
    result = Engine(state, clients, retry=FAST).apply(Engine(state, clients).plan([SETTING]))
    assert result.get(SETTING).outcome is Outcome.CREATED, result.render()
    assert any(p.endswith("/secrets/agent-execute-mode") for p in arm_secret_puts(ctl))


def test_an_answer_that_never_comes_is_a_read_timeout_with_a_clear_message(
    state: DesiredState, make_clients: Callable[..., Clients], ctl: Callable[..., Any]
) -> None:
    clients = make_clients(retry_total=0)
    clients.target.read_timeout_s = 0.3
    ctl("POST", "config", {"latency_ms": 1500})
    plan = Engine(state, clients, retry=FAST).plan([ZONE])
    reason = plan.get(ZONE).reason or ""
    assert "read timeout" in reason
    assert "did not answer in time" in reason


def test_a_long_running_operation_has_a_deadline(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    ctl("POST", "config", {"lro_seconds": {"Microsoft.Network/privateDnsZones": 3}})
    policy = RetryPolicy(attempts=2, initial_wait_s=0.01, max_wait_s=0.05, operation_timeout_s=1)
    engine = Engine(state, clients, retry=policy)
    result = apply_within_bound(engine, [ZONE])
    zone = result.get(ZONE)
    assert zone.outcome is Outcome.FAILED, result.render()
    assert "did not finish within 1 s (operation timeout)" in (zone.detail or "")
    assert "re-run apply later" in (zone.detail or "")


def test_an_unreachable_kubernetes_api_server_fails_instead_of_hanging(
    make_clients: Callable[..., Clients], unreachable: str
) -> None:
    clients = make_clients(retry_total=0)
    clients.target.kubernetes_url = f"http://{unreachable}"
    clients.target.connect_timeout_s = 0.5
    api = clients.kubernetes_api_client("2dt-final-team4", "nsc-aks-dev")
    box: dict[str, BaseException] = {}

    def call() -> None:
        try:
            api.call_api("GET", f"http://{unreachable}/api/v1/namespaces/langfuse")
        except BaseException as error:  # expected: the connect timeout
            box["error"] = error

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(HANG)
    assert not worker.is_alive(), f"a Kubernetes API call still hanging after {HANG:.0f} s"
    assert "timed out" in str(box["error"])
