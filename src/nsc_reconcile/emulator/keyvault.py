"""Key Vault data plane (secrets, api-version 7.6) for the real ``SecretClient``.

A pure ``Plane``: the challenge handshake, secret CRUD, versions, soft delete, recover and
purge over ``world.secrets`` (``secrets.SecretStore``), with Key Vault's status codes and error
bodies. Reads vaults from the ARM world; never touches sockets.

Vault addressing: ``SecretClient`` keeps a path in ``vault_url``, but ``KeyVaultSecretIdentifier``
(used on every returned secret) accepts only ``https://host[:port]/secrets/name[/version]``,
so a path prefix per vault cannot work. A vault is therefore addressed by PORT: the first
vault asked for (``vault_url``) or served gets the plane's main URL (``world.urls["keyvault"]``);
every further vault gets its own HTTPS listener, opened through ``listen`` (a callback the app
installs: "serve this plane on one more port, return its base URL"). Requests are mapped to a
vault by the port in their ``Host`` header. Without ``listen`` only one vault is reachable.

A vault missing from ARM (``Microsoft.KeyVault/vaults``) answers 404 ``VaultNotFound``: on Azure
its DNS name would not resolve at all, which a local HTTP server cannot reproduce.
``enforce_vault_network`` (default False): when True, a vault whose ARM
``properties.publicNetworkAccess`` is ``Disabled`` answers 403 ``Forbidden`` /
``ForbiddenByConnection`` as it does to a caller outside its VNet. ``enforce_vault_rbac``
(the world's, default False): the caller the token names needs a data-plane grant
(``vaultrbac.py``), else 403 ``Forbidden`` / ``ForbiddenByRbac`` (``AccessDenied`` on an
access-policy vault).
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol

from nsc_reconcile.emulator import vaultrbac
from nsc_reconcile.emulator.kinds.authorization import ASSIGNMENT_TYPE
from nsc_reconcile.emulator.protocol import Request, Response
from nsc_reconcile.emulator.secrets import (
    Record,
    SecretError,
    SecretStore,
    bundle,
)

__all__ = ["TENANT_ID", "KeyVaultPlane"]

API_VERSION = "7.6"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
VAULT_TYPE = "Microsoft.KeyVault/vaults"
MAX_PAGE = 25
_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_CALLER = (
    "appid=04b07795-8ddb-461a-bbee-02f9e1bf7b46;oid=00000000-0000-0000-0000-000000000001;"
    f"iss=https://sts.windows.net/{TENANT_ID}/"
)


class WorldView(Protocol):
    """What this plane reads from the ARM world (``arm.World`` satisfies it)."""

    @property
    def secrets(self) -> SecretStore: ...

    @property
    def urls(self) -> dict[str, str]: ...

    def list_by_type(self, arm_type: str) -> list[dict[str, Any]]: ...

    enforce_vault_network: bool


class _Fail(Exception):
    """Answer this error response now."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        error: dict[str, Any] = {"code": code, "message": message}
        if inner:
            error["innererror"] = {"code": inner}
        self.response = Response(status, {"error": error})


def _port_of(authority: str) -> int | None:
    """The port of a ``host[:port]`` Host header (443 when absent), None when malformed."""
    try:
        parsed = urllib.parse.urlsplit(f"//{authority}")
        return parsed.port or 443
    except ValueError:
        return None


