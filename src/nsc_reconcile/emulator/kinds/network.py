"""Microsoft.Network kinds: virtual networks and subnets, NSGs and rules, network interfaces,
private endpoints and their DNS zone groups (which write A records into private DNS zones).

Parent/child copies (VNet <-> subnets, NSG <-> rules) are kept in sync here, in one helper
each. Imports only kinds.base, protocol and the standard library.
"""

from __future__ import annotations

import copy
import ipaddress
import urllib.parse
from typing import TYPE_CHECKING, Any, ClassVar

from nsc_reconcile.emulator.kinds.base import Kind, Resource
from nsc_reconcile.emulator.protocol import ArmError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

VNET_TYPE = "Microsoft.Network/virtualNetworks"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"
NSG_TYPE = "Microsoft.Network/networkSecurityGroups"
RULE_TYPE = "Microsoft.Network/networkSecurityGroups/securityRules"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
PE_TYPE = "Microsoft.Network/privateEndpoints"
ZONE_GROUP_TYPE = "Microsoft.Network/privateEndpoints/privateDnsZoneGroups"
A_RECORD_TYPE = "Microsoft.Network/privateDnsZones/A"
PLS_CONNECTION_TYPE = "Microsoft.Network/privateEndpoints/privateLinkServiceConnections"
RECORD_TTL = 10  # what the platform writes for zone-group records

# Host name a private endpoint resolves, by target type (when the target shows none itself).
_FQDN_SUFFIX = {
    "microsoft.dbforpostgresql/flexibleservers": "postgres.database.azure.com",
    "microsoft.keyvault/vaults": "vault.azure.net",
    "microsoft.containerregistry/registries": "azurecr.io",
    "microsoft.cognitiveservices/accounts": "openai.azure.com",
}

_DEFAULT_RULES = [
    ("AllowVnetInBound", "Inbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork",
     "Allow inbound traffic from all VMs in VNET"),
    ("AllowAzureLoadBalancerInBound", "Inbound", "Allow", 65001, "AzureLoadBalancer", "*",
     "Allow inbound traffic from azure load balancer"),
    ("DenyAllInBound", "Inbound", "Deny", 65500, "*", "*", "Deny all inbound traffic"),
    ("AllowVnetOutBound", "Outbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork",
     "Allow outbound traffic from all VMs to all VMs in VNET"),
    ("AllowInternetOutBound", "Outbound", "Allow", 65001, "*", "Internet",
     "Allow outbound traffic from all VMs to Internet"),
    ("DenyAllOutBound", "Outbound", "Deny", 65500, "*", "*", "Deny all outbound traffic"),
]  # fmt: skip


def _name(rid: str) -> str:
    return rid.rstrip("/").rsplit("/", 1)[-1]


def _parent(rid: str) -> str:
    return rid.rstrip("/").rsplit("/", 2)[0]


def _same_id(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


def _ref_id(obj: Any) -> str | None:
    """The ``id`` of a ``{"id": ...}`` reference, or None."""
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        return str(obj["id"])
    return None


def _missing_reference(ref: str, by: str) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceReference",
        f"Resource {ref} referenced by resource {by} was not found. Please make sure that the "
        "referenced resource exists, and that both resources are in the same region.",
    )


def _child(parent_id: str, segment: str, child_type: str, item: dict[str, Any], etag: str) -> Any:
    """An inline child (subnet, rule, connection) as ARM shows it inside its parent."""
    name = str(item.get("name", ""))
    props = copy.deepcopy(item.get("properties") or {})
    props["provisioningState"] = "Succeeded"
    return {
        "name": name,
        "id": f"{parent_id}/{segment}/{name}",
        "etag": etag,
        "type": child_type,
        "properties": props,
    }


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
                    f"IP address range of virtual network '{_name(vnet_id)}'.",
                )
            for other_name, other in seen:
                if other_name != name and net.overlaps(other):
                    raise ArmError(
                        400,
                        "NetcfgSubnetRangesOverlap",
                        f"Subnet '{name}' is not valid because its IP address range overlaps "
                        f"with that of an existing subnet '{other_name}' in virtual network "
                        f"'{_name(vnet_id)}'.",
                    )
            seen.append((name, net))


