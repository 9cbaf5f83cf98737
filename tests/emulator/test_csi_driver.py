"""The emulated Secrets Store CSI driver (AKS add-on azure-keyvault-secrets-provider), through
the real kubernetes client and azure SDK clients: SecretProviderClass objects are stored and
served like any namespaced object; a Deployment whose pods mount the CSI volume gets its Secret
synced from Key Vault as the workload identity; without the federated credential, without a
grant in the RBAC-enforcing world, or without the add-on, the mount fails (no ready replica,
a FailedMount Event naming the cause) and a later fix is picked up by the kubelet's retry.
"""

from __future__ import annotations

import base64
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from azure.mgmt.msi.models import FederatedIdentityCredential, Identity
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.keyvault import TENANT_ID
from nsc_reconcile.emulator.worlds import (
    AKS_NAME,
    KEY_VAULT_NAME,
    LOCATION,
    RESOURCE_GROUP,
    baseline_ids,
)

Ctl = Callable[..., Any]
IDS = baseline_ids()
GROUP, VERSION, PLURAL = "secrets-store.csi.x-k8s.io", "v1", "secretproviderclasses"
NS = "app"
SECRET = "app-api-key"
VALUE = "s3cr3t-" + uuid.uuid4().hex
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
ROLES = (
    f"/subscriptions/{IDS['rg'].split('/')[2]}/providers/Microsoft.Authorization/roleDefinitions"
)


def _provider_class(client_id: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SecretProviderClass",
        "metadata": {"name": "app-kv"},
        "spec": {
            "provider": "azure",
            "parameters": {
                "usePodIdentity": "false",
                "clientID": client_id,
                "keyvaultName": KEY_VAULT_NAME,
                "tenantId": TENANT_ID,
                "objects": f"array:\n  - |\n    objectName: {SECRET}\n    objectType: secret\n",
            },
            "secretObjects": [
                {
                    "secretName": "app-secrets",
                    "type": "Opaque",
                    "data": [{"objectName": SECRET, "key": "API_KEY"}],
                }
            ],
        },
    }


def _deployment() -> dict[str, Any]:
    labels = {"app": "app"}
    return {
        "metadata": {"name": "app", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, "azure.workload.identity/use": "true"}},
                "spec": {
                    "serviceAccountName": "app",
                    "containers": [
                        {
                            "name": "app",
                            "image": "example.azurecr.io/app:1",
                            "volumeMounts": [
                                {"name": "kv", "mountPath": "/mnt/kv", "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "kv",
                            "csi": {
                                "driver": "secrets-store.csi.k8s.io",
                                "readOnly": True,
                                "volumeAttributes": {"secretProviderClass": "app-kv"},
                            },
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture
def identity(clients: Clients, emu: Emulator, ctl: Ctl) -> dict[str, str]:
    """An identity with a federated credential for ServiceAccount app/app of the cluster."""
    ctl("POST", "config", {"principal_replication_seconds": 0})
    made: Any = clients.msi.user_assigned_identities.create_or_update(
        RESOURCE_GROUP, "id-app", Identity(location=LOCATION)
    )
    emu.world.secrets.set(KEY_VAULT_NAME, SECRET, VALUE)
    return {"client_id": str(made.client_id), "principal_id": str(made.principal_id)}


def _federate(clients: Clients, subject: str = f"system:serviceaccount:{NS}:app") -> None:
    cluster: Any = clients.containerservice.managed_clusters.get(RESOURCE_GROUP, AKS_NAME)
    clients.msi.federated_identity_credentials.create_or_update(
        RESOURCE_GROUP,
        "id-app",
        "fic-app",
        FederatedIdentityCredential(
            issuer=cluster.oidc_issuer_profile.issuer_url,
            subject=subject,
            audiences=["api://AzureADTokenExchange"],
        ),
    )


def _grant(clients: Clients, principal: str) -> None:
    clients.authorization.role_assignments.create(
        f"{IDS['key_vault']}/secrets/{SECRET}",
        str(uuid.uuid4()),
        {
            "properties": {
                "roleDefinitionId": f"{ROLES}/{SECRETS_USER}",
                "principalId": principal,
                "principalType": "ServicePrincipal",
            }
        },
    )


def _deploy(kube: k8s.ApiClient, client_id: str) -> None:
    core: Any = k8s.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": NS}})
    core.create_namespaced_service_account(
        NS,
        {
            "metadata": {
                "name": "app",
                "annotations": {"azure.workload.identity/client-id": client_id},
            }
        },
    )
    k8s.CustomObjectsApi(kube).create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, _provider_class(client_id)
    )
    apps: Any = k8s.AppsV1Api(kube)
    apps.create_namespaced_deployment(NS, _deployment())


def _ready(kube: k8s.ApiClient) -> int:
    apps: Any = k8s.AppsV1Api(kube)
    return int(apps.read_namespaced_deployment("app", NS).status.ready_replicas or 0)


def _failed_mounts(kube: k8s.ApiClient) -> list[str]:
    core: Any = k8s.CoreV1Api(kube)
    events = core.list_namespaced_event(NS).items
    return [str(e.message) for e in events if e.reason == "FailedMount" and e.type == "Warning"]


def test_provider_classes_are_stored_listed_patched_and_deleted(kube: k8s.ApiClient) -> None:
    custom: Any = k8s.CustomObjectsApi(kube)
    core: Any = k8s.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": NS}})
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, _provider_class("c1"))
    found = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "app-kv")
    assert found["spec"]["parameters"]["clientID"] == "c1"
    assert found["metadata"]["resourceVersion"]
    patch = {"spec": {"parameters": {"clientID": "c2"}}}
    custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "app-kv", patch)
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]
    assert [i["spec"]["parameters"]["clientID"] for i in listed] == ["c2"]
    bad = _provider_class("c3")
    bad["metadata"]["name"] = "no-provider"
    del bad["spec"]["provider"]
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, bad)
    assert refused.value.status == 422
    assert "spec.provider" in str(refused.value.body)
    custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "app-kv")
    with pytest.raises(ApiException) as gone:
        custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "app-kv")
    assert gone.value.status == 404


