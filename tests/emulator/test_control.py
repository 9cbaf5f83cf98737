"""The control interface seen through real SDK clients: faults, latency, drift, log, reset."""

# The SDK overloads type bodies as models or IO; the clients accept JSON dicts at runtime.
# mypy: disable-error-code="call-overload"

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import (
    LOCATION,
    NSG_DATA_NAME,
    PG_PRIVATE_ENDPOINT_NAME,
    RESOURCE_GROUP,
    VNET_NAME,
    baseline_ids,
)

Ctl = Callable[..., Any]
IDS = baseline_ids()
VNET_PATH = f"/virtualNetworks/{VNET_NAME}$"


def test_429_with_retry_after_is_retried_by_azure_core(ctl: Ctl, clients: Clients) -> None:
    ctl(
        "POST",
        "faults",
        [
            {
                "method": "get",
                "path": VNET_PATH,
                "status": 429,
                "code": "TooManyRequests",
                "retry_after": 1,
                "count": 1,
            }
        ],
    )
    started = time.monotonic()
    vnet = clients.network.virtual_networks.get(RESOURCE_GROUP, VNET_NAME)
    assert vnet.name == VNET_NAME
    assert time.monotonic() - started >= 1.0  # Retry-After honoured
    log = [e for e in ctl("GET", "requests") if e["path"].endswith(VNET_NAME)]
    assert [e["status"] for e in log] == [429, 200]
    assert log[0]["fault"] == "respond"
    assert log[0]["response_body"]["error"]["code"] == "TooManyRequests"
    assert ctl("GET", "faults") == []  # count 1: expired


def test_fault_answers_arm_error_when_not_retried(
    ctl: Ctl, make_clients: Callable[..., Clients]
) -> None:
    ctl(
        "POST",
        "faults",
        {"path": VNET_PATH, "status": 409, "code": "AnotherOperationInProgress", "count": 2},
    )
    clients = make_clients()
    with pytest.raises(HttpResponseError) as caught:
        clients.network.virtual_networks.get(RESOURCE_GROUP, VNET_NAME)
    assert caught.value.status_code == 409
    assert caught.value.error is not None
    assert caught.value.error.code == "AnotherOperationInProgress"
    # A method that does not match leaves the rule alone.
    ctl("DELETE", "faults")
    ctl("POST", "faults", {"method": "PUT", "path": VNET_PATH, "status": 500})
    assert clients.network.virtual_networks.get(RESOURCE_GROUP, VNET_NAME).name == VNET_NAME
    assert len(ctl("GET", "faults")) == 1


def test_dropped_connection(
    ctl: Ctl, clients: Clients, make_clients: Callable[..., Clients]
) -> None:
    ctl("POST", "faults", {"path": VNET_PATH, "action": "drop", "count": 1})
    assert clients.network.virtual_networks.get(RESOURCE_GROUP, VNET_NAME).name == VNET_NAME
    faults = [e["fault"] for e in ctl("GET", "requests")]
    assert faults == ["drop", None]
    ctl("POST", "faults", {"path": VNET_PATH, "action": "drop", "count": None})
    strict = make_clients(retry_total=0)
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        strict.network.virtual_networks.get(RESOURCE_GROUP, VNET_NAME)


def test_fail_lro_ends_the_operation_failed(ctl: Ctl, clients: Clients) -> None:
    ctl(
        "POST",
        "faults",
        {
            "method": "PUT",
            "path": "/networkSecurityGroups/nsg-doomed$",
            "action": "fail_lro",
            "code": "InternalServerError",
            "message": "boom",
        },
    )
    poller = clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, "nsg-doomed", {"location": LOCATION}
    )
    with pytest.raises(HttpResponseError) as caught:
        poller.result()
    assert "boom" in str(caught.value)
    stored = clients.network.network_security_groups.get(RESOURCE_GROUP, "nsg-doomed")
    assert stored.provisioning_state == "Failed"


def test_latency(ctl: Ctl, clients: Clients) -> None:
    assert ctl("POST", "config", {"latency_ms": 300})["latency_ms"] == 300
    started = time.monotonic()
    clients.network.virtual_networks.get(RESOURCE_GROUP, VNET_NAME)
    assert time.monotonic() - started >= 0.3


