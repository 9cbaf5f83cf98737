"""The reference documentation of the desired-state YAML, generated from the models.

`python -m nsc_reconcile.reference > docs/desired-state.md` regenerates it; a test fails when
the committed file is stale. Descriptions come from the models' `Field(description=...)`.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from nsc_reconcile import kinds
from nsc_reconcile.model.base import Resource
from nsc_reconcile.model.state import DesiredState

HEADER = """# Desired-state reference

Generated from the models by `python -m nsc_reconcile.reference`; do not edit by hand.
Every field of `desired_state.yaml`, by section. Unknown fields are errors; types are strict
(`"16"` is a string, `16` an integer). `${env}` in any string becomes the environment name.
References name other resources (`kind/name` where several kinds are possible); the
dependency order comes from them. Addresses are `kind/name` (children: `kind/parent/name`).
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a!r}`" if not isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        optional = any(a is type(None) for a in args)
        return " \\| ".join(names) + (" (optional)" if optional else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map {_type_name(args[0])} → {_type_name(args[1])}"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
        return annotation.__name__
    return str(annotation)


def _models(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin is not None:
        found: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            found += _models(arg)
        return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def render() -> str:
    """The whole reference as Markdown."""
    lines = [HEADER]
    seen: set[type[BaseModel]] = set()
    queue: list[type[BaseModel]] = [DesiredState]
    while queue:
        model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        lines.append(f"## {model.__name__}\n")
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        if doc:
            lines.append(doc + "\n")
        if issubclass(model, Resource) and hasattr(model, "kind"):
            rule = kinds.name_rule(model.kind)
            lines.append(
                f"Address: `{model.kind}/…`. Name: {rule.min_length}-{rule.max_length} "
                f"characters; {rule.characters}."
                + (" Existing: read, never written." if model.existing else "")
                + "\n"
            )
        lines.append("| field | type | default | description |")
        lines.append("|---|---|---|---|")
        for name, info in model.model_fields.items():
            if info.is_required():
                default = "**required**"
            elif info.default_factory is not None:
                default = "empty"
            elif info.default is PydanticUndefined or info.default is None:
                default = "—"
            else:
                default = f"`{info.default}`"
            description = (info.description or "").replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| `{name}` | {_type_name(info.annotation)} | {default} | {description} |"
            )
            queue.extend(m for m in _models(info.annotation) if m not in seen)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
