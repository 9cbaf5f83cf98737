"""ARM kinds for Azure Private DNS (api-version 2024-06-01): zones, VNet links, record sets.

Zones and links are long-running (PUT/PATCH/DELETE answer 202 + Azure-AsyncOperation, as the
service does; the spec also allows 200/201); record sets are synchronous 200/201, listed per
type (``{zone}/A``) or all at once (``{zone}/ALL``). A zone gets its SOA record set ``@`` at
creation and keeps its record/link counters current. Touches only
``World``: never the DNS server, which reads these resources when asked.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, ClassVar

from nsc_reconcile.emulator.kinds.base import BOTH, Kind, Reply, Resource
from nsc_reconcile.emulator.protocol import ArmError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

ZONE_TYPE = "Microsoft.Network/privateDnsZones"
LINK_TYPE = f"{ZONE_TYPE}/virtualNetworkLinks"
VNET_TYPE = "Microsoft.Network/virtualNetworks"
MAX_RECORD_SETS = 25000
MAX_LINKS = 1000
MAX_REGISTRATION_LINKS = 100
SOA_DEFAULTS: dict[str, Any] = {
    "host": "azureprivatedns.net",
    "email": "azureprivatedns-host.microsoft.com",
    "serialNumber": 1,
    "refreshTime": 3600,
    "retryTime": 300,
    "expireTime": 2419200,
    "minimumTtl": 10,
}


def zone_id_of(rid: str) -> str:
    """The zone id of a zone child (``.../privateDnsZones/{zone}/{type}/{name}``)."""
    head, _, _ = rid.rpartition("/")
    return head.rpartition("/")[0]


def _zone_name(zone_rid: str) -> str:
    return zone_rid.rsplit("/", 1)[-1]


def _require_global(body: Resource, what: str) -> None:
    location = body.get("location")
    if location is not None and str(location).replace(" ", "").lower() != "global":
        raise ArmError(
            400,
            "LocationNotAvailableForResourceType",
            f"The provided location '{location}' is not available for resource type "
            f"'{what}'. List of available regions for the resource type is 'global'.",
        )


def record_sets_of(world: World, zone_rid: str) -> list[Resource]:
    """Every record set of a zone, all types (the SOA too), oldest first."""
    prefix = zone_rid.lower().rstrip("/") + "/"
    return [
        r
        for r in world.all_resources()
        if str(r.get("id", "")).lower().startswith(prefix)
        and str(r.get("type", "")).lower() != LINK_TYPE.lower()
        and str(r.get("id", "")).lower().count("/") == prefix.count("/") + 1
    ]


def refresh_zone_counters(world: World, zone_rid: str) -> None:
    """Recount a zone's record sets and links into its read-only properties."""
    zone = world.get(zone_rid)
    if zone is None:
        return  # the zone itself is being deleted
    record_sets = record_sets_of(world, str(zone["id"]))
    links = world.children(str(zone["id"]), LINK_TYPE)
    registering = [k for k in links if (k.get("properties") or {}).get("registrationEnabled")]
    props = zone.setdefault("properties", {})
    counts = {
        "numberOfRecordSets": len(record_sets),
        "numberOfVirtualNetworkLinks": len(links),
        "numberOfVirtualNetworkLinksWithRegistration": len(registering),
    }
    if all(props.get(k) == v for k, v in counts.items()):
        return
    props.update(counts)
    world.put(str(zone["id"]), zone)


class _PrivateDnsOperationKind(Kind):
    """Zones and VNet links: the private DNS operations. Recorded
    (Test_Networking_PrivateDnsZone_20240601_CRUD): every write is 202 with both headers and
    a ``{}`` body for a PUT; the operation answers 202 while it runs."""

    system_data = False  # not in the 2024-06-01 privatedns schema
    on_create = Reply(202, BOTH)
    on_update = Reply(202, BOTH)
    on_delete = Reply(202, BOTH)
    poll_in_progress_status = 202

    def accepted_body(self, verb: str, started: str) -> Any:
        return {} if verb == "put" else None


