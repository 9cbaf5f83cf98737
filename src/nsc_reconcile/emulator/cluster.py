"""The emulated AKS cluster as a pod inside it sees it: Service names in the cluster DNS
(``<service>.<namespace>.svc.cluster.local``) and the environment a container starts with
(``env`` and ``envFrom``, Secret and ConfigMap references resolved). Reads the Kubernetes
plane through its ``handle`` (no HTTP, not logged, no faults); never writes.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from nsc_reconcile.emulator.protocol import Plane, Request

__all__ = ["CLUSTER_DOMAIN", "ClusterView"]

CLUSTER_DOMAIN = "cluster.local"  # AKS's default cluster domain (CoreDNS)

Obj = dict[str, Any]


class ClusterView:
    """Read-only view of the cluster served by ``kubernetes`` (a Kubernetes ``Plane``)."""

    def __init__(self, kubernetes: Plane) -> None:
        self.kubernetes = kubernetes

    # -- reads --------------------------------------------------------------------------------
    def get(self, path: str) -> Obj | None:
        """The object at API ``path``; None when it does not exist (any non-200)."""
        response = self.kubernetes.handle(Request("GET", path, {}, {}))
        return response.body if response.status == 200 and isinstance(response.body, dict) else None

    def items(self, path: str) -> list[Obj]:
        """The items of the list at API ``path`` (every namespace for a cluster-wide path)."""
        found = self.get(path)
        return [i for i in (found or {}).get("items") or [] if isinstance(i, dict)]

    def services(self) -> list[Obj]:
        return self.items("/api/v1/services")

    def deployments(self) -> list[Obj]:
        return self.items("/apis/apps/v1/deployments")

    # -- cluster DNS --------------------------------------------------------------------------
    def resolve(self, name: str) -> list[str] | None:
        """CoreDNS's answer for ``name``: the Service's cluster IP for
        ``<service>.<namespace>.svc.cluster.local`` (and ``<service>.<namespace>.svc``, what a
        pod's search domains expand to); ``[]`` (NXDOMAIN) for any other name in the cluster
        domain; None when the name is not the cluster's (ask the VNet's DNS). Headless and
        ExternalName Services answer ``[]``: there are no pods whose addresses to give."""
        name = name.lower().rstrip(".")
        for suffix in (f".svc.{CLUSTER_DOMAIN}", ".svc"):
            if name.endswith(suffix):
                parts = name[: -len(suffix)].split(".")
                if len(parts) != 2 or not all(parts):
                    return []
                service = self.get(f"/api/v1/namespaces/{parts[1]}/services/{parts[0]}")
                address = str(((service or {}).get("spec") or {}).get("clusterIP") or "")
                return [address] if address and address != "None" else []
        if name == CLUSTER_DOMAIN or name.endswith("." + CLUSTER_DOMAIN):
            return []
        return None

    # -- workloads ----------------------------------------------------------------------------
    def container_env(self, namespace: str, container: Obj) -> dict[str, str] | None:
        """The environment ``container`` starts with in ``namespace``; None when a referenced
        Secret, ConfigMap or key that is not optional is missing (the kubelet then refuses to
        start it: CreateContainerConfigError, and retries)."""
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = str(source.get("prefix") or "")
            refs = (
                ("secrets", source.get("secretRef")),
                ("configmaps", source.get("configMapRef")),
            )
            for kind, ref in refs:
                if not isinstance(ref, dict):
                    continue
                data = self._data(namespace, kind, str(ref.get("name") or ""))
                if data is None:
                    if not ref.get("optional"):
                        return None
                    continue
                env.update({prefix + k: v for k, v in data.items()})
        for item in container.get("env") or []:
            name = str(item.get("name") or "")
            if "value" in item or "valueFrom" not in item:
                env[name] = str(item.get("value") or "")
                continue
            value_from = item.get("valueFrom") or {}
            key_refs = (
                ("secrets", value_from.get("secretKeyRef")),
                ("configmaps", value_from.get("configMapKeyRef")),
            )
            for kind, ref in key_refs:
                if not isinstance(ref, dict):
                    continue
                data = self._data(namespace, kind, str(ref.get("name") or ""))
                key = str(ref.get("key") or "")
                if data is None or key not in data:
                    if not ref.get("optional"):
                        return None
                    continue
                env[name] = data[key]
        return env

    def _data(self, namespace: str, kind: str, name: str) -> dict[str, str] | None:
        found = self.get(f"/api/v1/namespaces/{namespace}/{kind}/{name}")
        if found is None:
            return None
        if kind == "configmaps":
            return {str(k): str(v) for k, v in (found.get("data") or {}).items()}
        out = {}
        for key, value in (found.get("data") or {}).items():
            try:
                out[str(key)] = base64.b64decode(str(value)).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                continue
        return out