def _subnet_in_use(subnet: Resource) -> str | None:
    props = subnet.get("properties") or {}
    for key in ("privateEndpoints", "ipConfigurations"):
        for ref in props.get(key) or []:
            if _ref_id(ref):
                return str(ref["id"])
    return None


def _in_use_error(subnet_id: str, user: str) -> ArmError:
    return ArmError(
        400,
        "InUseSubnetCannotBeDeleted",
        f"Subnet {_name(subnet_id)} is in use by {user} and cannot be deleted. In order to "
        "delete the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.",
    )


# ---- virtual networks and subnets ---------------------------------------------------------
class VirtualNetwork(Kind):
    """A VNet. Inline ``subnets`` are the whole set (ARM semantics): missing ones are deleted
    (refused while in use); each is also stored as a child subnet resource."""

    type = VNET_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    long_running = True
    delete_statuses = (200, 202, 204)

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
            subnet = _child(rid, "subnets", SUBNET_TYPE, item, world.etag_for(SUBNET_TYPE))
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


def _sync_subnet_into_vnet(world: World, subnet_id: str, subnet: Resource | None) -> None:
    """Mirror one child subnet (or its removal) into the parent VNet's ``subnets`` list."""
    vnet_id = _parent(subnet_id)
    vnet = world.get(vnet_id)
    if vnet is None:
        return
    props = vnet.setdefault("properties", {})
    listed = [s for s in props.get("subnets") or [] if not _same_id(s.get("id"), subnet_id)]
    if subnet is not None:
        entry = {k: subnet[k] for k in ("name", "id", "etag", "type", "properties") if k in subnet}
        position = next(
            (
                i
                for i, s in enumerate(props.get("subnets") or [])
                if _same_id(s.get("id"), subnet_id)
            ),
            len(listed),
        )
        listed.insert(position, entry)
    props["subnets"] = listed
    vnet["etag"] = world.etag_for(VNET_TYPE)
    world.put(vnet_id, vnet)


class Subnet(Kind):
    """A subnet as a child resource; every write is mirrored into the VNet's ``subnets``."""

    type = SUBNET_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    long_running = True
    delete_statuses = (200, 202, 204)
    location_required = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        vnet_id = _parent(rid)
        vnet = world.get(vnet_id) or {}
        space = ((vnet.get("properties") or {}).get("addressSpace") or {}).get(
            "addressPrefixes"
        ) or []
        siblings = [
            s
            for s in world.children(vnet_id, SUBNET_TYPE)
            if str(s["name"]).lower() != _name(rid).lower()
        ]
        props = body.get("properties") or {}
        if not _prefixes(props):
            raise ArmError(
                400,
                "InvalidRequestFormat",
                "Cannot parse the request: the subnet needs addressPrefix or addressPrefixes.",
            )
        mine = {"name": _name(rid), "properties": props}
        _check_subnet_ranges(vnet_id, [str(p) for p in space], [*siblings, mine])
        if existing is not None:
            old = existing.get("properties") or {}
            user = _subnet_in_use(existing)
            if user and _prefixes(old) != _prefixes(props):
                raise ArmError(
                    400,
                    "InUseSubnetCannotBeUpdated",
                    f"Subnet {_name(rid)} is in use and cannot be updated.",
                )
        nsg = _ref_id(props.get("networkSecurityGroup"))
        if nsg and world.get(nsg) is None:
            raise _missing_reference(nsg, rid)

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
        _sync_subnet_into_vnet(world, rid, resource)

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        _sync_subnet_into_vnet(world, rid, None)


# ---- network security groups and rules ----------------------------------------------------
def _check_rule(rid: str, props: dict[str, Any]) -> None:
    for key in ("protocol", "access", "direction"):
        if not props.get(key):
            raise ArmError(
                400,
                "SecurityRuleParameterMissing",
                f"Security rule {_name(rid)} is missing required property '{key}'.",
            )
    priority = props.get("priority")
    if not isinstance(priority, int) or not 100 <= priority <= 4096:
        raise ArmError(
            400,
            "SecurityRuleInvalidPriority",
            f"Security rule has invalid Priority. Value provided: {priority} Allowed values are "
            "from 100 to 4096.",
        )


