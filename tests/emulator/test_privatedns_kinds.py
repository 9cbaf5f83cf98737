"""Private DNS kinds (zones, VNet links, record sets) driven by the real
``PrivateDnsManagementClient`` against the running emulator."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.privatedns.models import (
    ARecord,
    CnameRecord,
    PrivateZone,
    RecordSet,
    RecordSetProperties,
    SubResource,
    VirtualNetworkLink,
    VirtualNetworkLinkProperties,
)

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import PG_SERVER_NAME, PG_ZONE_NAME, RESOURCE_GROUP, baseline_ids

from .conftest import control

RG = RESOURCE_GROUP
ZONE = "privatelink.openai.azure.com"


@pytest.fixture
def dns(clients: Clients) -> Any:
    """The real client; typed Any because its models type every field Optional."""
    return clients.privatedns


def _link(vnet_id: str) -> VirtualNetworkLink:
    return VirtualNetworkLink(
        location="Global",
        properties=VirtualNetworkLinkProperties(
            virtual_network=SubResource(id=vnet_id), registration_enabled=False
        ),
    )


def _a_record(*addresses: str, ttl: int = 10) -> RecordSet:
    return RecordSet(
        properties=RecordSetProperties(
            ttl=ttl, a_records=[ARecord(ipv4_address=a) for a in addresses]
        )
    )


def _requests(emu: Emulator, method: str, fragment: str) -> list[dict[str, Any]]:
    return [
        r
        for r in control(emu, "GET", "requests")
        if r["method"] == method and fragment in r["path"]
    ]


def test_zone_create_is_long_running_and_makes_the_soa(emu: Emulator, dns: Any) -> None:
    zone = dns.private_zones.begin_create_or_update(
        RG, ZONE, PrivateZone(location="Global", tags={"owner": "nsc"})
    ).result()
    assert zone.location == "global"
    assert zone.properties.provisioning_state == "Succeeded"
    assert zone.properties.number_of_record_sets == 1
    assert zone.properties.number_of_virtual_network_links == 0
    assert zone.properties.max_number_of_record_sets == 25000
    assert zone.tags == {"owner": "nsc"}
    put = _requests(emu, "PUT", f"/privateDnsZones/{ZONE}")[0]
    assert put["status"] == 202
    assert "azure-asyncoperation" in put["response_headers"]

    soa = dns.record_sets.get(RG, ZONE, "SOA", "@")
    assert soa.properties.fqdn == f"{ZONE}."
    assert soa.properties.soa_record.host == "azureprivatedns.net"
    listed = [z.name for z in dns.private_zones.list_by_resource_group(RG)]
    assert sorted(listed) == sorted([PG_ZONE_NAME, ZONE])


def test_zone_location_must_be_global(dns: Any) -> None:
    with pytest.raises(HttpResponseError) as caught:
        dns.private_zones.begin_create_or_update(
            RG, ZONE, PrivateZone(location="koreacentral")
        ).result()
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "LocationNotAvailableForResourceType"
    with pytest.raises(ResourceNotFoundError):
        dns.private_zones.get(RG, ZONE)


def test_vnet_link_rules(dns: Any) -> None:
    vnet_id = baseline_ids()["vnet"]
    dns.private_zones.begin_create_or_update(RG, ZONE, PrivateZone(location="Global")).result()
    link = dns.virtual_network_links.begin_create_or_update(
        RG, ZONE, "link-nsc-vnet-dev", _link(vnet_id)
    ).result()
    assert link.properties.virtual_network_link_state == "Completed"
    assert link.properties.registration_enabled is False
    assert link.properties.virtual_network.id == vnet_id
    assert dns.private_zones.get(RG, ZONE).properties.number_of_virtual_network_links == 1

    with pytest.raises(HttpResponseError) as caught:  # one link per VNet and zone
        dns.virtual_network_links.begin_create_or_update(
            RG, ZONE, "second-link", _link(vnet_id)
        ).result()
    assert caught.value.status_code == 409
    assert caught.value.error is not None
    assert caught.value.error.code == "Conflict"

    missing = vnet_id.replace("nsc-vnet-dev", "no-such-vnet")
    with pytest.raises(HttpResponseError) as caught:
        dns.virtual_network_links.begin_create_or_update(
            RG, ZONE, "dangling", _link(missing)
        ).result()
    assert caught.value.status_code == 400
    assert "Virtual network resource not found" in caught.value.message

    dns.virtual_network_links.begin_delete(RG, ZONE, "link-nsc-vnet-dev").result()
    with pytest.raises(ResourceNotFoundError):
        dns.virtual_network_links.get(RG, ZONE, "link-nsc-vnet-dev")
    assert dns.private_zones.get(RG, ZONE).properties.number_of_virtual_network_links == 0


def test_record_set_crud(emu: Emulator, dns: Any) -> None:
    dns.private_zones.begin_create_or_update(RG, ZONE, PrivateZone(location="Global")).result()
    created = dns.record_sets.create_or_update(
        RG, ZONE, "A", "nsc-aoai-dev", _a_record("10.10.1.5")
    )
    assert created.properties.fqdn == f"nsc-aoai-dev.{ZONE}."
    assert created.properties.is_auto_registered is False
    assert [a.ipv4_address for a in created.properties.a_records] == ["10.10.1.5"]
    statuses = [r["status"] for r in _requests(emu, "PUT", "/A/nsc-aoai-dev")]
    assert statuses == [201]

    updated = dns.record_sets.create_or_update(
        RG, ZONE, "A", "nsc-aoai-dev", _a_record("10.10.1.6", ttl=300)
    )
    assert updated.properties.ttl == 300
    assert dns.record_sets.get(RG, ZONE, "A", "nsc-aoai-dev").properties.a_records[
        0
    ].ipv4_address == ("10.10.1.6")
    assert [r.name for r in dns.record_sets.list_by_type(RG, ZONE, "A")] == ["nsc-aoai-dev"]
    assert dns.private_zones.get(RG, ZONE).properties.number_of_record_sets == 2  # SOA + A

    dns.record_sets.create_or_update(
        RG,
        ZONE,
        "CNAME",
        "alias",
        RecordSet(
            properties=RecordSetProperties(
                ttl=60, cname_record=CnameRecord(cname=f"nsc-aoai-dev.{ZONE}")
            )
        ),
    )
    assert dns.record_sets.get(RG, ZONE, "CNAME", "alias").properties.cname_record.cname == (
        f"nsc-aoai-dev.{ZONE}"
    )

    dns.record_sets.delete(RG, ZONE, "A", "nsc-aoai-dev")
    with pytest.raises(ResourceNotFoundError) as caught:
        dns.record_sets.get(RG, ZONE, "A", "nsc-aoai-dev")
    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceNotFound"


def test_record_set_validation(dns: Any) -> None:
    dns.private_zones.begin_create_or_update(RG, ZONE, PrivateZone(location="Global")).result()
    with pytest.raises(HttpResponseError) as caught:
        dns.record_sets.create_or_update(RG, ZONE, "A", "bad", _a_record("10.10.1.999"))
    assert caught.value.status_code == 400
    with pytest.raises(HttpResponseError) as caught:
        dns.record_sets.create_or_update(
            RG,
            ZONE,
            "CNAME",
            "@",
            RecordSet(properties=RecordSetProperties(ttl=60, cname_record=CnameRecord(cname="x"))),
        )
    assert caught.value.status_code == 400
    with pytest.raises(HttpResponseError) as caught:  # the zone must exist first
        dns.record_sets.create_or_update(
            RG, "privatelink.nowhere.azure.com", "A", "x", _a_record("10.10.1.7")
        )
    assert caught.value.status_code == 404


def test_missing_zone_is_resource_not_found(dns: Any) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        dns.private_zones.get(RG, "privatelink.nowhere.azure.com")
    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceNotFound"


def test_zone_delete_removes_its_record_sets(emu: Emulator, dns: Any) -> None:
    dns.private_zones.begin_create_or_update(RG, ZONE, PrivateZone(location="Global")).result()
    dns.record_sets.create_or_update(RG, ZONE, "A", "nsc-aoai-dev", _a_record("10.10.1.5"))
    dns.private_zones.begin_delete(RG, ZONE).result()
    with pytest.raises(ResourceNotFoundError):
        dns.private_zones.get(RG, ZONE)
    zone_id = f"{baseline_ids()['rg']}/providers/Microsoft.Network/privateDnsZones/{ZONE}"
    assert emu.world.get(f"{zone_id}/A/nsc-aoai-dev") is None


def test_record_sets_list_every_type_and_by_type(emu: Emulator, dns: Any) -> None:
    dns.private_zones.begin_create_or_update(RG, ZONE, PrivateZone(location="Global")).result()
    dns.record_sets.create_or_update(RG, ZONE, "A", "nsc-aoai-dev", _a_record("10.10.1.5"))
    dns.record_sets.create_or_update(
        RG,
        ZONE,
        "CNAME",
        "alias",
        RecordSet(properties=RecordSetProperties(ttl=60, cname_record=CnameRecord(cname="x"))),
    )
    listed = {(r.type, r.name) for r in dns.record_sets.list(RG, ZONE)}  # GET {zone}/aLL
    assert listed == {
        ("Microsoft.Network/privateDnsZones/SOA", "@"),
        ("Microsoft.Network/privateDnsZones/A", "nsc-aoai-dev"),
        ("Microsoft.Network/privateDnsZones/CNAME", "alias"),
    }
    assert _requests(emu, "GET", f"/privateDnsZones/{ZONE}/aLL")[0]["status"] == 200
    by_type = dns.record_sets.list_by_type(RG, ZONE, "A")
    assert [(r.name, r.properties.a_records[0].ipv4_address) for r in by_type] == [
        ("nsc-aoai-dev", "10.10.1.5")
    ]
    # The baseline zone: its SOA and the A record its endpoint's zone group wrote.
    baseline = {(r.type.rsplit("/", 1)[-1], r.name) for r in dns.record_sets.list(RG, PG_ZONE_NAME)}
    assert baseline == {("SOA", "@"), ("A", PG_SERVER_NAME)}
    # ALL is a collection only: no record set lives under it.
    with pytest.raises(HttpResponseError) as caught:
        dns.record_sets.get(RG, ZONE, "ALL", "nsc-aoai-dev")
    assert caught.value.status_code == 404
