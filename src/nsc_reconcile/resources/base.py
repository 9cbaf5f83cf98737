"""The small protocol every resource kind implements; the engine owns everything else.

A reconciler says how to read one resource (one GET, never a write), how to express the
desired state in the same normalized flat shape as the live one, how to write it
(read-merge-write, keeping what we do not own), and what outputs it offers to others.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from nsc_reconcile import kinds
from nsc_reconcile.changes import FieldChange, ReplacePolicy, Unknown, diff_fields
from nsc_reconcile.model.base import Resource

if TYPE_CHECKING:
    from nsc_reconcile.azure import Clients
    from nsc_reconcile.model.state import DesiredState

MANAGED_BY_TAG = "managed-by"
MANAGED_BY_VALUE = "nsc-reconcile"
# Which environment owns a resource we manage; SHARED when every environment declares it
# `shared: true` (one private DNS zone for dev and prod).
ENVIRONMENT_TAG = "nsc-environment"
SHARED = "shared"

R = TypeVar("R", bound=Resource)


@dataclass
class Live:
    """A resource as read from Azure.

    ``fields`` is normalized to the reconciler's flat desired shape (dotted paths); ``raw`` is
    what the SDK returned, kept for read-merge-write; ``managed`` is whether it carries our
    managed-by marker (None where the kind cannot carry one)."""

    id: str
    fields: dict[str, Any]
    raw: Any = None
    etag: str | None = None
    managed: bool | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    # The environment named by its nsc-environment tag (SHARED, "dev"...); None when untagged.
    environment: str | None = None

    @property
    def fingerprint(self) -> str:
        """Changes whenever the resource changes (used to refuse stale saved plans)."""
        text = json.dumps([self.fields, self.etag], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Owned:
    """A live resource found by listing (orphans: pruning.py): its address in the desired
    state's terms, its id, whether it carries our managed-by mark itself, the environment its
    marks name, and for a child that carries no marks (a PostgreSQL database) its parent's
    address, whose marks stand for it; ``details``: what it is in the file's words, when the
    address alone does not say (a role assignment: who holds which role on what)."""

    address: str
    id: str
    marked: bool
    environment: str | None = None
    parent: str | None = None
    details: str | None = None


@dataclass(frozen=True)
class Listing:
    """How an ARM kind's live instances are listed and deleted, for orphans: the SDK
    operation group ``clients.<client>.<operations>``, its list method (called with the
    resource group, and for a child kind the parent's name) and its delete method (called
    with the resource group and the names in the ARM id). A child kind names the ``parent``
    kind it is listed under (each declared one); ``inherit_mark``: children carry no marks
    and are ours when their parent is; ``parent_in_address``: the address is
    ``kind/<parent>/<name>`` (else ``kind/<name>``)."""

    client: str
    operations: str
    list_method: str = "list_by_resource_group"
    delete_method: str = "begin_delete"
    parent: str | None = None
    inherit_mark: bool = False
    parent_in_address: bool = True


class Context:
    """What a reconciler may use: the state, the clients, and other resources' outputs."""

    def __init__(
        self,
        state: DesiredState,
        clients: Clients,
        output_of: Callable[[str, str], Any],
        live_of: Callable[[str], Live | None],
        register_secret: Callable[[str], None] | None = None,
    ) -> None:
        self.state = state
        self.clients = clients
        self._output_of = output_of
        self._live_of = live_of
        self._register_secret = register_secret
        self._written: dict[str, str] = {}
        self._written_lock = threading.Lock()

    def register_secret(self, value: str | None) -> None:
        """Declare a secret value this run handles: it is redacted from every output."""
        if value is not None and self._register_secret is not None:
            self._register_secret(value)

    def remember_secret(self, address: str, value: str, *, sensitive: bool = True) -> None:
        """Keep a secret value written in this run (e.g. a generated password) for other
        resources of the same run: a vault whose data plane is private cannot be read back
        from outside its VNet. Kept in memory only; registered for redaction unless declared
        not sensitive (a setting such as a URL or a deployment name stays readable)."""
        if sensitive:
            self.register_secret(value)
        with self._written_lock:
            self._written[address] = value

    def written_secret(self, address: str) -> str | None:
        """The value written to ``address`` in this run, if any."""
        with self._written_lock:
            return self._written.get(address)

    @property
    def subscription_id(self) -> str:
        return self.clients.target.subscription_id

    @property
    def resource_group(self) -> str:
        return self.state.resource_group

    def rg_id(self, resource_group: str | None = None) -> str:
        group = resource_group or self.state.resource_group
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{group}"

    def output(self, address: str, name: str) -> Any:
        """Output ``name`` of the resource at ``address``; Unknown until it exists."""
        return self._output_of(address, name)

    def live(self, address: str) -> Live | None:
        """The live state of another resource (as read in this run), or None if absent."""
        return self._live_of(address)

    def tags(self, own: dict[str, str] | None = None, *, shared: bool = False) -> dict[str, str]:
        """Tags we put on what we create: the state's tags, the resource's, managed-by and
        the owning environment. A shared resource gets no state-wide tags (they differ per
        environment: each would retag it) and is owned by SHARED."""
        ours = {MANAGED_BY_TAG: MANAGED_BY_VALUE}
        if shared:
            return {**(own or {}), **ours, ENVIRONMENT_TAG: SHARED}
        return {**self.state.tags, **(own or {}), **ours, ENVIRONMENT_TAG: self.state.environment}


