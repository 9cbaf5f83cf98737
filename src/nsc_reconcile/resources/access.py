"""User-assigned identities, their federated credentials and role assignments (azure-mgmt-msi,
azure-mgmt-authorization).

An identity owns its location and tags; a federated credential its issuer (the AKS cluster's
OIDC issuer, from the cluster's read), subject and audiences. A role assignment is found by a
deterministic name (UUID v5 of scope, role definition and principal) or, failing that, by an
equal assignment of another name at the same scope (which counts as present); it is never
updated in place: another principal, role or scope is another assignment. Ours carry a
description mark (they have no tags): orphans are the marked ones whose id is no declared
grant's, found by one list in the resource group.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, ClassVar

from nsc_reconcile.changes import ReplacePolicy, Unknown
from nsc_reconcile.model.access import (
    TOKEN_EXCHANGE_AUDIENCE,
    FederatedCredential,
    RoleAssignment,
    UserAssignedIdentity,
)
from nsc_reconcile.resources.base import (
    ArmReconciler,
    Context,
    Listing,
    Live,
    Owned,
    Reconciler,
    flatten,
    norm_id,
    sdk_model,
    tag_fields,
    to_wire,
)
from nsc_reconcile.resources.directory import directory_of
from nsc_reconcile.resources.grant_words import (
    GrantWords,
    grant_line,
    principal_words,
    resource_group_words,
)

IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
ASSIGNMENTS = "providers/Microsoft.Authorization/roleAssignments"
# The namespace of role assignment names: uuid5(NAMESPACE, "<scope>|<role def>|<principal>").
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/nsc-reconcile/role_assignment")
# Marks the assignments we create (they carry no tags): their description,
# "managed-by: nsc-reconcile; nsc-environment: <env>; nsc-grant: <label>" (the label since
# issue 10's orphans; an older one without it is still ours: descriptions are not compared).
MARK = "managed-by: nsc-reconcile"
ENVIRONMENT_KEY = "nsc-environment"
GRANT_KEY = "nsc-grant"


def _identity_id(ctx: Context, name: str) -> str:
    return f"{ctx.rg_id()}/providers/{IDENTITY_TYPE}/{name}"


class UserAssignedIdentityReconciler(ArmReconciler[UserAssignedIdentity]):
    kind = "user_assigned_identity"
    listing = Listing("msi", "user_assigned_identities", delete_method="delete")
    # A new identity is a new principal: every grant of the old one would be lost.
    immutable = frozenset({"location"})

    def resource_id(self, ctx: Context, resource: UserAssignedIdentity) -> str:
        return _identity_id(ctx, resource.name)

    def get(self, ctx: Context, resource: UserAssignedIdentity) -> Any:
        return ctx.clients.msi.user_assigned_identities.get(ctx.resource_group, resource.name)

    def put(
        self, ctx: Context, resource: UserAssignedIdentity, body: dict[str, Any], etag: str | None
    ) -> None:
        from azure.mgmt.msi.models import Identity

        ctx.clients.msi.user_assigned_identities.create_or_update(
            ctx.resource_group, resource.name, sdk_model(Identity, body)
        )

    def declared(self, ctx: Context, resource: UserAssignedIdentity) -> dict[str, Any]:
        return {"location": ctx.state.location, **tag_fields(ctx.tags(resource.tags))}

    def output(self, ctx: Context, resource: UserAssignedIdentity, live: Live, name: str) -> Any:
        paths = {"principal_id": "properties.principalId", "client_id": "properties.clientId"}
        if name in paths:
            return live.fields.get(paths[name])
        return super().output(ctx, resource, live, name)


def oidc_issuer(ctx: Context, cluster: str) -> str:
    """The OIDC issuer URL of the existing AKS cluster ``cluster`` as read in this run (no
    call of its own). Raises ValueError when the cluster has none enabled."""
    live = ctx.live(f"aks_cluster/{cluster}")
    issuer = live.fields.get("properties.oidcIssuerProfile.issuerURL") if live else None
    if not isinstance(issuer, str) or not issuer:
        raise ValueError(
            f"aks_cluster/{cluster} has no OIDC issuer (oidcIssuerProfile); enable it "
            "(az aks update --enable-oidc-issuer) for workload identity"
        )
    return issuer


class FederatedCredentialReconciler(ArmReconciler[FederatedCredential]):
    """A federated credential: it carries no tags; it is ours when its identity is."""

    kind = "federated_identity_credential"
    tagged = False
    listing = Listing(
        "msi",
        "federated_identity_credentials",
        list_method="list",
        delete_method="delete",
        parent="user_assigned_identity",
        inherit_mark=True,
    )
    set_like = frozenset({"properties.audiences"})

    def resource_id(self, ctx: Context, resource: FederatedCredential) -> str:
        return (
            f"{_identity_id(ctx, resource.identity)}/federatedIdentityCredentials/{resource.name}"
        )

    def get(self, ctx: Context, resource: FederatedCredential) -> Any:
        return ctx.clients.msi.federated_identity_credentials.get(
            ctx.resource_group, resource.identity, resource.name
        )

    def put(
        self, ctx: Context, resource: FederatedCredential, body: dict[str, Any], etag: str | None
    ) -> None:
        from azure.mgmt.msi.models import FederatedIdentityCredential

        ctx.clients.msi.federated_identity_credentials.create_or_update(
            ctx.resource_group,
            resource.identity,
            resource.name,
            sdk_model(FederatedIdentityCredential, body),
        )

    def declared(self, ctx: Context, resource: FederatedCredential) -> dict[str, Any]:
        return {
            "properties.issuer": oidc_issuer(ctx, resource.cluster),
            "properties.subject": resource.subject,
            "properties.audiences": [TOKEN_EXCHANGE_AUDIENCE],
        }

    def lock_key(self, resource: FederatedCredential) -> str | None:
        # Azure refuses concurrent credential writes under one identity
        # (ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity).
        return f"user_assigned_identity/{resource.identity}"


_SCOPE_TYPES = {
    "key_vault": "Microsoft.KeyVault/vaults",
    "container_registry": "Microsoft.ContainerRegistry/registries",
    "openai_account": "Microsoft.CognitiveServices/accounts",
    "data_collection_rule": "Microsoft.Insights/dataCollectionRules",
}
_COMPARED = ("properties.principalId", "properties.roleDefinitionId", "properties.scope")


def assignment_name(scope_id: str, role_definition_id: str, principal_id: str) -> str:
    """The deterministic name of an assignment: a UUID v5 of its scope, role definition and
    principal (ids lower-cased, so the spelling Azure answers with does not matter)."""
    text = "|".join(v.lower().rstrip("/") for v in (scope_id, role_definition_id, principal_id))
    return str(uuid.uuid5(NAMESPACE, text))


def grant_description(environment: str, label: str) -> str:
    """The description apply writes on an assignment: our mark, its environment and label."""
    return f"{MARK}; {ENVIRONMENT_KEY}: {environment}; {GRANT_KEY}: {label}"


def grant_mark(description: object) -> tuple[str, str | None] | None:
    """(environment, label or None) of a description apply wrote; None when it is not ours
    (no exact ``managed-by: nsc-reconcile`` part, or no environment)."""
    if not isinstance(description, str):
        return None
    parts = [part.strip() for part in description.split(";")]
    if MARK not in parts:
        return None
    pairs = dict(part.partition(": ")[::2] for part in parts if ": " in part)
    environment = pairs.get(ENVIRONMENT_KEY, "").strip()
    label = pairs.get(GRANT_KEY, "").strip()
    return (environment, label or None) if environment else None


def _guid(role_definition_id: str) -> str:
    """A role definition id's GUID: the subscription and tenant forms name one role."""
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def _read(ctx: Context, address: str) -> tuple[Live | None] | None:
    """``(live state,)`` of a declared resource as read in this run; None when its read
    failed."""
    try:
        return (ctx.live(address),)
    except Exception:
        return None


