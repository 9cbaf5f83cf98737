"""Load a desired-state file (plus an environment overlay) into a validated DesiredState.

Reports every problem at once — YAML syntax, schema, naming, references, cycles, policy — each
with file, line, column, field path and what is expected. Reads files only; no network.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from nsc_reconcile.errors import DesiredStateError, Problem
from nsc_reconcile.graph import build_graph
from nsc_reconcile.model.secrets import looks_like_credential
from nsc_reconcile.model.state import ENVIRONMENT_PATTERN, DesiredState
from nsc_reconcile.policy import check_policy
from nsc_reconcile.yamlsource import (
    Document,
    PathKey,
    format_path,
    merge_overlay,
    read_document,
    substitute_variables,
)


def overlay_path(path: Path, env: str) -> Path:
    """Where the overlay of ``env`` lives for the base file ``path``: ``envs/<env>.yaml``."""
    return path.parent / "envs" / f"{env}.yaml"


def available_environments(path: str | Path) -> list[str]:
    """The environments that have an overlay next to the base file ``path`` (``envs/*.yaml``
    whose name is an environment name), sorted."""
    folder = Path(path).parent / "envs"
    if not folder.is_dir():
        return []
    return sorted(f.stem for f in folder.glob("*.yaml") if re.match(ENVIRONMENT_PATTERN, f.stem))


def load_desired_state(path: str | Path, env: str | None = None) -> DesiredState:
    """Load, merge the ``env`` overlay if given, validate, and check references and policy.

    Never touches the network. Raises DesiredStateError listing every problem found."""
    path = Path(path)
    document = read_document(path)
    if env is not None:
        if not re.match(ENVIRONMENT_PATTERN, env) or env == "shared":
            raise DesiredStateError(
                [Problem(None, "--env", f"{env!r} is not an environment name: lowercase "
                         "letters, digits and '-', at most 20 characters, not 'shared'")]
            )  # fmt: skip
        overlay_file = overlay_path(path, env)
        base_env = document.data.get("environment") if isinstance(document.data, dict) else None
        if overlay_file.is_file():
            document = merge_overlay(document, read_document(overlay_file))
        elif base_env != env:
            present = available_environments(path)
            found = f" (overlays present: {', '.join(present)})" if present else ""
            raise DesiredStateError(
                [Problem(None, "--env", f"no overlay for {env!r}: {overlay_file} does not "
                         f"exist{found}")]
            )  # fmt: skip
    if not isinstance(document.data, dict):
        raise DesiredStateError(
            [Problem(document.locate(()), "", "expected a mapping at the top of the file")]
        )
    problems: list[Problem] = []
    if env is not None:
        declared = document.data.get("environment")
        if declared is not None and declared != env:
            problems.append(
                Problem(
                    document.locate(("environment",)),
                    "environment",
                    f"the file says {declared!r} but --env is {env!r}; the overlay "
                    f"envs/{env}.yaml should set `environment: {env}`",
                )
            )
        document.data["environment"] = env
    environment = document.data.get("environment")
    if isinstance(environment, str):
        problems += substitute_variables(document, {"env": environment})
    try:
        state = DesiredState.model_validate(document.data)
    except ValidationError as exc:
        errors = exc.errors()
        problems += [_problem(document, error) for error in errors]
        # Still check references and policy on the resources that are valid, so that one
        # run reports everything (minus what the invalid ones would hide).
        problems += _partial_checks(document, [tuple(e["loc"]) for e in errors])
        raise DesiredStateError(problems) from None
    problems += _state_checks(document, state, {}, {})
    if problems:
        raise DesiredStateError(problems)
    return state


def _state_checks(
    document: Document,
    state: DesiredState,
    index_map: dict[PathKey, list[int]],
    dropped: dict[str, set[str]],
) -> list[Problem]:
    _, issues = build_graph(state, also_declared=dropped)
    dropped_names = {name for names in dropped.values() for name in names}
    issues += check_policy(state)
    problems = []
    for issue in issues:
        if dropped_names and _mentions(issue.message, dropped_names):
            continue
        field = _original_path(issue.field, index_map)
        problems.append(Problem(document.locate(field), format_path(field), issue.message))
    return problems


def _mentions(message: str, names: set[str]) -> bool:
    return any(re.search(rf"/{re.escape(name)}(?:/|\b|$)", message) for name in names)


def _unit(loc: PathKey) -> PathKey | None:
    """The independently removable item an error is in (a list item or `langfuse`)."""
    if not loc:
        return None
    head = loc[0]
    if head in ("existing",) or (head == "secrets" and len(loc) > 1 and loc[1] == "items"):
        return loc[:3] if len(loc) >= 3 and isinstance(loc[2], int) else None
    if head == "langfuse":
        return ("langfuse",)
    if len(loc) >= 2 and isinstance(loc[1], int):
        return loc[:2]
    return None


def _partial_checks(document: Document, error_locs: list[PathKey]) -> list[Problem]:
    units = [_unit(loc) for loc in error_locs]
    if any(unit is None for unit in units):
        return []  # a top-level field is wrong: nothing sensible to check beyond it
    data = copy.deepcopy(document.data)
    dropped: dict[str, set[str]] = {}

    def note(unit: PathKey, item: Any) -> None:
        model, _ = _walk(unit)
        kind = getattr(model, "kind", None)
        if isinstance(kind, str) and isinstance(item, dict) and isinstance(item.get("name"), str):
            dropped.setdefault(kind, set()).add(item["name"])

    index_map: dict[PathKey, list[int]] = {}
    by_parent: dict[PathKey, set[int]] = {}
    for unit in {u for u in units if u is not None}:
        if unit == ("langfuse",):
            note(unit, data.pop("langfuse", None))
            continue
        by_parent.setdefault(unit[:-1], set()).add(int(unit[-1]))
    for parent, indexes in by_parent.items():
        container: Any = data
        for part in parent:
            container = container[part]
        kept = [i for i in range(len(container)) if i not in indexes]
        for i in indexes:
            note((*parent, i), container[i])
        container[:] = [container[i] for i in kept]
        index_map[parent] = kept
    try:
        state = DesiredState.model_validate(data)
    except ValidationError:
        return []
    return _state_checks(document, state, index_map, dropped)


def _original_path(path: PathKey, index_map: dict[PathKey, list[int]]) -> PathKey:
    for parent, kept in index_map.items():
        size = len(parent)
        index = path[size] if len(path) > size else None
        if path[:size] == parent and isinstance(index, int):
            return (*parent, kept[index], *path[size + 1 :])
    return path


def _problem(document: Document, error: ErrorDetails) -> Problem:
    loc: PathKey = tuple(error["loc"])
    kind = error["type"]
    field = format_path(loc)
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1])
        unknown = str(loc[-1])
        hint = ""
        close = difflib.get_close_matches(unknown, allowed, n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
        message = f"unknown field {unknown!r}{hint}; expected one of: {', '.join(allowed)}"
    elif kind == "missing":
        info = _field_at(loc)
        what = f": {info.description}" if info is not None and info.description else ""
        message = f"required field {str(loc[-1])!r} is missing{what}"
    else:
        message = error["msg"]
        if kind not in {"policy", "azure_name"} and not isinstance(error["input"], dict | list):
            shown = error["input"]
            if isinstance(shown, str) and looks_like_credential(shown):
                message += " (got a value that looks like a credential; not shown)"
            else:
                message += f" (got {_shorten(repr(shown))})"
    return Problem(document.locate(loc), field, message)


def _shorten(text: str, limit: int = 80) -> str:
    """``text``, or its start and its length when longer than ``limit``."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes an annotation can hold (through Optional, list, dict, Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (list, dict, typing.Union, types.UnionType):
        found: list[Any] = []
        for arg in typing.get_args(annotation):
            found += _unwrap(arg)
        return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _walk(loc: PathKey) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    model: type[BaseModel] | None = DesiredState
    info: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None, None
        classes = _unwrap(info.annotation)
        model = classes[0] if classes else None
    return model, info


def _field_at(loc: PathKey) -> FieldInfo | None:
    return _walk(loc)[1]


def _allowed_fields(loc: PathKey) -> list[str]:
    model, _ = _walk(loc)
    if model is None:
        return []
    return [name for name, info in model.model_fields.items() if not info.exclude]
