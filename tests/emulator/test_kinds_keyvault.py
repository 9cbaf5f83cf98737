"""Key Vault control plane (vaults, vaults/secrets) seen through ARM and the data plane."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.keyvault import models as kv

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.worlds import (
    DATABRICKS_TOKEN_SECRET,
    DATABRICKS_TOKEN_VALUE,
    KEY_VAULT_NAME,
    RESOURCE_GROUP,
    TENANT_ID,
)

RG = RESOURCE_GROUP


def _vault(public: str = "Enabled") -> kv.VaultCreateOrUpdateParameters:
    return kv.VaultCreateOrUpdateParameters(
        location="koreacentral",
        properties=kv.VaultProperties(
            tenant_id=TENANT_ID,
            sku=kv.Sku(family="A", name="standard"),
            enable_rbac_authorization=True,
            public_network_access=public,
        ),
    )


def test_vault_create_reports_a_reachable_vault_uri(clients: Clients) -> None:
    vault: Any = clients.keyvault_mgmt.vaults.begin_create_or_update(
        RG, "nsc-kv-test", _vault()
    ).result()
    assert vault.properties.vault_uri.startswith("https://")
    assert vault.properties.enable_soft_delete is True
    assert vault.properties.enable_rbac_authorization is True
    assert vault.properties.network_acls.default_action == "Allow"
    secrets: Any = clients.secret_client(vault.properties.vault_uri)
    secrets.set_secret("probe", "value-1")
    assert secrets.get_secret("probe").value == "value-1"


def test_vault_names_are_global(clients: Clients) -> None:
    clients.resource.resource_groups.create_or_update("rg-other", {"location": "koreacentral"})
    with pytest.raises(ResourceExistsError) as taken:
        clients.keyvault_mgmt.vaults.begin_create_or_update(
            "rg-other", KEY_VAULT_NAME, _vault()
        ).result()
    assert taken.value.error is not None
    assert taken.value.error.code == "VaultAlreadyExists"


def test_control_plane_secret_write_is_readable_through_secret_client(clients: Clients) -> None:
    vault: Any = clients.keyvault_mgmt.vaults.begin_create_or_update(
        RG, "nsc-kv-test", _vault()
    ).result()
    written: Any = clients.keyvault_mgmt.secrets.create_or_update(
        RG,
        "nsc-kv-test",
        "azure-openai-api-key",
        kv.SecretCreateOrUpdateParameters(
            properties=kv.SecretProperties(value="sk-emulated", content_type="text/plain")
        ),
    )
    # As on Azure, ARM never returns the value.
    assert written.properties.value is None
    assert written.properties.secret_uri.endswith("/secrets/azure-openai-api-key")
    version = written.properties.secret_uri_with_version.rsplit("/", 1)[1]
    got: Any = clients.keyvault_mgmt.secrets.get(RG, "nsc-kv-test", "azure-openai-api-key")
    assert got.properties.value is None
    assert got.properties.attributes.enabled is True
    secret: Any = clients.secret_client(vault.properties.vault_uri).get_secret(
        "azure-openai-api-key"
    )
    assert secret.value == "sk-emulated"
    assert secret.properties.version == version
    assert secret.properties.content_type == "text/plain"
    with pytest.raises(ResourceNotFoundError):
        clients.keyvault_mgmt.secrets.get(RG, "nsc-kv-test", "missing")


def test_baseline_vault_holds_the_databricks_token(clients: Clients) -> None:
    vault: Any = clients.keyvault_mgmt.vaults.get(RG, KEY_VAULT_NAME)
    assert vault.properties.public_network_access == "Disabled"
    secret: Any = clients.secret_client(vault.properties.vault_uri).get_secret(
        DATABRICKS_TOKEN_SECRET
    )
    assert secret.value == DATABRICKS_TOKEN_VALUE


def test_invalid_vault_name_is_refused(clients: Clients) -> None:
    with pytest.raises(HttpResponseError) as refused:
        clients.keyvault_mgmt.vaults.begin_create_or_update(RG, "kv--double", _vault()).result()
    assert refused.value.status_code == 400
