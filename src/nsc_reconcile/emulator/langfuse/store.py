"""What one LangFuse instance keeps, in memory: its PostgreSQL part (organizations, projects and
API keys, secret keys stored hashed only) and its ClickHouse part (traces, observations,
scores); ingestion events validated and applied as the worker does; a trace rendered as
``GET /api/public/traces/{traceId}`` returns it. No HTTP and no locking here (the web holds
the lock).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nsc_reconcile.emulator.langfuse.otel import iso_time

__all__ = ["EVENT_TYPES", "AuthError", "Store", "validate_event"]

# LangFuse v3's ingestion event types (``eventTypes``); ``<type>-create`` of the observation
# types of ``otel.OBSERVATION_TYPES`` are among them.
EVENT_TYPES = (
    "trace-create", "score-create", "span-create", "span-update", "generation-create",
    "generation-update", "event-create", "sdk-log", "observation-create", "observation-update",
    "dataset-run-item-create", "agent-create", "tool-create", "chain-create", "retriever-create",
    "evaluator-create", "embedding-create", "guardrail-create",
)  # fmt: skip
_SUFFIX = ". Confirm that you've configured the correct host."


class AuthError(Exception):
    """A refused credential: ``status`` and LangFuse's ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ApiKey:
    public_key: str
    project_id: str
    salt: bytes
    hashed: bytes  # the secret key is never kept, only its salted hash


@dataclass
class Record:
    """A trace or an observation: its fields and when the read side sees it."""

    fields: dict[str, Any]
    visible_at: float
    created: str


