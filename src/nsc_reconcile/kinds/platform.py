"""The platform kinds: Key Vault (existing) and its secrets, the AKS cluster and container
registry (existing), and the LangFuse workload on the cluster."""

from __future__ import annotations

from nsc_reconcile.kinds import ExistingRead, KindSpec, Parent, register
from nsc_reconcile.model.existing import (
    ExistingAksCluster,
    ExistingContainerRegistry,
    ExistingKeyVault,
)
from nsc_reconcile.model.secrets import KeyVaultSecret
from nsc_reconcile.model.workload import Langfuse
from nsc_reconcile.naming import RULES, NameRule

register(
    KindSpec(
        kind="key_vault",
        existing_model=ExistingKeyVault,
        name_rule=NameRule(
            3,
            24,
            r"[A-Za-z](?:(?!--)[A-Za-z0-9-])*[A-Za-z0-9]",
            "alphanumerics and hyphens; start with a letter, end with a letter or digit, no "
            "consecutive hyphens",
        ),
        existing_read=ExistingRead("Microsoft.KeyVault/vaults", "keyvault_mgmt", "vaults"),
    )
)
register(
    KindSpec(
        kind="key_vault_secret",
        model=KeyVaultSecret,
        reconciler="nsc_reconcile.resources.secrets:KeyVaultSecretReconciler",
        name_rule=NameRule(1, 127, r"[A-Za-z0-9-]+", "alphanumerics and hyphens"),
        collection=("secrets", "items"),
        phase=100,
        parent=Parent("key_vault", "vault", held_by=("secrets",)),
        sdk_clients=("keyvault_mgmt", "secret_client"),
        # Right after the deployer's grant on the vault, Key Vault may still refuse it
        # (403 ForbiddenByRbac: "please observe propagation time"): try again, for minutes
        # when the grant was written by this apply (Azure RBAC changes can take up to 10
        # minutes to take effect), a few times otherwise (a grant that is really missing).
        transient_codes=frozenset({"ForbiddenByRbac"}),
        propagation_codes=frozenset({"ForbiddenByRbac"}),
    )
)
register(
    KindSpec(
        kind="aks_cluster",
        existing_model=ExistingAksCluster,
        name_rule=NameRule(
            1,
            63,
            r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?",
            "alphanumerics, underscores and hyphens; start and end with an alphanumeric",
        ),
        existing_read=ExistingRead(
            "Microsoft.ContainerService/managedClusters", "containerservice", "managed_clusters"
        ),
    )
)
register(
    KindSpec(
        kind="container_registry",
        existing_model=ExistingContainerRegistry,
        name_rule=NameRule(5, 50, r"[A-Za-z0-9]+", "alphanumerics only"),
        existing_read=ExistingRead(
            "Microsoft.ContainerRegistry/registries", "containerregistry", "registries"
        ),
    )
)
register(
    KindSpec(
        kind="kubernetes_workload",
        model=Langfuse,
        reconciler="nsc_reconcile.resources.workload:LangfuseReconciler",
        name_rule=RULES["kubernetes_name"],
        collection=("langfuse",),
        phase=110,
        sdk_clients=("containerservice", "kubernetes_api_client", "secret_client"),
    )
)
