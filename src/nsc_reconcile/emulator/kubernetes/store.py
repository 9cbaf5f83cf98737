"""Object storage of the Kubernetes plane: objects keyed by (resource, namespace, name),
resourceVersion and uid bookkeeping, field owners, create/replace/delete/list with their
``Status`` errors. The only module that writes stored objects.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from typing import Any

from nsc_reconcile.emulator.kubernetes.defaults import prepare
from nsc_reconcile.emulator.kubernetes.errors import (
    KubeError,
    bad_request,
    invalid,
    not_found,
    status_details,
    utc_now,
)
from nsc_reconcile.emulator.kubernetes.ownership import (
    SERVER_METADATA,
    Owner,
    fields_v1,
    owned_paths,
)
from nsc_reconcile.emulator.kubernetes.patches import get_path
from nsc_reconcile.emulator.kubernetes.resources import BY_ROUTE, NAMESPACES, Obj, ResourceType


class Store:
    """Every stored object and its field owners; ``snapshot`` deep-copies a whole ``Store``."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}  # (plural, ns, name) -> object
        self.owners: dict[tuple[str, str, str], dict[str, Owner]] = {}
        self.resource_version = 1000

    def key(self, rt: ResourceType, namespace: str, name: str) -> tuple[str, str, str]:
        return (rt.qualified, namespace, name)

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        if rt.namespaced:
            self.require_namespace(namespace, must_exist=False)
        obj = self.objects.get(self.key(rt, namespace, name))
        if obj is None:
            raise not_found(rt, name)
        return obj

    def require_namespace(self, namespace: str, must_exist: bool = True) -> None:
        if must_exist and self.key(NAMESPACES, "", namespace) not in self.objects:
            raise not_found(NAMESPACES, namespace)

    def render(self, rt: ResourceType, namespace: str, name: str, obj: Obj) -> Obj:
        out = copy.deepcopy(obj)
        owners = self.owners.get(self.key(rt, namespace, name), {})
        managed = [
            {
                "manager": manager,
                "operation": owner.operation,
                "apiVersion": owner.api_version,
                "time": owner.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_v1(owner.paths),
            }
            for manager, owner in owners.items()
            if owner.paths
        ]
        if managed:
            out["metadata"]["managedFields"] = managed
        return out

    def list_objects(self, rt: ResourceType, namespace: str, query: dict[str, str]) -> Obj:
        if rt.namespaced and namespace:
            self.require_namespace(namespace, must_exist=False)
        selector = query.get("labelSelector", "")
        field_selector = query.get("fieldSelector", "")
        items = []
        for (plural, ns, name), obj in sorted(self.objects.items()):
            if plural != rt.qualified or (namespace and ns != namespace):
                continue
            if selector and not _label_selector_matches(
                selector, obj["metadata"].get("labels") or {}
            ):
                continue
            if field_selector and not _field_selector_matches(field_selector, obj):
                continue
            item = self.render(rt, ns, name, obj)
            item.pop("kind", None)  # list items carry no kind/apiVersion on the wire
            item.pop("apiVersion", None)
            items.append(item)
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.resource_version)},
            "items": items,
        }

    def next_version(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def check_identity(self, rt: ResourceType, namespace: str, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version is not None and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        if kind is not None and kind != rt.kind:
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        metadata = body.get("metadata")
        if metadata is None:
            metadata = body["metadata"] = {}
        if not isinstance(metadata, dict):
            raise bad_request("metadata must be an object")
        body_ns = metadata.get("namespace")
        if rt.namespaced and body_ns and body_ns != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        return body

    def create(
        self, rt: ResourceType, namespace: str, body: Any, manager: str, dry_run: bool
    ) -> Obj:
        obj = copy.deepcopy(self.check_identity(rt, namespace, body))
        metadata = obj["metadata"]
        name = metadata.get("name")
        if not name and metadata.get("generateName"):
            name = metadata["generateName"] + secrets.token_hex(3)[:5]
        if not name:
            raise invalid(
                rt, "", "metadata.name", "Required value: name or generateName is required"
            )
        if rt.namespaced:
            self.require_namespace(namespace)
        key = self.key(rt, namespace, name)
        if key in self.objects:
            raise KubeError(
                409,
                "AlreadyExists",
                f'{rt.qualified} "{name}" already exists',
                status_details(rt, name),
            )
        for field in SERVER_METADATA:
            metadata.pop(field, None)
        metadata["name"] = name
        if rt.namespaced:
            metadata["namespace"] = namespace
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = utc_now()
        obj = prepare(self.objects, rt, name, obj, None)
        owned = owned_paths(obj)
        if dry_run:
            obj["metadata"]["resourceVersion"] = str(self.resource_version)
            return obj
        obj["metadata"]["resourceVersion"] = self.next_version()
        self.objects[key] = obj
        self.owners[key] = {manager: Owner("Update", rt.api_version, utc_now(), owned)}
        if rt is NAMESPACES:
            sa = {"metadata": {"name": "default"}}
            accounts = BY_ROUTE[("", "v1", "serviceaccounts")]
            self.create(accounts, name, sa, "kube-controller-manager", False)
        self.claim_volumes(rt, namespace, obj)
        return self.render(rt, namespace, name, obj)

    def claim_volumes(self, rt: ResourceType, namespace: str, obj: Obj) -> None:
        """The StatefulSet controller's part: one claim per template and replica
        (``<template>-<set>-<ordinal>``), created when missing and never deleted (Retain)."""
        if rt.plural != "statefulsets":
            return
        claims = BY_ROUTE[("", "v1", "persistentvolumeclaims")]
        name = obj["metadata"]["name"]
        labels = ((obj["spec"].get("selector") or {}).get("matchLabels")) or {}
        for template in obj["spec"].get("volumeClaimTemplates") or []:
            for ordinal in range(int(obj["spec"].get("replicas") or 0)):
                claim_name = f"{template['metadata']['name']}-{name}-{ordinal}"
                if self.key(claims, namespace, claim_name) in self.objects:
                    continue
                claim = {
                    "metadata": {"name": claim_name, "labels": dict(labels)},
                    "spec": copy.deepcopy(template.get("spec") or {}),
                }
                self.create(claims, namespace, claim, "kube-controller-manager", False)

    def replace(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        manager: str,
        dry_run: bool,
        owners: dict[str, Owner] | None = None,
    ) -> Obj:
        body = self.check_identity(rt, namespace, body)
        body_name = body["metadata"].get("name")
        if body_name and body_name != name:
            raise bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        old = self.get(rt, namespace, name)
        wanted_version = body["metadata"].get("resourceVersion")
        if wanted_version and wanted_version != old["metadata"]["resourceVersion"]:
            raise KubeError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                status_details(rt, name),
            )
        obj = copy.deepcopy(body)
        obj.pop("status", None)
        metadata = obj["metadata"]
        for field in ("uid", "creationTimestamp", "generation"):
            if field in old["metadata"]:
                metadata[field] = old["metadata"][field]
        metadata["name"] = name
        if rt.namespaced:
            metadata["namespace"] = namespace
        metadata.pop("managedFields", None)
        if "status" in old:
            obj["status"] = copy.deepcopy(old["status"])
        obj = prepare(self.objects, rt, name, obj, old)
        key = self.key(rt, namespace, name)
        if owners is None:
            owners = self.update_owners(key, old, obj, manager, rt.api_version)
        if _strip_server(obj) == _strip_server(old):  # no-op: resourceVersion unchanged
            if not dry_run:
                self.owners[key] = owners
            return self.render(rt, namespace, name, old)
        if dry_run:
            return obj
        obj["metadata"]["resourceVersion"] = self.next_version()
        self.objects[key] = obj
        self.owners[key] = owners
        self.claim_volumes(rt, namespace, obj)
        return self.render(rt, namespace, name, obj)

    def update_owners(
        self, key: tuple[str, str, str], old: Obj, new: Obj, manager: str, api_version: str
    ) -> dict[str, Owner]:
        """Ownership after a non-apply write: changed fields move to ``manager``."""
        owners = copy.deepcopy(self.owners.get(key, {}))
        old_paths, new_paths = owned_paths(old), owned_paths(new)
        changed = {p for p in new_paths if get_path(old, p) != get_path(new, p)}
        removed = old_paths - new_paths
        for owner in owners.values():
            owner.paths -= changed | removed
        mine = owners.get(manager)
        if mine is None or mine.operation != "Update":
            mine = owners[manager] = Owner("Update", api_version, utc_now(), set())
        mine.paths |= changed
        mine.time = utc_now()
        return {m: o for m, o in owners.items() if o.paths or m == manager}

    def delete(self, rt: ResourceType, namespace: str, name: str, dry_run: bool) -> Obj:
        obj = self.get(rt, namespace, name)
        key = self.key(rt, namespace, name)
        if rt is NAMESPACES and name in ("default", "kube-system", "kube-public"):
            raise KubeError(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
            )
        out = self.render(rt, namespace, name, obj)
        if dry_run:
            return out
        del self.objects[key]
        self.owners.pop(key, None)
        if rt is NAMESPACES:  # Terminating is instantaneous: the contents go with it
            for other in [k for k in self.objects if k[1] == name]:
                del self.objects[other]
                self.owners.pop(other, None)
            out["status"] = {"phase": "Terminating"}
            return out
        if rt.plural == "services":
            return out
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {**status_details(rt, name), "uid": obj["metadata"]["uid"]},
        }


def _strip_server(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    for field in ("resourceVersion", "managedFields"):
        out["metadata"].pop(field, None)
    for condition in (out.get("status") or {}).get("conditions") or []:
        condition.pop("lastUpdateTime", None)
        condition.pop("lastTransitionTime", None)
    return out


def _label_selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality/set-less label selector: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field_selector_matches(selector: str, obj: Obj) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        key, value = (s.strip() for s in term.replace("!=", "=").replace("==", "=").split("=", 1))
        actual = get_path(obj, tuple(key.split(".")))
        if (actual == value) == negate:
            return False
    return True
