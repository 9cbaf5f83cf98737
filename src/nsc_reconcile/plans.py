"""Plans and apply results as values: inspect them, render them, save and load them.

A Plan lists, in dependency order, what apply will do to each resource and the field changes
behind it. The JSON form (format 1, documented in docs/plan-format.md) carries no secret
value, only "(sensitive)" markers and fingerprints of live state.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsc_reconcile.changes import Action, FieldChange, ReplacePolicy, Unknown

PLAN_FORMAT = 1


@dataclass
class ResourcePlan:
    """What apply will do to one resource, and why."""

    address: str
    action: Action
    changes: list[FieldChange] = field(default_factory=list)
    reason: str | None = None
    id: str | None = None
    fingerprint: str | None = None  # of the live resource when planned; None if absent
    notes: list[str] = field(default_factory=list)
    # For a replacement: the kind's policy (automated, manual, data-loss); else None.
    replace_policy: ReplacePolicy | None = None

    @property
    def kind(self) -> str:
        return self.address.split("/", 1)[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "action": self.action.value,
            "id": self.id,
            "reason": self.reason,
            "fingerprint": self.fingerprint,
            "notes": self.notes,
            "replace_policy": self.replace_policy.value if self.replace_policy else None,
            "changes": [c.to_json() for c in self.changes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResourcePlan:
        policy = data.get("replace_policy")
        return cls(
            address=data["address"],
            action=Action(data["action"]),
            changes=[
                FieldChange(c["path"], c["before"], c["after"], c["requires_replacement"])
                for c in data["changes"]
            ],
            reason=data.get("reason"),
            id=data.get("id"),
            fingerprint=data.get("fingerprint"),
            notes=list(data.get("notes", [])),
            replace_policy=ReplacePolicy(policy) if policy else None,
        )


CHANGING = (Action.CREATE, Action.UPDATE, Action.REPLACE)


@dataclass
class Plan:
    """The result of comparing a desired state with live state."""

    environment: str
    subscription_id: str
    resource_group: str
    resources: list[ResourcePlan]
    state_file: str | None = None
    state_digest: str | None = None
    targets: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[ResourcePlan]:
        """Resources apply will write (create, update, replace)."""
        return [r for r in self.resources if r.action in CHANGING]

    @property
    def blocked(self) -> list[ResourcePlan]:
        return [r for r in self.resources if r.action is Action.BLOCKED]

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def get(self, address: str) -> ResourcePlan:
        for resource in self.resources:
            if resource.address == address:
                return resource
        raise KeyError(address)

    def counts(self) -> dict[str, int]:
        counts = {action.value: 0 for action in Action}
        for resource in self.resources:
            counts[resource.action.value] += 1
        return counts

    def render(self, fmt: str = "text") -> str:
        """The plan as `text` (terminals), `json` (machines) or `markdown` (reviews)."""
        from nsc_reconcile.report import render_plan

        return render_plan(self, fmt)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "tool": "nsc-reconcile",
            "environment": self.environment,
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "state_file": self.state_file,
            "state_digest": self.state_digest,
            "targets": self.targets,
            "unsupported": self.unsupported,
            "summary": self.counts(),
            "resources": [r.to_json() for r in self.resources],
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        if data.get("format") != PLAN_FORMAT or data.get("tool") != "nsc-reconcile":
            raise ValueError(
                f"not an nsc-reconcile plan of format {PLAN_FORMAT} (format={data.get('format')!r})"
            )
        return cls(
            environment=data["environment"],
            subscription_id=data["subscription_id"],
            resource_group=data["resource_group"],
            resources=[ResourcePlan.from_json(r) for r in data["resources"]],
            state_file=data.get("state_file"),
            state_digest=data.get("state_digest"),
            targets=list(data.get("targets", [])),
            unsupported=list(data.get("unsupported", [])),
        )

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


class Outcome(enum.StrEnum):
    """What apply did to one resource."""

    CREATED = "created"
    UPDATED = "updated"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"
    FOUND = "found"  # existing reference, present
    FAILED = "failed"
    SKIPPED = "skipped"  # a dependency failed or was skipped
    BLOCKED = "blocked"  # refused: missing reference, foreign resource, replacement


@dataclass
class ResourceResult:
    address: str
    outcome: Outcome
    changes: list[FieldChange] = field(default_factory=list)
    detail: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
            "changes": [c.to_json() for c in self.changes],
        }


@dataclass
class ApplyResult:
    """What one apply did, resource by resource."""

    resources: list[ResourceResult]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        bad = (Outcome.FAILED, Outcome.SKIPPED, Outcome.BLOCKED)
        return not any(r.outcome in bad for r in self.resources)

    @property
    def writes(self) -> list[ResourceResult]:
        written = (Outcome.CREATED, Outcome.UPDATED, Outcome.REPLACED)
        return [r for r in self.resources if r.outcome in written]

    def get(self, address: str) -> ResourceResult:
        for resource in self.resources:
            if resource.address == address:
                return resource
        raise KeyError(address)

    def counts(self) -> dict[str, int]:
        counts = {outcome.value: 0 for outcome in Outcome}
        for resource in self.resources:
            counts[resource.outcome.value] += 1
        return counts

    def render(self, fmt: str = "text") -> str:
        from nsc_reconcile.report import render_result

        return render_result(self, fmt)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "summary": self.counts(),
            "resources": [r.to_json() for r in self.resources],
        }


__all__ = [
    "Action",
    "ApplyResult",
    "FieldChange",
    "Outcome",
    "Plan",
    "ReplacePolicy",
    "ResourcePlan",
    "ResourceResult",
    "Unknown",
]
