"""The generic ARM engine through real SDK clients: CRUD, errors, ETags, LROs, resource groups."""

# The SDK overloads type bodies as models or IO; the clients accept JSON dicts at runtime.
# mypy: disable-error-code="call-overload"

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import LOCATION, RESOURCE_GROUP, SUBNETS, VNET_NAME

NSG = "nsg-engine-test"
Ctl = Callable[..., Any]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def raw(emu: Emulator, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    """A plain HTTP call to the ARM port (for what no SDK would send)."""
    request = urllib.request.Request(
        emu.info["arm"] + path,
        data=body,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with _OPENER.open(request, timeout=10) as answer:
            data = answer.read()
            return answer.status, json.loads(data) if data else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def nsg_body(**props: Any) -> dict[str, Any]:
    return {"location": "Korea Central", "tags": {"owner": "tests"}, "properties": props}


def test_put_get_update_with_server_fields(clients: Clients) -> None:
    created = clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, NSG, nsg_body()
    ).result()
    assert created.provisioning_state == "Succeeded"
    assert created.location == "koreacentral"  # normalised as Azure does
    assert created.name == NSG
    assert created.etag is not None
    assert created.etag.startswith('W/"')
    assert created.id.endswith(
        f"/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/networkSecurityGroups/{NSG}"
    )

    got = clients.network.network_security_groups.get(RESOURCE_GROUP, NSG)
    assert got.tags == {"owner": "tests"}
    assert got.etag == created.etag

    updated = clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, NSG, {**nsg_body(), "tags": {"owner": "tests", "env": "dev"}}
    ).result()
    assert updated.tags == {"owner": "tests", "env": "dev"}
    assert updated.etag != created.etag


def test_patch_replaces_tags_and_keeps_properties(clients: Clients) -> None:
    clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, NSG, nsg_body()
    ).result()
    patched = clients.network.network_security_groups.update_tags(
        RESOURCE_GROUP, NSG, {"tags": {"team": "nsc"}}
    )
    assert patched.tags == {"team": "nsc"}
    assert patched.default_security_rules  # properties untouched by a tags PATCH


def test_missing_resource_raises_resource_not_found(clients: Clients) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        clients.network.network_security_groups.get(RESOURCE_GROUP, "does-not-exist")
    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceNotFound"


def test_missing_resource_group(clients: Clients) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        clients.network.network_security_groups.get("no-such-rg", NSG)
    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceGroupNotFound"


def test_child_of_missing_parent_is_parent_resource_not_found(clients: Clients) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        clients.network.subnets.get(RESOURCE_GROUP, "no-such-vnet", "snet-data")
    assert caught.value.error is not None
    assert caught.value.error.code == "ParentResourceNotFound"
    with pytest.raises(HttpResponseError) as put:
        clients.network.subnets.begin_create_or_update(
            RESOURCE_GROUP, "no-such-vnet", "s1", {"properties": {"addressPrefix": "10.0.0.0/24"}}
        ).result()
    assert put.value.status_code == 404
    assert put.value.error is not None
    assert put.value.error.code == "ParentResourceNotFound"


def test_etag_if_match_mismatch_is_412(clients: Clients) -> None:
    created = clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, NSG, nsg_body()
    ).result()
    with pytest.raises(HttpResponseError) as caught:
        clients.network.network_security_groups.begin_create_or_update(
            RESOURCE_GROUP, NSG, nsg_body(), headers={"If-Match": 'W/"stale"'}
        ).result()
    assert caught.value.status_code == 412
    assert caught.value.error is not None
    assert caught.value.error.code == "PreconditionFailed"
    # The current ETag passes.
    ok = clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP,
        NSG,
        nsg_body(),
        headers={"If-Match": created.etag},
    ).result()
    assert ok.etag != created.etag


def test_if_none_match_star_on_existing_is_412(clients: Clients) -> None:
    clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, NSG, nsg_body()
    ).result()
    with pytest.raises((ResourceExistsError, HttpResponseError)) as caught:
        clients.network.network_security_groups.begin_create_or_update(
            RESOURCE_GROUP, NSG, nsg_body(), headers={"If-None-Match": "*"}
        ).result()
    assert caught.value.status_code == 412


