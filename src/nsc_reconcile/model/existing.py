"""References to resources that already exist: read, required, never written.

The plan's baseline (seed §2): the VNet and its subnets, NSGs, AKS, ACR, Key Vault, Log
Analytics workspace, the business PostgreSQL server and the existing private DNS zone.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nsc_reconcile.model.base import Model, Resource


class ExistingResource(Resource):
    """An existing resource, by name, optionally in another resource group."""

    existing = True

    resource_group: str | None = Field(
        default=None,
        description="Resource group holding it, when not the state's `resource_group`.",
    )


class Subnet(Model):
    """A subnet of an existing VNet, addressed as `subnet/<vnet>/<subnet>`."""

    name: str = Field(description="Subnet name.")
    role: Literal["private-endpoints", "aks", "databricks", "other"] = Field(
        default="other",
        description="What the subnet is for; private endpoints go in a `private-endpoints` "
        "subnet (the plan's data layer).",
    )


class ExistingVirtualNetwork(ExistingResource):
    """An existing VNet; the subnets listed must exist."""

    kind = "virtual_network"

    subnets: list[Subnet] = Field(
        min_length=1,
        description="Subnets referred to by this state (each must exist).",
    )


class ExistingNetworkSecurityGroup(ExistingResource):
    kind = "network_security_group"


class ExistingAksCluster(ExistingResource):
    kind = "aks_cluster"


class ExistingContainerRegistry(ExistingResource):
    kind = "container_registry"


class ExistingKeyVault(ExistingResource):
    kind = "key_vault"


class ExistingLogAnalyticsWorkspace(ExistingResource):
    kind = "log_analytics_workspace"


class ExistingPostgresqlServer(ExistingResource):
    kind = "postgresql_server"

    role: Literal["business", "langfuse"] = Field(
        default="business",
        description="`business` for the application database (never to be used by LangFuse).",
    )


class ExistingPrivateDnsZone(ExistingResource):
    kind = "private_dns_zone"


class Existing(Model):
    """Resources this state refers to but never writes."""

    virtual_networks: list[ExistingVirtualNetwork] = Field(
        default_factory=list, description="VNets and the subnets used (seed: nsc-vnet-dev)."
    )
    network_security_groups: list[ExistingNetworkSecurityGroup] = Field(
        default_factory=list, description="NSGs that receive our rules (not replaced)."
    )
    aks_clusters: list[ExistingAksCluster] = Field(
        default_factory=list, description="AKS clusters that run workloads."
    )
    container_registries: list[ExistingContainerRegistry] = Field(
        default_factory=list, description="ACRs the images come from."
    )
    key_vaults: list[ExistingKeyVault] = Field(
        default_factory=list, description="Key Vaults that hold the secrets."
    )
    log_analytics_workspaces: list[ExistingLogAnalyticsWorkspace] = Field(
        default_factory=list, description="Workspaces for agent events and alerts."
    )
    postgresql_servers: list[ExistingPostgresqlServer] = Field(
        default_factory=list, description="Existing servers (the business DB)."
    )
    private_dns_zones: list[ExistingPrivateDnsZone] = Field(
        default_factory=list, description="Existing privatelink zones that get records."
    )
