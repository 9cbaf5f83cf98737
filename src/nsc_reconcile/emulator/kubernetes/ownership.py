"""Field ownership: which manager owns which leaf path, ``managedFields`` rendering, and
server-side apply (conflicts, force, removal of fields an applier stops sending).
Writes go through ``Store`` (create/replace), never around it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nsc_reconcile.emulator.kubernetes.bodies import parse_body
from nsc_reconcile.emulator.kubernetes.errors import KubeError, bad_request, status_details, utc_now
from nsc_reconcile.emulator.kubernetes.patches import deep_merge, delete_path, get_path, leaf_paths
from nsc_reconcile.emulator.kubernetes.resources import Obj, Path, ResourceType
from nsc_reconcile.emulator.protocol import Request, Response

if TYPE_CHECKING:
    from nsc_reconcile.emulator.kubernetes.store import Store


SERVER_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")
IDENTITY_METADATA = ("name", "namespace", *SERVER_METADATA)


def owned_paths(obj: Obj) -> set[Path]:
    """Paths a field manager can own: everything but identity, server metadata and status."""
    paths = set()
    for path in leaf_paths({k: v for k, v in obj.items() if k not in ("status",)}):
        if path[0] in ("apiVersion", "kind"):
            continue
        if path[0] == "metadata" and len(path) > 1 and path[1] in IDENTITY_METADATA:
            continue
        paths.add(path)
    return paths


def fields_v1(paths: set[Path]) -> Obj:
    tree: Obj = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


@dataclass
class Owner:
    operation: str  # "Apply" | "Update"
    api_version: str
    time: str
    paths: set[Path]


def server_side_apply(
    store: Store, request: Request, rt: ResourceType, namespace: str, name: str, dry_run: bool
) -> Response:
    manager = request.query.get("fieldManager", "")
    if not manager:
        raise KubeError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
            "required for apply patch",
        )
    applied = parse_body(request, yaml_allowed=True)
    if not isinstance(applied, dict):
        raise bad_request("an apply patch must be an object")
    for field, expected in (("apiVersion", rt.api_version), ("kind", rt.kind)):
        if applied.get(field) != expected:
            raise bad_request(
                f"{field} in an apply patch must be {expected!r}, got {applied.get(field)!r}"
            )
    applied_name = (applied.get("metadata") or {}).get("name")
    if applied_name != name:
        raise bad_request(
            f"the name of the object ({applied_name}) does not match the name on the URL ({name})"
        )
    applied_paths = owned_paths(applied)
    key = store.key(rt, namespace, name)
    existing = store.objects.get(key)
    if existing is None:
        created = store.create(rt, namespace, applied, manager, dry_run)
        if not dry_run:
            store.owners[key] = {manager: Owner("Apply", rt.api_version, utc_now(), applied_paths)}
            created = store.render(rt, namespace, name, store.objects[key])
        return Response(201, created)
    owners = copy.deepcopy(store.owners.get(key, {}))
    force = request.query.get("force", "").lower() == "true"
    conflicts: list[tuple[str, Path]] = []
    for other, owner in owners.items():
        if other == manager:
            continue
        for path in sorted(owner.paths & applied_paths):
            if get_path(existing, path) != get_path(applied, path):
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
            {**status_details(rt, name), "causes": causes},
        )
    for other, path in conflicts:  # force: the applier takes the fields over
        owners[other].paths.discard(path)
    new = copy.deepcopy(existing)
    previous = owners.get(manager)
    if previous is not None and previous.operation == "Apply":
        others = set().union(*(o.paths for m, o in owners.items() if m != manager))
        for path in previous.paths - applied_paths - others:
            delete_path(new, path)
    new = deep_merge(new, {k: v for k, v in applied.items() if k != "status"})
    new["metadata"].pop("resourceVersion", None)
    if "resourceVersion" in (applied.get("metadata") or {}):
        new["metadata"]["resourceVersion"] = applied["metadata"]["resourceVersion"]
    owners[manager] = Owner("Apply", rt.api_version, utc_now(), applied_paths)
    owners = {m: o for m, o in owners.items() if o.paths}
    out = store.replace(rt, namespace, name, new, manager, dry_run, owners)
    return Response(200, out)
