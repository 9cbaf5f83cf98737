"""Kubernetes client configuration from a cluster's kubeconfig (AKS ``listClusterUserCredential``),
read by the kubernetes client's own loader. Part of the client layer (azure.py builds clients
with it); imports the kubernetes client lazily, never the emulator.

What the kubeconfig asks for is honoured: server, TLS settings, a static token, a client
certificate, and an Entra ID login (a kubelogin exec plugin or the legacy ``azure`` auth
provider): its ``--server-id`` / ``--tenant-id`` are used to get a token from our credential
(the plugin itself is not run), renewed before it expires. Nothing secret is left on disk after
``close``: the CA goes to the client as data, the client certificate and key into a private
directory the caller owns and removes.
"""

from __future__ import annotations

import base64
import copy
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential

# Entra ID application of the AKS API server (what kubelogin's --server-id names on AKS).
AKS_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
# A token is fetched again when fewer seconds than this are left (as azure-core does).
RENEW_BEFORE_S = 300
# Statuses the transport retries by itself (honouring Retry-After), as azure-core does for ARM.
RETRY_STATUSES = (429, 500, 502, 503, 504)

__all__ = [
    "AKS_SERVER_APP_ID",
    "EntraLogin",
    "entra_login",
    "kubernetes_configuration",
    "transport_retries",
]


@dataclass(frozen=True)
class EntraLogin:
    """The Entra ID token a kubeconfig user needs: for which server application, in which
    tenant (None: the credential's own)."""

    server_id: str
    tenant_id: str | None = None

    @property
    def scope(self) -> str:
        return f"{self.server_id}/.default"


