"""Azure Monitor: action groups, log alert rules and Direct data collection rules.

Validates what Azure refuses (short name > 12, severity outside 0-4, scopes / action groups /
workspaces that do not exist, non-``Custom-`` streams) and fills server fields (DCR
``immutableId`` and ingestion endpoint). Imports only kinds.base, protocol and the stdlib.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from nsc_reconcile.emulator.kinds.base import Kind, Reply, Resource
from nsc_reconcile.emulator.protocol import ArmError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

ACTION_GROUP_TYPE = "Microsoft.Insights/actionGroups"
QUERY_RULE_TYPE = "Microsoft.Insights/scheduledQueryRules"
DCR_TYPE = "Microsoft.Insights/dataCollectionRules"
WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"

_RECEIVER_LISTS = (
    "emailReceivers",
    "smsReceivers",
    "webhookReceivers",
    "itsmReceivers",
    "azureAppPushReceivers",
    "automationRunbookReceivers",
    "voiceReceivers",
    "logicAppReceivers",
    "azureFunctionReceivers",
    "armRoleReceivers",
    "eventHubReceivers",
)
# ISO 8601 durations as Azure Monitor takes them (PT5M, PT1H, P1D).
_DURATION = re.compile(r"^P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?$")
_DCR_COLUMN_TYPES = {"string", "int", "long", "real", "boolean", "datetime", "dynamic"}


def _bad_request(message: str, code: str = "BadRequest") -> ArmError:
    return ArmError(400, code, message)


def _region(location: str) -> str:
    return location.replace(" ", "").lower()


class ActionGroup(Kind):
    """``Microsoft.Insights/actionGroups``: notification receivers (location ``Global``)."""

    type = ACTION_GROUP_TYPE
    # The 2023-01-01 spec declares a flat {code, message} ErrorResponse, but a recorded 404
    # (Test_Insights_ActionGroup_v20230101_CRUD) uses ARM's {"error": {...}}: the recording wins.
    etag_field = False  # not in the 2023-01-01 schema
    system_data = False
    provisioning_state = False  # not in the 2023-01-01 schema

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties") or {}
        short = props.get("groupShortName")
        if not short:
            raise _bad_request("The action group short name is required.", "GroupShortNameIsEmpty")
        if len(str(short)) > 12:
            raise _bad_request(
                f"The action group short name '{short}' is too long. Please specify a short "
                "name with '12' or less characters.",
                "GroupShortNameIsTooLong",
            )
        if "enabled" not in props:
            raise _bad_request("The property 'enabled' is required.", "InvalidRequestContent")
        for list_name in _RECEIVER_LISTS:
            for receiver in props.get(list_name) or []:
                if not receiver.get("name"):
                    raise _bad_request(
                        f"A receiver of {list_name} has no name.", "ReceiverNameIsNullOrEmpty"
                    )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        if str(resource.get("location", "")).lower() == "global":
            resource["location"] = "Global"
        resource.setdefault("tags", {})
        props = resource.setdefault("properties", {})
        for list_name in _RECEIVER_LISTS:
            props[list_name] = props.get(list_name) or []
        for receiver in props["emailReceivers"] + props["smsReceivers"]:
            receiver["status"] = "Enabled"
        for receiver in props["emailReceivers"] + props["webhookReceivers"]:
            receiver.setdefault("useCommonAlertSchema", False)


class ScheduledQueryRule(Kind):
    """``Microsoft.Insights/scheduledQueryRules`` (kind ``LogAlert``): a log search alert."""

    type = QUERY_RULE_TYPE
    provisioning_state = False  # not in the 2023-12-01 schema

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        kind = body.get("kind", "LogAlert")
        if kind not in ("LogAlert", "LogToMetric"):
            raise _bad_request(f"The rule kind '{kind}' is not supported.")
        props = body.get("properties") or {}
        severity = props.get("severity")
        if kind == "LogAlert" and (
            not isinstance(severity, int) or isinstance(severity, bool) or not 0 <= severity <= 4
        ):
            raise _bad_request(f"Severity '{severity}' is invalid: it must be between 0 and 4.")
        for field in ("evaluationFrequency", "windowSize", "muteActionsDuration"):
            value = props.get(field)
            if value is None:
                if field != "muteActionsDuration" and kind == "LogAlert":
                    raise _bad_request(f"The property '{field}' is required.")
                continue
            if not _DURATION.match(str(value)) or str(value) in ("P", "PT"):
                raise _bad_request(f"The {field} '{value}' is not a valid ISO 8601 duration.")
        scopes = props.get("scopes") or []
        if not scopes:
            raise _bad_request("The rule must have at least one scope.")
        for scope in scopes:
            if world.get(scope) is None:
                raise _bad_request(
                    f"Scope '{scope}' is invalid: the resource was not found.", "ScopeNotFound"
                )
        all_of = (props.get("criteria") or {}).get("allOf") or []
        if not all_of or not all(c.get("query") for c in all_of):
            raise _bad_request("The criteria must contain at least one condition with a query.")
        for group in (props.get("actions") or {}).get("actionGroups") or []:
            if world.get(group) is None:
                raise _bad_request(
                    f"Arm resource {group} is invalid or in a different subscription as alert "
                    "rule. Action group was not found."
                )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        resource.setdefault("kind", "LogAlert")
        resource.setdefault("tags", {})
        props = resource.setdefault("properties", {})
        old = (existing or {}).get("properties", {})
        props.setdefault("enabled", True)
        props["createdWithApiVersion"] = old.get("createdWithApiVersion", "2023-12-01")
        props["isLegacyLogAnalyticsRule"] = False
        props["isWorkspaceAlertsStorageConfigured"] = False


class DataCollectionRule(Kind):
    """``Microsoft.Insights/dataCollectionRules``: ``Direct`` rules get an ingestion endpoint."""

    type = DCR_TYPE
    # Recorded (Test_Insights_v1api20230311_CreationAndDeletion): a create is a synchronous 200.
    on_create = Reply(200)

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties") or {}
        declarations: dict[str, Any] = props.get("streamDeclarations") or {}
        for stream, declaration in declarations.items():
            if not stream.startswith("Custom-"):
                raise _bad_request(
                    f"Stream declaration '{stream}' is invalid: custom stream names must start "
                    "with 'Custom-'.",
                    "InvalidPayload",
                )
            for column in (declaration or {}).get("columns") or []:
                if str(column.get("type", "")).lower() not in _DCR_COLUMN_TYPES:
                    raise _bad_request(
                        f"Column '{column.get('name')}' of stream '{stream}' has an invalid "
                        f"type '{column.get('type')}'.",
                        "InvalidPayload",
                    )
        destinations = props.get("destinations") or {}
        names: set[str] = set()
        for destination in destinations.get("logAnalytics") or []:
            workspace = destination.get("workspaceResourceId")
            if not workspace or world.get(workspace) is None:
                raise _bad_request(  # code recorded: Test_Insights_v1api20230311_Creation...
                    f"Log Analytics workspace '{workspace}' of destination "
                    f"'{destination.get('name')}' was not found.",
                    "WorkspaceNotFound",
                )
            names.add(str(destination.get("name")))
        for list_name, entries in destinations.items():
            if list_name != "logAnalytics" and isinstance(entries, list):
                names.update(str(e.get("name")) for e in entries)
        for flow in props.get("dataFlows") or []:
            for stream in flow.get("streams") or []:
                if stream.startswith("Custom-") and stream not in declarations:
                    raise _bad_request(
                        f"Data flow stream '{stream}' is not declared in streamDeclarations.",
                        "InvalidPayload",
                    )
            for target in flow.get("destinations") or []:
                if target not in names:
                    raise _bad_request(
                        f"Data flow destination '{target}' is not defined in destinations.",
                        "InvalidPayload",
                    )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource.setdefault("properties", {})
        old = (existing or {}).get("properties", {})
        # The immutable id survives every update; it is what the Logs Ingestion API takes.
        props["immutableId"] = old.get("immutableId") or f"dcr-{secrets.token_hex(16)}"
        for destination in (props.get("destinations") or {}).get("logAnalytics") or []:
            workspace = world.get(str(destination.get("workspaceResourceId")))
            if workspace is not None:
                destination["workspaceId"] = workspace.get("properties", {}).get("customerId")
        if str(resource.get("kind", "")).lower() == "direct":
            endpoints = old.get("endpoints") or {}
            if not endpoints.get("logsIngestion"):
                host = f"{rid.rsplit('/', 1)[1].lower()}-{secrets.token_hex(2)}"
                region = _region(str(resource.get("location", "")))
                local = world.urls.get("ingestion")  # the emulator's Logs Ingestion API
                endpoints = {
                    "logsIngestion": local or f"https://{host}.{region}-1.ingest.monitor.azure.com",
                    "metricsIngestion": f"https://{host}.{region}-1.metrics.ingest.monitor.azure.com",
                }
            props["endpoints"] = endpoints
        props["provisioningState"] = "Succeeded"
