"""The emulator's built-in role definitions are the ones real Azure listed: each entry of the
recorded roleDefinitions list (Test_Authorization_RoleAssignmentOfBuiltInRole_OnResourceGroup_CRUD,
cut to the roles the product names) is found the way the product looks roles up, through the
real AuthorizationManagementClient (``roleName eq`` at the resource group), with the recorded
GUID, type, description, scopes and permissions (vaultrbac.py grants data actions from them)."""

from __future__ import annotations

from typing import Any

import pytest

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.worlds import SUBSCRIPTION_ID, baseline_ids
from nsc_reconcile.resources.base import to_wire
from tests.conformance.replay import load_recordings

RECORDING = next(
    r for r in load_recordings() if r.name.startswith("Test_Authorization_RoleAssignmentOfBuiltIn")
)
LISTED: list[dict[str, Any]] = next(
    e.response["value"] for e in RECORDING.exchanges if e.step == "list"
)
ROLES = [item for item in LISTED if item["properties"]["type"] == "BuiltInRole"]


def test_the_recorded_list_names_the_products_roles() -> None:
    names = {item["properties"]["roleName"] for item in ROLES}
    assert {"AcrPull", "Key Vault Secrets User", "Cognitive Services OpenAI User"} <= names
    # Recorded: a tenant-scope list names built-in roles without a subscription.
    assert all(
        item["id"] == f"/providers/Microsoft.Authorization/roleDefinitions/{item['name']}"
        for item in ROLES
    )


@pytest.mark.parametrize("recorded", ROLES, ids=[r["properties"]["roleName"] for r in ROLES])
def test_built_in_role_is_as_azure_lists_it(recorded: dict[str, Any], clients: Clients) -> None:
    name = recorded["properties"]["roleName"]
    found = [
        to_wire(d)
        for d in clients.authorization.role_definitions.list(
            baseline_ids()["rg"], filter=f"roleName eq '{name}'"
        )
    ]
    assert len(found) == 1, found
    mine = found[0]
    # At a subscription's scope the id carries that subscription (the form the product sends
    # back in roleDefinitionId, as the recorded assignment PUT does).
    guid = recorded["name"]
    assert mine["id"] == f"/subscriptions/{SUBSCRIPTION_ID}/providers/{mine['type']}/{guid}"
    assert mine["name"] == guid
    for key in ("roleName", "type", "description", "assignableScopes", "permissions"):
        assert mine["properties"].get(key) == recorded["properties"][key], key
