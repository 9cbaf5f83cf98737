"""Container images: the public images the emulated world knows, ACR ``importImage`` into a
registry, and the ACR data plane that lists what a registry holds.

``PUBLIC_IMAGES``: the only source images that "exist" (LangFuse web and worker, ClickHouse,
Valkey, MinIO, python), each tag with a ``sha256:`` manifest digest: the published digest where
one is recorded (``RECORDED_DIGESTS``, the tags the desired state pins), else a deterministic
synthetic one. An import of anything else fails as ACR fails it. The manifest BODY is always
synthetic: for a recorded digest it does not hash to that digest (the real bytes are not kept
here), so a client that re-hashes a downloaded manifest refuses it; HEAD, tags and imports
(what the tool reads) carry the recorded digest. Imported images live in ``world.images``
(registry id, lower-cased -> repository -> tag -> digest) and are cleared by a world reset.

The data plane (``RegistryPlane``) answers what ``azure-containerregistry`` and plain HTTPS use:
``GET /v2/`` and the token exchange (``POST /oauth2/exchange``, ``POST /oauth2/token``: any
bearer is accepted, as elsewhere in the emulator), ``GET /acr/v1/_catalog``,
``GET /acr/v1/{repo}/_tags`` and ``HEAD``/``GET /v2/{repo}/manifests/{tag or digest}`` with
``Docker-Content-Digest``. One listener serves every registry: the registry is the first label
of the ``Host`` header when it names one (``nscacrdev.azurecr.io``), else the world's only
registry (404 ``NAME_UNKNOWN`` when ambiguous).
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from typing import Any, Protocol

from nsc_reconcile.emulator.protocol import ArmError, Request, Response

REGISTRY_TYPE = "Microsoft.ContainerRegistry/registries"
DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "registry.hub.docker.com", "registry-1.docker.io", "index.docker.io"}
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
# repository (as on Docker Hub) -> tags the world knows.
PUBLIC_IMAGES: dict[str, tuple[str, ...]] = {
    "langfuse/langfuse": ("3", "3.63.0", "latest"),
    "langfuse/langfuse-worker": ("3", "3.63.0", "latest"),
    "clickhouse/clickhouse-server": ("24.3", "24.8", "24.12-alpine", "latest"),
    "valkey/valkey": ("8", "8.0", "latest"),
    "minio/minio": ("RELEASE.2024-11-07T00-52-20Z", "RELEASE.2025-04-22T22-12-26Z", "latest"),
    "library/python": ("3.11-slim", "3.12-slim", "latest"),
}
# Published manifest digests of the tags the desired state pins (public pins, Docker Hub: as
# recorded in public repositories' compose and Nix files pinning these tags). Tags move
# upstream; these are what the tags pointed to when pinned. Other tags keep synthetic digests.
RECORDED_DIGESTS: dict[tuple[str, str], str] = {
    ("langfuse/langfuse", "3"): (
        "sha256:4bc041b8b47e62d06792ed863d8803ba32f612a8d4e6d539a059e5dc921345c6"
    ),
    ("langfuse/langfuse-worker", "3"): (
        "sha256:3f5069e58eb614d10a403646348ff80cb8451d3d7375477706ed59223becaa83"
    ),
    ("clickhouse/clickhouse-server", "24.12-alpine"): (
        "sha256:cd450891db46cc6ffe313ca2b0fb7dbfb897a6873ca74a724cbe050a2cf62621"
    ),
    ("valkey/valkey", "8"): (
        "sha256:81db6d39e1bba3b3ff32bd3a1b19a6d69690f94a3954ec131277b9a26b95b3aa"
    ),
    ("minio/minio", "RELEASE.2025-04-22T22-12-26Z"): (
        "sha256:a1ea29fa28355559ef137d71fc570e508a214ec84ff8083e39bc5428980b015e"
    ),
    ("library/python", "3.12-slim"): (
        "sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea"
    ),
}


def public_manifest(repository: str, tag: str) -> bytes:
    """The image manifest of a public image (deterministic, synthetic bytes: for a tag of
    ``RECORDED_DIGESTS`` they do not hash to its digest)."""
    config = hashlib.sha256(f"{DOCKER_HUB}/{repository}:{tag}:config".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7023,
                "digest": f"sha256:{config}",
            },
            "layers": [],
        },
        separators=(",", ":"),
    ).encode()


def public_digest(repository: str, tag: str) -> str:
    """The manifest digest of a public image: the published one where recorded, else sha256 of
    its synthetic manifest, as a registry computes."""
    recorded = RECORDED_DIGESTS.get((repository, tag))
    if recorded is not None:
        return recorded
    return "sha256:" + hashlib.sha256(public_manifest(repository, tag)).hexdigest()


# digest -> manifest bytes (synthetic), for every public image.
MANIFESTS: dict[str, bytes] = {
    public_digest(repo, tag): public_manifest(repo, tag)
    for repo, tags in PUBLIC_IMAGES.items()
    for tag in tags
}


def _resolve_source(registry_uri: str, source: str) -> tuple[str, str, str]:
    """``(repository, tag, digest)`` of a public source image; raises ArmError when unknown."""
    host = registry_uri.strip().lower().removeprefix("https://").rstrip("/")
    if host not in _HUB_ALIASES:
        raise _not_found(f"{registry_uri}/{source}")
    name, _, digest = source.partition("@")
    repository, _, tag = name.partition(":")
    if "/" not in repository:
        repository = f"library/{repository}"  # Docker Hub's official images
    for known_tag in PUBLIC_IMAGES.get(repository, ()):
        known = public_digest(repository, known_tag)
        if (digest and digest == known) or (not digest and (tag or "latest") == known_tag):
            return repository, known_tag, known
    raise _not_found(f"{registry_uri}/{source}")


def _not_found(source: str) -> ArmError:
    # Not from a recording: az acr import reports a missing source as a failed operation.
    return ArmError(
        400,
        "InvalidParameters",
        f"Image '{source}' not found or the client does not have permission to read it.",
    )


def import_image(images: dict[str, Any], registry_id: str, body: Any) -> None:
    """Apply an ``ImportImageParameters`` body to ``images`` (see module docstring); raises
    ArmError as ACR refuses it."""
    if not isinstance(body, dict) or not isinstance(body.get("source"), dict):
        raise ArmError(400, "InvalidParameters", "The parameter 'source' is required.")
    source = body["source"]
    image = source.get("sourceImage")
    if not isinstance(image, str) or not image:
        raise ArmError(400, "InvalidParameters", "The parameter 'source.sourceImage' is required.")
    if source.get("resourceId"):
        raise _not_found(f"{source['resourceId']}/{image}")  # no other registry is a source
    repository, tag, digest = _resolve_source(str(source.get("registryUri") or DOCKER_HUB), image)
    held = images.setdefault(registry_id.lower(), {})
    targets = body.get("targetTags") or [f"{repository}:{tag}"]
    wanted: list[tuple[str, str]] = []
    for target in targets:
        repo, _, target_tag = str(target).partition(":")
        wanted.append((repo, target_tag or tag))
    if body.get("mode", "NoForce") != "Force":
        for repo, target_tag in wanted:
            if held.get(repo, {}).get(target_tag) not in (None, digest):
                raise ArmError(
                    409,
                    "Conflict",
                    f"Tag {repo}:{target_tag} already exists in target registry.",
                )
    for repo, target_tag in wanted:
        held.setdefault(repo, {})[target_tag] = digest
    for repo in body.get("untaggedTargetRepositories") or []:
        held.setdefault(str(repo), {})


class WorldView(Protocol):
    """What the data plane reads (``arm.World`` satisfies it)."""

    images: dict[str, dict[str, dict[str, str]]]

    def list_by_type(self, arm_type: str) -> list[dict[str, Any]]: ...


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, {"errors": [{"code": code, "message": message, "detail": None}]})


class RegistryPlane:
    """The ACR data plane of every registry in the world; see the module docstring."""

    def __init__(self, world: WorldView) -> None:
        self.world = world

    def _registry(self, request: Request) -> tuple[str, str] | None:
        """(registry id, login server) addressed by the request."""
        registries = self.world.list_by_type(REGISTRY_TYPE)
        label = request.headers.get("host", "").split(".", 1)[0].lower()
        for registry in registries:
            if str(registry["name"]).lower() == label:
                return str(registry["id"]), f"{label}.azurecr.io"
        if len(registries) == 1:
            name = str(registries[0]["name"]).lower()
            return str(registries[0]["id"]), f"{name}.azurecr.io"
        return None

    def handle(self, request: Request) -> Response:
        found = self._registry(request)
        if found is None:
            return _error(404, "NAME_UNKNOWN", "registry is not known to this emulator")
        registry_id, server = found
        path = urllib.parse.unquote(request.path)
        if request.method == "POST" and path in ("/oauth2/exchange", "/oauth2/token"):
            key = "refresh_token" if path.endswith("exchange") else "access_token"
            token = hashlib.sha256(f"{server}:{key}".encode()).hexdigest()
            return Response(200, {key: token})
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith(("bearer ", "basic ")):
            challenge = f'Bearer realm="https://{server}/oauth2/token",service="{server}"' + (
                ',scope="registry:catalog:*"' if "_catalog" in path else ""
            )
            return Response(
                401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                {"WWW-Authenticate": challenge},
            )
        held = self.world.images.get(registry_id.lower(), {})
        if path in ("/v2", "/v2/"):
            return Response(200, {})
        if path == "/acr/v1/_catalog" and request.method == "GET":
            return Response(200, {"repositories": sorted(held)})
        match = re.fullmatch(r"/acr/v1/(.+)/_tags", path)
        if match and request.method == "GET":
            return self._tags(server, held, match[1])
        match = re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", path)
        if match and request.method in ("GET", "HEAD"):
            return self._manifest(held, match[1], match[2], request.method)
        return _error(404, "NOT_FOUND", f"no registry operation {request.method} {path}")

    @staticmethod
    def _tags(server: str, held: dict[str, dict[str, str]], repo: str) -> Response:
        if repo not in held:
            return _error(404, "NAME_UNKNOWN", f"repository name not known to registry: {repo}")
        tags = [
            {"name": tag, "digest": digest, "signed": False}
            for tag, digest in sorted(held[repo].items())
        ]
        return Response(200, {"registry": server, "imageName": repo, "tags": tags})

    @staticmethod
    def _manifest(
        held: dict[str, dict[str, str]], repo: str, reference: str, method: str
    ) -> Response:
        tags = held.get(repo)
        if tags is None:
            return _error(404, "NAME_UNKNOWN", f"repository name not known to registry: {repo}")
        digest = reference if reference in tags.values() else tags.get(reference)
        if digest is None:
            message = f'manifest tagged by "{reference}" is not found'
            return _error(404, "MANIFEST_UNKNOWN", message)
        manifest = MANIFESTS[digest]
        headers = {"Docker-Content-Digest": digest, "Content-Type": MANIFEST_TYPE}
        return Response(200, None if method == "HEAD" else manifest, headers)
