"""The running emulator: ARM (+ control interface) over HTTP, Key Vault over HTTPS, Kubernetes
over HTTP and DNS over UDP/TCP, all on 127.0.0.1, sharing one world, request log and faults.

``Emulator`` is the in-process handle (tests); ``serve`` runs it in the foreground (CLI).
"""

from __future__ import annotations

import shutil
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

from nsc_reconcile.emulator.alerting import Alerting
from nsc_reconcile.emulator.alertsapi import AlertsPlane
from nsc_reconcile.emulator.arm import World
from nsc_reconcile.emulator.cluster import ClusterView
from nsc_reconcile.emulator.control import PREFIX, ControlPlane, encode_info
from nsc_reconcile.emulator.databricks import DatabricksPlane
from nsc_reconcile.emulator.dns import DnsServer
from nsc_reconcile.emulator.graph import GraphPlane
from nsc_reconcile.emulator.ingestion import IngestionPlane
from nsc_reconcile.emulator.keyvault import KeyVaultPlane
from nsc_reconcile.emulator.kinds.authorization import CALLER_OBJECT_ID
from nsc_reconcile.emulator.kinds.postgres import SERVER_TYPE, attach_data_plane
from nsc_reconcile.emulator.kubernetes import KubernetesPlane
from nsc_reconcile.emulator.langfuse import LangfuseWorkloads
from nsc_reconcile.emulator.network import Entrance, Network
from nsc_reconcile.emulator.openai import OpenAIPlane, RateLimits
from nsc_reconcile.emulator.pgserver import PostgresServers
from nsc_reconcile.emulator.protocol import Plane, Request, Response
from nsc_reconcile.emulator.registry import RegistryPlane
from nsc_reconcile.emulator.sandbox import Sandbox
from nsc_reconcile.emulator.server import Controls, HttpServer, TlsFiles, make_tls
from nsc_reconcile.emulator.worlds import build_world

__all__ = ["Emulator", "serve"]


class _ArmRouter:
    """The ARM port: ``/_emulator/...`` goes to the control plane, fired alerts
    (``Microsoft.AlertsManagement``) to the alerts plane, the rest to the world."""

    def __init__(self, control: Plane, world: World, alerts: AlertsPlane | None = None) -> None:
        self.control = control
        self.world = world
        self.alerts = alerts

    def handle(self, request: Request) -> Response:
        if request.path.startswith(PREFIX):
            return self.control.handle(request)
        if self.alerts is not None and self.alerts.serves(request.path):
            return self.alerts.handle(request)
        return self.world.handle(request)