def _check_conflicts(rules: list[tuple[str, dict[str, Any]]]) -> None:
    """No two rules with one priority and direction (Azure: SecurityRuleConflict)."""
    seen: dict[tuple[int, str], str] = {}
    for name, props in rules:
        key = (int(props["priority"]), str(props["direction"]).lower())
        other = seen.get(key)
        if other is not None and other.lower() != name.lower():
            raise ArmError(
                400,
                "SecurityRuleConflict",
                f"Security rule {other} conflicts with rule {name}. Rules cannot have the same "
                "Priority and Direction. To learn more, see aka.ms/nsgrules.",
            )
        seen[key] = name


def _default_rules(nsg_id: str, etag: str) -> list[Any]:
    rules = []
    for name, direction, access, priority, source, destination, text in _DEFAULT_RULES:
        rules.append(
            {
                "name": name,
                "id": f"{nsg_id}/defaultSecurityRules/{name}",
                "etag": etag,
                "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
                "properties": {
                    "provisioningState": "Succeeded",
                    "description": text,
                    "protocol": "*",
                    "sourcePortRange": "*",
                    "destinationPortRange": "*",
                    "sourceAddressPrefix": source,
                    "destinationAddressPrefix": destination,
                    "access": access,
                    "priority": priority,
                    "direction": direction,
                    "sourcePortRanges": [],
                    "destinationPortRanges": [],
                    "sourceAddressPrefixes": [],
                    "destinationAddressPrefixes": [],
                },
            }
        )
    return rules


class NetworkSecurityGroup(Kind):
    """An NSG. Inline ``securityRules`` replace the whole rule set (as on Azure); each rule is
    also stored as a child resource, and the six default rules are always shown."""

    type = NSG_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    long_running = True
    delete_statuses = (200, 202, 204)

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        rules = (body.get("properties") or {}).get("securityRules") or []
        named = []
        for rule in rules:
            rule_id = f"{rid}/securityRules/{rule.get('name', '')}"
            props = rule.get("properties") or {}
            _check_rule(rule_id, props)
            named.append((str(rule.get("name", "")), props))
        _check_conflicts(named)

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource.setdefault("properties", {})
        old = (existing or {}).get("properties", {})
        etag = str(resource.get("etag") or world.etag_for(NSG_TYPE))
        props["resourceGuid"] = old.get("resourceGuid") or world.new_guid()
        props["securityRules"] = [
            _child(rid, "securityRules", RULE_TYPE, rule, etag)
            for rule in props.get("securityRules") or []
        ]
        props["defaultSecurityRules"] = _default_rules(rid, etag)
        if old.get("subnets"):
            props["subnets"] = old["subnets"]

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        rules = resource.get("properties", {}).get("securityRules") or []
        kept = set()
        for rule in rules:
            kept.add(str(rule["id"]).lower())
            world.put(str(rule["id"]), rule)
        for child in world.children(rid, RULE_TYPE):
            if str(child["id"]).lower() not in kept:
                world.delete(str(child["id"]))


def _sync_rule_into_nsg(world: World, rule_id: str, rule: Resource | None) -> None:
    nsg_id = _parent(rule_id)
    nsg = world.get(nsg_id)
    if nsg is None:
        return
    props = nsg.setdefault("properties", {})
    old = props.get("securityRules") or []
    listed = [r for r in old if not _same_id(r.get("id"), rule_id)]
    if rule is not None:
        entry = {k: rule[k] for k in ("name", "id", "etag", "type", "properties") if k in rule}
        position = next(
            (i for i, r in enumerate(old) if _same_id(r.get("id"), rule_id)), len(listed)
        )
        listed.insert(position, entry)
    props["securityRules"] = listed
    nsg["etag"] = world.etag_for(NSG_TYPE)
    world.put(nsg_id, nsg)


