"""``LangfuseWeb``: one LangFuse web Deployment's public API as a ``Plane`` (plain HTTP, as the
in-cluster Service serves it): health, projects, OTLP trace export, the JSON ingestion batch
API and reading a trace, with Basic auth against the project keys of its headless init.
Bodies and status codes as LangFuse v3 answers them (web/src/pages/api/public/*).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nsc_reconcile.emulator.langfuse.otel import OtelError, decode_spans, span_events
from nsc_reconcile.emulator.langfuse.store import AuthError, Store, validate_event
from nsc_reconcile.emulator.protocol import Request, Response

__all__ = ["DEFAULT_VERSION", "LangfuseWeb", "Pods"]

# What /api/public/health reports when the image tag is not a full version (e.g. "3").
DEFAULT_VERSION = "3.172.1"
_TRACE_PATH = re.compile(r"/api/public/traces/([^/]+)")
_NOT_FOUND_PAGE = (
    b"<!DOCTYPE html><html><head><title>404: This page could not be found</title></head>"
    b"<body><h1>404</h1><h2>This page could not be found.</h2></body></html>"
)


@dataclass(frozen=True)
class Pods:
    """The web pods as started: which Deployment generation, their environment (resolved at
    start, as the kubelet does), pod labels, named container ports and the port listened on."""

    generation: tuple[str, str]  # (Deployment uid, revision)
    env: dict[str, str] = field(repr=False)
    labels: dict[str, str]
    ports: dict[str, int]
    port: int
    image: str

    @property
    def version(self) -> str:
        tag = self.image.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2]
        return tag if re.fullmatch(r"\d+\.\d+\.\d+", tag) else DEFAULT_VERSION


class LangfuseWeb:
    """One LangFuse web Deployment ``namespace/name``; its data (``store``) outlives its pods
    (it lives in PostgreSQL and ClickHouse), so a deleted and re-created Deployment finds it.
    ``visible_after`` gives the seconds before written data is readable (ingestion is
    asynchronous in LangFuse: the worker processes queued events)."""

    def __init__(self, namespace: str, name: str, visible_after: Callable[[], float]) -> None:
        self.namespace = namespace
        self.name = name
        self.visible_after = visible_after
        self.store = Store()
        self.pods: Pods | None = None
        self.address: tuple[str, int] | None = None  # loopback, once listening
        self._lock = threading.Lock()

    # -- lifecycle (driven by workloads.LangfuseWorkloads) -----------------------------------
    def start(self, pods: Pods) -> None:
        """The pods (re)start: each runs the headless init with its environment."""
        with self._lock:
            self.pods = pods
            self.store.initialize(pods.env)

    def stop(self) -> None:
        with self._lock:
            self.pods = None

    def reset(self) -> None:
        with self._lock:
            self.pods = None
            self.store = Store()

    def loopback(self) -> tuple[str, int] | None:
        """Where it answers while a pod runs (a route listener); None otherwise."""
        return self.address if self.pods is not None else None

    # -- the public API -----------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        with self._lock:
            if self.pods is None:  # a client that kept the old address: nothing runs there
                return Response(503, {"message": "no LangFuse web pod is running"})
            return self._route(request, self.pods)

    def _route(self, request: Request, pods: Pods) -> Response:
        path = request.path.rstrip("/") or "/"
        method = request.method
        if path == "/api/public/health":  # no auth; checks the database (SELECT 1)
            return Response(200, {"status": "OK", "version": pods.version})
        if path == "/api/public/projects":
            return self._authed(request, ("GET",), self._projects)
        if path == "/api/public/otel/v1/traces":
            return self._authed(request, ("POST",), self._otel)
        if path == "/api/public/ingestion":
            if method != "POST":
                return _method_not_allowed()
            return self._ingestion(request)
        if _TRACE_PATH.fullmatch(path):
            return self._authed(request, ("GET",), self._trace)
        return Response(404, _NOT_FOUND_PAGE, {"Content-Type": "text/html; charset=utf-8"})

    def _authed(
        self,
        request: Request,
        methods: tuple[str, ...],
        handler: Callable[[Request, str], Response],
    ) -> Response:
        """createAuthedProjectAPIRoute: Basic auth with a secret key (project access)."""
        if request.method not in methods:
            return _method_not_allowed()
        try:
            project_id, access = self.store.authenticate(request.headers.get("authorization"))
        except AuthError as error:
            return Response(error.status, {"message": error.message})
        if access != "project":
            return Response(
                403, {"message": "Access denied - insufficient permissions for this endpoint"}
            )
        return handler(request, project_id)

    def _projects(self, request: Request, project_id: str) -> Response:
        return Response(200, {"data": [self.store.project(project_id)]})

    def _otel(self, request: Request, project_id: str) -> Response:
        version = request.headers.get("x-langfuse-ingestion-version")
        if version is not None and (not version.isdigit() or int(version) > 4):
            message = (
                f'Unsupported x-langfuse-ingestion-version: "{version}". Maximum supported: "4".'
            )
            return Response(400, {"error": message})
        try:
            spans = decode_spans(
                request.body,
                request.headers.get("content-type", ""),
                request.headers.get("content-encoding", ""),
            )
        except OtelError as error:
            return Response(400, {"error": str(error)})
        known = {trace_id for (project, trace_id) in self.store.traces if project == project_id}
        visible_at = time.time() + self.visible_after()
        for event in span_events(spans, known):
            self.store.apply(project_id, event, visible_at)
        return Response(200, {})

    def _ingestion(self, request: Request) -> Response:
        """POST /api/public/ingestion: 207 with per-event successes and errors."""
        try:
            project_id, access = self.store.authenticate(request.headers.get("authorization"))
        except AuthError as error:
            return Response(error.status, {"message": error.message})
        try:
            body = request.json()
        except ValueError:
            return Response(400, {"message": "Invalid request data", "errors": ["Invalid JSON"]})
        batch = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(batch, list):
            return Response(400, {"message": "Invalid request data", "errors": ["Required"]})
        successes: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        visible_at = time.time() + self.visible_after()
        for event in batch:
            event_id, problem = validate_event(event)
            if problem is not None:
                errors.append({"id": event_id, "status": 400, "message": "Invalid request data",
                               "error": problem})  # fmt: skip
                continue
            if access != "project" and event.get("type") not in ("score-create", "sdk-log"):
                errors.append({"id": event_id, "status": 401, "message": "Authentication error",
                               "error": "Access Scope Denied"})  # fmt: skip
                continue
            self.store.apply(project_id, event, visible_at)
            if event.get("type") != "sdk-log":
                successes.append({"id": event_id, "status": 201})
        return Response(207, {"successes": successes, "errors": errors})

    def _trace(self, request: Request, project_id: str) -> Response:
        match = _TRACE_PATH.fullmatch(request.path.rstrip("/"))
        trace_id = match.group(1) if match else ""
        found = self.store.trace(project_id, trace_id)
        if found is None:
            message = f"Trace {trace_id} not found within authorized project"
            return Response(404, {"message": message, "error": "LangfuseNotFoundError"})
        return Response(200, found)


def _method_not_allowed() -> Response:
    return Response(405, {"message": "Method not allowed", "error": "MethodNotAllowedError"})
