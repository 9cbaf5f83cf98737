"""The emulator's DNS server queried with ``dnspython`` (UDP and TCP): private link names
resolve to private endpoint IPs only through a linked zone with the record."""

from __future__ import annotations

import ipaddress

import dns.message
import dns.query
import dns.rdatatype
import dns.resolver
import pytest
from azure.mgmt.privatedns.models import (
    ARecord,
    PrivateZone,
    RecordSet,
    RecordSetProperties,
    SubResource,
    VirtualNetworkLink,
    VirtualNetworkLinkProperties,
)

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.arm import World
from nsc_reconcile.emulator.dns import Resolver
from nsc_reconcile.emulator.worlds import (
    PG_SERVER_NAME,
    PG_ZONE_NAME,
    PG_ZONE_VNET_LINK_NAME,
    RESOURCE_GROUP,
    baseline_ids,
    build_world,
)

PG_HOST = f"{PG_SERVER_NAME}.postgres.database.azure.com"


@pytest.fixture
def resolver(emu: Emulator) -> dns.resolver.Resolver:
    host, port = emu.info["dns"].rsplit(":", 1)
    stub = dns.resolver.Resolver(configure=False)
    stub.nameservers = [host]
    stub.port = int(port)
    stub.lifetime = 5
    return stub


def _endpoint_ip(emu: Emulator | World) -> str:
    """The PostgreSQL private endpoint's NIC IP, read from ARM as a verifier would."""
    world = emu.world if isinstance(emu, Emulator) else emu
    endpoint = world.get(baseline_ids()["pg_private_endpoint"])
    assert endpoint is not None
    nic = world.get(endpoint["properties"]["networkInterfaces"][0]["id"])
    assert nic is not None
    return str(nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"])


def _addresses(answer: dns.resolver.Answer) -> list[str]:
    return [r.to_text() for r in answer]


def test_baseline_postgres_name_resolves_to_the_private_endpoint(
    emu: Emulator, resolver: dns.resolver.Resolver
) -> None:
    answer = resolver.resolve(PG_HOST, "A")
    expected = _endpoint_ip(emu)
    assert _addresses(answer) == [expected]
    assert ipaddress.ip_address(expected) in ipaddress.ip_network("10.10.1.0/24")
    chain = {rrset.rdtype: rrset for rrset in answer.response.answer}
    cname = chain[dns.rdatatype.CNAME]
    assert cname.name.to_text() == f"{PG_HOST}."
    assert cname[0].target.to_text() == f"{PG_SERVER_NAME}.{PG_ZONE_NAME}."
    assert answer.canonical_name.to_text() == f"{PG_SERVER_NAME}.{PG_ZONE_NAME}."


def test_tcp_gives_the_same_answer(emu: Emulator) -> None:
    host, port = emu.info["dns"].rsplit(":", 1)
    query = dns.message.make_query(PG_HOST, "A")
    response = dns.query.tcp(query, host, port=int(port), timeout=5)
    a_records = [r for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for r in rrset]
    assert [r.to_text() for r in a_records] == [_endpoint_ip(emu)]


@pytest.mark.parametrize(
    "name",
    [
        "nsc-pg-unknown.postgres.database.azure.com",  # no such server
        f"nsc-pg-unknown.{PG_ZONE_NAME}",  # linked zone, no record: the zone hides public DNS
        "not-azure.example.com",
    ],
)
def test_unknown_names_are_nxdomain(resolver: dns.resolver.Resolver, name: str) -> None:
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve(name, "A")


def test_without_the_vnet_link_the_name_resolves_publicly(
    emu: Emulator, resolver: dns.resolver.Resolver, clients: Clients
) -> None:
    clients.privatedns.virtual_network_links.begin_delete(
        RESOURCE_GROUP, PG_ZONE_NAME, PG_ZONE_VNET_LINK_NAME
    ).result()
    [address] = _addresses(resolver.resolve(PG_HOST, "A"))
    assert not ipaddress.ip_address(address).is_private
    assert address != _endpoint_ip(emu)


def test_new_zone_link_and_record_become_resolvable(
    resolver: dns.resolver.Resolver, clients: Clients
) -> None:
    zone = "privatelink.vaultcore.azure.net"
    vault_host = "nsc-kv-dev.vault.azure.net"
    public = _addresses(resolver.resolve(vault_host, "A"))  # no zone yet: public answer
    assert not ipaddress.ip_address(public[0]).is_private

    private_dns = clients.privatedns
    private_dns.private_zones.begin_create_or_update(
        RESOURCE_GROUP, zone, PrivateZone(location="Global")
    ).result()
    private_dns.record_sets.create_or_update(
        RESOURCE_GROUP,
        zone,
        "A",
        "nsc-kv-dev",
        RecordSet(
            properties=RecordSetProperties(ttl=10, a_records=[ARecord(ipv4_address="10.10.1.9")])
        ),
    )
    assert not ipaddress.ip_address(_addresses(resolver.resolve(vault_host, "A"))[0]).is_private

    private_dns.virtual_network_links.begin_create_or_update(
        RESOURCE_GROUP,
        zone,
        "link-nsc-vnet-dev",
        VirtualNetworkLink(
            location="Global",
            properties=VirtualNetworkLinkProperties(
                virtual_network=SubResource(id=baseline_ids()["vnet"]), registration_enabled=False
            ),
        ),
    ).result()
    assert _addresses(resolver.resolve(vault_host, "A")) == ["10.10.1.9"]
    assert _addresses(resolver.resolve(f"nsc-kv-dev.{zone}", "A")) == ["10.10.1.9"]


def test_client_outside_the_linked_vnet_gets_the_public_answer() -> None:
    world = build_world("baseline")
    inside = Resolver(world, vnet="nsc-vnet-dev").resolve(PG_HOST)
    outside = Resolver(world, vnet="some-other-vnet").resolve(PG_HOST)
    assert [r[3] for r in inside.records if r[1] == "A"] == [_endpoint_ip(world)]
    [public] = [r[3] for r in outside.records if r[1] == "A"]
    assert not ipaddress.ip_address(public).is_private