class SecurityRule(Kind):
    """One NSG rule as a child resource; mirrored into the NSG's ``securityRules``."""

    type = RULE_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    long_running = True
    delete_statuses = (200, 202, 204)
    location_required = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties") or {}
        _check_rule(rid, props)
        siblings = [
            (str(r["name"]), r.get("properties") or {})
            for r in world.children(_parent(rid), RULE_TYPE)
            if str(r["name"]).lower() != _name(rid).lower()
        ]
        _check_conflicts([*siblings, (_name(rid), props)])

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        resource.pop("location", None)
        props = resource["properties"]
        for key in (
            "sourcePortRanges",
            "destinationPortRanges",
            "sourceAddressPrefixes",
            "destinationAddressPrefixes",
        ):
            props.setdefault(key, [])

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        _sync_rule_into_nsg(world, rid, resource)

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        _sync_rule_into_nsg(world, rid, None)


# ---- network interfaces -------------------------------------------------------------------
class NetworkInterface(Kind):
    """A NIC. Those of private endpoints are platform-managed: writes to them are refused."""

    type = NIC_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    long_running = True
    delete_statuses = (200, 202, 204)

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        owner = _ref_id(((existing or {}).get("properties") or {}).get("privateEndpoint"))
        if owner:
            raise ArmError(
                400,
                "OperationNotAllowed",
                f"Network interface {_name(rid)} is managed by private endpoint {owner} and "
                "cannot be modified.",
            )
        for config in (body.get("properties") or {}).get("ipConfigurations") or []:
            subnet = _ref_id((config.get("properties") or {}).get("subnet"))
            if subnet and world.get(subnet) is None:
                raise _missing_reference(subnet, rid)

    def before_delete(self, world: World, rid: str, resource: Resource) -> None:
        owner = _ref_id((resource.get("properties") or {}).get("privateEndpoint"))
        if owner:
            raise ArmError(
                400,
                "OperationNotAllowed",
                f"Network interface {_name(rid)} is managed by private endpoint {owner}; "
                "delete the private endpoint instead.",
            )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource.setdefault("properties", {})
        old = (existing or {}).get("properties", {})
        props["resourceGuid"] = old.get("resourceGuid") or world.new_guid()
        configs = []
        for item in props.get("ipConfigurations") or []:
            config = _child(rid, "ipConfigurations", f"{NIC_TYPE}/ipConfigurations", item, "")
            config["etag"] = resource.get("etag", "")
            cprops = config["properties"]
            subnet = _ref_id(cprops.get("subnet"))
            if subnet and not cprops.get("privateIPAddress"):
                cprops["privateIPAddress"] = world.allocate_ip(subnet)
                cprops["privateIPAllocationMethod"] = "Dynamic"
            cprops.setdefault("privateIPAddressVersion", "IPv4")
            configs.append(config)
        props["ipConfigurations"] = configs
        _nic_defaults(props)


def _nic_defaults(props: dict[str, Any]) -> None:
    props.setdefault("dnsSettings", {"dnsServers": [], "appliedDnsServers": []})
    props.setdefault("enableAcceleratedNetworking", False)
    props.setdefault("enableIPForwarding", False)
    props.setdefault("hostedWorkloads", [])
    props.setdefault("tapConfigurations", [])
    props.setdefault("nicType", "Standard")
    props.setdefault("vnetEncryptionSupported", False)


# ---- private endpoints --------------------------------------------------------------------
def _target_type(target_id: str) -> str:
    parts = [p for p in target_id.split("/") if p]
    idx = max(i for i, p in enumerate(parts) if p.lower() == "providers")
    rest = parts[idx + 1 :]
    return "/".join([rest[0], *rest[1::2]])


def record_name_for(target: Resource) -> str:
    """The A record name a zone group writes for a target: the custom subdomain of a Cognitive
    Services account, else the resource name."""
    props = target.get("properties") or {}
    return str(props.get("customSubDomainName") or target.get("name", ""))


