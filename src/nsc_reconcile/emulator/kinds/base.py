"""The hooks a resource type implements; the ARM engine owns everything else.

A kind module defines one ``Kind`` subclass per ARM resource type. The engine handles storage
keyed by ARM id, PUT/PATCH/GET/DELETE/list, LROs, ETags, errors, logging and faults; a kind only
validates, fills server-populated fields, and performs platform side effects via ``World``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from nsc_reconcile.emulator.protocol import ArmError

if TYPE_CHECKING:  # the engine's store, passed in at call time
    from nsc_reconcile.emulator.arm import World

Resource = dict[str, Any]


class Kind:
    """Behaviour of one ARM resource type (e.g. ``Microsoft.Network/privateEndpoints``).

    ``type`` is spelled as in the ARM id with child segments joined by "/", e.g.
    ``Microsoft.Network/privateDnsZones/virtualNetworkLinks``; record sets use
    ``Microsoft.Network/privateDnsZones/A`` (one Kind per record type).
    """

    type: ClassVar[str]
    # Status codes the REST spec allows for PUT on this type; the engine answers within them.
    put_statuses: ClassVar[tuple[int, ...]] = (200, 201)
    # Whether PUT/DELETE are long-running (Azure-AsyncOperation + provisioningState moves).
    long_running: ClassVar[bool] = False
    delete_statuses: ClassVar[tuple[int, ...]] = (200, 204)
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
