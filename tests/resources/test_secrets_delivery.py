"""LangFuse's workload identity and `secrets_delivery: csi`, through the product, the real SDK
and kubernetes clients against the emulator: the repository's desired state with an overlay
(a LangFuse identity, its federated credential, Key Vault Secrets User on each key LangFuse
reads, `secrets_delivery: csi`). The plan shows the SecretProviderClass and no Secret values;
apply makes the emulated CSI driver sync the Secret from Key Vault as the identity and LangFuse
becomes ready; a rerun writes nothing; in the RBAC-enforcing world a missing grant fails the
mount naming the secret; a cluster without the add-on blocks the workload. `identity` alone
(tool delivery) annotates the ServiceAccount and labels the pods.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from ruamel.yaml import YAML

import nsc_reconcile
from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import AKS_NAME, KEY_VAULT_NAME
from nsc_reconcile.errors import DesiredStateError
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Plan, ResourcePlan
from nsc_reconcile.resources.langfuse_manifests import secret_keys
from tests.conftest import write_requests
from tests.csi_state import NS, csi_overlay, identity_properties, rollout_restart

Ctl = Callable[..., Any]
WORKLOAD = "kubernetes_workload/langfuse"
SPC = "langfuse-key-vault"
GROUP = "secrets-store.csi.x-k8s.io"
ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"


def _clients(emu: Emulator) -> Clients:
    return Clients(AzureTarget.for_emulator(emu.info["arm"]))


def _workload(plan: Plan) -> ResourcePlan:
    return next(r for r in plan.resources if r.address == WORKLOAD)


def _apply(state: DesiredState, emu: Emulator) -> Plan:
    plan = nsc_reconcile.plan(state, _clients(emu))
    result = nsc_reconcile.apply(plan, state, _clients(emu))
    assert result.ok, result.render()
    return plan


def _vault_values(emu: Emulator, state: DesiredState) -> dict[str, str]:
    """Secret key -> the Key Vault value it must hold (kept in memory, never printed)."""
    assert state.langfuse is not None
    return {
        key: str(emu.world.secrets.get(KEY_VAULT_NAME, name)["value"])
        for key, name in secret_keys(state.langfuse).items()
    }


@pytest.fixture
def csi_state(ctl: Ctl, tmp_path: Path) -> DesiredState:
    ctl("POST", "config", {"lro_seconds": {"*": 0}, "principal_replication_seconds": 0})
    return load_desired_state(csi_overlay(tmp_path))


def test_plan_shows_the_provider_class_and_no_secret_values(
    csi_state: DesiredState, emu: Emulator
) -> None:
    plan = nsc_reconcile.plan(csi_state, _clients(emu))
    workload = _workload(plan)
    assert workload.action is Action.CREATE
    paths = {c.path: c.after for c in workload.changes}
    assert paths[f"SecretProviderClass/{SPC}.spec.provider"] == "azure"
    assert paths[f"SecretProviderClass/{SPC}.spec.parameters.keyvaultName"] == KEY_VAULT_NAME
    objects = str(paths[f"SecretProviderClass/{SPC}.spec.parameters.objects"])
    assert "objectName: langfuse-salt" in objects
    volume = "Deployment/langfuse.spec.template.spec.volumes[key-vault].csi"
    assert paths[f"{volume}.driver"] == "secrets-store.csi.k8s.io"
    assert paths[f"{volume}.volumeAttributes.secretProviderClass"] == SPC
    # The tool writes no Secret: no Secret object, no values, no versions annotation.
    assert not [p for p in paths if p.startswith("Secret/")]
    rendered = plan.render()
    for value in _vault_values_after_seed(emu):
        assert value not in rendered
    assert "known after apply" in rendered  # the identity's client id, before it exists


def _vault_values_after_seed(emu: Emulator) -> list[str]:
    """Values the seed world's vault already holds (the overlay's secrets are made by apply)."""
    return [str(r["value"]) for r in emu.world.secrets.list(KEY_VAULT_NAME) if r.get("value")]


def test_apply_syncs_the_secret_as_the_identity_then_rerun_writes_nothing(
    csi_state: DesiredState, emu: Emulator, ctl: Ctl, kube: k8s.ApiClient
) -> None:
    _apply(csi_state, emu)
    core: Any = k8s.CoreV1Api(kube)
    apps: Any = k8s.AppsV1Api(kube)
    client_id = identity_properties(emu)["clientId"]
    account = core.read_namespaced_service_account("langfuse", NS)
    assert account.metadata.annotations["azure.workload.identity/client-id"] == client_id
    spc: Any = k8s.CustomObjectsApi(kube).get_namespaced_custom_object(
        GROUP, "v1", NS, "secretproviderclasses", SPC
    )
    assert spc["spec"]["parameters"]["clientID"] == client_id
    # The CSI driver synced the Secret the pods reference, with the Key Vault values.
    secret = core.read_namespaced_secret("langfuse-secrets", NS)
    assert secret.metadata.labels["secrets-store.csi.k8s.io/managed"] == "true"
    synced = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    assert synced == _vault_values(emu, csi_state)  # compared, never printed
    web = apps.read_namespaced_deployment("langfuse", NS)
    assert web.status.ready_replicas == 1
    assert web.spec.template.metadata.labels["azure.workload.identity/use"] == "true"
    assert emu.langfuse is not None
    running = emu.langfuse.web(NS, "langfuse")
    assert running is not None
    assert running.pods is not None
    # A rerun: nothing to change, nothing written.
    ctl("DELETE", "requests")
    again = nsc_reconcile.plan(csi_state, _clients(emu))
    assert _workload(again).action is Action.UNCHANGED, _workload(again).changes
    result = nsc_reconcile.apply(again, csi_state, _clients(emu))
    assert result.ok, result.render()
    assert write_requests(ctl) == []


def test_a_missing_grant_fails_the_mount_naming_the_secret(
    csi_state: DesiredState, emu: Emulator, ctl: Ctl, kube: k8s.ApiClient
) -> None:
    _apply(csi_state, emu)
    ctl("POST", "config", {"enforce_vault_rbac": True})
    core: Any = k8s.CoreV1Api(kube)
    apps: Any = k8s.AppsV1Api(kube)
    rollout_restart(kube, "langfuse", "2025-01-01T00:00:00Z")  # every grant there: mounts
    assert apps.read_namespaced_deployment("langfuse", NS).status.ready_replicas == 1
    principal = identity_properties(emu)["principalId"]
    salt = next(
        a
        for a in emu.world.list_by_type(ASSIGNMENTS)
        if a["properties"]["principalId"] == principal
        and a["properties"]["scope"].endswith("/secrets/langfuse-salt")
    )
    ctl("DELETE", "state?id=" + urllib.parse.quote(salt["id"], safe=""))
    rollout_restart(kube, "langfuse", "2025-01-02T00:00:00Z")
    web = apps.read_namespaced_deployment("langfuse", NS)
    assert web.status.ready_replicas == 0
    available = next(c for c in web.status.conditions if c.type == "Available")
    assert available.status == "False"
    assert "ForbiddenByRbac" in available.message
    assert "langfuse-salt" in available.message
    events = core.list_namespaced_event(NS).items
    failed = [
        e for e in events if e.reason == "FailedMount" and e.involved_object.name == "langfuse"
    ]
    assert failed
    assert "ForbiddenByRbac" in failed[-1].message
    assert "langfuse-salt" in failed[-1].message
    for value in _vault_values(emu, csi_state).values():
        assert value not in available.message
    # The worker kept its pods (mounted before the grant went).
    assert apps.read_namespaced_deployment("langfuse-worker", NS).status.ready_replicas == 1


def test_a_cluster_without_the_add_on_blocks_the_workload(
    csi_state: DesiredState, emu: Emulator, ctl: Ctl
) -> None:
    cluster = next(
        c
        for c in emu.world.list_by_type("Microsoft.ContainerService/managedClusters")
        if c["name"] == AKS_NAME
    )
    cluster["properties"]["addonProfiles"]["azureKeyvaultSecretsProvider"] = {"enabled": False}
    ctl("PUT", "state?id=" + urllib.parse.quote(cluster["id"], safe=""), cluster)
    plan = nsc_reconcile.plan(csi_state, _clients(emu))
    workload = _workload(plan)
    assert workload.action is Action.BLOCKED
    assert "enable the azure-keyvault-secrets-provider add-on" in str(workload.reason)
    assert f"aks_cluster/{AKS_NAME}" in str(workload.reason)
    grants = [r for r in plan.resources if r.address.startswith("role_assignment/langfuse-")]
    assert grants
    assert all(r.action is Action.CREATE for r in grants)


def test_identity_alone_annotates_the_service_account(
    emu: Emulator, ctl: Ctl, kube: k8s.ApiClient, tmp_path: Path
) -> None:
    ctl("POST", "config", {"lro_seconds": {"*": 0}, "principal_replication_seconds": 0})
    state = load_desired_state(csi_overlay(tmp_path, csi=False))
    _apply(state, emu)
    core: Any = k8s.CoreV1Api(kube)
    apps: Any = k8s.AppsV1Api(kube)
    account = core.read_namespaced_service_account("langfuse", NS)
    client_id = identity_properties(emu)["clientId"]
    assert account.metadata.annotations == {"azure.workload.identity/client-id": client_id}
    for name in ("langfuse", "langfuse-worker"):
        template = apps.read_namespaced_deployment(name, NS).spec.template
        assert template.metadata.labels["azure.workload.identity/use"] == "true"
        assert not template.spec.volumes  # tool delivery: no CSI volume
    # The tool still writes the Secret (its versions annotation), no SecretProviderClass.
    secret = core.read_namespaced_secret("langfuse-secrets", NS)
    assert "nsc-reconcile/key-vault-versions" in secret.metadata.annotations
    listed: Any = k8s.CustomObjectsApi(kube).list_namespaced_custom_object(
        GROUP, "v1", NS, "secretproviderclasses"
    )
    assert listed["items"] == []


def test_csi_without_identity_and_identity_without_credential_are_refused(
    tmp_path: Path,
) -> None:
    path = csi_overlay(tmp_path, federated=False)
    with pytest.raises(DesiredStateError) as missing:
        load_desired_state(path)
    text = str(missing.value)
    assert "user_assigned_identity/id-langfuse-dev has no federated credential" in text
    assert "namespace: langfuse, service_account: langfuse" in text
    yaml = YAML(typ="safe")
    data = yaml.load(path.read_text(encoding="utf-8"))
    del data["langfuse"]["identity"]
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    with pytest.raises(DesiredStateError) as no_identity:
        load_desired_state(path)
    assert "`secrets_delivery: csi` needs `identity`" in str(no_identity.value)
