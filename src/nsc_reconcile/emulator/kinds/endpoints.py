"""Microsoft.Network interfaces and private endpoints: an endpoint gets a platform-managed
NIC with an IP from its subnet, and its connection is recorded on the target resource.
Imports only kinds.base, kinds.netcommon, protocol and the standard library.
"""

from __future__ import annotations

import copy
import urllib.parse
from typing import TYPE_CHECKING, Any, ClassVar

from nsc_reconcile.emulator.kinds.base import Kind, Resource
from nsc_reconcile.emulator.kinds.netcommon import (
    NETWORK_CREATE,
    NETWORK_DELETE,
    NETWORK_UPDATE,
    NIC_TYPE,
    PE_TYPE,
    VNET_TYPE,
    inline_child,
    mirror_child,
    missing_reference,
    name_of,
    parent_of,
    ref_id,
    same_id,
)
from nsc_reconcile.emulator.protocol import ArmError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

PLS_CONNECTION_TYPE = "Microsoft.Network/privateEndpoints/privateLinkServiceConnections"

# Host name a private endpoint resolves, by target type (when the target shows none itself).
_FQDN_SUFFIX = {
    "microsoft.dbforpostgresql/flexibleservers": "postgres.database.azure.com",
    "microsoft.keyvault/vaults": "vault.azure.net",
    "microsoft.containerregistry/registries": "azurecr.io",
    "microsoft.cognitiveservices/accounts": "openai.azure.com",
}


