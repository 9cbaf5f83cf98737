"""Microsoft.Network kinds through the real SDKs: VNets/subnets, NSGs/rules, private endpoints,
their NICs and DNS zone groups (A records written and removed by the platform)."""

# The SDK overloads type bodies as models or IO; the clients accept JSON dicts at runtime.
# mypy: disable-error-code="call-overload"

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.worlds import (
    LOCATION,
    NSG_DATA_NAME,
    PG_PRIVATE_ENDPOINT_NAME,
    PG_SERVER_NAME,
    PG_ZONE_NAME,
    RESOURCE_GROUP,
    SUBNET_DATA,
    SUBNETS,
    VNET_NAME,
    ZONE_GROUP_NAME,
    baseline_ids,
)

IDS = baseline_ids()
OPENAI_ZONE = "privatelink.openai.azure.com"


def pe_body(target: str, group: str, *, manual: bool = False, subnet: str = SUBNET_DATA) -> Any:
    key = "manualPrivateLinkServiceConnections" if manual else "privateLinkServiceConnections"
    return {
        "location": LOCATION,
        "properties": {
            "subnet": {"id": f"{IDS['vnet']}/subnets/{subnet}"},
            key: [
                {
                    "name": "conn",
                    "properties": {"privateLinkServiceId": target, "groupIds": [group]},
                }
            ],
        },
    }


def nic_ip(clients: Clients, nic_id: str) -> str:
    nic = clients.network.network_interfaces.get(RESOURCE_GROUP, nic_id.rsplit("/", 1)[-1])
    assert nic.ip_configurations
    address = nic.ip_configurations[0].private_ip_address
    assert address is not None
    return str(address)


def test_baseline_private_endpoint_chain(clients: Clients) -> None:
    pe = clients.network.private_endpoints.get(RESOURCE_GROUP, PG_PRIVATE_ENDPOINT_NAME)
    assert pe.private_link_service_connections
    state = pe.private_link_service_connections[0].private_link_service_connection_state
    assert state is not None
    assert state.status == "Approved"
    assert pe.network_interfaces
    assert pe.network_interfaces[0].id is not None
    ip = nic_ip(clients, pe.network_interfaces[0].id)
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(SUBNETS[SUBNET_DATA])
    assert pe.custom_dns_configs
    assert pe.custom_dns_configs[0].fqdn == f"{PG_SERVER_NAME}.postgres.database.azure.com"
    group = clients.network.private_dns_zone_groups.get(
        RESOURCE_GROUP, PG_PRIVATE_ENDPOINT_NAME, ZONE_GROUP_NAME
    )
    assert group.private_dns_zone_configs
    record = clients.privatedns.record_sets.get(RESOURCE_GROUP, PG_ZONE_NAME, "A", PG_SERVER_NAME)
    assert record.a_records
    assert [a.ipv4_address for a in record.a_records] == [ip]
    assert record.ttl == 10
    server = clients.postgres.servers.get(RESOURCE_GROUP, PG_SERVER_NAME)
    connections = server.properties.private_endpoint_connections if server.properties else None
    assert connections
    assert connections[0].properties is not None
    assert connections[0].properties.private_endpoint is not None
    assert connections[0].properties.private_endpoint.id == IDS["pg_private_endpoint"]


def test_subnet_child_and_vnet_stay_in_sync(clients: Clients) -> None:
    created = clients.network.subnets.begin_create_or_update(
        RESOURCE_GROUP, VNET_NAME, "snet-extra", {"properties": {"addressPrefix": "10.10.9.0/24"}}
    ).result()
    assert created.provisioning_state == "Succeeded"
    assert created.private_endpoint_network_policies == "Disabled"  # Azure's default
    vnet = clients.network.virtual_networks.get(RESOURCE_GROUP, VNET_NAME)
    assert vnet.subnets is not None
    assert {s.name for s in vnet.subnets} == {*SUBNETS, "snet-extra"}
    # A VNet PUT with its current subnets keeps them all (and their NSG link).
    clients.network.virtual_networks.begin_create_or_update(
        RESOURCE_GROUP, VNET_NAME, vnet
    ).result()
    data = clients.network.subnets.get(RESOURCE_GROUP, VNET_NAME, SUBNET_DATA)
    assert data.network_security_group is not None
    assert data.network_security_group.id == IDS["nsg_data"]
    clients.network.subnets.begin_delete(RESOURCE_GROUP, VNET_NAME, "snet-extra").result()
    vnet = clients.network.virtual_networks.get(RESOURCE_GROUP, VNET_NAME)
    assert vnet.subnets is not None
    assert {s.name for s in vnet.subnets} == set(SUBNETS)


