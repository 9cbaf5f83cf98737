"""The reconcilers, one module per area, looked up through the kind registry.

Each kind's ``KindSpec`` (nsc_reconcile.kinds) names its reconciler class (``module:Class``)
and how an existing kind is read; this package makes them into the tables the engine reads.
Importing it imports every reconciler module, and so the SDKs (the model layer never does).
"""

from __future__ import annotations

from typing import Any

from nsc_reconcile import kinds
from nsc_reconcile.model.base import Resource
from nsc_reconcile.resources.base import Reconciler
from nsc_reconcile.resources.existing import ExistingReconciler

_RECONCILERS: dict[str, Reconciler[Any]] = {
    kind: spec.load_reconciler() for kind, spec in kinds.specs().items() if spec.reconciler
}
_EXISTING: dict[str, Reconciler[Any]] = {
    kind: ExistingReconciler(kind, spec.existing_read)
    for kind, spec in kinds.specs().items()
    if spec.existing_read is not None
}


def has_reconciler(resource: Resource) -> bool:
    table = _EXISTING if resource.existing else _RECONCILERS
    return resource.kind in table


def reconciler_for(resource: Resource) -> Reconciler[Any]:
    """The reconciler of ``resource``'s kind (existing references share a generic one)."""
    table = _EXISTING if resource.existing else _RECONCILERS
    try:
        return table[resource.kind]
    except KeyError:
        role = "existing" if resource.existing else "managed"
        raise NotImplementedError(f"no reconciler for {role} kind {resource.kind!r}") from None


def supported_kinds() -> list[str]:
    """Managed kinds that have a reconciler."""
    return sorted(_RECONCILERS)


def managed_reconcilers() -> dict[str, Reconciler[Any]]:
    """Every managed kind's reconciler, by kind (orphans are looked for per kind)."""
    return dict(_RECONCILERS)
