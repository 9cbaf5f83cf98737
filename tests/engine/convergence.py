"""What "converged" means after concurrent, faulted or killed applies, as a user checks it:
the plan is clean, every generated secret has exactly one version (generated once), and the
PostgreSQL server accepts the password the vault holds (the emulator's check-password call)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nsc_reconcile.azure import Clients
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState

WRITES = {"PUT", "PATCH", "DELETE"}


def generated_secrets(state: DesiredState) -> list[str]:
    """Names of the secrets the desired state generates."""
    assert state.secrets is not None
    items = state.secrets.items
    return [s.name for s in items if s.source is not None and s.source.generate is not None]


def _vault(clients: Clients, state: DesiredState) -> Any:
    assert state.secrets is not None
    vault = clients.keyvault_mgmt.vaults.get(state.resource_group, state.secrets.vault)
    return clients.secret_client(str(vault.properties.vault_uri))


def versions(clients: Clients, state: DesiredState) -> dict[str, int]:
    """Generated secret -> how many versions the vault holds (data plane listing)."""
    vault = _vault(clients, state)
    return {
        name: len(list(vault.list_properties_of_secret_versions(name)))
        for name in generated_secrets(state)
    }


def pg_accepts_vault_password(
    clients: Clients, state: DesiredState, ctl: Callable[..., Any]
) -> bool:
    """Whether the LangFuse server's admin password is the vault's (never shown)."""
    (server,) = state.postgresql_servers
    password = _vault(clients, state).get_secret(server.admin_password.key_vault_secret).value
    sub = clients.target.subscription_id
    rid = (
        f"/subscriptions/{sub}/resourceGroups/{state.resource_group}/providers/"
        f"Microsoft.DBforPostgreSQL/flexibleServers/{server.name}"
    )
    answer = ctl("POST", "check-password", {"id": rid, "password": password})
    return bool(answer["match"])


def assert_converged(clients: Clients, state: DesiredState, ctl: Callable[..., Any]) -> None:
    """Plan clean, each generated secret one version, PostgreSQL accepts the vault's password."""
    plan = Engine(state, clients).plan()
    assert not plan.has_changes, plan.render("text")
    assert not plan.blocked, plan.render("text")
    counts = versions(clients, state)
    assert counts == dict.fromkeys(counts, 1), f"generated secrets rotated: {counts}"
    assert pg_accepts_vault_password(clients, state, ctl), "PostgreSQL refuses the vault password"


def resource_writes(log: list[dict[str, Any]]) -> list[str]:
    """Writes of a request log, without the apply lease's own record (lease.py)."""
    return [
        f"{e['method']} {e['path']}"
        for e in log
        if e["method"] in WRITES and "nsc-reconcile-lease" not in e["path"]
    ]