class Reconciler(Generic[R]):
    """How one kind of resource is read, compared and written."""

    kind: ClassVar[str]
    # Flat field paths whose values are secrets (shown as "(sensitive)").
    sensitive: ClassVar[frozenset[str]] = frozenset()
    # Flat field paths Azure cannot change in place (a change requires replacement).
    immutable: ClassVar[frozenset[str]] = frozenset()
    # What apply may do when a replacement is needed (changes.ReplacePolicy), and, for
    # MANUAL, the steps a person takes instead / for DATA_LOSS, what is lost ({address},
    # {name} are filled in).
    replace_policy: ClassVar[ReplacePolicy] = ReplacePolicy.MANUAL
    replace_steps: ClassVar[str] = (
        "replacing {address} is not automated: delete it in Azure yourself (after saving "
        "what it holds), then run apply again to create it"
    )
    # Live fields that say whether Azure finished the resource: path -> the values that are
    # fine, the first being what a repaired resource shows (PostgreSQL's properties.state).
    # A provisioningState of Failed is never fine.
    ready_states: ClassVar[dict[str, tuple[str, ...]]] = {}
    # A failed resource is repaired (written again) or, when True, replaced.
    replace_when_failed: ClassVar[bool] = False
    # Carries Azure tags, hence our ownership marks (managed-by, nsc-environment).
    tagged: ClassVar[bool] = False
    # Deleting one deletes data (PostgreSQL, Key Vault secrets, tables, OpenAI accounts):
    # `apply --prune` deletes such an orphan only with --allow-data-loss.
    holds_data: ClassVar[bool] = False
    # How an ARM kind's orphans are found and deleted (ArmReconciler; None: not by listing).
    listing: ClassVar[Listing | None] = None
    # Names never taken for orphans: Azure's own (PostgreSQL system databases) or records
    # nsc-reconcile keeps (the vault's MAC key, the apply lease zone).
    never_orphans: ClassVar[frozenset[str]] = frozenset()
    # list_owned derives what it finds from this kind's reads (ctx.live) instead of list
    # calls of its own: the engine asks it once the reads are done.
    lists_with_read: ClassVar[bool] = False

    @property
    def sdk_clients(self) -> tuple[str, ...]:
        """The `Clients` members this kind reads and writes through (azure.SDK_MODULES keys),
        its KindSpec's `sdk_clients`: the engine builds them before its worker threads
        start, so no SDK import runs in a worker."""
        found = kinds.spec(self.kind)
        return found.sdk_clients if found is not None else ()

    def list_owned(self, ctx: Context, scope: tuple[str, str] | None) -> list[Owned]:
        """The live instances of this kind in ``scope`` (None: the state's resource group;
        else (resource group, parent name) of a child kind) that carry our managed-by mark,
        or, for a kind whose children carry none, every child. Never writes; the engine
        decides which are orphans. Default: none (the kind is not looked for)."""
        return []

    def delete_orphan(self, ctx: Context, resource_id: str) -> None:
        """Delete the orphan ``resource_id`` (found by ``list_owned``) and wait; absent
        already is fine. Only `apply --prune` calls it."""
        raise NotImplementedError(f"{self.kind}: deleting orphans is not supported")

    def resource_id(self, ctx: Context, resource: R) -> str:
        """The ARM id (or another stable identifier) of the resource."""
        raise NotImplementedError

    def read(self, ctx: Context, resource: R) -> Live | None:
        """Read the live resource; None when it does not exist. Never writes."""
        raise NotImplementedError

    def desired(self, ctx: Context, resource: R) -> dict[str, Any]:
        """The declared fields, normalized to the same flat shape as ``Live.fields``."""
        raise NotImplementedError

    def write(self, ctx: Context, resource: R, live: Live | None) -> None:
        """Create or update (merging into ``live.raw`` what we do not own) and wait.

        ARM kinds never override it (``ArmReconciler.write`` is generic: they fill in its
        hooks); a kind that is never written (existing references) keeps this refusal."""
        raise NotImplementedError(f"{resource.address}: kind {self.kind} is never written")

    def output(self, ctx: Context, resource: R, live: Live, name: str) -> Any:
        """Output ``name`` (see model.secrets.OUTPUTS) of the existing resource."""
        raise KeyError(f"{self.kind} has no output {name!r}")

    def lock_key(self, resource: R) -> str | None:
        """Writes sharing a key never run at the same time (Azure single-writer scopes)."""
        return None

    def notes(self, ctx: Context, resource: R) -> list[str]:
        """What a plan must say about this resource beyond its changes (e.g. a public path
        the tool cannot close). Never writes."""
        return []

    def describe(self, ctx: Context, resource: R) -> str | None:
        """One line a plan shows under the resource, in the file's words, when its fields
        are ids a reader cannot check (a role assignment: who gets which role on what);
        None: its changes speak for themselves. Pure: no call, never raises."""
        return None

    def refusal(self, ctx: Context, resource: R, live: Live | None) -> str | None:
        """Why apply must not write this resource as it stands live (the plan blocks it with
        this text); None when it may. Never writes."""
        return None

    def health(self, live: Live) -> list[FieldChange]:
        """What says the live resource is broken beyond its declared fields (a Failed
        provisioningState, a state outside ``ready_states``): each is a change apply makes,
        a repair (written again) or, with requires_replacement, a replacement. Pure."""
        found = []
        state = live.fields.get("properties.provisioningState")
        if isinstance(state, str) and state.lower() == "failed":
            found.append(
                FieldChange("properties.provisioningState", state, "Succeeded",
                            requires_replacement=self.replace_when_failed)
            )  # fmt: skip
        for path, fine in self.ready_states.items():
            value = live.fields.get(path)
            if isinstance(value, str) and value.lower() not in {f.lower() for f in fine}:
                found.append(
                    FieldChange(path, value, fine[0], requires_replacement=self.replace_when_failed)
                )
        return found

    def refine(self, ctx: Context, resource: R, live: Live) -> Live:
        """Derive comparable fields from what was read (pure: no calls). Default: as read."""
        return live

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Map flat fields to a comparable form; the default compares values as they are."""
        return fields

    def changes(self, desired: dict[str, Any], live: Live | None) -> list[FieldChange]:
        """What differs between ``desired`` and ``live``, in this kind's terms, and what
        ``health`` finds broken."""
        found = self.field_changes(desired, live)
        return found + (self.health(live) if live is not None else [])

    def field_changes(self, desired: dict[str, Any], live: Live | None) -> list[FieldChange]:
        """The declared fields that differ (``changes`` without ``health``)."""
        return diff_fields(
            desired,
            live.fields if live is not None else None,
            sensitive=self.sensitive,
            immutable=self.immutable,
            normalize=self.normalize,
        )


def has_unknown(values: dict[str, Any]) -> bool:
    """Whether any desired value is only known after apply."""
    return any(isinstance(v, Unknown) for v in values.values())


def norm_id(value: str | None) -> str | None:
    """ARM ids compare case-insensitively; compare them lower-cased, without trailing /."""
    return value.rstrip("/").lower() if value else value


def norm_location(value: str | None) -> str | None:
    """`Korea Central` and `koreacentral` are one location."""
    return value.replace(" ", "").lower() if value else value


# ---------------------------------------------------------------- wire-shape helpers
def to_wire(obj: Any) -> dict[str, Any]:
    """An SDK model (msrest-style or hybrid) or dict as Azure's REST JSON (all fields)."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    serialize = getattr(obj, "serialize", None)
    if callable(serialize):  # msrest-style models
        result: dict[str, Any] = serialize(keep_readonly=True)
        return result
    as_dict = getattr(obj, "as_dict", None)
    if callable(as_dict):  # hybrid (TypeSpec) models: Mapping with REST names
        return dict(as_dict())
    raise TypeError(f"cannot read {type(obj).__name__} as REST JSON")