def _arg(args: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in a command line."""
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            value = args[index + 1]
            return None if value.startswith("--") or not value else value
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1] or None
    return None


def entra_login(user: dict[str, Any]) -> EntraLogin | None:
    """The Entra ID login a kubeconfig user asks for: a kubelogin exec plugin
    (``kubelogin get-token --server-id S --tenant-id T ...``) or the legacy ``azure`` auth
    provider (``apiserver-id``, ``tenant-id``). None for any other user (token, client
    certificate, another exec plugin)."""
    plugin = user.get("exec")
    if isinstance(plugin, dict):
        args = [str(a) for a in plugin.get("args") or []]
        command = os.path.basename(str(plugin.get("command") or ""))
        server_id = _arg(args, "--server-id")
        if command.startswith("kubelogin") or server_id is not None:
            return EntraLogin(server_id or AKS_SERVER_APP_ID, _arg(args, "--tenant-id"))
        return None
    provider = user.get("auth-provider")
    if isinstance(provider, dict) and provider.get("name") == "azure":
        config = provider.get("config") or {}
        return EntraLogin(
            str(config.get("apiserver-id") or AKS_SERVER_APP_ID), config.get("tenant-id") or None
        )
    return None


class _EntraToken:
    """Bearer tokens for one login from ``credential``, fetched again when fewer than
    RENEW_BEFORE_S seconds are left; plugged in as the client's refresh hook, which runs
    before every request (a long apply never sends an expired token)."""

    def __init__(self, credential: TokenCredential, login: EntraLogin) -> None:
        self._credential = credential
        self._login = login
        self._lock = threading.Lock()
        self._token: AccessToken | None = None

    def header(self) -> str:
        with self._lock:
            token = self._token
            if token is None or token.expires_on - time.time() < RENEW_BEFORE_S:
                scope, tenant = self._login.scope, self._login.tenant_id
                if tenant:
                    token = self._credential.get_token(scope, tenant_id=tenant)
                else:
                    token = self._credential.get_token(scope)
                self._token = token
            return f"Bearer {token.token}"

    def refresh(self, configuration: Any) -> None:
        configuration.api_key["BearerToken"] = self.header()


def transport_retries(total: int | None = None) -> Any:
    """The urllib3 ``Retry`` of a Kubernetes client: 429 and 5xx answers (Retry-After
    honoured) and dropped or refused connections are tried again with backoff, for every
    method (our writes are server-side applies and deletes: safe to repeat), at most
    ``total`` times (default 3). The last answer is returned as it is, for the caller to
    report."""
    from urllib3.util.retry import Retry

    tries = 3 if total is None else max(0, total)
    return Retry(
        total=tries,
        # A connection that fails (refused, timed out, dropped) is tried once more here; the
        # engine's retries come on top, so an unreachable server fails in seconds, not minutes.
        connect=min(tries, 1),
        read=min(tries, 1),
        status=tries,
        other=0,
        allowed_methods=None,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=0.5,
        backoff_max=10.0,
        backoff_jitter=0.25,
        raise_on_status=False,
        respect_retry_after_header=True,
    )


def _active_user(loader: Any, config: dict[str, Any]) -> dict[str, Any]:
    name = (loader.current_context.get("context") or {}).get("user")
    for entry in config.get("users") or []:
        if entry.get("name") == name:
            user: dict[str, Any] = entry.setdefault("user", {}) or {}
            return user
    return {}


def _active_cluster(loader: Any, config: dict[str, Any]) -> dict[str, Any]:
    name = (loader.current_context.get("context") or {}).get("cluster")
    for entry in config.get("clusters") or []:
        if entry.get("name") == name:
            cluster: dict[str, Any] = entry.get("cluster") or {}
            return cluster
    return {}


def _private_file(directory: str, data: bytes) -> str:
    handle, path = tempfile.mkstemp(dir=directory, suffix=".pem")  # mode 0600
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    return path


def kubernetes_configuration(
    kubeconfig: dict[str, Any],
    credential: TokenCredential,
    *,
    files_dir: Callable[[], str],
    server: str | None = None,
    ca_cert: str | None = None,
    use_env_proxies: bool = True,
    retry_total: int | None = None,
) -> Any:
    """A ``kubernetes.client.Configuration`` for the kubeconfig's current context.

    ``files_dir``: gives a private directory (the caller removes it) for the client
    certificate and key, which urllib3 can only read from files (called only when there are
    some). ``server`` / ``ca_cert`` replace the API server address and CA (the emulator);
    ``retry_total`` bounds transport retries. A user with neither token, certificate nor
    login gets an Entra ID token for the AKS server application."""
    from kubernetes import client as k8s
    from kubernetes.config.kube_config import KubeConfigLoader

    config = copy.deepcopy(kubeconfig)
    loader = KubeConfigLoader(config)  # type: ignore[no-untyped-call]
    user = _active_user(loader, config)
    cluster = _active_cluster(loader, config)
    login = entra_login(user)
    if login is not None:  # honoured here, not run: the plugin may not even be installed
        user.pop("exec", None)
        user.pop("auth-provider", None)
    # The loader would write these to shared temporary files that outlive the run.
    ca_data = cluster.pop("certificate-authority-data", None)
    cert_data = user.pop("client-certificate-data", None)
    key_data = user.pop("client-key-data", None)
    configuration = k8s.Configuration()
    loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    if ca_data and not ca_cert:
        configuration.ca_cert_data = base64.b64decode(ca_data).decode()
    if cert_data and key_data:
        directory = files_dir()
        configuration.cert_file = _private_file(directory, base64.b64decode(cert_data))
        configuration.key_file = _private_file(directory, base64.b64decode(key_data))
    if server:
        configuration.host = server.rstrip("/")
    if ca_cert:
        configuration.ssl_ca_cert = ca_cert
    has_auth = "BearerToken" in configuration.api_key or configuration.cert_file
    if login is not None or not has_auth:
        token = _EntraToken(credential, login or EntraLogin(AKS_SERVER_APP_ID))
        configuration.api_key["BearerToken"] = token.header()
        configuration.refresh_api_key_hook = token.refresh  # type: ignore[assignment]
    configuration.retries = transport_retries(retry_total)
    if not use_env_proxies:
        configuration.proxy = None
    return configuration
