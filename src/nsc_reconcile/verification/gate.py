"""Evaluating the INFRA-READY gate (seed §8) over a verification's checks: an item is DONE when
at least one check matches its patterns and every matching check PASSed; the gate is OPEN when
every item is done. A SKIP is not evidence (a smoke that did not run proves nothing).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from nsc_reconcile.model.gate import Gate
from nsc_reconcile.verification.results import Check, Status


@dataclass(frozen=True)
class GateItemResult:
    id: str
    title: str
    done: bool
    evidence: tuple[str, ...]  # "PASS check-id" per matching check
    reason: str  # why it is not done; empty when done

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": "DONE" if self.done else "NOT DONE",
            "evidence": list(self.evidence),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class GateResult:
    name: str
    items: tuple[GateItemResult, ...]

    @property
    def open(self) -> bool:
        return all(item.done for item in self.items)

    @property
    def status(self) -> str:
        return "OPEN" if self.open else "CLOSED"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "items": [item.to_json() for item in self.items],
        }


def evaluate_gate(gate: Gate, checks: list[Check], smoked: bool) -> GateResult:
    """The gate over ``checks``; ``smoked`` says whether smokes ran (for the reason text)."""
    results = []
    for item in gate.items:
        matched = [c for c in checks if any(fnmatch.fnmatchcase(c.id, p) for p in item.checks)]
        evidence = tuple(f"{c.status.value} {c.id}" for c in matched)
        if not matched:
            hint = "" if smoked else " (smoke checks run only with --smoke)"
            reason = f"no check matches {', '.join(item.checks)}{hint}"
            results.append(GateItemResult(item.id, item.title, False, evidence, reason))
            continue
        failed = [c.id for c in matched if c.status is Status.FAIL]
        skipped = [c.id for c in matched if c.status is Status.SKIP]
        reasons = []
        if failed:
            reasons.append("FAIL: " + ", ".join(failed))
        if skipped:
            reasons.append("not evidenced (SKIP): " + ", ".join(skipped))
        results.append(
            GateItemResult(item.id, item.title, not reasons, evidence, "; ".join(reasons))
        )
    return GateResult(gate.name, tuple(results))
