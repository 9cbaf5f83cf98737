"""The Azure Monitor Logs Ingestion API (data plane of Direct DCRs), for `azure-monitor-ingestion`.

`POST /dataCollectionRules/{immutableId}/streams/{stream}?api-version=2023-01-01` with a JSON
array (gzip or plain): the rule must exist and declare the stream; each row must carry the
stream's columns with matching types. Accepted rows land in ``world.logs[table]`` (the DCR's
output table), which tests and smoke checks read through the control interface.
"""

from __future__ import annotations

import gzip
import json
from typing import Any, Protocol

from nsc_reconcile.emulator.protocol import Request, Response

DCR_TYPE = "Microsoft.Insights/dataCollectionRules"
API_VERSION = "2023-01-01"
# DCR column types -> the JSON types a row value may have.
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "int": (int,),
    "long": (int,),
    "real": (int, float),
    "boolean": (bool,),
    "datetime": (str,),
    "dynamic": (dict, list, str, int, float, bool),
}


class WorldView(Protocol):
    """What this plane reads from the ARM world (``arm.World`` satisfies it)."""

    logs: dict[str, list[dict[str, Any]]]

    def list_by_type(self, arm_type: str) -> list[dict[str, Any]]: ...


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, {"error": {"code": code, "message": message}})


class IngestionPlane:
    """Answers Logs Ingestion uploads for every Direct DCR of the world."""

    def __init__(self, world: WorldView) -> None:
        self.world = world

    def handle(self, request: Request) -> Response:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "InvalidAuthenticationToken", "A bearer token is required.")
        parts = request.path.strip("/").split("/")
        if request.method != "POST" or len(parts) != 4 or parts[0] != "dataCollectionRules":
            return _error(404, "NotFound", f"{request.method} {request.path} is not an API route.")
        if request.query.get("api-version") != API_VERSION:
            return _error(400, "InvalidApiVersion", f"api-version must be {API_VERSION}.")
        rule_id, stream = parts[1], parts[3]
        rule = next(
            (
                r
                for r in self.world.list_by_type(DCR_TYPE)
                if (r.get("properties") or {}).get("immutableId") == rule_id
            ),
            None,
        )
        if rule is None:
            return _error(404, "NotFound", f"Data collection rule with immutable Id '{rule_id}' "
                          "not found.")  # fmt: skip
        props = rule.get("properties") or {}
        declared = (props.get("streamDeclarations") or {}).get(stream)
        if declared is None:
            return _error(400, "InvalidStream", f"Stream '{stream}' is not declared in the rule.")
        try:
            body = gzip.decompress(request.body) if _gzipped(request) else request.body
            rows = json.loads(body)
        except (OSError, ValueError):
            return _error(400, "InvalidContent", "The body must be a JSON array (gzip allowed).")
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            return _error(400, "InvalidContent", "The body must be a JSON array of objects.")
        columns = {str(c.get("name")): str(c.get("type", "")).lower()
                   for c in declared.get("columns") or []}  # fmt: skip
        for index, row in enumerate(rows):
            problem = _check_row(row, columns)
            if problem:
                return _error(400, "InvalidContent", f"Row {index}: {problem}")
        table = _output_table(props, stream)
        self.world.logs.setdefault(table, []).extend(rows)
        return Response(204)


def _gzipped(request: Request) -> bool:
    return request.headers.get("content-encoding", "").lower() == "gzip"


def _check_row(row: dict[str, Any], columns: dict[str, str]) -> str | None:
    for name, value in row.items():
        if name not in columns:
            return f"column '{name}' is not declared in the stream"
        allowed = _JSON_TYPES.get(columns[name], (object,))
        if value is not None and not isinstance(value, allowed):
            return f"column '{name}' expects {columns[name]}, got {type(value).__name__}"
    return None


def _output_table(props: dict[str, Any], stream: str) -> str:
    for flow in props.get("dataFlows") or []:
        if stream in (flow.get("streams") or []):
            output = str(flow.get("outputStream") or stream)
            return output.removeprefix("Custom-")
    return stream.removeprefix("Custom-")