class PrivateDnsZoneKind(_PrivateDnsOperationKind):
    """``Microsoft.Network/privateDnsZones``: location ``global``, SOA ``@`` made with it."""

    type = ZONE_TYPE
    immutable: ClassVar[dict[str, str]] = {"location": "LocationNotAvailableForResourceType"}

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        _require_global(body, self.type)
        name = _zone_name(rid)
        labels = name.rstrip(".").split(".")
        if len(labels) < 2 or any(not label or len(label) > 63 for label in labels):
            raise ArmError(
                400,
                "BadRequest",
                f"The zone name '{name}' is invalid. A zone name needs at least two labels of "
                "1 to 63 characters.",
            )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        resource["location"] = "global"
        props = resource["properties"]
        old = (existing or {}).get("properties") or {}
        props["maxNumberOfRecordSets"] = MAX_RECORD_SETS
        props["maxNumberOfVirtualNetworkLinks"] = MAX_LINKS
        props["maxNumberOfVirtualNetworkLinksWithRegistration"] = MAX_REGISTRATION_LINKS
        for counter in (
            "numberOfRecordSets",
            "numberOfVirtualNetworkLinks",
            "numberOfVirtualNetworkLinksWithRegistration",
        ):
            props[counter] = old.get(counter, 1 if counter == "numberOfRecordSets" else 0)
        props["internalId"] = old.get("internalId") or _internal_id(world, rid)

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        soa_rid = f"{resource['id']}/SOA/@"
        if world.get(soa_rid) is None:
            world.put(
                soa_rid,
                {
                    "id": soa_rid,
                    "name": "@",
                    "type": f"{ZONE_TYPE}/SOA",
                    "etag": world.new_etag(),
                    "properties": {
                        "ttl": 3600,
                        "fqdn": f"{resource['name']}.",
                        "isAutoRegistered": False,
                        "soaRecord": dict(SOA_DEFAULTS),
                    },
                },
            )
        refresh_zone_counters(world, str(resource["id"]))


def _internal_id(world: World, rid: str) -> str:
    """A stable opaque id, shaped like the service's (base64 of sub + zone)."""
    import base64

    raw = f"{world.subscription_id}/{_zone_name(rid).lower()}".encode()
    return base64.b64encode(raw).decode().rstrip("=")


class VirtualNetworkLinkKind(_PrivateDnsOperationKind):
    """``privateDnsZones/virtualNetworkLinks``: the VNet must exist; one link per VNet."""

    type = LINK_TYPE
    location_required = False
    immutable: ClassVar[dict[str, str]] = {"properties.virtualNetwork.id": "BadRequest"}

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        _require_global(body, self.type)
        props = body.get("properties") or {}
        vnet_id = str(((props.get("virtualNetwork") or {}).get("id")) or "")
        if not vnet_id:
            raise ArmError(
                400, "BadRequest", "The virtual network link must reference a virtual network."
            )
        if world.get(vnet_id) is None:
            raise ArmError(400, "BadRequest", f"Virtual network resource not found for '{vnet_id}'")
        policy = props.get("resolutionPolicy")
        if policy is not None and policy not in ("Default", "NxDomainRedirect"):
            raise ArmError(400, "BadRequest", f"The resolution policy '{policy}' is invalid.")
        zone_rid = zone_id_of(rid)
        for link in world.children(zone_rid, LINK_TYPE):
            if str(link["id"]).lower() == rid.lower():
                continue
            other = ((link.get("properties") or {}).get("virtualNetwork") or {}).get("id", "")
            if str(other).lower() == vnet_id.lower():
                raise ArmError(
                    409,
                    "Conflict",
                    f"Private zone '{_zone_name(zone_rid)}' is already linked to the virtual "
                    f"network '{other}'.",
                )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        resource["location"] = "global"
        props = resource["properties"]
        props.setdefault("registrationEnabled", False)
        props["virtualNetworkLinkState"] = "Completed"

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        refresh_zone_counters(world, zone_id_of(rid))

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        refresh_zone_counters(world, zone_id_of(rid))


class AllRecordSetsKind(Kind):
    """``privateDnsZones/{zone}/ALL``: only a collection, ``RecordSets_List`` (the SDK's
    ``record_sets.list``): every record set of the zone, all types. ARM registers
    ``privateDnsZones/ALL`` as a type, but no resource lives under it: any single-resource
    call answers as an unknown type would. ``$top``/``$recordsetnamesuffix`` are not applied
    (a list hook does not see the query)."""

    type = f"{ZONE_TYPE}/ALL"
    location_required = False
    system_data = False
    provisioning_state = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        raise _no_single_resource()

    def view(self, world: World, rid: str, stored: Resource | None) -> Resource | None:
        raise _no_single_resource()

    def list_view(self, world: World, parent_rid: str, items: list[Resource]) -> list[Resource]:
        return record_sets_of(world, parent_rid)


def _no_single_resource() -> ArmError:
    return ArmError(
        404,
        "InvalidResourceType",
        "The resource type 'privateDnsZones/ALL' could not be found in the namespace "
        "'Microsoft.Network'.",
    )


