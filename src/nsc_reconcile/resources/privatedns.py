"""Private DNS zones (location global) and their virtual network links.

Zone records are not ours: private endpoint zone groups write them. We own the zone's
existence and tags, and each link's VNet, registration and resolution policy.
"""

from __future__ import annotations

from typing import Any, ClassVar

from nsc_reconcile.lease import LEASE_ZONE
from nsc_reconcile.model.network import PrivateDnsZone, PrivateDnsZoneLink
from nsc_reconcile.resources.base import ArmReconciler, Context, Listing, sdk_model, tag_fields


class PrivateDnsZoneReconciler(ArmReconciler[PrivateDnsZone]):
    kind = "private_dns_zone"
    listing = Listing("privatedns", "private_zones")
    never_orphans = frozenset({LEASE_ZONE})  # the apply lease (lease.py)

    def resource_id(self, ctx: Context, resource: PrivateDnsZone) -> str:
        return f"{ctx.rg_id()}/providers/Microsoft.Network/privateDnsZones/{resource.name}"

    def get(self, ctx: Context, resource: PrivateDnsZone) -> Any:
        return ctx.clients.privatedns.private_zones.get(ctx.resource_group, resource.name)

    def put(
        self, ctx: Context, resource: PrivateDnsZone, body: dict[str, Any], etag: str | None
    ) -> None:
        from azure.mgmt.privatedns.models import PrivateZone

        ctx.clients.privatedns.private_zones.begin_create_or_update(
            ctx.resource_group, resource.name, sdk_model(PrivateZone, body)
        ).result()

    def declared(self, ctx: Context, resource: PrivateDnsZone) -> dict[str, Any]:
        return {"location": "global", **tag_fields(ctx.tags(resource.tags, shared=resource.shared))}


class PrivateDnsZoneLinkReconciler(ArmReconciler[PrivateDnsZoneLink]):
    kind = "private_dns_zone_link"
    listing = Listing(
        "privatedns", "virtual_network_links", list_method="list", parent="private_dns_zone"
    )
    # resolutionPolicy is newer than the 2024-06-01 schema: absent means Default, and Default
    # is not sent, so requests stay valid against that api-version's specification.
    defaults: ClassVar[dict[str, Any]] = {"properties.resolutionPolicy": "Default"}

    def resource_id(self, ctx: Context, resource: PrivateDnsZoneLink) -> str:
        return (
            f"{ctx.rg_id()}/providers/Microsoft.Network/privateDnsZones/{resource.zone}"
            f"/virtualNetworkLinks/{resource.name}"
        )

    def _zone_group(self, ctx: Context, resource: PrivateDnsZoneLink) -> str:
        zone = ctx.live(f"private_dns_zone/{resource.zone}")
        if zone is not None:
            return zone.id.split("/")[4]  # an existing zone may live in another group
        return ctx.resource_group

    def get(self, ctx: Context, resource: PrivateDnsZoneLink) -> Any:
        return ctx.clients.privatedns.virtual_network_links.get(
            self._zone_group(ctx, resource), resource.zone, resource.name
        )

    def put(
        self, ctx: Context, resource: PrivateDnsZoneLink, body: dict[str, Any], etag: str | None
    ) -> None:
        from azure.mgmt.privatedns.models import VirtualNetworkLink

        ctx.clients.privatedns.virtual_network_links.begin_create_or_update(
            self._zone_group(ctx, resource),
            resource.zone,
            resource.name,
            sdk_model(VirtualNetworkLink, body),
        ).result()

    def declared(self, ctx: Context, resource: PrivateDnsZoneLink) -> dict[str, Any]:
        vnet = ctx.live(f"virtual_network/{resource.virtual_network}")
        vnet_id = vnet.id if vnet is not None else (
            f"{ctx.rg_id()}/providers/Microsoft.Network/virtualNetworks/{resource.virtual_network}"
        )  # fmt: skip
        return {
            "location": "global",
            "properties.virtualNetwork.id": vnet_id,
            "properties.registrationEnabled": resource.registration_enabled,
            "properties.resolutionPolicy": resource.resolution_policy,
            **tag_fields(ctx.tags(resource.tags, shared=resource.shared)),
        }