def writable_wire(obj: Any) -> dict[str, Any]:
    """Like ``to_wire`` but without read-only fields: what a PUT may send back."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return dict(obj)
    serialize = getattr(obj, "serialize", None)
    if callable(serialize):
        result: dict[str, Any] = serialize(keep_readonly=False)
        return result
    as_dict = getattr(obj, "as_dict", None)
    if callable(as_dict):
        return dict(as_dict(exclude_readonly=True))
    raise TypeError(f"cannot write {type(obj).__name__} as REST JSON")


def flatten(wire: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"properties": {"a": 1}}`` -> ``{"properties.a": 1}``; lists are leaves."""
    flat: dict[str, Any] = {}
    for key, value in wire.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``flatten`` (tags keep their dotted remainder as one key)."""
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        head, _, rest = path.partition(".")
        if head == "tags":
            nested.setdefault("tags", {})[rest] = value
            continue
        parts = path.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def deep_merge(base: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """``ours`` over ``base``: mappings merge, anything else is replaced by ours."""
    merged = dict(base)
    for key, value in ours.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def tag_fields(tags: dict[str, str] | None) -> dict[str, Any]:
    """Tags as flat fields (``tags.<name>``), so only our tags are compared."""
    return {f"tags.{k}": v for k, v in (tags or {}).items()}


def is_managed(tags: dict[str, str] | None) -> bool:
    return (tags or {}).get(MANAGED_BY_TAG) == MANAGED_BY_VALUE


def environment_of(tags: dict[str, str] | None) -> str | None:
    """The owning environment recorded in the nsc-environment tag, if any."""
    value = (tags or {}).get(ENVIRONMENT_TAG)
    return str(value) if value else None


# ARM types whose REST specification declares If-Match / If-None-Match on PUT and PATCH (only
# Private DNS among what we write); for the others the header is not sent: their RPs do not
# promise to honour it.
IF_MATCH_TYPES = frozenset(
    {
        "microsoft.network/privatednszones",
        "microsoft.network/privatednszones/virtualnetworklinks",
    }
)


def arm_names(resource_id: str) -> list[str]:
    """The resource names in an ARM id, parent first: ``[nsg, rule]`` of a security rule."""
    _, _, tail = resource_id.rpartition("/providers/")
    parts = tail.strip("/").split("/")
    return parts[2::2] if len(parts) > 2 else []


def arm_type(resource_id: str) -> str:
    """``Microsoft.Network/privateDnsZones/virtualNetworkLinks`` (lower-cased) of an ARM id."""
    _, _, tail = resource_id.lower().rpartition("/providers/")
    parts = tail.strip("/").split("/")
    return "/".join([parts[0], *parts[1::2]]) if len(parts) > 1 else ""


@contextmanager
def if_match(resource_id: str, live: Live | None) -> Iterator[None]:
    """Within the block, the write of ``resource_id`` is conditional where its API honours
    it (IF_MATCH_TYPES): If-Match with the ETag of ``live`` as read, If-None-Match: * for a
    create. Azure then answers 412 when someone wrote it since the read; the engine re-reads
    and re-plans that resource (retry.py: PreconditionFailed)."""
    if arm_type(resource_id) not in IF_MATCH_TYPES or (live is not None and not live.etag):
        yield
        return
    from nsc_reconcile.azure import conditional_write

    with conditional_write(resource_id, live.etag if live is not None else None):
        yield


class ReplacementNotAutomatedError(Exception):
    """A write needs a replacement its kind's ``replace_policy`` leaves to a person (manual).
    Raised by ``ArmReconciler.write`` before any call; the engine refuses such a change first
    (plan and apply), so this guards direct calls of ``write``."""


class ArmReconciler(Reconciler[R]):
    """An ARM resource read with one GET and written with one PUT of a merged body.

    Subclasses say how to GET and PUT with their SDK client and which fields they declare
    (``declared``: flat REST paths such as ``properties.publicNetworkAccess``). Writes start
    from the live resource without its read-only fields, so what others set survives.

    ``write`` is the same for every ARM kind; a kind changes it through hooks, from the
    narrowest to the widest: ``kept`` (the live body a write starts from), ``sent`` (the flat
    fields written), ``body`` (the whole request body), ``send`` (the calls: one ``put`` by
    default; a kind whose write is several calls overrides it and says why), ``delete`` (the
    first half of a replacement the policy lets apply do)."""

    tagged: ClassVar[bool] = True
    set_like: ClassVar[frozenset[str]] = frozenset()  # list fields compared as sets
    # Values the service assumes when a field is absent: absent compares equal to them, and
    # a declared field equal to its default is not sent when the live resource omits it.
    defaults: ClassVar[dict[str, Any]] = {}

    def get(self, ctx: Context, resource: R) -> Any:
        """The SDK GET; raises ResourceNotFoundError when absent."""
        raise NotImplementedError

    def mark(self, wire: dict[str, Any]) -> tuple[bool, str | None]:
        """Whether a listed resource (REST JSON) carries our managed-by mark, and the
        environment its marks name. Default: its tags."""
        tags = wire.get("tags")
        return is_managed(tags), environment_of(tags)

    def _operations(self, ctx: Context) -> tuple[Listing, Any]:
        assert self.listing is not None
        return self.listing, getattr(
            getattr(ctx.clients, self.listing.client), self.listing.operations
        )

    def list_owned(self, ctx: Context, scope: tuple[str, str] | None) -> list[Owned]:
        """One list call (``listing``) in ``scope``; a missing parent lists nothing."""
        from azure.core.exceptions import ResourceNotFoundError

        if self.listing is None:
            return []
        listing, operations = self._operations(ctx)
        group, parent = scope if scope is not None else (ctx.resource_group, None)
        args = (group,) if parent is None else (group, parent)
        try:
            items = [to_wire(item) for item in getattr(operations, listing.list_method)(*args)]
        except ResourceNotFoundError:
            return []
        found = []
        for wire in items:
            rid = str(wire.get("id") or "")
            names = arm_names(rid)
            if not names or names[-1] in self.never_orphans:
                continue
            marked, environment = self.mark(wire)
            if not marked and not listing.inherit_mark:
                continue
            key = "/".join(names[-2:]) if listing.parent_in_address else names[-1]
            parent_address = f"{listing.parent}/{names[-2]}" if listing.parent else None
            found.append(Owned(f"{self.kind}/{key}", rid, marked, environment, parent_address))
        return found

    def delete_orphan(self, ctx: Context, resource_id: str) -> None:
        """The ``listing``'s delete with the resource group and names of ``resource_id``."""
        from azure.core.exceptions import ResourceNotFoundError

        if self.listing is None:
            super().delete_orphan(ctx, resource_id)
            return
        listing, operations = self._operations(ctx)
        try:
            answer = getattr(operations, listing.delete_method)(
                resource_id.split("/")[4], *arm_names(resource_id)
            )
            if hasattr(answer, "result"):  # a poller: wait for the deletion
                answer.result()
        except ResourceNotFoundError:
            return

    def put(self, ctx: Context, resource: R, body: dict[str, Any], etag: str | None) -> None:
        """The SDK create-or-update with ``body``; waits for completion."""
        raise NotImplementedError

    def declared(self, ctx: Context, resource: R) -> dict[str, Any]:
        """The fields we own, flat, as they are written."""
        raise NotImplementedError

    def read(self, ctx: Context, resource: R) -> Live | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            raw = self.get(ctx, resource)
        except ResourceNotFoundError:
            return None
        wire = to_wire(raw)
        live = Live(
            id=str(wire.get("id") or self.resource_id(ctx, resource)),
            fields=flatten(wire),
            raw=raw,
            etag=wire.get("etag"),
            managed=is_managed(wire.get("tags")) if self.tagged else None,
            environment=environment_of(wire.get("tags")) if self.tagged else None,
        )
        return self.refine(ctx, resource, live)

    def desired(self, ctx: Context, resource: R) -> dict[str, Any]:
        return self.declared(ctx, resource)

    def write(self, ctx: Context, resource: R, live: Live | None) -> None:
        """The declared fields once; a change that needs replacement is refused before any
        call when ``replace_policy`` is manual, else (apply was allowed to: engine.py) the
        live resource is deleted first (``delete``) and created again; then ``send``,
        conditional where the API honours it (``if_match``)."""
        fields = self.declared(ctx, resource)
        if live is not None:
            fixed = [c.path for c in self.changes(fields, live) if c.requires_replacement]
            if fixed:
                self.refuse_manual_replacement(resource, fixed)
                self.delete(ctx, resource, live)
                live = None
        with if_match(self.resource_id(ctx, resource), live):
            self.send(ctx, resource, fields, live)

    def refuse_manual_replacement(self, resource: R, paths: list[str]) -> None:
        """Raise ReplacementNotAutomatedError, with the kind's ``replace_steps``, when its
        ``replace_policy`` is manual; nothing otherwise."""
        if self.replace_policy is not ReplacePolicy.MANUAL:
            return
        steps = self.replace_steps.format(address=resource.address, name=resource.name)
        raise ReplacementNotAutomatedError(
            f"{resource.address}: {', '.join(paths)} cannot change in place and replacing it "
            f"is not automated: {steps}"
        )

    def delete(self, ctx: Context, resource: R, live: Live) -> None:
        """Delete ``live`` and wait: the first half of a replacement (automated, or data-loss
        confirmed). Default: the ``listing``'s delete (as for orphans)."""
        if self.listing is None:
            raise NotImplementedError(f"{self.kind}: replacing (delete, create) is not supported")
        self.delete_orphan(ctx, live.id)

    def kept(self, live: Live | None) -> dict[str, Any]:
        """The live body a write starts from: everything but read-only fields (others'
        settings survive); empty for a create."""
        return writable_wire(live.raw) if live is not None else {}

    def sent(
        self, ctx: Context, resource: R, fields: dict[str, Any], live: Live | None
    ) -> dict[str, Any]:
        """The flat fields written: the declared ``fields`` but a default the live resource
        omits (``defaults``)."""
        current = live.fields if live is not None else {}
        return {
            path: value
            for path, value in fields.items()
            if not (path in self.defaults and value == self.defaults[path] and path not in current)
        }

    def body(
        self, ctx: Context, resource: R, fields: dict[str, Any], live: Live | None
    ) -> dict[str, Any]:
        """The request body: ``sent`` deep-merged over ``kept``."""
        return deep_merge(self.kept(live), unflatten(self.sent(ctx, resource, fields, live)))

    def send(self, ctx: Context, resource: R, fields: dict[str, Any], live: Live | None) -> None:
        """The write's calls, once any replacement is settled (``live`` None: a create).
        Default: one ``put`` of ``body``."""
        body = self.body(ctx, resource, fields, live)
        self.put(ctx, resource, body, live.etag if live is not None else None)

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Casing of ids and locations and order of set-like lists never count as changes."""
        normalized: dict[str, Any] = {}
        fields = {**{p: v for p, v in self.defaults.items() if p not in fields}, **fields}
        for path, value in fields.items():
            leaf = path.rsplit(".", 1)[-1]
            if isinstance(value, Unknown):
                normalized[path] = value
            elif path == "location" and isinstance(value, str):
                normalized[path] = norm_location(value)
            elif isinstance(value, str) and (leaf == "id" or leaf.endswith("Id")) and "/" in value:
                normalized[path] = norm_id(value)
            elif path in self.set_like and isinstance(value, list):
                normalized[path] = sorted(value, key=lambda v: json.dumps(v, sort_keys=True))
            else:
                normalized[path] = value
        return normalized


M = TypeVar("M")


def sdk_model(model: type[M], body: dict[str, Any]) -> M:
    """A REST-shaped ``body`` as an instance of the SDK model class ``model``."""
    if issubclass(model, MutableMapping):  # hybrid (TypeSpec) models take the mapping
        hybrid: Callable[[dict[str, Any]], M] = model
        return hybrid(body)
    deserialize = getattr(model, "deserialize", None)
    if deserialize is None:
        raise TypeError(f"{model.__name__} is not an Azure SDK model")
    result: M = deserialize(body)  # msrest-style: REST keys -> model
    return result
