"""The emulator's control interface under ``{arm}/_emulator/`` (JSON in, JSON out).

Request log, fault rules, latency/LRO configuration, direct state access (drift), reset and the
ready-line info. Reached on the ARM port; its own calls are not written to the request log.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from nsc_reconcile.emulator.alerting import Alerting
from nsc_reconcile.emulator.arm import World
from nsc_reconcile.emulator.network import Network
from nsc_reconcile.emulator.protocol import Request, Response
from nsc_reconcile.emulator.server import Controls, FaultRule

__all__ = ["PREFIX", "ControlPlane"]

PREFIX = "/_emulator/"


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, {"error": {"code": code, "message": message}})


class ControlPlane:
    """Answers ``/_emulator/...``; everything else is not its business (404)."""

    def __init__(
        self,
        world: World,
        controls: Controls,
        info: Callable[[], dict[str, Any]],
        reset: Callable[[], None],
        network: Network | None = None,
        alerting: Alerting | None = None,
    ) -> None:
        self.world = world
        self.alerting = alerting
        self.network = network
        self.controls = controls
        self._info = info
        self._reset = reset

    def handle(self, request: Request) -> Response:
        what = request.path[len(PREFIX) :].strip("/")
        route = (request.method, what)
        try:
            body = request.json()
        except ValueError as exc:
            return _error(400, "InvalidRequestContent", f"malformed JSON: {exc}")
        if route == ("GET", "requests"):
            return Response(200, self.controls.requests())
        if route == ("DELETE", "requests"):
            self.controls.clear_requests()
            return Response(204)
        if route == ("GET", "faults"):
            return Response(200, [rule.to_json() for rule in self.controls.faults()])
        if route == ("POST", "faults"):
            return self._add_faults(body)
        if route == ("DELETE", "faults"):
            self.controls.clear_faults()
            return Response(204)
        if route == ("GET", "config"):
            return Response(200, self._config())
        if route == ("POST", "config"):
            return self._configure(body)
        if what == "state":
            return self._state(request, body)
        if route == ("GET", "logs"):  # rows accepted by the Logs Ingestion API
            table = request.query.get("table")
            with self.world.lock:
                if table is not None:
                    return Response(200, list(self.world.logs.get(table, [])))
                return Response(200, {name: list(rows) for name, rows in self.world.logs.items()})
        if route in (("GET", "notifications"), ("GET", "alert-evaluations")):
            return self._alerting_read(what)
        if route == ("GET", "route"):
            return self._route(request)
        if route == ("POST", "check-password"):
            return self._check_password(body)
        if route == ("POST", "reset"):
            self._reset()
            return Response(200, {"reset": True, "world": self.world.name})
        if route == ("GET", "info"):
            return Response(200, self._info())
        return _error(404, "NotFound", f"no control endpoint {request.method} {request.path}")

    def _add_faults(self, body: Any) -> Response:
        items = body if isinstance(body, list) else [body]
        try:
            rules = [FaultRule.from_json(item) for item in items if isinstance(item, dict)]
        except (ValueError, TypeError) as exc:  # bad regex, field or action
            return _error(400, "InvalidFault", str(exc))
        if len(rules) != len(items):
            return _error(400, "InvalidFault", "faults must be JSON objects")
        self.controls.add_faults(rules)
        return Response(200, [rule.to_json() for rule in self.controls.faults()])

    def _alerting_read(self, what: str) -> Response:
        """Notifications the action groups sent, or each log alert rule's evaluations (its
        schedule, counters, query error); both compute the evaluations that have passed."""
        if self.alerting is None:
            return _error(404, "NotFound", "this emulator evaluates no alert rules")
        if what == "notifications":
            return Response(200, self.alerting.notifications())
        return Response(200, self.alerting.report())

    def _route(self, request: Request) -> Response:
        """Where ``address:port`` of the emulated world is served on loopback:
        ``{"address", "port", "to": "127.0.0.1:N", "what"}``; 404 ``NoRoute`` when nothing
        listens there (a client sees that as a connection that never answers)."""
        address = request.query.get("address", "")
        try:
            port = int(request.query.get("port", ""))
        except ValueError:
            return _error(400, "InvalidRequestContent", "needs ?address=IP&port=N")
        found = self.network.route(address, port) if self.network is not None else None
        if found is None:
            return _error(404, "NoRoute", f"nothing listens at {address}:{port} in this world")
        return Response(200, found.to_json())

    def _check_password(self, body: Any) -> Response:
        """Whether a write-only password (a PostgreSQL server's admin password) is the one
        set last: ``{"id", "password"}`` -> ``{"match": bool}``; 404 when none was set."""
        if not isinstance(body, dict) or not isinstance(body.get("password"), str):
            return _error(400, "InvalidRequestContent", 'needs {"id": ..., "password": ...}')
        rid = str(body.get("id", ""))
        if self.world.get(rid) is None:
            return _error(404, "ResourceNotFound", f"no resource {rid}")
        match = self.world.password_matches(rid, body["password"])
        if match is None:
            return _error(404, "NoPassword", f"no password was set on {rid}")
        return Response(200, {"match": match})

    def _config(self) -> dict[str, Any]:
        return {
            "latency_ms": self.controls.latency_ms,
            "lro_seconds": dict(self.world.lro_seconds),
            "enforce_vault_network": self.world.enforce_vault_network,
            "enforce_vault_rbac": self.world.enforce_vault_rbac,
            "principal_replication_seconds": self.world.principal_replication_seconds,
            "directory_principals": dict(self.world.directory_principals),
            "alert_time_scale": self.alerting.time_scale if self.alerting else None,
        }

    def _configure(self, body: Any) -> Response:
        if not isinstance(body, dict):
            return _error(400, "InvalidConfig", "config must be a JSON object")
        unknown = set(body) - {
            "latency_ms",
            "lro_seconds",
            "enforce_vault_network",
            "enforce_vault_rbac",
            "principal_replication_seconds",
            "directory_principals",
            "alert_time_scale",
        }
        if unknown:
            return _error(400, "InvalidConfig", f"unknown config field(s): {sorted(unknown)}")
        try:
            if "latency_ms" in body:
                self.controls.latency_ms = max(0.0, float(body["latency_ms"]))
            if "enforce_vault_network" in body:
                if not isinstance(body["enforce_vault_network"], bool):
                    raise TypeError("enforce_vault_network must be true or false")
                self.world.enforce_vault_network = body["enforce_vault_network"]
            if "enforce_vault_rbac" in body:
                if not isinstance(body["enforce_vault_rbac"], bool):
                    raise TypeError("enforce_vault_rbac must be true or false")
                self.world.enforce_vault_rbac = body["enforce_vault_rbac"]
            if "principal_replication_seconds" in body:
                seconds = float(body["principal_replication_seconds"])
                if not seconds >= 0:
                    raise ValueError("principal_replication_seconds must be >= 0")
                self.world.principal_replication_seconds = seconds
            if "directory_principals" in body:
                self.world.directory_principals.update(
                    _directory_principals(body["directory_principals"])
                )
            if "alert_time_scale" in body and self.alerting is not None:
                self.alerting.set_time_scale(body["alert_time_scale"])
            lro = body.get("lro_seconds") or {}
            if not isinstance(lro, dict):
                raise TypeError("lro_seconds must map resource types to seconds")
            self.world.configure({str(k): float(v) for k, v in lro.items()})
        except (TypeError, ValueError) as exc:
            return _error(400, "InvalidConfig", str(exc))
        return Response(200, self._config())

    def _state(self, request: Request, body: Any) -> Response:
        rid = request.query.get("id", "")
        if not rid.lower().startswith("/subscriptions/"):
            return _error(400, "InvalidId", "state needs ?id=<ARM resource id>")
        if request.method == "GET":
            with self.world.lock:
                self.world.engine.settle()
                found = self.world.get(rid)
            if found is None:
                return _error(404, "ResourceNotFound", f"no resource {rid}")
            return Response(200, found)
        if request.method == "PUT":
            if not isinstance(body, dict):
                return _error(400, "InvalidRequestContent", "state body must be a JSON object")
            try:
                stored = self.world.put(rid, body)
            except ValueError as exc:
                return _error(400, "InvalidId", str(exc))
            return Response(200, stored)
        if request.method == "DELETE":
            existed = self.world.get(rid) is not None
            self.world.delete(rid)
            return Response(200 if existed else 204)
        return _error(405, "MethodNotAllowed", f"{request.method} is not allowed on state")


_PRINCIPAL_TYPES = {"user": "User", "group": "Group", "serviceprincipal": "ServicePrincipal"}


def _directory_principals(value: Any) -> dict[str, str]:
    """``directory_principals``: ``{object id: "User"|"Group"|"ServicePrincipal"}``, or a list
    of object ids (service principals). Raises TypeError/ValueError on anything else."""
    if isinstance(value, list):
        value = dict.fromkeys(value, "ServicePrincipal")
    if not isinstance(value, dict):
        raise TypeError("directory_principals must map object ids to principal types")
    out = {}
    for object_id, kind in value.items():
        canonical = _PRINCIPAL_TYPES.get(str(kind).lower())
        if canonical is None:
            raise ValueError(f"bad principal type {kind!r} for {object_id!r}")
        out[str(uuid.UUID(str(object_id)))] = canonical  # ValueError unless a GUID
    return out


def encode_info(info: dict[str, Any]) -> str:
    """The ready line: the info dict as one compact JSON line."""
    return json.dumps(info, separators=(",", ":"))
