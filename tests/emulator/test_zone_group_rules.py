"""Private DNS zone groups through the real SDKs: one zone group per private endpoint, at most
five zones per group (Microsoft's private endpoint DNS docs), and the platform's A records left
alone by an unchanged zone-group PUT (recreated when missing)."""

# The SDK overloads type bodies as models or IO; the clients accept JSON dicts at runtime.
# mypy: disable-error-code="call-overload"

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.worlds import (
    PG_PRIVATE_ENDPOINT_NAME,
    PG_SERVER_NAME,
    PG_ZONE_NAME,
    RESOURCE_GROUP,
    ZONE_GROUP_NAME,
    baseline_ids,
)

IDS = baseline_ids()
PE = PG_PRIVATE_ENDPOINT_NAME


def zone_id(zone: str) -> str:
    return f"{IDS['rg']}/providers/Microsoft.Network/privateDnsZones/{zone}"


def group_body(*zones: str) -> Any:
    configs = [
        {"name": zone.replace(".", "-"), "properties": {"privateDnsZoneId": zone_id(zone)}}
        for zone in zones
    ]
    return {"properties": {"privateDnsZoneConfigs": configs}}


def make_zones(clients: Clients, count: int) -> list[str]:
    names = [f"privatelink{i}.postgres.database.azure.com" for i in range(count)]
    for name in names:
        clients.privatedns.private_zones.begin_create_or_update(
            RESOURCE_GROUP, name, {"location": "global"}
        ).result()
    return names


def pg_record(clients: Clients, zone: str = PG_ZONE_NAME) -> Any:
    return clients.privatedns.record_sets.get(RESOURCE_GROUP, zone, "A", PG_SERVER_NAME)


def test_a_second_zone_group_on_one_endpoint_is_refused(
    clients: Clients, ctl: Callable[..., Any]
) -> None:
    groups = clients.network.private_dns_zone_groups
    with pytest.raises(HttpResponseError) as caught:
        groups.begin_create_or_update(
            RESOURCE_GROUP, PE, "second", group_body(PG_ZONE_NAME)
        ).result()
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "BadRequest"
    assert "Cannot create more than one private dns zone groups in the private endpoint" in str(
        caught.value.error.message
    )
    with pytest.raises(ResourceNotFoundError):
        groups.get(RESOURCE_GROUP, PE, "second")
    assert [g.name for g in groups.list(PE, RESOURCE_GROUP)] == [ZONE_GROUP_NAME]

    # A PUT of the endpoint's own zone group is an update, and stays allowed.
    (extra,) = make_zones(clients, 1)
    updated = groups.begin_create_or_update(
        RESOURCE_GROUP, PE, ZONE_GROUP_NAME, group_body(PG_ZONE_NAME, extra)
    ).result()
    assert updated.provisioning_state == "Succeeded"
    assert len(updated.private_dns_zone_configs or []) == 2
    assert pg_record(clients, extra).a_records
    # Even beside a second group injected as drift (no validation), the update is allowed.
    pe_id = f"{IDS['rg']}/providers/Microsoft.Network/privateEndpoints/{PE}"
    ctl("PUT", f"state?id={pe_id}/privateDnsZoneGroups/drift", group_body())
    groups.begin_create_or_update(
        RESOURCE_GROUP, PE, ZONE_GROUP_NAME, group_body(PG_ZONE_NAME)
    ).result()


def test_a_zone_group_holds_at_most_five_zones(clients: Clients) -> None:
    zones = make_zones(clients, 6)
    groups = clients.network.private_dns_zone_groups
    with pytest.raises(HttpResponseError) as caught:
        groups.begin_create_or_update(
            RESOURCE_GROUP, PE, ZONE_GROUP_NAME, group_body(*zones)
        ).result()
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "BadRequest"
    kept = groups.get(RESOURCE_GROUP, PE, ZONE_GROUP_NAME)  # the refused update changed nothing
    assert [c.private_dns_zone_id for c in kept.private_dns_zone_configs or []] == [
        zone_id(PG_ZONE_NAME)
    ]
    five = groups.begin_create_or_update(
        RESOURCE_GROUP, PE, ZONE_GROUP_NAME, group_body(*zones[:5])
    ).result()
    assert len(five.private_dns_zone_configs or []) == 5


def test_an_unchanged_zone_group_put_leaves_its_a_record_alone(clients: Clients) -> None:
    groups = clients.network.private_dns_zone_groups
    before = pg_record(clients)
    group = groups.get(RESOURCE_GROUP, PE, ZONE_GROUP_NAME)
    groups.begin_create_or_update(RESOURCE_GROUP, PE, ZONE_GROUP_NAME, group).result()
    groups.begin_create_or_update(
        RESOURCE_GROUP, PE, ZONE_GROUP_NAME, group_body(PG_ZONE_NAME)
    ).result()
    after = pg_record(clients)
    assert after.etag == before.etag
    assert after.as_dict() == before.as_dict()

    # Its zones change: the new zone gets a record, the kept one is still untouched.
    (extra,) = make_zones(clients, 1)
    groups.begin_create_or_update(
        RESOURCE_GROUP, PE, ZONE_GROUP_NAME, group_body(PG_ZONE_NAME, extra)
    ).result()
    assert pg_record(clients).etag == before.etag
    assert pg_record(clients, extra).a_records == before.a_records


def test_an_unchanged_zone_group_put_recreates_a_deleted_a_record(clients: Clients) -> None:
    before = pg_record(clients)
    clients.privatedns.record_sets.delete(RESOURCE_GROUP, PG_ZONE_NAME, "A", PG_SERVER_NAME)
    with pytest.raises(ResourceNotFoundError):
        pg_record(clients)
    groups = clients.network.private_dns_zone_groups
    group = groups.get(RESOURCE_GROUP, PE, ZONE_GROUP_NAME)
    groups.begin_create_or_update(RESOURCE_GROUP, PE, ZONE_GROUP_NAME, group).result()
    again = pg_record(clients)
    assert [a.ipv4_address for a in again.a_records or []] == [
        a.ipv4_address for a in before.a_records or []
    ]
    assert again.ttl == 10
    assert again.metadata == before.metadata
    zone = clients.privatedns.private_zones.get(RESOURCE_GROUP, PG_ZONE_NAME)
    assert zone.number_of_record_sets == 2  # SOA + the A record
