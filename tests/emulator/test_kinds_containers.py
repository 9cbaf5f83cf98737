"""AKS and ACR reads and credentials through the real SDK clients."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerregistry import models as acr

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import ACR_NAME, AKS_NAME, RESOURCE_GROUP

RG = RESOURCE_GROUP


def test_baseline_private_cluster_reads(clients: Clients) -> None:
    cluster: Any = clients.containerservice.managed_clusters.get(RG, AKS_NAME)
    assert cluster.api_server_access_profile.enable_private_cluster is True
    assert cluster.private_fqdn.endswith(".privatelink.koreacentral.azmk8s.io")
    assert cluster.kubernetes_version
    assert cluster.agent_pool_profiles[0].vnet_subnet_id.endswith("/subnets/snet-aks")
    assert cluster.network_profile.network_plugin == "azure"
    assert cluster.provisioning_state == "Succeeded"
    with pytest.raises(ResourceNotFoundError):
        clients.containerservice.managed_clusters.get(RG, "missing")


def test_user_credentials_point_at_the_emulator_kubernetes_plane(
    emu: Emulator, clients: Clients
) -> None:
    creds: Any = clients.containerservice.managed_clusters.list_cluster_user_credentials(
        RG, AKS_NAME
    )
    raw = creds.kubeconfigs[0].value
    # The SDK base64-decodes CredentialResult.value; accept both forms.
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        config = json.loads(text)
    except ValueError:
        config = json.loads(base64.b64decode(text))
    assert config["clusters"][0]["cluster"]["server"] == emu.info["kubernetes"]
    assert config["users"][0]["user"]["token"]
    kubeconfig: Any = clients.kubeconfig(RG, AKS_NAME)
    assert kubeconfig["current-context"] == AKS_NAME


def test_registry_login_server_and_name_rules(clients: Clients) -> None:
    registry: Any = clients.containerregistry.registries.get(RG, ACR_NAME)
    assert registry.login_server == f"{ACR_NAME}.azurecr.io"
    assert registry.public_network_access == "Disabled"
    created: Any = clients.containerregistry.registries.begin_create(
        RG, "nscacrtest01", acr.Registry(location="koreacentral", sku=acr.Sku(name="Basic"))
    ).result()
    assert created.login_server == "nscacrtest01.azurecr.io"
    assert created.admin_user_enabled is False
    with pytest.raises(HttpResponseError) as bad_name:
        clients.containerregistry.registries.begin_create(
            RG, "acr-dash", acr.Registry(location="koreacentral", sku=acr.Sku(name="Basic"))
        ).result()
    assert bad_name.value.status_code == 400
