"""Role assignments in the desired state's words, for plans and orphan lists: who gets which
role on what (``grants AcrPull on container_registry/nscacrdev to kubelet of
aks_cluster/nsc-aks-dev``) instead of three ARM ids.

Pure: what a listed assignment's ids stand for comes from the run's reads (resources/access.py
gathers it); no SDK, no call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nsc_reconcile.model.access import AZURE_DATABRICKS_APP_ID, Principal

# Built-in roles by definition GUID: a built-in role has the same id in every tenant
# (`/providers/Microsoft.Authorization/roleDefinitions/<guid>`, assignable at "/";
# learn.microsoft.com, "Azure built-in roles"). Names an orphan's role when no declared grant
# of this run resolved it (a grant's roles are read by name: RoleAssignmentReconciler.role_id).
BUILT_IN_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd": "Cognitive Services OpenAI User",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
# Entra applications whose name a plan can show without asking Microsoft Graph.
KNOWN_APPLICATIONS = {AZURE_DATABRICKS_APP_ID: "AzureDatabricks"}


def role_guid(role_definition_id: str) -> str:
    """A role definition id's GUID (the subscription and tenant forms name one role)."""
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def principal_words(principal: Principal) -> str:
    """Who a declared principal is, as the file says it."""
    if principal.identity is not None:
        return f"user_assigned_identity/{principal.identity}"
    if principal.aks_kubelet is not None:
        return f"kubelet of aks_cluster/{principal.aks_kubelet}"
    if principal.caller:
        return "the caller"
    if principal.application_id is not None:
        known = KNOWN_APPLICATIONS.get(principal.application_id.lower())
        return f"application {principal.application_id}" + (f" ({known})" if known else "")
    return object_words(str(principal.object_id), principal.principal_type)


def object_words(object_id: str, principal_type: object = None) -> str:
    """A principal known only by its object id (and its type, when Azure says it)."""
    kind = f" ({principal_type})" if isinstance(principal_type, str) and principal_type else ""
    return f"object {object_id.lower()}{kind}"


def resource_group_words(name: str) -> str:
    return f"the resource group {name}"


def grant_line(role: str, scope: str, principal: str) -> str:
    """The one line a plan shows for a grant."""
    return f"grants {role} on {scope} to {principal}"


@dataclass
class GrantWords:
    """What the ids of listed assignments stand for in the file: role definition GUIDs to
    role names, scope ids (lower case, no trailing /) to addresses, principal object ids
    (lower case) to the file's words, and the id of the vault the `secrets` section names
    (its secrets are ``key_vault_secret/<name>``). What is not known is shown as the id."""

    roles: dict[str, str] = field(default_factory=dict)
    scopes: dict[str, str] = field(default_factory=dict)
    principals: dict[str, str] = field(default_factory=dict)
    secrets_vault: str | None = None

    def role(self, role_definition_id: str) -> str:
        guid = role_guid(role_definition_id)
        return self.roles.get(guid) or BUILT_IN_ROLES.get(guid) or f"role {guid}"

    def scope(self, scope_id: str) -> str:
        key = scope_id.rstrip("/").lower()
        if key in self.scopes:
            return self.scopes[key]
        vault, marker, secret = key.rpartition("/secrets/")
        if marker and "/" not in secret and vault in self.scopes:
            name = scope_id.rstrip("/").rsplit("/", 1)[-1]  # as Azure spells it
            if vault == self.secrets_vault:
                return f"key_vault_secret/{name}"
            return f"secret {name} of {self.scopes[vault]}"
        return scope_id

    def principal(self, object_id: str, principal_type: object = None) -> str:
        return self.principals.get(object_id.lower()) or object_words(object_id, principal_type)

    def line(self, assignment: dict[str, Any]) -> str:
        """The grant line of a listed assignment (its REST JSON)."""
        props = assignment.get("properties") or {}
        return grant_line(
            self.role(str(props.get("roleDefinitionId") or "")),
            self.scope(str(props.get("scope") or "")),
            self.principal(str(props.get("principalId") or ""), props.get("principalType")),
        )
