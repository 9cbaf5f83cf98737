"""Azure RBAC: role assignments at any scope (resource group, resource, child resource) and the
built-in role definitions the project uses (read-only).

Checks what Azure refuses (unknown or not yet replicated principal, unknown role, a duplicate
assignment, changing an assignment) and answers lists with ``$filter`` as the 2022-04-01 API does.
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from nsc_reconcile.emulator.arm.ids import parse_path
from nsc_reconcile.emulator.graph import first_party_principal_ids
from nsc_reconcile.emulator.kinds.base import Kind, Reply, Resource
from nsc_reconcile.emulator.kinds.identity import IDENTITY_TYPE, TENANT_ID, UserAssignedIdentity
from nsc_reconcile.emulator.protocol import ArmError, Request, Response

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
DEFINITION_TYPE = "Microsoft.Authorization/roleDefinitions"
# The object id of the emulator's signed-in caller (a user): createdBy/updatedBy, and a
# principal that exists in the directory.
CALLER_OBJECT_ID = "6f2c3c2e-0000-4000-8000-00000000e001"
_ASSIGNMENT_FIELDS = (
    "roleDefinitionId",
    "principalId",
    "principalType",
    "scope",
    "condition",
    "conditionVersion",
    "createdOn",
    "updatedOn",
    "createdBy",
    "updatedBy",
    "delegatedManagedIdentityResourceId",
    "description",
)
_PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup")
_ROLE_DEFINITION_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Authorization/roleDefinitions/"
    r"(?P<guid>[^/]+)$|^/providers/Microsoft\.Authorization/roleDefinitions/(?P<tenant>[^/]+)$",
    re.IGNORECASE,
)


def _role(name: str, description: str, **permission: list[str]) -> dict[str, Any]:
    return {
        "roleName": name,
        "type": "BuiltInRole",
        "description": description,
        "assignableScopes": ["/"],
        "permissions": [
            {
                "actions": list(permission.get("actions", [])),
                "notActions": list(permission.get("not_actions", [])),
                "dataActions": list(permission.get("data_actions", [])),
                "notDataActions": list(permission.get("not_data_actions", [])),
            }
        ],
    }


# Built-in roles by GUID (the same in every cloud). AcrPull, Contributor, the Key Vault roles and
# Cognitive Services OpenAI User are as Azure listed them in a recorded session
# (tests/conformance: Test_Authorization_RoleAssignmentOfBuiltInRole_OnResourceGroup_CRUD, whose
# test_role_definitions.py holds them equal); the others follow public documentation.
# The control-plane actions Key Vault Administrator and Key Vault Secrets Officer both carry
# (as recorded: Test_Authorization_RoleAssignmentOfBuiltInRole_OnResourceGroup_CRUD).
_KEY_VAULT_DATA_ROLE_ACTIONS = [
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read",
]
BUILT_IN_ROLES: dict[str, dict[str, Any]] = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": _role(
        "Owner",
        "Grants full access to manage all resources, including the ability to assign roles "
        "in Azure RBAC.",
        actions=["*"],
    ),
    "b24988ac-6180-42a0-ab88-20f7382dd24c": _role(
        "Contributor",
        "Grants full access to manage all resources, but does not allow you to assign roles "
        "in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
        actions=["*"],
        not_actions=[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
            "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
            "Microsoft.Subscription/cancel/action",
            "Microsoft.Subscription/enable/action",
        ],
    ),
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": _role(
        "Reader",
        "View all resources, but does not allow you to make any changes.",
        actions=["*/read"],
    ),
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": _role(
        "User Access Administrator",
        "Lets you manage user access to Azure resources.",
        actions=["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
    ),
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": _role(
        "AcrPull", "acr pull", actions=["Microsoft.ContainerRegistry/registries/pull/read"]
    ),
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": _role(
        "Key Vault Administrator",
        "Perform all data plane operations on a key vault and all objects in it, including "
        "certificates, keys, and secrets. Cannot manage key vault resources or manage role "
        "assignments. Only works for key vaults that use the 'Azure role-based access control' "
        "permission model.",
        actions=_KEY_VAULT_DATA_ROLE_ACTIONS,
        data_actions=["Microsoft.KeyVault/vaults/*"],
    ),
    "4633458b-17de-408a-b874-0445c86b69e6": _role(
        "Key Vault Secrets User",
        "Read secret contents. Only works for key vaults that use the 'Azure role-based access "
        "control' permission model.",
        data_actions=[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    ),
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": _role(
        "Key Vault Secrets Officer",
        "Perform any action on the secrets of a key vault, except manage permissions. Only "
        "works for key vaults that use the 'Azure role-based access control' permission model.",
        actions=_KEY_VAULT_DATA_ROLE_ACTIONS,
        data_actions=["Microsoft.KeyVault/vaults/secrets/*"],
    ),
    "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd": _role(
        "Cognitive Services OpenAI User",
        "Ability to view files, models, deployments. Readers can't make any changes They can "
        "inference and create images",
        actions=[
            "Microsoft.CognitiveServices/*/read",
            "Microsoft.Authorization/roleAssignments/read",
            "Microsoft.Authorization/roleDefinitions/read",
        ],
        data_actions=[
            f"Microsoft.CognitiveServices/accounts/OpenAI/{action}"
            for action in (
                "*/read",
                "engines/completions/action",
                "engines/search/action",
                "engines/generate/action",
                "deployments/audio/action",
                "deployments/search/action",
                "deployments/completions/action",
                "deployments/chat/completions/action",
                "deployments/realtime/action",
                "deployments/extensions/chat/completions/action",
                "deployments/embeddings/action",
                "images/generations/action",
                "video/generations/*/action",
                "video/generations/*/delete",
                "assistants/*",
                "responses/*",
            )
        ],
        not_data_actions=["Microsoft.CognitiveServices/accounts/OpenAI/stored-completions/read"],
    ),
    "3913510d-42f4-4e42-8a64-420c390055eb": _role(
        "Monitoring Metrics Publisher",
        "Enables publishing metrics against Azure resources",
        actions=[
            "Microsoft.Insights/Register/Action",
            "Microsoft.Support/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        data_actions=["Microsoft.Insights/Metrics/Write", "Microsoft.Insights/Telemetry/Write"],
    ),
}


def _hex(guid: str) -> str:
    """A GUID as Authorization's messages quote it: no hyphens."""
    return guid.replace("-", "")


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _error(response: Response) -> dict[str, Any] | None:
    body = response.body
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _within(scope: str, outer: str) -> bool:
    """Whether ``scope`` is ``outer`` or lies below it (ids compared case-insensitively)."""
    scope, outer = scope.lower().rstrip("/"), outer.lower().rstrip("/")
    return scope == outer or scope.startswith(outer + "/")


