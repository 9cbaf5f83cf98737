"""Reading a write request: its JSON (or, for apply, YAML) body and its field manager.
Raises ``KubeError`` BadRequest on a body that does not parse; touches no state.
"""

from __future__ import annotations

import json
from typing import Any

from nsc_reconcile.emulator.kubernetes.errors import bad_request
from nsc_reconcile.emulator.protocol import Request


def parse_body(request: Request, yaml_allowed: bool = False) -> Any:
    if not request.body:
        raise bad_request("the request body is empty")
    try:
        return json.loads(request.body)
    except ValueError as exc:
        if not yaml_allowed:
            raise bad_request(f"the body of the request is not valid JSON: {exc}") from exc
    from ruamel.yaml import YAML  # apply bodies may be YAML (JSON is a subset)

    try:
        return YAML(typ="safe", pure=True).load(request.body.decode())
    except Exception as exc:  # any parse error is the client's
        raise bad_request(f"error decoding YAML: {exc}") from exc


def field_manager(request: Request) -> str:
    """The field manager of a write: ``fieldManager`` or, as Kubernetes does, the user agent."""
    manager = request.query.get("fieldManager")
    if manager:
        return manager
    agent = request.headers.get("user-agent", "unknown")
    return agent.split("/", 1)[0] or "unknown"
