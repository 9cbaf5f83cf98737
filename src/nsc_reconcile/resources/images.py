"""Container images in the existing registry (ACR): read on the registry's data plane, written
with ``registries.begin_import_image`` (azure-mgmt-containerregistry).

Read: ``HEAD /v2/<repository>/manifests/<tag>`` answers the tag's manifest digest
(``Docker-Content-Digest``), after the ACR token exchange (an ARM token exchanged for a
refresh token, ``POST /oauth2/exchange``, then for a pull token of the repository,
``POST /oauth2/token``; Azure/acr docs/AAD-OAuth.md). Plain HTTPS through azure-core's
pipeline with the run's transport settings (timeouts, CA, retries, proxies), not
azure-containerregistry (not a dependency of the project). On the emulator the data plane is
its ``acr`` listener (loopback only), addressed by the login server in the Host header.
Write: import ``<source>/<repository>@<digest>`` under ``<repository>:<tag>``; over another
digest with mode Force.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import weakref
from typing import Any

from nsc_reconcile.model.images import ContainerImage
from nsc_reconcile.resources.base import Context, Live, Reconciler

ARM_SCOPE = "https://management.azure.com/.default"
# What a HEAD of a manifest accepts: the digest answered is that of the manifest (or index)
# the registry holds under the tag, in whichever of these formats it is stored.
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
_TOKEN_LIFETIME_S = 300.0  # ACR pull tokens live about 75 minutes; renew well before


class RegistryError(RuntimeError):
    """The registry's data plane answered something other than the manifest or its absence."""


class RegistryClient:
    """Reads tags of one registry's data plane. Thread-safe; tokens are kept a few minutes."""

    def __init__(self, clients: Any, login_server: str) -> None:
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import RetryPolicy
        from azure.core.pipeline.transport import RequestsTransport

        target = clients.target
        self.login_server = login_server.lower()
        if target.arm_url is not None:  # the emulator: its ACR listener serves every registry
            from nsc_reconcile.azure import require_loopback

            self.base_url = require_loopback(
                str(target.info["acr"]).rstrip("/"), "emulator registry URL"
            )
        else:
            self.base_url = f"https://{self.login_server}"
        kwargs = clients._transport_kwargs()
        transport = kwargs.pop("transport", None) or RequestsTransport(**kwargs)
        policies = [RetryPolicy(**kwargs), *kwargs.get("per_call_policies", [])]
        self._client: Any = PipelineClient(self.base_url, policies=policies, transport=transport)
        self._credential = target.credential
        self._tokens: dict[str, tuple[str, float]] = {}  # repository (or "": refresh) -> token
        self._lock = threading.Lock()
        self._exchange_lock = threading.Lock()

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        from azure.core.rest import HttpRequest

        headers = {"Host": self.login_server, **kwargs.pop("headers", {})}
        request = HttpRequest(method, f"{self.base_url}{path}", headers=headers, **kwargs)
        return self._client.send_request(request)

    def _refresh_token(self, now: float) -> str:
        """The registry's refresh token (an ARM token exchanged once, kept a few minutes): one
        per registry, good for the pull token of any of its repositories. Reads in parallel
        wait for one exchange rather than each making its own."""
        with self._exchange_lock:
            return self._exchange(now)

    def _exchange(self, now: float) -> str:
        with self._lock:
            found = self._tokens.get("")
            if found is not None and found[1] > now:
                return found[0]
        arm = self._credential.get_token(ARM_SCOPE).token
        exchanged = self._send(
            "POST",
            "/oauth2/exchange",
            data={"grant_type": "access_token", "service": self.login_server, "access_token": arm},
        )
        if exchanged.status_code != 200:
            raise RegistryError(
                f"{self.login_server}: token exchange answered {exchanged.status_code}"
            )
        refresh = str(exchanged.json()["refresh_token"])
        with self._lock:
            self._tokens[""] = (refresh, now + _TOKEN_LIFETIME_S)
        return refresh

    def _token(self, repository: str) -> str:
        """A pull token for ``repository`` (ARM token -> refresh token -> access token)."""
        now = time.monotonic()
        with self._lock:
            found = self._tokens.get(repository)
            if found is not None and found[1] > now:
                return found[0]
        refresh = self._refresh_token(now)
        answered = self._send(
            "POST",
            "/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "service": self.login_server,
                "scope": f"repository:{repository}:pull",
                "refresh_token": refresh,
            },
        )
        if answered.status_code != 200:
            raise RegistryError(f"{self.login_server}: pull token answered {answered.status_code}")
        token = str(answered.json()["access_token"])
        with self._lock:
            self._tokens[repository] = (token, now + _TOKEN_LIFETIME_S)
        return token

    def digest(self, repository: str, tag: str) -> str | None:
        """The manifest digest ``repository:tag`` points to; None when the repository or the
        tag is absent. Never writes. Raises RegistryError for any other answer."""
        answer = self._send(
            "HEAD",
            f"/v2/{repository}/manifests/{urllib.parse.quote(tag, safe='')}",
            headers={
                "Authorization": f"Bearer {self._token(repository)}",
                "Accept": MANIFEST_TYPES,
            },
        )
        if answer.status_code == 404:
            return None
        digest = answer.headers.get("Docker-Content-Digest")
        if answer.status_code != 200 or not digest:
            raise RegistryError(
                f"{self.login_server}: HEAD manifest {repository}:{tag} answered "
                f"{answer.status_code}"
            )
        return str(digest)


