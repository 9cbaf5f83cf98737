"""YAML documents with the position of every node, and the environment overlay merge.

Turns ruamel.yaml's round-trip nodes into plain Python data plus a map from field path to
``Location``, so that later validation errors can point at file, line and column. Hostile
files (huge, deeply nested, alias bombs, constructor tags) are refused before any document is
built. Pure: reads files, touches nothing else.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent
from ruamel.yaml.reader import ReaderError

from nsc_reconcile.errors import DesiredStateError, Location, Problem

PathKey = tuple[str | int, ...]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")

# Limits that keep a hostile file from exhausting time or memory; a real desired state is
# ~11 KiB, ~700 nodes, 6 levels deep.
MAX_FILE_BYTES = 512 * 1024
MAX_NODES = 100_000  # after alias expansion: each use of an alias counts what it stands for
MAX_DEPTH = 64
MAX_INTEGER_CHARS = 100  # Python refuses to convert integers over 4300 digits
_INTEGER = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_:]*)")
# Explicit tags that still mean plain data; anything else (!!omap, !!python/..., !custom) is
# refused rather than handed to a constructor.
_PLAIN_TAGS = frozenset(
    {"!", "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
)


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
    """Parse one YAML file. Raises DesiredStateError (with line and column) when it is not
    UTF-8, malformed, or beyond the limits above; never another exception."""
    text = _read_text(path)
    yaml = YAML(typ="rt")
    try:
        with warnings.catch_warnings():  # ruamel warns on stderr about YAML 1.1 floats
            warnings.simplefilter("ignore")
            _check_limits(yaml, text, path)
            root = yaml.load(text)
    except DesiredStateError:
        raise
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(path, mark.line + 1, mark.column + 1) if mark else None
        what = exc.problem or ""
        if exc.context and exc.context_mark is not None:
            start = exc.context_mark
            where = f"line {start.line + 1}, column {start.column + 1}"
            what = f"{what} ({exc.context} started at {where})"
        raise DesiredStateError([Problem(location, "", f"malformed YAML: {what or exc}")]) from None
    except ReaderError as exc:  # a character YAML does not allow (control characters)
        location = _location_of(text, path, exc.position)
        raise DesiredStateError(
            [Problem(location, "", f"malformed YAML: character {exc.character!r} is not "
                     "allowed in YAML")]
        ) from None  # fmt: skip
    except Exception as exc:  # ruamel's constructors raise whatever they meet
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DesiredStateError(
            [Problem(Location(path, 1, 1), "", f"malformed YAML: cannot build the document "
                     f"({type(exc).__name__}: {first[:200]})")]
        ) from None  # fmt: skip
    document = Document(None, {(): Location(path, 1, 1)})
    document.data = _plain(root, (), path, document.locations)
    return document


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise DesiredStateError(
            [Problem(None, "", f"cannot read {path}: {exc.strerror or exc}")]
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise DesiredStateError(
            [Problem(Location(path, 1, 1), "", f"file larger than {MAX_FILE_BYTES // 1024} "
                     "KiB; a desired state is a few dozen KiB at most")]
        )  # fmt: skip
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start : exc.start + 1].hex()
        raise DesiredStateError(
            [Problem(Location(path, line, column), "", f"not UTF-8: byte 0x{byte} cannot be "
                     "decoded; save the file as UTF-8")]
        ) from None  # fmt: skip


def _location_of(text: str, path: Path, offset: int) -> Location:
    line = text.count("\n", 0, offset) + 1
    return Location(path, line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _check_limits(yaml: YAML, text: str, path: Path) -> None:
    """Walk the parser's events (no document is built) and refuse, at the offending node,
    what would exhaust time or memory later: aliases expanding past MAX_NODES nodes ("billion
    laughs"), recursive aliases, nesting deeper than MAX_DEPTH (aliases count with what they
    stand for), integers longer than MAX_INTEGER_CHARS, and tags beyond plain data."""
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, height) of what it stands for
    open_nodes: list[list[Any]] = []  # per open collection: [anchor, nodes, height]
    total = 0  # nodes of the document with every alias expanded

    def fail(event: Any, message: str) -> NoReturn:
        mark = event.start_mark
        raise DesiredStateError(
            [Problem(Location(path, mark.line + 1, mark.column + 1), "", message)]
        )

    def count(event: Any, nodes: int) -> None:
        nonlocal total
        total += nodes
        if total > MAX_NODES:
            fail(event, f"the document expands to more than {MAX_NODES} nodes (aliases count "
                 "once per use); a desired state has a few thousand")  # fmt: skip

    def place(event: Any, nodes: int, height: int) -> None:
        """A finished node (``nodes`` nodes, ``height`` levels) joins the open collection."""
        if len(open_nodes) + height > MAX_DEPTH:
            fail(event, f"nesting deeper than {MAX_DEPTH} levels (aliases count with what "
                 "they stand for)")  # fmt: skip
        if open_nodes:
            parent = open_nodes[-1]
            parent[1] += nodes
            parent[2] = max(parent[2], height + 1)

    for event in yaml.parse(text):
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in _PLAIN_TAGS:
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            fail(event, f"YAML tag {shown[:80]} is not supported: write plain mappings, lists "
                 "and scalars (quote a value to make it a string)")  # fmt: skip
        if isinstance(event, AliasEvent):
            if any(node[0] == event.anchor for node in open_nodes):
                fail(event, f"alias *{event.anchor} refers to a node that contains it "
                     "(a recursive structure)")  # fmt: skip
            nodes, height = sizes.get(event.anchor, (1, 1))
            count(event, nodes)
            place(event, nodes, height)
        elif isinstance(event, ScalarEvent):
            value = event.value
            if event.style is None and len(value) > MAX_INTEGER_CHARS and _INTEGER.fullmatch(value):
                fail(event, f"integer of {len(value)} characters; at most {MAX_INTEGER_CHARS} "
                     "(quote it if it is a string)")  # fmt: skip
            count(event, 1)
            place(event, 1, 1)
            if event.anchor is not None:
                sizes[event.anchor] = (1, 1)
        elif isinstance(event, CollectionStartEvent):
            count(event, 1)
            if len(open_nodes) >= MAX_DEPTH:
                fail(event, f"nesting deeper than {MAX_DEPTH} levels")
            open_nodes.append([event.anchor, 1, 1])
        elif isinstance(event, CollectionEndEvent):
            anchor, nodes, height = open_nodes.pop()
            place(event, nodes, height)
            if anchor is not None:
                sizes[anchor] = (nodes, height)


def _key_location(node: CommentedMap, key: Any, fallback: Location, file: Path) -> Location:
    """Where ``key`` of ``node`` is written: its own line, or for a key brought in by a
    merge (``<<: *anchor``) its line in the merged mapping; else ``fallback``."""
    merges = getattr(node, "merge", None) or []  # ruamel: the mappings merged, in order
    sources = [node, *(m[1] if isinstance(m, tuple) else m for m in merges)]
    for source in sources:
        position = getattr(getattr(source, "lc", None), "data", {}).get(key)
        if isinstance(position, list | tuple) and len(position) >= 2:
            return Location(file, int(position[0]) + 1, int(position[1]) + 1)
    return fallback


def _plain(node: Any, at: PathKey, file: Path, locations: dict[PathKey, Location]) -> Any:
    here_location = locations.get(at, Location(file, 1, 1))
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            here = (*at, str(key))
            locations[here] = _key_location(node, key, here_location, file)
            out[str(key)] = _plain(value, here, file, locations)
        return out
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            position = node.lc.data.get(index) if isinstance(node.lc.data, dict) else None
            here = (*at, index)
            locations[here] = (
                Location(file, position[0] + 1, position[1] + 1) if position else here_location
            )
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
