"""Action groups, log alert rules and DCRs through the real MonitorManagementClient."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.monitor import models as mon

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import LOG_ANALYTICS_NAME, RESOURCE_GROUP, SUBSCRIPTION_ID

RG = RESOURCE_GROUP
WORKSPACE_ID = (
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/"
    f"Microsoft.OperationalInsights/workspaces/{LOG_ANALYTICS_NAME}"
)


def _action_group(short_name: str = "nsc-agent") -> mon.ActionGroupResource:
    return mon.ActionGroupResource(
        location="Global",
        group_short_name=short_name,
        enabled=True,
        webhook_receivers=[
            mon.WebhookReceiver(name="teams", service_uri="https://example.invalid/hook")
        ],
    )


def _rule(
    action_group_id: str, severity: int = 2, scope: str = WORKSPACE_ID
) -> mon.ScheduledQueryRuleResource:
    return mon.ScheduledQueryRuleResource(
        location="koreacentral",
        kind="LogAlert",
        severity=severity,
        enabled=True,
        scopes=[scope],
        evaluation_frequency=datetime.timedelta(minutes=5),
        window_size=datetime.timedelta(minutes=5),
        criteria=mon.ScheduledQueryRuleCriteria(
            all_of=[
                mon.Condition(
                    query="AgentEvents_CL | where Level == 'error'",
                    time_aggregation="Count",
                    operator="GreaterThan",
                    threshold=0,
                    failing_periods=mon.ConditionFailingPeriods(
                        number_of_evaluation_periods=1, min_failing_periods_to_alert=1
                    ),
                )
            ]
        ),
        actions=mon.Actions(action_groups=[action_group_id]),
        skip_query_validation=True,
    )


def _dcr(
    stream: str = "Custom-AgentEvents", workspace: str = WORKSPACE_ID
) -> mon.DataCollectionRuleResource:
    return mon.DataCollectionRuleResource(
        location="koreacentral",
        kind="Direct",
        stream_declarations={
            stream: mon.StreamDeclaration(
                columns=[
                    mon.ColumnDefinition(name="TimeGenerated", type="datetime"),
                    mon.ColumnDefinition(name="Message", type="string"),
                ]
            )
        },
        destinations=mon.DataCollectionRuleDestinations(
            log_analytics=[mon.LogAnalyticsDestination(workspace_resource_id=workspace, name="law")]
        ),
        data_flows=[
            mon.DataFlow(
                streams=[stream], destinations=["law"], output_stream="Custom-AgentEvents_CL"
            )
        ],
    )


def test_action_group_round_trip_and_short_name_limit(clients: Clients) -> None:
    created: Any = clients.monitor.action_groups.create_or_update(
        RG, "nsc-ag-agent-dev", _action_group()
    )
    assert created.location == "Global"
    assert created.group_short_name == "nsc-agent"
    assert created.webhook_receivers[0].name == "teams"
    assert created.email_receivers == []
    with pytest.raises(HttpResponseError) as too_long:
        clients.monitor.action_groups.create_or_update(
            RG, "other", _action_group("nsc-ag-agent-dev")
        )
    assert too_long.value.status_code == 400
    assert too_long.value.error is not None
    assert too_long.value.error.code == "GroupShortNameIsTooLong"
    with pytest.raises(ResourceNotFoundError):
        clients.monitor.action_groups.get(RG, "other")


def test_log_alert_rule_validates_references_and_severity(clients: Clients) -> None:
    group: Any = clients.monitor.action_groups.create_or_update(RG, "ag", _action_group())
    rule: Any = clients.monitor.scheduled_query_rules.create_or_update(
        RG, "agent-errors", _rule(group.id)
    )
    assert rule.kind == "LogAlert"
    assert rule.scopes == [WORKSPACE_ID]
    assert rule.evaluation_frequency == datetime.timedelta(minutes=5)
    assert rule.actions.action_groups == [group.id]
    missing_group = group.id.replace("/ag", "/nope")
    with pytest.raises(HttpResponseError) as no_group:
        clients.monitor.scheduled_query_rules.create_or_update(RG, "r2", _rule(missing_group))
    assert no_group.value.status_code == 400
    with pytest.raises(HttpResponseError) as no_scope:
        clients.monitor.scheduled_query_rules.create_or_update(
            RG, "r3", _rule(group.id, scope=WORKSPACE_ID + "-missing")
        )
    assert no_scope.value.status_code == 400
    with pytest.raises(HttpResponseError) as bad_severity:
        clients.monitor.scheduled_query_rules.create_or_update(
            RG, "r4", _rule(group.id, severity=5)
        )
    assert bad_severity.value.status_code == 400
    names = [r.name for r in clients.monitor.scheduled_query_rules.list_by_resource_group(RG)]
    assert names == ["agent-errors"]


def test_direct_dcr_has_stable_immutable_id_and_ingestion_endpoint(
    clients: Clients, emu: Emulator
) -> None:
    created: Any = clients.monitor.data_collection_rules.create(RG, "nsc-dcr-agent", body=_dcr())
    assert re.fullmatch(r"dcr-[0-9a-f]{32}", created.immutable_id)
    endpoint = created.endpoints.logs_ingestion
    assert endpoint == emu.info["ingestion"]  # the emulator's Logs Ingestion API (HTTPS)
    assert endpoint.startswith("https://")
    law: Any = clients.loganalytics.workspaces.get(RG, LOG_ANALYTICS_NAME)
    assert created.destinations.log_analytics[0].workspace_id == law.properties.customer_id
    updated_body = _dcr()
    updated_body.description = "agent events"
    updated: Any = clients.monitor.data_collection_rules.create(
        RG, "nsc-dcr-agent", body=updated_body
    )
    assert updated.immutable_id == created.immutable_id
    assert updated.endpoints.logs_ingestion == endpoint
    assert updated.description == "agent events"


def test_dcr_refuses_non_custom_streams_and_missing_workspaces(clients: Clients) -> None:
    with pytest.raises(HttpResponseError) as bad_stream:
        clients.monitor.data_collection_rules.create(RG, "d1", body=_dcr(stream="AgentEvents"))
    assert bad_stream.value.status_code == 400
    with pytest.raises(HttpResponseError) as no_workspace:
        clients.monitor.data_collection_rules.create(
            RG, "d2", body=_dcr(workspace=WORKSPACE_ID + "-missing")
        )
    assert no_workspace.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):
        clients.monitor.data_collection_rules.get(RG, "d1")
