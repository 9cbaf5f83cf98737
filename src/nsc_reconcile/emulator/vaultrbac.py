"""Key Vault data-plane authorization for the world flag ``enforce_vault_rbac``.

Who calls: the bearer token's unverified JWT payload names the caller by ``oid`` (and ``appid``),
as an Entra ID access token does; a token that is not a JWT (the emulator's default
``emulator-token``) is the emulator's signed-in user (``CALLER_OBJECT_ID``). Signatures are not
checked: the emulator trusts whatever identity the test presents.

What is allowed: on a vault with ``enableRbacAuthorization`` the caller needs a role assignment,
at the secret, the vault or any scope above it, whose built-in role grants the operation's data
action (``Microsoft.KeyVault/vaults/secrets/getSecret/action`` ...); control-plane roles (Owner,
Contributor) grant none. On an access-policy vault the caller's ``accessPolicies`` entry needs the
operation's secret permission. Refusals are 403 ``Forbidden`` with innererror ``ForbiddenByRbac``
or ``AccessDenied``, worded as Key Vault words them.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from dataclasses import dataclass
from typing import Any

from nsc_reconcile.emulator.kinds.authorization import BUILT_IN_ROLES, CALLER_OBJECT_ID

# The Azure CLI's public client id: the application of the emulator's default caller.
CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
_SECRETS = "Microsoft.KeyVault/vaults/secrets"
READ_METADATA = (f"{_SECRETS}/readMetadata/action", "list")


@dataclass(frozen=True)
class Caller:
    """The principal a bearer token names."""

    object_id: str
    app_id: str
    tenant_id: str

    def describe(self) -> str:
        """Key Vault's ``Caller:`` line."""
        return (
            f"appid={self.app_id};oid={self.object_id};"
            f"iss=https://sts.windows.net/{self.tenant_id}/"
        )


def caller_of(authorization: str, tenant_id: str) -> Caller:
    """The caller named by an ``Authorization: Bearer <token>`` header (see module docstring)."""
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    payload = _jwt_payload(token)
    if payload is None:
        return Caller(CALLER_OBJECT_ID, CLI_APP_ID, tenant_id)
    return Caller(
        str(payload.get("oid") or ""),
        str(payload.get("appid") or payload.get("azp") or ""),
        str(payload.get("tid") or tenant_id),
    )


def _jwt_payload(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        payload = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def operation(method: str, parts: list[str]) -> tuple[str, str]:
    """``(data action, access-policy permission)`` of a data-plane request path."""
    collection = parts[0] if parts else ""
    named = len(parts) >= 2 and bool(parts[1])
    tail = parts[2] if len(parts) == 3 else None
    if collection == "deletedsecrets":
        if method == "DELETE":
            return f"{_SECRETS}/purge/action", "purge"
        if tail == "recover":
            return f"{_SECRETS}/recover/action", "recover"
        return READ_METADATA
    if method == "PUT":
        return f"{_SECRETS}/setSecret/action", "set"
    if method == "DELETE":
        return f"{_SECRETS}/delete", "delete"
    if method == "PATCH":
        return f"{_SECRETS}/update/action", "set"
    if named and tail != "versions":
        return f"{_SECRETS}/getSecret/action", "get"
    return READ_METADATA


def _grants(role_guid: str, action: str) -> bool:
    role = BUILT_IN_ROLES.get(role_guid.lower())
    if role is None:
        return False
    lowered = action.lower()
    for permission in role["permissions"]:
        allowed = any(fnmatch.fnmatchcase(lowered, p.lower()) for p in permission["dataActions"])
        denied = any(fnmatch.fnmatchcase(lowered, p.lower()) for p in permission["notDataActions"])
        if allowed and not denied:
            return True
    return False


def _within(scope: str, outer: str) -> bool:
    scope, outer = scope.lower().rstrip("/"), outer.lower().rstrip("/")
    return scope == outer or scope.startswith(outer + "/")


def rbac_allows(assignments: list[dict[str, Any]], caller: Caller, scope: str, action: str) -> bool:
    """Whether an assignment of ``caller`` at or above ``scope`` grants ``action``."""
    for item in assignments:
        props = item.get("properties") or {}
        if str(props.get("principalId", "")).lower() != caller.object_id.lower():
            continue
        if not _within(scope, str(props.get("scope", ""))):
            continue
        if _grants(str(props.get("roleDefinitionId", "")).rsplit("/", 1)[-1], action):
            return True
    return False


def policy_allows(vault: dict[str, Any], caller: Caller, permission: str) -> bool:
    """Whether the vault's access policies give ``caller`` the secret ``permission``."""
    for policy in (vault.get("properties") or {}).get("accessPolicies") or []:
        if str(policy.get("objectId", "")).lower() != caller.object_id.lower():
            continue
        granted = [str(p).lower() for p in (policy.get("permissions") or {}).get("secrets") or []]
        if permission in granted or "all" in granted:
            return True
    return False


def denial(
    assignments: list[dict[str, Any]],
    vault: dict[str, Any],
    caller: Caller,
    method: str,
    parts: list[str],
) -> tuple[str, str] | None:
    """``(message, inner code)`` of Key Vault's 403 when ``caller`` may not make the request,
    else None; ``assignments``: the world's role assignments."""
    action, permission = operation(method, parts)
    vault_id = str(vault.get("id", ""))
    location = str(vault.get("location", ""))
    where = f"{vault.get('name', '')};location={location}"
    props = vault.get("properties") or {}
    if not props.get("enableRbacAuthorization"):
        if policy_allows(vault, caller, permission):
            return None
        return (
            f"The user, group or application '{caller.describe()}' does not have secrets "
            f"{permission} permission on key vault '{where}'. For help resolving this issue, "
            "please see https://go.microsoft.com/fwlink/?linkid=2125287",
            "AccessDenied",
        )
    named = parts[0] == "secrets" and len(parts) >= 2 and bool(parts[1])
    scope = f"{vault_id}/secrets/{parts[1]}" if named else vault_id
    if rbac_allows(assignments, caller, scope, action):
        return None
    # Wording as Key Vault answers (e.g. az keyvault secret set without a data role).
    return (
        "Caller is not authorized to perform action on resource.\r\n"
        "If role assignments, deny assignments or role definitions were changed recently, "
        "please observe propagation time.\r\n"
        f"Caller: {caller.describe()}\r\n"
        f"Action: '{action}'\r\n"
        f"Resource: '{scope.lower()}'\r\n"
        "Assignment: (not found)\r\n"
        "DenyAssignmentId: null\r\n"
        "DecisionReason: null \r\n"
        f"Vault: {where}\r\n",
        "ForbiddenByRbac",
    )