class KeyVaultPlane:
    """Serves the secrets of every ARM vault of ``world``; see the module docstring."""

    def __init__(self, world: WorldView, tenant_id: str = TENANT_ID) -> None:
        self.world = world
        self.tenant_id = tenant_id
        self.enforce_vault_network = False
        # Installed by the app: serve this plane on one more HTTPS port and return its base URL.
        self.listen: Callable[[], str] | None = None
        self._lock = threading.Lock()
        self._url_by_vault: dict[str, str] = {}  # lower-cased vault name -> URL (slash)
        self._vault_by_port: dict[int, str] = {}  # port -> vault name as first asked
        world.secrets.set_url_resolver(self.vault_url)

    @property
    def store(self) -> SecretStore:
        return self.world.secrets

    # -- addressing ---------------------------------------------------------------------------
    def _main_url(self) -> str:
        return self.world.urls["keyvault"].rstrip("/") + "/"

    def _assign(self, vault: str, url: str) -> None:
        port = _port_of(urllib.parse.urlsplit(url).netloc)
        if port is not None:
            self._vault_by_port[port] = vault
        self._url_by_vault[vault.lower()] = url

    def vault_url(self, vault_name: str) -> str:
        """The vault's URL (``https://127.0.0.1:PORT/``), stable for the emulator's lifetime."""
        with self._lock:
            known = self._url_by_vault.get(vault_name.lower())
            if known is not None:
                return known
            main = self._main_url()
            main_port = _port_of(urllib.parse.urlsplit(main).netloc)
            if main_port not in self._vault_by_port:
                self._assign(vault_name, main)
            elif self.listen is not None:
                self._assign(vault_name, self.listen().rstrip("/") + "/")
            else:  # documented limit: one reachable vault without ``listen``
                return main
            return self._url_by_vault[vault_name.lower()]

    def _vault_for(self, request: Request) -> tuple[str, str]:
        """(vault name, vault URL) the request is addressed to; raises _Fail when none."""
        port = _port_of(request.headers.get("host", ""))
        with self._lock:
            name = self._vault_by_port.get(port) if port is not None else None
        if name is None:
            vaults = self.world.list_by_type(VAULT_TYPE)
            main_port = _port_of(urllib.parse.urlsplit(self._main_url()).netloc)
            if port != main_port or not vaults:
                raise _Fail(
                    404,
                    "VaultNotFound",
                    "No vault is served at this address (on Azure the vault's DNS name would "
                    "not resolve).",
                )
            name = str(vaults[0]["name"])
            self.vault_url(name)
        return name, self._url_by_vault[name.lower()]

    def _arm_vault(self, name: str) -> dict[str, Any] | None:
        for vault in self.world.list_by_type(VAULT_TYPE):
            if str(vault.get("name", "")).lower() == name.lower():
                return vault
        return None

    # -- request handling ---------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            return self._handle(request)
        except _Fail as fail:
            return fail.response
        except SecretError as error:
            return Response(error.status, error.body())

    def _challenge(self) -> Response:
        challenge = (
            f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
            'resource="https://vault.azure.net"'
        )
        body = {
            "error": {
                "code": "Unauthorized",
                "message": "AKV10000: Request is missing a Bearer or PoP token.",
            }
        }
        return Response(401, body, {"WWW-Authenticate": challenge})

    def _handle(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return self._challenge()
        vault, url = self._vault_for(request)
        arm = self._arm_vault(vault)
        if arm is None:
            raise _Fail(
                404,
                "VaultNotFound",
                f"Vault {vault} does not exist (on Azure its DNS name would not resolve).",
            )
        properties = arm.get("properties") or {}
        enforce = self.enforce_vault_network or self.world.enforce_vault_network
        if enforce and properties.get("publicNetworkAccess") == "Disabled":
            raise _Fail(
                403,
                "Forbidden",
                "Public network access is disabled and request is not from a trusted service "
                f"nor via an approved private link.\r\nCaller: {_CALLER}\r\n"
                f"Vault: {arm.get('name', vault)};location={arm.get('location', '')}",
                "ForbiddenByConnection",
            )
        if not request.query.get("api-version"):
            raise _Fail(400, "BadParameter", "The api-version query parameter is required.")
        parts = [urllib.parse.unquote(p) for p in request.path.split("/")[1:]]
        if parts and parts[-1] == "" and len(parts) > 1:
            parts = parts[:-1]  # ".../secrets/name/" (empty version) means the latest
        if getattr(self.world, "enforce_vault_rbac", False) and parts:
            refused = vaultrbac.denial(
                self.world.list_by_type(ASSIGNMENT_TYPE),
                arm,
                vaultrbac.caller_of(auth, self.tenant_id),
                request.method,
                parts,
            )
            if refused is not None:
                raise _Fail(403, "Forbidden", refused[0], refused[1])
        return self._route(request, vault, url, parts)

    def _route(self, request: Request, vault: str, url: str, parts: list[str]) -> Response:
        method, store = request.method, self.store
        collection = parts[0] if parts else ""
        name = self._name(parts[1]) if len(parts) >= 2 else ""
        tail = parts[2] if len(parts) == 3 else None
        if collection == "secrets" and len(parts) <= 3:
            if not name and method == "GET":
                return self._page(request, url, "secrets", store.list(vault))
            if name and tail is None and method == "PUT":
                return self._set(request, vault, url, name)
            if name and tail is None and method == "GET":
                return self._get(vault, url, name, None)
            if name and tail is None and method == "DELETE":
                return Response(200, _no_value(bundle(url, store.delete(vault, name))))
            if name and tail == "versions" and method == "GET":
                records = store.versions(vault, name)
                return self._page(request, url, f"secrets/{name}/versions", records)
            if name and tail is not None and method == "GET":
                return self._get(vault, url, name, tail)
            if name and tail != "versions" and method == "PATCH":  # no version: the latest
                return self._update(request, vault, url, name, tail or "")
        if collection == "deletedsecrets" and len(parts) <= 3:
            if not name and method == "GET":
                return self._page(request, url, "deletedsecrets", store.list_deleted(vault))
            if name and tail is None and method == "GET":
                return Response(200, _no_value(bundle(url, store.get_deleted(vault, name))))
            if name and tail is None and method == "DELETE":
                store.purge(vault, name)
                return Response(204)
            if name and tail == "recover" and method == "POST":
                return Response(200, _no_value(bundle(url, store.recover(vault, name))))
        if collection in ("secrets", "deletedsecrets"):
            raise _Fail(
                405 if len(parts) <= 3 else 400,
                "BadParameter",
                f"The operation {method} /{'/'.join(parts)} is not supported by this emulator "
                "(backup/restore are not emulated).",
            )
        raise _Fail(404, "NotFound", f"No Key Vault operation at /{'/'.join(parts)}.")

    @staticmethod
    def _name(name: str) -> str:
        if not _NAME.match(name):
            raise _Fail(400, "BadParameter", f"The request URI contains an invalid name: {name}")
        return name

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError as exc:
            raise _Fail(400, "BadParameter", f"The request body is not valid JSON: {exc}") from exc
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise _Fail(400, "BadParameter", "The request body must be a JSON object.")
        return body

    @staticmethod
    def _tags(body: dict[str, Any]) -> dict[str, str] | None:
        tags = body.get("tags")
        if tags is None:
            return None
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise _Fail(400, "BadParameter", "Property tags must map names to strings.")
        return {str(k): v for k, v in tags.items()}

    def _set(self, request: Request, vault: str, url: str, name: str) -> Response:
        body = self._body(request)
        value = body.get("value")
        if not isinstance(value, str):
            raise _Fail(400, "BadParameter", "Property value is required and must be a string.")
        attributes = body.get("attributes") or {}
        content_type = body.get("contentType")
        record = self.store.set(
            vault,
            name,
            value,
            content_type=content_type if isinstance(content_type, str) else None,
            tags=self._tags(body),
            enabled=attributes.get("enabled", True) is not False,
        )
        if attributes.get("nbf") is not None or attributes.get("exp") is not None:
            record = self.store.update(
                vault,
                name,
                record["version"],
                not_before=attributes.get("nbf"),
                expires=attributes.get("exp"),
            )
        return Response(200, bundle(url, record))

    def _get(self, vault: str, url: str, name: str, version: str | None) -> Response:
        record = self.store.get(vault, name, version)
        if not record["attributes"].get("enabled", True):
            raise _Fail(
                403,
                "Forbidden",
                "Operation get is not allowed on a disabled secret.",
                "SecretDisabled",
            )
        return Response(200, bundle(url, record))

    def _update(self, request: Request, vault: str, url: str, name: str, version: str) -> Response:
        body = self._body(request)
        attributes = body.get("attributes") or {}
        content_type = body.get("contentType")
        record = self.store.update(
            vault,
            name,
            version or None,
            enabled=attributes.get("enabled"),
            content_type=content_type if isinstance(content_type, str) else None,
            tags=self._tags(body),
            not_before=attributes.get("nbf"),
            expires=attributes.get("exp"),
        )
        return Response(200, _no_value(bundle(url, record)))

    def _page(self, request: Request, url: str, path: str, records: list[Record]) -> Response:
        """One page of items (``maxresults`` <= 25) with ``nextLink`` carrying ``$skiptoken``."""
        try:
            size = int(request.query.get("maxresults") or MAX_PAGE)
            skip = int(request.query.get("$skiptoken") or 0)
        except ValueError as exc:
            raise _Fail(400, "BadParameter", f"Invalid paging parameter: {exc}") from exc
        if not 1 <= size <= MAX_PAGE:
            raise _Fail(400, "BadParameter", f"maxresults must be between 1 and {MAX_PAGE}.")
        page = records[skip : skip + size]
        if path.endswith("/versions"):  # a version's item keeps the version in its id
            values = [_no_value(bundle(url, r)) for r in page]
        else:
            values = [bundle(url, r, item=True) for r in page]
        next_link = None
        if skip + size < len(records):
            query = urllib.parse.urlencode(
                {"api-version": API_VERSION, "$skiptoken": skip + size, "maxresults": size}
            )
            next_link = f"{url}{path}?{query}"
        return Response(200, {"value": values, "nextLink": next_link})


def _no_value(body: dict[str, Any]) -> dict[str, Any]:
    """The bundle without its value (update, delete, recover and item answers carry none)."""
    body.pop("value", None)
    return body