def test_drift_via_state_is_visible_to_the_next_get(ctl: Ctl, clients: Clients) -> None:
    query = "state?id=" + urllib.parse.quote(IDS["nsg_data"], safe="")
    stored = ctl("GET", query)
    stored["tags"] = {"changed-by": "portal"}
    stored["properties"]["securityRules"] = [{"name": "rogue", "properties": {"priority": 100}}]
    ctl("PUT", query, stored)
    nsg = clients.network.network_security_groups.get(RESOURCE_GROUP, NSG_DATA_NAME)
    assert nsg.tags == {"changed-by": "portal"}
    assert [r.name for r in nsg.security_rules or []] == ["rogue"]
    ctl("DELETE", query)
    with pytest.raises(ResourceNotFoundError):
        clients.network.network_security_groups.get(RESOURCE_GROUP, NSG_DATA_NAME)
    with pytest.raises(urllib.error.HTTPError) as missing:
        ctl("GET", query)
    assert missing.value.code == 404


def test_request_log_contents(ctl: Ctl, clients: Clients) -> None:
    clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, "nsg-logged", {"location": LOCATION, "tags": {"a": "b"}}
    ).result()
    log = ctl("GET", "requests")
    put = next(e for e in log if e["method"] == "PUT")
    assert put["plane"] == "arm"
    assert put["path"].endswith("/networkSecurityGroups/nsg-logged")
    assert put["query"]["api-version"]
    assert put["status"] == 201
    assert put["request_body"]["tags"] == {"a": "b"}
    assert put["response_body"]["name"] == "nsg-logged"
    assert not any(e["path"].startswith("/_emulator/") for e in log)  # control calls not logged
    ctl("DELETE", "requests")
    assert ctl("GET", "requests") == []


def test_reset_restores_the_starting_world(ctl: Ctl, clients: Clients) -> None:
    clients.network.private_endpoints.begin_delete(
        RESOURCE_GROUP, PG_PRIVATE_ENDPOINT_NAME
    ).result()
    clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, "nsg-temp", {"location": LOCATION}
    ).result()
    ctl("POST", "config", {"lro_seconds": {"Microsoft.Network/privateEndpoints": 30}})
    ctl("POST", "reset")
    assert clients.network.private_endpoints.get(RESOURCE_GROUP, PG_PRIVATE_ENDPOINT_NAME).name
    with pytest.raises(ResourceNotFoundError):
        clients.network.network_security_groups.get(RESOURCE_GROUP, "nsg-temp")
    assert ctl("GET", "config")["lro_seconds"] == {}


def test_info_and_bad_control_input(emu: Emulator, ctl: Ctl) -> None:
    assert ctl("GET", "info") == emu.info
    assert emu.info["dns"].startswith("127.0.0.1:")
    for what, body in (("faults", {"path": "(", "status": 500}), ("config", {"nope": 1})):
        with pytest.raises(urllib.error.HTTPError) as caught:
            ctl("POST", what, body)
        assert caught.value.code == 400


def test_serve_prints_one_ready_line_and_stops_on_sigterm() -> None:
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "nsc_reconcile.emulator.app", "0", "empty"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["world"] == "empty"
        assert info["arm"].startswith("http://127.0.0.1:")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(info["arm"] + "/_emulator/info", timeout=5) as answer:
            assert json.load(answer) == info
        assert time.monotonic() - started < 10
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_the_request_log_never_keeps_basic_credentials(emu: Emulator, ctl: Ctl) -> None:
    """Basic credentials (LangFuse project keys) are redacted in the log; a bearer token is
    kept as sent (tests check which token a client used)."""
    ctl("DELETE", "requests")
    sub = emu.info["subscription_id"]
    url = f"{emu.info['arm']}/subscriptions/{sub}/resourcegroups/2dt-final-team4?api-version=2021-04-01"
    for header in ("Basic cGstbGYtMTIzOnNrLWxmLTQ1Ng==", "Bearer emulator-token"):
        request = urllib.request.Request(url, headers={"Authorization": header})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10):
            pass
    logged = [e["request_headers"].get("authorization") for e in ctl("GET", "requests")]
    assert logged == ["Basic <redacted>", "Bearer emulator-token"]
