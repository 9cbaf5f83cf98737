"""LangFuse on AKS (kind ``kubernetes_workload``): reads and server-side applies the objects of
langfuse_manifests.py as ``nsc-reconcile``, filling the Secret from Key Vault; values never
reach fields (a salted SHA-256 annotation stands for them). Requests go through kubeapi.py.
Exposure of the namespace by others (Services, Ingresses) is reported, changed only if adopted."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from nsc_reconcile.changes import FieldChange, ReplacePolicy, Unknown, diff_fields
from nsc_reconcile.model.images import declared_images
from nsc_reconcile.model.workload import Langfuse
from nsc_reconcile.resources.base import Context, Live, Owned, Reconciler
from nsc_reconcile.resources.kubeapi import (
    FieldConflictError,
    WorkloadError,
    call,
    path_of,
    server_side_apply,
)
from nsc_reconcile.resources.langfuse_manifests import (
    DEPENDENCIES,
    DIGEST_ANNOTATION,
    FIELD_MANAGER,
    MANAGED_BY,
    PART_OF,
    VERSIONS_ANNOTATION,
    Inputs,
    Obj,
    base_object,
    declared_objects,
    manifests,
    provider_class_name,
    secret_keys,
    secret_name,
    uses_csi,
    values_digest,
)

__all__ = [
    "CHANGED",
    "FieldConflictError",
    "LangfuseReconciler",
    "WorkloadError",
    "canonical_quantities",
    "flat_fields",
    "object_key",
]

CHANGED = "(changed outside nsc-reconcile)"
# What `kubectl rollout restart` sets on a pod template (kubectl's objectrestarter.go).
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
EXPOSED_TYPES = ("LoadBalancer", "NodePort")
# Objects always applied with force: the Services keep LangFuse internal (private-only) and
# the Secret's values come from Key Vault; both win over any other field manager.
_ALWAYS_FORCED = ("Service", "Secret")
# Flat paths holding Kubernetes quantities (container resources, claim sizes).
_QUANTITY_PATH = re.compile(r"\.resources\.(?:requests|limits)\.[^.\[\]]+$")
# Metadata the server owns; never compared.
_SERVER_METADATA = (
    "name", "namespace", "uid", "resourceVersion", "creationTimestamp", "generation",
    "managedFields", "finalizers", "selfLink",
)  # fmt: skip
# Parts of an object Kubernetes cannot change in place (a change means delete + create).
_IMMUTABLE_PARTS = {
    "Deployment": (".spec.selector.",),
    "StatefulSet": (".spec.selector.", ".spec.serviceName", ".spec.volumeClaimTemplates["),
    "Secret": (".type",),
}


def object_key(kind: str, name: str) -> str:
    """How fields of one object are prefixed: ``Deployment/langfuse``."""
    return f"{kind}/{name}"


# --------------------------------------------------------------------------- flat fields
def _item_key(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    key = item.get("name") or (item.get("metadata") or {}).get("name")
    return str(key) if key else None


def flat_fields(value: Any, path: str) -> dict[str, Any]:
    """An object as flat fields; lists of named items are keyed by name (``env[SALT]``), so
    items others add and defaults the server fills into items never show up."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, child in value.items():
            out.update(flat_fields(child, f"{path}.{key}"))
        return out
    if isinstance(value, list) and value and all(_item_key(i) for i in value):
        out = {}
        for item in value:
            rest = {k: v for k, v in item.items() if k != "name"}
            out.update(flat_fields(rest, f"{path}[{_item_key(item)}]"))
        return out
    return {path: value}


def _comparable(kind: str, obj: Obj) -> Obj:
    """An object without what the server owns (status, identity metadata) or secret data."""
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    out["metadata"] = metadata
    if kind == "Secret":
        out.pop("data", None)
        out.pop("stringData", None)
    return out


