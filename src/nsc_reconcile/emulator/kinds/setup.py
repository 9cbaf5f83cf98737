"""Minimal types that recorded sessions use as scopes and targets: Application Insights
components, storage accounts, data collection endpoints and rule associations.

Only what the recordings show (tests/conformance: Test_Insights_ScheduledQueryRule_CRUD,
Test_Insights_v1api20230311_CreationAndDeletion): answers, server fields, name checks.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nsc_reconcile.emulator.kinds.base import LOCATION, Kind, Reply, Resource
from nsc_reconcile.emulator.protocol import ArmError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

# Application Insights answers its type (and the id's provider segment) in lower case.
COMPONENT_TYPE = "microsoft.insights/components"
STORAGE_TYPE = "Microsoft.Storage/storageAccounts"
DCE_TYPE = "Microsoft.Insights/dataCollectionEndpoints"
DCRA_TYPE = "Microsoft.Insights/dataCollectionRuleAssociations"
_STORAGE_NAME = re.compile(r"^[a-z0-9]{3,24}$")


def _region(resource: Resource) -> str:
    return str(resource.get("location", "")).replace(" ", "").lower()


class ApplicationInsightsComponent(Kind):
    """``microsoft.insights/components`` (2020-02-02): created synchronously with 200."""

    type = COMPONENT_TYPE
    on_create = Reply(200)  # recorded: 200, not 201
    on_update = Reply(200)
    on_delete = Reply(200)
    etag_field = False  # recorded answers have none
    system_data = False

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        name = rid.rsplit("/", 1)[1]
        props = resource["properties"]
        old = (existing or {}).get("properties") or {}
        key = old.get("InstrumentationKey") or world.new_guid()
        region = _region(resource)
        props["ApplicationId"] = name
        props["AppId"] = old.get("AppId") or world.new_guid()
        props["InstrumentationKey"] = key
        props["ConnectionString"] = (
            f"InstrumentationKey={key};IngestionEndpoint=https://{region}-1.in."
            f"applicationinsights.azure.com/;LiveEndpoint=https://{region}.livediagnostics."
            "monitor.azure.com/"
        )
        props["Name"] = name
        props["CreationDate"] = old.get("CreationDate") or world.now().replace("Z", "+00:00")
        props["TenantId"] = world.subscription_id  # Application Insights' "tenant" (recorded)
        props.setdefault("RetentionInDays", 90)
        workspace = props.get("WorkspaceResourceId")
        props["IngestionMode"] = "LogAnalytics" if workspace else "ApplicationInsights"
        props.setdefault("publicNetworkAccessForIngestion", "Enabled")
        props.setdefault("publicNetworkAccessForQuery", "Enabled")
        props["Ver"] = "v2"


class StorageAccount(Kind):
    """``Microsoft.Storage/storageAccounts``: create accepted with 202 + Location (recorded),
    the Location poll answers the account once the operation ends."""

    type = STORAGE_TYPE
    on_create = Reply(202, LOCATION)
    on_update = Reply(200)
    on_delete = Reply(200)
    etag_field = False  # recorded answers have none
    system_data = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        name = rid.rsplit("/", 1)[1]
        if not _STORAGE_NAME.match(name):
            raise ArmError(
                400,
                "AccountNameInvalid",
                f"{name} is not a valid storage account name. Storage account name must be "
                "between 3 and 24 characters in length and use numbers and lower-case letters "
                "only.",
            )
        for other in world.list_by_type(STORAGE_TYPE):  # account names are global (DNS)
            if str(other["name"]).lower() == name.lower() and str(other["id"]).lower() != (
                rid.lower()
            ):
                raise ArmError(
                    409,
                    "StorageAccountAlreadyTaken",
                    f"The storage account named {name} is already taken.",
                )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        name = rid.rsplit("/", 1)[1]
        props = resource["properties"]
        old = (existing or {}).get("properties") or {}
        now = world.now()
        sku = resource.get("sku") if isinstance(resource.get("sku"), dict) else {}
        sku_name = str((sku or {}).get("name") or "Standard_LRS")
        resource["sku"] = {"name": sku_name, "tier": sku_name.split("_", 1)[0]}
        resource.setdefault("kind", "StorageV2")
        if resource.get("tags") is None:
            resource.pop("tags", None)
        created = old.get("creationTime") or now
        props["keyCreationTime"] = old.get("keyCreationTime") or {"key1": now, "key2": now}
        props.setdefault("allowCrossTenantReplication", False)
        props["privateEndpointConnections"] = old.get("privateEndpointConnections") or []
        props.setdefault("minimumTlsVersion", "TLS1_2")
        props.setdefault("allowBlobPublicAccess", True)  # as recorded (api 2021-04-01)
        acls = props.get("networkAcls") or {}
        props["networkAcls"] = {
            "bypass": acls.get("bypass", "AzureServices"),
            "virtualNetworkRules": acls.get("virtualNetworkRules", []),
            "ipRules": acls.get("ipRules", []),
            "defaultAction": acls.get("defaultAction", "Allow"),
        }
        props.setdefault("supportsHttpsTrafficOnly", True)
        enabled = {"keyType": "Account", "enabled": True, "lastEnabledTime": created}
        props["encryption"] = old.get("encryption") or {
            "services": {"file": dict(enabled), "blob": dict(enabled)},
            "keySource": "Microsoft.Storage",
        }
        if resource["kind"] in ("StorageV2", "BlobStorage"):
            props.setdefault("accessTier", "Hot")
        props["creationTime"] = created
        props["primaryEndpoints"] = {
            "dfs": f"https://{name}.dfs.core.windows.net/",
            "web": f"https://{name}.z5.web.core.windows.net/",
            "blob": f"https://{name}.blob.core.windows.net/",
            "queue": f"https://{name}.queue.core.windows.net/",
            "table": f"https://{name}.table.core.windows.net/",
            "file": f"https://{name}.file.core.windows.net/",
        }
        props["primaryLocation"] = _region(resource)
        props["statusOfPrimary"] = "available"


class DataCollectionEndpoint(Kind):
    """``Microsoft.Insights/dataCollectionEndpoints`` (2023-03-11): synchronous 200 create,
    generated ``dce-`` immutable id and endpoints (logs ingestion: the emulator's plane)."""

    type = DCE_TYPE
    on_create = Reply(200)  # recorded
    on_update = Reply(200)
    on_delete = Reply(200)
    etag_field = False  # recorded answers have none
    system_data = False

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource["properties"]
        old = (existing or {}).get("properties") or {}
        props["immutableId"] = old.get("immutableId") or "dce-" + world.new_guid().replace("-", "")
        host = f"{rid.rsplit('/', 1)[1].lower()}-{world.new_guid()[:4]}.{_region(resource)}-1"
        for key, suffix in (
            ("configurationAccess", "handler.control.monitor.azure.com"),
            ("logsIngestion", "ingest.monitor.azure.com"),
            ("metricsIngestion", "metrics.ingest.monitor.azure.com"),
        ):
            endpoint = (old.get(key) or {}).get("endpoint") or f"https://{host}.{suffix}"
            if key == "logsIngestion" and not old.get(key):
                endpoint = world.urls.get("ingestion") or endpoint
            props[key] = {"endpoint": endpoint}
        acls = props.get("networkAcls") or {}
        props["networkAcls"] = {
            **acls,
            "publicNetworkAccess": acls.get("publicNetworkAccess") or "Enabled",
        }


class DataCollectionRuleAssociation(Kind):
    """``Microsoft.Insights/dataCollectionRuleAssociations``: an extension resource tying a
    resource to a rule or (name ``configurationAccessEndpoint``) to an endpoint."""

    type = DCRA_TYPE
    on_create = Reply(200)  # recorded
    on_update = Reply(200)
    on_delete = Reply(200)
    location_required = False
    # Recorded: no provisioningState, no location, no etag, no systemData.
    provisioning_state = False
    etag_field = False
    system_data = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties")
        props = props if isinstance(props, dict) else {}
        targets = [k for k in ("dataCollectionRuleId", "dataCollectionEndpointId") if props.get(k)]
        if len(targets) != 1:
            raise ArmError(
                400,
                "InvalidPayload",
                "Exactly one of dataCollectionRuleId and dataCollectionEndpointId must be set.",
            )
        target = str(props[targets[0]])
        if world.get(target) is None:
            raise ArmError(
                400, "InvalidPayload", f"The referenced resource '{target}' does not exist."
            )
