"""LangFuse on AKS (kind ``kubernetes_workload``): reads and server-side applies the objects of
langfuse_manifests.py as ``nsc-reconcile``, filling the Secret from Key Vault; values never
reach fields (a salted SHA-256 annotation stands for them). Exposed Services are drift."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from nsc_reconcile.changes import FieldChange, Unknown, diff_fields
from nsc_reconcile.model.workload import Langfuse
from nsc_reconcile.resources.base import Context, Live, Reconciler
from nsc_reconcile.resources.langfuse_manifests import (
    DEPENDENCIES,
    DIGEST_ANNOTATION,
    FIELD_MANAGER,
    MANAGED_BY,
    Inputs,
    Obj,
    base_object,
    declared_objects,
    manifests,
    secret_keys,
    secret_name,
    values_digest,
)

CHANGED = "(changed outside nsc-reconcile)"
EXPOSED_TYPES = ("LoadBalancer", "NodePort")
APPLY = "application/apply-patch+yaml"

# kind -> (API prefix, plural, namespaced)
_ROUTES: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Secret": ("/api/v1", "secrets", True),
    "Service": ("/api/v1", "services", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
}
# Written in this order: what a pod needs exists before the pod's owner.
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


class WorkloadError(Exception):
    """The workload cannot be read or written; the message never holds a secret value."""


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

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._api_clients: weakref.WeakKeyDictionary[Context, dict[tuple[str, str], Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._vault_values: weakref.WeakKeyDictionary[Context, dict[str, str]] = (
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
        """GET the namespace, the Secret and the service account, LIST services, deployments
        and statefulsets of the namespace. Never writes."""
        api = self._api(ctx, resource)
        objects: dict[str, Obj] = {}
        ns = resource.namespace
        namespace = _call(api, "GET", _path("Namespace", ns, ""))
        if namespace is not None:
            objects[object_key("Namespace", ns)] = namespace
            for kind, name in (
                ("ServiceAccount", resource.name),
                ("Secret", secret_name(resource)),
            ):
                found = _call(api, "GET", _path(kind, name, ns))
                if found is not None:
                    objects[object_key(kind, name)] = found
            for kind in ("Service", "Deployment", "StatefulSet"):
                listing = _call(api, "GET", _path(kind, "", ns)) or {}
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
        declared_keys = {object_key(k, n) for k, n in declared}
        exposed = {
            key.split("/", 1)[1]: obj["spec"]["type"]
            for key, obj in objects.items()
            if key.startswith("Service/")
            and key not in declared_keys
            and (obj.get("spec") or {}).get("type") in EXPOSED_TYPES
        }
        for name, kind in sorted(exposed.items()):
            fields[f"{object_key('Service', name)}.spec.type"] = kind
        etag = json.dumps(
            {k: (o.get("metadata") or {}).get("resourceVersion") for k, o in sorted(raw.items())}
        )
        return Live(
            id=live.id,
            fields=fields,
            raw={"objects": raw},
            etag=hashlib.sha256(etag.encode()).hexdigest()[:16],
            managed=managed,
            facts={"exposed_services": sorted(exposed)},
        )

    def _verified_digest(self, resource: Langfuse, secret: Obj, key: str) -> dict[str, Any]:
        """The digest annotation, or CHANGED when the data no longer matches it (someone
        edited the Secret's values). The values are decoded here only to be hashed."""
        path = f"{key}.metadata.annotations.{DIGEST_ANNOTATION}"
        annotated = ((secret.get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)
        if annotated is None:
            return {}
        data = secret.get("data") or {}
        values: dict[str, str] = {}
        try:
            for name in secret_keys(resource):
                if name in data:
                    values[name] = base64.b64decode(str(data[name]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return {path: CHANGED}
        actual = values_digest(secret_name(resource), values)
        return {path: annotated if actual == annotated else CHANGED}

    # ------------------------------------------------------------------ desired
    def desired(self, ctx: Context, resource: Langfuse) -> dict[str, Any]:
        inputs = self._inputs(ctx, resource, with_values=True)
        fields: dict[str, Any] = {}
        for manifest in manifests(resource, inputs):
            key = object_key(manifest["kind"], manifest["metadata"]["name"])
            fields.update(flat_fields(_comparable(manifest["kind"], manifest), key))
        return fields

    def _inputs(self, ctx: Context, resource: Langfuse, *, with_values: bool) -> Inputs:
        registries = {
            image.registry
            for image in (
                resource.web.image,
                resource.worker.image,
                *(getattr(resource, d.part).image for d in DEPENDENCIES),
            )
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
        values = self._secret_values(ctx, resource) if with_values else None
        return Inputs(login_servers, ctx.output(server, "fqdn"), db_user, values)

    def _secret_values(self, ctx: Context, resource: Langfuse) -> dict[str, Any]:
        """Secret key -> value (Unknown while the Key Vault secret does not exist). A value
        written in this run is used as written; others are read through the data plane once
        per run. Every value is registered for redaction."""
        out: dict[str, Any] = {}
        for key, vault_secret in secret_keys(resource).items():
            address = f"key_vault_secret/{vault_secret}"
            value = ctx.written_secret(address)
            if value is None:
                with self._lock:
                    value = self._vault_values.get(ctx, {}).get(vault_secret)
            if value is None:
                if ctx.live(address) is None:
                    out[key] = Unknown(f"{address}.value")
                    continue
                value = self._read_vault(ctx, resource, vault_secret)
                with self._lock:
                    self._vault_values.setdefault(ctx, {})[vault_secret] = value
            ctx.register_secret(value)
            ctx.register_secret(base64.b64encode(value.encode()).decode())
            out[key] = value
        return out

    def _read_vault(self, ctx: Context, resource: Langfuse, name: str) -> str:
        uri = ctx.output(f"key_vault/{resource.key_vault}", "uri")
        if not isinstance(uri, str) or not uri:
            raise WorkloadError(f"key_vault/{resource.key_vault} reports no vault URI")
        value = ctx.clients.secret_client(uri).get_secret(name).value
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
        """Declared fields that differ, plus any other Service in the namespace that is
        exposed (LoadBalancer/NodePort): private-only is enforced live too."""
        found = diff_fields(
            desired,
            live.fields if live is not None else None,
            sensitive=frozenset(p for p in desired if p.endswith(f".{DIGEST_ANNOTATION}")),
            immutable=self._immutable(list(desired)),
        )
        if live is not None:
            for name in live.facts.get("exposed_services", []):
                path = f"{object_key('Service', name)}.spec.type"
                found.append(FieldChange(path, live.fields.get(path), "ClusterIP"))
        return found

    # ------------------------------------------------------------------ write
    def write(self, ctx: Context, resource: Langfuse, live: Live | None) -> None:
        """Server-side apply every object that differs (deleting first one whose immutable
        fields changed); switch other exposed Services of the namespace to ClusterIP.
        Raises WorkloadError while an input (a Key Vault secret, the PG server) is missing."""
        inputs = self._inputs(ctx, resource, with_values=True)
        objects = manifests(resource, inputs)
        unknown = [str(v) for m in objects for v in _leaves(m) if isinstance(v, Unknown)]
        unknown += [str(v) for v in (inputs.secret_values or {}).values() if isinstance(v, Unknown)]
        if unknown:
            raise WorkloadError("inputs not available: " + ", ".join(sorted(set(unknown))))
        api = self._api(ctx, resource)
        current = live.fields if live is not None else {}
        present = set((live.raw or {}).get("objects") or {}) if live is not None else set()
        for manifest in objects:
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            key = object_key(kind, name)
            wanted = flat_fields(_comparable(kind, manifest), key)
            differs = [p for p in wanted if current.get(p) != wanted[p]]
            if key in present and not differs:
                continue
            if key in present and self._immutable(differs):
                _call(api, "DELETE", _path(kind, name, manifest["metadata"].get("namespace", "")))
            _apply(api, manifest)
        for name in live.facts.get("exposed_services", []) if live is not None else []:
            patch = {**base_object("Service", name, resource.namespace, None)}
            patch["spec"] = {"type": "ClusterIP"}
            _apply(api, patch)

    # ------------------------------------------------------------------ outputs
    def output(self, ctx: Context, resource: Langfuse, live: Live, name: str) -> Any:
        if name == "service_dns":
            service = resource.service
            return f"{service.name}.{resource.namespace}.svc.cluster.local:{service.port}"
        return super().output(ctx, resource, live, name)


# --------------------------------------------------------------------------- HTTP helpers
def _path(kind: str, name: str, namespace: str) -> str:
    prefix, plural, namespaced = _ROUTES[kind]
    scope = f"/namespaces/{namespace}" if namespaced else ""
    return f"{prefix}{scope}/{plural}" + (f"/{name}" if name else "")


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for child in value.values():
            yield from _leaves(child)
    elif isinstance(value, list):
        for child in value:
            yield from _leaves(child)
    else:
        yield value


def _call(
    api: Any,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: Obj | None = None,
    content_type: str | None = None,
) -> Obj | None:
    """One request through the kubernetes client's ``ApiClient``; the decoded JSON answer,
    None on 404. Raises ``kubernetes.client.ApiException`` on any other error."""
    from kubernetes.client.exceptions import ApiException

    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    method, url, headers, body, _ = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, header_params=headers, body=body)
    response.read()
    if response.status == 404:
        return None
    text = (response.data or b"").decode("utf-8", "replace")
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=text, data=None)
    loaded: Obj = json.loads(text) if text else {}
    return loaded


def _apply(api: Any, manifest: Obj) -> None:
    """Server-side apply of ``manifest`` as ``nsc-reconcile``, taking over conflicting
    fields (force): the desired state is the authority for what we declare."""
    metadata = manifest["metadata"]
    _call(
        api,
        "PATCH",
        _path(manifest["kind"], metadata["name"], metadata.get("namespace", "")),
        query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        body=manifest,
        content_type=APPLY,
    )


RECONCILERS: dict[str, Reconciler[Any]] = {"kubernetes_workload": LangfuseReconciler()}
