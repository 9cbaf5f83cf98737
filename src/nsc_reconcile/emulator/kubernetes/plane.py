"""``KubernetesPlane``: the cluster's API server as a ``Plane``. Routes requests to discovery
and to the served resources, picks the patch flavour, seeds and resets the cluster; all state
lives in a ``Store`` guarded by one lock.
"""

from __future__ import annotations

import copy
import threading
from typing import TYPE_CHECKING

from nsc_reconcile.emulator.kubernetes.bodies import field_manager, parse_body
from nsc_reconcile.emulator.kubernetes.csi import CsiDriver
from nsc_reconcile.emulator.kubernetes.errors import KubeError
from nsc_reconcile.emulator.kubernetes.jobs import JobController, propagation_of
from nsc_reconcile.emulator.kubernetes.ownership import server_side_apply
from nsc_reconcile.emulator.kubernetes.patches import json_patch, merge_patch, strategic_merge_patch
from nsc_reconcile.emulator.kubernetes.resources import (
    BY_ROUTE,
    GROUPS,
    NAMESPACES,
    TYPES,
    VERSION,
    ResourceType,
    api_group,
    resource_list,
)
from nsc_reconcile.emulator.kubernetes.store import Store
from nsc_reconcile.emulator.protocol import Request, Response
from nsc_reconcile.emulator.sandbox import Sandbox

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

_KUBERNETES_SERVICE_IP = "10.0.0.1"
_DNS_SERVICE_IP = "10.0.0.10"


