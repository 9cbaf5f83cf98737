"""The kind registry: what is known about each resource kind, in one place per kind.

Every module of this package calls ``register(KindSpec(...))`` for the kinds of its area:
the model class, the reconciler (by the resources module exporting it in ``RECONCILERS``,
imported lazily: the model layer reads this registry and must import no SDK), the outputs a
kind offers to secrets with their sensitivity, and the private-link facts of a
private-endpoint target (group id, privatelink zones, public service suffix, service port).
Everything that used to keep its own copy of these tables (the secret-source check, the
engine's redaction of sensitive outputs, the endpoint policy, the verify checks) reads them
from here.

The modules are imported on the first lookup, not when this package is imported, so a model
module may import the registry while a kind module imports that model.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsc_reconcile.model.base import Resource


@dataclass(frozen=True)
class Output:
    """A value a kind offers to others (``kind/name.output``); sensitive ones are redacted."""

    name: str
    sensitive: bool = False


@dataclass(frozen=True)
class PrivateLink:
    """One private-link sub-resource of a private-endpoint target.

    ``zones``: the privatelink zone names Azure documents for it, the first the one the
    endpoint's A record is checked in; ``service_suffix``: the public name's suffix
    (``<label>.<suffix>``); ``port``: where the service listens behind the endpoint."""

    group_id: str
    zones: tuple[str, ...]
    service_suffix: str
    port: int


@dataclass(frozen=True)
class KindSpec:
    """Everything one kind registers. ``reconciler`` names the resources module whose
    ``RECONCILERS`` holds the kind's reconciler (``nsc_reconcile.resources.postgres``)."""

    kind: str
    model: type[Resource] | None = None
    existing_model: type[Resource] | None = None
    reconciler: str | None = None
    outputs: tuple[Output, ...] = ()
    private_link: tuple[PrivateLink, ...] = ()

    def load_reconciler(self) -> Any:
        """The reconciler instance (imports the resources module, and so its SDKs)."""
        if self.reconciler is None:
            return None
        return importlib.import_module(self.reconciler).RECONCILERS[self.kind]


_SPECS: dict[str, KindSpec] = {}
_LOCK = threading.RLock()
_loaded = False


def register(spec: KindSpec) -> KindSpec:
    """Add one kind's spec; a kind registers once."""
    with _LOCK:
        if spec.kind in _SPECS and _SPECS[spec.kind] != spec:
            raise RuntimeError(f"kind {spec.kind!r} is registered twice")
        _SPECS[spec.kind] = spec
    return spec


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _LOCK:
        if _loaded:
            return
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True


def specs() -> dict[str, KindSpec]:
    """Every registered kind's spec, by kind."""
    _load()
    return dict(_SPECS)


def spec(kind: str) -> KindSpec | None:
    """The spec of ``kind``, or None when nothing registers it."""
    _load()
    return _SPECS.get(kind)


def outputs(kind: str) -> dict[str, bool]:
    """``kind``'s outputs: name -> whether the value is sensitive (empty: none)."""
    found = spec(kind)
    return {o.name: o.sensitive for o in found.outputs} if found is not None else {}


def kinds_with_outputs() -> list[str]:
    """Kinds that offer outputs, sorted."""
    return sorted(k for k, s in specs().items() if s.outputs)


def sensitive_outputs(kind: str) -> frozenset[str]:
    """The names of ``kind``'s outputs whose values are secrets."""
    return frozenset(name for name, sensitive in outputs(kind).items() if sensitive)


def private_link_kinds() -> list[str]:
    """Kinds a private endpoint may target, sorted."""
    return sorted(k for k, s in specs().items() if s.private_link)


def private_link_groups(kind: str) -> dict[str, tuple[str, ...]]:
    """``kind``'s private-link group ids -> the privatelink zones each may register in."""
    found = spec(kind)
    return {p.group_id: p.zones for p in found.private_link} if found is not None else {}


def private_link(kind: str, group_id: str | None = None) -> PrivateLink | None:
    """The private-link facts of ``kind`` for ``group_id`` (its first group when None)."""
    found = spec(kind)
    if found is None or not found.private_link:
        return None
    if group_id is None:
        return found.private_link[0]
    return next((p for p in found.private_link if p.group_id == group_id), None)


def service_port(group_id: str) -> int | None:
    """The port the service of private-link group ``group_id`` listens on, if known."""
    for found in specs().values():
        for link in found.private_link:
            if link.group_id == group_id:
                return link.port
    return None
