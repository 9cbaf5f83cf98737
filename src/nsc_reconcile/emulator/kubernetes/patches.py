"""JSON patch (RFC 6902), JSON merge patch (RFC 7386), an approximation of strategic merge
patch, and the path helpers they share. Pure functions on copies: never touch the store.
"""

from __future__ import annotations

import copy
from typing import Any

from nsc_reconcile.emulator.kubernetes.errors import KubeError, bad_request
from nsc_reconcile.emulator.kubernetes.resources import Obj, Path

# Strategic-merge keys of the lists this subset meets (field name -> merge key).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "ports": "port",  # service ports; container ports are keyed below
}


def leaf_paths(value: Any, prefix: Path = ()) -> set[Path]:
    """Leaf paths of a JSON object; lists and empty maps are leaves (atomic)."""
    if isinstance(value, dict) and value:
        paths: set[Path] = set()
        for key, child in value.items():
            paths |= leaf_paths(child, (*prefix, str(key)))
        return paths
    return {prefix} if prefix else set()


def get_path(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def delete_path(obj: Obj, path: Path) -> None:
    """Remove a leaf and then every map it leaves empty."""
    parents: list[tuple[Obj, str]] = []
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        parents.append((node, key))
        node = node[key]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]
        else:
            break


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def deep_merge(base: Any, overlay: Any) -> Any:
    """``overlay`` over ``base``: maps merge recursively, anything else replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for key, value in overlay.items():
            out[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(overlay)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Merge patch whose lists of maps merge by the known merge keys (see module docstring)."""
    if isinstance(patch, list) and isinstance(target, list) and field in _MERGE_KEYS:
        key = _MERGE_KEYS[field]
        if field == "ports" and any("containerPort" in p for p in patch if isinstance(p, dict)):
            key = "containerPort"
        if all(isinstance(p, dict) and key in p for p in patch):
            merged = [copy.deepcopy(t) for t in target]
            for item in patch:
                index = next(
                    (
                        i
                        for i, t in enumerate(merged)
                        if isinstance(t, dict) and t.get(key) == item[key]
                    ),
                    None,
                )
                if item.get("$patch") == "delete":
                    if index is not None:
                        del merged[index]
                elif index is None:
                    merged.append({k: v for k, v in item.items() if k != "$patch"})
                else:
                    merged[index] = strategic_merge_patch(merged[index], item)
            return merged
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
        else:
            out[key] = strategic_merge_patch(out.get(key), value, key)
    return out


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, test, copy, move)."""
    if not isinstance(operations, list):
        raise bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch "
            "(a JSON patch is a list of operations; pass _content_type for merge or apply)"
        )
    doc = copy.deepcopy(target)

    def split(pointer: str) -> list[str]:
        if pointer == "":
            return []
        if not pointer.startswith("/"):
            raise bad_request(f"invalid JSON pointer {pointer!r}")
        return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]

    def parent_of(parts: list[str]) -> tuple[Any, str]:
        node = doc
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, parts[-1]

    def read(parts: list[str]) -> Any:
        node = doc
        for part in parts:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def add(parts: list[str], value: Any) -> None:
        parent, last = parent_of(parts)
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), value)
        else:
            parent[last] = value

    def remove(parts: list[str]) -> Any:
        parent, last = parent_of(parts)
        return parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)

    for op in operations:
        try:
            kind, path = op["op"], split(op["path"])
            if kind == "add":
                add(path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(path)
            elif kind == "replace":
                remove(path)
                add(path, copy.deepcopy(op["value"]))
            elif kind == "test":
                if read(path) != op["value"]:
                    raise bad_request(f"testing value {op['path']} failed")
            elif kind in ("copy", "move"):
                source = split(op["from"])
                value = remove(source) if kind == "move" else copy.deepcopy(read(source))
                add(path, value)
            else:
                raise bad_request(f"unexpected JSON patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise KubeError(
                422, "Invalid", f"the server rejected our request due to an error: {exc!r}"
            ) from exc
    return doc
