"""PostgreSQL flexible servers and children through the real PostgreSQLManagementClient."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.postgresqlflexibleservers import models as pg

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import PG_SERVER_NAME, RESOURCE_GROUP
from tests.conftest import control

RG = RESOURCE_GROUP


def _server(login: str = "nscadmin", **network: Any) -> pg.Server:
    return pg.Server(
        location="koreacentral",
        sku=pg.Sku(name="Standard_D2ds_v5", tier="GeneralPurpose"),
        properties=pg.ServerProperties(
            version="16",
            administrator_login=login,
            administrator_login_password="S3cret-Passw0rd!",
            storage=pg.Storage(storage_size_gb=64),
            network=pg.Network(**network) if network else None,
        ),
    )


def test_create_is_long_running_with_the_configured_delay(emu: Emulator, clients: Clients) -> None:
    control(
        emu, "POST", "config", {"lro_seconds": {"Microsoft.DBforPostgreSQL/flexibleServers": 1}}
    )
    started = time.monotonic()
    poller: Any = clients.postgres.servers.begin_create_or_update(
        RG, "langfuse-pg", _server(public_network_access="Disabled")
    )
    assert not poller.done()
    server: Any = poller.result()
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5
    assert server.properties.state == "Ready"
    assert server.properties.fully_qualified_domain_name == (
        "langfuse-pg.postgres.database.azure.com"
    )
    assert server.properties.version == "16"
    assert server.properties.network.public_network_access == "Disabled"
    assert server.properties.network.delegated_subnet_resource_id is None
    assert server.properties.private_endpoint_connections == []
    log = control(emu, "GET", "requests")
    put = next(e for e in log if e["method"] == "PUT" and "langfuse-pg" in e["path"])
    assert put["status"] == 202
    assert any("/operations/" in e["path"] for e in log)


def test_admin_password_is_never_returned(emu: Emulator, clients: Clients) -> None:
    clients.postgres.servers.begin_create_or_update(RG, "langfuse-pg", _server()).result()
    got: Any = clients.postgres.servers.get(RG, "langfuse-pg")
    assert got.properties.administrator_login == "nscadmin"
    assert got.properties.administrator_login_password is None
    raw = control(emu, "GET", f"state?id={got.id}")
    assert "S3cret-Passw0rd!" not in json.dumps(raw)
    log = control(emu, "GET", "requests")
    assert all("S3cret-Passw0rd!" not in json.dumps(e.get("response_body")) for e in log)


def test_administrator_login_cannot_change(clients: Clients) -> None:
    clients.postgres.servers.begin_create_or_update(RG, "langfuse-pg", _server()).result()
    with pytest.raises(HttpResponseError) as refused:
        clients.postgres.servers.begin_create_or_update(
            RG, "langfuse-pg", _server(login="someoneelse")
        ).result()
    assert refused.value.status_code == 400
    assert refused.value.error is not None
    assert refused.value.error.code == "PropertyChangeNotAllowed"
    kept: Any = clients.postgres.servers.get(RG, "langfuse-pg")
    assert kept.properties.administrator_login == "nscadmin"


def test_create_without_credentials_is_refused(clients: Clients) -> None:
    body: Any = _server()
    body.properties.administrator_login_password = None
    with pytest.raises(HttpResponseError) as refused:
        clients.postgres.servers.begin_create_or_update(RG, "langfuse-pg", body).result()
    assert refused.value.error is not None
    assert refused.value.error.code == "EngineCredentialsNotProvided"


def test_missing_server_is_resource_not_found(clients: Clients) -> None:
    with pytest.raises(ResourceNotFoundError):
        clients.postgres.servers.get(RG, "nope")


def test_baseline_server_lists_its_private_endpoint_connection(clients: Clients) -> None:
    server: Any = clients.postgres.servers.get(RG, PG_SERVER_NAME)
    assert server.properties.network.public_network_access == "Disabled"
    connections = server.properties.private_endpoint_connections or []
    assert len(connections) == 1
    assert connections[0].properties.group_ids == ["postgresqlServer"]


def test_databases_firewall_rules_and_configurations(clients: Clients) -> None:
    clients.postgres.servers.begin_create_or_update(RG, "langfuse-pg", _server()).result()
    names = {d.name for d in clients.postgres.databases.list_by_server(RG, "langfuse-pg")}
    assert {"postgres", "azure_maintenance", "azure_sys"} <= names
    db: Any = clients.postgres.databases.begin_create(
        RG, "langfuse-pg", "langfuse", pg.Database(properties=pg.DatabaseProperties())
    ).result()
    assert db.properties.charset == "UTF8"
    assert db.properties.collation == "en_US.utf8"
    rule: Any = clients.postgres.firewall_rules.begin_create_or_update(
        RG,
        "langfuse-pg",
        "office",
        pg.FirewallRule(
            properties=pg.FirewallRuleProperties(
                start_ip_address="203.0.113.1", end_ip_address="203.0.113.9"
            )
        ),
    ).result()
    assert rule.properties.end_ip_address == "203.0.113.9"
    with pytest.raises(HttpResponseError) as bad_range:
        clients.postgres.firewall_rules.begin_create_or_update(
            RG,
            "langfuse-pg",
            "backwards",
            pg.FirewallRule(
                properties=pg.FirewallRuleProperties(
                    start_ip_address="203.0.113.9", end_ip_address="203.0.113.1"
                )
            ),
        ).result()
    assert bad_range.value.status_code == 400
    tls: Any = clients.postgres.configurations.get(RG, "langfuse-pg", "require_secure_connection")
    assert tls.properties.value == "on"
    assert tls.properties.source == "system-default"
    changed: Any = clients.postgres.configurations.begin_put(
        RG,
        "langfuse-pg",
        "max_connections",
        pg.ConfigurationForUpdate(
            properties=pg.ConfigurationProperties(value="200", source="user-override")
        ),
    ).result()
    assert changed.properties.value == "200"
    assert changed.properties.default_value == "50"
    with pytest.raises(ResourceNotFoundError):
        clients.postgres.configurations.get(RG, "langfuse-pg", "no_such_parameter")
