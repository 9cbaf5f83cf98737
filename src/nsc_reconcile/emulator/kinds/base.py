"""The hooks a resource type implements; the ARM engine owns everything else.

A kind module defines one ``Kind`` subclass per ARM resource type. The engine handles storage
keyed by ARM id, PUT/PATCH/GET/DELETE/list, LROs, ETags, errors, logging and faults; a kind only
validates, fills server-populated fields, and performs platform side effects via ``World``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nsc_reconcile.emulator.protocol import ArmError, Request, Response

if TYPE_CHECKING:  # the engine's store, passed in at call time
    from nsc_reconcile.emulator.arm import World

Resource = dict[str, Any]

# Polling headers of a long-running answer.
ASYNC_OPERATION = ("Azure-AsyncOperation",)
LOCATION = ("Location",)
BOTH = ("Azure-AsyncOperation", "Location")


@dataclass(frozen=True)
class Reply:
    """How Azure answers one write verb (create, update, delete) of a type, as recorded
    sessions show it (tests/conformance).

    ``headers`` empty: the work is done when the answer is sent, unless ``state`` names a
    transitional provisioningState (Key Vault's ``RegisteringDns``): then the answer and later
    GETs show it until the world's duration for the type has passed, with no operation to poll.
    ``headers`` set: a long-running operation polled through them; the resource shows
    ``state`` (default ``Creating``/``Updating``/``Deleting``) until it ends. A 202 has no body.
    """

    status: int
    headers: tuple[str, ...] = ()
    state: str | None = None
    # An update that changes nothing but tags, where the provider answers it otherwise
    # (Network: Succeeded at once; Cognitive Services: synchronous 200).
    tags_only: Reply | None = None

    @property
    def long_running(self) -> bool:
        return bool(self.headers)


def only_tags_differ(new: Resource, old: Resource) -> bool:
    """Whether an update changes nothing but tags (provisioningState and etags aside)."""

    def stripped(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: stripped(v) for k, v in value.items() if k not in ("etag", "provisioningState")
            }
        if isinstance(value, list):
            return [stripped(v) for v in value]
        return value

    same = stripped(new.get("properties")) == stripped(old.get("properties"))
    return same and new.get("tags") != old.get("tags")


class Kind:
    """Behaviour of one ARM resource type (e.g. ``Microsoft.Network/privateEndpoints``).

    ``type`` is spelled as in the ARM id with child segments joined by "/", e.g.
    ``Microsoft.Network/privateDnsZones/virtualNetworkLinks``; record sets use
    ``Microsoft.Network/privateDnsZones/A`` (one Kind per record type).
    """

    type: ClassVar[str]
    # How a create (PUT of a new resource), an update (PUT/PATCH of an existing one) and a
    # delete are answered: status, polling headers, transitional state. Always within what the
    # type's REST spec allows (the SDKs refuse other codes); from recordings where one exists.
    on_create: ClassVar[Reply] = Reply(201)
    on_update: ClassVar[Reply] = Reply(200)
    on_delete: ClassVar[Reply] = Reply(200)
    delete_missing_status: ClassVar[int] = 204
    # Status of the Azure-AsyncOperation URL while the operation runs (private DNS: 202).
    poll_in_progress_status: ClassVar[int] = 200
    # The 404 code of a GET for a resource that existed and was deleted; some providers
    # (Network private endpoints, Cognitive Services deployments) answer NotFound there,
    # ResourceNotFound (ARM's own) for a name never used.
    gone_code: ClassVar[str] = "ResourceNotFound"
    gone_message: ClassVar[str] = "Resource {id} not found."
    # The ``status`` an operation reports while it runs: ARM's ``InProgress``, or the
    # resource's own transitional state (Cognitive Services says Creating/Updating).
    running_status_is_state: ClassVar[bool] = False
    # Whether ``after_write`` also runs when a long-running write is accepted (not only when it
    # ends): a child mirrored into its parent's list shows there at once, as on Azure, and a
    # parent's update finishing meanwhile does not drop it.
    effects_at_once: ClassVar[bool] = False
    # Whether a 202 to a delete carries the resource (in its Deleting state) as its body.
    delete_answer_shows_resource: ClassVar[bool] = False
    patch_supported: ClassVar[bool] = True
    # Top-level property paths (dotted, under the resource) that cannot change after create,
    # mapped to the ARM error code Azure answers with.
    immutable: ClassVar[dict[str, str]] = {}
    location_required: ClassVar[bool] = True
    # Server-populated envelope fields, on where the type's REST schema has them.
    etag_field: ClassVar[bool] = True
    type_field: ClassVar[bool] = True
    system_data: ClassVar[bool] = True
    provisioning_state: ClassVar[bool] = True
    # Error bodies as the type's REST spec defines them: ARM's {"error": {...}} by default,
    # or {code, message} at the top level (older Insights and some Network operations).
    flat_errors: ClassVar[bool] = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        """Raise ArmError (400 InvalidParameter, 409 ...) when Azure would refuse ``body``."""

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        """Fill server-populated fields in place (endpoints, FQDNs, IPs, defaults)."""

    def reply(self, resource: Resource, existing: Resource | None) -> Reply:
        """How a write of ``resource`` over ``existing`` (None: a create) is answered: by
        default ``on_create``/``on_update`` (its ``tags_only`` variant when only tags move)."""
        if existing is None:
            return self.on_create
        update = self.on_update
        if update.tags_only is not None and only_tags_differ(resource, existing):
            return update.tags_only
        return update

    def answer(self, world: World, request: Request, response: Response) -> Response:
        """The last word on any answer for a path of this type (success or error): headers
        that are not polling headers (a managed identity's 201 carries ``Location: <its own
        id>``), a provider's own 404s, list filters. By default the answer as it is."""
        return response

    def accepted_body(self, verb: str, started: str) -> Any:
        """The body of a 202 answer to a write (``verb`` put or delete); None for none.
        PostgreSQL answers ``{"operation": ..., "startTime": ...}``."""
        return None

    def pending(self, world: World, rid: str, resource: Resource) -> None:
        """Edit in place what a resource shows while its operation runs: blank what Azure
        fills only when it completes (a private endpoint's ``customDnsConfigs``)."""

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        """Platform side effects after a successful create/update (e.g. A records)."""

    def before_delete(self, world: World, rid: str, resource: Resource) -> None:
        """Raise ArmError to refuse a delete (e.g. a NIC owned by a private endpoint)."""

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        """Platform side effects after a delete."""

    def view(self, world: World, rid: str, stored: Resource | None) -> Resource | None:
        """The resource as GET shows it; by default what is stored. A kind whose truth lives
        elsewhere (Key Vault secrets, written by the data plane too) derives it here."""
        return stored

    def list_view(self, world: World, parent_rid: str, items: list[Resource]) -> list[Resource]:
        """The children a list shows; by default the stored ones."""
        return items

    def action(self, world: World, rid: str, name: str, body: Any) -> Any:
        """POST ``{rid}/{name}`` (e.g. ``listKeys``). Return the JSON body for 200."""
        raise ArmError(404, "NotFound", f"action {name} is not supported on {self.type}")
