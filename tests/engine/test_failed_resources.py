"""A failed resource is not done: a provisioningState of Failed, or a PostgreSQL server whose
`state` is not Ready/Stopped/Updating, is a change in the plan, and apply repairs it (real SDK
clients against the emulator; failures made with a failed operation or `PUT _emulator/state`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome, Plan
from tests.paths import DESIRED_STATE

PG = "postgresql_server/nsc-pg-langfuse-dev"
ZONE = "private_dns_zone/privatelink.openai.azure.com"


@pytest.fixture
def state(ctl: Callable[..., Any]) -> DesiredState:
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    return load_desired_state(DESIRED_STATE)


def _plan(state: DesiredState, clients: Clients, target: str) -> Plan:
    return Engine(state, clients).plan(targets=[target])


def _apply(state: DesiredState, clients: Clients, target: str) -> Any:
    engine = Engine(state, clients)
    return engine.apply(engine.plan(targets=[target])).get(target)


def test_a_server_whose_creation_failed_is_a_change_and_apply_repairs_it(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    ctl(
        "POST",
        "faults",
        [{"method": "PUT", "path": "flexibleServers/nsc-pg-langfuse-dev$", "action": "fail_lro",
          "code": "ServerProvisioningFailed", "count": 1}],
    )  # fmt: skip
    assert _apply(state, clients, PG).outcome is Outcome.FAILED

    server = _plan(state, clients, PG).get(PG)
    assert server.action is Action.UPDATE  # not "no change": the server is not done
    assert [(c.path, c.before, c.after) for c in server.changes] == [
        ("properties.provisioningState", "Failed", "Succeeded")
    ]
    assert "Azure reports properties.provisioningState is Failed" in (server.reason or "")

    assert _apply(state, clients, PG).outcome is Outcome.UPDATED
    assert _plan(state, clients, PG).get(PG).action is Action.UNCHANGED


@pytest.mark.parametrize("server_state", ["Disabled", "Dropping", "Inaccessible"])
def test_a_server_not_ready_is_a_change_and_apply_repairs_it(
    server_state: str, state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    assert _apply(state, clients, PG).outcome is Outcome.CREATED
    server_id = _plan(state, clients, PG).get(PG).id
    stored = ctl("GET", f"state?id={server_id}")
    stored["properties"]["state"] = server_state
    ctl("PUT", f"state?id={server_id}", stored)

    server = _plan(state, clients, PG).get(PG)
    assert server.action is Action.UPDATE
    assert [(c.path, c.before, c.after) for c in server.changes] == [
        ("properties.state", server_state, "Ready")
    ]
    ctl("DELETE", "requests")
    assert _apply(state, clients, PG).outcome is Outcome.UPDATED
    sent = [r for r in ctl("GET", "requests") if r["method"] in ("PUT", "PATCH")]
    assert [r["method"] for r in sent] == ["PATCH"]  # no password resent
    assert "administratorLoginPassword" not in str(sent[0]["request_body"])
    assert ctl("GET", f"state?id={server_id}")["properties"]["state"] == "Ready"
    assert _plan(state, clients, PG).get(PG).action is Action.UNCHANGED


@pytest.mark.parametrize("server_state", ["Ready", "Stopped", "Updating"])
def test_ready_stopped_and_updating_servers_are_done(
    server_state: str, state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    _apply(state, clients, PG)
    server_id = _plan(state, clients, PG).get(PG).id
    stored = ctl("GET", f"state?id={server_id}")
    stored["properties"]["state"] = server_state
    ctl("PUT", f"state?id={server_id}", stored)
    assert _plan(state, clients, PG).get(PG).action is Action.UNCHANGED


def test_any_kind_that_failed_is_repaired(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    assert _apply(state, clients, ZONE).outcome is Outcome.CREATED
    zone_id = _plan(state, clients, ZONE).get(ZONE).id
    stored = ctl("GET", f"state?id={zone_id}")
    stored["properties"]["provisioningState"] = "Failed"
    ctl("PUT", f"state?id={zone_id}", stored)

    assert _plan(state, clients, ZONE).get(ZONE).action is Action.UPDATE
    assert _apply(state, clients, ZONE).outcome is Outcome.UPDATED
    assert ctl("GET", f"state?id={zone_id}")["properties"]["provisioningState"] == "Succeeded"
