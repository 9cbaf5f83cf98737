"""Kubernetes objects of a plan, summarised: one line per object instead of one per field.

A resource of a Kubernetes kind (the LangFuse workload) carries its objects' fields as
changes on ``Kind/name.path`` (docs/plan-format.md). Rendering only: pure functions of a
ResourcePlan, no SDK, no I/O; field names only, never values, so nothing sensitive shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nsc_reconcile.changes import Action
from nsc_reconcile.plans import ResourcePlan

# Kinds whose changes are fields of Kubernetes objects.
KUBERNETES_KINDS = frozenset({"kubernetes_workload"})
# Every object the tool writes carries this label (resources/langfuse_manifests.py); an
# existing object without it makes the workload foreign (blocked) unless adopted.
OWNERSHIP_LABEL = "metadata.labels.app.kubernetes.io/managed-by"
# Object names are DNS-1123 labels (naming.py `kubernetes_name`): no dot, so the first dot
# after ``Kind/name`` starts the field path.
_OBJECT_PATH = re.compile(r"^([A-Z][A-Za-z0-9]*/[a-z0-9-]+)\.(.+)$")

SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "!"}


@dataclass(frozen=True)
class ObjectChange:
    """What apply does to one Kubernetes object: its action and the fields it writes (paths
    within the object, with whether each needs the object replaced)."""

    key: str  # Kind/name
    action: Action  # CREATE, UPDATE or REPLACE
    fields: tuple[tuple[str, bool], ...]


def object_changes(resource: ResourcePlan) -> list[ObjectChange] | None:
    """The resource's changes grouped by object, sorted by ``Kind/name``; None when
    the resource is not of a Kubernetes kind or has no change, or a change names no object.

    An object is ``create`` when the resource is created, or when the plan adds every field it
    writes, our ownership label among them (it does not exist yet, say after an interrupted
    apply); ``replace`` when a field needs it; otherwise ``update``."""
    if resource.kind not in KUBERNETES_KINDS or not resource.changes:
        return None
    grouped: dict[str, list[tuple[str, bool, bool]]] = {}
    for change in resource.changes:
        match = _OBJECT_PATH.match(change.path)
        if match is None:
            return None
        key, path = match.groups()
        added = change.before is None
        grouped.setdefault(key, []).append((path, change.requires_replacement, added))
    objects = []
    for key, fields in sorted(grouped.items()):
        if resource.action is Action.CREATE:
            action = Action.CREATE
        elif any(replaces for _, replaces, _ in fields):
            action = Action.REPLACE
        elif all(added for _, _, added in fields) and OWNERSHIP_LABEL in (p for p, _, _ in fields):
            action = Action.CREATE
        else:
            action = Action.UPDATE
        objects.append(ObjectChange(key, action, tuple((p, r) for p, r, _ in fields)))
    return objects


def _count(n: int) -> str:
    return f"{n} field" if n == 1 else f"{n} fields"


def object_lines(objects: list[ObjectChange]) -> list[str]:
    """One line per object: symbol, ``Kind/name``, action, the count of fields it writes and,
    unless created, the fields that change (``(requires replacement)`` where one does)."""
    width = max(len(o.key) for o in objects) + 2
    lines = []
    for obj in objects:
        count = _count(len(obj.fields))
        line = f"{SYMBOL[obj.action]} {obj.key:<{width}}{obj.action.value:<8}{count}"
        if obj.action is not Action.CREATE:
            names = [p + (" (requires replacement)" if r else "") for p, r in obj.fields]
            line += ": " + ", ".join(names)
        lines.append(line)
    return lines