def test_lro_takes_configured_time_and_moves_creating_to_succeeded(
    ctl: Ctl, clients: Clients
) -> None:
    ctl("POST", "config", {"lro_seconds": {"Microsoft.Network/networkSecurityGroups": 1}})
    started = time.monotonic()
    poller = clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, NSG, nsg_body()
    )
    first = clients.network.network_security_groups.get(RESOURCE_GROUP, NSG)
    assert first.provisioning_state == "Updating"  # recorded: the Network RP says Updating
    result = poller.result()
    elapsed = time.monotonic() - started
    assert result.provisioning_state == "Succeeded"
    assert elapsed >= 1.0
    assert elapsed < 5.0
    log = ctl("GET", "requests")
    puts = [e for e in log if e["method"] == "PUT"]
    assert puts[0]["status"] == 201
    assert "azure-asyncoperation" in puts[0]["response_headers"]
    polls = [e for e in log if "/operations/" in e["path"]]
    assert polls
    assert polls[-1]["response_body"]["status"] == "Succeeded"


def test_lro_delete(ctl: Ctl, clients: Clients) -> None:
    clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, NSG, nsg_body()
    ).result()
    clients.network.network_security_groups.begin_delete(RESOURCE_GROUP, NSG).result()
    with pytest.raises(ResourceNotFoundError):
        clients.network.network_security_groups.get(RESOURCE_GROUP, NSG)
    statuses = [e["status"] for e in ctl("GET", "requests") if e["method"] == "DELETE"]
    assert statuses == [202]


def test_list_at_collection_level(clients: Clients) -> None:
    clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, NSG, nsg_body()
    ).result()
    names = {n.name for n in clients.network.network_security_groups.list(RESOURCE_GROUP)}
    assert {NSG, "nsc-nsg-data-dev"} <= names
    everywhere = {n.name for n in clients.network.network_security_groups.list_all()}
    assert names <= everywhere
    subnets = {s.name for s in clients.network.subnets.list(RESOURCE_GROUP, VNET_NAME)}
    assert subnets == set(SUBNETS)


def test_ids_are_case_insensitive(clients: Clients) -> None:
    got = clients.network.virtual_networks.get(RESOURCE_GROUP.upper(), VNET_NAME.upper())
    assert got.name == VNET_NAME  # stored casing comes back


def test_resource_groups(clients: Clients) -> None:
    rg = clients.resource.resource_groups.create_or_update("rg-engine-test", {"location": LOCATION})
    assert rg.properties is not None
    assert rg.properties.provisioning_state == "Succeeded"
    assert clients.resource.resource_groups.check_existence("RG-ENGINE-TEST")
    clients.network.network_security_groups.begin_create_or_update(
        "rg-engine-test", NSG, nsg_body()
    ).result()
    clients.resource.resource_groups.begin_delete("rg-engine-test").result()
    assert not clients.resource.resource_groups.check_existence("rg-engine-test")
    with pytest.raises(ResourceNotFoundError) as caught:
        clients.network.network_security_groups.get("rg-engine-test", NSG)
    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceGroupNotFound"


def test_protocol_errors(emu: Emulator) -> None:
    sub = emu.info["subscription_id"]
    path = f"/subscriptions/{sub}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/networkSecurityGroups/{NSG}"
    status, body = raw(emu, "GET", path)
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")
    status, body = raw(emu, "PUT", path + "?api-version=2026-03-01", b"{not json")
    assert (status, body["error"]["code"]) == (400, "InvalidRequestContent")
    status, body = raw(
        emu,
        "GET",
        f"/subscriptions/{sub}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/noSuchThings/x?api-version=1",
    )
    assert (status, body["error"]["code"]) == (404, "InvalidResourceType")
    status, body = raw(
        emu,
        "GET",
        f"/subscriptions/{sub}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Nope/things/x?api-version=1",
    )
    assert (status, body["error"]["code"]) == (400, "InvalidResourceNamespace")
    status, body = raw(emu, "PUT", path + "?api-version=2026-03-01", b'{"properties": {}}')
    assert (status, body["error"]["code"]) == (400, "LocationRequired")
