"""The repository's desired state switched to `secrets_delivery: csi` (shared by the tests of
CSI delivery): a LangFuse identity with its federated credential, Key Vault Secrets User on
each Key Vault secret LangFuse reads, and `langfuse.identity` / `secrets_delivery: csi`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.paths import DESIRED_STATE

NS = "langfuse"
IDENTITY = "id-langfuse-dev"


def csi_overlay(tmp_path: Path, *, csi: bool = True, federated: bool = True) -> Path:
    """desired_state.yaml plus the LangFuse identity (and its grants, with ``csi``), written
    to ``tmp_path``; grants are named ``langfuse-reads-<secret>``."""
    yaml = YAML(typ="safe")
    data = yaml.load(DESIRED_STATE.read_text(encoding="utf-8"))
    credentials = [
        {
            "name": "fic-langfuse",
            "cluster": "nsc-aks-${env}",
            "namespace": NS,
            "service_account": "langfuse",
        }
    ]
    data.setdefault("user_assigned_identities", []).append(
        {"name": "id-langfuse-${env}", "federated_credentials": credentials if federated else []}
    )
    data["langfuse"]["identity"] = "id-langfuse-${env}"
    if csi:
        data["langfuse"]["secrets_delivery"] = "csi"
        vault_secrets = sorted(set(data["langfuse"]["secret_env"].values()) | _passwords(data))
        data.setdefault("role_assignments", []).extend(
            {
                "name": f"langfuse-reads-{name}",
                "principal": {"identity": "id-langfuse-${env}"},
                "scope": f"key_vault_secret/{name}",
                "role": "Key Vault Secrets User",
            }
            for name in vault_secrets
        )
    path = tmp_path / "desired_state.yaml"
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    return path


def _passwords(data: dict[str, Any]) -> set[str]:
    langfuse = data["langfuse"]
    found = {langfuse["database"]["password_secret"]}
    for part in ("clickhouse", "redis", "blob_storage"):
        if langfuse[part].get("password_secret"):
            found.add(langfuse[part]["password_secret"])
    return found


def identity_properties(emu: Any) -> dict[str, Any]:
    """The LangFuse identity's properties (clientId, principalId) in the emulator's world."""
    for found in emu.world.list_by_type("Microsoft.ManagedIdentity/userAssignedIdentities"):
        if found["name"] == IDENTITY:
            return dict(found["properties"])
    raise AssertionError(f"{IDENTITY} was not created")


def rollout_restart(kube: Any, name: str, at: str) -> None:
    """``kubectl rollout restart`` of Deployment ``name``: new pods, which mount the CSI
    volume again."""
    from kubernetes import client as k8s

    patch = {"spec": {"template": {"metadata": {"annotations": {"restartedAt": at}}}}}
    k8s.AppsV1Api(kube).patch_namespaced_deployment(name, NS, patch)
