"""Kubernetes ``Status`` errors (NotFound, AlreadyExists, Invalid, ...) and the clock the
plane stamps objects with. Builds responses only; never touches stored objects.
"""

from __future__ import annotations

import time
from typing import Any

from nsc_reconcile.emulator.kubernetes.resources import Obj, ResourceType
from nsc_reconcile.emulator.protocol import Response


class KubeError(Exception):
    """A Kubernetes ``Status`` failure (``reason`` NotFound, AlreadyExists, Invalid, ...)."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def response(self) -> Response:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return Response(self.code, body)


def status_details(rt: ResourceType, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return details


def not_found(rt: ResourceType, name: str) -> KubeError:
    return KubeError(
        404, "NotFound", f'{rt.qualified} "{name}" not found', status_details(rt, name)
    )


def invalid(rt: ResourceType, name: str, field: str, problem: str) -> KubeError:
    details = status_details(rt, name)
    details["kind"] = rt.kind
    details["causes"] = [{"reason": "FieldValueInvalid", "message": problem, "field": field}]
    message = (
        f'{rt.kind}{"." + rt.group if rt.group else ""} "{name}" is invalid: {field}: {problem}'
    )
    return KubeError(422, "Invalid", message, details)


def bad_request(message: str) -> KubeError:
    return KubeError(400, "BadRequest", message)


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
