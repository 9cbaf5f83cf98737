"""A sliver of Microsoft Graph (HTTPS): a service principal by its application id, as
``GET /v1.0/servicePrincipals(appId='<id>')[?$select=...]`` answers it.

The directory knows a few first-party applications (AzureDatabricks, the Azure CLI...), each
with a service principal whose object id is deterministic for the tenant (a UUID v5 of tenant
and application id; real tenants give each its own GUID). Role assignments
(kinds/authorization.py) know these principals. Unknown: 404 with Graph's error shape
``{"error": {"code": "Request_ResourceNotFound", "message", "innerError"}}``; no bearer token:
401 ``InvalidAuthenticationToken``. Other paths: 400 ``BadRequest`` (Graph's answer for a
segment it does not know).
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from datetime import UTC, datetime
from typing import Any

from nsc_reconcile.emulator.kinds.identity import TENANT_ID
from nsc_reconcile.emulator.protocol import Request, Response

# First-party applications (application id -> display name), as every tenant has them.
FIRST_PARTY_APPS = {
    "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d": "AzureDatabricks",
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46": "Microsoft Azure CLI",
    "6dae42f8-4368-4678-94ff-3960e28e3630": "Azure Kubernetes Service AAD Server",
    "cfa8b339-82a2-471a-a3c9-0fc0be7a4093": "Azure Key Vault",
    "00000003-0000-0000-c000-000000000000": "Microsoft Graph",
}
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/nsc-reconcile/emulator/graph")
_BY_APP_ID = re.compile(r"^/v1\.0/servicePrincipals\(appId='([^']*)'\)$", re.IGNORECASE)


def service_principal_id(app_id: str, tenant_id: str = TENANT_ID) -> str:
    """The object id of ``app_id``'s service principal in ``tenant_id``."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant_id.lower()}|{app_id.lower()}"))


def first_party_principal_ids(tenant_id: str = TENANT_ID) -> set[str]:
    """Object ids of the first-party service principals of ``tenant_id``."""
    return {service_principal_id(app, tenant_id) for app in FIRST_PARTY_APPS}


def _error(status: int, code: str, message: str) -> Response:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    request_id = str(uuid.uuid4())
    inner = {"date": now, "request-id": request_id, "client-request-id": request_id}
    return Response(status, {"error": {"code": code, "message": message, "innerError": inner}})


class GraphPlane:
    """``servicePrincipals(appId='...')`` of the emulated tenant."""

    def __init__(self, tenant_id: str = TENANT_ID) -> None:
        self.tenant_id = tenant_id

    def handle(self, request: Request) -> Response:
        if not request.headers.get("authorization", "").lower().startswith("bearer "):
            return _error(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            )
        path = urllib.parse.unquote(request.path)
        found = _BY_APP_ID.match(path)
        if found is None or request.method != "GET":
            return _error(400, "BadRequest", f"Resource not found for the segment '{path}'.")
        app_id = found[1].lower()
        name = FIRST_PARTY_APPS.get(app_id)
        if name is None:
            return _error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{found[1]}' does not exist or one of its queried reference-property "
                "objects are not present.",
            )
        entity: dict[str, Any] = {
            "id": service_principal_id(app_id, self.tenant_id),
            "appId": app_id,
            "displayName": name,
            "servicePrincipalType": "Application",
            "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",  # Microsoft's
        }
        select = [s.strip() for s in request.query.get("$select", "").split(",") if s.strip()]
        if select:
            entity = {k: v for k, v in entity.items() if k in select}
        context = "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals"
        context += f"({','.join(select)})/$entity" if select else "/$entity"
        return Response(200, {"@odata.context": context, **entity})
