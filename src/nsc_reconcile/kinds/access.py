"""The access kinds: user-assigned identities, their federated credentials (AKS workload
identity) and role assignments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nsc_reconcile.kinds import KindSpec, Output, Parent, register
from nsc_reconcile.model.access import (
    VAULT_WRITER_ROLES,
    FederatedCredential,
    RoleAssignment,
    UserAssignedIdentity,
)
from nsc_reconcile.naming import RULES, NameRule

_MODULE = "nsc_reconcile.resources.access"


def secrets_after_deployer_grants(state: Any) -> Iterator[tuple[str, str]]:
    """Each Key Vault secret after the deployers' grants that let them write its vault
    (Secrets Officer / Administrator on the vault or the resource group): on an RBAC vault
    nothing can be written before."""
    secrets = state.secrets
    if secrets is None:
        return
    grants = [
        g.address
        for g in state.role_assignments
        if g.consumer == "deployer"
        and g.role in VAULT_WRITER_ROLES
        and g.scope in (f"key_vault/{secrets.vault}", "resource_group")
    ]
    for item in secrets.items:
        for grant in grants:
            yield item.address, grant


register(
    KindSpec(
        kind="user_assigned_identity",
        model=UserAssignedIdentity,
        reconciler=f"{_MODULE}:UserAssignedIdentityReconciler",
        name_rule=NameRule(
            3,
            128,
            r"[A-Za-z0-9][A-Za-z0-9_-]*",
            "alphanumerics, hyphens and underscores; start with an alphanumeric",
        ),
        collection=("user_assigned_identities",),
        children=("federated_credentials",),
        phase=5,
        sdk_clients=("msi",),
        outputs=(Output("principal_id"), Output("client_id")),
    )
)
register(
    KindSpec(
        kind="federated_identity_credential",
        model=FederatedCredential,
        reconciler=f"{_MODULE}:FederatedCredentialReconciler",
        name_rule=NameRule(
            3,
            120,
            r"[A-Za-z0-9][A-Za-z0-9_-]*",
            "alphanumerics, hyphens and underscores; start with an alphanumeric",
        ),
        phase=6,
        parent=Parent("user_assigned_identity", "identity"),
        sdk_clients=("msi",),
    )
)
register(
    KindSpec(
        kind="role_assignment",
        model=RoleAssignment,
        reconciler=f"{_MODULE}:RoleAssignmentReconciler",
        # The label of the grant in the file; its Azure name is a UUID v5 (resources/access.py).
        name_rule=RULES["kubernetes_name"],
        collection=("role_assignments",),
        phase=105,  # after the secrets (100) they may be scoped to, before the workload (110)
        sdk_clients=("authorization",),
        # Right after an identity is created the directory may not know its principal yet
        # (replication delay; Azure Service Operator's recordings show it): try again, for
        # minutes when the identity was created by this apply.
        transient_codes=frozenset({"PrincipalNotFound"}),
        propagation_codes=frozenset({"PrincipalNotFound"}),
        edges=secrets_after_deployer_grants,
    )
)