class KubernetesPlane:
    """The cluster's API server. ``snapshot``/``restore``/``reset`` serve the emulator reset."""

    def __init__(self, sandbox: Sandbox | None = None, world: World | None = None) -> None:
        self._lock = threading.RLock()
        self._store = Store()
        self._seed()
        self._initial = copy.deepcopy(self._store)
        # Jobs run their pods in ``sandbox`` (the VNet's network view; none: no view).
        self.jobs = JobController(lambda: self._store, self._lock, sandbox)
        # Mounts Key Vault secrets for pods with a secrets-store.csi.k8s.io volume (csi.py).
        self.csi = CsiDriver(world)

    # -- reset --------------------------------------------------------------------------------
    def snapshot(self) -> object:
        with self._lock:
            return copy.deepcopy(self._store)

    def restore(self, snapshot: object) -> None:
        if not isinstance(snapshot, Store):
            raise TypeError("restore() takes a value returned by snapshot()")
        with self._lock:
            self.jobs.reset()
            self.csi.reset()
            self._store = copy.deepcopy(snapshot)

    def reset(self) -> None:
        """Back to a fresh cluster (system namespaces, the ``kubernetes`` service)."""
        self.restore(self._initial)

    def _seed(self) -> None:
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._store.create(NAMESPACES, "", {"metadata": {"name": ns}}, "kube-apiserver", False)
        service = {
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver"}},
            "spec": {
                "clusterIP": _KUBERNETES_SERVICE_IP,
                "ports": [{"name": "https", "port": 443, "targetPort": 443}],
            },
        }
        self._store.create(
            BY_ROUTE[("", "v1", "services")], "default", service, "kube-apiserver", False
        )
        dns = {
            "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"}},
            "spec": {
                "clusterIP": _DNS_SERVICE_IP,
                "selector": {"k8s-app": "kube-dns"},
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                ],
            },
        }
        self._store.create(
            BY_ROUTE[("", "v1", "services")], "kube-system", dns, "kube-apiserver", False
        )

    # -- dispatch -----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            with self._lock:
                self.jobs.sweep()  # what the controllers did since the last request
                self.csi.sweep(self._store)  # the kubelet retries failed mounts
                response = self._handle(request)
                if request.method not in ("GET", "HEAD") and response.status < 400:
                    self.csi.sweep(self._store)  # pods of a new template mount at once
                return response
        except KubeError as error:
            return error.response()

    def _handle(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if method == "GET" and parts in (["version"], ["version", ""]):
            return Response(200, dict(VERSION))
        if method == "GET" and parts == ["api"]:
            return Response(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.10.2.4:443"}
                    ],
                },
            )
        if method == "GET" and parts == ["apis"]:
            groups = [api_group(g) for g in GROUPS]
            return Response(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if method == "GET" and len(parts) == 2 and parts[0] == "apis" and parts[1] in GROUPS:
            return Response(200, {"kind": "APIGroup", "apiVersion": "v1", **api_group(parts[1])})
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        if not any(t.group == group and t.version == version for t in TYPES):
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            if method != "GET":
                raise KubeError(405, "MethodNotAllowed", f"{method} is not supported here")
            return Response(200, resource_list(group, version))
        return self._resource(request, group, version, rest)

    def _resource(self, request: Request, group: str, version: str, rest: list[str]) -> Response:
        # namespaces[/ns[/plural[/name[/sub]]]] or plural[/name] (cluster scope)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and group == "" and rest[2] == "status":
            rest = ["namespaces", rest[1]]  # a namespace's status is the namespace
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        rt = BY_ROUTE.get((group, version, rest[0]))
        if rt is None:
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) >= 2 else ""
        sub = rest[2] if len(rest) >= 3 else ""
        if rt.plural == "pods" and sub == "log" and len(rest) == 3 and request.method == "GET":
            return self.jobs.log(namespace, name, request.query)
        if len(rest) > 3 or (sub and sub != "status"):
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        if rt.namespaced and not namespace and (name or request.method != "GET"):
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        if not rt.namespaced and namespace:
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        manager = field_manager(request)
        dry_run = request.query.get("dryRun") == "All"
        method = request.method
        if not name:
            if method == "GET":
                return Response(200, self._store.list_objects(rt, namespace, request.query))
            if method == "POST":
                if rt.plural == "pods":
                    raise KubeError(403, "Forbidden", "the emulator runs pods only for Jobs: "
                                    "create a batch/v1 Job")  # fmt: skip
                body = parse_body(request)
                created = self._store.create(rt, namespace, body, manager, dry_run)
                if rt.plural == "jobs" and not dry_run:
                    self.jobs.created(namespace, created)
                return Response(201, created)
            raise KubeError(405, "MethodNotAllowed", f"{method} on a collection is not supported")
        if sub == "status" and method != "GET":
            raise KubeError(405, "MethodNotAllowed", "only GET of the status subresource is served")
        if method == "GET":
            return Response(
                200, self._store.render(rt, namespace, name, self._store.get(rt, namespace, name))
            )
        if method == "PUT":
            body = parse_body(request)
            return Response(200, self._store.replace(rt, namespace, name, body, manager, dry_run))
        if method == "PATCH":
            return self._patch(request, rt, namespace, name, manager, dry_run)
        if method == "DELETE":
            propagation = propagation_of(request, rt)
            uid = str(self._store.get(rt, namespace, name)["metadata"].get("uid"))
            answer = self._store.delete(rt, namespace, name, dry_run)
            if not dry_run:
                self.jobs.collect(uid, propagation)  # dependents (ownerReferences) go too
            return Response(200, answer)
        raise KubeError(405, "MethodNotAllowed", f"{method} is not supported")

    # -- patch --------------------------------------------------------------------------------
    def _patch(
        self,
        request: Request,
        rt: ResourceType,
        namespace: str,
        name: str,
        manager: str,
        dry_run: bool,
    ) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/apply-patch+yaml":
            return server_side_apply(self._store, request, rt, namespace, name, dry_run)
        patch = parse_body(request)
        old = self._store.get(rt, namespace, name)
        if content_type == "application/merge-patch+json":
            new = merge_patch(old, patch)
        elif content_type == "application/strategic-merge-patch+json":
            new = strategic_merge_patch(old, patch)
        elif content_type == "application/json-patch+json":
            new = json_patch(old, patch)
        else:
            raise KubeError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: application/json-patch+json, application/merge-patch+json, "
                f"application/apply-patch+yaml, application/strategic-merge-patch+json "
                f"(got {content_type!r})",
            )
        patch_metadata = patch.get("metadata") if isinstance(patch, dict) else None
        conditional = isinstance(patch_metadata, dict) and "resourceVersion" in patch_metadata
        if isinstance(new, dict) and isinstance(new.get("metadata"), dict) and not conditional:
            new["metadata"].pop("resourceVersion", None)  # patches are unconditional by default
        return Response(200, self._store.replace(rt, namespace, name, new, manager, dry_run))