def role_definition_guid(world: World, role_definition_id: str) -> str | None:
    """The built-in role a ``roleDefinitionId`` names (subscription form for this world's
    subscription, or the tenant form), else None."""
    match = _ROLE_DEFINITION_ID.match(role_definition_id.strip())
    if match is None:
        return None
    if match["sub"] is not None and match["sub"].lower() != world.subscription_id.lower():
        return None
    guid = str(match["guid"] or match["tenant"]).lower()
    return guid if guid in BUILT_IN_ROLES else None


def role_definition(world: World, guid: str) -> Resource:
    """A built-in role definition as GET shows it in this world's subscription."""
    return {
        "id": f"/subscriptions/{world.subscription_id}/providers/{DEFINITION_TYPE}/{guid}",
        "name": guid,
        "type": DEFINITION_TYPE,
        "properties": copy.deepcopy(BUILT_IN_ROLES[guid]),
    }


def lookup_principal(world: World, principal_id: str) -> tuple[str | None, float]:
    """``(principal type, monotonic time from which it is visible)``; type None when the
    directory has no such principal. Known: the world's configured ``directory_principals``,
    the emulator's caller, first-party service principals (graph.py), user-assigned
    identities (visible once the world's replication delay has passed) and system-assigned /
    kubelet identities of resources in the world."""
    wanted = principal_id.lower()
    configured = world.directory_principals.get(wanted)
    if configured is not None:
        return configured, 0.0
    if wanted == CALLER_OBJECT_ID:
        return "User", 0.0
    if wanted in first_party_principal_ids():  # service principals Graph knows (graph.py)
        return "ServicePrincipal", 0.0
    for user_assigned in world.list_by_type(IDENTITY_TYPE):
        if str((user_assigned.get("properties") or {}).get("principalId", "")).lower() == wanted:
            kind = world.kind_for(IDENTITY_TYPE)
            created = kind.visible_at(wanted) if isinstance(kind, UserAssignedIdentity) else 0.0
            return "ServicePrincipal", created + world.principal_replication_seconds
    for resource in world.all_resources():
        system = resource.get("identity")  # a resource's system-assigned identity
        if isinstance(system, dict) and str(system.get("principalId", "")).lower() == wanted:
            return "ServicePrincipal", 0.0
        profile = (resource.get("properties") or {}).get("identityProfile")
        for entry in (profile or {}).values() if isinstance(profile, dict) else ():
            if isinstance(entry, dict) and str(entry.get("objectId", "")).lower() == wanted:
                return "ServicePrincipal", 0.0
    return None, 0.0


