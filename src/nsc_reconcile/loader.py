"""Load a desired-state file (plus an environment overlay) into a validated DesiredState.

Reports every problem at once — YAML syntax, schema, naming, references, cycles, policy — each
with file, line, column, field path and what is expected. Reads files only; no network.
"""

from __future__ import annotations

import difflib
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
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.policy import check_policy
from nsc_reconcile.yamlsource import (
    Document,
    PathKey,
    format_path,
    merge_overlay,
    read_document,
    substitute_variables,
)

ENVIRONMENTS = ("dev", "staging", "prod")


def overlay_path(path: Path, env: str) -> Path:
    """Where the overlay of ``env`` lives for the base file ``path``: ``envs/<env>.yaml``."""
    return path.parent / "envs" / f"{env}.yaml"


def load_desired_state(path: str | Path, env: str | None = None) -> DesiredState:
    """Load, merge the ``env`` overlay if given, validate, and check references and policy.

    Never touches the network. Raises DesiredStateError listing every problem found."""
    path = Path(path)
    document = read_document(path)
    if env is not None:
        if env not in ENVIRONMENTS:
            raise DesiredStateError(
                [Problem(None, "--env", f"unknown environment {env!r}; expected one of "
                         f"{', '.join(ENVIRONMENTS)}")]
            )  # fmt: skip
        overlay_file = overlay_path(path, env)
        if not overlay_file.is_file():
            raise DesiredStateError(
                [Problem(None, "--env", f"no overlay for {env!r}: {overlay_file} does not exist")]
            )
        document = merge_overlay(document, read_document(overlay_file))
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
        problems += [_problem(document, error) for error in exc.errors()]
        raise DesiredStateError(problems) from None
    _, issues = build_graph(state)
    issues += check_policy(state)
    problems += [
        Problem(document.locate(issue.field), format_path(issue.field), issue.message)
        for issue in issues
    ]
    if problems:
        raise DesiredStateError(problems)
    return state


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
                message += f" (got {shown!r})"
    return Problem(document.locate(loc), field, message)


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
