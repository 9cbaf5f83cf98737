"""Kubernetes API subset (the AKS cluster's API server) for the real ``kubernetes`` client.

A pure ``Plane`` with its own state: namespaces, core/v1 services, serviceaccounts, secrets,
configmaps and apps/v1 deployments; GET/LIST/POST/PUT/DELETE and PATCH (JSON patch, merge
patch, an approximation of strategic merge, server-side apply) with Kubernetes ``Status`` errors.

Approximations (said plainly): strategic merge merges lists of objects only by the common merge
keys (containers/initContainers/volumes/env/envFrom-less by ``name``, service ports by ``port``,
volumeMounts by ``mountPath``, container ports by ``containerPort``) and honours ``null`` and
``$patch: delete`` in those lists; server-side apply tracks field ownership at leaf granularity
with every list atomic (real SSA merges keyed lists element-wise). The cluster is healthy:
a Deployment's pods are all ready at once. No watch, no pods, no authentication check.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from nsc_reconcile.emulator.protocol import Request, Response

__all__ = ["SERVICE_CIDR", "KubernetesPlane", "ResourceType"]

Obj = dict[str, Any]
Path = tuple[str, ...]

SERVICE_CIDR = ipaddress.ip_network("10.0.0.0/16")
_KUBERNETES_SERVICE_IP = "10.0.0.1"
_DNS_SERVICE_IP = "10.0.0.10"
_VERSION = {
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
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Strategic-merge keys of the lists this subset meets (field name -> merge key).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "ports": "port",  # service ports; container ports are keyed below
}
_SERVER_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")
_IDENTITY_METADATA = ("name", "namespace", *_SERVER_METADATA)


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
    ResourceType("apps", "v1", "deployments", "deployment", "Deployment", True, ("deploy",)),
)
_BY_ROUTE = {(t.group, t.version, t.plural): t for t in TYPES}
_NAMESPACES = _BY_ROUTE[("", "v1", "namespaces")]


class KubeError(Exception):
    """A Kubernetes ``Status`` failure (``reason`` NotFound, AlreadyExists, Invalid, ...)."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def response(self) -> Response:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return Response(self.code, body)


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return details


def _not_found(rt: ResourceType, name: str) -> KubeError:
    return KubeError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def _invalid(rt: ResourceType, name: str, field: str, problem: str) -> KubeError:
    details = _details(rt, name)
    details["kind"] = rt.kind
    details["causes"] = [{"reason": "FieldValueInvalid", "message": problem, "field": field}]
    message = (
        f'{rt.kind}{"." + rt.group if rt.group else ""} "{name}" is invalid: {field}: {problem}'
    )
    return KubeError(422, "Invalid", message, details)


def _bad_request(message: str) -> KubeError:
    return KubeError(400, "BadRequest", message)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# -- generic object helpers -------------------------------------------------------------------
def _leaf_paths(value: Any, prefix: Path = ()) -> set[Path]:
    """Leaf paths of a JSON object; lists and empty maps are leaves (atomic)."""
    if isinstance(value, dict) and value:
        paths: set[Path] = set()
        for key, child in value.items():
            paths |= _leaf_paths(child, (*prefix, str(key)))
        return paths
    return {prefix} if prefix else set()


def _owned_paths(obj: Obj) -> set[Path]:
    """Paths a field manager can own: everything but identity, server metadata and status."""
    paths = set()
    for path in _leaf_paths({k: v for k, v in obj.items() if k not in ("status",)}):
        if path[0] in ("apiVersion", "kind"):
            continue
        if path[0] == "metadata" and len(path) > 1 and path[1] in _IDENTITY_METADATA:
            continue
        paths.add(path)
    return paths