def _principal_not_found(principal_id: str) -> ArmError:
    return ArmError(  # wording recorded: Test_Authorization_RoleAssignment_OnResourceGroup_CRUD
        400,
        "PrincipalNotFound",
        f"Principal {_hex(principal_id)} does not exist in the directory {TENANT_ID}. Check "
        "that you have the correct principal ID. If you are creating this principal and then "
        "immediately assigning a role, this error might be related to a replication delay. In "
        "this case, set the role assignment principalType property to a value, such as "
        "ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
    )


def _filter_terms(text: str) -> tuple[bool, str | None]:
    """``$filter`` of a role assignment list: ``(at scope only, principal id or None)``.
    Supports ``atScope()``, ``principalId eq '{id}'``, ``assignedTo('{id}')`` joined by and."""
    at_scope, principal = False, None
    for term in _terms(text):
        match = re.fullmatch(
            r"principalId\s+eq\s+'([^']*)'|assignedTo\('([^']*)'\)", term, re.IGNORECASE
        )
        if re.fullmatch(r"atScope\(\)", term, re.IGNORECASE):
            at_scope = True
        elif match is not None:
            principal = match[1] if match[1] is not None else match[2]
        else:
            raise ArmError(400, "UnsupportedQuery", f"The filter '{text}' is not supported.")
    return at_scope, principal


def _terms(text: str) -> list[str]:
    """The ``and``-joined terms of a ``$filter``."""
    text = text.strip()
    return [t.strip() for t in re.split(r"\s+and\s+", text, flags=re.IGNORECASE)] if text else []