def _code(exc: BaseException) -> str | None:
    return getattr(getattr(exc, "error", None), "code", None)


class RoleAssignmentReconciler(Reconciler[RoleAssignment]):
    """A role assignment (an extension resource at its scope). Read: GET by the
    deterministic name, else a list at the scope filtered by principal for an equal one.
    Write: one PUT with principalType; 409 RoleAssignmentExists means an equal one exists."""

    kind = "role_assignment"
    immutable = frozenset(_COMPARED)
    replace_policy: ClassVar[ReplacePolicy] = ReplacePolicy.AUTOMATED
    # Orphans: one list per resource group (list_owned, below, not ArmReconciler's); the
    # listing names the client the search prepares. A grant holds no data.
    listing = Listing(
        "authorization",
        "role_assignments",
        list_method="list_for_resource_group",
        delete_method="delete_by_id",
    )

    def __init__(self) -> None:
        self._roles: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ what it is made of
    def scope_id(self, ctx: Context, resource: RoleAssignment) -> str:
        """The ARM id of the assignment's scope (the resource as read when it exists)."""
        if resource.scope == "resource_group":
            return ctx.rg_id()
        if resource.scope_kind == "key_vault_secret":
            vault = self.vault_of(ctx, resource)
            return f"{self.scope_id_of(ctx, f'key_vault/{vault}')}/secrets/{resource.scope_name}"
        return self.scope_id_of(ctx, resource.scope)

    def scope_id_of(self, ctx: Context, address: str) -> str:
        live = ctx.live(address)
        if live is not None:
            return live.id
        kind, _, name = address.partition("/")
        return f"{ctx.rg_id()}/providers/{_SCOPE_TYPES[kind]}/{name}"

    def vault_of(self, ctx: Context, resource: RoleAssignment) -> str | None:
        """The vault the assignment is on (itself or one of its secrets), if any."""
        if resource.scope_kind == "key_vault":
            return resource.scope_name
        if resource.scope_kind == "key_vault_secret":
            if ctx.state.secrets is None:
                raise ValueError(f"{resource.scope}: no `secrets` section names the vault")
            return ctx.state.secrets.vault
        return None

    def principal_id(self, ctx: Context, resource: RoleAssignment) -> str | Unknown:
        """The principal's object id; Unknown for an identity not created yet. The caller and
        an application are looked up once per run (resources/directory.py; read() does it
        first, so desired() finds the answer kept)."""
        principal = resource.principal
        if principal.object_id is not None:
            return principal.object_id.lower()
        if principal.caller or principal.application_id is not None:
            return directory_of(ctx.clients).resolve(principal)[0]
        if principal.identity is not None:
            value = ctx.output(f"user_assigned_identity/{principal.identity}", "principal_id")
            return value if isinstance(value, Unknown) else str(value).lower()
        cluster = f"aks_cluster/{principal.aks_kubelet}"
        live = ctx.live(cluster)
        found = (
            live.fields.get("properties.identityProfile.kubeletidentity.objectId") if live else None
        )
        if not isinstance(found, str) or not found:
            raise ValueError(f"{cluster} shows no kubelet identity (identityProfile)")
        return found.lower()

    def principal_type(self, ctx: Context, resource: RoleAssignment) -> str:
        """What Azure is told the principal is (the caller's type comes from its token)."""
        principal = resource.principal
        if principal.caller or principal.application_id is not None:
            return directory_of(ctx.clients).resolve(principal)[1]
        return principal.wire_type

    def role_id(self, ctx: Context, resource: RoleAssignment) -> str:
        """The role definition id of the built-in role named ``resource.role`` (one list with
        ``roleName eq``, at the resource group: built-in roles are assignable everywhere, and
        the scope itself may not exist yet). Raises ValueError for an unknown role."""
        key = (ctx.subscription_id, resource.role)
        with self._lock:
            if key in self._roles:
                return self._roles[key]
        quoted = resource.role.replace("'", "''")  # OData string literal
        found = [
            to_wire(d)
            for d in ctx.clients.authorization.role_definitions.list(
                ctx.rg_id(), filter=f"roleName eq '{quoted}'"
            )
        ]
        ids = [
            str(d["id"]) for d in found
            if str((d.get("properties") or {}).get("roleName", "")).lower() == resource.role.lower()
        ]  # fmt: skip
        if not ids:
            raise ValueError(f"no role definition is named {resource.role!r}")
        with self._lock:
            self._roles[key] = ids[0]
        return ids[0]

    # ------------------------------------------------------------ the protocol
    def resource_id(self, ctx: Context, resource: RoleAssignment) -> str:
        try:
            scope = self.scope_id(ctx, resource)
        except ValueError:
            return f"{resource.scope}/{ASSIGNMENTS}/(known after apply)"
        try:
            principal = self.principal_id(ctx, resource)
            if not isinstance(principal, Unknown):
                name = assignment_name(scope, self.role_id(ctx, resource), principal)
                return f"{scope}/{ASSIGNMENTS}/{name}"
        except Exception:  # the id is only shown; read() reports the error
            pass
        return f"{scope}/{ASSIGNMENTS}/(known after apply)"

    def read(self, ctx: Context, resource: RoleAssignment) -> Live | None:
        from azure.core.exceptions import ResourceNotFoundError

        principal = self.principal_id(ctx, resource)
        if isinstance(principal, Unknown):
            return None  # its identity does not exist yet: neither can the assignment
        scope = self.scope_id(ctx, resource)
        role = self.role_id(ctx, resource)
        operations = ctx.clients.authorization.role_assignments
        try:
            raw = operations.get(scope, assignment_name(scope, role, principal))
        except ResourceNotFoundError:
            raw = None
        if raw is None:
            try:
                listed = operations.list_for_scope(scope, filter=f"principalId eq '{principal}'")
                raw = next((a for a in listed if self._equal(a, scope, role, principal)), None)
            except ResourceNotFoundError:  # the scope itself does not exist yet
                return None
        if raw is None:
            return None
        wire = to_wire(raw)
        props = wire.get("properties") or {}
        return Live(
            id=str(wire["id"]),
            fields=flatten({"properties": {k.split(".")[1]: props.get(k.split(".")[1])
                                           for k in _COMPARED}}),
            raw=raw,
            facts={"name": wire.get("name"), "principalType": props.get("principalType")},
        )  # fmt: skip

    @staticmethod
    def _equal(assignment: Any, scope: str, role: str, principal: str) -> bool:
        """Whether a listed assignment grants the same role to the same principal at exactly
        ``scope`` (one inherited from above is not the same grant)."""
        props = to_wire(assignment).get("properties") or {}
        return (
            norm_id(str(props.get("scope", ""))) == norm_id(scope)
            and _guid(str(props.get("roleDefinitionId", ""))) == _guid(role)
            and str(props.get("principalId", "")).lower() == principal
        )

    def desired(self, ctx: Context, resource: RoleAssignment) -> dict[str, Any]:
        principal = self.principal_id(ctx, resource)
        return {
            "properties.principalId": principal,
            "properties.roleDefinitionId": self.role_id(ctx, resource),
            "properties.scope": self.scope_id(ctx, resource),
        }

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        normalized = dict(fields)
        for path, value in fields.items():
            if not isinstance(value, str):
                continue
            normalized[path] = _guid(value) if path.endswith("roleDefinitionId") else norm_id(value)
        return normalized

    def write(self, ctx: Context, resource: RoleAssignment, live: Live | None) -> None:
        """Create the assignment (principalType always sent, so a principal the directory
        has not replicated yet is accepted). A live one that differs is deleted first (a
        replacement: assignments cannot be updated). 409 RoleAssignmentExists: an equal
        assignment of another name exists, which is what was wanted."""
        from azure.core.exceptions import HttpResponseError

        operations = ctx.clients.authorization.role_assignments
        desired = self.desired(ctx, resource)
        principal = str(desired["properties.principalId"])
        scope = str(desired["properties.scope"])
        role = str(desired["properties.roleDefinitionId"])
        if live is not None:
            operations.delete_by_id(live.id)
        # The operations' own models: the package's default `models` is an older API.
        parameters = operations.models.RoleAssignmentCreateParameters(
            role_definition_id=role,
            principal_id=principal,
            principal_type=self.principal_type(ctx, resource),
            description=grant_description(ctx.state.environment, resource.name),
        )
        try:
            operations.create(scope, assignment_name(scope, role, principal), parameters)
        except HttpResponseError as error:
            if _code(error) != "RoleAssignmentExists":
                raise

    # ------------------------------------------------------------ orphans
    def list_owned(self, ctx: Context, scope: tuple[str, str] | None) -> list[Owned]:
        """The assignments apply wrote (description mark) that are no declared grant: one
        ``list_for_resource_group`` per group a grant may be scoped to (the state's, and that
        of an existing vault, registry, account or DCR elsewhere). Azure answers with the
        assignments at the group, at its resources and above it (the 2022-04-01 spec: "all
        role assignments that apply to a resource group"); those above are left out.

        A declared grant is matched by Azure id, not by label: its deterministic id, or the
        equal assignment of another name its read found (so this waits for the grants' reads
        of the plan, ``ctx.live``). A grant whose principal, role or scope changed has a new
        id: its old assignment is an orphan. The address is ``role_assignment/<label>/<Azure
        name>`` (the label recorded when it was written; an older one without it:
        ``role_assignment/<Azure name>``): never a declared address, since labels are those of
        the file and the Azure name says which assignment. Its ``details`` say what it grants,
        in the file's words (``words``: no call)."""
        from azure.core.exceptions import ResourceNotFoundError

        operations = ctx.clients.authorization.role_assignments
        marked: dict[str, tuple[dict[str, Any], str, str | None]] = {}
        for group in self._groups(ctx):
            within = ctx.rg_id(group).lower()
            try:
                listed = [to_wire(item) for item in operations.list_for_resource_group(group)]
            except ResourceNotFoundError:  # no such group: nothing of ours in it
                continue
            for wire in listed:
                props = wire.get("properties") or {}
                where = str(props.get("scope") or "").lower().rstrip("/")
                mark = grant_mark(props.get("description"))
                if mark is not None and (where == within or where.startswith(within + "/")):
                    marked.setdefault(str(wire.get("id") or "").lower(), (wire, *mark))
        if not marked:
            return []  # nothing of ours: no need to wait for the grants' reads
        declared = self._declared_ids(ctx)
        words: GrantWords | None = None  # gathered for the first orphan
        owned = []
        for rid, (wire, environment, label) in sorted(marked.items()):
            if rid in declared:
                continue
            name = str(wire.get("name") or rid.rsplit("/", 1)[-1])
            key = f"{label}/{name}" if label else name
            words = words or self.words(ctx)
            owned.append(
                Owned(f"{self.kind}/{key}", str(wire["id"]), True, environment,
                      details=words.line(wire))
            )  # fmt: skip
        return owned

    def describe(self, ctx: Context, resource: RoleAssignment) -> str | None:
        """Who gets which role on what, as the file says it (plans show it above the ids)."""
        scope = resource.scope
        if scope == "resource_group":
            scope = resource_group_words(ctx.resource_group)
        return grant_line(resource.role, scope, principal_words(resource.principal))

    def words(self, ctx: Context) -> GrantWords:
        """What listed assignments' ids stand for in the file, from this run's reads only (no
        call; the grants' reads are done): the roles the grants resolved, the declared scopes'
        ids, and the principals of the declared identities, clusters' kubelets and grants."""
        found = GrantWords(
            roles={_guid(i): n for (s, n), i in self._roles.items() if s == ctx.subscription_id}
        )
        for group in self._groups(ctx):
            found.scopes[ctx.rg_id(group).lower()] = resource_group_words(group)
        for _, item in ctx.state.resources():
            if item.kind in _SCOPE_TYPES and _read(ctx, item.address) is not None:
                scope = self.scope_id_of(ctx, item.address)
                found.scopes[scope.lower().rstrip("/")] = item.address
        if ctx.state.secrets is not None:
            vault = f"key_vault/{ctx.state.secrets.vault}"
            found.secrets_vault = next((i for i, a in found.scopes.items() if a == vault), None)
        paths = {
            "user_assigned_identity": ("properties.principalId", "{}"),
            "aks_cluster": ("properties.identityProfile.kubeletidentity.objectId", "kubelet of {}"),
        }
        for _, item in ctx.state.resources():
            if item.kind in paths:
                path, form = paths[item.kind]
                read = _read(ctx, item.address)
                live = read[0] if read is not None else None
                object_id = live.fields.get(path) if live is not None else None
                if isinstance(object_id, str) and object_id:
                    found.principals[object_id.lower()] = form.format(item.address)
        for grant in ctx.state.role_assignments:
            if _read(ctx, grant.address) is None:
                continue  # its read failed: asking the directory again is a call
            try:
                object_id = self.principal_id(ctx, grant)  # kept since the grant's read
            except Exception:
                continue
            if not isinstance(object_id, Unknown):
                found.principals.setdefault(object_id, principal_words(grant.principal))
        return found

    def _groups(self, ctx: Context) -> list[str]:
        """The resource groups grants may be scoped to: the state's, and those of existing
        scopes declared in another group."""
        groups = {ctx.resource_group.lower(): ctx.resource_group}
        for _, item in ctx.state.resources():
            group = getattr(item, "resource_group", None) if item.kind in _SCOPE_TYPES else None
            if isinstance(group, str) and group:
                groups.setdefault(group.lower(), group)
        return list(groups.values())

    def _declared_ids(self, ctx: Context) -> set[str]:
        """The lower-cased ids of the declared grants: as read (an equal assignment of
        another name counts) and the deterministic one (a grant apply just created)."""
        ids: set[str] = set()
        for grant in ctx.state.role_assignments:
            live = ctx.live(grant.address)
            if live is not None:
                ids.add(live.id.lower().rstrip("/"))
            ids.add(self.resource_id(ctx, grant).lower().rstrip("/"))
        return ids

    def delete_orphan(self, ctx: Context, resource_id: str) -> None:
        """Revoke the orphan: one DELETE by id (synchronous); already gone is fine."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            ctx.clients.authorization.role_assignments.delete_by_id(resource_id)
        except ResourceNotFoundError:
            return

    def refusal(self, ctx: Context, resource: RoleAssignment, live: Live | None) -> str | None:
        """Blocks a grant on a vault that uses access policies: a role assignment there
        grants nothing, and access policies cannot be limited to one secret."""
        try:
            vault = self.vault_of(ctx, resource)
        except ValueError as error:
            return str(error)
        if vault is None:
            return None
        found = ctx.live(f"key_vault/{vault}")
        if found is not None and found.fields.get("properties.enableRbacAuthorization") is not True:
            return (
                f"key_vault/{vault} uses access policies (enableRbacAuthorization is not true): "
                "a role assignment grants nothing there, and access policies cannot be limited "
                "to one secret (least privilege); switch the vault to the Azure RBAC "
                "permission model"
            )
        return None