def target_fqdn(target: Resource) -> str:
    """The public host name a private endpoint to ``target`` takes over."""
    props = target.get("properties") or {}
    for key in ("fullyQualifiedDomainName", "loginServer"):
        if props.get(key):
            return str(props[key])
    for key in ("endpoint", "vaultUri"):
        if props.get(key):
            host = urllib.parse.urlsplit(str(props[key])).hostname
            if host:
                return host
    suffix = _FQDN_SUFFIX.get(_target_type(str(target.get("id", ""))).lower(), "azure.com")
    return f"{record_name_for(target)}.{suffix}"


def _connections(props: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [
        ("privateLinkServiceConnections", c)
        for c in props.get("privateLinkServiceConnections") or []
    ]
    out += [
        ("manualPrivateLinkServiceConnections", c)
        for c in props.get("manualPrivateLinkServiceConnections") or []
    ]
    return out


def _connection_state(target: Resource | None, pe_id: str, manual: bool) -> dict[str, str]:
    """The state the target side holds for this endpoint, else the initial one."""
    for connection in ((target or {}).get("properties") or {}).get(
        "privateEndpointConnections"
    ) or []:
        cprops = connection.get("properties") or {}
        if _same_id((cprops.get("privateEndpoint") or {}).get("id"), pe_id):
            state = cprops.get("privateLinkServiceConnectionState")
            if isinstance(state, dict) and state.get("status"):
                return {
                    "status": str(state["status"]),
                    "description": str(state.get("description", "")),
                    "actionsRequired": str(state.get("actionsRequired", "None")),
                }
    if manual:
        return {"status": "Pending", "description": "Awaiting approval", "actionsRequired": "None"}
    return {"status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"}


def _nic_ip(world: World, pe: Resource) -> str | None:
    for ref in (pe.get("properties") or {}).get("networkInterfaces") or []:
        nic = world.get(str(ref.get("id", "")))
        for config in ((nic or {}).get("properties") or {}).get("ipConfigurations") or []:
            ip = (config.get("properties") or {}).get("privateIPAddress")
            if ip:
                return str(ip)
    return None


class PrivateEndpoint(Kind):
    """A private endpoint: validates subnet and target, creates its NIC with an IP from the
    subnet, auto-approves ``privateLinkServiceConnections`` (manual ones stay Pending) and
    records the connection on the target resource."""

    flat_errors = True  # PrivateEndpoints_* answer network.json's flat `Error`
    type = PE_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    long_running = True
    delete_statuses = (200, 202, 204)
    immutable: ClassVar[dict[str, str]] = {
        "properties.subnet.id": "CannotChangeSubnetOnExistingPrivateEndpoint"
    }

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties") or {}
        subnet = _ref_id(props.get("subnet"))
        if not subnet:
            raise ArmError(
                400,
                "InvalidRequestFormat",
                "Cannot parse the request: a private endpoint needs properties.subnet.id.",
            )
        if world.get(subnet) is None:
            raise _missing_reference(subnet, rid)
        connections = _connections(props)
        if not connections:
            raise ArmError(
                400,
                "PrivateEndpointMustHaveOneConnection",
                f"Private endpoint {rid} must have exactly one private link service connection.",
            )
        for _, connection in connections:
            cprops = connection.get("properties") or {}
            target = cprops.get("privateLinkServiceId")
            if not isinstance(target, str) or world.get(target) is None:
                raise _missing_reference(str(target), rid)

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource["properties"]
        old = (existing or {}).get("properties", {})
        subnet_id = str(props["subnet"]["id"])
        nics = old.get("networkInterfaces") or []
        ip = _nic_ip(world, existing) if existing is not None else None
        props["subnet"] = {"id": subnet_id}
        if not nics or ip is None:
            nic_name = props.get("customNetworkInterfaceName") or (
                f"{_name(rid)}.nic.{world.new_guid()}"
            )
            nic_id = f"{_parent(rid)}/networkInterfaces/{nic_name}"
            nics = [{"id": nic_id}]
            ip = world.allocate_ip(subnet_id)
            # The platform creates the NIC while the endpoint provisions.
            world.put(nic_id, _pe_nic(world, nic_id, {**resource, "id": rid}, ip))
        props["networkInterfaces"] = nics
        etag = str(resource.get("etag", ""))
        dns_configs = []
        for key in ("privateLinkServiceConnections", "manualPrivateLinkServiceConnections"):
            manual = key == "manualPrivateLinkServiceConnections"
            shown = []
            for item in props.get(key) or []:
                connection = _child(rid, key, PLS_CONNECTION_TYPE, item, etag)
                cprops = connection["properties"]
                cprops.setdefault("groupIds", [])
                target = world.get(str(cprops["privateLinkServiceId"]))
                cprops["privateLinkServiceConnectionState"] = _connection_state(target, rid, manual)
                shown.append(connection)
                if target is not None and not manual:
                    dns_configs.append({"fqdn": target_fqdn(target), "ipAddresses": [ip]})
            props[key] = shown
        props["customDnsConfigs"] = dns_configs
        props.setdefault("applicationSecurityGroups", [])
        props.setdefault("ipConfigurations", [])

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        props = resource["properties"]
        for key, connection in _connections(props):
            _record_connection(world, rid, connection, key == "manualPrivateLinkServiceConnections")
        _refresh_subnet_endpoints(world, str(props["subnet"]["id"]))

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        props = resource.get("properties") or {}
        for ref in props.get("networkInterfaces") or []:
            world.delete(str(ref.get("id", "")))
        for _, connection in _connections(props):
            target = (connection.get("properties") or {}).get("privateLinkServiceId")
            if isinstance(target, str):
                _forget_connection(world, target, rid)
        subnet = _ref_id(props.get("subnet"))
        if subnet:
            _refresh_subnet_endpoints(world, subnet)


def _pe_nic(world: World, nic_id: str, pe: Resource, ip: str) -> Resource:
    props = pe["properties"]
    connection = (_connections(props) or [("", {})])[0][1]
    cprops = connection.get("properties") or {}
    group = (cprops.get("groupIds") or [""])[0]
    target = world.get(str(cprops.get("privateLinkServiceId", ""))) or {}
    config_name = f"privateEndpointIpConfig.{world.new_guid()}"
    nic_props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "resourceGuid": world.new_guid(),
        "ipConfigurations": [
            {
                "name": config_name,
                "id": f"{nic_id}/ipConfigurations/{config_name}",
                "etag": "",
                "type": f"{NIC_TYPE}/ipConfigurations",
                "properties": {
                    "provisioningState": "Succeeded",
                    "privateIPAddress": ip,
                    "privateIPAllocationMethod": "Dynamic",
                    "subnet": {"id": props["subnet"]["id"]},
                    "primary": True,
                    "privateIPAddressVersion": "IPv4",
                    "privateLinkConnectionProperties": {
                        "groupId": group,
                        "requiredMemberName": group,
                        "fqdns": [target_fqdn(target)] if target else [],
                    },
                },
            }
        ],
        "macAddress": "",
        "privateEndpoint": {"id": pe["id"]},
    }
    _nic_defaults(nic_props)
    etag = world.etag_for(NIC_TYPE)
    nic_props["ipConfigurations"][0]["etag"] = etag
    return {
        "name": _name(nic_id),
        "id": nic_id,
        "etag": etag,
        "type": NIC_TYPE,
        "location": pe.get("location"),
        "properties": nic_props,
    }


