"""Existing references: read, must exist, never written.

One GET each. They offer outputs to others: a VNet's subnet prefixes, a workspace's
customer id, a Key Vault's URI, any resource's ARM id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from nsc_reconcile.model.existing import ExistingResource
from nsc_reconcile.resources.base import Context, Live, Reconciler, flatten, to_wire

Getter = Callable[[Context, str, str], Any]

# kind -> (ARM provider/type, the `Clients` member it is read through, how to GET it)
_TYPES: dict[str, tuple[str, str, Getter]] = {
    "virtual_network": (
        "Microsoft.Network/virtualNetworks",
        "network",
        lambda ctx, rg, name: ctx.clients.network.virtual_networks.get(rg, name),
    ),
    "network_security_group": (
        "Microsoft.Network/networkSecurityGroups",
        "network",
        lambda ctx, rg, name: ctx.clients.network.network_security_groups.get(rg, name),
    ),
    "aks_cluster": (
        "Microsoft.ContainerService/managedClusters",
        "containerservice",
        lambda ctx, rg, name: ctx.clients.containerservice.managed_clusters.get(rg, name),
    ),
    "container_registry": (
        "Microsoft.ContainerRegistry/registries",
        "containerregistry",
        lambda ctx, rg, name: ctx.clients.containerregistry.registries.get(rg, name),
    ),
    "key_vault": (
        "Microsoft.KeyVault/vaults",
        "keyvault_mgmt",
        lambda ctx, rg, name: ctx.clients.keyvault_mgmt.vaults.get(rg, name),
    ),
    "log_analytics_workspace": (
        "Microsoft.OperationalInsights/workspaces",
        "loganalytics",
        lambda ctx, rg, name: ctx.clients.loganalytics.workspaces.get(rg, name),
    ),
    "postgresql_server": (
        "Microsoft.DBforPostgreSQL/flexibleServers",
        "postgres",
        lambda ctx, rg, name: ctx.clients.postgres.servers.get(rg, name),
    ),
    "private_dns_zone": (
        "Microsoft.Network/privateDnsZones",
        "privatedns",
        lambda ctx, rg, name: ctx.clients.privatedns.private_zones.get(rg, name),
    ),
}


class ExistingReconciler(Reconciler[ExistingResource]):
    """Reads an existing resource of one kind; ``write`` is never called for these."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # type: ignore[misc]  # one instance per existing kind
        self.arm_type, client, self._get = _TYPES[kind]
        self.sdk_clients = (client,)  # type: ignore[misc]

    def resource_id(self, ctx: Context, resource: ExistingResource) -> str:
        return f"{ctx.rg_id(resource.resource_group)}/providers/{self.arm_type}/{resource.name}"

    def read(self, ctx: Context, resource: ExistingResource) -> Live | None:
        group = resource.resource_group or ctx.resource_group
        try:
            raw = self._get(ctx, group, resource.name)
        except ResourceNotFoundError:
            return None
        wire = to_wire(raw)
        facts: dict[str, Any] = {}
        if self.kind == "virtual_network":
            facts["subnets"] = {
                s.get("name"): s for s in wire.get("properties", {}).get("subnets", [])
            }
        return Live(
            id=str(wire.get("id") or self.resource_id(ctx, resource)),
            fields=flatten({k: v for k, v in wire.items() if k != "etag"}),
            raw=raw,
            etag=None,  # existing references are never written: no ETag games
            managed=None,
            facts=facts,
        )

    def desired(self, ctx: Context, resource: ExistingResource) -> dict[str, Any]:
        return {}

    def write(self, ctx: Context, resource: ExistingResource, live: Live | None) -> None:
        raise RuntimeError(f"{self.kind}/{resource.name} is an existing reference: never written")

    def output(self, ctx: Context, resource: ExistingResource, live: Live, name: str) -> Any:
        if name == "id":
            return live.id
        if self.kind == "log_analytics_workspace" and name == "customer_id":
            return live.fields.get("properties.customerId")
        if self.kind == "key_vault" and name == "uri":
            return live.fields.get("properties.vaultUri")
        return super().output(ctx, resource, live, name)
