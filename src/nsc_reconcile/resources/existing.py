"""Existing references: read, must exist, never written.

One GET each. They offer outputs to others: a VNet's subnet prefixes, a workspace's
customer id, a Key Vault's URI, any resource's ARM id.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from nsc_reconcile import kinds
from nsc_reconcile.model.existing import ExistingResource
from nsc_reconcile.resources.base import Context, Live, Reconciler, flatten, to_wire


class ExistingReconciler(Reconciler[ExistingResource]):
    """Reads an existing resource of one kind; never written (the protocol's ``write``
    refuses: the engine never calls it for these)."""

    def __init__(self, kind: str, how: kinds.ExistingRead) -> None:
        # One instance per existing kind, from its KindSpec's `existing_read`.
        self.kind = kind  # type: ignore[misc]
        self.arm_type = how.arm_type
        self._how = how

    @property
    def sdk_clients(self) -> tuple[str, ...]:
        return (self._how.client,)

    def _get(self, ctx: Context, group: str, name: str) -> Any:
        operations = getattr(getattr(ctx.clients, self._how.client), self._how.operations)
        return operations.get(group, name)

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

    def output(self, ctx: Context, resource: ExistingResource, live: Live, name: str) -> Any:
        if name == "id":
            return live.id
        if self.kind == "log_analytics_workspace" and name == "customer_id":
            return live.fields.get("properties.customerId")
        if self.kind == "key_vault" and name == "uri":
            return live.fields.get("properties.vaultUri")
        return super().output(ctx, resource, live, name)
