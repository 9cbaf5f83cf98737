"""Managed identities: user-assigned identities and their federated identity credentials.

Both answer synchronously, a create with 201 and ``Location: <its own id>`` (recorded); an
identity gets server-made principalId/clientId/tenantId GUIDs and is, to role assignments
(kinds/authorization.py), a service principal once the world's replication delay has passed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from nsc_reconcile.emulator.arm.ids import parse_path
from nsc_reconcile.emulator.kinds.base import Kind, Reply, Resource
from nsc_reconcile.emulator.protocol import ArmError, Request, Response

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
CREDENTIAL_TYPE = f"{IDENTITY_TYPE}/federatedIdentityCredentials"
# The directory (Entra ID tenant) of the emulated subscription, as the ARM plane reports it.
TENANT_ID = "00000000-0000-0000-0000-000000000000"
_CREDENTIAL_FIELDS = ("issuer", "subject", "audiences")


def _as_recorded(rid: str) -> str:
    """Microsoft.ManagedIdentity answers ids with ``resourcegroups`` in lower case (recorded:
    Test_ManagedIdentity_UserAssignedIdentity_20230131_CRUD); lookups ignore case anyway."""
    head, sep, tail = rid.partition("/resourceGroups/")
    return f"{head}/resourcegroups/{tail}" if sep else rid


def _with_own_location(request: Request, response: Response) -> Response:
    """A create answers 201 with ``Location`` holding the resource's own relative id: not a
    polling URL (recorded), so the engine's Reply stays synchronous and this only adds it."""
    if request.method == "PUT" and response.status == 201 and isinstance(response.body, dict):
        response.headers["Location"] = str(response.body["id"])
    return response


class UserAssignedIdentity(Kind):
    """``Microsoft.ManagedIdentity/userAssignedIdentities``: an Entra ID service principal."""

    type = IDENTITY_TYPE
    on_create = Reply(201)  # + Location: own id (answer)
    on_update = Reply(200)
    on_delete = Reply(200)  # recorded: 200, empty body
    # Recorded bodies have none of these (the 2024-11-30 schema allows systemData only).
    etag_field = False
    system_data = False
    provisioning_state = False

    def __init__(self) -> None:
        # principalId (lower-cased) -> monotonic time of the identity's create (replication).
        self.created: dict[str, float] = {}

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        resource["id"] = _as_recorded(str(resource["id"]))
        if resource.get("tags") is None:
            resource["tags"] = {}
        props = resource["properties"]
        old = (existing or {}).get("properties") or {}
        props["tenantId"] = old.get("tenantId") or TENANT_ID
        props["principalId"] = old.get("principalId") or world.new_guid()
        props["clientId"] = old.get("clientId") or world.new_guid()
        if existing is None:
            self.created[str(props["principalId"]).lower()] = time.monotonic()

    def visible_at(self, principal_id: str) -> float:
        """Monotonic time from which the identity's principal is known to role assignments
        (0 for one the world did not see created, e.g. stored through the control plane)."""
        return self.created.get(principal_id.lower(), 0.0)

    def answer(self, world: World, request: Request, response: Response) -> Response:
        return _with_own_location(request, response)


class FederatedIdentityCredential(Kind):
    """``.../userAssignedIdentities/{id}/federatedIdentityCredentials``: trust in an external
    issuer's tokens (e.g. an AKS OIDC issuer and a Kubernetes service account)."""

    type = CREDENTIAL_TYPE
    on_create = Reply(201)  # + Location: own id (answer)
    on_update = Reply(200)
    on_delete = Reply(200)  # recorded: 200, empty body
    # Recorded: a GET after delete is the provider's 404 NotFound, not ARM's ResourceNotFound.
    gone_code = "NotFound"
    gone_message = "Resource '{id}' was not found."
    location_required = False
    etag_field = False
    system_data = False
    provisioning_state = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties")
        props = props if isinstance(props, dict) else {}
        for field in _CREDENTIAL_FIELDS:  # required by the 2024-11-30 schema
            if not props.get(field):
                raise ArmError(
                    400,
                    "BadRequest",
                    f"The federated identity credential property '{field}' is required.",
                )
        audiences = props["audiences"]
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise ArmError(400, "BadRequest", "The property 'audiences' must be a string list.")

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        # The parent identity's id already carries the recorded 'resourcegroups' spelling.
        resource["id"] = _as_recorded(str(resource["id"]))

    def answer(self, world: World, request: Request, response: Response) -> Response:
        error = response.body.get("error") if isinstance(response.body, dict) else None
        if (
            request.method == "GET"
            and response.status == 404
            and isinstance(error, dict)
            and error.get("code") == "ResourceNotFound"
        ):
            parsed = parse_path(request.path, "GET")
            if parsed.what == "resource":
                # A name never used under an existing identity: the provider answers, as it
                # does for a deleted one (gone_code/gone_message), not ARM.
                full_id = world.canonical_id(parsed.resource_id)
                message = self.gone_message.format(id=full_id)
                return ArmError(404, self.gone_code, message).response()
        return _with_own_location(request, response)
