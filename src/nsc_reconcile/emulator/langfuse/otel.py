"""OTLP/HTTP trace export bodies (protobuf, as the LangFuse SDKs send them, or OTLP JSON) turned
into LangFuse ingestion events, the way LangFuse's ``OtelIngestionProcessor`` does: a span
becomes an observation (``langfuse.observation.*`` attributes), a root span (or one carrying
``langfuse.trace.*`` attributes) also creates or updates its trace. Pure functions, no state.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["OtelError", "Span", "decode_spans", "iso_time", "span_events"]

OBSERVATION_TYPES = (
    "span", "generation", "event", "agent", "tool", "chain",
    "retriever", "evaluator", "embedding", "guardrail",
)  # fmt: skip
_TRACE_UPDATE_KEYS = (
    "langfuse.trace.name", "langfuse.trace.input", "langfuse.trace.output", "langfuse.trace.tags",
    "langfuse.trace.public", "user.id", "session.id", "langfuse.user.id", "langfuse.session.id",
)  # fmt: skip


class OtelError(ValueError):
    """The body cannot be read; ``str()`` is LangFuse's error text for a 400."""


@dataclass
class Span:
    """One span as LangFuse reads it (ids in lower-case hex)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: int = 0
    status_message: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    scope: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- decoding
def decode_spans(body: bytes, content_type: str, content_encoding: str) -> list[Span]:
    """The spans of one ``POST /api/public/otel/v1/traces`` body. Raises OtelError with
    LangFuse's messages (bad gzip, content type, protobuf or JSON)."""
    if "gzip" in content_encoding.lower():
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as error:
            raise OtelError("Failed to decompress request body") from error
    kind = content_type.lower()
    if "application/x-protobuf" in kind:
        return _from_protobuf(body)
    if "application/json" in kind:
        try:
            loaded = json.loads(body or b"{}")
        except ValueError as error:
            raise OtelError("Failed to parse OTel JSON Trace") from error
        return _from_json(loaded)
    raise OtelError("Invalid content type")


def _from_protobuf(body: bytes) -> list[Span]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        request = ExportTraceServiceRequest.FromString(body)
    except Exception as error:  # google.protobuf's DecodeError
        raise OtelError("Failed to parse OTel Protobuf Trace") from error
    spans: list[Span] = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _proto_value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            scope = {
                "name": scope_spans.scope.name,
                "version": scope_spans.scope.version,
                "attributes": {
                    kv.key: _proto_value(kv.value) for kv in scope_spans.scope.attributes
                },
            }
            for span in scope_spans.spans:
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes={kv.key: _proto_value(kv.value) for kv in span.attributes},
                        status_code=span.status.code,
                        status_message=span.status.message,
                        resource=resource,
                        scope=scope,
                    )
                )
    return spans


def _proto_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_proto_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _proto_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which) if which else None


def _from_json(loaded: Any) -> list[Span]:
    """OTLP JSON (camelCase keys, hex ids, int64 as strings); base64 ids are accepted too."""
    spans: list[Span] = []
    resource_spans = loaded.get("resourceSpans") if isinstance(loaded, dict) else None
    for item in resource_spans or []:
        resource = _json_attributes((item.get("resource") or {}).get("attributes"))
        for scope_spans in item.get("scopeSpans") or []:
            raw_scope = scope_spans.get("scope") or {}
            scope = {
                "name": str(raw_scope.get("name") or ""),
                "version": str(raw_scope.get("version") or ""),
                "attributes": _json_attributes(raw_scope.get("attributes")),
            }
            for span in scope_spans.get("spans") or []:
                status = span.get("status") or {}
                spans.append(
                    Span(
                        trace_id=_json_id(span.get("traceId"), 16),
                        span_id=_json_id(span.get("spanId"), 8),
                        parent_id=_json_id(span.get("parentSpanId"), 8) or None,
                        name=str(span.get("name") or ""),
                        start_ns=int(span.get("startTimeUnixNano") or 0),
                        end_ns=int(span.get("endTimeUnixNano") or 0),
                        attributes=_json_attributes(span.get("attributes")),
                        status_code=int(status.get("code") or 0),
                        status_message=str(status.get("message") or ""),
                        resource=resource,
                        scope=scope,
                    )
                )
    return spans


def _json_id(value: Any, size: int) -> str:
    text = str(value or "")
    if len(text) == 2 * size and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower()
    try:
        return base64.b64decode(text, validate=True).hex() if text else ""
    except (binascii.Error, ValueError):
        return text


def _json_attributes(items: Any) -> dict[str, Any]:
    return {
        str(kv.get("key")): _json_value(kv.get("value") or {})
        for kv in items or []
        if isinstance(kv, dict)
    }


