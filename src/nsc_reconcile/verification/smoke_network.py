"""Smoke test "network" (seed §5 phase 4): not built yet."""

from __future__ import annotations

from nsc_reconcile.verification.context import Run, make_check
from nsc_reconcile.verification.results import Check


def smoke_network(run: Run) -> list[Check]:  # noqa: ARG001
    return [make_check("smoke-network", "Smoke: network", [], [], skip="not built yet")]
