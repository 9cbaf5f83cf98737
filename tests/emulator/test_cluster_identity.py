"""The AKS cluster's kubelet identity, OIDC issuer, workload identity and Key Vault CSI add-on,
as the real ContainerServiceClient reads them."""

# The SDK overloads type bodies as models or IO; the clients accept JSON dicts at runtime.
# mypy: disable-error-code="call-overload"
from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.worlds import AKS_NAME, LOCATION, RESOURCE_GROUP, baseline_ids

RG = RESOURCE_GROUP
IDS = baseline_ids()
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ISSUER = re.compile(
    rf"^https://{LOCATION}\.oic\.prod-aks\.azure\.com/[0-9a-f-]{{36}}/[0-9a-f-]{{36}}/$"
)


def test_baseline_kubelet_identity_exists_and_can_be_granted(clients: Clients) -> None:
    cluster: Any = clients.containerservice.managed_clusters.get(RG, AKS_NAME)
    kubelet = cluster.identity_profile["kubeletidentity"]
    assert kubelet.resource_id.endswith(f"/userAssignedIdentities/{AKS_NAME}-agentpool")
    assert f"/resourcegroups/MC_{RG}_{AKS_NAME}_{LOCATION}/" in kubelet.resource_id
    # The identity is a real resource of the world, with the same ids.
    parts = kubelet.resource_id.split("/")
    identity: Any = clients.msi.user_assigned_identities.get(parts[4], parts[-1])
    assert identity.principal_id == kubelet.object_id
    assert identity.client_id == kubelet.client_id
    # ... and a principal role assignments accept (AcrPull on the registry).
    made = clients.authorization.role_assignments.create(
        IDS["acr"],
        str(uuid.uuid4()),
        {
            "properties": {
                "roleDefinitionId": f"/subscriptions/{IDS['rg'].split('/')[2]}/providers/"
                f"Microsoft.Authorization/roleDefinitions/{ACR_PULL}",
                "principalId": kubelet.object_id,
                "principalType": "ServicePrincipal",
            }
        },
    )
    assert made.principal_id == kubelet.object_id


def test_baseline_oidc_workload_identity_and_csi_addon(clients: Clients) -> None:
    cluster: Any = clients.containerservice.managed_clusters.get(RG, AKS_NAME)
    assert cluster.oidc_issuer_profile.enabled is True
    assert ISSUER.match(cluster.oidc_issuer_profile.issuer_url), cluster.oidc_issuer_profile
    assert cluster.security_profile.workload_identity.enabled is True
    csi = cluster.addon_profiles["azureKeyvaultSecretsProvider"]
    assert csi.enabled is True
    assert csi.config["enableSecretRotation"] == "false"
    assert csi.identity.resource_id.endswith(
        f"/userAssignedIdentities/azurekeyvaultsecretsprovider-{AKS_NAME}"
    )
    again: Any = clients.containerservice.managed_clusters.get(RG, AKS_NAME)
    assert again.oidc_issuer_profile.issuer_url == cluster.oidc_issuer_profile.issuer_url


def _cluster_body(**props: Any) -> dict[str, Any]:
    return {
        "location": LOCATION,
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "dnsPrefix": "nsc-aks-two",
            "agentPoolProfiles": [{"name": "system", "count": 1, "mode": "System"}],
            **props,
        },
    }


def test_new_cluster_without_oidc_then_enabled(clients: Clients) -> None:
    aks = clients.containerservice.managed_clusters
    plain: Any = aks.begin_create_or_update(RG, "nsc-aks-two", _cluster_body()).result()
    assert plain.oidc_issuer_profile.enabled is False
    assert plain.oidc_issuer_profile.issuer_url is None
    assert not plain.addon_profiles
    assert plain.identity_profile["kubeletidentity"].object_id
    with pytest.raises(HttpResponseError) as refused:
        aks.begin_create_or_update(
            RG,
            "nsc-aks-two",
            _cluster_body(securityProfile={"workloadIdentity": {"enabled": True}}),
        ).result()
    assert "OIDC issuer" in str(refused.value.message)
    enabled: Any = aks.begin_create_or_update(
        RG,
        "nsc-aks-two",
        _cluster_body(
            oidcIssuerProfile={"enabled": True},
            securityProfile={"workloadIdentity": {"enabled": True}},
        ),
    ).result()
    assert ISSUER.match(enabled.oidc_issuer_profile.issuer_url)
    assert enabled.security_profile.workload_identity.enabled is True
    assert (
        enabled.identity_profile["kubeletidentity"].object_id
        == plain.identity_profile["kubeletidentity"].object_id
    )
