"""Orphans as values: live resources carrying nsc-reconcile's ownership marks for this
environment (or `shared`) that the desired state no longer declares.

Plans list them ("not declared; left in place"); `apply --prune` deletes them (pruning.py)
in the kinds' deletion order (`kinds.delete_order()`), never a data-holding one without
`--allow-data-loss`, never a shared one. No SDK: the standard library and the kind registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nsc_reconcile import kinds

# The nsc-environment value of a resource every environment may declare (resources/base.py).
SHARED_ENVIRONMENT = "shared"

NEEDS_DATA_LOSS = "holds data: --prune deletes it only with --allow-data-loss"
NEVER_PRUNED_SHARED = (
    "shared with other environments (nsc-environment=shared): never pruned, other "
    "environments may declare it; delete it by hand once none does"
)


@dataclass(frozen=True)
class Orphan:
    """One live resource that carries our marks and that nothing declares any more.

    ``address`` is in the desired state's terms (``nsg_rule/<nsg>/<rule>``; a Kubernetes
    object: ``kubernetes_workload/<workload>/<Kind>/<name>``), ``id`` the ARM id (or the
    Kubernetes path), ``environment`` the environment its marks name (or ``shared``),
    ``holds_data`` whether deleting it deletes data (PostgreSQL, Key Vault secrets, tables,
    OpenAI accounts), ``details`` what it is in the file's words when the address does not
    say (a role assignment: ``grants <role> on <scope> to <principal>``)."""

    address: str
    id: str
    environment: str
    holds_data: bool = False
    details: str | None = None

    @property
    def kind(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def shared(self) -> bool:
        return self.environment == SHARED_ENVIRONMENT

    def refusal(self, allow_data_loss: bool) -> str | None:
        """Why `apply --prune` (with or without ``allow_data_loss``) leaves it in place;
        None when it deletes it."""
        if self.shared:
            return NEVER_PRUNED_SHARED
        if self.holds_data and not allow_data_loss:
            return NEEDS_DATA_LOSS
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "id": self.id,
            "environment": self.environment,
            "holds_data": self.holds_data,
            "needs_allow_data_loss": self.holds_data and not self.shared,
            "prunable": not self.shared,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Orphan:
        return cls(
            address=str(data["address"]),
            id=str(data["id"]),
            environment=str(data["environment"]),
            holds_data=bool(data.get("holds_data", False)),
            details=data.get("details"),  # absent in plans saved before it existed
        )


def deletion_order(orphans: list[Orphan]) -> list[Orphan]:
    """``orphans`` in the order they are deleted (`kinds.delete_order()`; within a kind by
    address,
    children before their parent). Pure."""
    rank = {kind: index for index, kind in enumerate(kinds.delete_order())}
    return sorted(
        orphans, key=lambda o: (rank.get(o.kind, len(rank)), -o.address.count("/"), o.address)
    )


def to_prune(orphans: list[Orphan], allow_data_loss: bool) -> list[Orphan]:
    """The orphans `apply --prune` deletes, in deletion order."""
    return deletion_order([o for o in orphans if o.refusal(allow_data_loss) is None])
