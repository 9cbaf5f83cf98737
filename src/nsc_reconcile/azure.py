"""The one place that builds Azure SDK clients, for real Azure or for the local emulator.

Everything else receives a ``Clients`` and never knows which it talks to. Talks to the emulator
over HTTP only (never imports ``nsc_reconcile.emulator``); SDK modules are imported lazily. Every
client has connect and read timeouts, honours the running operation's deadline (retry.py) and
sends If-Match for a conditional write (``conditional_write``).
"""

from __future__ import annotations

import importlib
import inspect
import ipaddress
import json
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

from nsc_reconcile.retry import Deadline, current_deadline

if TYPE_CHECKING:
    from azure.keyvault.secrets import SecretClient
    from azure.mgmt.alertsmanagement import AlertsManagementClient
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.containerservice import ContainerServiceClient
    from azure.mgmt.keyvault import KeyVaultManagementClient
    from azure.mgmt.loganalytics import LogAnalyticsManagementClient
    from azure.mgmt.monitor import MonitorManagementClient
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient
    from azure.mgmt.privatedns import PrivateDnsManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.monitor.ingestion import LogsIngestionClient

__all__ = [
    "AKS_SERVER_APP_SCOPE",
    "AzureTarget",
    "Clients",
    "NotLoopbackError",
    "StaticTokenCredential",
    "allow_plain_http_policy",
    "conditional_write",
]

# Entra ID application of the AKS API server; tokens for it authenticate to AAD-enabled clusters.
AKS_SERVER_APP_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"

# The SDK modules behind each client of ``Clients`` (a member name: a management client, or a
# data-plane factory such as ``secret_client``): what ``Clients.prepare`` imports, and so the
# start-up cost of a run that uses it (bench/plan_noop.py measures that floor).
SDK_MODULES: dict[str, tuple[str, ...]] = {
    "network": ("azure.mgmt.network",),
    "privatedns": ("azure.mgmt.privatedns",),
    "cognitive": ("azure.mgmt.cognitiveservices",),
    "postgres": ("azure.mgmt.postgresqlflexibleservers",),
    "monitor": ("azure.mgmt.monitor",),
    "alertsmanagement": ("azure.mgmt.alertsmanagement",),
    "loganalytics": ("azure.mgmt.loganalytics",),
    "containerservice": ("azure.mgmt.containerservice",),
    "containerregistry": ("azure.mgmt.containerregistry",),
    "keyvault_mgmt": ("azure.mgmt.keyvault",),
    # Multi-API packages: the client imports the versioned package of an operations group on
    # its first use (role_assignments, role_definitions: 2022-04-01; identities: 2024-11-30).
    "authorization": ("azure.mgmt.authorization", "azure.mgmt.authorization.v2022_04_01"),
    "msi": ("azure.mgmt.msi", "azure.mgmt.msi.v2024_11_30"),
    "resource": ("azure.mgmt.resource.resources",),
    "secret_client": ("azure.keyvault.secrets",),
    "logs_ingestion_client": ("azure.monitor.ingestion",),
    "kubernetes_api_client": ("kubernetes.client", "nsc_reconcile.kubeconfig", "ruamel.yaml"),
}
# What azure-core imports on a client's first answer (private modules: skipped if they move).
_FIRST_ANSWER_MODULES = ("azure.core.rest._http_response_impl", "azure.core.rest._requests_basic")


class NotLoopbackError(ValueError):
    """An emulator URL points somewhere other than this machine's loopback interface."""


def require_loopback(url: str, what: str) -> str:
    """``url`` when it names this machine's loopback interface; else NotLoopbackError."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return url
    try:
        if ipaddress.ip_address(host).is_loopback:
            return url
    except ValueError:
        pass
    raise NotLoopbackError(
        f"{what} {url!r} is not a loopback address; the emulator is only ever reached on "
        "127.0.0.1, ::1 or localhost"
    )


class StaticTokenCredential:
    """A TokenCredential that always returns one fixed token (the emulator accepts any)."""

    def __init__(self, token: str = "emulator-token", lifetime_s: int = 3600) -> None:
        self._token = token
        self._lifetime_s = lifetime_s

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        del scopes, claims, tenant_id, enable_cae, kwargs  # one token fits every audience
        return AccessToken(self._token, int(time.time()) + self._lifetime_s)


class _AllowPlainHttp(SansIOHTTPPolicy[Any, Any]):
    """Lets the bearer-token policy send to http:// URLs (loopback emulator only).

    A per-call policy runs on every pipeline run, including LRO status polls and retries.
    """

    def on_request(self, request: PipelineRequest[Any]) -> None:
        request.context["enforce_https"] = False


def allow_plain_http_policy() -> SansIOHTTPPolicy[Any, Any]:
    """The per-call policy that switches off azure-core's https check for one client."""
    return _AllowPlainHttp()


