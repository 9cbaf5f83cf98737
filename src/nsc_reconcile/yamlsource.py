"""YAML documents with the position of every node, and the environment overlay merge.

Turns ruamel.yaml's round-trip nodes into plain Python data plus a map from field path to
``Location``, so that later validation errors can point at file, line and column. Pure: reads
files, touches nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from nsc_reconcile.errors import DesiredStateError, Location, Problem

PathKey = tuple[str | int, ...]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass
class Document:
    """Plain data (dicts, lists, scalars) and where each path came from."""

    data: Any
    locations: dict[PathKey, Location] = field(default_factory=dict)

    def locate(self, path: PathKey) -> Location | None:
        """The location of ``path`` or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.locations.get(path[:end])
            if found is not None:
                return found
        return None


def read_document(path: Path) -> Document:
    """Parse one YAML file. Raises DesiredStateError (with line and column) when malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DesiredStateError(
            [Problem(None, "", f"cannot read {path}: {exc.strerror or exc}")]
        ) from None
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(path, mark.line + 1, mark.column + 1) if mark else None
        what = exc.problem or ""
        if exc.context and exc.context_mark is not None:
            start = exc.context_mark
            where = f"line {start.line + 1}, column {start.column + 1}"
            what = f"{what} ({exc.context} started at {where})"
        raise DesiredStateError([Problem(location, "", f"malformed YAML: {what or exc}")]) from None
    except YAMLError as exc:
        raise DesiredStateError([Problem(None, "", f"malformed YAML in {path}: {exc}")]) from None
    document = Document(None, {(): Location(path, 1, 1)})
    document.data = _plain(root, (), path, document.locations)
    return document


def _plain(node: Any, at: PathKey, file: Path, locations: dict[PathKey, Location]) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            line, column = node.lc.key(key)
            here = (*at, str(key))
            locations[here] = Location(file, line + 1, column + 1)
            out[str(key)] = _plain(value, here, file, locations)
        return out
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            line, column = node.lc.item(index)
            here = (*at, index)
            locations[here] = Location(file, line + 1, column + 1)
            items.append(_plain(value, here, file, locations))
        return items
    if isinstance(node, str):
        return str(node)  # drop ruamel's scalar subclasses
    if isinstance(node, bool | int | float) or node is None:
        return node
    return str(node)


def merge_overlay(base: Document, overlay: Document) -> Document:
    """Overlay ``overlay`` on ``base``: mappings merge key by key; lists of mappings that all
    carry a ``name`` merge item by item (matched by name, new names appended); anything else is
    replaced. Locations follow the value that won."""
    merged = Document(None, {})
    merged.data = _merge(base, overlay, base.data, overlay.data, (), (), (), merged.locations)
    return merged


def _copy_locations(
    source: Document, from_path: PathKey, to_path: PathKey, into: dict[PathKey, Location]
) -> None:
    size = len(from_path)
    for key, location in source.locations.items():
        if key[:size] == from_path:
            into[(*to_path, *key[size:])] = location


_SCOPE_FIELDS = ("zone", "nsg", "workspace", "vault")


def _same_item(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    """List items match across files by name, and by parent where both name one."""
    return left["name"] == right["name"] and all(
        left[f] == right[f] for f in _SCOPE_FIELDS if f in left and f in right
    )


def _named(items: Any) -> bool:
    return isinstance(items, list) and all(
        isinstance(item, Mapping) and isinstance(item.get("name"), str) for item in items
    )


def _merge(
    base: Document,
    overlay: Document,
    left: Any,
    right: Any,
    left_path: PathKey,
    right_path: PathKey,
    out_path: PathKey,
    locations: dict[PathKey, Location],
) -> Any:
    if isinstance(left, dict) and isinstance(right, dict):
        location = base.locations.get(left_path)
        if location is not None:
            locations[out_path] = location
        result: dict[str, Any] = {}
        for key in list(left) + [k for k in right if k not in left]:
            here = (*out_path, key)
            if key in right and key in left:
                result[key] = _merge(
                    base,
                    overlay,
                    left[key],
                    right[key],
                    (*left_path, key),
                    (*right_path, key),
                    here,
                    locations,
                )
            elif key in right:
                result[key] = right[key]
                _copy_locations(overlay, (*right_path, key), here, locations)
            else:
                result[key] = left[key]
                _copy_locations(base, (*left_path, key), here, locations)
        return result
    if _named(left) and _named(right) and left and right:
        location = base.locations.get(left_path)
        if location is not None:
            locations[out_path] = location
        items: list[Any] = []
        used: set[int] = set()
        for index, item in enumerate(left):
            here = (*out_path, len(items))
            other = next(
                (i for i, r in enumerate(right) if i not in used and _same_item(item, r)), None
            )
            if other is not None:
                used.add(other)
                items.append(
                    _merge(
                        base,
                        overlay,
                        item,
                        right[other],
                        (*left_path, index),
                        (*right_path, other),
                        here,
                        locations,
                    )
                )
            else:
                items.append(item)
                _copy_locations(base, (*left_path, index), here, locations)
        for index, item in enumerate(right):
            if index not in used:
                _copy_locations(overlay, (*right_path, index), (*out_path, len(items)), locations)
                items.append(item)
        return items
    _copy_locations(overlay, right_path, out_path, locations)
    return right


def substitute_variables(document: Document, variables: Mapping[str, str]) -> list[Problem]:
    """Replace ``${name}`` in every string in place; return a problem per unknown variable."""
    problems: list[Problem] = []

    def visit(value: Any, at: PathKey) -> Any:
        if isinstance(value, dict):
            return {key: visit(item, (*at, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [visit(item, (*at, index)) for index, item in enumerate(value)]
        if isinstance(value, str) and "${" in value:

            def replace(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in variables:
                    return variables[name]
                known = ", ".join(f"${{{k}}}" for k in sorted(variables))
                problems.append(
                    Problem(
                        document.locate(at),
                        format_path(at),
                        f"unknown variable ${{{name}}}; expected one of {known}",
                    )
                )
                return match.group(0)

            return _VARIABLE.sub(replace, value)
        return value

    document.data = visit(document.data, ())
    return problems


def format_path(path: PathKey) -> str:
    """``("a", 0, "b")`` -> ``a[0].b``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