@dataclass
class Store:
    """One LangFuse instance's data (see the module docstring)."""

    organizations: dict[str, str] = field(default_factory=dict)  # id -> name
    projects: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> name, orgId
    keys: dict[str, ApiKey] = field(default_factory=dict)  # public key -> key
    traces: dict[tuple[str, str], Record] = field(default_factory=dict)  # (project, id)
    observations: dict[tuple[str, str], Record] = field(default_factory=dict)
    scores: list[tuple[str, Record]] = field(default_factory=list)  # (project, score)

    # -- headless initialization (web/src/initialize.ts) --------------------------------------
    def initialize(self, env: dict[str, str]) -> None:
        """What the web container does at every start from its ``LANGFUSE_INIT_*``
        environment: upsert the organization and project (never renamed), and add the API key
        only when its PUBLIC key is unknown (or belongs to another project). A key whose public
        key exists keeps its old secret: a changed secret key in the environment is ignored."""
        org_id = env.get("LANGFUSE_INIT_ORG_ID")
        if not org_id:
            return
        self.organizations.setdefault(
            org_id, env.get("LANGFUSE_INIT_ORG_NAME") or "Provisioned Org"
        )
        project_id = env.get("LANGFUSE_INIT_PROJECT_ID")
        if not project_id:
            return
        self.projects.setdefault(
            project_id,
            {"name": env.get("LANGFUSE_INIT_PROJECT_NAME") or "Provisioned Project",
             "orgId": org_id},
        )  # fmt: skip
        public_key = env.get("LANGFUSE_INIT_PROJECT_PUBLIC_KEY")
        secret_key = env.get("LANGFUSE_INIT_PROJECT_SECRET_KEY")
        if not public_key or not secret_key:
            return
        existing = self.keys.get(public_key)
        if existing is None or existing.project_id != project_id:
            salt = secrets.token_bytes(16)
            self.keys[public_key] = ApiKey(public_key, project_id, salt, _hash(salt, secret_key))

    # -- authentication (web/src/features/public-api/server/apiAuth.ts) ---------------------
    def authenticate(self, header: str | None) -> tuple[str, str]:
        """(project id, access level "project"|"scores") for an Authorization header; raises
        AuthError(401) with LangFuse's message otherwise."""
        if not header:
            raise AuthError(401, "No authorization header")
        if header.startswith("Basic "):
            try:
                decoded = _basic(header)
            except ValueError:
                raise AuthError(401, "Invalid authorization header" + _SUFFIX) from None
            public_key, secret_key = decoded
            key = self.keys.get(public_key)
            if key is None:
                raise AuthError(401, "Invalid public key" + _SUFFIX)
            if not hmac.compare_digest(key.hashed, _hash(key.salt, secret_key)):
                raise AuthError(401, "Invalid credentials" + _SUFFIX)
            return key.project_id, "project"
        if header.startswith("Bearer "):
            key = self.keys.get(header[len("Bearer ") :])
            if key is None:
                raise AuthError(401, "Invalid public key" + _SUFFIX)
            return key.project_id, "scores"
        raise AuthError(401, "Invalid authorization header")

    def project(self, project_id: str) -> dict[str, Any]:
        """The project as ``GET /api/public/projects`` lists it."""
        project = self.projects.get(project_id) or {"name": project_id, "orgId": ""}
        org_id = project["orgId"]
        return {
            "id": project_id,
            "name": project["name"],
            "organization": {"id": org_id, "name": self.organizations.get(org_id, "")},
            "metadata": {},
        }

    # -- ingestion (the worker's processing of events) --------------------------------------
    def apply(self, project_id: str, event: dict[str, Any], visible_at: float) -> None:
        """Apply one validated ingestion event; readable from ``visible_at`` (time.time())."""
        kind, body = str(event["type"]), dict(event.get("body") or {})
        now = _now()
        if kind == "trace-create":
            trace_id = str(body.get("id") or uuid.uuid4())
            body["id"] = trace_id
            body.setdefault("timestamp", event.get("timestamp"))
            self._upsert(self.traces, (project_id, trace_id), body, visible_at, now)
        elif kind == "score-create":
            body.setdefault("id", str(uuid.uuid4()))
            body.setdefault("timestamp", event.get("timestamp"))
            self.scores.append((project_id, Record(body, visible_at, now)))
        elif kind not in ("sdk-log", "dataset-run-item-create"):
            observation_type = kind.rsplit("-", 1)[0].upper()
            if observation_type == "OBSERVATION":
                observation_type = str(body.get("type") or "SPAN").upper()
            if kind.endswith("-create"):
                body["type"] = observation_type
            trace_id = str(body.get("traceId") or "")
            if not trace_id:  # an observation without a trace gets a new trace
                trace_id = str(uuid.uuid4())
                body["traceId"] = trace_id
            if (project_id, trace_id) not in self.traces:  # a shallow trace until its own event
                trace = {"id": trace_id, "timestamp": body.get("startTime") or event["timestamp"]}
                self.traces[(project_id, trace_id)] = Record(trace, visible_at, now)
            observation_id = str(body.get("id") or uuid.uuid4())
            body["id"] = observation_id
            self._upsert(self.observations, (project_id, observation_id), body, visible_at, now)

    @staticmethod
    def _upsert(
        table: dict[tuple[str, str], Record],
        key: tuple[str, str],
        body: dict[str, Any],
        visible_at: float,
        now: str,
    ) -> None:
        record = table.get(key)
        if record is None:
            table[key] = Record({k: v for k, v in body.items() if v is not None}, visible_at, now)
            return
        for name, value in body.items():
            if value is None:
                continue
            if name == "metadata" and isinstance(value, dict):
                record.fields["metadata"] = {**(record.fields.get("metadata") or {}), **value}
            elif name == "tags" and isinstance(value, list):
                record.fields["tags"] = sorted({*(record.fields.get("tags") or []), *value})
            else:
                record.fields[name] = value
        record.fields["updatedAt"] = now

    # -- reading ----------------------------------------------------------------------------
    def trace(self, project_id: str, trace_id: str) -> dict[str, Any] | None:
        """The trace as the public API returns it, None when unknown or not yet processed."""
        now = time.time()
        record = self.traces.get((project_id, trace_id))
        if record is None or record.visible_at > now:
            return None
        observations = sorted(
            (
                _observation(project_id, r)
                for (project, _), r in self.observations.items()
                if project == project_id
                and r.fields.get("traceId") == trace_id
                and r.visible_at <= now
            ),
            key=lambda o: str(o.get("startTime") or ""),
        )
        scores = [
            {**r.fields, "projectId": project_id}
            for project, r in self.scores
            if project == project_id and r.fields.get("traceId") == trace_id and r.visible_at <= now
        ]
        fields = record.fields
        return {
            "id": trace_id,
            "projectId": project_id,
            "name": fields.get("name"),
            "timestamp": fields.get("timestamp"),
            "environment": fields.get("environment") or "default",
            "tags": fields.get("tags") or [],
            "bookmarked": False,
            "release": fields.get("release"),
            "version": fields.get("version"),
            "userId": fields.get("userId"),
            "sessionId": fields.get("sessionId"),
            "public": bool(fields.get("public")),
            "input": fields.get("input"),
            "output": fields.get("output"),
            "metadata": fields.get("metadata") or {},
            "createdAt": record.created,
            "updatedAt": fields.get("updatedAt") or record.created,
            "externalId": None,
            "scores": scores,
            "latency": _latency(observations),
            "observations": observations,
            "htmlPath": f"/project/{project_id}/traces/{trace_id}",
            "totalCost": 0,
        }


