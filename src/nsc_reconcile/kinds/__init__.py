"""The kind registry: what is known about each resource kind, in one place per kind.

Every module of this package calls ``register(KindSpec(...))`` for the kinds of its area:
the model classes, the reconciler (``module:Class``, imported lazily: the model layer reads
this registry and must import no SDK), the naming rule, where the desired state holds the
kind and its children, its creation phase (deletion is the reverse), a parent edge, the SDK
clients, how an existing kind is read, retry differences, the outputs a kind offers with
their sensitivity, and the private-link facts of a private-endpoint target. Everything that
used to keep its own per-kind table (naming, state, graph, orphans, retry, the reconciler
and existing tables, redaction, the endpoint policy, the verify checks) reads them from here.

The modules are imported on the first lookup, not when this package is imported, so a model
module may import the registry while a kind module imports that model.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nsc_reconcile.naming import NameRule

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
    label_field: str = "name"  # the target model's field giving the public name's label


@dataclass(frozen=True)
class ExistingRead:
    """How an existing kind is read: its ARM provider/type, the ``Clients`` member it is read
    through and that client's operations group (``<client>.<operations>.get(rg, name)``)."""

    arm_type: str
    client: str
    operations: str


@dataclass(frozen=True)
class Parent:
    """An edge the graph adds from a child to its parent, beyond ``references()``: to
    ``<kind>/<field>`` where ``field`` is read on the resource itself or, when ``held_by`` is
    given, on the object at that path of the desired state (``secrets.vault``)."""

    kind: str
    field: str
    held_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class KindSpec:
    """Everything one kind registers.

    ``reconciler``: ``module:Class`` of the kind's reconciler
    (``nsc_reconcile.resources.postgres:PostgresqlServerReconciler``), imported and made once,
    on first use. ``name_rule``: Azure's naming rule for the kind's names. ``collection``: the
    path in the desired state holding the kind's resources (a list, or one optional object);
    ``children``: fields of one such resource that list child resources; ``phase``: the order
    kinds are created in (children right after their parent), ``apply --prune`` deletes in
    the reverse. ``parent``: an edge the graph adds beyond ``references()``. ``sdk_clients``:
    the ``Clients`` members the reconciler reads and writes through; ``existing_read``: how
    the existing kind is read. ``edges``: further graph edges (see the field).
    ``transient_codes``: Azure error codes (or Key Vault inner codes) that are transient for
    this kind only; ``propagation_codes``: those of them that mean "what this resource needs
    was just made and has not propagated yet" (a principal, a grant): when the resource follows
    a write of this apply, they are retried for ``RetryPolicy.patience_s``, not a few attempts;
    ``time_factor``: how much longer than the default its operations take."""

    kind: str
    model: type[Resource] | None = None
    existing_model: type[Resource] | None = None
    reconciler: str | None = None
    name_rule: NameRule | None = None
    collection: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    phase: int = 1000
    parent: Parent | None = None
    sdk_clients: tuple[str, ...] = ()
    existing_read: ExistingRead | None = None
    transient_codes: frozenset[str] = frozenset()
    propagation_codes: frozenset[str] = frozenset()
    time_factor: float = 1.0
    outputs: tuple[Output, ...] = ()
    private_link: tuple[PrivateLink, ...] = ()
    # Edges the graph adds beyond references() and the parent, from the whole desired state:
    # ``edges(state)`` -> (source address, target address) pairs, e.g. each Key Vault secret
    # after the deployer's grant on its vault (kinds/access.py).
    edges: Callable[[Any], Iterable[tuple[str, str]]] | None = None

    def load_reconciler(self) -> Any:
        """The reconciler instance (imports the resources module, and so its SDKs)."""
        if self.reconciler is None:
            return None
        with _LOCK:
            if self.kind not in _RECONCILERS:
                module, _, name = self.reconciler.partition(":")
                _RECONCILERS[self.kind] = getattr(importlib.import_module(module), name)()
            return _RECONCILERS[self.kind]


_SPECS: dict[str, KindSpec] = {}
_RECONCILERS: dict[str, Any] = {}
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


def name_rule(kind: str) -> NameRule:
    """The naming rule of ``kind``'s names. Raises KeyError for a kind without one."""
    found = spec(kind)
    if found is None or found.name_rule is None:
        raise KeyError(f"kind {kind!r} registers no naming rule")
    return found.name_rule


def managed() -> list[KindSpec]:
    """The specs of kinds declared in a collection of the desired state, in creation order."""
    return sorted((s for s in specs().values() if s.collection), key=lambda s: s.phase)


def delete_order() -> list[str]:
    """Managed kinds in the order ``apply --prune`` deletes them: the reverse of the order
    they are created in (an alert rule before its action group, an endpoint before the
    account it connects to, a zone's VNet links before the zone, children before their
    parent)."""
    ordered = sorted((s for s in specs().values() if s.reconciler), key=lambda s: s.phase)
    return [s.kind for s in reversed(ordered)]
