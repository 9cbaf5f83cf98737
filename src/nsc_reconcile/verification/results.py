"""The outcome of verification: ``Check`` (one Definition-of-Done item, PASS / FAIL / SKIP,
with evidence) and ``VerifyReport`` (all of them, exit code). Plain data: touches no client.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsc_reconcile.verification.gate import GateResult

EXIT_FAILED = 3  # distinct from 1 (error) and 2 (plan: changes present)


class Status(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Check:
    """One Definition-of-Done item: its outcome and the evidence behind it."""

    id: str
    title: str
    status: Status
    evidence: str
    detail: str = ""  # why it failed or was skipped; empty on PASS

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "evidence": self.evidence,
            "detail": self.detail,
        }


@dataclass
class VerifyReport:
    """Every check of one verification run, in Definition-of-Done order."""

    checks: list[Check]
    environment: str
    subscription_id: str
    resource_group: str
    target: str | None = None
    seconds: float = 0.0
    gate: GateResult | None = None  # the INFRA-READY gate, when the desired state declares one

    def with_status(self, status: Status) -> list[Check]:
        return [c for c in self.checks if c.status is status]

    @property
    def failed(self) -> list[Check]:
        return self.with_status(Status.FAIL)

    @property
    def ok(self) -> bool:
        """No check failed (skipped ones are allowed)."""
        return not self.failed

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 3 (``EXIT_FAILED``) otherwise."""
        return 0 if self.ok else EXIT_FAILED

    def counts(self) -> dict[str, int]:
        return {s.value: len(self.with_status(s)) for s in Status}

    def get(self, check_id: str) -> Check:
        for check in self.checks:
            if check.id == check_id:
                return check
        raise KeyError(check_id)

    def render(self, fmt: str = "text") -> str:
        """``text``, ``json``, ``markdown`` or ``junit`` (JUnit XML, one testcase per check)."""
        from nsc_reconcile.verify_report import render_verify

        return render_verify(self, fmt)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "tool": "nsc-reconcile verify",
            "environment": self.environment,
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "target": self.target,
            "ok": self.ok,
            "counts": self.counts(),
            "seconds": round(self.seconds, 3),
            "checks": [c.to_json() for c in self.checks],
            "gate": self.gate.to_json() if self.gate is not None else None,
        }
