"""The minimal setup types of recorded sessions: Application Insights components and storage
accounts (raw HTTP: the project has no SDK for them), data collection endpoints and rule
associations (the real MonitorManagementClient)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.monitor import models as mon

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import LOCATION, RESOURCE_GROUP, baseline_ids

RG = RESOURCE_GROUP
RG_ID = baseline_ids()["rg"]
STORAGE = f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/nscstdev"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _call(url: str, method: str = "GET", body: Any = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with _OPENER.open(request, timeout=10) as answer:
            status, headers, raw = answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    return status, {k.lower(): v for k, v in headers.items()}, json.loads(raw) if raw else None


def _arm(emu: Emulator, rid: str, version: str, method: str = "GET", body: Any = None) -> Any:
    return _call(f"{emu.info['arm']}{rid}?api-version={version}", method, body)


def _requests(emu: Emulator) -> list[dict[str, Any]]:
    status, _, log = _call(f"{emu.info['arm']}/_emulator/requests")
    assert status == 200
    return list(log)


def test_component_created_synchronously_with_200(emu: Emulator) -> None:
    rid = f"{RG_ID}/providers/Microsoft.Insights/components/appi-nsc"
    body = {"location": LOCATION, "kind": "web", "properties": {"Application_Type": "other"}}
    status, headers, answer = _arm(emu, rid, "2020-02-02", "PUT", body)
    assert status == 200  # recorded: 200, not 201
    assert "location" not in headers
    assert "azure-asyncoperation" not in headers
    assert answer["type"] == "microsoft.insights/components"  # lower case, as recorded
    assert answer["id"].lower() == rid.lower()
    assert answer["kind"] == "web"
    props = answer["properties"]
    assert props["provisioningState"] == "Succeeded"
    assert props["ConnectionString"].startswith(f"InstrumentationKey={props['InstrumentationKey']}")
    assert _arm(emu, rid, "2020-02-02")[2]["properties"]["AppId"] == props["AppId"]


def test_storage_account_accepted_then_polled(emu: Emulator, ctl: Callable[..., Any]) -> None:
    ctl("POST", "config", {"lro_seconds": {"Microsoft.Storage/storageAccounts": 0.3}})
    body = {"location": LOCATION, "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}
    status, headers, answer = _arm(emu, STORAGE, "2021-04-01", "PUT", body)
    assert (status, answer) == (202, None)  # recorded: 202, Location, no body
    assert "azure-asyncoperation" not in headers
    poll = headers["location"]
    assert _call(poll)[0] == 202
    time.sleep(0.35)
    status, _, account = _call(poll)
    assert status == 200
    assert account["sku"] == {"name": "Standard_LRS", "tier": "Standard"}
    assert account["properties"]["provisioningState"] == "Succeeded"
    assert account["properties"]["primaryEndpoints"]["blob"] == (
        "https://nscstdev.blob.core.windows.net/"
    )
    assert _arm(emu, STORAGE, "2021-04-01")[2]["properties"]["statusOfPrimary"] == "available"


def test_storage_account_names_are_checked(emu: Emulator) -> None:
    rid = STORAGE.replace("nscstdev", "NSC-st")
    status, _, answer = _arm(emu, rid, "2021-04-01", "PUT", {"location": LOCATION})
    assert status == 400
    assert answer["error"]["code"] == "AccountNameInvalid"
    _arm(emu, STORAGE, "2021-04-01", "PUT", {"location": LOCATION})
    elsewhere = STORAGE.replace(RG_ID, f"{RG_ID}-other")
    _arm(emu, RG_ID + "-other", "2021-04-01", "PUT", {"location": LOCATION})
    status, _, answer = _arm(emu, elsewhere, "2021-04-01", "PUT", {"location": LOCATION})
    assert status == 409
    assert answer["error"]["code"] == "StorageAccountAlreadyTaken"  # names are global


def test_endpoint_and_association(clients: Clients, emu: Emulator) -> None:
    _arm(emu, STORAGE, "2021-04-01", "PUT", {"location": LOCATION, "sku": {"name": "Standard_LRS"}})
    endpoint = clients.monitor.data_collection_endpoints.create(
        RG,
        "dce-nsc",
        mon.DataCollectionEndpointResource(location=LOCATION, kind="Linux", description="d"),
    )
    assert endpoint.immutable_id is not None
    assert endpoint.immutable_id.startswith("dce-")
    assert endpoint.network_acls is not None
    assert endpoint.network_acls.public_network_access == "Enabled"
    assert endpoint.configuration_access is not None
    assert str(endpoint.configuration_access.endpoint).endswith(
        ".handler.control.monitor.azure.com"
    )
    assert endpoint.provisioning_state == "Succeeded"
    again = clients.monitor.data_collection_endpoints.get(RG, "dce-nsc")
    assert again.immutable_id == endpoint.immutable_id
    association = clients.monitor.data_collection_rule_associations.create(
        STORAGE,
        "configurationAccessEndpoint",
        mon.DataCollectionRuleAssociationProxyOnlyResource(data_collection_endpoint_id=endpoint.id),
    )
    assert association.id == (
        f"{STORAGE}/providers/Microsoft.Insights/dataCollectionRuleAssociations/"
        "configurationAccessEndpoint"
    )
    assert association.provisioning_state is None  # recorded: none
    requests = [r for r in _requests(emu) if r["method"] == "PUT"]
    assert [r["status"] for r in requests[-2:]] == [200, 200]  # recorded: synchronous 200s
    with pytest.raises(HttpResponseError) as refused:
        clients.monitor.data_collection_rule_associations.create(
            STORAGE, "nothing", mon.DataCollectionRuleAssociationProxyOnlyResource()
        )
    assert refused.value.status_code == 400
