"""Structured changes: what differs between desired and live, field by field.

`FieldChange(path, before, after)` values are compared and stored, never pre-formatted;
rendering happens in report.py. Sensitive values are replaced by a marker here, at the source,
so no later layer can leak them. No SDK imports.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Action(enum.StrEnum):
    """What apply will do to a resource."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"  # Azure cannot change it in place; never done without --allow-replace
    UNCHANGED = "unchanged"  # plan format 1 said "no-change"
    READ = "read"  # an existing reference: apply only reads it
    BLOCKED = "blocked"  # cannot proceed: missing reference, foreign resource, failed read
    NO_CHANGE = "unchanged"  # former name (an alias of UNCHANGED), for library callers


class ReplacePolicy(enum.StrEnum):
    """What a kind allows when Azure cannot change a field in place (each kind declares one).

    ``--allow-replace`` lets apply do the ``automated`` ones; ``data-loss`` ones also need the
    address confirmed (``--confirm-data-loss``); ``manual`` ones are never done by apply."""

    AUTOMATED = "automated"  # deleted and created again by apply --allow-replace
    MANUAL = "manual"  # refused: the plan gives the steps a person takes
    DATA_LOSS = "data-loss"  # deletes data: --allow-replace plus a confirmation per address


SENSITIVE = "(sensitive)"


@dataclass(frozen=True)
class Unknown:
    """A value only known after apply (an output of a resource not created yet)."""

    source: str

    def __str__(self) -> str:
        return f"(known after apply: {self.source})"


@dataclass(frozen=True)
class FieldChange:
    """One field that differs. ``path`` is dotted (``properties.publicNetworkAccess``).

    ``before`` is None when the field is absent live; values are plain JSON-able data, or
    SENSITIVE for secrets. ``requires_replacement`` marks changes Azure cannot make in place."""

    path: str
    before: Any
    after: Any
    requires_replacement: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "before": _jsonable(self.before),
            "after": _jsonable(self.after),
            "requires_replacement": self.requires_replacement,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Unknown):
        return str(value)
    return value


def is_unknown(value: Any) -> bool:
    """An Unknown, or how a saved plan writes one (``(known after apply: ...)``)."""
    return isinstance(value, Unknown) or (
        isinstance(value, str) and value.startswith("(known after apply")
    )


def unapproved(approved: list[FieldChange], now: list[FieldChange]) -> list[str]:
    """The paths of ``now`` that ``approved`` does not cover: absent there, or with another
    desired value or replacement flag. A value approved as "known after apply" matches any
    value. Empty when every change found now was approved (fewer changes are fine)."""
    wanted = {c.path: c for c in approved}
    return [c.path for c in now if not _covers(wanted.get(c.path), c)]


def _covers(approved: FieldChange | None, now: FieldChange) -> bool:
    if approved is None or approved.requires_replacement != now.requires_replacement:
        return False
    return is_unknown(approved.after) or _canonical(approved.after) == _canonical(now.after)


def _canonical(value: Any) -> str:
    return json.dumps(_jsonable(value), sort_keys=True, default=str)


def diff_fields(
    desired: dict[str, Any],
    live: dict[str, Any] | None,
    *,
    sensitive: frozenset[str] = frozenset(),
    immutable: frozenset[str] = frozenset(),
    normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> list[FieldChange]:
    """Changes needed to make ``live`` match ``desired``, scoped to desired's keys.

    Both are flat (dotted paths). ``normalize`` maps both sides to a comparable form (id and
    location casing, set-like lists); the changes keep the values as declared and as read.
    Keys absent from ``desired`` are not ours and never show up. Unknown values differ only
    when the live value is absent."""
    changes: list[FieldChange] = []
    current = live or {}
    same = normalize or (lambda fields: fields)
    desired_cmp = same(dict(desired))
    live_cmp = same({k: current[k] for k in desired if k in current})
    for path in sorted(desired):
        after = desired[path]
        before = current.get(path)
        if isinstance(after, Unknown):
            if before is not None:
                continue  # assume unchanged until known; apply recomputes with real values
        elif path in live_cmp and desired_cmp[path] == live_cmp[path]:
            continue
        hidden = path in sensitive
        changes.append(
            FieldChange(
                path,
                SENSITIVE if hidden and before is not None else before,
                SENSITIVE if hidden and not isinstance(after, Unknown) else after,
                requires_replacement=live is not None and path in immutable,
            )
        )
    return changes