def _get_path(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _delete_path(obj: Obj, path: Path) -> None:
    """Remove a leaf and then every map it leaves empty."""
    parents: list[tuple[Obj, str]] = []
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        parents.append((node, key))
        node = node[key]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]
        else:
            break


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _deep_merge(base: Any, overlay: Any) -> Any:
    """``overlay`` over ``base``: maps merge recursively, anything else replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for key, value in overlay.items():
            out[key] = _deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(overlay)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Merge patch whose lists of maps merge by the known merge keys (see module docstring)."""
    if isinstance(patch, list) and isinstance(target, list) and field in _MERGE_KEYS:
        key = _MERGE_KEYS[field]
        if field == "ports" and any("containerPort" in p for p in patch if isinstance(p, dict)):
            key = "containerPort"
        if all(isinstance(p, dict) and key in p for p in patch):
            merged = [copy.deepcopy(t) for t in target]
            for item in patch:
                index = next(
                    (
                        i
                        for i, t in enumerate(merged)
                        if isinstance(t, dict) and t.get(key) == item[key]
                    ),
                    None,
                )
                if item.get("$patch") == "delete":
                    if index is not None:
                        del merged[index]
                elif index is None:
                    merged.append({k: v for k, v in item.items() if k != "$patch"})
                else:
                    merged[index] = strategic_merge_patch(merged[index], item)
            return merged
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
        else:
            out[key] = strategic_merge_patch(out.get(key), value, key)
    return out


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, test, copy, move)."""
    if not isinstance(operations, list):
        raise _bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch "
            "(a JSON patch is a list of operations; pass _content_type for merge or apply)"
        )
    doc = copy.deepcopy(target)

    def split(pointer: str) -> list[str]:
        if pointer == "":
            return []
        if not pointer.startswith("/"):
            raise _bad_request(f"invalid JSON pointer {pointer!r}")
        return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]

    def parent_of(parts: list[str]) -> tuple[Any, str]:
        node = doc
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, parts[-1]

    def read(parts: list[str]) -> Any:
        node = doc
        for part in parts:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def add(parts: list[str], value: Any) -> None:
        parent, last = parent_of(parts)
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), value)
        else:
            parent[last] = value

    def remove(parts: list[str]) -> Any:
        parent, last = parent_of(parts)
        return parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)

    for op in operations:
        try:
            kind, path = op["op"], split(op["path"])
            if kind == "add":
                add(path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(path)
            elif kind == "replace":
                remove(path)
                add(path, copy.deepcopy(op["value"]))
            elif kind == "test":
                if read(path) != op["value"]:
                    raise _bad_request(f"testing value {op['path']} failed")
            elif kind in ("copy", "move"):
                source = split(op["from"])
                value = remove(source) if kind == "move" else copy.deepcopy(read(source))
                add(path, value)
            else:
                raise _bad_request(f"unexpected JSON patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise KubeError(
                422, "Invalid", f"the server rejected our request due to an error: {exc!r}"
            ) from exc
    return doc


def _parse_body(request: Request, yaml_allowed: bool = False) -> Any:
    if not request.body:
        raise _bad_request("the request body is empty")
    try:
        return json.loads(request.body)
    except ValueError as exc:
        if not yaml_allowed:
            raise _bad_request(f"the body of the request is not valid JSON: {exc}") from exc
    from ruamel.yaml import YAML  # apply bodies may be YAML (JSON is a subset)

    try:
        return YAML(typ="safe", pure=True).load(request.body.decode())
    except Exception as exc:  # any parse error is the client's
        raise _bad_request(f"error decoding YAML: {exc}") from exc


def _fields_v1(paths: set[Path]) -> Obj:
    tree: Obj = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


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


@dataclass
class _Owner:
    operation: str  # "Apply" | "Update"
    api_version: str
    time: str
    paths: set[Path]


class _State:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}  # (plural, ns, name) -> object
        self.owners: dict[tuple[str, str, str], dict[str, _Owner]] = {}
        self.resource_version = 1000


class KubernetesPlane:
    """The cluster's API server. ``snapshot``/``restore``/``reset`` serve the emulator reset."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._state = _State()
        self._seed()
        self._initial = copy.deepcopy(self._state)

    # -- reset --------------------------------------------------------------------------------
    def snapshot(self) -> object:
        with self._lock:
            return copy.deepcopy(self._state)

    def restore(self, snapshot: object) -> None:
        if not isinstance(snapshot, _State):
            raise TypeError("restore() takes a value returned by snapshot()")
        with self._lock:
            self._state = copy.deepcopy(snapshot)

    def reset(self) -> None:
        """Back to a fresh cluster (system namespaces, the ``kubernetes`` service)."""
        self.restore(self._initial)

    def _seed(self) -> None:
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._create(_NAMESPACES, "", {"metadata": {"name": ns}}, "kube-apiserver", False)
        service = {
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver"}},
            "spec": {
                "clusterIP": _KUBERNETES_SERVICE_IP,
                "ports": [{"name": "https", "port": 443, "targetPort": 443}],
            },
        }
        self._create(_BY_ROUTE[("", "v1", "services")], "default", service, "kube-apiserver", False)
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
        self._create(_BY_ROUTE[("", "v1", "services")], "kube-system", dns, "kube-apiserver", False)

    # -- dispatch -----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            with self._lock:
                return self._handle(request)
        except KubeError as error:
            return error.response()

    def _handle(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if method == "GET" and parts in (["version"], ["version", ""]):
            return Response(200, dict(_VERSION))
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
            return Response(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group()]})
        if method == "GET" and parts == ["apis", "apps"]:
            return Response(200, {"kind": "APIGroup", "apiVersion": "v1", **_group()})
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
            return Response(200, _resource_list(group, version))
        return self._resource(request, group, version, rest)

    def _resource(self, request: Request, group: str, version: str, rest: list[str]) -> Response:
        # namespaces[/ns[/plural[/name[/sub]]]] or plural[/name] (cluster scope)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and group == "" and rest[2] == "status":
            rest = ["namespaces", rest[1]]  # a namespace's status is the namespace
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        rt = _BY_ROUTE.get((group, version, rest[0]))
        if rt is None:
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) >= 2 else ""
        sub = rest[2] if len(rest) >= 3 else ""
        if len(rest) > 3 or (sub and sub != "status"):
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        if rt.namespaced and not namespace and (name or request.method != "GET"):
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        if not rt.namespaced and namespace:
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        manager = _manager(request)
        dry_run = request.query.get("dryRun") == "All"
        method = request.method
        if not name:
            if method == "GET":
                return Response(200, self._list(rt, namespace, request.query))
            if method == "POST":
                body = _parse_body(request)
                return Response(201, self._create(rt, namespace, body, manager, dry_run))
            raise KubeError(405, "MethodNotAllowed", f"{method} on a collection is not supported")
        if sub == "status" and method != "GET":
            raise KubeError(405, "MethodNotAllowed", "only GET of the status subresource is served")
        if method == "GET":
            return Response(200, self._render(rt, namespace, name, self._get(rt, namespace, name)))
        if method == "PUT":
            body = _parse_body(request)
            return Response(200, self._replace(rt, namespace, name, body, manager, dry_run))
        if method == "PATCH":
            return self._patch(request, rt, namespace, name, manager, dry_run)
        if method == "DELETE":
            return Response(200, self._delete(rt, namespace, name, dry_run))
        raise KubeError(405, "MethodNotAllowed", f"{method} is not supported")

    # -- storage ------------------------------------------------------------------------------
    def _key(self, rt: ResourceType, namespace: str, name: str) -> tuple[str, str, str]:
        return (rt.qualified, namespace, name)

    def _get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        if rt.namespaced:
            self._require_namespace(namespace, must_exist=False)
        obj = self._state.objects.get(self._key(rt, namespace, name))
        if obj is None:
            raise _not_found(rt, name)
        return obj

    def _require_namespace(self, namespace: str, must_exist: bool = True) -> None:
        if must_exist and self._key(_NAMESPACES, "", namespace) not in self._state.objects:
            raise _not_found(_NAMESPACES, namespace)

    def _render(self, rt: ResourceType, namespace: str, name: str, obj: Obj) -> Obj:
        out = copy.deepcopy(obj)
        owners = self._state.owners.get(self._key(rt, namespace, name), {})
        managed = [
            {
                "manager": manager,
                "operation": owner.operation,
                "apiVersion": owner.api_version,
                "time": owner.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(owner.paths),
            }
            for manager, owner in owners.items()
            if owner.paths
        ]
        if managed:
            out["metadata"]["managedFields"] = managed
        return out

    def _list(self, rt: ResourceType, namespace: str, query: dict[str, str]) -> Obj:
        if rt.namespaced and namespace:
            self._require_namespace(namespace, must_exist=False)
        selector = query.get("labelSelector", "")
        field_selector = query.get("fieldSelector", "")
        items = []
        for (plural, ns, name), obj in sorted(self._state.objects.items()):
            if plural != rt.qualified or (namespace and ns != namespace):
                continue
            if selector and not _label_selector_matches(
                selector, obj["metadata"].get("labels") or {}
            ):
                continue
            if field_selector and not _field_selector_matches(field_selector, obj):
                continue
            item = self._render(rt, ns, name, obj)
            item.pop("kind", None)  # list items carry no kind/apiVersion on the wire
            item.pop("apiVersion", None)
            items.append(item)
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self._state.resource_version)},
            "items": items,
        }

    def _next_version(self) -> str:
        self._state.resource_version += 1
        return str(self._state.resource_version)

    def _check_identity(self, rt: ResourceType, namespace: str, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise _bad_request("the body of the request must be a JSON object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version is not None and api_version != rt.api_version:
            raise _bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        if kind is not None and kind != rt.kind:
            raise _bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        metadata = body.get("metadata")
        if metadata is None:
            metadata = body["metadata"] = {}
        if not isinstance(metadata, dict):
            raise _bad_request("metadata must be an object")
        body_ns = metadata.get("namespace")
        if rt.namespaced and body_ns and body_ns != namespace:
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        return body

    def _create(
        self, rt: ResourceType, namespace: str, body: Any, manager: str, dry_run: bool
    ) -> Obj:
        obj = copy.deepcopy(self._check_identity(rt, namespace, body))
        metadata = obj["metadata"]
        name = metadata.get("name")
        if not name and metadata.get("generateName"):
            name = metadata["generateName"] + secrets.token_hex(3)[:5]
        if not name:
            raise _invalid(
                rt, "", "metadata.name", "Required value: name or generateName is required"
            )
        if rt.namespaced:
            self._require_namespace(namespace)
        key = self._key(rt, namespace, name)
        if key in self._state.objects:
            raise KubeError(
                409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name)
            )
        for field in _SERVER_METADATA:
            metadata.pop(field, None)
        metadata["name"] = name
        if rt.namespaced:
            metadata["namespace"] = namespace
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = _now()
        obj = self._prepare(rt, name, obj, None)
        owned = _owned_paths(obj)
        if dry_run:
            obj["metadata"]["resourceVersion"] = str(self._state.resource_version)
            return obj
        obj["metadata"]["resourceVersion"] = self._next_version()
        self._state.objects[key] = obj
        self._state.owners[key] = {manager: _Owner("Update", rt.api_version, _now(), owned)}
        if rt is _NAMESPACES:
            sa = {"metadata": {"name": "default"}}
            accounts = _BY_ROUTE[("", "v1", "serviceaccounts")]
            self._create(accounts, name, sa, "kube-controller-manager", False)
        return self._render(rt, namespace, name, obj)

    def _replace(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        manager: str,
        dry_run: bool,
        owners: dict[str, _Owner] | None = None,
    ) -> Obj:
        body = self._check_identity(rt, namespace, body)
        body_name = body["metadata"].get("name")
        if body_name and body_name != name:
            raise _bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        old = self._get(rt, namespace, name)
        wanted_version = body["metadata"].get("resourceVersion")
        if wanted_version and wanted_version != old["metadata"]["resourceVersion"]:
            raise KubeError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                _details(rt, name),
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
        obj = self._prepare(rt, name, obj, old)
        key = self._key(rt, namespace, name)
        if owners is None:
            owners = self._update_owners(key, old, obj, manager, rt.api_version)
        if _strip_server(obj) == _strip_server(old):  # no-op: resourceVersion unchanged
            if not dry_run:
                self._state.owners[key] = owners
            return self._render(rt, namespace, name, old)
        if dry_run:
            return obj
        obj["metadata"]["resourceVersion"] = self._next_version()
        self._state.objects[key] = obj
        self._state.owners[key] = owners
        return self._render(rt, namespace, name, obj)

    def _update_owners(
        self, key: tuple[str, str, str], old: Obj, new: Obj, manager: str, api_version: str
    ) -> dict[str, _Owner]:
        """Ownership after a non-apply write: changed fields move to ``manager``."""
        owners = copy.deepcopy(self._state.owners.get(key, {}))
        old_paths, new_paths = _owned_paths(old), _owned_paths(new)
        changed = {p for p in new_paths if _get_path(old, p) != _get_path(new, p)}
        removed = old_paths - new_paths
        for owner in owners.values():
            owner.paths -= changed | removed
        mine = owners.get(manager)
        if mine is None or mine.operation != "Update":
            mine = owners[manager] = _Owner("Update", api_version, _now(), set())
        mine.paths |= changed
        mine.time = _now()
        return {m: o for m, o in owners.items() if o.paths or m == manager}

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
            return self._apply(request, rt, namespace, name, dry_run)
        patch = _parse_body(request)
        old = self._get(rt, namespace, name)
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
        return Response(200, self._replace(rt, namespace, name, new, manager, dry_run))

    def _apply(
        self, request: Request, rt: ResourceType, namespace: str, name: str, dry_run: bool
    ) -> Response:
        manager = request.query.get("fieldManager", "")
        if not manager:
            raise KubeError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                "required for apply patch",
            )
        applied = _parse_body(request, yaml_allowed=True)
        if not isinstance(applied, dict):
            raise _bad_request("an apply patch must be an object")
        for field, expected in (("apiVersion", rt.api_version), ("kind", rt.kind)):
            if applied.get(field) != expected:
                raise _bad_request(
                    f"{field} in an apply patch must be {expected!r}, got {applied.get(field)!r}"
                )
        applied_name = (applied.get("metadata") or {}).get("name")
        if applied_name != name:
            raise _bad_request(
                f"the name of the object ({applied_name}) does not match the name on the URL "
                f"({name})"
            )
        applied_paths = _owned_paths(applied)
        key = self._key(rt, namespace, name)
        existing = self._state.objects.get(key)
        if existing is None:
            created = self._create(rt, namespace, applied, manager, dry_run)
            if not dry_run:
                self._state.owners[key] = {
                    manager: _Owner("Apply", rt.api_version, _now(), applied_paths)
                }
                created = self._render(rt, namespace, name, self._state.objects[key])
            return Response(201, created)
        owners = copy.deepcopy(self._state.owners.get(key, {}))
        force = request.query.get("force", "").lower() == "true"
        conflicts: list[tuple[str, Path]] = []
        for other, owner in owners.items():
            if other == manager:
                continue
            for path in sorted(owner.paths & applied_paths):
                if _get_path(existing, path) != _get_path(applied, path):
                    conflicts.append((other, path))
        if conflicts and not force:
            causes = [
                {
                    "reason": "FieldManagerConflict",
                    "message": f'conflict with "{other}"',
                    "field": "." + ".".join(path),
                }
                for other, path in conflicts
            ]
            lines = "\n".join(f'- conflict with "{o}": .{".".join(p)}' for o, p in conflicts)
            noun = "conflict" if len(conflicts) == 1 else "conflicts"
            raise KubeError(
                409,
                "Conflict",
                f"Apply failed with {len(conflicts)} {noun}:\n{lines}",
                {**_details(rt, name), "causes": causes},
            )
        for other, path in conflicts:  # force: the applier takes the fields over
            owners[other].paths.discard(path)
        new = copy.deepcopy(existing)
        previous = owners.get(manager)
        if previous is not None and previous.operation == "Apply":
            others = set().union(*(o.paths for m, o in owners.items() if m != manager))
            for path in previous.paths - applied_paths - others:
                _delete_path(new, path)
        new = _deep_merge(new, {k: v for k, v in applied.items() if k != "status"})
        new["metadata"].pop("resourceVersion", None)
        if "resourceVersion" in (applied.get("metadata") or {}):
            new["metadata"]["resourceVersion"] = applied["metadata"]["resourceVersion"]
        owners[manager] = _Owner("Apply", rt.api_version, _now(), applied_paths)
        owners = {m: o for m, o in owners.items() if o.paths}
        out = self._replace(rt, namespace, name, new, manager, dry_run, owners)
        return Response(200, out)

    def _delete(self, rt: ResourceType, namespace: str, name: str, dry_run: bool) -> Obj:
        obj = self._get(rt, namespace, name)
        key = self._key(rt, namespace, name)
        if rt is _NAMESPACES and name in ("default", "kube-system", "kube-public"):
            raise KubeError(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
            )
        out = self._render(rt, namespace, name, obj)
        if dry_run:
            return out
        del self._state.objects[key]
        self._state.owners.pop(key, None)
        if rt is _NAMESPACES:  # Terminating is instantaneous: the contents go with it
            for other in [k for k in self._state.objects if k[1] == name]:
                del self._state.objects[other]
                self._state.owners.pop(other, None)
            out["status"] = {"phase": "Terminating"}
            return out
        if rt.plural == "services":
            return out
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {**_details(rt, name), "uid": obj["metadata"]["uid"]},
        }

    # -- per-kind defaults and validation -----------------------------------------------------
    def _prepare(self, rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> Obj:
        """Validate and fill server defaults; returns the object to store."""
        pattern = {"services": _DNS1035_LABEL, "namespaces": _DNS1123_LABEL}.get(
            rt.plural, _DNS1123_SUBDOMAIN
        )
        limit = 63 if rt.plural in ("services", "namespaces") else 253
        if not pattern.match(name) or len(name) > limit:
            raise _invalid(
                rt, name, "metadata.name", f'Invalid value: "{name}": must be a valid name'
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        for field in ("labels", "annotations"):
            values = obj["metadata"].get(field)
            if values is not None and (
                not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
            ):
                raise _invalid(rt, name, f"metadata.{field}", "Invalid value: must map to strings")
        if rt.plural == "namespaces":
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        elif rt.plural == "secrets":
            self._prepare_secrets(rt, name, obj, old)
        elif rt.plural == "services":
            self._prepare_services(rt, name, obj, old)
        elif rt.plural == "deployments":
            self._prepare_deployments(rt, name, obj, old)
        return obj

    def _prepare_secrets(self, rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> None:
        obj.setdefault("type", "Opaque")
        if old is not None and obj["type"] != old.get("type"):
            raise _invalid(rt, name, "type", "Invalid value: field is immutable")
        data = obj.get("data") or {}
        for key, value in data.items():
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise _invalid(rt, name, f"data[{key}]", "Invalid value: illegal base64") from exc
        string_data = obj.pop("stringData", None) or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        if data:
            obj["data"] = data

    def _prepare_services(self, rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> None:
        spec = obj.setdefault("spec", {})
        old_spec = (old or {}).get("spec", {})
        kind = spec.setdefault("type", "ClusterIP")
        if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            raise _invalid(rt, name, "spec.type", f'Unsupported value: "{kind}"')
        ports = spec.get("ports") or []
        if kind != "ExternalName" and not ports:
            raise _invalid(rt, name, "spec.ports", "Required value")
        used_node_ports = self._node_ports()
        for index, port in enumerate(ports):
            if not isinstance(port, dict) or not isinstance(port.get("port"), int):
                raise _invalid(rt, name, f"spec.ports[{index}].port", "Required value")
            if len(ports) > 1 and not port.get("name"):
                raise _invalid(rt, name, f"spec.ports[{index}].name", "Required value")
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port["port"])
            if kind in ("NodePort", "LoadBalancer") and "nodePort" not in port:
                previous = [
                    p.get("nodePort")
                    for p in old_spec.get("ports") or []
                    if p.get("port") == port["port"] and p.get("nodePort")
                ]
                port["nodePort"] = previous[0] if previous else _free_node_port(used_node_ports)
                used_node_ports.add(port["nodePort"])
        if kind == "ExternalName":
            return
        self._cluster_ip(rt, name, spec, old_spec)
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        status: Obj = {"loadBalancer": {}}
        if kind in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if kind == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
            internal = (obj["metadata"].get("annotations") or {}).get(
                "service.beta.kubernetes.io/azure-load-balancer-internal"
            ) == "true"
            # Data only: AKS gives a public frontend unless the internal annotation is set.
            octet = int(uuid.UUID(obj["metadata"]["uid"]).int % 250) + 2
            address = f"10.10.2.{octet}" if internal else f"20.249.{octet}.{(octet * 7) % 250 + 2}"
            status = {"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}}
        obj["status"] = status

    def _cluster_ip(self, rt: ResourceType, name: str, spec: Obj, old_spec: Obj) -> None:
        wanted, previous = spec.get("clusterIP"), old_spec.get("clusterIP")
        if previous is not None:
            if wanted not in (None, "", previous):
                raise _invalid(
                    rt, name, "spec.clusterIPs[0]", f'Invalid value: "{wanted}": field is immutable'
                )
            wanted = previous
        elif wanted in (None, ""):
            wanted = self._free_cluster_ip()
        elif wanted != "None":
            try:
                address = ipaddress.ip_address(wanted)
            except ValueError as exc:
                raise _invalid(
                    rt, name, "spec.clusterIPs[0]", f'Invalid value: "{wanted}": not an IP'
                ) from exc
            if address not in SERVICE_CIDR:
                raise _invalid(
                    rt,
                    name,
                    "spec.clusterIPs[0]",
                    f'Invalid value: "{wanted}": provided IP is not in the valid range. '
                    f"The range of valid IPs is {SERVICE_CIDR}",
                )
            if wanted in self._cluster_ips():
                raise _invalid(
                    rt,
                    name,
                    "spec.clusterIPs",
                    f'Invalid value: []string{{"{wanted}"}}: failed to allocate IP {wanted}: '
                    "provided IP is already allocated",
                )
        spec["clusterIP"] = wanted
        spec["clusterIPs"] = [wanted]

    def _cluster_ips(self) -> set[str]:
        return {
            str(obj["spec"].get("clusterIP"))
            for (plural, _, _), obj in self._state.objects.items()
            if plural == "services" and obj.get("spec", {}).get("clusterIP")
        }

    def _free_cluster_ip(self) -> str:
        used = self._cluster_ips()
        for address in SERVICE_CIDR.hosts():
            text = str(address)
            if int(address) - int(SERVICE_CIDR.network_address) < 16:
                continue  # leave the low block to the system services, as AKS does
            if text not in used:
                return text
        raise KubeError(500, "InternalError", "the service IP range is exhausted")

    def _node_ports(self) -> set[int]:
        return {
            int(port["nodePort"])
            for (plural, _, _), obj in self._state.objects.items()
            if plural == "services"
            for port in obj.get("spec", {}).get("ports") or []
            if port.get("nodePort")
        }

    def _prepare_deployments(self, rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise _invalid(rt, name, "spec", "Required value")
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        ):
            raise _invalid(rt, name, "spec.selector", "Required value")
        if old is not None and selector != old["spec"].get("selector"):
            raise _invalid(
                rt,
                name,
                "spec.selector",
                f"Invalid value: {json.dumps(selector)}: field is immutable",
            )
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
            raise _invalid(
                rt,
                name,
                "spec.template.metadata.labels",
                f"Invalid value: {json.dumps(labels)}: `selector` does not match template `labels`",
            )
        pod = template.get("spec") or {}
        containers = pod.get("containers") or []
        if not containers:
            raise _invalid(rt, name, "spec.template.spec.containers", "Required value")
        for index, container in enumerate(containers):
            if not isinstance(container, dict) or not container.get("name"):
                raise _invalid(
                    rt, name, f"spec.template.spec.containers[{index}].name", "Required value"
                )
            if not container.get("image"):
                raise _invalid(
                    rt, name, f"spec.template.spec.containers[{index}].image", "Required value"
                )
            image = str(container["image"])
            tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
            container.setdefault(
                "imagePullPolicy",
                "Always" if tagless or image.endswith(":latest") else "IfNotPresent",
            )
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
        pod.setdefault("restartPolicy", "Always")
        pod.setdefault("terminationGracePeriodSeconds", 30)
        pod.setdefault("dnsPolicy", "ClusterFirst")
        pod.setdefault("securityContext", {})
        pod.setdefault("schedulerName", "default-scheduler")
        template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        spec["template"] = {**template, "spec": pod}
        replicas = spec.setdefault("replicas", 1)
        if not isinstance(replicas, int) or replicas < 0:
            raise _invalid(rt, name, "spec.replicas", "Invalid value: must be >= 0")
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
        )
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        metadata = obj["metadata"]
        annotations = metadata.setdefault("annotations", {})
        if old is None:
            metadata["generation"] = 1
            revision = 1
        else:
            old_generation = int(old["metadata"].get("generation", 1))
            metadata["generation"] = old_generation + (spec != old["spec"])
            old_revision = int(
                (old["metadata"].get("annotations") or {}).get(
                    "deployment.kubernetes.io/revision", "1"
                )
            )
            revision = old_revision + (spec["template"] != old["spec"].get("template"))
        annotations["deployment.kubernetes.io/revision"] = str(revision)
        now = _now()
        status: Obj = {"observedGeneration": metadata["generation"], "replicas": replicas}
        if replicas:
            status.update(updatedReplicas=replicas, readyReplicas=replicas)
            status["availableReplicas"] = replicas
        status["conditions"] = [
            {
                "type": "Available",
                "status": "True",
                "lastUpdateTime": now,
                "lastTransitionTime": now,
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "lastUpdateTime": now,
                "lastTransitionTime": now,
                "reason": "NewReplicaSetAvailable",
                "message": f'ReplicaSet "{name}-{_hash(spec["template"])}" has successfully '
                "progressed.",
            },
        ]
        if (
            old is not None
            and old.get("status", {}).get("observedGeneration") == status["observedGeneration"]
        ):
            status["conditions"] = old["status"]["conditions"]
        obj["status"] = status


# -- small helpers ----------------------------------------------------------------------------
def _hash(value: Any) -> str:
    digest = uuid.uuid5(uuid.NAMESPACE_OID, json.dumps(value, sort_keys=True)).hex
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))


def _strip_server(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    for field in ("resourceVersion", "managedFields"):
        out["metadata"].pop(field, None)
    for condition in (out.get("status") or {}).get("conditions") or []:
        condition.pop("lastUpdateTime", None)
        condition.pop("lastTransitionTime", None)
    return out


def _free_node_port(used: set[int]) -> int:
    for port in range(30000, 32768):
        if port not in used:
            return port
    raise KubeError(500, "InternalError", "the node port range is exhausted")


def _field_selector_matches(selector: str, obj: Obj) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        key, value = (s.strip() for s in term.replace("!=", "=").replace("==", "=").split("=", 1))
        actual = _get_path(obj, tuple(key.split(".")))
        if (actual == value) == negate:
            return False
    return True


def _manager(request: Request) -> str:
    """The field manager of a write: ``fieldManager`` or, as Kubernetes does, the user agent."""
    manager = request.query.get("fieldManager")
    if manager:
        return manager
    agent = request.headers.get("user-agent", "unknown")
    return agent.split("/", 1)[0] or "unknown"


def _group() -> Obj:
    version = {"groupVersion": "apps/v1", "version": "v1"}
    return {"name": "apps", "versions": [version], "preferredVersion": version}


def _resource_list(group: str, version: str) -> Obj:
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