def test_the_mount_syncs_the_secret_as_the_workload_identity(
    identity: dict[str, str], clients: Clients, ctl: Ctl, kube: k8s.ApiClient
) -> None:
    _federate(clients)
    _grant(clients, identity["principal_id"])
    ctl("POST", "config", {"enforce_vault_rbac": True})
    _deploy(kube, identity["client_id"])
    assert _ready(kube) == 2
    secret: Any = k8s.CoreV1Api(kube).read_namespaced_secret("app-secrets", NS)
    assert base64.b64decode(secret.data["API_KEY"]).decode() == VALUE
    assert secret.metadata.labels["secrets-store.csi.k8s.io/managed"] == "true"
    assert _failed_mounts(kube) == []


def test_a_missing_grant_fails_the_mount_until_granted(
    identity: dict[str, str], clients: Clients, ctl: Ctl, kube: k8s.ApiClient
) -> None:
    _federate(clients)
    ctl("POST", "config", {"enforce_vault_rbac": True})
    _deploy(kube, identity["client_id"])
    assert _ready(kube) == 0
    status: Any = k8s.AppsV1Api(kube).read_namespaced_deployment("app", NS).status
    available = next(c for c in status.conditions if c.type == "Available")
    assert available.status == "False"
    messages = _failed_mounts(kube)
    assert len(messages) == 1
    assert "ForbiddenByRbac" in messages[0]
    assert f"objectName:{SECRET}" in messages[0]
    assert identity["principal_id"] in messages[0]  # as the workload identity, not the node
    assert VALUE not in messages[0]
    with pytest.raises(ApiException):
        k8s.CoreV1Api(kube).read_namespaced_secret("app-secrets", NS)
    _grant(clients, identity["principal_id"])
    assert _ready(kube) == 2  # the kubelet retried the mount
    assert len(_failed_mounts(kube)) == 1  # no new event for the same failure


def test_without_a_federated_credential_the_token_exchange_fails(
    identity: dict[str, str], clients: Clients, kube: k8s.ApiClient
) -> None:
    _federate(clients, subject=f"system:serviceaccount:{NS}:other")
    _deploy(kube, identity["client_id"])
    assert _ready(kube) == 0
    (message,) = _failed_mounts(kube)
    assert "AADSTS70021" in message
    assert f"system:serviceaccount:{NS}:app" in message


def test_without_the_add_on_no_driver_mounts(
    identity: dict[str, str], clients: Clients, ctl: Ctl, emu: Emulator, kube: k8s.ApiClient
) -> None:
    _federate(clients)
    cluster = emu.world.get(IDS["aks"])
    assert cluster is not None
    cluster["properties"]["addonProfiles"] = {}
    ctl("PUT", "state?id=" + urllib.parse.quote(IDS["aks"], safe=""), cluster)
    _deploy(kube, identity["client_id"])
    assert _ready(kube) == 0
    (message,) = _failed_mounts(kube)
    assert "driver name secrets-store.csi.k8s.io not found" in message
