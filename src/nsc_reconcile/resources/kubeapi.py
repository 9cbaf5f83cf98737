"""Requests to a cluster's Kubernetes API for the LangFuse workload: one request through the
kubernetes client's ``ApiClient``, server-side apply, and every failure as one readable line
(a field-manager conflict names the other manager). Never logs or returns a request body.

Retries come in two layers, as for ARM: the client's transport retries 429/5xx and dropped
connections (urllib3 ``Retry``, kubeconfig.transport_retries); what is left is raised as a
``KubernetesApiError`` whose ``transient`` says whether the engine (retry.py) should re-read
and write again: 429/5xx, no answer, and a 409 that is not a field-manager conflict.
"""

from __future__ import annotations

import json
from typing import Any

Obj = dict[str, Any]

FIELD_MANAGER = "nsc-reconcile"
APPLY = "application/apply-patch+yaml"
TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})

# kind -> (API prefix, plural, namespaced)
ROUTES: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Secret": ("/api/v1", "secrets", True),
    "Service": ("/api/v1", "services", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses", True),
    # The Secrets Store CSI driver's CRD (secrets_delivery: csi).
    "SecretProviderClass": ("/apis/secrets-store.csi.x-k8s.io/v1", "secretproviderclasses", True),
}


class WorkloadError(Exception):
    """The workload cannot be read or written; the message is one line and never holds a
    secret value. ``transient``: worth trying again shortly (read by retry.py)."""

    transient = False


class KubernetesApiError(WorkloadError):
    """A Kubernetes API request failed: ``status`` (None: no answer), one line of text."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status
        self.transient = status is None or status in TRANSIENT_STATUS


class FieldConflictError(WorkloadError):
    """Server-side apply refused: fields we declare are owned by another field manager.
    ``conflicts`` lists (manager, field path) pairs."""

    def __init__(self, what: str, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        managers = sorted({manager for manager, _ in conflicts})
        shown = "; ".join(
            f'field manager "{m}" owns ' + ", ".join(f for o, f in conflicts if o == m)
            for m in managers
        )
        super().__init__(
            f"{what}: server-side apply conflicts with another field manager ({shown}); "
            "nsc-reconcile does not take fields over from another manager: undo that change, "
            "or set `force_conflicts: true` on the workload to take them over"
        )


def path_of(kind: str, name: str, namespace: str) -> str:
    """The API path of one object (``name`` empty: the collection)."""
    prefix, plural, namespaced = ROUTES[kind]
    scope = f"/namespaces/{namespace}" if namespaced else ""
    return f"{prefix}{scope}/{plural}" + (f"/{name}" if name else "")


def call(
    api: Any,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: Obj | None = None,
    content_type: str | None = None,
    what: str | None = None,
) -> Obj | None:
    """One request (the transport retries 429/5xx and dropped connections); the decoded JSON
    answer, None on 404. Raises FieldConflictError when a server-side apply conflicts with
    another manager, KubernetesApiError for any other failure. ``what`` names the request in
    error messages (default: method and path)."""
    import urllib3

    what = what or f"Kubernetes API {method} {path}"

    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    method, url, headers, body, _ = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    try:
        response = api.call_api(method, url, header_params=headers, body=body)
        response.read()
    except urllib3.exceptions.HTTPError as error:
        raise KubernetesApiError(f"{what}: no answer ({_reason(error)})", None) from None
    if response.status == 404:
        return None
    text = (response.data or b"").decode("utf-8", "replace")
    if 200 <= response.status <= 299:
        loaded: Obj = json.loads(text) if text else {}
        return loaded
    status = _status(text)
    conflicts = _field_conflicts(status) if response.status == 409 else []
    if conflicts:  # a decision for the user, not a race: never retried
        raise FieldConflictError(what, conflicts)
    message = _describe(what, response.status, status, response.reason)
    raise KubernetesApiError(message, response.status)


def server_side_apply(api: Any, manifest: Obj, *, force: bool) -> None:
    """Server-side apply of ``manifest`` as ``nsc-reconcile``. Without ``force``, fields
    another manager owns are not taken over: FieldConflictError names that manager."""
    metadata = manifest["metadata"]
    kind, name, namespace = manifest["kind"], metadata["name"], metadata.get("namespace", "")
    query = [("fieldManager", FIELD_MANAGER)]
    if force:
        query.append(("force", "true"))
    call(
        api,
        "PATCH",
        path_of(kind, name, namespace),
        query=query,
        body=manifest,
        content_type=APPLY,
        what=f"Kubernetes API apply of {kind} {namespace + '/' if namespace else ''}{name}",
    )


# --------------------------------------------------------------------------- error text
def _status(text: str) -> Obj:
    try:
        loaded = json.loads(text)
    except ValueError:
        return {"message": text}
    return loaded if isinstance(loaded, dict) else {"message": text}


def _field_conflicts(status: Obj) -> list[tuple[str, str]]:
    """(manager, field) of a Status answering a server-side apply with conflicts."""
    causes = (status.get("details") or {}).get("causes") or []
    found = []
    for cause in causes:
        if isinstance(cause, dict) and cause.get("reason") == "FieldManagerConflict":
            message = str(cause.get("message") or "")
            manager = message.split('"')[1] if message.count('"') >= 2 else message
            found.append((manager, str(cause.get("field") or "?")))
    return found


def _describe(what: str, code: int, status: Obj, reason: str | None) -> str:
    """One line: the status code, the Kubernetes reason (or an ARM-style error code) and
    the message, whitespace collapsed and shortened."""
    found = status.get("error")
    error: Obj = found if isinstance(found, dict) else {}
    kind = status.get("reason") or error.get("code") or reason or ""
    message = str(status.get("message") or error.get("message") or "")
    message = " ".join(message.split())
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{what}: {code} {kind}" + (f": {message}" if message else "")


def _reason(error: BaseException) -> str:
    inner = getattr(error, "reason", None) or error
    text = " ".join(str(inner).split())
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__