# --------------------------------------------------------------------------- the reconciler
class LangfuseReconciler(Reconciler[Langfuse]):
    """The whole LangFuse workload as one resource; fields are prefixed per object."""

    kind = "kubernetes_workload"
    # Orphans come from what read() lists in the namespace (no call of their own).
    lists_with_read = True
    # Objects are deleted and applied again; volumes (PVCs) are kept.
    replace_policy = ReplacePolicy.AUTOMATED

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._api_clients: weakref.WeakKeyDictionary[Context, dict[tuple[str, str], Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._vault_values: weakref.WeakKeyDictionary[Context, dict[str, str]] = (
            weakref.WeakKeyDictionary()
        )
        # The desired fields computed in a run (per workload name), for the plan's notes.
        self._desired: weakref.WeakKeyDictionary[Context, dict[str, dict[str, Any]]] = (
            weakref.WeakKeyDictionary()
        )

    # ------------------------------------------------------------------ names
    def resource_id(self, ctx: Context, resource: Langfuse) -> str:
        return f"kubernetes://{resource.cluster}/namespaces/{resource.namespace}/{resource.name}"

    # ------------------------------------------------------------------ clients
    def _api(self, ctx: Context, resource: Langfuse) -> Any:
        cluster = ctx.live(f"aks_cluster/{resource.cluster}")
        if cluster is None:
            raise WorkloadError(f"aks_cluster/{resource.cluster} does not exist")
        group = cluster.id.split("/")[4]
        with self._lock:
            cached = self._api_clients.setdefault(ctx, {})
            key = (group.lower(), resource.cluster.lower())
            if key not in cached:
                cached[key] = ctx.clients.kubernetes_api_client(group, resource.cluster)
            return cached[key]

    # ------------------------------------------------------------------ read
    def read(self, ctx: Context, resource: Langfuse) -> Live | None:
        """GET the namespace, the Secret and the service account, LIST services, deployments,
        statefulsets and ingresses of the namespace: all at once (one round trip, not seven;
        what is read in a missing namespace is ignored). Never writes."""
        api = self._api(ctx, resource)
        objects: dict[str, Obj] = {}
        ns = resource.namespace
        # With the CSI driver the Secret is the driver's: the SecretProviderClass is read.
        values = (
            ("SecretProviderClass", provider_class_name(resource))
            if uses_csi(resource)
            else ("Secret", secret_name(resource))
        )
        named = (("ServiceAccount", resource.name), values)
        listed = ("Service", "Deployment", "StatefulSet", "Ingress")
        paths = [
            path_of("Namespace", ns, ""),
            *(path_of(kind, name, ns) for kind, name in named),
            *(path_of(kind, "", ns) for kind in listed),
        ]
        with ThreadPoolExecutor(max_workers=len(paths)) as pool:
            namespace, *answers = pool.map(lambda path: call(api, "GET", path), paths)
        if namespace is not None:
            objects[object_key("Namespace", ns)] = namespace
            for (kind, name), found in zip(named, answers, strict=False):
                if found is not None:
                    objects[object_key(kind, name)] = found
            for kind, answer in zip(listed, answers[len(named) :], strict=True):
                listing = answer or {}  # 404: not served
                for item in listing.get("items") or []:
                    item.setdefault("kind", kind)
                    objects[object_key(kind, item["metadata"]["name"])] = item
        declared = declared_objects(resource)
        if not any(object_key(k, n) in objects for k, n in declared if k != "Namespace"):
            return None  # a namespace alone may be shared: the workload does not exist
        live = Live(id=self.resource_id(ctx, resource), fields={}, raw={"objects": objects})
        return self.refine(ctx, resource, live)

    def refine(self, ctx: Context, resource: Langfuse, live: Live) -> Live:
        """Fields, ownership and exposure from the objects read (``raw["objects"]``: object
        key -> object as the API returned it). Pure; the Secret's data is hashed, then
        dropped from ``raw``."""
        objects: dict[str, Obj] = dict((live.raw or {}).get("objects") or {})
        declared = declared_objects(resource)
        ours = [object_key(k, n) for k, n in declared if k != "Namespace"]
        fields: dict[str, Any] = {}
        raw: dict[str, Obj] = {}
        for kind, name in declared:
            key = object_key(kind, name)
            obj = objects.get(key)
            if obj is None:
                continue
            fields.update(flat_fields(_comparable(kind, obj), key))
            if kind == "Secret":
                fields.update(self._verified_digest(resource, obj, key))
                obj = {k: v for k, v in obj.items() if k not in ("data", "stringData")}
            raw[key] = obj
        managed = all(
            ((objects[key].get("metadata") or {}).get("labels") or {}).get(MANAGED_BY)
            == FIELD_MANAGER
            for key in ours
            if key in objects
        )
        etag = json.dumps(
            {k: (o.get("metadata") or {}).get("resourceVersion") for k, o in sorted(raw.items())}
        )
        ours_only = Live(
            id=live.id,
            fields=fields,
            raw={"objects": raw},
            etag=hashlib.sha256(etag.encode()).hexdigest()[:16],
            managed=managed,
        )
        return _with_exposure(resource, objects, ours_only)

    def _verified_digest(self, resource: Langfuse, secret: Obj, key: str) -> dict[str, Any]:
        """The digest annotation, or CHANGED when the data no longer matches it (someone
        edited the Secret's values); the Key Vault versions annotation then vouches for
        nothing and is CHANGED too. The values are decoded here only to be hashed."""
        path = f"{key}.metadata.annotations.{DIGEST_ANNOTATION}"
        versions = f"{key}.metadata.annotations.{VERSIONS_ANNOTATION}"
        annotations = (secret.get("metadata") or {}).get("annotations") or {}
        annotated = annotations.get(DIGEST_ANNOTATION)
        pinned = {versions: CHANGED} if VERSIONS_ANNOTATION in annotations else {}
        changed = {path: CHANGED, **pinned}
        if annotated is None:
            return pinned
        data = secret.get("data") or {}
        values: dict[str, str] = {}
        try:
            for name in secret_keys(resource):
                if name in data:
                    values[name] = base64.b64decode(str(data[name]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return changed
        actual = values_digest(secret_name(resource), values)
        return {path: annotated} if actual == annotated else changed

    # ------------------------------------------------------------------ desired
    def desired(self, ctx: Context, resource: Langfuse) -> dict[str, Any]:
        inputs = self._inputs(ctx, resource, with_values=False)
        fields: dict[str, Any] = {}
        for manifest in manifests(resource, inputs):
            key = object_key(manifest["kind"], manifest["metadata"]["name"])
            fields.update(flat_fields(_comparable(manifest["kind"], manifest), key))
        with self._lock:
            self._desired.setdefault(ctx, {})[resource.name] = fields
        return fields

    def _inputs(self, ctx: Context, resource: Langfuse, *, with_values: bool) -> Inputs:
        """What the manifests need. The Secret is compared by the Key Vault versions of its
        values (from ARM reads, so a plan works outside a private vault's VNet); with
        ``with_values`` its values are read too, but only when it must be written."""
        images = declared_images(ctx.state.container_images)
        registries = {
            found.registry
            for image in (
                resource.web.image,
                resource.worker.image,
                *(getattr(resource, d.part).image for d in DEPENDENCIES),
            )
            if (found := image.resolve(images)) is not None
        }
        login_servers: dict[str, Any] = {}
        for registry in registries:
            live = ctx.live(f"container_registry/{registry}")
            server = live.fields.get("properties.loginServer") if live is not None else None
            login_servers[registry] = server or Unknown(
                f"container_registry/{registry}.login_server"
            )
        server = f"postgresql_server/{resource.database.server}"
        db_user = None if resource.database.username_secret else ctx.output(server, "admin_login")
        fqdn = ctx.output(server, "fqdn")
        client_id = None
        if resource.identity is not None:
            address = f"user_assigned_identity/{resource.identity}"
            client_id = ctx.output(address, "client_id") or Unknown(f"{address}.client_id")
        if uses_csi(resource):  # the CSI driver reads Key Vault: no versions, no values
            vault = ctx.live(f"key_vault/{resource.key_vault}")
            tenant = vault.fields.get("properties.tenantId") if vault is not None else None
            return Inputs(
                login_servers, fqdn, db_user, None, images=images, client_id=client_id,
                tenant_id=tenant or Unknown(f"key_vault/{resource.key_vault}.tenant_id"),
            )  # fmt: skip
        versions = self._secret_versions(ctx, resource)
        stale = with_values and self._secret_stale(ctx, resource, versions)
        values = self._secret_values(ctx, resource) if stale else None
        return Inputs(
            login_servers, fqdn, db_user, values, versions, images=images, client_id=client_id
        )

    def _secret_versions(self, ctx: Context, resource: Langfuse) -> str | Unknown:
        """VERSIONS_ANNOTATION as it should be: each Key Vault secret's current version."""
        versions: dict[str, str] = {}
        for vault_secret in sorted(set(secret_keys(resource).values())):
            address = f"key_vault_secret/{vault_secret}"
            version = ctx.output(address, "version")
            if not isinstance(version, str) or not version:
                return Unknown(f"{address}.version")
            versions[vault_secret] = version
        return json.dumps(versions, sort_keys=True, separators=(",", ":"))

    def _secret_stale(self, ctx: Context, resource: Langfuse, versions: str | Unknown) -> bool:
        """Whether the Secret must be written: missing, edited, or from other versions."""
        live = ctx.live(resource.address)
        if live is None or isinstance(versions, Unknown):
            return True
        path = f"{object_key('Secret', secret_name(resource))}.metadata.annotations."
        return bool(live.fields.get(path + VERSIONS_ANNOTATION) != versions)

    def _vault_notes(self, ctx: Context, resource: Langfuse) -> list[str]:
        """What needs the VNet: writing the Secret reads its values from a private vault."""
        if uses_csi(resource):
            return []  # the CSI driver reads the vault from inside the cluster
        vault = ctx.live(f"key_vault/{resource.key_vault}")
        private = vault is not None and (
            str(vault.fields.get("properties.publicNetworkAccess") or "").lower() == "disabled"
        )
        versions = self._secret_versions(ctx, resource)
        if not private or not self._secret_stale(ctx, resource, versions):
            return []
        return [
            f"writing Secret {resource.namespace}/{secret_name(resource)} reads its values "
            f"from Key Vault {resource.key_vault}, whose data plane is private: run apply "
            "inside the vault's VNet (values set by the same apply are used without being "
            "read back). Plans compare Key Vault versions and work from anywhere"
        ]

    def _secret_values(self, ctx: Context, resource: Langfuse) -> dict[str, Any]:
        """Secret key -> value of the current Key Vault version (Unknown while the secret
        does not exist). A value written in this run is used as written; others are read
        through the data plane once per run, all at once (one round trip, not one per
        value). Every value is registered for redaction."""
        out: dict[str, Any] = {}
        wanted: dict[str, tuple[str, str]] = {}  # Secret key -> (vault secret, version)
        for key, vault_secret in secret_keys(resource).items():
            address = f"key_vault_secret/{vault_secret}"
            version = ctx.output(address, "version")
            if isinstance(version, Unknown) or ctx.live(address) is None:
                out[key] = Unknown(f"{address}.value")
            else:
                wanted[key] = (vault_secret, str(version))
        missing = sorted({w for w in wanted.values() if self._value_held(ctx, *w) is None})
        if missing:
            with ThreadPoolExecutor(max_workers=min(len(missing), 16)) as pool:
                read = list(pool.map(lambda w: self._read_vault(ctx, resource, *w), missing))
            with self._lock:
                held = self._vault_values.setdefault(ctx, {})
                for (vault_secret, version), found in zip(missing, read, strict=True):
                    held[f"{vault_secret}/{version}"] = found
        for key, (vault_secret, version) in wanted.items():
            value = self._value_held(ctx, vault_secret, version)
            assert value is not None  # written in this run, or read just above
            ctx.register_secret(value)
            ctx.register_secret(base64.b64encode(value.encode()).decode())
            out[key] = value
        return out

    def _value_held(self, ctx: Context, vault_secret: str, version: str) -> str | None:
        """The value written in this run, or read earlier in it; None when neither."""
        value = ctx.written_secret(f"key_vault_secret/{vault_secret}")
        if value is None:
            with self._lock:
                value = self._vault_values.get(ctx, {}).get(f"{vault_secret}/{version}")
        return value

    def _read_vault(self, ctx: Context, resource: Langfuse, name: str, version: str) -> str:
        """One data-plane read of ``name`` at ``version``; WorkloadError (no value, no body)
        when the vault refuses, e.g. from outside its VNet."""
        from azure.core.exceptions import HttpResponseError, ServiceRequestError

        uri = ctx.output(f"key_vault/{resource.key_vault}", "uri")
        if not isinstance(uri, str) or not uri:
            raise WorkloadError(f"key_vault/{resource.key_vault} reports no vault URI")
        try:
            value = ctx.clients.secret_client(uri).get_secret(name, version).value
        except (HttpResponseError, ServiceRequestError) as error:
            from nsc_reconcile.resources.vault_writer import refusal

            raise WorkloadError(
                f"cannot read Key Vault secret {name} from {resource.key_vault} "
                f"({refusal(error)}): the Secret's values are read through the vault's data "
                "plane; for a private vault run apply inside its VNet"
            ) from None
        if value is None:
            raise WorkloadError(f"Key Vault secret {name} has no value")
        return str(value)

    # ------------------------------------------------------------------ compare
    def _immutable(self, paths: Iterator[str] | list[str]) -> frozenset[str]:
        return frozenset(
            path
            for path in paths
            for kind, parts in _IMMUTABLE_PARTS.items()
            if path.startswith(f"{kind}/") and any(part in path for part in parts)
        )

    def changes(self, desired: dict[str, Any], live: Live | None) -> list[FieldChange]:
        """Declared fields that differ (quantities compared canonically: ``0.5`` is
        ``500m``), plus adopted Services of the namespace that are exposed. Only an object
        that exists can need replacing: one missing (say, after an interrupted apply) is
        simply created."""
        present = _present(live)
        immutable = frozenset(
            p for p in self._immutable(list(desired)) if _object_of(p, present) is not None
        )
        found = diff_fields(
            desired,
            live.fields if live is not None else None,
            sensitive=frozenset(p for p in desired if p.endswith(f".{DIGEST_ANNOTATION}")),
            immutable=immutable,
            normalize=canonical_quantities,
        )
        if live is not None:
            for name in live.facts.get("exposed_services", []):
                path = f"{object_key('Service', name)}.spec.type"
                found.append(FieldChange(path, live.fields.get(path), "ClusterIP"))
        return found

    def notes(self, ctx: Context, resource: Langfuse) -> list[str]:
        """What apply will not fix: exposure of the namespace by objects we do not own, and
        changes to fields another field manager owns (apply stops there unless forced)."""
        live = ctx.live(resource.address)
        if live is None:
            return self._vault_notes(ctx, resource)
        notes = list(live.facts.get("foreign_exposure", [])) + self._vault_notes(ctx, resource)
        with self._lock:
            desired = self._desired.get(ctx, {}).get(resource.name)
        if desired is None or resource.force_conflicts or resource.adopt:
            return notes
        owners: dict[str, list[str]] = live.facts.get("field_owners", {})
        taken: dict[str, list[str]] = {}
        for change in self.changes(desired, live):
            if change.path.split("/", 1)[0] in _ALWAYS_FORCED:
                continue
            for manager in _owners_of(change.path, owners):
                taken.setdefault(manager, []).append(change.path)
        for manager, paths in sorted(taken.items()):
            notes.append(
                f"field manager {manager!r} owns {', '.join(paths)}: apply stops with a "
                "conflict there (nsc-reconcile does not take fields over from another manager); "
                "undo that change, or set `force_conflicts: true` on the workload"
            )
        return notes

    def refusal(self, ctx: Context, resource: Langfuse, live: Live | None) -> str | None:
        """Blocks ``secrets_delivery: csi`` on a cluster without the Key Vault CSI add-on
        (``addonProfiles.azureKeyvaultSecretsProvider.enabled``, as read from the cluster):
        no driver would mount the volume, and the pods would never start."""
        if not uses_csi(resource):
            return None
        cluster = ctx.live(f"aks_cluster/{resource.cluster}")
        if cluster is None:
            return None  # the existing cluster's own plan says it is missing
        path = "properties.addonProfiles.azureKeyvaultSecretsProvider.enabled"
        if cluster.fields.get(path) is True:
            return None
        return (
            f"`secrets_delivery: csi` needs the Secrets Store CSI driver, but aks_cluster/"
            f"{resource.cluster} does not have it ({path} is not true): enable the "
            f"azure-keyvault-secrets-provider add-on (`az aks enable-addons --addons "
            f"azure-keyvault-secrets-provider --name {resource.cluster}`), or use "
            "`secrets_delivery: tool`"
        )

    # ------------------------------------------------------------------ write
    def write(self, ctx: Context, resource: Langfuse, live: Live | None) -> None:
        """Server-side apply every object that differs (deleting first one whose immutable
        fields changed); switch adopted exposed Services of the namespace to ClusterIP.
        Without ``force_conflicts`` (or ``adopt``), fields another field manager owns are not
        taken over (FieldConflictError names it), except in the Services and the Secret.
        Raises WorkloadError while an input (a Key Vault secret, the PG server) is missing."""
        inputs = self._inputs(ctx, resource, with_values=True)
        objects = manifests(resource, inputs)
        unknown = [str(v) for m in objects for v in _leaves(m) if isinstance(v, Unknown)]
        unknown += [str(v) for v in (inputs.secret_values or {}).values() if isinstance(v, Unknown)]
        if unknown:
            raise WorkloadError("inputs not available: " + ", ".join(sorted(set(unknown))))
        api = self._api(ctx, resource)
        current = canonical_quantities(live.fields) if live is not None else {}
        present = _present(live)
        take_over = resource.force_conflicts or resource.adopt
        for manifest in objects:
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            key = object_key(kind, name)
            wanted = canonical_quantities(flat_fields(_comparable(kind, manifest), key))
            differs = [p for p in wanted if current.get(p) != wanted[p]]
            if key in present and not differs:
                continue
            if key in present and self._immutable(differs):
                call(api, "DELETE", path_of(kind, name, manifest["metadata"].get("namespace", "")))
            server_side_apply(api, manifest, force=take_over or kind in _ALWAYS_FORCED)
        for name in live.facts.get("exposed_services", []) if live is not None else []:
            patch = {**base_object("Service", name, resource.namespace, None)}
            patch["spec"] = {"type": "ClusterIP"}
            server_side_apply(api, patch, force=True)  # adopted: listed in adopt_services

    # ------------------------------------------------------------------ rotation
    def write_secret(self, ctx: Context, resource: Langfuse) -> None:
        """Server-side apply only the Secret, filled from the current Key Vault versions (a
        value set in this run is used unread): what apply would write, after a credential
        rotation. Other objects are left as they are. Raises WorkloadError while a Key Vault
        secret is missing. With ``secrets_delivery: csi`` there is no Secret of ours: nothing
        is written (the restart that follows makes the CSI driver fetch the new version when
        the new pods mount the volume)."""
        if uses_csi(resource):
            return
        inputs = self._inputs(ctx, resource, with_values=False)
        inputs.secret_values = self._secret_values(ctx, resource)
        secret = next(m for m in manifests(resource, inputs) if m["kind"] == "Secret")
        unknown = [str(v) for v in _leaves(secret) if isinstance(v, Unknown)]
        unknown += [str(v) for v in inputs.secret_values.values() if isinstance(v, Unknown)]
        if unknown:
            raise WorkloadError("inputs not available: " + ", ".join(sorted(set(unknown))))
        server_side_apply(self._api(ctx, resource), secret, force=True)

    def restart(self, ctx: Context, resource: Langfuse, kind: str, name: str, at: str) -> None:
        """``kubectl rollout restart`` of one Deployment or StatefulSet: the same strategic
        merge patch of ``spec.template.metadata.annotations`` (``kubectl.kubernetes.io/
        restartedAt`` = ``at``, RFC 3339), as field manager ``kubectl-rollout``; its pods are
        replaced and read the Secret again. Raises WorkloadError when it does not exist."""
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
        found = call(
            self._api(ctx, resource),
            "PATCH",
            path_of(kind, name, resource.namespace),
            query=[("fieldManager", "kubectl-rollout")],
            body=patch,
            content_type="application/strategic-merge-patch+json",
            what=f"rollout restart of {kind} {resource.namespace}/{name}",
        )
        if found is None:
            raise WorkloadError(f"{kind} {resource.namespace}/{name} does not exist")

    # ------------------------------------------------------------------ orphans
    def list_owned(self, ctx: Context, scope: tuple[str, str] | None) -> list[Owned]:
        """Services, Deployments, StatefulSets and Ingresses of a declared workload's
        namespace that carry its labels but that it no longer declares, as read (its read
        lists them). A workload removed from the desired state as a whole is not looked for:
        its cluster and namespace are no longer known."""
        found = []
        for _, resource in ctx.state.resources():
            if not isinstance(resource, Langfuse):
                continue
            live = ctx.live(resource.address)
            for key in live.facts.get("owned_undeclared", []) if live is not None else []:
                rid = f"{self.resource_id(ctx, resource)}/{key}"
                address = f"{resource.address}/{key}"
                found.append(Owned(address, rid, True, ctx.state.environment))
        return found

    def delete_orphan(self, ctx: Context, resource_id: str) -> None:
        """DELETE the object (``<workload id>/<Kind>/<name>``); absent already is fine."""
        kind, name = resource_id.rsplit("/", 2)[-2:]
        workload = resource_id.rsplit("/", 3)[-3]
        for _, resource in ctx.state.resources():
            if isinstance(resource, Langfuse) and resource.name == workload:
                path = path_of(kind, name, resource.namespace)
                call(self._api(ctx, resource), "DELETE", path, what=f"delete {kind} {name}")
                return
        raise WorkloadError(f"kubernetes_workload/{workload} is not declared: cannot delete {kind}")

    # ------------------------------------------------------------------ outputs
    def output(self, ctx: Context, resource: Langfuse, live: Live, name: str) -> Any:
        if name == "service_dns":
            service = resource.service
            return f"{service.name}.{resource.namespace}.svc.cluster.local:{service.port}"
        return super().output(ctx, resource, live, name)


# --------------------------------------------------------------------------- helpers
def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for child in value.values():
            yield from _leaves(child)
    elif isinstance(value, list):
        for child in value:
            yield from _leaves(child)
    else:
        yield value


def _quantity(value: Any) -> Any:
    from kubernetes.utils.quantity import parse_quantity

    try:
        parsed: Decimal = parse_quantity(value)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, ArithmeticError):
        return value
    return parsed if parsed.is_finite() else value


def canonical_quantities(fields: dict[str, Any]) -> dict[str, Any]:
    """Flat fields with Kubernetes quantities as numbers, so ``0.5`` equals ``500m`` and
    ``1Gi`` equals ``1024Mi`` (the API server answers the canonical form of what it got)."""
    return {
        path: _quantity(value) if isinstance(value, str) and _QUANTITY_PATH.search(path) else value
        for path, value in fields.items()
    }


def _present(live: Live | None) -> set[str]:
    """Keys (``Kind/name``) of the declared objects that exist."""
    return set((live.raw or {}).get("objects") or {}) if live is not None else set()


def _object_of(path: str, keys: set[str]) -> str | None:
    """The object key among ``keys`` that flat field ``path`` belongs to."""
    return next((key for key in keys if path.startswith(f"{key}.")), None)


def _exposure_of(obj: Obj) -> str | None:
    """How a Service exposes pods outside the cluster (None: it does not)."""
    spec = obj.get("spec") or {}
    kind = spec.get("type")
    if kind in EXPOSED_TYPES:
        return str(kind)
    if spec.get("externalIPs"):
        return "externalIPs " + ", ".join(map(str, spec["externalIPs"]))
    return None


def _ingress_routes(obj: Obj) -> str:
    spec = obj.get("spec") or {}
    backends = [spec.get("defaultBackend") or {}]
    hosts = []
    for rule in spec.get("rules") or []:
        if (rule or {}).get("host"):
            hosts.append(str(rule["host"]))
        backends += [
            p.get("backend") or {} for p in ((rule or {}).get("http") or {}).get("paths") or []
        ]
    services = sorted(
        {str((b.get("service") or {}).get("name")) for b in backends if b.get("service")}
    )
    routes = f"routes to Service {', '.join(services)}" if services else "has no Service backend"
    return routes + (f" for {', '.join(hosts)}" if hosts else "")


def _with_exposure(resource: Langfuse, objects: dict[str, Obj], live: Live) -> Live:
    """``live`` with exposure by objects this workload does not declare: adopted exposed
    Services (in ``adopt_services``) are drift that apply fixes; any other exposed Service,
    and every Ingress, is a note only (``foreign_exposure``). Also who owns which fields."""
    declared = {object_key(k, n) for k, n in declared_objects(resource)}
    adopted = set(resource.adopt_services)
    fields = {
        path: value
        for path, value in live.fields.items()
        if _object_of(path, declared) is not None or not path.startswith("Service/")
    }
    exposed_adopted: list[str] = []
    notes: list[str] = []
    for key, obj in sorted(objects.items()):
        kind, name = key.split("/", 1)
        if key in declared:
            continue
        if kind == "Ingress":
            notes.append(
                f"Ingress {resource.namespace}/{name} {_ingress_routes(obj)}: it exposes the "
                "namespace outside the cluster (private-only). nsc-reconcile never changes or "
                "deletes an Ingress: remove it"
            )
            continue
        exposure = _exposure_of(obj) if kind == "Service" else None
        if exposure is None:
            continue
        service_type = (obj.get("spec") or {}).get("type")
        if name in adopted and service_type in EXPOSED_TYPES:
            exposed_adopted.append(name)
            fields[f"{key}.spec.type"] = service_type
            continue
        notes.append(
            f"Service {resource.namespace}/{name} ({exposure}) is not declared by this "
            "workload and exposes the namespace outside the cluster (private-only); left "
            "alone: make it ClusterIP or remove it, or list it in `adopt_services` for apply "
            "to switch it to ClusterIP"
        )
    facts = {
        **live.facts,
        "exposed_services": exposed_adopted,
        "foreign_exposure": notes,
        "field_owners": _field_owners(objects, declared),
        # Objects of the namespace labelled as this workload's that it no longer declares
        # (orphans: list_owned).
        "owned_undeclared": sorted(
            key for key, obj in objects.items() if key not in declared and _ours(resource, obj)
        ),
    }
    return Live(
        id=live.id, fields=fields, raw=live.raw, etag=live.etag, managed=live.managed,
        facts=facts,
    )  # fmt: skip


def _ours(resource: Langfuse, obj: Obj) -> bool:
    """Whether an object carries the labels this workload puts on what it applies."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY) == FIELD_MANAGER and labels.get(PART_OF) == resource.name


# --------------------------------------------------------------------------- field owners
def _field_owners(objects: dict[str, Obj], declared: set[str]) -> dict[str, list[str]]:
    """Flat path prefix -> field managers other than ours that own it (from managedFields),
    for the declared objects. Lists keyed by anything but ``name`` are owned as a whole."""
    owners: dict[str, list[str]] = {}
    for key in sorted(declared & set(objects)):
        for entry in (objects[key].get("metadata") or {}).get("managedFields") or []:
            manager = str(entry.get("manager") or "")
            if not manager or manager == FIELD_MANAGER:
                continue
            for path in _owned_paths(entry.get("fieldsV1") or {}, key):
                owners.setdefault(path, [])
                if manager not in owners[path]:
                    owners[path].append(manager)
    return owners


def _owned_paths(tree: Any, prefix: str) -> Iterator[str]:
    if not isinstance(tree, dict) or not tree or set(tree) == {"."}:
        yield prefix
        return
    for key, child in tree.items():
        if key.startswith("f:"):
            yield from _owned_paths(child, f"{prefix}.{key[2:]}")
        elif key.startswith("k:"):
            try:
                item = json.loads(key[2:])
            except ValueError:
                item = {}
            name = item.get("name") if isinstance(item, dict) else None
            if name is None:
                yield prefix  # the list as a whole
                return
            yield from _owned_paths(child, f"{prefix}[{name}]")
        elif key.startswith("v:") or key == ".":
            yield prefix
            return


def _owners_of(path: str, owners: dict[str, list[str]]) -> list[str]:
    found: list[str] = []
    for owned, managers in owners.items():
        related = (
            path == owned
            or path.startswith((f"{owned}.", f"{owned}["))
            or owned.startswith((f"{path}.", f"{path}["))
        )
        if related:
            found += [m for m in managers if m not in found]
    return found
