"""The ARM plane: one generic lifecycle (PUT/PATCH/GET/DELETE/list/POST, LROs, ETags, errors)
for every resource type; a ``Kind`` only validates, populates and adds side effects.

Runs every request under the world's lock; reads and writes resources only through ``World``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from typing import TYPE_CHECKING, Any

from nsc_reconcile.emulator.arm.ids import ParsedPath, normalize_location, parse_path
from nsc_reconcile.emulator.kinds.base import Kind, Resource
from nsc_reconcile.emulator.protocol import ArmError, Request, Response
from nsc_reconcile.emulator.server import FAIL_LRO_HEADER

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm.world import Operation, World

__all__ = ["ArmEngine"]

RG_TYPE = "microsoft.resources/resourcegroups"
_READ_ONLY_TOP = ("id", "name", "type", "etag", "systemData")
_EMULATOR_PRINCIPAL = "nsc-emulator@example.com"


def _not_found(parsed: ParsedPath, type_label: str) -> ArmError:
    name = "/".join(parsed.names)
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{type_label}/{name}' under resource group "
        f"'{parsed.resource_group}' was not found. For more details please go to "
        "https://aka.ms/ARMResourceNotFoundFix",
    )


def _rg_not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def _dig(obj: Any, dotted: str) -> tuple[bool, Any]:
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return False, None
        obj = obj[part]
    return True, obj


def _same(a: Any, b: Any) -> bool:
    """Equality as ARM compares property values: strings (ids, enums) case-insensitively."""
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386) as ARM PATCH applies it to properties."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _etag_matches(header: str, etag: str | None) -> bool:
    if etag is None:
        return False
    wanted = [t.strip() for t in header.split(",")]

    def weak(tag: str) -> str:
        return tag[2:] if tag.startswith("W/") else tag

    return any(t == "*" or weak(t) == weak(etag) for t in wanted)


def _completion(shown_now: Resource, final: Resource) -> Resource:
    """What an operation changes when it ends: the properties whose final value differs from
    what the resource shows while it runs (provisioningState, fields ``Kind.pending`` blanked)."""
    now = shown_now.get("properties") or {}
    done = final.get("properties") or {}
    return {"properties": {k: v for k, v in done.items() if now.get(k) != v}}


def _is_group(resource: Resource) -> bool:
    return str(resource.get("type", "")).lower() == RG_TYPE


def shown(kind: Kind | None, resource: Resource) -> Resource:
    """A stored resource as the wire shows it: without ``type`` for kinds whose REST schema has
    none (``type_field = False``); the store always keeps ``type`` for lookups."""
    if kind is not None and not kind.type_field:
        return {k: v for k, v in resource.items() if k != "type"}
    return resource


class ArmEngine:
    """The ARM plane (``handle(Request) -> Response``) over a ``World``."""

    def __init__(self, world: World) -> None:
        self.world = world
        # The resource each running PUT stores when it succeeds, by operation id.
        self._finals: dict[str, Resource | None] = {}

    # ---- entry point ---------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            with self.world.lock:
                self.settle()
                return self._finished(request, self._dispatch(request))
        except ArmError as err:
            response = err.response()
            kind = self._kind_of_path(request.path)
            if kind is not None and kind.flat_errors:
                response.body = response.body["error"]  # this type's spec: {code, message}
            return self._finished(request, response)

    def _finished(self, request: Request, response: Response) -> Response:
        """The answer as the path's kind finishes it, through its optional ``answer(world,
        request, response)`` hook: headers that are not polling headers (a managed identity's
        201 carries ``Location: <its own id>``), the provider's own 404s, list filters."""
        kind = self._kind_of_path(request.path)
        if kind is None:
            return response
        with self.world.lock:
            return kind.answer(self.world, request, response)

    def _kind_of_path(self, path: str) -> Kind | None:
        try:
            parsed = parse_path(path, "GET")
        except ValueError:  # an unparsable path has no kind
            return None
        return self.world.kind_for(parsed.arm_type) if parsed.namespace else None

    def _dispatch(self, request: Request) -> Response:
        parsed = parse_path(request.path, request.method)
        if parsed.what == "unknown":
            raise ArmError(
                404,
                "NotFound",
                f"The requested path '{request.path}' is not an ARM resource path.",
            )
        if parsed.what == "operation":
            return self._operation_status(parsed)
        if "api-version" not in request.query:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if parsed.subscription.lower() != self.world.subscription_id.lower():
            raise ArmError(
                404,
                "SubscriptionNotFound",
                f"The subscription '{parsed.subscription}' could not be found.",
            )
        method = request.method
        if parsed.what == "subscription":
            return self._subscription(method)
        if parsed.what == "resource_groups":
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"{method} is not allowed here.")
            groups = self.world.list_by_type("Microsoft.Resources/resourceGroups")
            return Response(200, {"value": groups})
        if parsed.resource_group is not None:
            rg_id = f"/subscriptions/{parsed.subscription}/resourceGroups/{parsed.resource_group}"
            creating_rg = parsed.what == "resource_group" and method in ("PUT", "HEAD")
            if self.world.get(rg_id) is None and not creating_rg:
                raise _rg_not_found(parsed.resource_group)
        if parsed.what == "resource_group":
            rid = parsed.scope
            kind = self.world.kind_for("Microsoft.Resources/resourceGroups")
            assert kind is not None
            return self._resource(request, parsed, rid, kind)
        kind = self._kind_or_error(parsed)
        if parsed.what == "collection":
            return self._list(parsed, kind)
        rid = parsed.resource_id
        if request.method == "DELETE" and self.world.get(parsed.parent_id) is None:
            # Recorded: deleting a zone group whose endpoint is already gone answers 204.
            return Response(kind.delete_missing_status)
        self._require_parent(parsed)
        if parsed.what == "action":
            return self._action(request, parsed, rid, kind)
        return self._resource(request, parsed, rid, kind)

    def _subscription(self, method: str) -> Response:
        if method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"{method} is not allowed here.")
        sub = self.world.subscription_id
        return Response(
            200,
            {
                "id": f"/subscriptions/{sub}",
                "subscriptionId": sub,
                "displayName": "nsc-reconcile emulator",
                "state": "Enabled",
                "tenantId": "00000000-0000-0000-0000-000000000000",
            },
        )

    def _kind_or_error(self, parsed: ParsedPath) -> Kind:
        kind = self.world.kind_for(parsed.arm_type)
        if kind is not None:
            return kind
        namespace = (parsed.namespace or "").lower()
        if not any(k.split("/", 1)[0] == namespace for k in self.world.kinds):
            raise ArmError(
                400,
                "InvalidResourceNamespace",
                f"The resource namespace '{parsed.namespace}' is invalid.",
            )
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type '{'/'.join(parsed.types)}' could not be found in the namespace "
            f"'{parsed.namespace}'.",
        )

    def _require_parent(self, parsed: ParsedPath) -> None:
        parent = parsed.parent_id
        nested = len(parsed.types) > 1 or parse_path(parent, "PUT").what == "resource"
        if nested and self._exists(parent) is None:
            raise ArmError(
                404,
                "ParentResourceNotFound",
                "Can not perform requested operation on nested resource. Parent resource "
                f"'{parent.rsplit('/', 1)[-1]}' not found.",
            )

    def _exists(self, rid: str) -> Resource | None:
        """The resource as its kind shows it (a Key Vault secret set only through the data
        plane exists too), or None."""
        kind = self.world.kind_for(self.world.canonical_type(rid))
        stored = self.world.get(rid)
        return (
            stored if kind is None else kind.view(self.world, self.world.canonical_id(rid), stored)
        )

    def _require_parent_provisioned(self, parsed: ParsedPath, rid: str) -> None:
        """A write under a parent that is being deleted is refused (recorded: a zone group's
        DELETE while its private endpoint's delete runs)."""
        if len(parsed.types) < 2:
            return
        parent = self.world._raw(parsed.parent_id)
        state = ((parent or {}).get("properties") or {}).get("provisioningState")
        if parent is not None and state == "Deleting":
            parent_id = str(parent["id"])
            raise ArmError(
                400,
                "ReferencedResourceNotProvisioned",
                f"Cannot proceed with operation because resource {parent_id} used by resource "
                f"{self.world.canonical_id(rid)} is not in Succeeded state. Resource is in "
                "Deleting state and the last operation that updated/is updating the resource "
                "is a delete operation.",
            )

    # ---- collections and actions ---------------------------------------------------------
    def _list(self, parsed: ParsedPath, kind: Kind) -> Response:
        if len(parsed.types) > 1 or parse_path(parsed.scope, "PUT").what == "resource":
            self._require_parent(parsed)
            items = self.world.children(parsed.parent_id, kind.type)
            items = kind.list_view(self.world, parsed.parent_id, items)
        else:
            prefix = parsed.scope.lower() + "/"
            items = [
                r
                for r in self.world.list_by_type(kind.type)
                if str(r.get("id", "")).lower().startswith(prefix)
            ]
        return Response(200, {"value": [shown(kind, item) for item in items]})

    def _action(self, request: Request, parsed: ParsedPath, rid: str, kind: Kind) -> Response:
        if self.world.get(rid) is None:
            raise _not_found(parsed, kind.type)
        try:
            body = request.json()
        except ValueError as exc:
            raise self._bad_json(exc) from exc
        result = kind.action(self.world, self.world.canonical_id(rid), parsed.action or "", body)
        if isinstance(result, Response):
            return result
        # An action's path has no kind of its own (``_finished`` skips it): its resource's kind
        # has the last word here (ACR's importImage turns into a long-running 202).
        return kind.answer(self.world, request, Response(200, result))

    # ---- single resources ----------------------------------------------------------------
    def _resource(self, request: Request, parsed: ParsedPath, rid: str, kind: Kind) -> Response:
        method = request.method
        existing = self._view(kind, rid, self.world.get(rid))
        if method in ("GET", "HEAD"):
            if existing is None:
                if kind.type.lower() == RG_TYPE:
                    if method == "HEAD":
                        return Response(404)
                    raise _rg_not_found(parsed.resource_group or "")
                raise self._missing(parsed, kind, rid)
            if method == "HEAD":
                return Response(204 if kind.type.lower() == RG_TYPE else 200)
            return Response(200, shown(kind, existing), self._etag_header(existing))
        if method in ("PUT", "PATCH", "DELETE"):
            self._require_parent_provisioned(parsed, rid)
        if method == "PUT":
            return self._put(request, rid, kind, existing)
        if method == "PATCH":
            if existing is None:
                if kind.type.lower() == RG_TYPE:
                    raise _rg_not_found(parsed.resource_group or "")
                raise _not_found(parsed, kind.type)
            if not kind.patch_supported:
                raise ArmError(405, "MethodNotAllowed", f"PATCH is not supported on {kind.type}.")
            return self._patch(request, rid, kind, existing)
        if method == "DELETE":
            return self._delete(request, rid, kind, existing)
        raise ArmError(405, "MethodNotAllowed", f"{method} is not supported on {kind.type}.")

    def _missing(self, parsed: ParsedPath, kind: Kind, rid: str) -> ArmError:
        """The 404 of a GET: the kind's own code for a resource deleted earlier (Network
        private endpoints: NotFound), ARM's ResourceNotFound for a name never used."""
        if kind.gone_code != "ResourceNotFound" and rid.lower() in self.world.deleted:
            name = "/".join(parsed.names)
            return ArmError(
                404,
                kind.gone_code,
                kind.gone_message.format(id=self.world.canonical_id(rid), name=name),
            )
        return _not_found(parsed, kind.type)

    def _view(self, kind: Kind, rid: str, stored: Resource | None) -> Resource | None:
        """The resource as ARM shows it: kinds with a ``view`` hook derive it (e.g. a Key
        Vault secret from the secret store, which the data plane writes too)."""
        return kind.view(self.world, self.world.canonical_id(rid), stored)

    @staticmethod
    def _bad_json(exc: Exception) -> ArmError:
        return ArmError(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: '{exc}'.",
        )

    def _body(self, request: Request) -> Resource:
        try:
            body = request.json()
        except ValueError as exc:
            raise self._bad_json(exc) from exc
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ArmError(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: "
                "expected a JSON object.",
            )
        return body

    def _check_preconditions(self, request: Request, existing: Resource | None) -> None:
        if_match = request.headers.get("if-match")
        if if_match is not None and (
            existing is None or not _etag_matches(if_match, existing.get("etag"))
        ):
            raise ArmError(
                412,
                "PreconditionFailed",
                "The condition specified using HTTP conditional header(s) is not met.",
            )
        if_none_match = request.headers.get("if-none-match")
        if (
            if_none_match is not None
            and existing is not None
            and _etag_matches(if_none_match, existing.get("etag"))
        ):
            raise ArmError(
                412,
                "PreconditionFailed",
                "The condition specified using HTTP conditional header(s) is not met: "
                "the resource already exists.",
            )

    def _check_immutable(self, kind: Kind, body: Resource, existing: Resource | None) -> None:
        if existing is None:
            return
        for path, code in kind.immutable.items():
            present, new = _dig(body, path)
            if not present:
                continue
            had, old = _dig(existing, path)
            if path == "location" and isinstance(new, str):
                new = normalize_location(new)
            if had and not _same(new, old):
                raise ArmError(
                    400,
                    code,
                    f"Property '{path}' cannot be changed on an existing resource "
                    f"(from '{old}' to '{new}').",
                )

    def _put(self, request: Request, rid: str, kind: Kind, existing: Resource | None) -> Response:
        body = self._body(request)
        self._check_preconditions(request, existing)
        resource = self._write(rid, kind, body, existing)
        return self._write_response(request, rid, kind, resource, existing, "PUT")

    def _patch(self, request: Request, rid: str, kind: Kind, existing: Resource) -> Response:
        patch = self._body(request)
        self._check_preconditions(request, existing)
        merged = copy.deepcopy(existing)
        if "tags" in patch:
            merged["tags"] = copy.deepcopy(patch["tags"])  # ARM replaces the whole tag set
        for key, value in patch.items():
            if key in ("tags", *_READ_ONLY_TOP):
                continue
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = _merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
        resource = self._write(rid, kind, merged, existing)
        return self._write_response(request, rid, kind, resource, existing, "PATCH")

    def _write(self, rid: str, kind: Kind, body: Resource, existing: Resource | None) -> Resource:
        """Validate and build the resource to store (not stored yet)."""
        top_level = len(kind.type.split("/")) == 2
        if (
            kind.location_required
            and top_level
            and not body.get("location")
            and not (existing and existing.get("location"))
        ):
            raise ArmError(
                400,
                "LocationRequired",
                "The location property is required for this definition.",
            )
        self._check_immutable(kind, body, existing)
        canonical = self.world.canonical_id(rid)
        kind.validate(self.world, canonical, body, existing)
        resource: Resource = {
            "id": canonical,
            "name": canonical.rsplit("/", 1)[-1],
            "type": kind.type,
        }
        if kind.etag_field:
            resource["etag"] = self.world.etag_for(kind.type)
        for key, value in body.items():
            if key not in _READ_ONLY_TOP:
                resource[key] = copy.deepcopy(value)
        if resource.get("location"):
            resource["location"] = normalize_location(str(resource["location"]))
        elif existing and existing.get("location"):
            resource["location"] = existing["location"]
        props = resource.get("properties")
        if props is None or not isinstance(props, dict):
            props = {} if props is None else props
            resource["properties"] = props
        if kind.provisioning_state and isinstance(props, dict):
            props["provisioningState"] = "Succeeded"
        elif isinstance(props, dict) and props.get("provisioningState") == "Failed":
            # A type without a provisioningState carries one only as the mark of a failed
            # operation (_finish); a write that succeeds ends it.
            del props["provisioningState"]
        if kind.system_data:
            now = self.world.now()
            created = (existing or {}).get("systemData") or {}
            resource["systemData"] = {
                "createdBy": created.get("createdBy", _EMULATOR_PRINCIPAL),
                "createdByType": created.get("createdByType", "User"),
                "createdAt": created.get("createdAt", now),
                "lastModifiedBy": _EMULATOR_PRINCIPAL,
                "lastModifiedByType": "User",
                "lastModifiedAt": now,
            }
        kind.populate(self.world, canonical, resource, existing)
        return resource

    def _write_response(
        self,
        request: Request,
        rid: str,
        kind: Kind,
        resource: Resource,
        existing: Resource | None,
        method: str,
    ) -> Response:
        created = existing is None
        reply = kind.reply(resource, existing)
        status = 200 if method == "PATCH" and reply.status == 201 else reply.status
        fail = request.headers.get(FAIL_LRO_HEADER)
        self.world.deleted.discard(str(resource["id"]).lower())
        if not reply.long_running:
            if fail:
                error = json.loads(fail)
                raise ArmError(500, str(error["code"]), str(error["message"]))
            if reply.state and kind.provisioning_state:
                # Answered at once but still settling (Key Vault: RegisteringDns): later GETs
                # show the state until the type's duration has passed; nothing to poll.
                final = copy.deepcopy(resource)
                resource["properties"]["provisioningState"] = reply.state
                self.world._store(resource)
                kind.after_write(self.world, str(resource["id"]), resource)
                settle = _completion(resource, final)
                self._start_operation(rid, kind, "put", resource, None, settle)
            else:
                self.world._store(resource)
                kind.after_write(self.world, str(resource["id"]), resource)
            stored = self.world.get(rid) or resource
            return Response(status, shown(kind, stored), self._etag_header(stored))
        # Long-running: visible at once in its transitional state; finishes after the type's
        # duration (World.lro_duration).
        final = copy.deepcopy(resource)
        props = resource.get("properties")
        if isinstance(props, dict) and kind.provisioning_state:
            props["provisioningState"] = reply.state or ("Creating" if created else "Updating")
        if created:
            kind.pending(self.world, str(resource["id"]), resource)
        self.world._store(resource)
        if kind.effects_at_once:
            kind.after_write(self.world, str(resource["id"]), resource)
        op = self._start_operation(rid, kind, "put", resource, fail, _completion(resource, final))
        if kind.running_status_is_state:
            op.running = "Creating" if created else "Updating"
        headers = self._lro_headers(request, op, reply.headers)
        if status == 202:
            return Response(202, kind.accepted_body("put", op.started), headers)
        current = self.world.get(rid) or resource
        headers.update(self._etag_header(current))
        return Response(status, shown(kind, current), headers)

    def _delete(
        self, request: Request, rid: str, kind: Kind, existing: Resource | None
    ) -> Response:
        if existing is None:
            return Response(kind.delete_missing_status)
        self._check_preconditions(request, existing)
        kind.before_delete(self.world, str(existing["id"]), existing)
        reply = kind.on_delete
        fail = request.headers.get(FAIL_LRO_HEADER)
        if reply.long_running:
            props = existing.get("properties")
            raw = self.world._raw(rid)
            if raw is not None and isinstance(props, dict) and "provisioningState" in props:
                raw.setdefault("properties", {})["provisioningState"] = reply.state or "Deleting"
            self._cancel_nested(str(existing["id"]))
            op = self._start_operation(rid, kind, "delete", existing, fail, None)
            body = (
                shown(kind, self.world.get(rid) or existing)
                if kind.delete_answer_shows_resource or reply.status == 200
                else kind.accepted_body("delete", op.started)
            )
            return Response(reply.status, body, self._lro_headers(request, op, reply.headers))
        if fail:
            error = json.loads(fail)
            raise ArmError(500, str(error["code"]), str(error["message"]))
        self._remove(rid, kind)
        return Response(reply.status)

    def _cancel_nested(self, rid: str) -> None:
        """Operations still running on resources nested under ``rid`` end Canceled when
        ``rid`` is deleted: Azure supersedes them (recorded: a zone group's delete followed at
        once by its private endpoint's ends CanceledAndSupersededDueToAnotherOperation)."""
        prefix = rid.lower() + "/"
        for op in self.world.operations.values():
            if op.status == "InProgress" and op.rid.lower().startswith(prefix):
                op.status = "Canceled"
                op.ended = self.world.now()
                op.error = {
                    "code": "Canceled",
                    "message": "Operation was canceled.",
                    "details": [
                        {
                            "code": "CanceledAndSupersededDueToAnotherOperation",
                            "message": f"Operation was canceled and superseded by the delete "
                            f"of {rid}.",
                        }
                    ],
                }
                self._finals.pop(op.id, None)

    def _remove(self, rid: str, kind: Kind) -> None:
        resource = self.world.get(rid)
        if resource is None:
            return
        # Children first, each with its own kind's side effects (e.g. zone group -> A records).
        prefix = str(resource["id"]).lower() + "/"
        nested = [r for r in self.world.all_resources() if str(r["id"]).lower().startswith(prefix)]
        for child in sorted(nested, key=lambda r: -len(str(r["id"]))):
            if self.world.get(str(child["id"])) is None:
                continue
            child_kind = self.world.kind_for(str(child.get("type", "")))
            self.world.delete(str(child["id"]))
            if child_kind is not None:
                child_kind.after_delete(self.world, str(child["id"]), child)
        self.world.delete(rid)
        self.world.deleted.update(
            str(r["id"]).lower() for r in [resource, *nested] if not _is_group(r)
        )
        kind.after_delete(self.world, str(resource["id"]), resource)

    # ---- long-running operations ---------------------------------------------------------
    def _start_operation(
        self,
        rid: str,
        kind: Kind,
        verb: str,
        resource: Resource,
        fail: str | None,
        final: Resource | None,
    ) -> Operation:
        from nsc_reconcile.emulator.arm.world import Operation

        namespace = kind.type.split("/", 1)[0]
        location = str(resource.get("location") or self.world.location)
        op = Operation(
            id=self.world.new_guid(),
            rid=str(resource.get("id", rid)),
            verb=verb,
            due=time.monotonic() + self.world.lro_duration(kind.type),
            namespace=namespace,
            location=normalize_location(location),
            started=self.world.now(),
            error=json.loads(fail) if fail else None,
        )
        self._finals[op.id] = final
        self.world.operations[op.id] = op
        if op.due <= time.monotonic():
            self._finish(op)
        return op

    def settle(self) -> None:
        """Finish every operation whose time has come (called before each request)."""
        now = time.monotonic()
        for op in list(self.world.operations.values()):
            if op.status == "InProgress" and op.due <= now:
                self._finish(op)

    def _finish(self, op: Operation) -> None:
        op.ended = self.world.now()
        final = self._finals.pop(op.id, None)
        kind = self.world.kind_for(self.world.canonical_type(op.rid))
        if op.error is not None:
            op.status = "Failed"
            raw = self.world._raw(op.rid)
            if raw is not None and isinstance(raw.get("properties"), dict):
                raw["properties"]["provisioningState"] = "Failed"
            return
        op.status = "Succeeded"
        if kind is None:
            return
        if op.verb == "delete":
            self._remove(op.rid, kind)
            return
        current = self.world._raw(op.rid)
        if final is not None and current is not None:
            # Only what the operation itself settles changes: writes made meanwhile (a child
            # rule mirrored into its NSG, a connection recorded on the target) are kept.
            if isinstance(current.get("properties"), dict):
                current["properties"].update(copy.deepcopy(final.get("properties") or {}))
            self.world._store(current)
            kind.after_write(self.world, op.rid, current)

    def _operation_url(self, request: Request, op: Operation, which: str) -> str:
        base = self.world.urls.get("arm") or f"http://{request.headers.get('host', '127.0.0.1')}"
        op.api_version = request.query.get("api-version", "2024-01-01")
        op.base = base
        return self._operation_url_of(op, which)

    def _operation_url_of(self, op: Operation, which: str) -> str:
        return (
            f"{op.base}/subscriptions/{self.world.subscription_id}/providers/{op.namespace}"
            f"/locations/{op.location}/{which}/{op.id}?api-version={op.api_version}"
        )

    def _lro_headers(
        self, request: Request, op: Operation, which: tuple[str, ...]
    ) -> dict[str, str]:
        headers = {}
        if "Azure-AsyncOperation" in which:
            headers["Azure-AsyncOperation"] = self._operation_url(request, op, "operations")
        if "Location" in which:
            headers["Location"] = self._operation_url(request, op, "operationResults")
        headers.update(self._retry_headers(op))
        return headers

    @staticmethod
    def _retry_headers(op: Operation) -> dict[str, str]:
        # Retry-After: 0 makes azure-core fall back to its 30 s default interval, so a short
        # wait goes in retry-after-ms (which azure-core honours) and whole seconds in Retry-After.
        remaining = max(0.0, op.due - time.monotonic())
        if remaining >= 1.0:
            return {"Retry-After": str(min(int(remaining), 10))}
        return {"retry-after-ms": str(max(10, math.ceil(remaining * 1000)))}

    def _operation_status(self, parsed: ParsedPath) -> Response:
        op = self.world.operations.get(parsed.operation_id or "")
        if op is None:
            raise ArmError(404, "OperationNotFound", f"Operation {parsed.operation_id} not found.")
        kind = self.world.kind_for(self.world.canonical_type(op.rid))
        if parsed.operation_kind == "operationResults":
            if op.status == "InProgress":
                url = self._operation_url_of(op, "operationResults")
                return Response(202, None, {"Location": url, **self._retry_headers(op)})
            if op.status in ("Failed", "Canceled"):
                return Response(
                    500 if op.error is None else 400,
                    {"error": op.error or {"code": "Failed", "message": "Operation failed."}},
                )
            resource = self.world.get(op.rid)
            if op.verb == "delete" or resource is None:
                return Response(200)  # recorded: registry and resource group deletes
            return Response(
                200, shown(self.world.kind_for(str(resource.get("type", ""))), resource)
            )
        body: dict[str, Any] = {
            "id": (
                f"/subscriptions/{self.world.subscription_id}/providers/{op.namespace}"
                f"/locations/{op.location}/operations/{op.id}"
            ),
            "name": op.id,
            "status": op.status,
            "startTime": op.started,
        }
        headers: dict[str, str] = {}
        status = 200
        if op.status == "InProgress":
            headers = self._retry_headers(op)
            status = kind.poll_in_progress_status if kind is not None else 200
            if status == 202:  # recorded (private DNS): a 202 repeats where to poll next
                headers["Azure-AsyncOperation"] = self._operation_url_of(op, "operations")
                headers["Location"] = self._operation_url_of(op, "operationResults")
            body["status"] = op.running
        else:
            body["endTime"] = op.ended
        if op.status in ("Failed", "Canceled"):
            body["error"] = op.error
        return Response(status, body, headers)

    # ---- synchronous writes for world building -------------------------------------------
    def put_now(self, rid: str, body: Resource) -> Resource:
        """PUT through validate/populate/after_write with no LRO; returns the stored copy."""
        with self.world.lock:
            parsed = parse_path(rid, "PUT")
            if parsed.what == "resource_group":
                kind = self.world.kind_for("Microsoft.Resources/resourceGroups")
            else:
                kind = self._kind_or_error(parsed)
                self._require_parent(parsed)
            assert kind is not None
            existing = self.world.get(rid)
            resource = self._write(rid, kind, copy.deepcopy(body), existing)
            self.world._store(resource)
            kind.after_write(self.world, str(resource["id"]), resource)
            stored = self.world.get(rid)
            assert stored is not None
            return stored

    @staticmethod
    def _etag_header(resource: Resource) -> dict[str, str]:
        etag = resource.get("etag")
        return {"ETag": str(etag)} if etag else {}
