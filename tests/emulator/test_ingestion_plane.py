"""The Logs Ingestion API with the real `azure-monitor-ingestion` client: events posted to a
Direct DCR's endpoint land in its table; unknown rules and bad rows are refused as Azure does."""

# The SDK overloads type bodies as models or IO; the clients accept JSON dicts at runtime.
# mypy: disable-error-code="call-overload"

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import LOG_ANALYTICS_NAME, RESOURCE_GROUP

TABLE = "AgentEvents_CL"
STREAM = f"Custom-{TABLE}"


def make_dcr(emu: Emulator, clients: Clients) -> Any:
    sub = emu.info["subscription_id"]
    workspace = (
        f"/subscriptions/{sub}/resourceGroups/{RESOURCE_GROUP}/providers/"
        f"Microsoft.OperationalInsights/workspaces/{LOG_ANALYTICS_NAME}"
    )
    return clients.monitor.data_collection_rules.create(
        RESOURCE_GROUP,
        "dcr-agent-events",
        {
            "location": "koreacentral",
            "kind": "Direct",
            "properties": {
                "streamDeclarations": {
                    STREAM: {
                        "columns": [
                            {"name": "TimeGenerated", "type": "datetime"},
                            {"name": "EventType", "type": "string"},
                            {"name": "Attempt", "type": "int"},
                        ]
                    }
                },
                "destinations": {
                    "logAnalytics": [{"workspaceResourceId": workspace, "name": "law"}]
                },
                "dataFlows": [
                    {
                        "streams": [STREAM],
                        "destinations": ["law"],
                        "transformKql": "source",
                        "outputStream": STREAM,
                    }
                ],
            },
        },
    )


def test_events_posted_to_the_rule_land_in_its_table(
    emu: Emulator, clients: Clients, ctl: Callable[..., Any]
) -> None:
    rule = make_dcr(emu, clients)
    assert rule.endpoints is not None
    endpoint = rule.endpoints.logs_ingestion
    assert endpoint == emu.info["ingestion"]
    ingest = clients.logs_ingestion_client(str(endpoint))
    events: list[MutableMapping[str, Any]] = [
        {"TimeGenerated": "2026-11-26T05:00:00Z", "EventType": "TRIAGE_READY", "Attempt": 1},
        {"TimeGenerated": "2026-11-26T05:01:00Z", "EventType": "EXECUTION_FAILED", "Attempt": 2},
    ]
    ingest.upload(rule_id=str(rule.immutable_id), stream_name=STREAM, logs=events)
    assert ctl("GET", f"logs?table={TABLE}") == events


def test_unknown_rule_and_undeclared_column_are_refused(
    emu: Emulator, clients: Clients, ctl: Callable[..., Any]
) -> None:
    rule = make_dcr(emu, clients)
    assert rule.endpoints is not None
    ingest = clients.logs_ingestion_client(str(rule.endpoints.logs_ingestion))
    with pytest.raises(HttpResponseError) as unknown:
        ingest.upload(rule_id="dcr-" + "0" * 32, stream_name=STREAM, logs=[{"EventType": "X"}])
    assert unknown.value.status_code == 404
    with pytest.raises(HttpResponseError) as bad:
        ingest.upload(rule_id=str(rule.immutable_id), stream_name=STREAM, logs=[{"Colour": "b"}])
    assert bad.value.status_code == 400
    assert ctl("GET", f"logs?table={TABLE}") == []
