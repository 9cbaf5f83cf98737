"""The one place that builds Azure SDK clients, for real Azure or for the local emulator.

Everything else receives a ``Clients`` and never knows which it talks to. Talks to the emulator
over HTTP only (never imports ``nsc_reconcile.emulator``); SDK modules are imported lazily.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

if TYPE_CHECKING:
    from azure.keyvault.secrets import SecretClient
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
]

# Entra ID application of the AKS API server; tokens for it authenticate to AAD-enabled clusters.
AKS_SERVER_APP_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"


class NotLoopbackError(ValueError):
    """An emulator URL points somewhere other than this machine's loopback interface."""


def _require_loopback(url: str, what: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
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
    # azure-core RetryPolicy total tries (None keeps its default of 10).
    retry_total: int | None = None
    # Whether the HTTP transport reads proxy settings from the environment.
    use_env_proxies: bool = True
    verify_challenge_resource: bool = True
    info: dict[str, Any] = field(default_factory=dict)
    # An azure-core HttpTransport every client sends through (None: the SDK's default), e.g.
    # one that answers from a recorded real session (tests/conformance/transport.py).
    transport: Any = None

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
        _require_loopback(arm_url, "emulator ARM URL")
        info = _get_json(f"{arm_url}/_emulator/info", timeout_s)
        subscription_id = str(info["subscription_id"])
        kubernetes = info.get("kubernetes")
        for key in ("keyvault", "kubernetes"):
            if info.get(key):
                _require_loopback(str(info[key]), f"emulator {key} URL")
        dns = info.get("dns")
        if dns:
            _require_loopback(f"udp://{dns}", "emulator DNS address")
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
        _require_loopback(url, "Key Vault URL")
        return url

    return mapper


def _get_json(url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """GET a JSON document from a loopback URL, never through a proxy."""
    _require_loopback(url, "emulator URL")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout_s) as answer:
        loaded: dict[str, Any] = json.load(answer)
    return loaded


class Clients:
    """Lazily built, cached SDK clients for one ``AzureTarget``. Thread-safe once built."""

    def __init__(self, target: AzureTarget) -> None:
        self.target = target
        self._secret_clients: dict[str, SecretClient] = {}

    def _transport_kwargs(self) -> dict[str, Any]:
        t = self.target
        kwargs: dict[str, Any] = {}
        if t.ca_cert:
            kwargs["connection_verify"] = t.ca_cert
        if t.retry_total is not None:
            kwargs["retry_total"] = t.retry_total
        if not t.use_env_proxies:
            kwargs["use_env_settings"] = False
        if t.transport is not None:
            kwargs["transport"] = t.transport
        return kwargs

    def mgmt_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every management client gets (base URL, policies, polling)."""
        t = self.target
        kwargs = self._transport_kwargs()
        if t.arm_url:
            kwargs["base_url"] = t.arm_url
        if not t.enforce_https:
            kwargs["per_call_policies"] = [allow_plain_http_policy()]
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
        client = self._secret_clients.get(url)
        if client is None:
            client = SecretClient(
                vault_url=url,
                credential=self.target.credential,
                verify_challenge_resource=self.target.verify_challenge_resource,
                **self._transport_kwargs(),
            )
            self._secret_clients[url] = client
        return client

    def logs_ingestion_client(self, endpoint: str) -> LogsIngestionClient:
        """A Logs Ingestion client for a DCR's ``logsIngestion`` endpoint (emulator: loopback
        only, trusting its CA)."""
        from azure.monitor.ingestion import LogsIngestionClient

        if self.target.arm_url is not None:
            _require_loopback(endpoint, "logs ingestion endpoint")
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
        """A ``kubernetes.client.ApiClient`` for the cluster's API server.

        Server and CA come from the user kubeconfig (``kubernetes_url`` / ``ca_cert`` replace
        them for the emulator); the bearer token is the kubeconfig user's static token if it has
        one, else an Entra ID token for the AKS server application from the credential.
        """
        from kubernetes import client as k8s

        config = self.kubeconfig(resource_group, cluster_name)
        context_name = config.get("current-context")
        contexts = {c["name"]: c["context"] for c in config.get("contexts", [])}
        context: dict[str, Any] = contexts.get(context_name) or next(iter(contexts.values()), {})
        clusters = {c["name"]: c["cluster"] for c in config.get("clusters", [])}
        users = {u["name"]: u.get("user") or {} for u in config.get("users", [])}
        cluster = clusters.get(context.get("cluster")) or next(iter(clusters.values()))
        user = users.get(context.get("user"), {})

        configuration = k8s.Configuration()
        configuration.host = self.target.kubernetes_url or cluster["server"]
        if self.target.ca_cert:
            configuration.ssl_ca_cert = self.target.ca_cert
        elif cluster.get("certificate-authority-data"):
            pem = base64.b64decode(cluster["certificate-authority-data"])
            with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as handle:
                handle.write(pem)
            configuration.ssl_ca_cert = handle.name
        token = user.get("token") or self.target.credential.get_token(AKS_SERVER_APP_SCOPE).token
        configuration.api_key = {"authorization": f"Bearer {token}"}
        if not self.target.use_env_proxies:
            configuration.proxy = None
        return k8s.ApiClient(configuration)
