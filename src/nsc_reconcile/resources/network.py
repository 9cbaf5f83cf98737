"""Private endpoints (with their DNS zone group and the A records it makes) and NSG rules.

A private endpoint owns its subnet, connection, NIC name, location, tags and ONE zone group
(`dns_zone_group.name`; Azure allows one per endpoint): one of another name (a platform
policy's) is used as it is when it covers the declared zones, else the endpoint is blocked.
NSG rules are child resources of an existing NSG: the NSG itself is never written.
"""

from __future__ import annotations

import re
from typing import Any

from nsc_reconcile.changes import FieldChange, ReplacePolicy, Unknown
from nsc_reconcile.model.network import NsgRule, PrivateEndpoint, RuleEnds
from nsc_reconcile.resources.base import (
    ArmReconciler,
    Context,
    Listing,
    Live,
    deep_merge,
    environment_of,
    flatten,
    is_managed,
    sdk_model,
    tag_fields,
    to_wire,
    unflatten,
    writable_wire,
)

PE_TYPE = "Microsoft.Network/privateEndpoints"
NSG_TYPE = "Microsoft.Network/networkSecurityGroups"

# Live.fields of a private endpoint also hold its zone group (as GET returns it) under
# ZONE_GROUP, and the A record addresses found in each zone under DNS_RECORDS.<zone>.
ZONE_GROUP = "dnsZoneGroup"
DNS_RECORDS = "dnsRecords"
_ZONE_CONFIGS = f"{ZONE_GROUP}.properties.privateDnsZoneConfigs"
_AUTO = "properties.privateLinkServiceConnections"
_MANUAL = "properties.manualPrivateLinkServiceConnections"
# Connection states that need a new connection (the endpoint is created again).
_DEAD = frozenset({"rejected", "disconnected"})


def _rg_of(arm_id: str) -> str:
    return arm_id.split("/")[4]


def _name_of(arm_id: str) -> str:
    return arm_id.rstrip("/").rsplit("/", 1)[-1]


def _subnet(ctx: Context, ref: str) -> dict[str, Any] | Unknown:
    """The subnet ``<vnet>/<subnet>`` as ARM shows it (inside its VNet), Unknown when the
    VNet was not read; raises LookupError when the VNet has no such subnet."""
    vnet_name, _, subnet_name = ref.partition("/")
    vnet = ctx.live(f"virtual_network/{vnet_name}")
    if vnet is None:
        return Unknown(f"virtual_network/{vnet_name}.subnets.{subnet_name}")
    subnets: dict[str, Any] = vnet.facts.get("subnets") or {
        s.get("name"): s for s in to_wire(vnet.raw).get("properties", {}).get("subnets", [])
    }
    for name, subnet in subnets.items():
        if str(name).lower() == subnet_name.lower():
            return dict(subnet)
    raise LookupError(f"virtual network {vnet_name} has no subnet {subnet_name}")


def _subnet_prefixes(ctx: Context, ref: str) -> list[str] | Unknown:
    subnet = _subnet(ctx, ref)
    if isinstance(subnet, Unknown):
        return subnet
    props = subnet.get("properties") or {}
    if props.get("addressPrefix"):
        return [str(props["addressPrefix"])]
    return [str(p) for p in props.get("addressPrefixes") or []]


