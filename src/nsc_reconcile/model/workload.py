"""The LangFuse workload on AKS: web + worker Deployments and an internal ClusterIP Service.

Never exposed outside the cluster: the Service is ClusterIP and no Ingress or LoadBalancer is
allowed. Images come from the existing ACR; secrets come from Key Vault secrets by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from nsc_reconcile.model.base import (
    PRIVATE_ONLY,
    SEPARATE_DB,
    Model,
    Reference,
    Resource,
    name_of,
    policy_violation,
)
from nsc_reconcile.model.images import Image

if TYPE_CHECKING:
    from nsc_reconcile.model.access import UserAssignedIdentity

K8sName = Annotated[str, name_of("kubernetes_name")]

# A Kubernetes quantity (apimachinery's grammar): a decimal number with an optional SI
# (n u m k M G T P E), binary (Ki Mi Gi Ti Pi Ei) or exponent (e3) suffix. Compared
# canonically when read back (`0.5` is `500m`, `1Gi` is `1024Mi`).
QUANTITY = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"


class Component(Model):
    name: K8sName = Field(description="Deployment name.")
    image: Image = Field(description="Container image (from the ACR).")
    replicas: int = Field(default=1, ge=1, le=20, description="Pod replicas.")
    port: int = Field(ge=1, le=65535, description="Container port.")
    cpu: str = Field(
        default="500m",
        pattern=QUANTITY,
        description="CPU request, a Kubernetes quantity (`500m`, `0.5`, `2`).",
    )
    memory: str = Field(
        default="1Gi",
        pattern=QUANTITY,
        description="Memory request and limit, a Kubernetes quantity (`1Gi`, `1024Mi`).",
    )


class Service(Model):
    name: K8sName = Field(description="Service name.")
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] = Field(
        default="ClusterIP", description="Must be `ClusterIP` (internal only)."
    )
    port: int = Field(default=3000, ge=1, le=65535, description="Service port.")

    @field_validator("type")
    @classmethod
    def _cluster_ip(cls, value: str) -> str:
        if value != "ClusterIP":
            raise policy_violation(
                PRIVATE_ONLY,
                f"the LangFuse Service must be ClusterIP; {value} exposes it outside the cluster",
            )
        return value


class LangfuseDatabase(Model):
    server: str = Field(description="PostgreSQL server (`postgresql_server/<name>`), dedicated.")
    database: str = Field(description="Database on that server.")
    username_secret: str | None = Field(
        default=None,
        description="Key Vault secret with the DB user; default: the server's admin login.",
    )
    password_secret: str = Field(description="Key Vault secret with the DB password.")


class InClusterDependency(Model):
    """A LangFuse dependency run inside the cluster (internal ClusterIP only)."""

    mode: Literal["in_cluster"] = Field(
        default="in_cluster", description="Run inside the cluster as a StatefulSet."
    )
    image: Image = Field(description="Container image (from the ACR).")
    password_secret: str | None = Field(default=None, description="Key Vault secret, if any.")
    storage_gb: int = Field(default=8, ge=1, le=1024, description="Persistent volume size.")


class Langfuse(Resource):
    """Self-hosted LangFuse (v3: web + worker, PostgreSQL, ClickHouse, Redis, blob storage)."""

    kind = "kubernetes_workload"

    cluster: str = Field(description="Existing AKS cluster (`aks_cluster/<name>`).")
    namespace: K8sName = Field(default="langfuse", description="Kubernetes namespace.")
    web: Component = Field(description="The web Deployment (the plan's `langfuse`).")
    worker: Component = Field(description="The worker Deployment.")
    service: Service = Field(description="The internal Service (the plan's `langfuse-internal`).")
    ingress: None = Field(
        default=None, description="Not allowed: LangFuse is internal only (no Ingress)."
    )
    database: LangfuseDatabase = Field(description="The dedicated LangFuse PostgreSQL.")
    clickhouse: InClusterDependency = Field(description="ClickHouse (traces, observations).")
    redis: InClusterDependency = Field(description="Redis/Valkey (queue and cache).")
    blob_storage: InClusterDependency = Field(
        description="S3-compatible event/media storage (MinIO in the cluster)."
    )
    key_vault: str = Field(description="Key Vault the secrets are read from (`key_vault/<name>`).")
    secret_env: dict[str, str] = Field(
        description="Environment variable -> Key Vault secret name, synced into a Kubernetes "
        "Secret (NEXTAUTH_SECRET, SALT, ENCRYPTION_KEY, LANGFUSE_INIT_* keys ...)."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Plain (non-secret) environment variables."
    )
    adopt_services: list[K8sName] = Field(
        default_factory=list,
        description="Services of the namespace that this workload does not declare but may "
        "switch to ClusterIP when they are exposed (LoadBalancer/NodePort). Any other exposed "
        "Service, and any Ingress, is reported (plan note, verify FAIL) and left alone.",
    )
    force_conflicts: bool = Field(
        default=False,
        description="Server-side apply with force: take over fields of the Deployments, "
        "StatefulSets, ServiceAccount and Namespace that another field manager (kubectl, a "
        "controller) owns. Off, such a conflict stops apply and names that manager. The "
        "Services and the Secret are always taken back (private-only; Key Vault is the source "
        "of the values).",
    )
    identity: str | None = Field(
        default=None,
        description="Workload identity: a declared `user_assigned_identity` (by name). Its "
        "`client_id` goes on the ServiceAccount (`azure.workload.identity/client-id`) and the "
        'pods get the label `azure.workload.identity/use: "true"`. The identity must declare '
        "a federated credential for this cluster, namespace and ServiceAccount (the workload's "
        "name).",
    )
    secrets_delivery: Literal["tool", "csi"] = Field(
        default="tool",
        description="How the pods get the Key Vault values. `tool`: nsc-reconcile reads them "
        "and writes the Kubernetes Secret. `csi`: the cluster's Secrets Store CSI driver "
        "(add-on `azure-keyvault-secrets-provider`) fetches them as `identity` (required) "
        "through a SecretProviderClass and syncs the same Secret; nsc-reconcile writes no "
        "value.",
    )

    @field_validator("secrets_delivery")
    @classmethod
    def _csi_needs_identity(cls, value: str, info: ValidationInfo) -> str:
        if value == "csi" and not info.data.get("identity"):
            raise PydanticCustomError(
                "secrets_delivery",
                "`secrets_delivery: csi` needs `identity`: the CSI driver reads Key Vault as "
                "the workload identity (declare a user_assigned_identity with a federated "
                "credential for this workload's ServiceAccount and name it here)",
                {},
            )
        return value

    @field_validator("ingress", mode="before")
    @classmethod
    def _no_ingress(cls, value: object) -> object:
        if value is not None:
            raise policy_violation(
                PRIVATE_ONLY, "LangFuse is an internal service; an Ingress would expose it"
            )
        return value

    @field_validator("database")
    @classmethod
    def _dedicated(cls, value: LangfuseDatabase) -> LangfuseDatabase:
        # The cross-resource part (is that server the business one?) is in policy.py.
        if value.server.strip() == "":
            raise policy_violation(SEPARATE_DB, "name the dedicated LangFuse server")
        return value

    @property
    def details(self) -> str:
        return (
            f"namespace {self.namespace}: Deployment {self.web.name}, Deployment "
            f"{self.worker.name}, Service {self.service.name} ({self.service.type}), "
            "ClickHouse, Redis, MinIO"
        )

    def references(self) -> list[Reference]:
        refs = [
            Reference(("cluster",), f"aks_cluster/{self.cluster}"),
            Reference(("key_vault",), f"key_vault/{self.key_vault}"),
            Reference(("database", "server"), f"postgresql_server/{self.database.server}"),
            Reference(
                ("database", "database"),
                f"postgresql_database/{self.database.server}/{self.database.database}",
            ),
            Reference(("database", "password_secret"),
                      f"key_vault_secret/{self.database.password_secret}"),
        ]  # fmt: skip
        if self.database.username_secret:
            refs.append(
                Reference(("database", "username_secret"),
                          f"key_vault_secret/{self.database.username_secret}")
            )  # fmt: skip
        for part in ("web", "worker"):
            component: Component = getattr(self, part)
            refs += component.image.references((part, "image"))
        for part in ("clickhouse", "redis", "blob_storage"):
            dep: InClusterDependency = getattr(self, part)
            refs += dep.image.references((part, "image"))
            if dep.password_secret:
                refs.append(
                    Reference((part, "password_secret"), f"key_vault_secret/{dep.password_secret}")
                )
        refs += [
            Reference(("secret_env", var), f"key_vault_secret/{secret}")
            for var, secret in self.secret_env.items()
        ]
        if self.identity is not None:
            refs.append(Reference(("identity",), f"user_assigned_identity/{self.identity}"))
        return refs


def federation_problem(
    workload: Langfuse, identities: Sequence[UserAssignedIdentity]
) -> str | None:
    """What is missing for ``workload``'s identity to sign in from its pods: a federated
    credential of that identity for the workload's cluster, namespace and ServiceAccount
    (named after the workload). None when it is declared, or no identity is set (an undeclared
    identity is the graph's error)."""
    if workload.identity is None:
        return None
    identity = next((i for i in identities if i.name == workload.identity), None)
    if identity is None:
        return None
    for credential in identity.federated_credentials:
        if (credential.cluster, credential.namespace, credential.service_account) == (
            workload.cluster,
            workload.namespace,
            workload.name,
        ):
            return None
    return (
        f"langfuse.identity: user_assigned_identity/{identity.name} has no federated credential "
        f"for this workload; add to its federated_credentials: {{name: fic-{workload.name}, "
        f"cluster: {workload.cluster}, namespace: {workload.namespace}, service_account: "
        f"{workload.name}}}"
    )