class Emulator:
    """A complete local Azure: ``start()``/``stop()`` or ``with Emulator() as emu: ...``.

    ``info`` holds the base URLs (``arm``, ``keyvault``, ``kubernetes``, ``ingestion``,
    ``openai`` and ``openai_public``: the Azure OpenAI entrances), ``dns``
    (``127.0.0.1:PORT``), ``ca_cert`` (CA PEM path for the HTTPS planes) and
    ``subscription_id``. ``world`` is the ARM store; ``controls`` the log/faults/latency.
    """

    def __init__(self, world: str | World = "baseline", port: int = 0) -> None:
        self.world = build_world(world) if isinstance(world, str) else world
        self._built_world = isinstance(world, str)
        self.port = port
        self.controls = Controls()
        # Where the world's addresses (private endpoint IPs, public service addresses, cluster
        # IPs) are served on loopback; data planes register here (see network.py).
        self.network = Network(self.world)
        # Log alert rules evaluated over ingested rows; fired alerts, notifications.
        self.alerting = Alerting(self.world)
        self.info: dict[str, Any] = {}
        self._servers: list[HttpServer] = []
        self._tls: TlsFiles | None = None
        self._dns: DnsServer | None = None
        self._kubernetes: KubernetesPlane | None = None
        # LangFuse web Deployments on the cluster: pods, headless init, Service routes.
        self.langfuse: LangfuseWorkloads | None = None
        # Where Kubernetes Jobs and Databricks runs execute: local subprocesses with the
        # VNet's network view (DNS, routes, CA; filled in at start). See sandbox.py.
        self.sandbox = Sandbox(self.network)
        self._databricks: DatabricksPlane | None = None
        self._openai_limits = RateLimits()
        self._lock = threading.Lock()
        # The real PostgreSQL behind each flexible server (pgserver.py), started on first use;
        # it hears of passwords and databases while the emulator runs (attached in start()).
        self.postgres = PostgresServers(self.world, lambda: self._tls)
        self.network.serve(SERVER_TYPE, 5432, self.postgres.listener)

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> Emulator:
        """Bind every port and start serving; returns self. Idempotent."""
        if self._servers:
            return self
        self._tls = make_tls()
        attach_data_plane(self.world, self.postgres)
        control = ControlPlane(
            self.world,
            self.controls,
            lambda: dict(self.info),
            self.reset,
            self.network,
            alerting=self.alerting,
        )
        router = _ArmRouter(control, self.world, AlertsPlane(self.alerting))
        arm = self._serve(router, "arm", port=self.port)
        keyvault_url = self._mount_keyvault()
        kubernetes_url = self._mount_kubernetes()
        ingestion_url = self._serve(IngestionPlane(self.world), "ingestion", tls=True).url
        acr_url = self._serve(RegistryPlane(self.world), "acr", tls=True).url
        graph_url = self._serve(GraphPlane(), "graph", tls=True).url
        openai_urls = self._mount_openai()
        dns_address = self._mount_dns()
        self.sandbox.ca_cert = str(self._tls.ca_cert)
        self.sandbox.dns = self._dns.address if self._dns is not None else None
        databricks_url = self._mount_databricks()
        self.world.urls.update(
            {
                "arm": arm.url,
                "keyvault": keyvault_url,
                "kubernetes": kubernetes_url,
                "ingestion": ingestion_url,
                "acr": acr_url,
            }
        )
        if self._built_world:  # rebuild now that URLs are known (e.g. a vault's vaultUri)
            self.world.reseed()
        self.info = {
            "arm": arm.url,
            "keyvault": keyvault_url,
            "kubernetes": kubernetes_url,
            "ingestion": ingestion_url,
            "acr": acr_url,
            "graph": graph_url,
            # Who the default (non-JWT) token is: the emulator's signed-in user.
            "caller": {"object_id": CALLER_OBJECT_ID, "principal_type": "User"},
            "openai": openai_urls[0],
            "openai_public": openai_urls[1],
            "dns": dns_address,
            "databricks": databricks_url,
            "ca_cert": str(self._tls.ca_cert),
            "subscription_id": self.world.subscription_id,
            "world": self.world.name,
        }
        for server in self._servers:
            server.start()
        return self

    def stop(self) -> None:
        """Stop every server and remove the TLS files. Idempotent."""
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            server.stop()
        if self._dns is not None:
            self._dns.stop()
            self._dns = None
        self.sandbox.stop()
        self.postgres.stop()
        attach_data_plane(self.world, None)
        if self._tls is not None:
            shutil.rmtree(self._tls.directory, ignore_errors=True)
            self._tls = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to the starting world (resources, secrets, LRO config, latency, Kubernetes
        objects). Faults and the request log are cleared separately."""
        self.world.reset()
        self.alerting.reset()
        self.postgres.reset()
        self.controls.latency_ms = 0.0
        reset_kubernetes = getattr(self._kubernetes, "reset", None)
        if callable(reset_kubernetes):
            reset_kubernetes()
        if self.langfuse is not None:
            self.langfuse.reset()
        if self._databricks is not None:
            self._databricks.reset()
        self._openai_limits.clear()

    # ---- planes --------------------------------------------------------------------------
    def _serve(self, plane: Plane, name: str, port: int = 0, tls: bool = False) -> HttpServer:
        server = HttpServer(plane, name, self.controls, port=port, tls=self._tls if tls else None)
        with self._lock:
            self._servers.append(server)
        return server

    def _mount_keyvault(self) -> str:
        plane = KeyVaultPlane(self.world)
        main = self._serve(plane, "keyvault", tls=True)
        self.world.urls["keyvault"] = main.url

        def listen() -> str:  # one more HTTPS port for a further vault (see keyvault.py)
            extra = self._serve(plane, "keyvault", tls=True)
            extra.start()
            return extra.url

        plane.listen = listen
        return main.url

    def _mount_kubernetes(self) -> str:
        self._kubernetes = KubernetesPlane(sandbox=self.sandbox, world=self.world)
        self.langfuse = LangfuseWorkloads(
            ClusterView(self._kubernetes), self.network, self._listen_langfuse
        )
        return self._serve(self.langfuse.watching(self._kubernetes), "kubernetes").url

    def _listen_langfuse(self, plane: Plane) -> tuple[str, int]:
        """One more HTTP port for a LangFuse web (started now: the emulator is running)."""
        server = self._serve(plane, "langfuse")
        server.start()
        return server.address

    def _mount_openai(self) -> tuple[str, str]:
        """Azure OpenAI's data plane: the private entrance (reached through an Approved private
        endpoint) and the public one (the account's public address), both on 443 in the
        world's network. Returns their loopback URLs."""
        private = self._serve(OpenAIPlane(self.world, "private", self._openai_limits),
                              "openai", tls=True)  # fmt: skip
        public = self._serve(OpenAIPlane(self.world, "public", self._openai_limits),
                             "openai", tls=True)  # fmt: skip

        def listener(resource_id: str, entrance: Entrance) -> tuple[str, int]:
            del resource_id  # one listener per entrance serves every account (Host header)
            return (public if entrance == "public" else private).address

        self.network.serve("Microsoft.CognitiveServices/accounts", 443, listener)
        return private.url, public.url

    def _mount_databricks(self) -> str:
        """A Databricks workspace's REST API (HTTPS) whose runs execute in the sandbox."""
        server: list[HttpServer] = []
        plane = DatabricksPlane(self.world, self.sandbox, lambda: server[0].url)
        server.append(self._serve(plane, "databricks", tls=True))
        self._databricks = plane
        return server[0].url

    def _mount_dns(self) -> str:
        self._dns = DnsServer(self.world, host="127.0.0.1", port=0)
        if self.langfuse is not None:  # pods' view: the cluster domain answered first
            self._dns.resolver.cluster_dns = self.langfuse.cluster.resolve
        self._dns.start()
        host, port = self._dns.address
        return f"{host}:{port}"


def serve(port: int = 0, world: str = "baseline") -> None:
    """Run the emulator in the foreground: print ONE JSON line (the info) when ready, then
    serve until SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    emulator = Emulator(world=world, port=port)
    try:
        emulator.start()
        sys.stdout.write(encode_info(emulator.info) + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":  # python -m nsc_reconcile.emulator.app [port] [world]
    serve(
        int(sys.argv[1]) if len(sys.argv) > 1 else 0,
        sys.argv[2] if len(sys.argv) > 2 else "baseline",
    )