def _record_connection(world: World, pe_id: str, connection: dict[str, Any], manual: bool) -> None:
    """Add/refresh the connection on the target (its list, and a child resource when the
    target type has a ``privateEndpointConnections`` kind)."""
    cprops = connection.get("properties") or {}
    target_id = str(cprops.get("privateLinkServiceId", ""))
    target = world.get(target_id)
    if target is None:
        return
    tprops = target.setdefault("properties", {})
    listed = list(tprops.get("privateEndpointConnections") or [])
    found = next(
        (
            c
            for c in listed
            if _same_id(((c.get("properties") or {}).get("privateEndpoint") or {}).get("id"), pe_id)
        ),
        None,
    )
    name = str(found["name"]) if found else f"{_name(pe_id)}.{world.new_guid()}"
    conn_type = f"{_target_type(target_id)}/privateEndpointConnections"
    state = cprops.get("privateLinkServiceConnectionState") or {}
    if found is not None:  # the target side owns the approval state once it exists
        state = (found.get("properties") or {}).get("privateLinkServiceConnectionState") or state
    conn_id = f"{target['id']}/privateEndpointConnections/{name}"
    entry: Resource = {
        "id": conn_id,
        "name": name,
        "type": conn_type,
        "properties": {
            "privateEndpoint": {"id": pe_id},
            "groupIds": list(cprops.get("groupIds") or []),
            "privateLinkServiceConnectionState": {
                "status": state.get("status", "Pending" if manual else "Approved"),
                "description": state.get("description", ""),
                "actionsRequired": state.get("actionsRequired", "None"),
            },
            "provisioningState": "Succeeded",
        },
    }
    if world.kind_for(conn_type) is not None:
        world.put(conn_id, copy.deepcopy(entry))
    listed = [c for c in listed if c is not found] + [entry]
    tprops["privateEndpointConnections"] = listed
    world.put(target_id, target)


