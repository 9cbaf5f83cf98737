"""The ARM plane: ``World`` (resource store + engine, one generic lifecycle for all types).

Kinds (``emulator/kinds/*``) receive a ``World`` and use only its documented API; the HTTP
server hands ARM requests to ``World.handle``.
"""

from __future__ import annotations

from nsc_reconcile.emulator.arm.ids import normalize_location, parent_id, resource_type_of
from nsc_reconcile.emulator.arm.world import DEFAULT_SUBSCRIPTION_ID, World, discover_kinds

__all__ = [
    "DEFAULT_SUBSCRIPTION_ID",
    "World",
    "discover_kinds",
    "normalize_location",
    "parent_id",
    "resource_type_of",
]
