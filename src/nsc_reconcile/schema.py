"""The JSON Schemas of the desired state, for editors (VS Code's YAML extension) and docs.

Two forms: the desired-state file itself, and the overlay form for `envs/<env>.yaml`, where
every field is optional because an overlay is merged over the base file (mappings key by key,
lists of named items by `name`, other lists replaced whole: yamlsource.merge_overlay).
"""

from __future__ import annotations

import copy
from typing import Any

from nsc_reconcile.model.state import DesiredState

SCHEMA_ID = "https://nsc-reconcile.invalid/desired-state.schema.json"
OVERLAY_SCHEMA_ID = "https://nsc-reconcile.invalid/desired-state-overlay.schema.json"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"

JsonSchema = dict[str, Any]


def desired_state_schema() -> JsonSchema:
    """JSON Schema (draft 2020-12) of the desired-state file."""
    schema = DesiredState.model_json_schema(mode="validation")
    return {"$schema": _DIALECT, "$id": SCHEMA_ID, **schema}


def overlay_schema() -> JsonSchema:
    """JSON Schema (draft 2020-12) of an environment overlay (`envs/<env>.yaml`).

    Every field is optional and unknown fields stay errors (a typo is caught in the editor).
    An item of a list of named items needs only its `name` (it is merged into the base item
    of that name); a list of other items replaces the base list, so its items are complete.
    A new named item must be complete too, which only the base file can tell: `validate
    --env` checks the merged result."""
    full = desired_state_schema()
    overlay = _Overlay(full["$defs"])
    root = overlay.partial({k: v for k, v in full.items() if k != "$defs"}, named=False)
    root.update(
        {
            "$id": OVERLAY_SCHEMA_ID,
            "title": "DesiredStateOverlay",
            "description": "An environment overlay (envs/<env>.yaml), merged over the "
            "desired-state file by `--env <env>`: mappings merge key by key, lists of named "
            "items by name, other lists are replaced.",
            "$defs": overlay.defs,
        }
    )
    return root


class _Overlay:
    """Builds the partial form of the models, adding `<Model>Overlay` (every field
    optional) and `<Model>OverlayItem` (only `name` required) definitions as needed."""

    def __init__(self, defs: dict[str, JsonSchema]) -> None:
        self.full = defs
        self.defs: dict[str, JsonSchema] = copy.deepcopy(defs)  # whole lists use them

    def partial(self, schema: JsonSchema, *, named: bool) -> JsonSchema:
        result = {k: v for k, v in schema.items() if k != "required"}
        if "properties" in schema:
            result["properties"] = {k: self.node(v) for k, v in schema["properties"].items()}
        if isinstance(schema.get("additionalProperties"), dict):
            result["additionalProperties"] = self.node(schema["additionalProperties"])
        if named:
            result["required"] = ["name"]
        return result

    def node(self, schema: JsonSchema) -> JsonSchema:
        if "$ref" in schema:
            name = _ref_name(schema)
            if self.full[name].get("type") != "object":
                return schema
            return {**schema, "$ref": self._ref(name, named=False)}
        if "anyOf" in schema:
            return {**schema, "anyOf": [self.node(branch) for branch in schema["anyOf"]]}
        if schema.get("type") == "array":
            items = schema.get("items")
            if isinstance(items, dict) and "$ref" in items and self._is_named(items):
                return {**schema, "items": {"$ref": self._ref(_ref_name(items), named=True)}}
            return schema  # the overlay's list replaces the base list: complete items
        if schema.get("type") == "object":
            return self.partial(schema, named=False)
        return schema

    def _is_named(self, ref: JsonSchema) -> bool:
        target = self.full[_ref_name(ref)]
        return target.get("type") == "object" and "name" in target.get("properties", {})

    def _ref(self, name: str, *, named: bool) -> str:
        key = f"{name}OverlayItem" if named else f"{name}Overlay"
        if key not in self.defs:
            self.defs[key] = {}  # taken before recursing: models may refer to themselves
            self.defs[key] = self.partial(self.full[name], named=named)
        return f"#/$defs/{key}"


def _ref_name(schema: JsonSchema) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]
