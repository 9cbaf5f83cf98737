"""Plans and apply results as values: inspect them, render them, save and load them.

A Plan lists, in dependency order, what apply will do to each resource and the field changes
behind it. The JSON documents (format 2, documented in docs/plan-format.md: a plan, an apply
report) carry no secret value, only "(sensitive)" markers and fingerprints of live state.
A saved plan is recognised by its content (``read_plan``), never by its file name.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsc_reconcile.changes import Action, FieldChange, ReplacePolicy, Unknown
from nsc_reconcile.orphans import Orphan

# The version of every JSON document the tool writes (plan, apply report, validation,
# events). 2: plan action `no-change` became `unchanged`, apply outcome `found` became `read`,
# and documents say their `kind`. Format 1 plans are still read (their words translated).
PLAN_FORMAT = 2
TOOL = "nsc-reconcile"
_READABLE_FORMATS = (1, 2)
_FORMAT_1_ACTIONS = {"no-change": "unchanged"}


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
    # What it is in the file's words (Reconciler.describe: a grant's who, which role, on
    # what); None for kinds whose changes speak for themselves.
    description: str | None = None

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
            "description": self.description,
            "changes": [c.to_json() for c in self.changes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResourcePlan:
        policy = data.get("replace_policy")
        action = _FORMAT_1_ACTIONS.get(data["action"], data["action"])
        return cls(
            address=data["address"],
            action=Action(action),
            changes=[
                FieldChange(c["path"], c["before"], c["after"], c["requires_replacement"])
                for c in data["changes"]
            ],
            reason=data.get("reason"),
            id=data.get("id"),
            fingerprint=data.get("fingerprint"),
            notes=list(data.get("notes", [])),
            replace_policy=ReplacePolicy(policy) if policy else None,
            description=data.get("description"),
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
    # Resources with our marks for this environment that nothing declares (left in place;
    # `apply --prune` deletes them), and what was not looked for and why (orphans.py).
    orphans: list[Orphan] = field(default_factory=list)
    orphans_not_searched: list[str] = field(default_factory=list)

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

    def render(
        self, fmt: str = "text", *, verbose: bool = False, show_unchanged: bool = False
    ) -> str:
        """The plan as `text` (terminals), `json` (machines) or `markdown` (reviews); text and
        Markdown summarise Kubernetes objects unless ``verbose`` and leave out unchanged
        resources (saying how many) unless ``show_unchanged``."""
        from nsc_reconcile.report import render_plan

        return render_plan(self, fmt, verbose=verbose, show_unchanged=show_unchanged)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "tool": TOOL,
            "kind": "plan",
            "environment": self.environment,
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "state_file": self.state_file,
            "state_digest": self.state_digest,
            "targets": self.targets,
            "unsupported": self.unsupported,
            "summary": self.counts(),
            "resources": [r.to_json() for r in self.resources],
            "orphans": [o.to_json() for o in self.orphans],
            "orphans_not_searched": self.orphans_not_searched,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        """Raises ValueError when ``data`` is not a plan this version reads."""
        if data.get("tool") != TOOL or data.get("kind", "plan") != "plan":
            raise ValueError(f"not an {TOOL} plan (kind={data.get('kind')!r})")
        if data.get("format") not in _READABLE_FORMATS:
            raise ValueError(
                f"plan format {data.get('format')!r} is not one this version reads "
                f"({', '.join(map(str, _READABLE_FORMATS))}); make the plan again"
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
            orphans=[Orphan.from_json(o) for o in data.get("orphans", [])],
            orphans_not_searched=list(data.get("orphans_not_searched", [])),
        )

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def read_plan(path: str | Path) -> Plan | None:
    """The saved plan in ``path``, recognised by its content (a JSON object with ``"tool":
    "nsc-reconcile"`` and ``"kind": "plan"``; format 1 plans have no kind), whatever the file
    is called; None when the file is something else (a desired state). Raises ValueError for
    another nsc-reconcile document (an apply report) or a plan format this version does not
    read, OSError when the file cannot be read."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    if not text.lstrip().startswith("{"):
        return None  # YAML desired states start with a key or a comment
    try:
        data = json.loads(text)
    except ValueError:
        return None  # not JSON: left to the desired-state loader to explain
    if not isinstance(data, dict) or data.get("tool") != TOOL:
        return None
    kind = data.get("kind", "plan")
    if kind != "plan":
        raise ValueError(f"this is an {TOOL} {kind} document, not a saved plan")
    return Plan.from_json(data)


class Outcome(enum.StrEnum):
    """What apply did to one resource."""

    CREATED = "created"
    UPDATED = "updated"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"
    READ = "read"  # an existing reference, read and present (the plan's action `read`)
    FAILED = "failed"
    SKIPPED = "skipped"  # a dependency failed or was skipped
    BLOCKED = "blocked"  # refused: missing reference, foreign resource, replacement
    FOUND = "read"  # former name (an alias of READ), for library callers
    NOT_STARTED = "not-started"  # apply was interrupted (cancelled) before its write began
    DELETED = "deleted"  # an orphan deleted by apply --prune
    KEPT = "kept"  # an orphan apply --prune left in place (data-holding, shared, or gone)


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
    # Cancelled (Ctrl-C, Engine.cancel) before it ended: what had not begun is not-started.
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        bad = (Outcome.FAILED, Outcome.SKIPPED, Outcome.BLOCKED, Outcome.NOT_STARTED)
        return not any(r.outcome in bad for r in self.resources)

    @property
    def writes(self) -> list[ResourceResult]:
        written = (Outcome.CREATED, Outcome.UPDATED, Outcome.REPLACED, Outcome.DELETED)
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
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
            "summary": self.counts(),
            "resources": [r.to_json() for r in self.resources],
        }


def apply_document(
    plan: Plan, result: ApplyResult | None, error: str | None = None
) -> dict[str, Any]:
    """What `apply --format json` prints: the plan applied and what apply did, in one
    versioned document. ``result`` is None when nothing was applied (no changes, refused,
    cancelled); ``error`` then says why (already redacted)."""
    ok = error is None and (result is None or result.ok)
    return {
        "format": PLAN_FORMAT,
        "tool": TOOL,
        "kind": "apply",
        "ok": ok,
        "error": error,
        "plan": plan.to_json(),
        "result": result.to_json() if result is not None else None,
    }


__all__ = [
    "Action",
    "ApplyResult",
    "FieldChange",
    "Orphan",
    "Outcome",
    "Plan",
    "ReplacePolicy",
    "ResourcePlan",
    "ResourceResult",
    "Unknown",
    "apply_document",
    "read_plan",
]