# ------------------------------------------------------------------------ private endpoints
class PrivateEndpointReconciler(ArmReconciler[PrivateEndpoint]):
    """A private endpoint and its DNS zone group: one resource, two PUTs (endpoint, then
    zone group), each only when it differs. Reading costs a GET of the endpoint, of the zone
    group and of the A record in each zone; a missing or wrong A record is drift, repaired
    by writing the zone group again (Azure then rewrites the record)."""

    kind = "private_endpoint"
    listing = Listing("network", "private_endpoints", list_method="list")
    # It holds no data: delete and create again (its NIC, zone group, A records follow).
    replace_policy = ReplacePolicy.AUTOMATED
    # Azure refuses to move an endpoint or change its connection or NIC name.
    immutable = frozenset(
        {
            "location",
            "properties.subnet.id",
            _AUTO,
            _MANUAL,
            "properties.customNetworkInterfaceName",
        }
    )

    def resource_id(self, ctx: Context, resource: PrivateEndpoint) -> str:
        return f"{ctx.rg_id()}/providers/{PE_TYPE}/{resource.name}"

    def get(self, ctx: Context, resource: PrivateEndpoint) -> Any:
        return ctx.clients.network.private_endpoints.get(ctx.resource_group, resource.name)

    def lock_key(self, resource: PrivateEndpoint) -> str | None:
        # Endpoints created side by side in one subnet make Azure answer
        # AnotherOperationInProgress on the subnet: one write per subnet at a time.
        return f"subnet/{resource.subnet}"

    def _zone_groups(self, ctx: Context, resource: PrivateEndpoint) -> tuple[Any, Any]:
        """(ours, foreign): the zone group named as declared, else the one of another name
        (Azure allows one per endpoint; a platform policy may have made it)."""
        groups = list(
            ctx.clients.network.private_dns_zone_groups.list(resource.name, ctx.resource_group)
        )
        wanted = resource.dns_zone_group.name.lower()
        ours = next((g for g in groups if str(g.name).lower() == wanted), None)
        foreign = next((g for g in groups if str(g.name).lower() != wanted), None)
        return ours, None if ours is not None else foreign

    def _zone_ids(self, ctx: Context, resource: PrivateEndpoint) -> dict[str, str | None]:
        """Declared zone name -> its ARM id (lower-cased), None when it does not exist."""
        ids: dict[str, str | None] = {}
        for zone in resource.dns_zone_group.zones:
            live = ctx.live(f"private_dns_zone/{zone}")
            ids[zone] = live.id.lower() if live is not None else None
        return ids

    def _record_name(self, ctx: Context, resource: PrivateEndpoint) -> str | None:
        """The A record the platform writes: the target's custom subdomain, else its name."""
        target = ctx.live(resource.target)
        if target is None:
            return None
        sub = target.fields.get("properties.customSubDomainName")
        return str(sub) if sub else _name_of(target.id)

    def _record_ips(self, ctx: Context, zone: str, name: str) -> list[str] | None:
        """Addresses of A record ``name`` in ``zone``; None when absent (or zone unknown)."""
        from azure.core.exceptions import ResourceNotFoundError

        zone_live = ctx.live(f"private_dns_zone/{zone}")
        if zone_live is None:
            return None
        try:
            record = ctx.clients.privatedns.record_sets.get(_rg_of(zone_live.id), zone, "A", name)
        except ResourceNotFoundError:
            return None
        wire = to_wire(record)
        return [
            str(a.get("ipv4Address"))
            for a in (wire.get("properties") or {}).get("aRecords") or []
            if a.get("ipv4Address")
        ]

    def read(self, ctx: Context, resource: PrivateEndpoint) -> Live | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            raw = self.get(ctx, resource)
        except ResourceNotFoundError:
            return None
        wire = to_wire(raw)
        folded = dict(wire)
        ours, foreign = self._zone_groups(ctx, resource)
        zone_group = ours or foreign
        facts: dict[str, Any] = {"zone_group": zone_group}
        if zone_group is not None:
            folded[ZONE_GROUP] = to_wire(zone_group)
        if foreign is not None:
            # Compared on the declared zones only: its other zones are the platform's.
            group = to_wire(foreign)
            configs = (group.get("properties") or {}).get("privateDnsZoneConfigs") or []
            zones = [str((c.get("properties") or {}).get("privateDnsZoneId", "")) for c in configs]
            facts["foreign_zone_group"] = {"name": str(group.get("name")), "zones": zones}
            declared = {z for z in self._zone_ids(ctx, resource).values() if z}
            folded[ZONE_GROUP] = {
                **group,
                "properties": {
                    **(group.get("properties") or {}),
                    "privateDnsZoneConfigs": [
                        c for c, z in zip(configs, zones, strict=True) if z.lower() in declared
                    ],
                },
            }
        name = self._record_name(ctx, resource)
        if name is not None:
            folded[DNS_RECORDS] = {
                zone: self._record_ips(ctx, zone, name) for zone in resource.dns_zone_group.zones
            }
        return Live(
            id=str(wire.get("id") or self.resource_id(ctx, resource)),
            fields=flatten(folded),
            raw=raw,
            etag=wire.get("etag"),
            managed=is_managed(wire.get("tags")),
            facts=facts,
            environment=environment_of(wire.get("tags")),
        )

    def refusal(self, ctx: Context, resource: PrivateEndpoint, live: Live | None) -> str | None:
        """A zone group of another name that does not register the endpoint in the declared
        zones: Azure refuses a second group, and rewriting the platform's is not ours to do."""
        foreign = live.facts.get("foreign_zone_group") if live is not None else None
        if not foreign:
            return None
        theirs = {str(z).lower() for z in foreign["zones"]}
        missing = [z for z, i in self._zone_ids(ctx, resource).items() if i not in theirs]
        if not missing:
            return None
        return (
            f"already has DNS zone group '{foreign['name']}' (zones: "
            f"{', '.join(foreign['zones']) or 'none'}), not made by nsc-reconcile (often an "
            "Azure Policy DeployIfNotExists); Azure allows one zone group per endpoint, so "
            f"'{resource.dns_zone_group.name}' cannot be added and {', '.join(missing)} would "
            "get no A record. Either set `dns_zone_group.name: "
            f"{foreign['name']}` to manage that group (its zones become the declared ones), "
            "or declare the zones it uses instead"
        )

    def health(self, live: Live) -> list[FieldChange]:
        """Besides a Failed endpoint: a Failed zone group (written again), and a connection
        the target's owner Rejected or that is Disconnected (a new connection: the endpoint
        is created again)."""
        found = super().health(live)
        group_state = live.fields.get(f"{ZONE_GROUP}.properties.provisioningState")
        if isinstance(group_state, str) and group_state.lower() == "failed":
            found.append(
                FieldChange(f"{ZONE_GROUP}.properties.provisioningState", group_state, "Succeeded")
            )
        connection = _connection(live)
        if connection is not None:
            key, name, state = connection
            status = str(state.get("status") or "")
            if status.lower() in _DEAD:
                after = "Pending" if key == _MANUAL else "Approved"
                path = f"{key}[{name}].privateLinkServiceConnectionState.status"
                found.append(FieldChange(path, status, after, requires_replacement=True))
        return found

    def notes(self, ctx: Context, resource: PrivateEndpoint) -> list[str]:
        """A connection waiting for (or refused) approval, naming who decides; a zone group
        of another name used as it is."""
        live = ctx.live(resource.address)
        if live is None:
            return []
        out = []
        connection = _connection(live)
        if connection is not None:
            state = connection[2]
            status = str(state.get("status") or "")
            said = f' ("{state["description"]}")' if state.get("description") else ""
            owner = self._owner(ctx, resource, live.id)
            if status.lower() == "pending":
                out.append(
                    f"connection awaits approval (Pending{said}): {owner} must approve it; no "
                    "traffic flows until then"
                )
            elif status.lower() in _DEAD:
                out.append(
                    f"connection is {status}{said}: it needs a new connection, so apply "
                    f"--allow-replace creates the endpoint again; then {owner} approves it "
                    "unless it is approved automatically"
                )
        foreign = live.facts.get("foreign_zone_group")
        if foreign and self.refusal(ctx, resource, live) is None:
            out.append(
                f"uses DNS zone group '{foreign['name']}' (not made by nsc-reconcile, e.g. an "
                "Azure Policy's) as it is: it already registers the endpoint in the declared "
                "zones, and Azure allows one zone group per endpoint"
            )
        return out

    def _owner(self, ctx: Context, resource: PrivateEndpoint, endpoint_id: str) -> str:
        """Who approves: the owner of the target, named with its id, and the target-side
        connection id when the target shows it."""
        target = ctx.live(resource.target)
        if target is None:
            return f"the owner of {resource.target}"
        text = f"the owner of {resource.target} ({target.id})"
        for connection in (
            to_wire(target.raw).get("properties", {}).get("privateEndpointConnections") or []
        ):
            ref = ((connection.get("properties") or {}).get("privateEndpoint") or {}).get("id")
            if str(ref or "").lower() == endpoint_id.lower() and connection.get("id"):
                text += (
                    " (portal: the target's Networking > Private endpoint connections, or "
                    f"`az network private-endpoint-connection approve --id {connection['id']}`)"
                )
                break
        return text

    def declared(self, ctx: Context, resource: PrivateEndpoint) -> dict[str, Any]:
        """The endpoint's fields (REST paths), then the zone group's and the A records'."""
        subnet = _subnet(ctx, resource.subnet)
        subnet_id = subnet if isinstance(subnet, Unknown) else str(subnet["id"])
        target = ctx.live(resource.target)
        connections: Any = (
            Unknown(f"{resource.target}.id")
            if target is None
            else [
                {
                    "name": resource.name,
                    "properties": {
                        "privateLinkServiceId": target.id,
                        "groupIds": [resource.group_id],
                    },
                }
            ]
        )
        fields: dict[str, Any] = {
            "location": ctx.state.location,
            "properties.subnet.id": subnet_id,
            _AUTO if resource.approval == "automatic" else _MANUAL: connections,
        }
        if resource.custom_network_interface_name:
            fields["properties.customNetworkInterfaceName"] = resource.custom_network_interface_name
        fields.update(tag_fields(ctx.tags(resource.tags)))
        fields.update(self._declared_dns(ctx, resource))
        return fields

    def _declared_dns(self, ctx: Context, resource: PrivateEndpoint) -> dict[str, Any]:
        configs: list[dict[str, Any]] = []
        missing = None
        for zone in resource.dns_zone_group.zones:
            zone_live = ctx.live(f"private_dns_zone/{zone}")
            if zone_live is None:
                missing = f"private_dns_zone/{zone}.id"
                break
            configs.append(
                {"name": zone.replace(".", "-"), "properties": {"privateDnsZoneId": zone_live.id}}
            )
        fields: dict[str, Any] = {_ZONE_CONFIGS: Unknown(missing) if missing else configs}
        # The A records must hold the endpoint's IP; known only once the endpoint exists
        # (on create the zone group writes them anyway).
        ip = ctx.output(f"private_endpoint/{resource.name}", "private_ip")
        if ip and not isinstance(ip, Unknown) and self._record_name(ctx, resource) is not None:
            for zone in resource.dns_zone_group.zones:
                fields[f"{DNS_RECORDS}.{zone}"] = [ip]
        return fields

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Connections and zone configs compare by what we declare of them (target id, group
        ids; zone ids) as sets; A record addresses as sets."""
        out = dict(fields)
        for path in (_AUTO, _MANUAL):
            value = out.get(path)
            if isinstance(value, list):
                out[path] = sorted(
                    (
                        str((c.get("properties") or {}).get("privateLinkServiceId", "")).lower(),
                        sorted((c.get("properties") or {}).get("groupIds") or []),
                    )
                    for c in value
                )
        configs = out.get(_ZONE_CONFIGS)
        if isinstance(configs, list):
            out[_ZONE_CONFIGS] = sorted(
                str((c.get("properties") or {}).get("privateDnsZoneId", "")).lower()
                for c in configs
            )
        for path, value in fields.items():
            if path.startswith(f"{DNS_RECORDS}.") and isinstance(value, list):
                out[path] = sorted(value)
        return super().normalize(out)

    def send(
        self,
        ctx: Context,
        resource: PrivateEndpoint,
        fields: dict[str, Any],
        live: Live | None,
    ) -> None:
        """Two resources behind one address: the endpoint (``put``), then its zone group,
        each written only when it differs (the zone group is a child with its own PUT;
        writing it again makes Azure rewrite the A records). A replacement (a new subnet or
        connection, a Rejected connection) was done before this by ``delete``: the NIC,
        zone group and A records go with the endpoint."""
        own = {k: v for k, v in fields.items() if not k.startswith((ZONE_GROUP, DNS_RECORDS))}
        rest = {k: v for k, v in fields.items() if k not in own}
        broken = self.health(live) if live is not None else []
        endpoint_changes = self.field_changes(own, live)
        endpoint_changes += [c for c in broken if not c.path.startswith(ZONE_GROUP)]
        if live is None or endpoint_changes:
            self.put(ctx, resource, self.body(ctx, resource, own, live), None)
        dns_changes = self.field_changes(rest, live)
        dns_changes += [c for c in broken if c.path.startswith(ZONE_GROUP)]
        if live is None or dns_changes:
            zone_group = live.facts.get("zone_group") if live is not None else None
            foreign = bool(live.facts.get("foreign_zone_group")) if live is not None else False
            self._put_zone_group(ctx, resource, rest[_ZONE_CONFIGS], zone_group, foreign)

    def body(
        self,
        ctx: Context,
        resource: PrivateEndpoint,
        fields: dict[str, Any],
        live: Live | None,
    ) -> dict[str, Any]:
        """The endpoint's body (``fields``: its own, not the zone group's); a connection keeps
        what the live one holds beyond our fields (its state, its id)."""
        base = self.kept(live)
        ours = unflatten(self.sent(ctx, resource, fields, live))
        for key in (_AUTO, _MANUAL):
            field = key.split(".", 1)[1]
            wanted = ours.get("properties", {}).get(field)
            had = base.get("properties", {}).get(field) or []
            if isinstance(wanted, list) and len(wanted) == 1 and len(had) == 1:
                merged = deep_merge(had[0], {"properties": wanted[0]["properties"]})
                ours["properties"][field] = [merged]
        return deep_merge(base, ours)

    def put(
        self, ctx: Context, resource: PrivateEndpoint, body: dict[str, Any], etag: str | None
    ) -> None:
        from azure.mgmt.network.models import PrivateEndpoint as PrivateEndpointModel

        ctx.clients.network.private_endpoints.begin_create_or_update(
            ctx.resource_group, resource.name, sdk_model(PrivateEndpointModel, body)
        ).result()

    def _put_zone_group(
        self,
        ctx: Context,
        resource: PrivateEndpoint,
        configs: list[dict[str, Any]],
        zone_group: Any,
        foreign: bool = False,
    ) -> None:
        """Write our zone group; Azure (re)writes the A records in its zones. A group of
        another name that covers our zones (a platform policy's) is written back as it is:
        its zones are not ours to drop."""
        from azure.mgmt.network.models import PrivateDnsZoneGroup

        base = writable_wire(zone_group) if zone_group is not None else {}
        name = resource.dns_zone_group.name
        if foreign and zone_group is not None:
            body, name = base, str(zone_group.name)
        else:
            body = deep_merge(base, {"properties": {"privateDnsZoneConfigs": configs}})
        body["name"] = name
        ctx.clients.network.private_dns_zone_groups.begin_create_or_update(
            ctx.resource_group, resource.name, name, sdk_model(PrivateDnsZoneGroup, body)
        ).result()

    def output(self, ctx: Context, resource: PrivateEndpoint, live: Live, name: str) -> Any:
        if name == "private_ip":
            return self._private_ip(ctx, live)
        if name == "connection_status":
            # Approval state of our connection: Approved / Pending / Rejected / Disconnected.
            wire = to_wire(live.raw)
            for key in (_AUTO, _MANUAL):
                for connection in wire.get("properties", {}).get(key.split(".", 1)[1]) or []:
                    state = (connection.get("properties") or {}).get(
                        "privateLinkServiceConnectionState"
                    ) or {}
                    return state.get("status")
            return None
        if name == "id":
            return live.id
        return super().output(ctx, resource, live, name)

    def _private_ip(self, ctx: Context, live: Live) -> str | None:
        """The NIC's private IP: from customDnsConfigs when Azure lists it there, else from
        the endpoint's NIC (one more GET)."""
        props = to_wire(live.raw).get("properties") or {}
        for config in props.get("customDnsConfigs") or []:
            for ip in config.get("ipAddresses") or []:
                return str(ip)
        for ref in props.get("networkInterfaces") or []:
            nic_id = str(ref.get("id", ""))
            if not nic_id:
                continue
            nic = to_wire(
                ctx.clients.network.network_interfaces.get(_rg_of(nic_id), _name_of(nic_id))
            )
            for config in (nic.get("properties") or {}).get("ipConfigurations") or []:
                ip = (config.get("properties") or {}).get("privateIPAddress")
                if ip:
                    return str(ip)
        return None


def _connection(live: Live) -> tuple[str, str, dict[str, Any]] | None:
    """(list path, name, privateLinkServiceConnectionState) of the endpoint's connection."""
    props = to_wire(live.raw).get("properties") or {}
    for key in (_AUTO, _MANUAL):
        for connection in props.get(key.split(".", 1)[1]) or []:
            state = (connection.get("properties") or {}).get("privateLinkServiceConnectionState")
            return key, str(connection.get("name") or ""), dict(state or {})
    return None


# ------------------------------------------------------------------------------ NSG rules
# Azure's single and plural forms: the single form with one value, the plural with more.
# (single, plural) REST names under properties, per rule end.
_FORMS = {
    "source": ("properties.sourceAddressPrefix", "properties.sourceAddressPrefixes"),
    "destination": ("properties.destinationAddressPrefix", "properties.destinationAddressPrefixes"),
    "destination_ports": ("properties.destinationPortRange", "properties.destinationPortRanges"),
    "source_ports": ("properties.sourcePortRange", "properties.sourcePortRanges"),
}
_RULE_ENUMS = ("properties.protocol", "properties.access", "properties.direction")


def _forms(paths: tuple[str, str], values: list[Any] | Unknown, count: int) -> dict[str, Any]:
    """One value -> the single form, several -> the plural. Only that form is declared: Azure
    holds one form at a time, so a rule kept in the other form differs on the declared one
    (and ``write`` drops the other form)."""
    single, plural = paths
    if count == 1:
        return {single: values if isinstance(values, Unknown) else values[0]}
    return {plural: values}


# Security rules carry no tags: the rule's description ends with our mark instead (Azure allows
# 140 characters; the model leaves room for it), so a rule removed from the desired state is
# still recognised as ours and listed as an orphan.
_RULE_MARK = re.compile(r"\[nsc-reconcile:([a-z]+)\]$")


def rule_description(text: str | None, environment: str) -> str:
    """A rule's description with our mark: ``<text> [nsc-reconcile:<environment>]``."""
    mark = f"[nsc-reconcile:{environment}]"
    return f"{text} {mark}" if text else mark


def rule_mark(description: Any) -> str | None:
    """The environment named by a rule description's mark; None without one."""
    found = _RULE_MARK.search(str(description or "").strip())
    return found.group(1) if found else None


class NsgRuleReconciler(ArmReconciler[NsgRule]):
    """One security rule of an existing NSG, written through the rule's own child API so the
    NSG's other rules (and the NSG itself) are never touched. Its description carries our
    mark (``rule_description``)."""

    kind = "nsg_rule"
    tagged = False  # security rules carry no tags
    set_like = frozenset(paths[1] for paths in _FORMS.values())
    listing = Listing(
        "network", "security_rules", list_method="list", parent="network_security_group"
    )

    def mark(self, wire: dict[str, Any]) -> tuple[bool, str | None]:
        environment = rule_mark((wire.get("properties") or {}).get("description"))
        return environment is not None, environment

    def _nsg(self, ctx: Context, resource: NsgRule) -> tuple[str, str]:
        """(resource group, ARM id) of the rule's NSG."""
        nsg = ctx.live(f"network_security_group/{resource.nsg}")
        if nsg is not None:
            return _rg_of(nsg.id), nsg.id
        return ctx.resource_group, f"{ctx.rg_id()}/providers/{NSG_TYPE}/{resource.nsg}"

    def resource_id(self, ctx: Context, resource: NsgRule) -> str:
        return f"{self._nsg(ctx, resource)[1]}/securityRules/{resource.name}"

    def get(self, ctx: Context, resource: NsgRule) -> Any:
        group, _ = self._nsg(ctx, resource)
        return ctx.clients.network.security_rules.get(group, resource.nsg, resource.name)

    def put(self, ctx: Context, resource: NsgRule, body: dict[str, Any], etag: str | None) -> None:
        from azure.mgmt.network.models import SecurityRule

        group, _ = self._nsg(ctx, resource)
        ctx.clients.network.security_rules.begin_create_or_update(
            group, resource.nsg, resource.name, sdk_model(SecurityRule, body)
        ).result()

    def lock_key(self, resource: NsgRule) -> str | None:
        # Azure refuses concurrent writes to one NSG (AnotherOperationInProgress).
        return f"network_security_group/{resource.nsg}"

    def _prefixes(self, ctx: Context, ends: RuleEnds) -> tuple[list[Any] | Unknown, int]:
        """The end's address prefixes and how many there are (known before the values)."""
        if ends.service_tag:  # Azure takes a tag where it takes a prefix
            return [ends.service_tag], 1
        if ends.address_prefixes:
            return list(ends.address_prefixes), len(ends.address_prefixes)
        if ends.subnets:
            values: list[Any] = []
            for ref in ends.subnets:
                prefixes = _subnet_prefixes(ctx, ref)
                if isinstance(prefixes, Unknown):
                    return prefixes, len(ends.subnets)
                values.extend(prefixes)
            return values, len(values)
        endpoints = ends.private_endpoints or []
        ips = [ctx.output(f"private_endpoint/{name}", "private_ip") for name in endpoints]
        for ip in ips:
            if isinstance(ip, Unknown) or not ip:
                return Unknown(f"private_endpoint/{', '.join(endpoints)}.private_ip"), len(ips)
        return [f"{ip}/32" for ip in ips], len(ips)

    def declared(self, ctx: Context, resource: NsgRule) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "properties.priority": resource.priority,
            "properties.direction": resource.direction,
            "properties.access": resource.access,
            "properties.protocol": resource.protocol,
        }
        for end in ("source", "destination"):
            values, count = self._prefixes(ctx, getattr(resource, end))
            fields.update(_forms(_FORMS[end], values, count))
        ports = resource.destination_ports
        fields.update(_forms(_FORMS["destination_ports"], list(ports), len(ports)))
        fields.update(_forms(_FORMS["source_ports"], ["*"], 1))
        fields["properties.description"] = rule_description(
            resource.description, ctx.state.environment
        )
        return fields

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Enum casing is ignored; plural forms compare as sets (``set_like``)."""
        out = dict(fields)
        for path in _RULE_ENUMS:
            if isinstance(out.get(path), str):
                out[path] = out[path].lower()
        return super().normalize(out)

    def kept(self, live: Live | None) -> dict[str, Any]:
        """The live rule without its address and port forms: ours decide which form (single
        or plural) is used."""
        base = super().kept(live)
        props = dict(base.get("properties") or {})
        for single, plural in _FORMS.values():
            props.pop(single, None)
            props.pop(plural, None)
        return {**base, "properties": props}
