"""The RBAC-enforcing world (``enforce_vault_rbac``): the Key Vault data plane answers each
caller, named by its token's ``oid``, by its role assignments, through the real clients."""

# mypy: disable-error-code="call-overload"

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient

from nsc_reconcile.azure import Clients, StaticTokenCredential
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import (
    DATABRICKS_TOKEN_SECRET,
    DATABRICKS_TOKEN_VALUE,
    KEY_VAULT_NAME,
    baseline_ids,
)

IDS = baseline_ids()
ROLES = (
    f"/subscriptions/{IDS['rg'].split('/')[2]}/providers/Microsoft.Authorization/roleDefinitions"
)
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"


def token_for(object_id: str) -> str:
    """An unsigned JWT naming ``object_id``, as an Entra ID access token does."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    payload = {"oid": object_id, "appid": str(uuid.uuid5(uuid.NAMESPACE_OID, object_id))}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}.sig"


@pytest.fixture
def vault_as(emu: Emulator) -> Callable[[str], SecretClient]:
    """``vault_as(object_id)``: a SecretClient for the baseline vault as that principal."""
    url = emu.world.secrets.vault_url(KEY_VAULT_NAME)

    def build(object_id: str) -> SecretClient:
        return SecretClient(
            vault_url=url,
            credential=StaticTokenCredential(token_for(object_id)),
            connection_verify=emu.info["ca_cert"],
            verify_challenge_resource=False,
        )

    return build


def _grant(
    clients: Clients, scope: str, principal: str, role: str, kind: str = "ServicePrincipal"
) -> None:
    clients.authorization.role_assignments.create(
        scope,
        str(uuid.uuid4()),
        {
            "properties": {
                "roleDefinitionId": f"{ROLES}/{role}",
                "principalId": principal,
                "principalType": kind,
            }
        },
    )


def _inner(error: HttpResponseError) -> str:
    assert error.response is not None
    return str(json.loads(error.response.text())["error"]["innererror"]["code"])


@pytest.fixture
def consumer(ctl: Callable[..., Any]) -> str:
    principal = str(uuid.uuid4())
    ctl("POST", "config", {"directory_principals": {principal: "ServicePrincipal"}})
    return principal


def test_without_the_flag_any_token_reads(vault_as: Callable[[str], SecretClient]) -> None:
    secret = vault_as(str(uuid.uuid4())).get_secret(DATABRICKS_TOKEN_SECRET)
    assert secret.value == DATABRICKS_TOKEN_VALUE


def test_consumer_without_a_grant_is_forbidden_by_rbac(
    ctl: Callable[..., Any], vault_as: Callable[[str], SecretClient], consumer: str
) -> None:
    assert ctl("POST", "config", {"enforce_vault_rbac": True})["enforce_vault_rbac"] is True
    with pytest.raises(HttpResponseError) as refused:
        vault_as(consumer).get_secret(DATABRICKS_TOKEN_SECRET)
    assert refused.value.status_code == 403
    assert _inner(refused.value) == "ForbiddenByRbac"
    message = str(refused.value.message)
    assert f"oid={consumer}" in message
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in message
    assert DATABRICKS_TOKEN_VALUE not in str(refused.value)
    ctl("POST", "reset")
    assert ctl("GET", "config")["enforce_vault_rbac"] is False


def test_secrets_user_on_one_secret_reads_only_that_secret(
    ctl: Callable[..., Any],
    clients: Clients,
    vault_as: Callable[[str], SecretClient],
    consumer: str,
) -> None:
    ctl("POST", "config", {"enforce_vault_rbac": True})
    _grant(clients, f"{IDS['key_vault']}/secrets/{DATABRICKS_TOKEN_SECRET}", consumer, SECRETS_USER)
    vault = vault_as(consumer)
    assert vault.get_secret(DATABRICKS_TOKEN_SECRET).value == DATABRICKS_TOKEN_VALUE
    with pytest.raises(HttpResponseError) as write:
        vault.set_secret(DATABRICKS_TOKEN_SECRET, "new")  # Secrets User cannot set
    assert _inner(write.value) == "ForbiddenByRbac"
    assert "setSecret/action" in str(write.value.message)
    with pytest.raises(HttpResponseError) as other:
        vault.get_secret("some-other-secret")
    assert _inner(other.value) == "ForbiddenByRbac"


def test_owner_is_not_a_data_plane_role_but_officer_at_the_rg_is(
    ctl: Callable[..., Any],
    clients: Clients,
    vault_as: Callable[[str], SecretClient],
    consumer: str,
) -> None:
    ctl("POST", "config", {"enforce_vault_rbac": True})
    _grant(clients, IDS["key_vault"], consumer, OWNER)
    with pytest.raises(HttpResponseError) as refused:
        vault_as(consumer).get_secret(DATABRICKS_TOKEN_SECRET)
    assert _inner(refused.value) == "ForbiddenByRbac"
    _grant(clients, IDS["rg"], consumer, SECRETS_OFFICER)
    vault = vault_as(consumer)
    vault.set_secret("written-by-officer", "v1")
    assert vault.get_secret("written-by-officer").value == "v1"
    assert DATABRICKS_TOKEN_SECRET in {p.name for p in vault.list_properties_of_secrets()}


def test_default_token_is_the_emulator_caller(
    ctl: Callable[..., Any], clients: Clients, emu: Emulator
) -> None:
    """The product's non-JWT token is the signed-in user: it too needs a data role."""
    ctl("POST", "config", {"enforce_vault_rbac": True})
    vault = clients.secret_client(emu.world.secrets.vault_url(KEY_VAULT_NAME))
    with pytest.raises(HttpResponseError) as refused:
        vault.get_secret(DATABRICKS_TOKEN_SECRET)
    assert _inner(refused.value) == "ForbiddenByRbac"
    caller = "6f2c3c2e-0000-4000-8000-00000000e001"
    assert f"oid={caller}" in str(refused.value.message)
    _grant(clients, IDS["key_vault"], caller, SECRETS_OFFICER, "User")
    assert vault.get_secret(DATABRICKS_TOKEN_SECRET).value == DATABRICKS_TOKEN_VALUE
