"""The platform kinds: Key Vault (existing) and its secrets, the AKS cluster and container
registry (existing), and the LangFuse workload on the cluster."""

from __future__ import annotations

from nsc_reconcile.kinds import KindSpec, register
from nsc_reconcile.model.existing import (
    ExistingAksCluster,
    ExistingContainerRegistry,
    ExistingKeyVault,
)
from nsc_reconcile.model.secrets import KeyVaultSecret
from nsc_reconcile.model.workload import Langfuse

register(KindSpec(kind="key_vault", existing_model=ExistingKeyVault))
register(
    KindSpec(
        kind="key_vault_secret", model=KeyVaultSecret, reconciler="nsc_reconcile.resources.secrets"
    )
)
register(KindSpec(kind="aks_cluster", existing_model=ExistingAksCluster))
register(KindSpec(kind="container_registry", existing_model=ExistingContainerRegistry))
register(
    KindSpec(
        kind="kubernetes_workload", model=Langfuse, reconciler="nsc_reconcile.resources.workload"
    )
)
