"""Reading the security facts (7.3) and the Key Vault keys (TEAM_CREDENTIALS.md) from the
engine's reads: public access and local auth per resource, the vault's authorization mode,
how secrets reach the workload, declared role assignments. Never reads a secret value.
"""

from __future__ import annotations

import json
from typing import Any

from nsc_reconcile.documents.facts import (
    AccessFact,
    AccessPolicyFact,
    CredentialFact,
    CredentialFacts,
    Delivery,
    Grant,
    SecurityFacts,
)
from nsc_reconcile.model.secrets import KeyVaultSecret
from nsc_reconcile.resources.langfuse_manifests import secret_keys, secret_name
from nsc_reconcile.verification.context import Run, props_of


def _on_off(value: Any, *, inverted: bool = False) -> str | None:
    """A live boolean as Azure's Enabled/Disabled words (``inverted`` for disableX flags)."""
    if not isinstance(value, bool):
        return None
    return "Enabled" if value != inverted else "Disabled"


def _access(run: Run, address: str) -> AccessFact:
    """Public access, network default action and local auth of one resource, as live."""
    live = run.live(address)
    if live is None:
        return AccessFact(address, None, None, None, None)
    kind = address.partition("/")[0]
    if kind == "kubernetes_workload":
        return AccessFact(address, live.id, _exposure(run), None, None)
    props = props_of(run.wire(address))
    public = props.get("publicNetworkAccess")
    default = (props.get("networkAcls") or {}).get("defaultAction")
    local: str | None = None
    if kind == "openai_account":
        local = _on_off(props.get("disableLocalAuth", False), inverted=True)
    elif kind == "postgresql_server":
        public = (props.get("network") or {}).get("publicNetworkAccess")
        local = (props.get("authConfig") or {}).get("passwordAuth")
    elif kind == "container_registry":
        default = (props.get("networkRuleSet") or {}).get("defaultAction")
        local = _on_off(props.get("adminUserEnabled"))
    elif kind == "aks_cluster":
        private = (props.get("apiServerAccessProfile") or {}).get("enablePrivateCluster")
        public = _on_off(bool(private), inverted=True)
        local = _on_off(props.get("disableLocalAccounts", False), inverted=True)
    elif kind == "data_collection_rule":
        # Without a data collection endpoint the logs ingestion URL is public (Entra ID only).
        public = "Disabled" if props.get("dataCollectionEndpointId") else "Enabled"
    return AccessFact(address, live.id, public, default, local)


def _exposure(run: Run) -> str | None:
    """The LangFuse Service's reach: Disabled while it is ClusterIP, as live."""
    langfuse = run.state.langfuse
    assert langfuse is not None
    service = _workload_objects(run).get(f"Service/{langfuse.service.name}")
    if service is None:
        return None
    kind = str((service.get("spec") or {}).get("type") or "ClusterIP")
    return f"Disabled ({kind})" if kind == "ClusterIP" else f"Enabled ({kind})"


def _access_addresses(run: Run) -> list[str]:
    state = run.state
    addresses = [a.address for a in state.openai_accounts]
    addresses += [s.address for s in state.postgresql_servers]
    addresses += [s.address for s in state.existing.postgresql_servers]
    addresses += [v.address for v in state.existing.key_vaults]
    addresses += [r.address for r in state.existing.container_registries]
    addresses += [c.address for c in state.existing.aks_clusters]
    addresses += [d.address for d in state.data_collection_rules]
    if state.langfuse is not None:
        addresses.append(state.langfuse.address)
    return addresses


def _vault(run: Run) -> tuple[str | None, str | None, bool | None, tuple[AccessPolicyFact, ...]]:
    """(name, id, RBAC authorization, access policies) of the secrets' vault, as live."""
    if run.state.secrets is None:
        return None, None, None, ()
    name = run.state.secrets.vault
    live = run.live(f"key_vault/{name}")
    if live is None:
        return name, None, None, ()
    props = props_of(run.wire(f"key_vault/{name}"))
    policies = sorted(
        (
            AccessPolicyFact(
                object_id=str(p.get("objectId")),
                secret_permissions=tuple(
                    sorted(str(s) for s in (p.get("permissions") or {}).get("secrets") or [])
                ),
            )
            for p in props.get("accessPolicies") or []
        ),
        key=lambda p: p.object_id,
    )
    return name, live.id, props.get("enableRbacAuthorization") is True, tuple(policies)


def _workload_objects(run: Run) -> dict[str, Any]:
    """The LangFuse objects as read by the plan (object key -> object), {} when absent."""
    if run.state.langfuse is None:
        return {}
    live = run.live(run.state.langfuse.address)
    raw = live.raw if live is not None else None
    return dict((raw or {}).get("objects") or {}) if isinstance(raw, dict) else {}