def registry_of(ctx: Context, name: str) -> tuple[str, str]:
    """``(ARM id, login server)`` of the existing registry ``name`` as read in this run.
    Raises ValueError when it was not found."""
    live = ctx.live(f"container_registry/{name}")
    if live is None:
        raise ValueError(f"container_registry/{name} does not exist")
    server = live.fields.get("properties.loginServer") or f"{name.lower()}.azurecr.io"
    return live.id, str(server)


class ContainerImageReconciler(Reconciler[ContainerImage]):
    """An image pinned by digest in the registry; see the module docstring."""

    kind = "container_image"

    def __init__(self) -> None:
        # Keyed by the run's Clients object itself (weakly): an id() could be reused by a later
        # Clients and hand it an earlier run's transport, credential and base URL.
        self._clients: weakref.WeakKeyDictionary[Any, dict[str, RegistryClient]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def client(self, ctx: Context, login_server: str) -> RegistryClient:
        """The data-plane client of ``login_server`` for this run's clients (cached)."""
        with self._lock:
            per_run = self._clients.setdefault(ctx.clients, {})
            server = login_server.lower()
            if server not in per_run:
                per_run[server] = RegistryClient(ctx.clients, login_server)
            return per_run[server]

    def resource_id(self, ctx: Context, resource: ContainerImage) -> str:
        try:
            registry_id, _ = registry_of(ctx, resource.registry)
        except ValueError:
            registry_id = f"container_registry/{resource.registry}"
        return f"{registry_id}/images/{resource.reference}"

    def read(self, ctx: Context, resource: ContainerImage) -> Live | None:
        _, server = registry_of(ctx, resource.registry)
        digest = self.client(ctx, server).digest(resource.repository, resource.tag)
        if digest is None:
            return None
        return Live(id=self.resource_id(ctx, resource), fields={"digest": digest})

    def desired(self, ctx: Context, resource: ContainerImage) -> dict[str, Any]:
        return {"digest": resource.digest}

    def write(self, ctx: Context, resource: ContainerImage, live: Live | None) -> None:
        """Import the pinned source image under the tag and wait (the LRO); over a tag that
        points elsewhere only with mode Force, which a differing ``live`` means."""
        from azure.mgmt.containerregistry.models import ImportImageParameters, ImportSource

        registry_id, _ = registry_of(ctx, resource.registry)
        group = registry_id.split("/")[4]
        parameters = ImportImageParameters(
            source=ImportSource(
                registry_uri=resource.source_registry,
                source_image=f"{resource.repository}@{resource.digest}",
            ),
            target_tags=[resource.reference],
            mode="Force" if live is not None else "NoForce",
        )
        ctx.clients.containerregistry.registries.begin_import_image(
            group, registry_id.rstrip("/").rsplit("/", 1)[-1], parameters
        ).result()

    def lock_key(self, resource: ContainerImage) -> str | None:
        # Two imports under one tag would race; one repository's tags are written in turn.
        return f"container_image/{resource.registry}/{resource.repository}"