class _RecordSetKind(Kind):
    """A record set type: ``record_field`` holds its records; fqdn/isAutoRegistered server-set."""

    record_field: ClassVar[str]
    location_required = False
    system_data = False  # not in the 2024-06-01 RecordSet schema
    provisioning_state = False
    on_create = Reply(201)
    on_update = Reply(200)
    on_delete = Reply(200)

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise ArmError(400, "BadRequest", "properties must be an object.")
        record_type = self.type.rsplit("/", 1)[-1]
        foreign = [
            key
            for key in _RECORD_FIELDS
            if key != self.record_field and props.get(key) not in (None, [], {})
        ]
        if foreign:
            raise ArmError(
                400,
                "BadRequest",
                f"The record set of type '{record_type}' cannot contain '{foreign[0]}'.",
            )
        ttl = props.get("ttl")
        if ttl is not None and (not isinstance(ttl, int) or not 0 <= ttl <= 2147483647):
            raise ArmError(400, "BadRequest", f"The TTL '{ttl}' is invalid.")
        self.check_records(rid, props.get(self.record_field))

    def check_records(self, rid: str, records: Any) -> None:
        """Raise ArmError when the record values are malformed (per type)."""

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        resource.pop("location", None)
        props = resource["properties"]
        name = str(resource["name"])
        zone = _zone_name(zone_id_of(rid))
        props["fqdn"] = f"{zone}." if name == "@" else f"{name}.{zone}."
        props["isAutoRegistered"] = False

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        refresh_zone_counters(world, zone_id_of(rid))

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        refresh_zone_counters(world, zone_id_of(rid))


_RECORD_FIELDS = (
    "aRecords",
    "aaaaRecords",
    "cnameRecord",
    "mxRecords",
    "ptrRecords",
    "soaRecord",
    "srvRecords",
    "txtRecords",
)


def _addresses(rid: str, records: Any, key: str, version: int) -> None:
    for record in records or []:
        value = record.get(key) if isinstance(record, dict) else None
        try:
            ok = ipaddress.ip_address(str(value)).version == version
        except ValueError:
            ok = False
        if not ok:
            raise ArmError(
                400,
                "BadRequest",
                f"The value '{value}' of '{key}' in record set '{rid.rsplit('/', 1)[-1]}' is "
                f"not a valid IPv{version} address.",
            )


class ARecordSetKind(_RecordSetKind):
    type = f"{ZONE_TYPE}/A"
    record_field = "aRecords"

    def check_records(self, rid: str, records: Any) -> None:
        _addresses(rid, records, "ipv4Address", 4)


class AaaaRecordSetKind(_RecordSetKind):
    type = f"{ZONE_TYPE}/AAAA"
    record_field = "aaaaRecords"

    def check_records(self, rid: str, records: Any) -> None:
        _addresses(rid, records, "ipv6Address", 6)


class CnameRecordSetKind(_RecordSetKind):
    type = f"{ZONE_TYPE}/CNAME"
    record_field = "cnameRecord"

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        super().validate(world, rid, body, existing)
        if rid.rsplit("/", 1)[-1] == "@":
            raise ArmError(
                400, "BadRequest", "A CNAME record set cannot be created at the zone apex ('@')."
            )


class TxtRecordSetKind(_RecordSetKind):
    type = f"{ZONE_TYPE}/TXT"
    record_field = "txtRecords"


class MxRecordSetKind(_RecordSetKind):
    type = f"{ZONE_TYPE}/MX"
    record_field = "mxRecords"


class PtrRecordSetKind(_RecordSetKind):
    type = f"{ZONE_TYPE}/PTR"
    record_field = "ptrRecords"


class SrvRecordSetKind(_RecordSetKind):
    type = f"{ZONE_TYPE}/SRV"
    record_field = "srvRecords"


class SoaRecordSetKind(_RecordSetKind):
    """The zone's SOA ``@``: made with the zone; updatable except its host."""

    type = f"{ZONE_TYPE}/SOA"
    record_field = "soaRecord"
    on_create = Reply(200)
    on_update = Reply(200)
    on_delete = Reply(200)

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        super().validate(world, rid, body, existing)
        if rid.rsplit("/", 1)[-1] != "@" or existing is None:
            raise ArmError(
                400, "BadRequest", "The only SOA record set of a zone is '@', created with it."
            )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        super().populate(world, rid, resource, existing)
        old = ((existing or {}).get("properties") or {}).get("soaRecord") or SOA_DEFAULTS
        soa = {**SOA_DEFAULTS, **old, **(resource["properties"].get("soaRecord") or {})}
        soa["host"] = old.get("host", SOA_DEFAULTS["host"])  # the host cannot be changed
        resource["properties"]["soaRecord"] = soa
