"""Microsoft.Network virtual networks and subnets: address-range checks, in-use refusals,
and the VNet's inline ``subnets`` kept in sync with the child subnet resources.
Imports only kinds.base, kinds.netcommon, protocol and the standard library.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from nsc_reconcile.emulator.kinds.base import Kind, Resource
from nsc_reconcile.emulator.kinds.netcommon import (
    NETWORK_CREATE,
    NETWORK_DELETE,
    NETWORK_UPDATE,
    SUBNET_TYPE,
    VNET_TYPE,
    inline_child,
    mirror_child,
    missing_reference,
    name_of,
    parent_of,
    ref_id,
)
from nsc_reconcile.emulator.protocol import ArmError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World


def _prefixes(props: dict[str, Any]) -> list[str]:
    if props.get("addressPrefix"):
        return [str(props["addressPrefix"])]
    return [str(p) for p in props.get("addressPrefixes") or []]


def _network(prefix: str, what: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(prefix, strict=True)
    except ValueError as exc:
        raise ArmError(
            400,
            "InvalidAddressPrefixFormat",
            f"Address prefix {prefix} of resource {what} is not formatted correctly. "
            "It should follow CIDR notation, for example 10.0.0.0/24.",
        ) from exc


def _check_subnet_ranges(vnet_id: str, vnet_prefixes: list[str], subnets: list[Any]) -> None:
    """Every subnet inside the VNet's space and no two overlapping (Azure's codes)."""
    spaces = [_network(p, vnet_id) for p in vnet_prefixes]
    seen: list[tuple[str, Any]] = []
    for subnet in subnets:
        name = str(subnet.get("name", ""))
        sid = f"{vnet_id}/subnets/{name}"
        for prefix in _prefixes(subnet.get("properties") or {}):
            net = _network(prefix, sid)
            if spaces and not any(
                net.version == s.version and net.subnet_of(s)  # type: ignore[arg-type]
                for s in spaces
            ):
                raise ArmError(
                    400,
                    "NetcfgSubnetRangeOutsideVnet",
                    f"Subnet '{name}' is not valid because its IP address range is outside the "
                    f"IP address range of virtual network '{name_of(vnet_id)}'.",
                )
            for other_name, other in seen:
                if other_name != name and net.overlaps(other):
                    raise ArmError(
                        400,
                        "NetcfgSubnetRangesOverlap",
                        f"Subnet '{name}' is not valid because its IP address range overlaps "
                        f"with that of an existing subnet '{other_name}' in virtual network "
                        f"'{name_of(vnet_id)}'.",
                    )
            seen.append((name, net))


def _subnet_in_use(subnet: Resource) -> str | None:
    props = subnet.get("properties") or {}
    for key in ("privateEndpoints", "ipConfigurations"):
        for ref in props.get(key) or []:
            if ref_id(ref):
                return str(ref["id"])
    return None


def _in_use_error(subnet_id: str, user: str) -> ArmError:
    return ArmError(
        400,
        "InUseSubnetCannotBeDeleted",
        f"Subnet {name_of(subnet_id)} is in use by {user} and cannot be deleted. In order to "
        "delete the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.",
    )


class VirtualNetwork(Kind):
    """A VNet. Inline ``subnets`` are the whole set (ARM semantics): missing ones are deleted
    (refused while in use); each is also stored as a child subnet resource."""

    type = VNET_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    on_create = NETWORK_CREATE
    on_update = NETWORK_UPDATE
    on_delete = NETWORK_DELETE

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties") or {}
        space = (props.get("addressSpace") or {}).get("addressPrefixes") or []
        if not space:
            raise ArmError(
                400,
                "InvalidRequestFormat",
                "Cannot parse the request: addressSpace.addressPrefixes is required.",
            )
        subnets = props.get("subnets") or []
        _check_subnet_ranges(rid, [str(p) for p in space], subnets)
        kept = {str(s.get("name", "")).lower() for s in subnets}
        for child in world.children(rid, SUBNET_TYPE):
            user = _subnet_in_use(child)
            if str(child["name"]).lower() not in kept and user:
                raise _in_use_error(str(child["id"]), user)

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource.setdefault("properties", {})
        old = (existing or {}).get("properties", {})
        props["resourceGuid"] = old.get("resourceGuid") or world.new_guid()
        props.setdefault("enableDdosProtection", False)
        props.setdefault("privateEndpointVNetPolicies", "Disabled")
        props.setdefault("virtualNetworkPeerings", [])
        subnets = []
        for item in props.get("subnets") or []:
            sid = f"{rid}/subnets/{item.get('name', '')}"
            stored = world.get(sid)
            subnet = inline_child(rid, "subnets", SUBNET_TYPE, item, world.etag_for(SUBNET_TYPE))
            _subnet_defaults(subnet["properties"], (stored or {}).get("properties") or {})
            subnets.append(subnet)
        props["subnets"] = subnets

    def before_delete(self, world: World, rid: str, resource: Resource) -> None:
        for child in world.children(rid, SUBNET_TYPE):
            user = _subnet_in_use(child)
            if user:
                raise _in_use_error(str(child["id"]), user)

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        subnets = resource.get("properties", {}).get("subnets") or []
        kept = set()
        for subnet in subnets:
            kept.add(str(subnet["id"]).lower())
            world.put(str(subnet["id"]), subnet)
        for child in world.children(rid, SUBNET_TYPE):
            if str(child["id"]).lower() not in kept:
                world.delete(str(child["id"]))


def _subnet_defaults(props: dict[str, Any], old: dict[str, Any]) -> None:
    props.setdefault("privateEndpointNetworkPolicies", "Disabled")
    props.setdefault("privateLinkServiceNetworkPolicies", "Enabled")
    props.setdefault("delegations", [])
    # Server-maintained back references survive a rewrite of the subnet.
    for key in ("privateEndpoints", "ipConfigurations"):
        if old.get(key):
            props[key] = old[key]
        else:
            props.pop(key, None)


class Subnet(Kind):
    """A subnet as a child resource; every write is mirrored into the VNet's ``subnets``."""

    type = SUBNET_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    on_create = NETWORK_CREATE
    on_update = NETWORK_UPDATE
    on_delete = NETWORK_DELETE
    effects_at_once = True  # shown in the parent's list while it provisions
    location_required = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        vnet_id = parent_of(rid)
        vnet = world.get(vnet_id) or {}
        space = ((vnet.get("properties") or {}).get("addressSpace") or {}).get(
            "addressPrefixes"
        ) or []
        siblings = [
            s
            for s in world.children(vnet_id, SUBNET_TYPE)
            if str(s["name"]).lower() != name_of(rid).lower()
        ]
        props = body.get("properties") or {}
        if not _prefixes(props):
            raise ArmError(
                400,
                "InvalidRequestFormat",
                "Cannot parse the request: the subnet needs addressPrefix or addressPrefixes.",
            )
        mine = {"name": name_of(rid), "properties": props}
        _check_subnet_ranges(vnet_id, [str(p) for p in space], [*siblings, mine])
        if existing is not None:
            old = existing.get("properties") or {}
            user = _subnet_in_use(existing)
            if user and _prefixes(old) != _prefixes(props):
                raise ArmError(
                    400,
                    "InUseSubnetCannotBeUpdated",
                    f"Subnet {name_of(rid)} is in use and cannot be updated.",
                )
        nsg = ref_id(props.get("networkSecurityGroup"))
        if nsg and world.get(nsg) is None:
            raise missing_reference(nsg, rid)

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        resource.pop("location", None)
        _subnet_defaults(resource["properties"], (existing or {}).get("properties") or {})

    def before_delete(self, world: World, rid: str, resource: Resource) -> None:
        user = _subnet_in_use(resource)
        if user:
            raise _in_use_error(rid, user)

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        mirror_child(world, rid, resource, "subnets", VNET_TYPE)

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        mirror_child(world, rid, None, "subnets", VNET_TYPE)
