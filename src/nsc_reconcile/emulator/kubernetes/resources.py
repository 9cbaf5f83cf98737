"""The resource types the Kubernetes plane serves and its discovery documents (``/version``,
``/api``, ``/apis``, resource lists). Pure data: no state, no request handling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
Path = tuple[str, ...]

VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.3",
    "gitCommit": "c83cbee114ec3ea6a82ee5e4c6aa1a0d97b7ec2f",
    "gitTreeState": "clean",
    "buildDate": "2024-11-21T00:00:00Z",
    "goVersion": "go1.22.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_VERBS = ["create", "delete", "get", "list", "patch", "update"]


@dataclass(frozen=True)
class ResourceType:
    """One served resource (``group`` "" is the core group)."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps`` / ``services``: how Kubernetes names the resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


TYPES = (
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",)),
    ResourceType("", "v1", "services", "service", "Service", True, ("svc",)),
    ResourceType("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",)),
    ResourceType("", "v1", "secrets", "secret", "Secret", True),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
    ResourceType(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        True,
        ("pvc",),
    ),
    ResourceType("apps", "v1", "deployments", "deployment", "Deployment", True, ("deploy",)),
    ResourceType("apps", "v1", "statefulsets", "statefulset", "StatefulSet", True, ("sts",)),
    ResourceType("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", True, ("ing",)),
    ResourceType("", "v1", "pods", "pod", "Pod", True, ("po",)),
    ResourceType("batch", "v1", "jobs", "job", "Job", True),
    ResourceType("", "v1", "events", "event", "Event", True, ("ev",)),
    # The Secrets Store CSI driver's CRD (the AKS add-on azure-keyvault-secrets-provider).
    ResourceType(
        "secrets-store.csi.x-k8s.io",
        "v1",
        "secretproviderclasses",
        "secretproviderclass",
        "SecretProviderClass",
        True,
    ),
)
BY_ROUTE = {(t.group, t.version, t.plural): t for t in TYPES}
NAMESPACES = BY_ROUTE[("", "v1", "namespaces")]


GROUPS = tuple(dict.fromkeys(t.group for t in TYPES if t.group))  # named groups, in order


def api_group(group: str) -> Obj:
    """The ``APIGroup`` discovery entry of a named group (its first version preferred)."""
    versions = [
        {"groupVersion": f"{group}/{v}", "version": v}
        for v in dict.fromkeys(t.version for t in TYPES if t.group == group)
    ]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def resource_list(group: str, version: str) -> Obj:
    resources = []
    for rt in TYPES:
        if rt.group != group or rt.version != version:
            continue
        entry: Obj = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": _VERBS,
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        resources.append(entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