def _deliveries(run: Run) -> tuple[str | None, bool, tuple[Delivery, ...]]:
    """(namespace/Secret, it exists, per synced key: which env of which workload uses it)."""
    langfuse = run.state.langfuse
    if langfuse is None:
        return None, False, ()
    name = secret_name(langfuse)
    objects = _workload_objects(run)
    users: dict[str, list[str]] = {}
    for key in sorted(objects):
        if not key.startswith(("Deployment/", "StatefulSet/")):
            continue
        pod = ((objects[key].get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in pod.get("containers") or []:
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
                if ref.get("name") == name and ref.get("key"):
                    users.setdefault(str(ref["key"]), []).append(f"{key} env {env.get('name')}")
    deliveries = tuple(
        Delivery(vault_secret, key, tuple(users.get(key, [])))
        for key, vault_secret in secret_keys(langfuse).items()
    )
    return f"{langfuse.namespace}/{name}", f"Secret/{name}" in objects, deliveries


def _grants(run: Run) -> tuple[Grant, ...] | None:
    """Role assignments the desired state declares; None when the model has no such kind
    (another issue adds it): shown as declared, whatever its fields are."""
    declared = getattr(run.state, "role_assignments", None)
    if declared is None:
        return None
    grants = []
    for item in declared:
        data = item.model_dump(mode="json", exclude={"adopt"}, exclude_none=True)
        name = str(data.pop("name", ""))
        for key, value in data.items():  # a nested form shows only what is given
            if isinstance(value, dict):
                data[key] = {k: v for k, v in value.items() if v is not False}
        details = tuple(
            (str(k), v if isinstance(v, str) else json.dumps(v, sort_keys=True))
            for k, v in data.items()
        )
        grants.append(Grant(name, details))
    return tuple(grants)


def gather_security(run: Run) -> SecurityFacts:
    """7.3: public access and local auth per resource, vault mode, secret delivery, grants."""
    vault, vault_id, rbac, policies = _vault(run)
    k8s_secret, exists, deliveries = _deliveries(run)
    return SecurityFacts(
        access=tuple(_access(run, a) for a in _access_addresses(run)),
        vault=vault,
        vault_id=vault_id,
        vault_rbac=rbac,
        access_policies=policies,
        k8s_secret=k8s_secret,
        k8s_secret_exists=exists,
        deliveries=deliveries,
        grants=_grants(run),
    )


def _source(item: KeyVaultSecret) -> tuple[str, str]:
    """(source kind, detail) of a key; the detail never holds a value."""
    source = item.source
    if source is None:
        return "literal", ""
    if source.output is not None:
        return "output", source.output
    if source.env is not None:
        return "env", source.env
    if source.generate is not None:
        return "generate", f"length={source.generate.length} alphabet={source.generate.alphabet}"
    return "external", ""


def _consumers(run: Run, name: str, deliveries: tuple[Delivery, ...]) -> list[tuple[str, str]]:
    """What this desired state wires Key Vault secret ``name`` to."""
    found: list[tuple[str, str]] = []
    for server in run.state.postgresql_servers:
        password = getattr(server, "admin_password", None)
        if password is not None and password.key_vault_secret == name:
            found.append(("pg-admin", server.address))
    for group in run.state.action_groups:
        for receiver in group.webhook_receivers:
            if receiver.uri_secret == name:
                found.append(("webhook", f"{group.address} {receiver.name}"))
    for delivery in deliveries:
        if delivery.vault_secret == name:
            users = delivery.consumers or (f"Secret key {delivery.secret_key}",)
            found += [("workload", user) for user in users]
    return found


def gather_credentials(run: Run) -> CredentialFacts:
    """Per Key Vault key of the desired state: everything but its value."""
    vault, _, rbac, policies = _vault(run)
    k8s_secret, _, deliveries = _deliveries(run)
    scope = run.state.docs.databricks_secret_scope or vault
    uri = None
    if vault is not None:
        live = run.live(f"key_vault/{vault}")
        uri = str(live.fields.get("properties.vaultUri") or "") if live is not None else None
    keys = []
    for item in run.state.secrets.items if run.state.secrets is not None else []:
        kind, detail = _source(item)
        k8s_key = next((d.secret_key for d in deliveries if d.vault_secret == item.name), None)
        keys.append(
            CredentialFact(
                name=item.name,
                sensitive=item.sensitive,
                description=getattr(item, "description", None),
                source=kind,
                source_detail=detail,
                exists=run.live(item.address) is not None,
                secret_uri=f"{uri.rstrip('/')}/secrets/{item.name}" if uri else None,
                consumers=tuple(_consumers(run, item.name, deliveries)),
                k8s_key=k8s_key,
            )
        )
    return CredentialFacts(
        vault=vault,
        vault_rbac=rbac,
        databricks_scope=scope,
        k8s_secret=k8s_secret,
        keys=tuple(keys),
        grants=_grants(run),
        access_policies=policies,
    )
