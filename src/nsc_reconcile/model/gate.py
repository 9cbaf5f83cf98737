"""The INFRA-READY gate (seed §8): which Definition-of-Done checks evidence which of the
team's tracked work items. Data only; ``verification/gate.py`` evaluates it.
"""

from __future__ import annotations

from pydantic import Field

from nsc_reconcile.model.base import Model


class GateItem(Model):
    """One tracked work item and the checks whose PASS evidences it."""

    id: str = Field(
        pattern=r"^[A-Z][A-Z0-9]*-[0-9]+(/[0-9]+)*$",
        description="The work item, e.g. `DEV-044` (or `DEV-005/006` for two items at once).",
    )
    title: str = Field(min_length=1, description="What the item delivers, in a few words.")
    checks: list[str] = Field(
        min_length=1,
        description="Check ids or shell-style patterns (`smoke-postgres*`, `pe-*/nsc-pe-openai`) "
        "of `verify`; the item is done when every matching check PASSes and at least one "
        "matches.",
    )


class Gate(Model):
    """A gate that opens when every item is evidenced (``verify`` ends with it)."""

    name: str = Field(default="INFRA-READY", min_length=1, description="The gate's name.")
    items: list[GateItem] = Field(min_length=1, description="The tracked items it unblocks.")