def _forget_connection(world: World, target_id: str, pe_id: str) -> None:
    target = world.get(target_id)
    if target is None:
        return
    tprops = target.setdefault("properties", {})
    kept = []
    for connection in tprops.get("privateEndpointConnections") or []:
        ref = ((connection.get("properties") or {}).get("privateEndpoint") or {}).get("id")
        if _same_id(ref, pe_id):
            world.delete(str(connection.get("id", "")))
        else:
            kept.append(connection)
    tprops["privateEndpointConnections"] = kept
    world.put(target_id, target)


def _refresh_subnet_endpoints(world: World, subnet_id: str) -> None:
    """Recompute the subnet's read-only ``privateEndpoints`` list (and its VNet copy)."""
    subnet = world.get(subnet_id)
    if subnet is None:
        return
    users = [
        {"id": pe["id"]}
        for pe in world.list_by_type(PE_TYPE)
        if _same_id(_ref_id((pe.get("properties") or {}).get("subnet")), subnet_id)
    ]
    props = subnet.setdefault("properties", {})
    if users:
        props["privateEndpoints"] = users
    else:
        props.pop("privateEndpoints", None)
    world.put(subnet_id, subnet)
    _sync_subnet_into_vnet(world, subnet_id, world.get(subnet_id))


# ---- private DNS zone groups --------------------------------------------------------------
class PrivateDnsZoneGroup(Kind):
    """``privateEndpoints/{pe}/privateDnsZoneGroups/{name}``: the platform writes an A record
    for the endpoint's target into every referenced zone (ttl 10) and removes it on delete."""

    type = ZONE_GROUP_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    type_field = False  # the PrivateDnsZoneGroup schema has no "type"
    long_running = True
    delete_statuses = (200, 202, 204)
    location_required = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        for config in (body.get("properties") or {}).get("privateDnsZoneConfigs") or []:
            zone = (config.get("properties") or {}).get("privateDnsZoneId")
            if not isinstance(zone, str) or world.get(zone) is None:
                raise _missing_reference(str(zone), rid)

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        resource.pop("location", None)
        pe_id = _parent(rid)
        pe = world.get(pe_id) or {}
        ip = _nic_ip(world, pe)
        names = _record_names(world, pe)
        configs = []
        for item in resource["properties"].get("privateDnsZoneConfigs") or []:
            cprops = copy.deepcopy(item.get("properties") or {})
            zone_id = str(cprops["privateDnsZoneId"])
            zone_name = _name(zone_id)
            cprops["recordSets"] = [
                {
                    "recordType": "A",
                    "recordSetName": name,
                    "fqdn": f"{name}.{zone_name}",
                    "ttl": RECORD_TTL,
                    "provisioningState": "Succeeded",
                    "ipAddresses": [ip] if ip else [],
                }
                for name in names
            ]
            config = {"properties": cprops}
            if item.get("name"):
                config = {"name": item["name"], **config}
            configs.append(config)
        resource["properties"]["privateDnsZoneConfigs"] = configs
        wanted = {
            f"{c['properties']['privateDnsZoneId']}/A/{r['recordSetName']}".lower()
            for c in configs
            for r in c["properties"]["recordSets"]
        }
        for stale in _record_ids(existing) - wanted:  # zones or names dropped by this update
            _delete_record(world, stale, pe_id)

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        pe_id = _parent(rid)
        pe = world.get(pe_id) or {}
        ip = _nic_ip(world, pe)
        for config in resource["properties"].get("privateDnsZoneConfigs") or []:
            zone_id = str(config["properties"]["privateDnsZoneId"])
            for record in config["properties"].get("recordSets") or []:
                address = ip or (record.get("ipAddresses") or [None])[0]
                if address:
                    _write_record(world, f"{zone_id}/A/{record['recordSetName']}", address, pe)

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        for record_id in _record_ids(resource):
            _delete_record(world, record_id, _parent(rid))


