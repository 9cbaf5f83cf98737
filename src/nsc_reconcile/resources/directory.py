"""Who a principal is in Entra ID, for role assignments: the caller (the identity running
nsc-reconcile) from its access token, an application's service principal from Microsoft Graph.

The caller: the ``oid`` claim of the credential's ARM access token (the token's signature is
not checked: we only read who we are), its type from ``idtyp`` (``app``/``user``; optional
claim) or, without it, ``scp`` (only delegated, i.e. user, tokens carry scopes), else a
service principal (learn.microsoft.com, "Access token claims reference"). This is what
Terraform's ``azurerm_client_config`` does. The emulator's default token is not a JWT: it
names the emulator's signed-in user, advertised as ``info["caller"]``.

An application: ``GET https://graph.microsoft.com/v1.0/servicePrincipals(appId='<id>')
?$select=id`` (learn.microsoft.com, Graph "Get servicePrincipal", the appId alternate key)
through an azure-core pipeline with the same credential (scope
``https://graph.microsoft.com/.default``; needs Application.Read.All). On the emulator the
Graph listener is ``info["graph"]`` (loopback only). Answers are kept per ``Clients``.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import urllib.parse
import weakref
from typing import Any

from nsc_reconcile.model.access import Principal

ARM_SCOPE = "https://management.azure.com/.default"
GRAPH_URL = "https://graph.microsoft.com"
GRAPH_SCOPE = f"{GRAPH_URL}/.default"


class DirectoryError(ValueError):
    """A principal could not be found or told apart (the message says which and why)."""


def token_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (unverified), or None when ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def principal_type_of(claims: dict[str, Any]) -> str:
    """``ServicePrincipal`` or ``User``: the kind of principal a token's claims describe."""
    idtyp = str(claims.get("idtyp") or "").lower()
    if idtyp in ("app", "user"):
        return "ServicePrincipal" if idtyp == "app" else "User"
    return "User" if claims.get("scp") else "ServicePrincipal"


class Directory:
    """Principal lookups through one ``Clients`` (thread-safe; answers are kept)."""

    def __init__(self, clients: Any) -> None:
        # A weak proxy: the cache below is keyed weakly by ``clients``, so a strong reference
        # here would keep every run's Clients (and their open connections) alive forever.
        self.clients = weakref.proxy(clients)
        self._found: dict[tuple[str, str], tuple[str, str]] = {}
        self._lookups: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()
        self._graph: Any = None

    def resolve(self, principal: Principal) -> tuple[str, str]:
        """``(object id (lower case), principal type)`` of a ``caller`` or ``application_id``
        principal. Raises DirectoryError when it cannot be found."""
        key = ("caller", "") if principal.caller else ("app", str(principal.application_id))
        with self._lock:  # one lookup per key, even when grants are read in parallel
            lookup = self._lookups.setdefault(key, threading.Lock())
        with lookup:
            if key not in self._found:
                self._found[key] = self._caller() if principal.caller else self._application(key[1])
            return self._found[key]

    def _caller(self) -> tuple[str, str]:
        target = self.clients.target
        token = target.credential.get_token(ARM_SCOPE).token
        claims = token_claims(token)
        if claims is None and target.arm_url is not None:
            emulated = target.info.get("caller") or {}
            if emulated.get("object_id"):
                return str(emulated["object_id"]).lower(), str(emulated["principal_type"])
        oid = str((claims or {}).get("oid") or "")
        if not oid:
            raise DirectoryError(
                "principal `caller: true`: the credential's access token names no object id "
                "(no `oid` claim); declare the deployer with object_id and principal_type"
            )
        return oid.lower(), principal_type_of(claims or {})

    def _client(self) -> Any:
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy
        from azure.core.pipeline.transport import RequestsTransport

        if self._graph is None:
            target = self.clients.target
            base = GRAPH_URL
            if target.arm_url is not None:  # the emulator: its Graph listener
                from nsc_reconcile.azure import require_loopback

                base = require_loopback(str(target.info["graph"]).rstrip("/"), "emulator Graph URL")
            kwargs = self.clients._transport_kwargs()
            transport = kwargs.pop("transport", None) or RequestsTransport(**kwargs)
            policies = [
                RetryPolicy(**kwargs),
                BearerTokenCredentialPolicy(target.credential, GRAPH_SCOPE),
                *kwargs.get("per_call_policies", []),
            ]
            self._graph = (base, PipelineClient(base, policies=policies, transport=transport))
        return self._graph

    def _application(self, app_id: str) -> tuple[str, str]:
        from azure.core.rest import HttpRequest

        base, client = self._client()
        quoted = urllib.parse.quote(app_id.replace("'", "''"), safe="")
        url = f"{base}/v1.0/servicePrincipals(appId='{quoted}')?$select=id"
        answer = client.send_request(
            HttpRequest("GET", url, headers={"Accept": "application/json"})
        )
        if answer.status_code == 404:
            raise DirectoryError(
                f"application {app_id} has no service principal in this tenant (Microsoft "
                "Graph: Request_ResourceNotFound); check the application id, or create it "
                f"(az ad sp create --id {app_id})"
            )
        if answer.status_code in (401, 403):
            raise DirectoryError(
                f"Microsoft Graph refused the lookup of application {app_id} "
                f"(HTTP {answer.status_code}); the deployer needs Application.Read.All, or "
                "declare the service principal with object_id"
            )
        if answer.status_code != 200:
            raise DirectoryError(
                f"Microsoft Graph answered HTTP {answer.status_code} for application {app_id}"
            )
        object_id = str(answer.json().get("id") or "")
        if not object_id:
            raise DirectoryError(f"Microsoft Graph gave no object id for application {app_id}")
        return object_id.lower(), "ServicePrincipal"


_DIRECTORIES: weakref.WeakKeyDictionary[Any, Directory] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def directory_of(clients: Any) -> Directory:
    """The ``Directory`` of ``clients`` (one per ``Clients``, made on first use)."""
    with _LOCK:
        found = _DIRECTORIES.get(clients)
        if found is None:
            found = _DIRECTORIES[clients] = Directory(clients)
        return found
