"""The reconcilers, one module per area: the registry the engine looks them up in.

Every module of this package may export ``RECONCILERS: dict[kind, Reconciler]``; they are
collected here, so adding a kind is one new module (and its test cases), nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from nsc_reconcile.model.base import Resource
from nsc_reconcile.resources.base import Reconciler
from nsc_reconcile.resources.existing import _TYPES as _EXISTING_TYPES
from nsc_reconcile.resources.existing import ExistingReconciler


def _collect() -> dict[str, Reconciler[Any]]:
    found: dict[str, Reconciler[Any]] = {}
    for module in pkgutil.iter_modules(__path__):
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        for kind, reconciler in getattr(loaded, "RECONCILERS", {}).items():
            if kind in found:
                raise RuntimeError(f"two reconcilers for {kind}: {module.name} and another")
            found[kind] = reconciler
    return found


_RECONCILERS: dict[str, Reconciler[Any]] = _collect()
_EXISTING: dict[str, Reconciler[Any]] = {k: ExistingReconciler(k) for k in _EXISTING_TYPES}


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