def _record_ids(zone_group: Resource | None) -> set[str]:
    """Lower-cased ids of the A records a stored zone group accounts for."""
    ids = set()
    for config in ((zone_group or {}).get("properties") or {}).get("privateDnsZoneConfigs") or []:
        cprops = config.get("properties") or {}
        for record in cprops.get("recordSets") or []:
            ids.add(f"{cprops.get('privateDnsZoneId', '')}/A/{record.get('recordSetName')}".lower())
    return ids


def _record_names(world: World, pe: Resource) -> list[str]:
    names = []
    for _, connection in _connections(pe.get("properties") or {}):
        target = world.get(
            str((connection.get("properties") or {}).get("privateLinkServiceId", ""))
        )
        if target is not None:
            names.append(record_name_for(target))
    return sorted(set(names))


def _creator(pe: Resource) -> str:
    guid = (pe.get("properties") or {}).get("resourceGuid") or str(pe.get("name", ""))
    return f"created by private endpoint {pe.get('name', '')} with resource guid {guid}"


def _write_record(world: World, record_id: str, ip: str, pe: Resource) -> None:
    zone_id = _parent(record_id)
    zone = world.get(zone_id)
    if zone is None:
        return
    name = _name(record_id)
    existing = world.get(record_id)
    record: Resource = {
        "id": f"{zone['id']}/A/{name}",
        "name": name,
        "type": A_RECORD_TYPE,
        "etag": world.new_guid(),
        "properties": {
            "metadata": {"creator": _creator(pe)},
            "ttl": RECORD_TTL,
            "fqdn": f"{name}.{zone['name']}.",
            "isAutoRegistered": False,
            "aRecords": [{"ipv4Address": ip}],
        },
    }
    if existing is not None and existing.get("properties") == record["properties"]:
        return
    world.put(record_id, record)
    _refresh_zone_count(world, zone_id)


def _delete_record(world: World, record_id: str, pe_id: str) -> None:
    record = world.get(record_id)
    if record is None:
        return
    creator = ((record.get("properties") or {}).get("metadata") or {}).get("creator", "")
    if f"private endpoint {_name(pe_id)} " not in str(creator):
        return  # written by someone else: not the platform's to remove
    world.delete(record_id)
    _refresh_zone_count(world, _parent(record_id))


def _refresh_zone_count(world: World, zone_id: str) -> None:
    zone = world.get(zone_id)
    if zone is None:
        return
    props = zone.setdefault("properties", {})
    if "numberOfRecordSets" not in props:
        return  # the zone kind does not track it
    records = sum(
        1
        for rtype in ("A", "AAAA", "CNAME", "MX", "PTR", "SOA", "SRV", "TXT")
        for _ in world.children(zone_id, f"Microsoft.Network/privateDnsZones/{rtype}")
    )
    props["numberOfRecordSets"] = records
    world.put(zone_id, zone)
