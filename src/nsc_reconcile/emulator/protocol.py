"""Plain request/response values shared by every emulated interface.

Planes (ARM, Key Vault, Kubernetes) are pure handlers: ``handle(Request) -> Response``. The
HTTP plumbing in ``server.py`` turns sockets into these values, logs them and injects faults,
so a plane never sees a socket. Imports nothing from the rest of nsc_reconcile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Request:
    """One HTTP request as a plane sees it. ``path`` has no query; ``query`` is decoded."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # keys lower-cased
    body: bytes = b""

    def json(self) -> Any:
        """The body parsed as JSON, or None when empty. Raises ValueError when malformed."""
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass
class Response:
    """One HTTP response. ``body`` is a JSON-able value, raw bytes, or None (no body)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


class Plane(Protocol):
    """An emulated interface: answers requests, never touches sockets."""

    def handle(self, request: Request) -> Response: ...


class ArmError(Exception):
    """An ARM error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> Response:
        return Response(self.status, {"error": {"code": self.code, "message": self.message}})
