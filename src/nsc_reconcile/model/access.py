"""Access: user-assigned identities with their federated credentials (AKS workload identity),
and Azure role assignments of identities to what they use.

Role assignments follow least privilege: a runtime consumer never gets a management role
(Owner, Contributor, User Access Administrator) nor Key Vault Secrets Officer on a whole vault;
the model refuses those (a `policy` error naming the principle). Imports no SDK.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from nsc_reconcile.model.base import (
    ChildResource,
    Model,
    Reference,
    Resource,
    policy_violation,
)

LEAST_PRIVILEGE = (
    "least privilege: runtime consumers get only the data roles they need, on exactly what they use"
)
# The audience Entra ID expects in a Kubernetes service account token it exchanges
# (learn.microsoft.com, "Workload identity federation", Kubernetes).
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
# Roles that manage resources or access: never for what runs the workload.
MANAGEMENT_ROLES = frozenset({"Owner", "Contributor", "User Access Administrator"})
# Roles a runtime consumer may hold only on single secrets, never on a whole vault.
SECRET_WRITER_ROLES = frozenset({"Key Vault Secrets Officer"})
# Roles that let a deployer write a vault's secrets (the data plane; Owner/Contributor do not).
VAULT_WRITER_ROLES = frozenset({"Key Vault Secrets Officer", "Key Vault Administrator"})
# Scopes of a role assignment: the declared or existing resource it is granted on.
SCOPE_KINDS = (
    "key_vault",
    "key_vault_secret",
    "container_registry",
    "openai_account",
    "data_collection_rule",
)
_SCOPE = re.compile(rf"^(?:{'|'.join(SCOPE_KINDS)})/[^/\s]+$|^resource_group$")
_GUID = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"
# The first-party Entra application Azure Databricks acts as when it reads a Key Vault-backed
# secret scope (grant it Key Vault Secrets User on an RBAC vault; learn.microsoft.com, Azure
# Databricks "Secret scopes", and MicrosoftDocs/azure-docs#84380).
AZURE_DATABRICKS_APP_ID = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
PRINCIPAL_FORMS = ("identity", "aks_kubelet", "object_id", "application_id", "caller")


class FederatedCredential(ChildResource):
    """Trust of a Kubernetes service account's tokens (the cluster's OIDC issuer) by the
    identity, addressed as `federated_identity_credential/<identity>/<name>`."""

    kind = "federated_identity_credential"

    cluster: str = Field(
        description="The existing AKS cluster (`existing.aks_clusters`) whose OIDC issuer "
        "(`oidcIssuerProfile.issuerURL`, read from the cluster) issues the tokens."
    )
    namespace: str = Field(min_length=1, description="The service account's namespace.")
    service_account: str = Field(min_length=1, description="The service account's name.")

    @property
    def identity(self) -> str:
        """Name of the holding identity."""
        return self._parent

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def references(self) -> list[Reference]:
        return [Reference(("cluster",), f"aks_cluster/{self.cluster}")]


class UserAssignedIdentity(Resource):
    """A user-assigned managed identity (in the state's location); its `principal_id` and
    `client_id` are outputs."""

    kind = "user_assigned_identity"

    tags: dict[str, str] = Field(default_factory=dict, description="Tags.")
    federated_credentials: list[FederatedCredential] = Field(
        default_factory=list,
        description="Kubernetes service accounts that sign in as this identity.",
    )

    def model_post_init(self, _context: object, /) -> None:
        for credential in self.federated_credentials:
            credential.adopt_parent(self.name)


class Principal(Model):
    """Who gets the role: one of identity, aks_kubelet, object_id, application_id, caller."""

    identity: str | None = Field(
        default=None, description="A declared `user_assigned_identity` (by name)."
    )
    aks_kubelet: str | None = Field(
        default=None,
        description="An existing AKS cluster (by name) whose kubelet identity "
        "(`identityProfile.kubeletidentity.objectId`, read from the cluster) gets the role.",
    )
    object_id: str | None = Field(
        default=None, pattern=_GUID, description="An Entra ID object id, with `principal_type`."
    )
    principal_type: Literal["ServicePrincipal", "User", "Group"] | None = Field(
        default=None,
        description="The type of `object_id`'s principal (sent with every assignment, so a "
        "principal just created is not refused while the directory replicates); identities "
        "are `ServicePrincipal`.",
    )
    application_id: str | None = Field(
        default=None,
        pattern=_GUID,
        description="An Entra application by its application (client) id: its service "
        "principal in the tenant, read from Microsoft Graph "
        "(`servicePrincipals(appId='...')`), gets the role. E.g. AzureDatabricks "
        f"`{AZURE_DATABRICKS_APP_ID}` for Key Vault-backed secret scopes.",
    )
    caller: bool = Field(
        default=False,
        description="`true`: the identity that runs nsc-reconcile (CI's service principal in "
        "the pipeline), read from its access token (`oid`; `idtyp`/`scp` give the type). "
        "Only for `consumer: deployer`.",
    )

    @model_validator(mode="after")
    def _one(self) -> Principal:
        given = [n for n in PRINCIPAL_FORMS if getattr(self, n)]
        if len(given) != 1:
            raise PydanticCustomError(
                "principal",
                "give exactly one of identity, aks_kubelet, object_id, application_id or "
                "caller: true",
                {},
            )
        if (self.object_id is None) != (self.principal_type is None):
            raise PydanticCustomError(
                "principal", "principal_type goes with object_id, and only with it", {}
            )
        return self

    @property
    def wire_type(self) -> str:
        """``ServicePrincipal``, ``User`` or ``Group``: what Azure is told it is (the
        caller's type is read from its token: resources/access.py)."""
        return self.principal_type or "ServicePrincipal"


class RoleAssignment(Resource):
    """A built-in role granted to a principal on one scope. `name` is the label of the
    grant in this file; the assignment's name in Azure is a UUID v5 of its scope, role and
    principal (so reruns find it), and an equal assignment of another name counts as it."""

    kind = "role_assignment"

    principal: Principal = Field(description="Who gets the role.")
    consumer: Literal["runtime", "deployer"] = Field(
        default="runtime",
        description="`runtime`: what runs the workload (AKS pods, Databricks jobs, the "
        "kubelet): no Owner, Contributor, User Access Administrator, nor Key Vault Secrets "
        "Officer on a whole vault (least privilege). `deployer`: CI / the people who deploy.",
    )
    scope: str = Field(
        pattern=_SCOPE.pattern,
        description="What the role is granted on: `key_vault/<name>`, "
        "`key_vault_secret/<name>` (one secret), `container_registry/<name>`, "
        "`openai_account/<name>`, `data_collection_rule/<name>` (Logs Ingestion) or "
        "`resource_group` (the state's).",
    )
    role: str = Field(
        min_length=1,
        description="A built-in role by name, e.g. `Key Vault Secrets User`, `AcrPull`, "
        "`Cognitive Services OpenAI User` (resolved to its definition id).",
    )

    @field_validator("role")
    @classmethod
    def _least_privilege(cls, value: str, info: ValidationInfo) -> str:
        consumer = info.data.get("consumer", "runtime")
        scope = str(info.data.get("scope", ""))
        principal = info.data.get("principal")
        if consumer == "runtime" and isinstance(principal, Principal) and principal.caller:
            raise policy_violation(
                LEAST_PRIVILEGE,
                "the caller (who runs nsc-reconcile) deploys: mark its grants `consumer: deployer`",
            )
        if consumer != "runtime":
            return value
        if value in MANAGEMENT_ROLES:
            raise policy_violation(
                LEAST_PRIVILEGE,
                f"a runtime consumer must not hold {value!r}; grant the data role it needs "
                "(e.g. Key Vault Secrets User, AcrPull) on what it uses, or mark a deployer "
                "`consumer: deployer`",
            )
        if value in SECRET_WRITER_ROLES and not scope.startswith("key_vault_secret/"):
            raise policy_violation(
                LEAST_PRIVILEGE,
                f"a runtime consumer must not hold {value!r} on {scope}; grant it on single "
                "secrets (key_vault_secret/<name>), or Key Vault Secrets User to read",
            )
        return value

    @property
    def scope_kind(self) -> str:
        return self.scope.split("/", 1)[0]

    @property
    def scope_name(self) -> str:
        return self.scope.split("/", 1)[1] if "/" in self.scope else ""

    def references(self) -> list[Reference]:
        refs = []
        if self.principal.identity is not None:
            refs.append(
                Reference(
                    ("principal", "identity"), f"user_assigned_identity/{self.principal.identity}"
                )
            )
        if self.principal.aks_kubelet is not None:
            refs.append(
                Reference(("principal", "aks_kubelet"), f"aks_cluster/{self.principal.aks_kubelet}")
            )
        if self.scope != "resource_group":
            refs.append(Reference(("scope",), self.scope))
        return refs

    @property
    def details(self) -> str:
        return f"{self.role} on {self.scope}"
