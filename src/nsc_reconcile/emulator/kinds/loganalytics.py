"""Log Analytics workspaces and their tables (2025-07-01 semantics).

Workspaces get a customer id (GUID) and defaults; custom tables must end in ``_CL`` and carry a
``TimeGenerated`` column, and PUT is long-running (200/202). Imports only kinds.base, protocol
and the standard library.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from nsc_reconcile.emulator.kinds.base import BOTH, Kind, Reply, Resource
from nsc_reconcile.emulator.protocol import ArmError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"
TABLE_TYPE = "Microsoft.OperationalInsights/workspaces/tables"
_COLUMN_TYPES = {"string", "int", "long", "real", "boolean", "datetime", "guid", "dynamic"}
_SKUS = {
    "free",
    "standard",
    "premium",
    "pernode",
    "pergb2018",
    "standalone",
    "capacityreservation",
    "lacluster",
}
_STANDARD_COLUMNS = [
    {"name": "TenantId", "type": "guid", "isHidden": True, "isDefaultDisplay": False},
    {"name": "Type", "type": "string", "isHidden": False, "isDefaultDisplay": False},
    {"name": "_ResourceId", "type": "string", "isHidden": True, "isDefaultDisplay": False},
]


def _invalid(message: str) -> ArmError:
    return ArmError(400, "InvalidParameter", message)


class Workspace(Kind):
    """``Microsoft.OperationalInsights/workspaces``: a Log Analytics workspace."""

    type = WORKSPACE_TYPE
    # Recorded (Test_OperationalInsights_Workspace_CRUD): create, update and delete are
    # synchronous 200s; the create answer already says Succeeded.
    on_create = Reply(200)
    on_update = Reply(200)
    on_delete = Reply(200)

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties") or {}
        sku = str((props.get("sku") or {}).get("name", "PerGB2018"))
        if sku.lower() not in _SKUS:
            raise _invalid(f"The sku '{sku}' is not valid.")
        retention = props.get("retentionInDays")
        if retention is not None and not (
            isinstance(retention, int) and (retention == 7 or 30 <= retention <= 730)
        ):
            raise _invalid(
                f"RetentionInDays '{retention}' is invalid: it must be 7 or between 30 and 730."
            )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource.setdefault("properties", {})
        old = (existing or {}).get("properties", {})
        now = world.now()
        props["customerId"] = old.get("customerId") or str(uuid.uuid4())
        props["createdDate"] = old.get("createdDate") or now
        props["modifiedDate"] = now
        sku = props.setdefault("sku", {"name": "PerGB2018"})
        sku["lastSkuUpdate"] = (old.get("sku") or {}).get("lastSkuUpdate") or now
        props.setdefault("retentionInDays", 30)
        features = props.setdefault("features", {})
        features.setdefault("legacy", 0)
        features.setdefault("searchVersion", 1)
        features.setdefault("enableLogAccessUsingOnlyResourcePermissions", True)
        capping = props.setdefault("workspaceCapping", {})
        capping.setdefault("dailyQuotaGb", -1.0)
        capping["dataIngestionStatus"] = "RespectQuota"
        props.setdefault("publicNetworkAccessForIngestion", "Enabled")
        props.setdefault("publicNetworkAccessForQuery", "Enabled")
        props.setdefault("provisioningState", "Succeeded")


class Table(Kind):
    """``workspaces/tables``: custom (``_CL``) tables; PUT is long-running (200/202)."""

    type = TABLE_TYPE
    etag_field = False  # not in the type's REST schema (oav: OBJECT_ADDITIONAL_PROPERTIES)
    on_create = Reply(202, BOTH)
    on_update = Reply(200, BOTH)
    on_delete = Reply(202, BOTH)
    location_required = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        workspace_id = rid.rsplit("/", 2)[0]
        if world.get(workspace_id) is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource '{workspace_id.split('/providers/', 1)[1]}' under resource group "
                "was not found.",
            )
        name = rid.rsplit("/", 1)[1]
        if existing is None and not name.endswith("_CL"):
            raise _invalid(
                f"Table name '{name}' is invalid: custom log tables must end with '_CL'."
            )
        props = body.get("properties") or {}
        columns = (props.get("schema") or {}).get("columns") or []
        seen: dict[str, str] = {}
        for column in columns:
            column_type = str(column.get("type", ""))
            if column_type.lower() not in _COLUMN_TYPES:
                raise _invalid(
                    f"Column '{column.get('name')}' has an invalid type '{column_type}'."
                )
            seen[str(column.get("name"))] = column_type
        if name.endswith("_CL") and "TimeGenerated" not in seen:
            raise _invalid(f"Table '{name}' must have a 'TimeGenerated' column of type dateTime.")
        if name.endswith("_CL") and seen["TimeGenerated"].lower() != "datetime":
            raise _invalid("Column 'TimeGenerated' must be of type dateTime.")
        old_columns = ((existing or {}).get("properties", {}).get("schema") or {}).get("columns")
        for column in old_columns or []:
            new_type = seen.get(str(column.get("name")))
            if new_type is not None and new_type.lower() != str(column.get("type")).lower():
                raise _invalid(
                    f"The type of column '{column.get('name')}' cannot be changed "
                    f"from '{column.get('type')}' to '{new_type}'."
                )
        retention = props.get("retentionInDays")
        if retention is not None and retention != -1 and not 4 <= retention <= 730:
            raise _invalid(f"RetentionInDays '{retention}' is invalid for table '{name}'.")

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        name = rid.rsplit("/", 1)[1]
        props = resource.setdefault("properties", {})
        workspace = world.get(rid.rsplit("/", 2)[0]) or {}
        default_retention = workspace.get("properties", {}).get("retentionInDays", 30)
        retention = props.get("retentionInDays")
        if retention in (None, -1):
            props["retentionInDays"] = default_retention
            props["retentionInDaysAsDefault"] = True
        else:
            props["retentionInDaysAsDefault"] = False
        total = props.get("totalRetentionInDays")
        if total in (None, -1):
            props["totalRetentionInDays"] = props["retentionInDays"]
            props["totalRetentionInDaysAsDefault"] = True
        else:
            props["totalRetentionInDaysAsDefault"] = False
        props["archiveRetentionInDays"] = props["totalRetentionInDays"] - props["retentionInDays"]
        props.setdefault("plan", "Analytics")
        schema = props.setdefault("schema", {})
        schema["name"] = name
        schema["tableType"] = "CustomLog" if name.endswith("_CL") else "Microsoft"
        schema["tableSubType"] = "DataCollectionRuleBased"
        for column in schema.setdefault("columns", []):
            column.setdefault("isHidden", False)
            column.setdefault("isDefaultDisplay", False)
        schema["standardColumns"] = [dict(c) for c in _STANDARD_COLUMNS]
        schema["solutions"] = ["LogManagement"]
        props.setdefault("provisioningState", "Succeeded")
