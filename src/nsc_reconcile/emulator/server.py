"""HTTP plumbing shared by every emulated interface (ARM, Key Vault, Kubernetes).

Turns sockets into ``protocol.Request`` values for a ``Plane`` and back, on 127.0.0.1 only, with
HTTP/1.1 keep-alive and optional TLS from a CA made at start; owns the shared request log, fault
rules and latency (``Controls``). Knows nothing about ARM semantics.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from nsc_reconcile.emulator.protocol import Plane, Request, Response

__all__ = [
    "FAIL_LRO_HEADER",
    "Controls",
    "FaultRule",
    "HttpServer",
    "TlsFiles",
    "make_tls",
]

# A fail_lro fault is handed to the plane as this request header (JSON {"code", "message"}).
FAIL_LRO_HEADER = "x-nsc-emulator-fail-lro"
FAULT_ACTIONS = ("respond", "drop", "fail_lro")
_LOGGED_REQUEST_HEADERS = ("content-type", "if-match", "if-none-match", "authorization")
_LOGGED_RESPONSE_HEADERS = (
    "content-type",
    "etag",
    "location",
    "azure-asyncoperation",
    "retry-after",
    "www-authenticate",
)


@dataclass
class FaultRule:
    """One injected fault. ``path`` is a regex searched in the request path (no query).

    ``count`` is how many matching requests it affects before it expires (None = never).
    """

    path: str
    method: str | None = None
    status: int = 500
    code: str = "InternalServerError"
    message: str = "Injected fault."
    retry_after: int | None = None
    count: int | None = 1
    action: str = "respond"
    inner_code: str | None = None  # Key Vault style error.innererror.code
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.action not in FAULT_ACTIONS:
            raise ValueError(f"fault action must be one of {FAULT_ACTIONS}, not {self.action!r}")
        try:
            self.pattern = re.compile(self.path)
        except re.error as exc:
            raise ValueError(f"fault path {self.path!r} is not a valid regex: {exc}") from exc

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        """Build a rule from the control interface's JSON; raises ValueError/TypeError."""
        known = {
            "path",
            "method",
            "status",
            "code",
            "message",
            "retry_after",
            "count",
            "action",
            "inner_code",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {sorted(unknown)}")
        if "path" not in data:
            raise ValueError("a fault needs 'path' (a regex searched in the request path)")
        retry_after = data.get("retry_after")
        count = data.get("count", 1)
        return cls(
            path=str(data["path"]),
            method=str(data["method"]).upper() if data.get("method") else None,
            status=int(data.get("status", 500)),
            code=str(data.get("code", "InternalServerError")),
            message=str(data.get("message", "Injected fault.")),
            retry_after=None if retry_after is None else int(retry_after),
            count=None if count is None else int(count),
            action=str(data.get("action", "respond")),
            inner_code=str(data["inner_code"]) if data.get("inner_code") else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "method": self.method,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "retry_after": self.retry_after,
            "count": self.count,
            "action": self.action,
            "inner_code": self.inner_code,
        }

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return self.pattern.search(path) is not None

    def error_response(self) -> Response:
        headers = {"x-ms-failure-cause": "emulator-fault"}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner_code:
            error["innererror"] = {"code": self.inner_code}
        return Response(self.status, {"error": error}, headers)


class Controls:
    """State shared by every server of one emulator: request log, faults, latency. Thread-safe."""

    def __init__(self, keep_history: bool = False) -> None:
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        # When set, entries removed by clear_requests() stay available in history().
        self.keep_history = keep_history
        self._history: list[dict[str, Any]] = []
        self._faults: list[FaultRule] = []
        self.latency_ms = 0.0

    # request log -----------------------------------------------------------------------------
    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        """A copy of the log, oldest first."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            if self.keep_history:
                self._history.extend(self._log)
            self._log.clear()

    def history(self) -> list[dict[str, Any]]:
        """Every entry since start (cleared ones too, when ``keep_history``), oldest first."""
        with self._lock:
            return [*self._history, *self._log]

    # faults ----------------------------------------------------------------------------------
    def add_faults(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._faults.extend(rules)

    def faults(self) -> list[FaultRule]:
        with self._lock:
            return list(self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> FaultRule | None:
        """The first live rule matching the request, consuming one of its ``count``."""
        with self._lock:
            for rule in self._faults:
                if rule.matches(method, path):
                    if rule.count is not None:
                        rule.count -= 1
                        if rule.count <= 0:
                            self._faults.remove(rule)
                    return rule
        return None


# The names a data plane of the emulated world answers for, besides loopback: the public and
# private-link names of the services behind private endpoints (a client verifies the
# certificate against the service's real host name, as on Azure, while it dials loopback).
SERVICE_NAMES = (
    "*.openai.azure.com",
    "*.privatelink.openai.azure.com",
    "*.cognitiveservices.azure.com",
    "*.privatelink.cognitiveservices.azure.com",
    "*.postgres.database.azure.com",
    "*.privatelink.postgres.database.azure.com",
)


@dataclass(frozen=True)
class TlsFiles:
    """A CA made at start and one server certificate signed by it: for 127.0.0.1/localhost
    and the Azure service names of ``SERVICE_NAMES``; also as PEM files (``leaf_cert``,
    ``leaf_key``) for a server that reads files (PostgreSQL)."""

    directory: Path
    ca_cert: Path
    context: ssl.SSLContext
    leaf_cert: Path
    leaf_key: Path


def make_tls(directory: Path | None = None) -> TlsFiles:
    """Create a fresh CA (trustme) and a server context; writes the CA PEM as ``ca.pem``."""
    import trustme  # imported here: only the TLS planes need it

    folder = directory or Path(tempfile.mkdtemp(prefix="nsc-emulator-tls-"))
    ca = trustme.CA(organization_name="nsc-reconcile emulator")
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1", *SERVICE_NAMES)
    ca_path = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key_path.write_bytes(leaf.private_key_pem.bytes())
    key_path.chmod(0o600)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return TlsFiles(
        directory=folder, ca_cert=ca_path, context=context, leaf_cert=cert_path, leaf_key=key_path
    )


def _loggable(name: str, value: str) -> str:
    """A request header as the log keeps it: Basic credentials (LangFuse project keys, which
    are Key Vault secrets) are never kept; bearer tokens are (tests check which was sent)."""
    if name == "authorization" and value[:6].lower() == "basic ":
        return "Basic <redacted>"
    return value


def _decoded(body: bytes, content_type: str, encoding: str = "") -> Any:
    """A body for the log: parsed JSON when it is JSON, text otherwise, None when empty.
    A gzip body (Logs Ingestion uploads) is logged decompressed."""
    if not body:
        return None
    if encoding.lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except OSError:
            return f"<{len(body)} bytes, not valid gzip>"
    if "json" in content_type or body[:1] in (b"{", b"["):
        try:
            return json.loads(body)
        except ValueError:
            pass
    return body.decode("utf-8", "replace")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # An idle keep-alive connection is closed after this long; clients reconnect transparently.
    timeout = 120

    def setup(self) -> None:
        super().setup()
        # One write per response plus no Nagle: avoids the 40 ms delayed-ACK stall.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return  # the structured request log replaces stderr noise

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        started = time.perf_counter()
        srv = self.server
        controls = srv.controls
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self._read_body()
        method = self.command.upper()
        request = Request(method=method, path=path, query=query, headers=headers, body=body)
        entry: dict[str, Any] = {
            "plane": srv.plane_name,
            "method": method,
            "path": path,
            "query": query,
            "url": self.path,
            "request_headers": {
                k: _loggable(k, headers[k]) for k in _LOGGED_REQUEST_HEADERS if k in headers
            },
            "request_body": _decoded(
                body, headers.get("content-type", ""), headers.get("content-encoding", "")
            ),
            "time": time.time(),
            "fault": None,
        }
        is_control = path.startswith("/_emulator/")
        if controls.latency_ms > 0 and not is_control:
            time.sleep(controls.latency_ms / 1000.0)
        rule = None if is_control else controls.take_fault(method, path)
        if rule is not None and rule.action == "drop":
            entry.update(status=None, response_body=None, response_headers={}, fault="drop")
            entry["duration_ms"] = (time.perf_counter() - started) * 1000
            controls.record(entry)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if rule is not None and rule.action == "respond":
            # A plane may shape injected errors as its service does (``fault_response``).
            shape = getattr(srv.plane, "fault_response", None)
            response = shape(rule) if callable(shape) else rule.error_response()
            entry["fault"] = "respond"
        else:
            if rule is not None:  # fail_lro: the plane ends the operation it starts as Failed
                entry["fault"] = "fail_lro"
                fail = json.dumps({"code": rule.code, "message": rule.message})
                request = Request(method, path, query, {**headers, FAIL_LRO_HEADER: fail}, body)
            try:
                response = srv.plane.handle(request)
            except Exception as exc:  # a plane bug must answer 500, not hang the client
                body_text = f"{type(exc).__name__}: {exc}"
                response = Response(
                    500, {"error": {"code": "InternalServerError", "message": body_text}}
                )
        out_headers = {k.lower(): v for k, v in response.headers.items()}
        entry.update(
            status=response.status,
            response_headers={
                k: out_headers[k] for k in _LOGGED_RESPONSE_HEADERS if k in out_headers
            },
            response_body=response.body if not isinstance(response.body, bytes) else None,
        )
        if isinstance(response.body, bytes):
            entry["response_body"] = _decoded(response.body, out_headers.get("content-type", ""))
        entry["duration_ms"] = (time.perf_counter() - started) * 1000
        # Logged before the answer leaves: a client that saw the answer also sees the entry.
        if not is_control:  # the control interface's own calls would only be noise
            controls.record(entry)
        self._send(response, method == "HEAD")

    def _send(self, response: Response, head_only: bool) -> None:
        payload = response.encoded()
        headers = dict(response.headers)
        lowered = {k.lower() for k in headers}
        if "content-type" not in lowered and payload:
            headers["Content-Type"] = "application/json; charset=utf-8"
        if "x-ms-request-id" not in lowered:
            headers["x-ms-request-id"] = str(uuid.uuid4())
        headers["Content-Length"] = str(len(payload))
        reason = self.responses.get(response.status, ("",))[0]
        lines = [f"HTTP/1.1 {response.status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if head_only else head + payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # listen() backlog (socketserver's default is 5): a client opening dozens of connections
    # at once, as a plan's parallel reads do, would see SYNs dropped and retried after 1 s.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        plane: Plane,
        plane_name: str,
        controls: Controls,
    ) -> None:
        super().__init__(address, _Handler)
        self.plane = plane
        self.plane_name = plane_name
        self.controls = controls


class HttpServer:
    """One plane served on 127.0.0.1 (HTTP, or HTTPS when ``tls`` is given) in a thread."""

    def __init__(
        self,
        plane: Plane,
        plane_name: str,
        controls: Controls,
        port: int = 0,
        host: str = "127.0.0.1",
        tls: TlsFiles | None = None,
    ) -> None:
        self._server = _Server((host, port), plane, plane_name, controls)
        if tls is not None:
            # Handshake lazily in the handler thread, never in the accept loop.
            self._server.socket = tls.context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if tls is not None else "http"
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"{self.scheme}://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"emulator-{self._server.plane_name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
