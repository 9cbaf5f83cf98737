"""Log Analytics workspaces and custom tables through the real LogAnalyticsManagementClient."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.loganalytics import models as la

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.worlds import LOG_ANALYTICS_NAME, RESOURCE_GROUP

RG = RESOURCE_GROUP


def _table(*columns: tuple[str, str]) -> la.Table:
    return la.Table(
        properties=la.TableProperties(
            schema=la.Schema(
                name="AgentEvents_CL",
                columns=[la.Column(name=name, type=kind) for name, kind in columns],
            ),
            retention_in_days=30,
        )
    )


def test_workspace_create_and_server_fields(clients: Clients) -> None:
    created: Any = clients.loganalytics.workspaces.begin_create_or_update(
        RG,
        "law-test",
        la.Workspace(
            location="koreacentral",
            properties=la.WorkspaceProperties(
                sku=la.WorkspaceSku(name="PerGB2018"), retention_in_days=60
            ),
        ),
    ).result()
    uuid.UUID(created.properties.customer_id)
    assert created.properties.retention_in_days == 60
    assert created.properties.public_network_access_for_ingestion == "Enabled"
    assert created.properties.provisioning_state == "Succeeded"
    updated: Any = clients.loganalytics.workspaces.begin_create_or_update(
        RG,
        "law-test",
        la.Workspace(
            location="koreacentral",
            properties=la.WorkspaceProperties(
                sku=la.WorkspaceSku(name="PerGB2018"),
                retention_in_days=90,
                public_network_access_for_query="Disabled",
            ),
        ),
    ).result()
    assert updated.properties.customer_id == created.properties.customer_id
    assert updated.properties.public_network_access_for_query == "Disabled"
    with pytest.raises(ResourceNotFoundError):
        clients.loganalytics.workspaces.get(RG, "missing")


def test_custom_table_round_trip(clients: Clients) -> None:
    table: Any = clients.loganalytics.tables.begin_create_or_update(
        RG,
        LOG_ANALYTICS_NAME,
        "AgentEvents_CL",
        _table(("TimeGenerated", "dateTime"), ("Message", "string"), ("Level", "string")),
    ).result()
    assert table.properties.provisioning_state == "Succeeded"
    assert [c.name for c in table.properties.schema.columns] == [
        "TimeGenerated",
        "Message",
        "Level",
    ]
    assert table.properties.schema.table_type == "CustomLog"
    assert table.properties.retention_in_days == 30
    got: Any = clients.loganalytics.tables.get(RG, LOG_ANALYTICS_NAME, "AgentEvents_CL")
    assert got.properties.schema.columns[0].type == "dateTime"


def test_table_rules_azure_enforces(clients: Clients) -> None:
    with pytest.raises(HttpResponseError) as no_suffix:
        clients.loganalytics.tables.begin_create_or_update(
            RG, LOG_ANALYTICS_NAME, "AgentEvents", _table(("TimeGenerated", "dateTime"))
        ).result()
    assert no_suffix.value.status_code == 400
    with pytest.raises(HttpResponseError) as no_time:
        clients.loganalytics.tables.begin_create_or_update(
            RG, LOG_ANALYTICS_NAME, "AgentEvents_CL", _table(("Message", "string"))
        ).result()
    assert no_time.value.status_code == 400
    assert "TimeGenerated" in str(no_time.value)
    clients.loganalytics.tables.begin_create_or_update(
        RG,
        LOG_ANALYTICS_NAME,
        "AgentEvents_CL",
        _table(("TimeGenerated", "dateTime"), ("N", "int")),
    ).result()
    with pytest.raises(HttpResponseError) as retyped:
        clients.loganalytics.tables.begin_create_or_update(
            RG,
            LOG_ANALYTICS_NAME,
            "AgentEvents_CL",
            _table(("TimeGenerated", "dateTime"), ("N", "string")),
        ).result()
    assert retyped.value.status_code == 400