class NetworkInterface(Kind):
    """A NIC. Those of private endpoints are platform-managed: writes to them are refused."""

    type = NIC_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    on_create = NETWORK_CREATE
    on_update = NETWORK_UPDATE
    on_delete = NETWORK_DELETE

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        owner = ref_id(((existing or {}).get("properties") or {}).get("privateEndpoint"))
        if owner:
            raise ArmError(
                400,
                "OperationNotAllowed",
                f"Network interface {name_of(rid)} is managed by private endpoint {owner} and "
                "cannot be modified.",
            )
        for config in (body.get("properties") or {}).get("ipConfigurations") or []:
            subnet = ref_id((config.get("properties") or {}).get("subnet"))
            if subnet and world.get(subnet) is None:
                raise missing_reference(subnet, rid)

    def before_delete(self, world: World, rid: str, resource: Resource) -> None:
        owner = ref_id((resource.get("properties") or {}).get("privateEndpoint"))
        if owner:
            raise ArmError(
                400,
                "OperationNotAllowed",
                f"Network interface {name_of(rid)} is managed by private endpoint {owner}; "
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
            config = inline_child(rid, "ipConfigurations", f"{NIC_TYPE}/ipConfigurations", item, "")
            config["etag"] = resource.get("etag", "")
            cprops = config["properties"]
            subnet = ref_id(cprops.get("subnet"))
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


def target_fqdn(target: Resource, group: str = "") -> str:
    """The public host name a private endpoint to ``target`` (sub-resource ``group``) takes
    over."""
    props = target.get("properties") or {}
    by_group = props.get("primaryEndpoints")  # storage accounts: one endpoint per group id
    if isinstance(by_group, dict) and by_group.get(group):
        host = urllib.parse.urlsplit(str(by_group[group])).hostname
        if host:
            return host
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


def endpoint_connections(props: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
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
        if same_id((cprops.get("privateEndpoint") or {}).get("id"), pe_id):
            state = cprops.get("privateLinkServiceConnectionState")
            if isinstance(state, dict) and state.get("status"):
                return {
                    "status": str(state["status"]),
                    "description": str(state.get("description", "")),
                    "actionsRequired": str(state.get("actionsRequired", "None")),
                }
    if manual:  # recorded: "Awaiting Approval" in the create answer, "" once it has ended
        return {"status": "Pending", "description": "", "actionsRequired": "None"}
    return {"status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"}


def nic_ip(world: World, pe: Resource) -> str | None:
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

    # network.json declares a flat `Error` for PrivateEndpoints_*, but recorded 404s use the
    # {"error": {...}} envelope (Test_Networking_PrivateEndpoint_*): the recording wins.
    type = PE_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    on_create = NETWORK_CREATE
    on_update = NETWORK_UPDATE
    on_delete = NETWORK_DELETE
    gone_code = "NotFound"  # recorded: the Network RP's 404 after a delete
    immutable: ClassVar[dict[str, str]] = {
        "properties.subnet.id": "CannotChangeSubnetOnExistingPrivateEndpoint"
    }

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties") or {}
        subnet = ref_id(props.get("subnet"))
        if not subnet:
            raise ArmError(
                400,
                "InvalidRequestFormat",
                "Cannot parse the request: a private endpoint needs properties.subnet.id.",
            )
        if world.get(subnet) is None:
            raise missing_reference(subnet, rid)
        connections = endpoint_connections(props)
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
                raise missing_reference(str(target), rid)

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource["properties"]
        old = (existing or {}).get("properties", {})
        subnet_id = str(props["subnet"]["id"])
        nics = old.get("networkInterfaces") or []
        ip = nic_ip(world, existing) if existing is not None else None
        props["subnet"] = {"id": subnet_id}
        if not nics or ip is None:
            nic_name = props.get("customNetworkInterfaceName") or (
                f"{name_of(rid)}.nic.{world.new_guid()}"
            )
            nic_id = f"{parent_of(rid)}/networkInterfaces/{nic_name}"
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
                connection = inline_child(rid, key, PLS_CONNECTION_TYPE, item, etag)
                cprops = connection["properties"]
                cprops.setdefault("groupIds", [])
                target = world.get(str(cprops["privateLinkServiceId"]))
                cprops["privateLinkServiceConnectionState"] = _connection_state(target, rid, manual)
                shown.append(connection)
                if target is not None and not manual:
                    group = str((cprops.get("groupIds") or [""])[0])
                    dns_configs.append({"fqdn": target_fqdn(target, group), "ipAddresses": [ip]})
            props[key] = shown
        props["customDnsConfigs"] = dns_configs
        props.setdefault("applicationSecurityGroups", [])
        props.setdefault("ipConfigurations", [])

    def pending(self, world: World, rid: str, resource: Resource) -> None:
        """Recorded while the create runs: ``customDnsConfigs`` is ``[]``, an auto-approved
        connection reads "Auto Approved" (later "Auto-Approved"), a manual one "Awaiting
        Approval" (later "")."""
        props = resource["properties"]
        props["customDnsConfigs"] = []
        for _, connection in endpoint_connections(props):
            state = (connection.get("properties") or {}).get("privateLinkServiceConnectionState")
            if not isinstance(state, dict):
                continue
            if state.get("description") == "Auto-Approved":
                state["description"] = "Auto Approved"
            elif state.get("status") == "Pending" and not state.get("description"):
                state["description"] = "Awaiting Approval"

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        props = resource["properties"]
        for key, connection in endpoint_connections(props):
            _record_connection(world, rid, connection, key == "manualPrivateLinkServiceConnections")
        _refresh_subnet_endpoints(world, str(props["subnet"]["id"]))

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        props = resource.get("properties") or {}
        for ref in props.get("networkInterfaces") or []:
            world.delete(str(ref.get("id", "")))
        for _, connection in endpoint_connections(props):
            target = (connection.get("properties") or {}).get("privateLinkServiceId")
            if isinstance(target, str):
                _forget_connection(world, target, rid)
        subnet = ref_id(props.get("subnet"))
        if subnet:
            _refresh_subnet_endpoints(world, subnet)


def _pe_nic(world: World, nic_id: str, pe: Resource, ip: str) -> Resource:
    props = pe["properties"]
    connection = (endpoint_connections(props) or [("", {})])[0][1]
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
        "name": name_of(nic_id),
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
            if same_id(((c.get("properties") or {}).get("privateEndpoint") or {}).get("id"), pe_id)
        ),
        None,
    )
    name = str(found["name"]) if found else f"{name_of(pe_id)}.{world.new_guid()}"
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
        if same_id(ref, pe_id):
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
        if same_id(ref_id((pe.get("properties") or {}).get("subnet")), subnet_id)
    ]
    props = subnet.setdefault("properties", {})
    if users:
        props["privateEndpoints"] = users
    else:
        props.pop("privateEndpoints", None)
    world.put(subnet_id, subnet)
    mirror_child(world, subnet_id, world.get(subnet_id), "subnets", VNET_TYPE)
