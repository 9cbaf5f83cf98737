"""The JSON Schema of the desired state, for editors (VS Code's YAML extension) and docs."""

from __future__ import annotations

from typing import Any

from nsc_reconcile.model.state import DesiredState

SCHEMA_ID = "https://nsc-reconcile.invalid/desired-state.schema.json"


def desired_state_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the desired-state file."""
    schema = DesiredState.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
