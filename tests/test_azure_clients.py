"""``nsc_reconcile.azure``: every SDK client reaches the emulator; non-loopback is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.mgmt.postgresqlflexibleservers import models as pg

from nsc_reconcile.azure import AzureTarget, Clients, NotLoopbackError
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import (
    ACR_NAME,
    AKS_NAME,
    KEY_VAULT_NAME,
    LOG_ANALYTICS_NAME,
    PG_SERVER_NAME,
    PG_ZONE_NAME,
    RESOURCE_GROUP,
    VNET_NAME,
)
from tests.conftest import control

RG = RESOURCE_GROUP


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(world="baseline") as running:
        yield running


@pytest.fixture
def clients(emulator: Emulator) -> Clients:
    control(emulator, "POST", "reset")
    control(emulator, "DELETE", "requests")
    return Clients(AzureTarget.for_emulator(emulator.info["arm"]))


@pytest.mark.parametrize(
    "url",
    [
        "http://10.10.1.4:8080",
        "http://example.com",
        "https://management.azure.com",
        "http://[fd00::1]:80",
    ],
)
def test_for_emulator_refuses_non_loopback_urls(url: str) -> None:
    with pytest.raises(NotLoopbackError, match="not a loopback address"):
        AzureTarget.for_emulator(url)


def test_for_emulator_reads_the_info_document(emulator: Emulator) -> None:
    target = AzureTarget.for_emulator(emulator.info["arm"] + "/")
    assert target.subscription_id == emulator.info["subscription_id"]
    assert target.arm_url == emulator.info["arm"]
    assert target.enforce_https is False
    assert target.ca_cert == emulator.info["ca_cert"]
    assert target.kubernetes_url == emulator.info["kubernetes"]


def test_every_management_client_makes_a_call(clients: Clients) -> None:
    assert clients.resource.resource_groups.get(RG).name == RG
    assert clients.network.virtual_networks.get(RG, VNET_NAME).name == VNET_NAME
    assert clients.privatedns.private_zones.get(RG, PG_ZONE_NAME).name == PG_ZONE_NAME
    assert list(clients.cognitive.accounts.list_by_resource_group(RG)) == []
    assert clients.postgres.servers.get(RG, PG_SERVER_NAME).name == PG_SERVER_NAME
    assert list(clients.monitor.action_groups.list_by_resource_group(RG)) == []
    assert clients.loganalytics.workspaces.get(RG, LOG_ANALYTICS_NAME).name == LOG_ANALYTICS_NAME
    assert clients.containerservice.managed_clusters.get(RG, AKS_NAME).name == AKS_NAME
    assert clients.containerregistry.registries.get(RG, ACR_NAME).name == ACR_NAME
    assert clients.keyvault_mgmt.vaults.get(RG, KEY_VAULT_NAME).name == KEY_VAULT_NAME
    # Clients are built once and cached.
    assert clients.network is clients.network


def test_secret_client_reaches_the_vault_over_https(clients: Clients) -> None:
    vault: Any = clients.keyvault_mgmt.vaults.get(RG, KEY_VAULT_NAME)
    secrets: Any = clients.secret_client(vault.properties.vault_uri)
    assert secrets is clients.secret_client(vault.properties.vault_uri)
    secrets.set_secret("azure-client-probe", "v1")
    assert secrets.get_secret("azure-client-probe").value == "v1"


def test_kubernetes_api_client_uses_the_cluster_credentials(clients: Clients) -> None:
    from kubernetes import client as k8s

    api: Any = clients.kubernetes_api_client(RG, AKS_NAME)
    namespaces: Any = k8s.CoreV1Api(api).list_namespace()
    assert "default" in [n.metadata.name for n in namespaces.items]


def test_lro_polling_works_over_plain_http(emulator: Emulator, clients: Clients) -> None:
    control(
        emulator,
        "POST",
        "config",
        {"lro_seconds": {"Microsoft.DBforPostgreSQL/flexibleServers": 1}},
    )
    started = time.monotonic()
    server: Any = clients.postgres.servers.begin_create_or_update(
        RG,
        "azure-client-pg",
        pg.Server(
            location="koreacentral",
            properties=pg.ServerProperties(
                version="16",
                administrator_login="nscadmin",
                administrator_login_password="S3cret-Passw0rd!",
            ),
        ),
    ).result()
    assert server.properties.state == "Ready"
    assert time.monotonic() - started >= 0.9
    log = control(emulator, "GET", "requests")
    polls = [e for e in log if e["method"] == "GET" and "/operations/" in e["path"]]
    assert polls, "the SDK should have polled the Azure-AsyncOperation URL"
    # A small polling interval: polled several times during the 1 s operation, not once per 30 s.
    assert len(polls) >= 2
