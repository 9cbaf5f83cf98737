"""Smoke test "postgres" (seed §5 phase 4): not built yet."""

from __future__ import annotations

from nsc_reconcile.verification.context import Run, make_check
from nsc_reconcile.verification.results import Check


def smoke_postgres(run: Run) -> list[Check]:  # noqa: ARG001
    return [make_check("smoke-postgres", "Smoke: postgres", [], [], skip="not built yet")]