def _json_value(value: dict[str, Any]) -> Any:
    if "arrayValue" in value:
        return [_json_value(v) for v in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        return _json_attributes((value["kvlistValue"] or {}).get("values"))
    if "intValue" in value:
        return int(value["intValue"])
    for key in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if key in value:
            return value[key]
    return None


# ---------------------------------------------------------------------------- events
def iso_time(nanoseconds: int) -> str:
    """``2026-01-02T03:04:05.678Z`` (milliseconds, UTC), as LangFuse writes timestamps."""
    moment = datetime.fromtimestamp(nanoseconds / 1e9, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def span_events(spans: list[Span], known_traces: set[str]) -> list[dict[str, Any]]:
    """Ingestion events (``trace-create``, ``<type>-create``) for ``spans``; a trace event is
    made for a root span, a span with trace attributes, or a trace not seen before
    (``known_traces`` is updated)."""
    events: list[dict[str, Any]] = []
    for span in spans:
        attributes = span.attributes
        start = iso_time(span.start_ns)
        is_root = (
            span.parent_id is None
            or str(attributes.get("langfuse.internal.as_root")).lower() == "true"
        )
        updates = any(k in attributes for k in _TRACE_UPDATE_KEYS) or any(
            k.startswith("langfuse.trace.metadata") for k in attributes
        )
        environment = _environment(span)
        if is_root or updates or span.trace_id not in known_traces:
            body: dict[str, Any] = {"id": span.trace_id, "timestamp": start,
                                    "environment": environment}  # fmt: skip
            if is_root or updates:
                body.update(_trace_fields(span, is_root))
            events.append(_event("trace-create", start, body))
            known_traces.add(span.trace_id)
        events.append(_observation_event(span, start, environment))
    return events


def _event(kind: str, timestamp: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": kind, "timestamp": timestamp, "body": body}


def _environment(span: Span) -> str:
    return str(
        span.attributes.get("langfuse.environment")
        or span.resource.get("deployment.environment.name")
        or span.resource.get("deployment.environment")
        or "default"
    )


def _trace_fields(span: Span, is_root: bool) -> dict[str, Any]:
    attributes = span.attributes
    name = attributes.get("langfuse.trace.name")
    if name is None and is_root:
        name = span.name
    tags = attributes.get("langfuse.trace.tags")
    if isinstance(tags, str):
        parsed = parse_value(tags)
        tags = parsed if isinstance(parsed, list) else [tags]
    trace_input = attributes.get("langfuse.trace.input")
    trace_output = attributes.get("langfuse.trace.output")
    metadata = _metadata(attributes, "trace")
    if is_root:
        metadata = {**_metadata(attributes, "observation"), **metadata}
        trace_input = trace_input if trace_input is not None else _io(attributes, "input")
        trace_output = trace_output if trace_output is not None else _io(attributes, "output")
    public = attributes.get("langfuse.trace.public")
    return {
        "name": name,
        "metadata": {**metadata, "resourceAttributes": span.resource, "scope": span.scope},
        "userId": attributes.get("user.id") or attributes.get("langfuse.user.id"),
        "sessionId": attributes.get("session.id") or attributes.get("langfuse.session.id"),
        "tags": [str(t) for t in tags] if isinstance(tags, list) else None,
        "public": None if public is None else str(public).lower() == "true",
        "release": attributes.get("langfuse.release") or span.resource.get("langfuse.release"),
        "version": attributes.get("langfuse.version") or span.resource.get("service.version"),
        "input": parse_value(trace_input),
        "output": parse_value(trace_output),
    }


def _observation_event(span: Span, start: str, environment: str) -> dict[str, Any]:
    attributes = span.attributes
    kind = str(attributes.get("langfuse.observation.type") or "span").lower()
    kind = kind if kind in OBSERVATION_TYPES else "span"
    level = attributes.get("langfuse.observation.level") or (
        "ERROR" if span.status_code == 2 else "DEFAULT"
    )
    body = {
        "id": span.span_id,
        "traceId": span.trace_id,
        "parentObservationId": span.parent_id,
        "type": kind.upper(),
        "name": span.name,
        "startTime": start,
        "endTime": iso_time(span.end_ns) if span.end_ns else None,
        "environment": environment,
        "completionStartTime": parse_value(
            attributes.get("langfuse.observation.completion_start_time")
        ),
        "metadata": {
            **_metadata(attributes, "observation"),
            "resourceAttributes": span.resource,
            "scope": span.scope,
        },
        "level": str(level).upper(),
        "statusMessage": attributes.get("langfuse.observation.status_message")
        or span.status_message
        or None,
        "version": attributes.get("langfuse.version"),
        "model": attributes.get("langfuse.observation.model.name"),
        "modelParameters": parse_value(attributes.get("langfuse.observation.model.parameters")),
        "usageDetails": parse_value(attributes.get("langfuse.observation.usage_details")),
        "costDetails": parse_value(attributes.get("langfuse.observation.cost_details")),
        "input": _io(attributes, "input"),
        "output": _io(attributes, "output"),
    }
    return _event(f"{kind}-create", start, body)


def _io(attributes: dict[str, Any], which: str) -> Any:
    return parse_value(attributes.get(f"langfuse.observation.{which}"))


def _metadata(attributes: dict[str, Any], domain: str) -> dict[str, Any]:
    prefix = f"langfuse.{domain}.metadata"
    out: dict[str, Any] = {}
    whole = parse_value(attributes.get(prefix))
    if isinstance(whole, dict):
        out.update(whole)
    for key, value in attributes.items():
        if key.startswith(prefix + "."):
            out[key[len(prefix) + 1 :]] = parse_value(value)
    return out


def parse_value(value: Any) -> Any:
    """An attribute value as LangFuse stores it: JSON text parsed, anything else as is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