def _path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path.rstrip("/").lower()


# (resource id, etag or None) of the write running in this context.
_CONDITION: ContextVar[tuple[str, str | None] | None] = ContextVar(
    "nsc_reconcile_condition", default=None
)


@contextmanager
def conditional_write(resource_id: str, etag: str | None) -> Iterator[None]:
    """Within the block, a PUT or PATCH of ``resource_id`` is conditional: ``If-Match: etag``
    (Azure answers 412 PreconditionFailed when the resource changed since it was read), or
    ``If-None-Match: *`` when ``etag`` is None (412 when someone created it meanwhile). Use
    only for APIs that honour these headers."""
    token = _CONDITION.set((_path_of(resource_id), etag))
    try:
        yield
    finally:
        _CONDITION.reset(token)


class _Conditional(SansIOHTTPPolicy[Any, Any]):
    """Adds the If-Match / If-None-Match of ``conditional_write`` to the write it names."""

    def on_request(self, request: PipelineRequest[Any]) -> None:
        condition = _CONDITION.get()
        http = request.http_request
        if condition is None or http.method not in ("PUT", "PATCH"):
            return
        path, etag = condition
        if _path_of(http.url) != path or {"if-match", "if-none-match"} & {
            k.lower() for k in http.headers
        }:
            return
        if etag is not None:
            http.headers["If-Match"] = etag
        else:
            http.headers["If-None-Match"] = "*"