def test_subnet_outside_vnet_and_in_use(clients: Clients) -> None:
    with pytest.raises(HttpResponseError) as caught:
        clients.network.subnets.begin_create_or_update(
            RESOURCE_GROUP, VNET_NAME, "snet-bad", {"properties": {"addressPrefix": "10.99.0.0/24"}}
        ).result()
    assert caught.value.error is not None
    assert caught.value.error.code == "NetcfgSubnetRangeOutsideVnet"
    with pytest.raises(HttpResponseError) as in_use:
        clients.network.subnets.begin_delete(RESOURCE_GROUP, VNET_NAME, SUBNET_DATA).result()
    assert in_use.value.error is not None
    assert in_use.value.error.code == "InUseSubnetCannotBeDeleted"


def test_security_rules_as_children(clients: Clients) -> None:
    rule = {
        "properties": {
            "protocol": "Tcp",
            "access": "Allow",
            "direction": "Inbound",
            "priority": 200,
            "sourceAddressPrefix": "10.10.2.0/24",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "10.10.1.0/24",
            "destinationPortRange": "5432",
        }
    }
    clients.network.security_rules.begin_create_or_update(
        RESOURCE_GROUP, NSG_DATA_NAME, "allow-aks-pg", rule
    ).result()
    nsg = clients.network.network_security_groups.get(RESOURCE_GROUP, NSG_DATA_NAME)
    assert nsg.security_rules is not None
    assert [r.name for r in nsg.security_rules] == ["allow-aks-pg"]
    assert nsg.default_security_rules is not None
    assert len(nsg.default_security_rules) == 6
    with pytest.raises(HttpResponseError) as caught:
        clients.network.security_rules.begin_create_or_update(
            RESOURCE_GROUP, NSG_DATA_NAME, "same-priority", rule
        ).result()
    assert caught.value.error is not None
    assert caught.value.error.code == "SecurityRuleConflict"
    outbound = {"properties": {**rule["properties"], "direction": "Outbound"}}
    clients.network.security_rules.begin_create_or_update(
        RESOURCE_GROUP, NSG_DATA_NAME, "same-priority-outbound", outbound
    ).result()
    clients.network.security_rules.begin_delete(
        RESOURCE_GROUP, NSG_DATA_NAME, "allow-aks-pg"
    ).result()
    nsg = clients.network.network_security_groups.get(RESOURCE_GROUP, NSG_DATA_NAME)
    assert [r.name for r in nsg.security_rules or []] == ["same-priority-outbound"]


def test_private_endpoint_validation(clients: Clients) -> None:
    with pytest.raises(HttpResponseError) as missing_subnet:
        clients.network.private_endpoints.begin_create_or_update(
            RESOURCE_GROUP, "pe-x", pe_body(IDS["key_vault"], "vault", subnet="nope")
        ).result()
    assert missing_subnet.value.error is not None
    assert missing_subnet.value.error.code == "InvalidResourceReference"
    with pytest.raises(HttpResponseError) as missing_target:
        clients.network.private_endpoints.begin_create_or_update(
            RESOURCE_GROUP, "pe-x", pe_body(IDS["key_vault"] + "-gone", "vault")
        ).result()
    assert missing_target.value.error is not None
    assert missing_target.value.error.code == "InvalidResourceReference"
    clients.network.private_endpoints.begin_create_or_update(
        RESOURCE_GROUP, "pe-x", pe_body(IDS["key_vault"], "vault")
    ).result()
    with pytest.raises(HttpResponseError) as moved:
        clients.network.private_endpoints.begin_create_or_update(
            RESOURCE_GROUP, "pe-x", pe_body(IDS["key_vault"], "vault", subnet="snet-aks")
        ).result()
    assert moved.value.status_code == 400
    assert moved.value.error is not None
    assert moved.value.error.code == "CannotChangeSubnetOnExistingPrivateEndpoint"