def _observation(project_id: str, record: Record) -> dict[str, Any]:
    fields = record.fields
    start, end = _seconds(fields.get("startTime")), _seconds(fields.get("endTime"))
    return {
        "id": fields.get("id"),
        "traceId": fields.get("traceId"),
        "projectId": project_id,
        "type": fields.get("type") or "SPAN",
        "environment": fields.get("environment") or "default",
        "parentObservationId": fields.get("parentObservationId"),
        "startTime": fields.get("startTime"),
        "endTime": fields.get("endTime"),
        "name": fields.get("name"),
        "metadata": fields.get("metadata") or {},
        "level": fields.get("level") or "DEFAULT",
        "statusMessage": fields.get("statusMessage"),
        "version": fields.get("version"),
        "input": fields.get("input"),
        "output": fields.get("output"),
        "model": fields.get("model"),
        "modelParameters": fields.get("modelParameters") or {},
        "completionStartTime": fields.get("completionStartTime"),
        "promptId": None,
        "usageDetails": fields.get("usageDetails") or {},
        "costDetails": fields.get("costDetails") or {},
        "usage": {"input": 0, "output": 0, "total": 0, "unit": "TOKENS"},
        "calculatedTotalCost": 0,
        "latency": (end - start) if start is not None and end is not None else None,
        "timeToFirstToken": None,
        "createdAt": record.created,
        "updatedAt": fields.get("updatedAt") or record.created,
    }


def _latency(observations: list[dict[str, Any]]) -> float:
    """Seconds from the first observation's start to the last one's end (as LangFuse)."""
    starts = [s for s in (_seconds(o.get("startTime")) for o in observations) if s is not None]
    ends = [e for e in (_seconds(o.get("endTime")) for o in observations) if e is not None]
    if not starts:
        return 0.0
    if ends:
        return round(max(ends) - min(starts), 3)
    return round(max(starts) - min(starts), 3)


def _seconds(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _now() -> str:
    return iso_time(time.time_ns())


def _hash(salt: bytes, secret_key: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", secret_key.encode(), salt, 1000)


def _basic(header: str) -> tuple[str, str]:
    """(public key, secret key) of ``Basic base64(pk:sk)``, split as LangFuse does
    (``atob(value).split(":")``: the first two parts). Raises ValueError."""
    parts = header.split(" ")
    if len(parts) < 2 or not parts[1]:
        raise ValueError("no credentials")
    try:
        decoded = base64.b64decode(parts[1], validate=True).decode("latin-1")
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64") from error
    pieces = decoded.split(":")
    if len(pieces) < 2 or not pieces[0] or not pieces[1]:
        raise ValueError("needs public:secret")
    return pieces[0], pieces[1]


# ---------------------------------------------------------------------------- validation
def validate_event(event: Any) -> tuple[str, str | None]:
    """(event id, None) for a well-formed ingestion event, else (id or "unknown", zod-style
    error text: a JSON list of issues, as LangFuse's ``InvalidRequestError`` carries)."""
    if not isinstance(event, dict):
        return "unknown", _issues([("invalid_type", [], "Expected object, received " +
                                    type(event).__name__)])  # fmt: skip
    event_id = str(event["id"]) if isinstance(event.get("id"), str) else "unknown"
    problems: list[tuple[str, list[Any], str]] = []
    if not isinstance(event.get("id"), str):
        problems.append(("invalid_type", ["id"], "Required"))
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        expected = " | ".join(f"'{t}'" for t in EVENT_TYPES)
        problems.append(("invalid_union_discriminator", ["type"],
                         f"Invalid discriminator value. Expected {expected}"))  # fmt: skip
    timestamp = event.get("timestamp")
    if not isinstance(timestamp, str) or _seconds(timestamp) is None:
        problems.append(("invalid_string", ["timestamp"], "Invalid datetime"))
    body = event.get("body")
    if not isinstance(body, dict):
        problems.append(("invalid_type", ["body"], "Required"))
    elif kind == "score-create":
        if not isinstance(body.get("name"), str):
            problems.append(("invalid_type", ["body", "name"], "Required"))
        if not isinstance(body.get("value"), int | float | str) or isinstance(
            body.get("value"), bool
        ):
            problems.append(("invalid_union", ["body", "value"], "Invalid input"))
    elif kind in EVENT_TYPES and kind != "sdk-log":
        for name in ("id", "traceId", "name", "parentObservationId", "sessionId", "userId"):
            if body.get(name) is not None and not isinstance(body.get(name), str):
                problems.append(("invalid_type", ["body", name], "Expected string"))
        tags = body.get("tags")
        if tags is not None and not (
            isinstance(tags, list) and all(isinstance(t, str) for t in tags)
        ):
            problems.append(("invalid_type", ["body", "tags"], "Expected array of strings"))
    return event_id, _issues(problems) if problems else None


def _issues(problems: list[tuple[str, list[Any], str]]) -> str:
    return json.dumps(
        [{"code": code, "path": path, "message": message} for code, path, message in problems],
        indent=2,
    )