class _OperationDeadline(SansIOHTTPPolicy[Any, Any]):
    """Enforces the deadline of the running operation (retry.operation_deadline) on every
    request made for it: in the caller's thread through the context, and in azure-core's
    poller thread (which does not inherit the context) through the URLs the operation's
    answers said to poll."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._polled: dict[str, Deadline] = {}

    def on_request(self, request: PipelineRequest[Any]) -> None:
        deadline = current_deadline()
        if deadline is None:
            with self._lock:
                deadline = self._polled.get(_path_of(request.http_request.url))
        if deadline is not None:
            deadline.check()

    def on_response(
        self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]
    ) -> None:
        deadline = current_deadline()
        if deadline is None:
            return
        headers = response.http_response.headers
        urls = [headers.get(h) for h in ("Azure-AsyncOperation", "Location", "Operation-Location")]
        if request.http_request.method in ("PUT", "PATCH", "DELETE", "POST"):
            urls.append(request.http_request.url)  # some operations poll the resource itself
        with self._lock:
            for url in urls:
                if url:
                    self._polled[_path_of(url)] = deadline
            for key in [k for k, d in self._polled.items() if not d.active]:
                del self._polled[key]


def _identity(url: str) -> str:
    return url


@dataclass
class AzureTarget:
    """Where and how SDK clients connect: real Azure or a loopback emulator.

    ``arm_url`` None means the public cloud's Resource Manager. ``vault_url`` maps a vault URI
    as ARM reports it to the URL actually connected to (curl ``--resolve`` style); likewise
    ``kubernetes_url`` replaces the API server address found in a cluster's kubeconfig.
    """

    subscription_id: str
    credential: TokenCredential
    arm_url: str | None = None
    ca_cert: str | None = None
    vault_url: Callable[[str], str] = _identity
    kubernetes_url: str | None = None
    dns_address: str | None = None
    enforce_https: bool = True
    # Seconds between LRO polls when the service sends no Retry-After (SDK default 30).
    polling_interval: float | None = None
    # Transport retries: azure-core RetryPolicy total tries (None keeps its default of 10), and
    # the Kubernetes client's (None: 3; kubeconfig.transport_retries).
    retry_total: int | None = None
    # azure-core's retry backoff factor in seconds (None keeps its 0.8: waits 0.8, 1.6, 3.2 s).
    retry_backoff_s: float | None = None
    # Whether the HTTP transport reads proxy settings from the environment.
    use_env_proxies: bool = True
    verify_challenge_resource: bool = True
    info: dict[str, Any] = field(default_factory=dict)
    # An azure-core HttpTransport every client sends through (None: the SDK's default), e.g.
    # one that answers from a recorded real session (tests/conformance/transport.py).
    transport: Any = None
    # Seconds to wait for a connection, and for an answer once connected (azure-core's
    # defaults are 300 each), on every call: ARM, Key Vault, Kubernetes.
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    # A Key Vault data plane may be private (a private endpoint's IP, unroutable from outside
    # its VNet): give up connecting quickly, and retry the connection once only, so that the
    # control-plane fallback comes in seconds rather than minutes.
    vault_connect_timeout_s: float = 5.0
    vault_connect_retries: int = 1

    @classmethod
    def for_azure(cls, subscription_id: str, *, retry_total: int | None = None) -> AzureTarget:
        """Real Azure with ``DefaultAzureCredential`` (environment, managed identity, az CLI)."""
        from azure.identity import DefaultAzureCredential

        return cls(
            subscription_id=subscription_id,
            credential=DefaultAzureCredential(),
            retry_total=retry_total,
        )

    @classmethod
    def for_emulator(
        cls, arm_url: str, *, retry_total: int | None = None, timeout_s: float = 10.0
    ) -> AzureTarget:
        """A running emulator, discovered through ``GET {arm_url}/_emulator/info``.

        Raises NotLoopbackError when ``arm_url`` (or any plane it advertises) is not loopback,
        before any connection is made; URLError/OSError when nothing answers.
        """
        arm_url = arm_url.rstrip("/")
        require_loopback(arm_url, "emulator ARM URL")
        info = _get_json(f"{arm_url}/_emulator/info", timeout_s)
        subscription_id = str(info["subscription_id"])
        kubernetes = info.get("kubernetes")
        for key in ("keyvault", "kubernetes", "acr", "graph"):
            if info.get(key):
                require_loopback(str(info[key]), f"emulator {key} URL")
        dns = info.get("dns")
        if dns:
            require_loopback(f"udp://{dns}", "emulator DNS address")
        return cls(
            subscription_id=subscription_id,
            credential=StaticTokenCredential(),
            arm_url=arm_url,
            ca_cert=info.get("ca_cert"),
            vault_url=_loopback_vault_mapper(arm_url, subscription_id),
            kubernetes_url=str(kubernetes) if kubernetes else None,
            dns_address=str(dns) if dns else None,
            enforce_https=arm_url.lower().startswith("https"),
            polling_interval=0.05,
            retry_total=retry_total,
            use_env_proxies=False,
            verify_challenge_resource=False,
            info=info,
        )


def _loopback_vault_mapper(arm_url: str, subscription_id: str) -> Callable[[str], str]:
    """Map a vault URI as ARM reports it to the emulator's Key Vault listener for that vault.

    The emulator serves each vault on its own loopback port and reports that URL as the
    vault's ``vaultUri``; a ``https://<vault>.vault.azure.net/`` URL (e.g. typed by a user) is
    looked up among the subscription's vaults. Raises NotLoopbackError when no loopback URL
    is known for it.
    """

    def mapper(url: str) -> str:
        host = urllib.parse.urlsplit(url).hostname or ""
        if host.endswith(".vault.azure.net"):
            vault = host.split(".", 1)[0].lower()
            listing = _get_json(
                f"{arm_url}/subscriptions/{subscription_id}/providers/Microsoft.KeyVault/vaults"
                "?api-version=2025-05-01"
            )
            for found in listing.get("value", []):
                uri = str(found.get("properties", {}).get("vaultUri", ""))
                if str(found.get("name", "")).lower() == vault and uri:
                    url = uri
                    break
        require_loopback(url, "Key Vault URL")
        return url

    return mapper


def _get_json(url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """GET a JSON document from a loopback URL, never through a proxy."""
    require_loopback(url, "emulator URL")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout_s) as answer:
        loaded: dict[str, Any] = json.load(answer)
    return loaded


class Clients:
    """Lazily built, cached SDK clients for one ``AzureTarget``. Thread-safe once built."""

    def __init__(self, target: AzureTarget) -> None:
        self.target = target
        self._secret_clients: dict[str, SecretClient] = {}
        self._secret_clients_lock = threading.Lock()
        self._deadline = _OperationDeadline()
        # A private directory for Kubernetes client certificates and its remover.
        self._kube_dir: tuple[str, Callable[[], Any]] | None = None
        self._kube_dir_lock = threading.Lock()

    def _kubernetes_files(self) -> str:
        """A private directory (0700) for Kubernetes client certificates, made on first use and
        removed by close() (or when this object is collected, or at exit)."""
        with self._kube_dir_lock:
            if self._kube_dir is None:
                path = tempfile.mkdtemp(prefix="nsc-kube-")
                self._kube_dir = (path, weakref.finalize(self, shutil.rmtree, path, True))
            return self._kube_dir[0]

    def close(self) -> None:
        """Remove the files Kubernetes clients needed (client certificate and key). Clients
        built so far may not open new connections afterwards. Idempotent."""
        with self._kube_dir_lock:
            if self._kube_dir is not None:
                self._kube_dir[1]()
                self._kube_dir = None

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _transport_kwargs(self) -> dict[str, Any]:
        t = self.target
        kwargs: dict[str, Any] = {
            "connection_timeout": t.connect_timeout_s,
            "read_timeout": t.read_timeout_s,
            "per_call_policies": [self._deadline, _Conditional()],
        }
        if t.ca_cert:
            kwargs["connection_verify"] = t.ca_cert
        if t.retry_total is not None:
            kwargs["retry_total"] = t.retry_total
        if t.retry_backoff_s is not None:
            kwargs["retry_backoff_factor"] = t.retry_backoff_s
        if not t.use_env_proxies:
            kwargs["use_env_settings"] = False
        if t.transport is not None:
            kwargs["transport"] = t.transport
        return kwargs

    def prepare(self, names: Iterable[str]) -> None:
        """Import the SDKs of the named clients (``SDK_MODULES`` keys) and build the named
        management clients, in the calling thread. The engine calls it before its worker
        threads start: an import inside a worker holds Python's import lock for a module,
        so the other workers needing it wait, and its CPU time lands between network round
        trips instead of before them. Raises KeyError for a name that is no client."""
        for module in _FIRST_ANSWER_MODULES:
            with suppress(ImportError):  # another azure-core version: it imports what it needs
                importlib.import_module(module)
        for name in sorted(set(names)):
            for module in SDK_MODULES[name]:
                importlib.import_module(module)
            if isinstance(inspect.getattr_static(self, name, None), cached_property):
                getattr(self, name)

    def mgmt_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every management client gets (base URL, policies, polling,
        timeouts)."""
        t = self.target
        kwargs = self._transport_kwargs()
        if t.arm_url:
            kwargs["base_url"] = t.arm_url
        if not t.enforce_https:
            kwargs["per_call_policies"].append(allow_plain_http_policy())
        if t.polling_interval is not None:
            kwargs["polling_interval"] = t.polling_interval
        return kwargs

    @cached_property
    def network(self) -> NetworkManagementClient:
        from azure.mgmt.network import NetworkManagementClient

        t = self.target
        return NetworkManagementClient(t.credential, t.subscription_id, **self.mgmt_kwargs())

    @cached_property
    def privatedns(self) -> PrivateDnsManagementClient:
        from azure.mgmt.privatedns import PrivateDnsManagementClient

        t = self.target
        return PrivateDnsManagementClient(t.credential, t.subscription_id, **self.mgmt_kwargs())

    @cached_property
    def cognitive(self) -> CognitiveServicesManagementClient:
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

        t = self.target
        return CognitiveServicesManagementClient(
            t.credential, t.subscription_id, **self.mgmt_kwargs()
        )

    @cached_property
    def postgres(self) -> PostgreSQLManagementClient:
        from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient

        t = self.target
        return PostgreSQLManagementClient(t.credential, t.subscription_id, **self.mgmt_kwargs())

    @cached_property
    def monitor(self) -> MonitorManagementClient:
        from azure.mgmt.monitor import MonitorManagementClient

        t = self.target
        return MonitorManagementClient(t.credential, t.subscription_id, **self.mgmt_kwargs())

    @cached_property
    def alertsmanagement(self) -> AlertsManagementClient:
        """Fired alerts (Alerts Management API): what the alert smoke waits for."""
        from azure.mgmt.alertsmanagement import AlertsManagementClient

        t = self.target
        return AlertsManagementClient(t.credential, t.subscription_id, **self.mgmt_kwargs())

    @cached_property
    def loganalytics(self) -> LogAnalyticsManagementClient:
        from azure.mgmt.loganalytics import LogAnalyticsManagementClient

        t = self.target
        return LogAnalyticsManagementClient(t.credential, t.subscription_id, **self.mgmt_kwargs())

    @cached_property
    def containerservice(self) -> ContainerServiceClient:
        from azure.mgmt.containerservice import ContainerServiceClient

        t = self.target
        return ContainerServiceClient(t.credential, t.subscription_id, **self.mgmt_kwargs())

    @cached_property
    def containerregistry(self) -> ContainerRegistryManagementClient:
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient

        t = self.target
        return ContainerRegistryManagementClient(
            t.credential, t.subscription_id, **self.mgmt_kwargs()
        )

    @cached_property
    def keyvault_mgmt(self) -> KeyVaultManagementClient:
        from azure.mgmt.keyvault import KeyVaultManagementClient

        t = self.target
        return KeyVaultManagementClient(t.credential, t.subscription_id, **self.mgmt_kwargs())

    @cached_property
    def authorization(self) -> AuthorizationManagementClient:
        from azure.mgmt.authorization import AuthorizationManagementClient

        t = self.target
        return AuthorizationManagementClient(t.credential, t.subscription_id, **self.mgmt_kwargs())

    @cached_property
    def msi(self) -> ManagedServiceIdentityClient:
        from azure.mgmt.msi import ManagedServiceIdentityClient

        t = self.target
        return ManagedServiceIdentityClient(t.credential, t.subscription_id, **self.mgmt_kwargs())

    @cached_property
    def resource(self) -> ResourceManagementClient:
        from azure.mgmt.resource.resources import ResourceManagementClient

        t = self.target
        return ResourceManagementClient(t.credential, t.subscription_id, **self.mgmt_kwargs())

    def secret_client(self, vault_url: str) -> SecretClient:
        """A data-plane client for the vault whose URI ARM reports as ``vault_url`` (cached)."""
        from azure.keyvault.secrets import SecretClient

        url = self.target.vault_url(vault_url)
        with self._secret_clients_lock:  # one client (one connection pool) per vault
            client = self._secret_clients.get(url)
            if client is None:
                kwargs = {
                    **self._transport_kwargs(),
                    "connection_timeout": self.target.vault_connect_timeout_s,
                    "retry_connect": self.target.vault_connect_retries,
                }
                client = SecretClient(
                    vault_url=url,
                    credential=self.target.credential,
                    verify_challenge_resource=self.target.verify_challenge_resource,
                    **kwargs,
                )
                self._secret_clients[url] = client
        return client

    def logs_ingestion_client(self, endpoint: str) -> LogsIngestionClient:
        """A Logs Ingestion client for a DCR's ``logsIngestion`` endpoint (emulator: loopback
        only, trusting its CA)."""
        from azure.monitor.ingestion import LogsIngestionClient

        if self.target.arm_url is not None:
            require_loopback(endpoint, "logs ingestion endpoint")
        return LogsIngestionClient(
            endpoint=endpoint, credential=self.target.credential, **self._transport_kwargs()
        )

    def kubeconfig(self, resource_group: str, cluster_name: str) -> dict[str, Any]:
        """The cluster's user kubeconfig (``listClusterUserCredential``) as a dict."""
        from ruamel.yaml import YAML

        creds = self.containerservice.managed_clusters.list_cluster_user_credentials(
            resource_group, cluster_name
        )
        if not creds.kubeconfigs or creds.kubeconfigs[0].value is None:
            raise ValueError(f"cluster {cluster_name} returned no kubeconfig")
        loaded: dict[str, Any] = YAML(typ="safe").load(creds.kubeconfigs[0].value)
        return loaded

    def kubernetes_api_client(self, resource_group: str, cluster_name: str) -> Any:
        """A ``kubernetes.client.ApiClient`` for the cluster's API server, configured from
        the user kubeconfig by ``kubeconfig.kubernetes_configuration`` (server, CA, client
        certificate, static token, or an Entra ID token for a kubelogin plugin's server id and
        tenant, renewed before expiry; transport retries). ``kubernetes_url`` / ``ca_cert``
        replace server and CA for the emulator. Files it needs live until ``close()``.
        """
        from kubernetes import client as k8s

        from nsc_reconcile.kubeconfig import kubernetes_configuration

        configuration = kubernetes_configuration(
            self.kubeconfig(resource_group, cluster_name),
            self.target.credential,
            files_dir=self._kubernetes_files,
            server=self.target.kubernetes_url,
            ca_cert=self.target.ca_cert,
            use_env_proxies=self.target.use_env_proxies,
            retry_total=self.target.retry_total,
        )
        api = k8s.ApiClient(configuration)
        _set_kubernetes_timeouts(api, self.target)
        return api


def _set_kubernetes_timeouts(api: Any, target: AzureTarget) -> None:
    """Connect and read timeouts for every call of a ``kubernetes.client.ApiClient``: the
    client passes ``timeout=None`` (no limit) to urllib3 unless a call names one, so a call to
    an unreachable API server would hang; every call without one gets ours."""
    rest = getattr(api, "rest_client", None)
    request = getattr(rest, "request", None)
    if rest is None or request is None:
        return
    limits = (target.connect_timeout_s, target.read_timeout_s)

    def request_with_timeouts(*args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = limits
        return request(*args, **kwargs)

    rest.request = request_with_timeouts
