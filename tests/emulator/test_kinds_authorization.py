"""Role assignments and built-in role definitions through the real
AuthorizationManagementClient (azure-mgmt-authorization, api-version 2022-04-01)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization.v2022_04_01.models import (
    RoleAssignmentCreateParameters,
    RoleDefinition,
)
from azure.mgmt.keyvault.models import SecretCreateOrUpdateParameters, SecretProperties
from azure.mgmt.msi.models import Identity

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.arm.ids import parse_path
from nsc_reconcile.emulator.worlds import (
    DATABRICKS_TOKEN_SECRET,
    KEY_VAULT_NAME,
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION_ID,
    baseline_ids,
)
from tests.conftest import control

RG = RESOURCE_GROUP
IDS = baseline_ids()
RG_SCOPE = IDS["rg"]
VAULT = IDS["key_vault"]
ROLES = f"/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions"
SECRETS_USER = f"{ROLES}/4633458b-17de-408a-b874-0445c86b69e6"
READER = f"{ROLES}/acdd72a7-3385-48ef-bd42-f606fba81ae7"
BUILT_IN = {
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Cognitive Services OpenAI User": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
}
USER = "0f4e1c51-95a5-4f5d-9a3c-6d3f7e5a2b10"  # a pre-existing directory user


def _name() -> str:
    return str(uuid.uuid4())


def _params(principal_id: str, role: str = SECRETS_USER, **extra: Any) -> Any:
    # principal_type=None: sent without principalType, as the recording's client did (the
    # SDK model's default is "User").
    extra.setdefault("principal_type", None)
    return RoleAssignmentCreateParameters(
        role_definition_id=role, principal_id=principal_id, **extra
    )


def _code(error: HttpResponseError) -> str | None:
    return error.error.code if error.error is not None else None


@pytest.fixture
def identity(clients: Clients, ctl: Callable[..., Any]) -> str:
    """The principalId of a user-assigned identity, replicated (window 0.05 s, waited out)."""
    ctl("POST", "config", {"principal_replication_seconds": 0.05})
    created = clients.msi.user_assigned_identities.create_or_update(
        RG, "id-agent", Identity(location=LOCATION)
    )
    time.sleep(0.06)
    return str(created.principal_id)


# ---- role definitions ---------------------------------------------------------------------
@pytest.mark.parametrize(("role_name", "guid"), BUILT_IN.items())
def test_built_in_role_found_by_name(clients: Clients, role_name: str, guid: str) -> None:
    found = list(
        clients.authorization.role_definitions.list(RG_SCOPE, filter=f"roleName eq '{role_name}'")
    )
    assert [(r.name, r.role_name, r.role_type) for r in found] == [(guid, role_name, "BuiltInRole")]
    assert found[0].id == f"{ROLES}/{guid}"
    assert clients.authorization.role_definitions.get_by_id(f"{ROLES}/{guid}").role_name == (
        role_name
    )


def test_role_definitions_listed_and_read_only(clients: Clients) -> None:
    listed = {r.role_name for r in clients.authorization.role_definitions.list(RG_SCOPE)}
    assert set(BUILT_IN) <= listed
    assert clients.authorization.role_definitions.get(VAULT, BUILT_IN["Reader"]).role_name == (
        "Reader"
    )
    with pytest.raises(ResourceNotFoundError) as unknown:
        clients.authorization.role_definitions.get(RG_SCOPE, str(uuid.uuid4()))
    assert _code(unknown.value) == "RoleDefinitionDoesNotExist"
    with pytest.raises(HttpResponseError) as refused:
        clients.authorization.role_definitions.create_or_update(
            RG_SCOPE, BUILT_IN["Reader"], RoleDefinition(role_name="Reader")
        )
    assert refused.value.status_code == 400


# ---- role assignments ---------------------------------------------------------------------
def test_new_identity_is_not_found_until_replicated(
    clients: Clients, ctl: Callable[..., Any]
) -> None:
    ctl("POST", "config", {"principal_replication_seconds": 0.3})
    created = clients.msi.user_assigned_identities.create_or_update(
        RG, "id-new", Identity(location=LOCATION)
    )
    started = time.monotonic()
    principal = str(created.principal_id)
    name = _name()
    with pytest.raises(HttpResponseError) as early:
        clients.authorization.role_assignments.create(RG_SCOPE, name, _params(principal))
    assert early.value.status_code == 400
    assert _code(early.value) == "PrincipalNotFound"
    assert str(early.value.message).startswith(  # recorded wording, id without hyphens
        f"(PrincipalNotFound) Principal {principal.replace('-', '')} does not exist in the "
        "directory "
    )
    time.sleep(max(0.0, 0.31 - (time.monotonic() - started)))
    made = clients.authorization.role_assignments.create(RG_SCOPE, name, _params(principal))
    assert made.principal_type == "ServicePrincipal"  # filled by the server, as recorded
    assert made.scope == RG_SCOPE
    assert made.created_by is None  # recorded: null in the create's answer, set on GET
    got = clients.authorization.role_assignments.get(RG_SCOPE, name)
    assert got.created_by is not None
    assert got.role_definition_id == SECRETS_USER


def test_principal_type_skips_the_replication_wait(
    clients: Clients, ctl: Callable[..., Any]
) -> None:
    ctl("POST", "config", {"principal_replication_seconds": 30})
    created = clients.msi.user_assigned_identities.create_or_update(
        RG, "id-new", Identity(location=LOCATION)
    )
    made = clients.authorization.role_assignments.create(
        RG_SCOPE, _name(), _params(str(created.principal_id), principal_type="ServicePrincipal")
    )
    assert made.principal_type == "ServicePrincipal"


def test_sdk_default_principal_type_user_mismatches_an_identity(
    clients: Clients, identity: str
) -> None:
    params = RoleAssignmentCreateParameters(role_definition_id=READER, principal_id=identity)
    assert params.principal_type == "User"  # the 2022-04-01 model's default
    with pytest.raises(HttpResponseError) as refused:
        clients.authorization.role_assignments.create(RG_SCOPE, _name(), params)
    assert _code(refused.value) == "UnmatchedPrincipalType"


def test_unknown_principal_is_not_found(clients: Clients) -> None:
    for principal_type in (None, "ServicePrincipal"):
        with pytest.raises(HttpResponseError) as refused:
            clients.authorization.role_assignments.create(
                RG_SCOPE, _name(), _params(str(uuid.uuid4()), principal_type=principal_type)
            )
        assert _code(refused.value) == "PrincipalNotFound"


def test_directory_principals_and_baseline_cluster_identity(
    clients: Clients, ctl: Callable[..., Any], emu: Emulator
) -> None:
    ctl("POST", "config", {"directory_principals": {USER: "User"}})
    made = clients.authorization.role_assignments.create(RG_SCOPE, _name(), _params(USER))
    assert made.principal_type == "User"
    cluster = emu.world.get(IDS["aks"])
    assert cluster is not None
    kubelet = str(cluster["identity"]["principalId"])  # the baseline AKS's identity
    made = clients.authorization.role_assignments.create(
        IDS["acr"], _name(), _params(kubelet, f"{ROLES}/{BUILT_IN['AcrPull']}")
    )
    assert made.scope == IDS["acr"]
    ctl("POST", "reset")
    assert ctl("GET", "config")["directory_principals"] == {}


def test_duplicate_under_another_name_conflicts(clients: Clients, identity: str) -> None:
    first = _name()
    clients.authorization.role_assignments.create(RG_SCOPE, first, _params(identity))
    again = clients.authorization.role_assignments.create(RG_SCOPE, first, _params(identity))
    assert again.name == first  # the same assignment again: accepted
    with pytest.raises(HttpResponseError) as conflict:
        clients.authorization.role_assignments.create(RG_SCOPE, _name(), _params(identity))
    assert conflict.value.status_code == 409
    assert _code(conflict.value) == "RoleAssignmentExists"
    assert "The role assignment already exists." in str(conflict.value.message)
    other_role = clients.authorization.role_assignments.create(
        RG_SCOPE, _name(), _params(identity, READER)
    )
    assert other_role.role_definition_id == READER


def test_assignment_cannot_change_principal_or_role(clients: Clients, identity: str) -> None:
    name = _name()
    clients.authorization.role_assignments.create(RG_SCOPE, name, _params(identity))
    with pytest.raises(HttpResponseError) as refused:
        clients.authorization.role_assignments.create(RG_SCOPE, name, _params(identity, READER))
    assert _code(refused.value) == "RoleAssignmentUpdateNotPermitted"


def test_get_missing_delete_and_get_after_delete(clients: Clients, identity: str) -> None:
    assignments = clients.authorization.role_assignments
    with pytest.raises(ResourceNotFoundError) as never:
        assignments.get(RG_SCOPE, _name())
    assert _code(never.value) == "RoleAssignmentNotFound"
    name = _name()
    assignments.create(RG_SCOPE, name, _params(identity))
    deleted = assignments.delete(RG_SCOPE, name)
    assert deleted is not None
    assert deleted.name == name
    assert deleted.principal_id == identity
    with pytest.raises(ResourceNotFoundError) as gone:
        assignments.get(RG_SCOPE, name)
    assert _code(gone.value) == "RoleAssignmentNotFound"
    assert gone.value.error is not None
    assert gone.value.error.message == f"The role assignment '{name}' is not found."
    assert assignments.delete(RG_SCOPE, name) is None  # 204


def test_refused_bodies(clients: Clients, identity: str) -> None:
    with pytest.raises(HttpResponseError) as not_guid:
        clients.authorization.role_assignments.create(RG_SCOPE, "agent-reader", _params(identity))
    assert _code(not_guid.value) == "InvalidRoleAssignmentId"
    with pytest.raises(HttpResponseError) as unknown_role:
        clients.authorization.role_assignments.create(
            RG_SCOPE, _name(), _params(identity, f"{ROLES}/{uuid.uuid4()}")
        )
    assert _code(unknown_role.value) == "RoleDefinitionDoesNotExist"


def test_assignment_at_key_vault_and_secret_scopes(clients: Clients, identity: str) -> None:
    clients.keyvault_mgmt.secrets.create_or_update(
        RG,
        KEY_VAULT_NAME,
        "openai-key",
        SecretCreateOrUpdateParameters(properties=SecretProperties(value="s3cret")),
    )
    secret = f"{VAULT}/secrets/openai-key"
    officer = f"{ROLES}/{BUILT_IN['Key Vault Secrets Officer']}"
    at_vault = clients.authorization.role_assignments.create(VAULT, _name(), _params(identity))
    at_secret = clients.authorization.role_assignments.create(
        secret, _name(), _params(identity, officer)
    )
    assert at_vault.scope == VAULT
    assert at_secret.scope == secret
    assert at_secret.id == f"{secret}/providers/Microsoft.Authorization/roleAssignments/" + str(
        at_secret.name
    )
    assignments = clients.authorization.role_assignments
    assert assignments.get(secret, str(at_secret.name)).role_definition_id == officer
    at_group = assignments.create(RG_SCOPE, _name(), _params(identity, READER))
    # No filter: at, above and below the scope; atScope(): at or above only.
    below = {a.name for a in assignments.list_for_resource_group(RG)}
    assert below == {at_group.name, at_vault.name, at_secret.name}
    at_or_above = {a.name for a in assignments.list_for_scope(VAULT, filter="atScope()")}
    assert at_or_above == {at_group.name, at_vault.name}
    mine = assignments.list_for_scope(RG_SCOPE, filter=f"principalId eq '{identity}'")
    assert {a.name for a in mine} == below
    nobody = assignments.list_for_scope(RG_SCOPE, filter=f"principalId eq '{uuid.uuid4()}'")
    assert list(nobody) == []
    # Deleting the secret's assignment leaves the others.
    assignments.delete(secret, str(at_secret.name))
    assert {a.name for a in assignments.list_for_resource_group(RG)} == below - {at_secret.name}


def test_assignment_at_a_seeded_secret_scope(clients: Clients, identity: str) -> None:
    secret = f"{VAULT}/secrets/{DATABRICKS_TOKEN_SECRET}"
    made = clients.authorization.role_assignments.create(secret, _name(), _params(identity))
    assert made.scope == secret


# ---- control ------------------------------------------------------------------------------
def test_replication_window_config(emu: Emulator) -> None:
    assert control(emu, "GET", "config")["principal_replication_seconds"] == 0.5
    control(emu, "POST", "config", {"principal_replication_seconds": 2})
    assert control(emu, "GET", "config")["principal_replication_seconds"] == 2.0
    for bad in ({"principal_replication_seconds": -1}, {"directory_principals": {"x": "User"}}):
        with pytest.raises(Exception, match="400"):
            control(emu, "POST", "config", bad)
    control(emu, "POST", "reset")
    assert control(emu, "GET", "config")["principal_replication_seconds"] == 0.5


# ---- ids ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "scope",
    [
        f"/subscriptions/{SUBSCRIPTION_ID}",
        RG_SCOPE,
        VAULT,
        f"{VAULT}/secrets/{DATABRICKS_TOKEN_SECRET}",
        f"{IDS['rg']}/providers/Microsoft.Storage/storageAccounts/st1",
    ],
)
def test_extension_resource_paths_parse(scope: str) -> None:
    name = "ed3c9f84-ae20-5aea-8602-58ed2eeffef1"
    rid = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    parsed = parse_path(rid, "PUT")
    assert (parsed.what, parsed.scope, parsed.arm_type) == (
        "resource",
        scope,
        "Microsoft.Authorization/roleAssignments",
    )
    assert (parsed.names, parsed.parent_id, parsed.resource_id) == ((name,), scope, rid)
    listing = parse_path(f"/{scope}/providers/Microsoft.Authorization/roleAssignments", "GET")
    assert (listing.what, listing.scope) == ("collection", scope)