def test_manual_connection_stays_pending_and_ips_are_distinct(clients: Clients) -> None:
    pe = clients.network.private_endpoints.begin_create_or_update(
        RESOURCE_GROUP, "pe-manual", pe_body(IDS["key_vault"], "vault", manual=True)
    ).result()
    assert pe.manual_private_link_service_connections
    state = pe.manual_private_link_service_connections[0].private_link_service_connection_state
    assert state is not None
    assert state.status == "Pending"
    assert pe.network_interfaces
    assert pe.network_interfaces[0].id is not None
    baseline = clients.network.private_endpoints.get(RESOURCE_GROUP, PG_PRIVATE_ENDPOINT_NAME)
    assert baseline.network_interfaces
    assert baseline.network_interfaces[0].id is not None
    assert nic_ip(clients, pe.network_interfaces[0].id) != nic_ip(
        clients, baseline.network_interfaces[0].id
    )
    with pytest.raises(HttpResponseError) as caught:  # the platform owns the endpoint's NIC
        clients.network.network_interfaces.begin_delete(
            RESOURCE_GROUP, pe.network_interfaces[0].id.rsplit("/", 1)[-1]
        ).result()
    assert caught.value.status_code == 400


def test_zone_group_writes_and_removes_the_a_record(clients: Clients) -> None:
    account = clients.cognitive.accounts.begin_create(
        RESOURCE_GROUP,
        "nsc-aoai-dev",
        {
            "location": LOCATION,
            "kind": "OpenAI",
            "sku": {"name": "S0"},
            "properties": {
                "customSubDomainName": "nsc-aoai-dev-sub",
                "publicNetworkAccess": "Disabled",
            },
        },
    ).result()
    assert account.id is not None
    clients.privatedns.private_zones.begin_create_or_update(
        RESOURCE_GROUP, OPENAI_ZONE, {"location": "global"}
    ).result()
    pe = clients.network.private_endpoints.begin_create_or_update(
        RESOURCE_GROUP, "nsc-pe-openai", pe_body(account.id, "account")
    ).result()
    assert pe.network_interfaces
    assert pe.network_interfaces[0].id is not None
    ip = nic_ip(clients, pe.network_interfaces[0].id)
    zone_id = f"{IDS['rg']}/providers/Microsoft.Network/privateDnsZones/{OPENAI_ZONE}"
    group = clients.network.private_dns_zone_groups.begin_create_or_update(
        RESOURCE_GROUP,
        "nsc-pe-openai",
        ZONE_GROUP_NAME,
        {
            "properties": {
                "privateDnsZoneConfigs": [
                    {"name": "openai", "properties": {"privateDnsZoneId": zone_id}}
                ]
            }
        },
    ).result()
    assert group.private_dns_zone_configs
    record = clients.privatedns.record_sets.get(
        RESOURCE_GROUP, OPENAI_ZONE, "A", "nsc-aoai-dev-sub"
    )
    assert [a.ipv4_address for a in record.a_records or []] == [ip]
    assert record.ttl == 10
    assert record.fqdn == f"nsc-aoai-dev-sub.{OPENAI_ZONE}."
    refreshed = clients.cognitive.accounts.get(RESOURCE_GROUP, "nsc-aoai-dev")
    assert refreshed.properties is not None
    assert refreshed.properties.private_endpoint_connections

    clients.network.private_dns_zone_groups.begin_delete(
        RESOURCE_GROUP, "nsc-pe-openai", ZONE_GROUP_NAME
    ).result()
    with pytest.raises(ResourceNotFoundError):
        clients.privatedns.record_sets.get(RESOURCE_GROUP, OPENAI_ZONE, "A", "nsc-aoai-dev-sub")


def test_deleting_the_endpoint_removes_nic_record_and_connection(clients: Clients) -> None:
    pe = clients.network.private_endpoints.get(RESOURCE_GROUP, PG_PRIVATE_ENDPOINT_NAME)
    assert pe.network_interfaces
    nic_name = str(pe.network_interfaces[0].id).rsplit("/", 1)[-1]
    clients.network.private_endpoints.begin_delete(
        RESOURCE_GROUP, PG_PRIVATE_ENDPOINT_NAME
    ).result()
    with pytest.raises(ResourceNotFoundError):
        clients.network.network_interfaces.get(RESOURCE_GROUP, nic_name)
    with pytest.raises(ResourceNotFoundError):
        clients.privatedns.record_sets.get(RESOURCE_GROUP, PG_ZONE_NAME, "A", PG_SERVER_NAME)
    server = clients.postgres.servers.get(RESOURCE_GROUP, PG_SERVER_NAME)
    assert server.properties is not None
    assert not server.properties.private_endpoint_connections
    subnet = clients.network.subnets.get(RESOURCE_GROUP, VNET_NAME, SUBNET_DATA)
    assert not subnet.private_endpoints