class RoleAssignment(Kind):
    """``Microsoft.Authorization/roleAssignments`` (an extension resource at any scope)."""

    type = ASSIGNMENT_TYPE
    # Recorded: a synchronous 201 (no LRO headers), DELETE 200 echoing the assignment.
    on_create = Reply(201)
    on_update = Reply(200)
    on_delete = Reply(200)
    delete_missing_status = 204
    patch_supported = False  # the 2022-04-01 API has no PATCH
    location_required = False
    etag_field = False
    system_data = False
    provisioning_state = False

    def __init__(self) -> None:
        # The assignment each DELETE removes, for its 200 body (answer), by lower-cased id.
        self._deleting: dict[str, Resource] = {}

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        name = rid.rsplit("/", 1)[1]
        if not _is_guid(name):
            raise ArmError(
                400,
                "InvalidRoleAssignmentId",
                f"The role assignment ID '{name}' is not valid. The role assignment ID must be "
                "a GUID.",
            )
        props = body.get("properties")
        props = props if isinstance(props, dict) else {}
        for field in ("roleDefinitionId", "principalId"):
            if not isinstance(props.get(field), str) or not props[field]:
                raise ArmError(
                    400,
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized: 'Required "
                    f"property '{field}' not found in JSON. Path 'properties'.'.",
                )
        scope = parse_path(rid, "PUT").scope
        if existing is not None:
            old = existing.get("properties") or {}
            if (
                str(old.get("principalId", "")).lower() != props["principalId"].lower()
                or str(old.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
                != props["roleDefinitionId"].rsplit("/", 1)[-1].lower()
            ):
                raise ArmError(
                    400,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                    "updated.",
                )
        role = role_definition_guid(world, props["roleDefinitionId"])
        if role is None:
            wanted = props["roleDefinitionId"].rstrip("/").rsplit("/", 1)[-1]
            raise ArmError(
                400,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{_hex(wanted)}' does not exist.",
            )
        principal_type = props.get("principalType")
        if principal_type is not None and principal_type not in _PRINCIPAL_TYPES:
            raise ArmError(
                400,
                "InvalidPrincipalType",
                f"The principal type '{principal_type}' is not valid. Valid values are "
                f"{', '.join(_PRINCIPAL_TYPES)}.",
            )
        known, visible_at = lookup_principal(world, props["principalId"])
        visible = known is not None and time.monotonic() >= visible_at
        # With principalType given Azure does not wait for the directory to replicate a new
        # principal (documented: https://aka.ms/docs-principaltype); an unknown one still fails.
        if known is None or (principal_type is None and not visible):
            raise _principal_not_found(props["principalId"])
        if visible and principal_type is not None and principal_type != known:
            raise ArmError(
                400,
                "UnmatchedPrincipalType",
                f"The PrincipalId '{_hex(props['principalId'])}' has type '{known}' , which is "
                f"different from specified PrincipalType '{principal_type}'.",
            )
        for other in world.list_by_type(ASSIGNMENT_TYPE):
            other_props = other.get("properties") or {}
            if (
                str(other["id"]).lower() != rid.lower()
                and str(other_props.get("scope", "")).lower() == scope.lower()
                and str(other_props.get("principalId", "")).lower() == props["principalId"].lower()
                and role_definition_guid(world, str(other_props.get("roleDefinitionId", "")))
                == role
            ):
                raise ArmError(
                    409,
                    "RoleAssignmentExists",
                    "The role assignment already exists. The ID of the existing role assignment "
                    f"is {_hex(str(other['name']))}.",
                )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource["properties"]
        old = (existing or {}).get("properties") or {}
        now = world.now()
        known, _ = lookup_principal(world, str(props["principalId"]))
        props["principalType"] = props.get("principalType") or known or "ServicePrincipal"
        props["scope"] = parse_path(rid, "PUT").scope
        props["createdOn"] = old.get("createdOn", now)
        props["updatedOn"] = now
        props["createdBy"] = old.get("createdBy", CALLER_OBJECT_ID)
        props["updatedBy"] = CALLER_OBJECT_ID
        # Only the schema's fields; Azure's nulls (condition, description...) are left out.
        resource["properties"] = {
            k: props[k] for k in _ASSIGNMENT_FIELDS if props.get(k) is not None
        }
        for key in [k for k in resource if k not in ("id", "name", "type", "properties")]:
            del resource[key]

    def before_delete(self, world: World, rid: str, resource: Resource) -> None:
        self._deleting[rid.lower()] = resource

    def answer(self, world: World, request: Request, response: Response) -> Response:
        parsed = parse_path(request.path, request.method)
        error = _error(response)
        if parsed.what == "collection" and response.status == 200:
            try:
                at_scope, principal = _filter_terms(request.query.get("$filter", ""))
            except ArmError as err:
                return err.response()
            return Response(200, {"value": _listed(world, parsed.scope, at_scope, principal)})
        if parsed.what != "resource":
            return response
        rid = parsed.resource_id
        if request.method == "PUT" and response.status == 201 and isinstance(response.body, dict):
            # Recorded: the create's answer has createdBy null (left out here); GETs show it.
            response.body.get("properties", {}).pop("createdBy", None)
        elif request.method == "DELETE":
            deleted = self._deleting.pop(world.canonical_id(rid).lower(), None)
            if response.status == 200 and deleted is not None:
                response.body = deleted  # recorded: 200 with the deleted assignment
        elif (
            request.method == "GET"
            and response.status == 404
            and error is not None
            and error.get("code") == "ResourceNotFound"
        ):
            return ArmError(
                404,
                "RoleAssignmentNotFound",
                f"The role assignment '{parsed.names[-1]}' is not found.",
            ).response()
        return response


def _listed(world: World, scope: str, at_scope: bool, principal: str | None) -> list[Resource]:
    """Assignments at, above or below ``scope`` (``atScope()``: at or above only), of
    ``principal`` when given."""
    out = []
    for item in world.list_by_type(ASSIGNMENT_TYPE):
        props = item.get("properties") or {}
        where = str(props.get("scope", ""))
        if not _within(scope, where) and (at_scope or not _within(where, scope)):
            continue
        if principal is not None and str(props.get("principalId", "")).lower() != principal.lower():
            continue
        out.append(item)
    return out


class RoleDefinition(Kind):
    """``Microsoft.Authorization/roleDefinitions``: the built-in roles, read-only."""

    type = DEFINITION_TYPE
    on_create = Reply(201)  # the only status the 2022-04-01 spec has; every write is refused
    patch_supported = False
    location_required = False
    etag_field = False
    system_data = False
    provisioning_state = False

    def view(self, world: World, rid: str, stored: Resource | None) -> Resource | None:
        guid = rid.rsplit("/", 1)[1].lower()
        if stored is None and guid in BUILT_IN_ROLES:
            return role_definition(world, guid)
        return stored

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        raise self._read_only(rid)

    def before_delete(self, world: World, rid: str, resource: Resource) -> None:
        raise self._read_only(rid)

    @staticmethod
    def _read_only(rid: str) -> ArmError:
        # Not from a recording: Azure refuses changes to built-in roles; the emulator has no
        # custom roles either.
        guid = rid.rsplit("/", 1)[1]
        role = BUILT_IN_ROLES.get(guid.lower())
        what = f"built-in role '{role['roleName']}'" if role else "custom role definitions"
        return ArmError(
            400,
            "RoleDefinitionUpdateNotSupported",
            f"Role definition '{guid}' cannot be written: the emulator's {what} are read-only.",
        )

    def answer(self, world: World, request: Request, response: Response) -> Response:
        parsed = parse_path(request.path, request.method)
        error = _error(response)
        if parsed.what == "collection" and response.status == 200:
            try:
                wanted = _role_filter(request.query.get("$filter", ""))
            except ArmError as err:
                return err.response()
            value = [
                role_definition(world, guid)
                for guid, role in BUILT_IN_ROLES.items()
                if all(str(role.get(k, "")).lower() == v.lower() for k, v in wanted.items())
            ]
            return Response(200, {"value": value})
        if (
            parsed.what == "resource"
            and request.method == "GET"
            and response.status == 404
            and error is not None
            and error.get("code") == "ResourceNotFound"
        ):
            return ArmError(
                404,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{_hex(parsed.names[-1])}' does not exist.",
            ).response()
        return response


def _role_filter(text: str) -> dict[str, str]:
    """``roleName eq '...'``, ``type eq 'BuiltInRole'``, ``atScopeAndBelow()`` -> the wanted
    {property: value}."""
    wanted: dict[str, str] = {}
    for term in _terms(text):
        if re.fullmatch(r"atScopeAndBelow\(\)", term, re.IGNORECASE):
            continue  # built-in roles are assignable everywhere
        match = re.fullmatch(r"(roleName|type)\s+eq\s+'([^']*)'", term, re.IGNORECASE)
        if match is None:
            raise ArmError(400, "UnsupportedQuery", f"The filter '{text}' is not supported.")
        wanted["roleName" if match[1].lower() == "rolename" else "type"] = match[2]
    return wanted
