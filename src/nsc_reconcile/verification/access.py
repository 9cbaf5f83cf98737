"""Access and image checks: each declared role assignment present, no broader grant at the
vault for a runtime consumer, the kubelet's AcrPull, each declared image in the registry with
its digest. Reads only: the plan's reads, plus one listing of assignments at the vault per
consumer and the role definitions of the broad roles.
"""

from __future__ import annotations

from typing import Any

from nsc_reconcile.changes import Unknown
from nsc_reconcile.model.access import MANAGEMENT_ROLES, RoleAssignment
from nsc_reconcile.model.images import ContainerImage
from nsc_reconcile.resources.base import to_wire
from nsc_reconcile.resources.grant_words import principal_words
from nsc_reconcile.verification.context import Run, make_check
from nsc_reconcile.verification.results import Check

# Roles that, at a whole vault (or above), give more than reading the secrets a consumer uses.
VAULT_WIDE_ROLES = ("Key Vault Secrets Officer", "Key Vault Administrator")
BROAD_ROLES = (*sorted(MANAGEMENT_ROLES), *VAULT_WIDE_ROLES)


def _grants(run: Run) -> Any:
    from nsc_reconcile.resources import reconciler_for

    return reconciler_for(run.state.role_assignments[0])


def principal_label(grant: RoleAssignment) -> str:
    """How evidence names a grant's principal: as plans do (resources/grant_words.py)."""
    if grant.principal.caller:
        return "the caller (who runs nsc-reconcile)"
    return principal_words(grant.principal)


def check_role_assignment(run: Run, grant: RoleAssignment) -> Check:
    """The declared grant exists: by its deterministic name or an equal one at its scope
    (as the plan read it)."""
    address = f"role_assignment/{grant.name}"
    live = run.live(address)
    evidence = [f"{grant.role} for {principal_label(grant)} on {grant.scope}"]
    problems = []
    if live is None:
        problems.append(f"{address}: no assignment of {grant.role} to {principal_label(grant)}")
    else:
        evidence.append(f"assignment {live.facts.get('name') or live.id}")
    return make_check(address, f"Role assignment {grant.name} present", evidence, problems)


def _role_ids(run: Run, scope: str) -> dict[str, str]:
    """Role definition GUID (lower case) -> name, for ``BROAD_ROLES`` (cached per run)."""
    cached = run.cache.get("broad-role-ids")
    if isinstance(cached, dict):
        return cached
    found: dict[str, str] = {}
    for role in BROAD_ROLES:
        listed = run.clients.authorization.role_definitions.list(
            scope, filter=f"roleName eq '{role}'"
        )
        for definition in listed:
            wire = to_wire(definition)
            found[str(wire["id"]).rstrip("/").rsplit("/", 1)[-1].lower()] = role
    run.cache["broad-role-ids"] = found
    return found


def _at_or_above(scope: str, vault_id: str) -> bool:
    scope, vault_id = scope.rstrip("/").lower(), vault_id.rstrip("/").lower()
    return vault_id == scope or vault_id.startswith(scope + "/")


def check_vault_least_privilege(run: Run, vault: str) -> Check:
    """No runtime consumer holds a broader role than its declared ones at the vault: Owner,
    Contributor or User Access Administrator anywhere the vault's listing shows, or Key Vault
    Secrets Officer / Administrator on the vault or above. Each offender is named."""
    check_id = f"vault-least-privilege/{vault}"
    title = f"No broader grant at key_vault/{vault} for runtime consumers"
    reconciler = _grants(run)
    context = run.engine.context
    vault_id = reconciler.scope_id_of(context, f"key_vault/{vault}")
    roles = _role_ids(run, vault_id)
    consumers: dict[str, str] = {}  # principal id -> label
    for grant in run.state.role_assignments:
        if grant.consumer != "runtime":
            continue
        principal = reconciler.principal_id(context, grant)
        if not isinstance(principal, Unknown):
            consumers.setdefault(principal, principal_label(grant))
    operations = run.clients.authorization.role_assignments
    problems: list[str] = []
    for principal, label in sorted(consumers.items(), key=lambda item: item[1]):
        for assignment in operations.list_for_scope(
            vault_id, filter=f"principalId eq '{principal}'"
        ):
            props = to_wire(assignment).get("properties") or {}
            if str(props.get("principalId", "")).lower() != principal:
                continue
            guid = str(props.get("roleDefinitionId", "")).rstrip("/").rsplit("/", 1)[-1].lower()
            role = roles.get(guid)
            scope = str(props.get("scope", ""))
            if role is None or (role in VAULT_WIDE_ROLES and not _at_or_above(scope, vault_id)):
                continue
            problems.append(f"{label} holds {role} at {scope}")
    evidence = [f"{len(consumers)} runtime consumer(s) listed at the vault: "
                + ", ".join(sorted(consumers.values()))]  # fmt: skip
    return make_check(check_id, title, evidence, problems)


def check_kubelet_acr_pull(run: Run, grant: RoleAssignment) -> Check:
    """The AKS kubelet identity holds AcrPull on the registry (as the plan read it)."""
    check_id = f"acr-pull/{grant.scope_name}"
    title = f"AKS kubelet can pull from {grant.scope}"
    live = run.live(f"role_assignment/{grant.name}")
    evidence = [f"AcrPull for {principal_label(grant)} on {grant.scope}"]
    problems = [] if live is not None else [f"{principal_label(grant)} has no AcrPull"]
    return make_check(check_id, title, evidence, problems)


def check_container_image(run: Run, image: ContainerImage) -> Check:
    """The image is in the registry under its tag with the declared digest."""
    address = f"container_image/{image.name}"
    live = run.live(address)
    evidence = [f"{image.reference} in {image.registry}, want {image.digest}"]
    problems = []
    if live is None:
        problems.append(f"{image.reference} is not in {image.registry}")
    elif live.fields.get("digest") != image.digest:
        problems.append(f"{image.reference} is {live.fields.get('digest')}, not {image.digest}")
    else:
        evidence.append("digest matches")
    return make_check(address, f"Image {image.reference} in the registry", evidence, problems)


def vaults_of_consumers(run: Run) -> list[str]:
    """The vaults runtime consumers are granted on (the vault itself or its secrets)."""
    reconciler = _grants(run) if run.state.role_assignments else None
    found: set[str] = set()
    for grant in run.state.role_assignments:
        if grant.consumer == "runtime" and reconciler is not None:
            try:
                vault = reconciler.vault_of(run.engine.context, grant)
            except ValueError:  # a secret scope without a `secrets` section: the plan says so
                continue
            if vault is not None:
                found.add(vault)
    return sorted(found)
