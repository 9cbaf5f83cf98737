"""``LangfuseWorkloads``: what the cluster runs when a Deployment's container image is LangFuse
web (``.../langfuse/langfuse:<tag>``), kept in step with the Kubernetes plane after every write
to it: its pods start when the Deployment is ready (and again on a new revision or after a
scale to zero), each start resolving the container's environment (Secret references
included) and running LangFuse's headless init; a Service that selects those pods and
targets the port they listen on is routed, at its cluster IP and port, to the instance's
loopback server (``Network.add``; removed when the Service, the pods or the port go).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from nsc_reconcile.emulator.cluster import ClusterView
from nsc_reconcile.emulator.langfuse.web import LangfuseWeb, Pods
from nsc_reconcile.emulator.network import Network
from nsc_reconcile.emulator.protocol import Plane, Request, Response

__all__ = ["WEB_REPOSITORY", "LangfuseWorkloads"]

WEB_REPOSITORY = "langfuse/langfuse"  # the worker is langfuse/langfuse-worker
DEFAULT_PORT = 3000  # the web listens on $PORT, 3000 unless set
Obj = dict[str, Any]


class _Watched:
    """A Kubernetes plane whose successful writes are followed by ``after_write()``."""

    def __init__(self, plane: Plane, after_write: Callable[[], None]) -> None:
        self.plane = plane
        self.after_write = after_write

    def handle(self, request: Request) -> Response:
        response = self.plane.handle(request)
        dry_run = request.query.get("dryRun") == "All"
        if request.method not in ("GET", "HEAD") and response.status < 400 and not dry_run:
            self.after_write()
        return response


class LangfuseWorkloads:
    """Every LangFuse web of the cluster. ``listen(plane)`` serves a plane on loopback and
    returns its address; ``visible_after_seconds`` is how long written traces stay unreadable
    (LangFuse's asynchronous ingestion; small by default)."""

    def __init__(
        self,
        cluster: ClusterView,
        network: Network,
        listen: Callable[[Plane], tuple[str, int]],
        visible_after_seconds: float = 0.2,
    ) -> None:
        self.cluster = cluster
        self.network = network
        self.visible_after_seconds = visible_after_seconds
        self._default_visible_after = visible_after_seconds
        self._listen = listen
        self._lock = threading.RLock()
        self._webs: dict[tuple[str, str], LangfuseWeb] = {}
        self._routes: set[tuple[str, int]] = set()

    def watching(self, kubernetes: Plane) -> Plane:
        """``kubernetes`` with every successful write followed by ``observe()``."""
        return _Watched(kubernetes, self.observe)

    def web(self, namespace: str, name: str) -> LangfuseWeb | None:
        """The LangFuse web of Deployment ``namespace/name`` (seen at least once)."""
        with self._lock:
            return self._webs.get((namespace, name))

    def reset(self) -> None:
        """Forget every instance's data and pods, drop the routes (servers stay up), back to
        the default ingestion delay."""
        with self._lock:
            self.visible_after_seconds = self._default_visible_after
            for web in self._webs.values():
                web.reset()
            for address, port in self._routes:
                self.network.remove(address, port)
            self._routes.clear()

    # -- keeping in step with the cluster ------------------------------------------------------
    def observe(self) -> None:
        """Start/stop pods and add/remove routes after the cluster changed. Idempotent."""
        with self._lock:
            seen: set[tuple[str, str]] = set()
            for deployment in self.cluster.deployments():
                container = _web_container(deployment)
                if container is None:
                    continue
                meta = deployment.get("metadata") or {}
                key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
                seen.add(key)
                web = self._webs.get(key)
                if web is None:
                    web = LangfuseWeb(key[0], key[1], lambda: self.visible_after_seconds)
                    web.address = self._listen(web)
                    self._webs[key] = web
                self._sync_pods(web, deployment, container)
            for key, web in self._webs.items():
                if key not in seen and web.pods is not None:  # Deployment deleted
                    web.stop()
            self._sync_routes()

    def _sync_pods(self, web: LangfuseWeb, deployment: Obj, container: Obj) -> None:
        meta = deployment.get("metadata") or {}
        revision = (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", "")
        generation = (str(meta.get("uid") or ""), str(revision))
        ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
        if ready <= 0:
            web.stop()
            return
        if web.pods is not None and web.pods.generation == generation:
            return  # the same pods keep running: their environment does not change
        env = self.cluster.container_env(web.namespace, container)
        if env is None:  # a referenced Secret/key is missing: the container cannot start
            web.stop()
            return
        template = (deployment.get("spec") or {}).get("template") or {}
        ports = {
            str(p.get("name")): int(p.get("containerPort") or 0)
            for p in container.get("ports") or []
            if p.get("name")
        }
        port = int(env["PORT"]) if env.get("PORT", "").isdigit() else DEFAULT_PORT
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        image = str(container.get("image") or "")
        web.start(Pods(generation, env, labels, ports, port, image))

    def _sync_routes(self) -> None:
        wanted: dict[tuple[str, int], tuple[LangfuseWeb, str]] = {}
        for service in self.cluster.services():
            meta, spec = service.get("metadata") or {}, service.get("spec") or {}
            address = str(spec.get("clusterIP") or "")
            selector = spec.get("selector") or {}
            if not address or address == "None" or not selector:
                continue
            namespace = str(meta.get("namespace") or "")
            for web in self._webs.values():
                pods = web.pods
                if web.namespace != namespace or pods is None:
                    continue
                if any(pods.labels.get(k) != v for k, v in selector.items()):
                    continue
                for port in spec.get("ports") or []:
                    if str(port.get("protocol") or "TCP") != "TCP":
                        continue
                    target = port.get("targetPort", port.get("port"))
                    resolved = pods.ports.get(target) if isinstance(target, str) else target
                    if resolved == pods.port:
                        what = (
                            f"Service {namespace}/{meta.get('name')} port {port.get('port')} -> "
                            f"LangFuse web Deployment {namespace}/{web.name} (pod port {pods.port})"
                        )
                        wanted[(address, int(port["port"]))] = (web, what)
        for address, port in self._routes - set(wanted):
            self.network.remove(address, port)
        for (address, port), (web, what) in wanted.items():
            self.network.add(address, port, web.loopback, what)
        self._routes = set(wanted)


def _web_container(deployment: Obj) -> Obj | None:
    template = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in template.get("containers") or []:
        if _repository(str(container.get("image") or "")) == WEB_REPOSITORY:
            return dict(container)
    return None


def _repository(image: str) -> str:
    """``registry.example.io/langfuse/langfuse:3`` -> ``langfuse/langfuse``."""
    name = image.partition("@")[0]
    head, _, last = name.rpartition("/")
    name = f"{head}/{last.partition(':')[0]}" if head else last.partition(":")[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest
    return name.lower()
