"""ACR ``importImage`` through the real ContainerRegistryManagementClient (a long-running
operation), and the registry's repositories, tags and digests over the ACR data plane."""

# mypy: disable-error-code="call-overload"

from __future__ import annotations

import hashlib
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.registry import public_digest, public_manifest
from nsc_reconcile.emulator.worlds import ACR_NAME, RESOURCE_GROUP

RG = RESOURCE_GROUP
LANGFUSE = "langfuse/langfuse"


def _import(clients: Clients, source: str, *targets: str, mode: str = "NoForce") -> None:
    body: dict[str, Any] = {
        "source": {"registryUri": "docker.io", "sourceImage": source},
        "mode": mode,
    }
    if targets:
        body["targetTags"] = list(targets)
    clients.containerregistry.registries.begin_import_image(RG, ACR_NAME, body).result()


def _get(emu: Emulator, path: str, method: str = "GET", token: bool = True) -> tuple[int, Any]:
    """A data-plane call as plain HTTPS with a bearer token (status, JSON body or headers)."""
    request = urllib.request.Request(f"{emu.info['acr']}{path}", method=method)
    request.add_header("Host", f"{ACR_NAME}.azurecr.io")
    if token:
        request.add_header("Authorization", "Bearer arm-token")
    context = ssl.create_default_context(cafile=emu.info["ca_cert"])
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            raw = answer.read()
            body = dict(answer.headers) if method == "HEAD" else json.loads(raw)
            return answer.status, body
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_import_is_long_running_and_tags_appear(emu: Emulator, clients: Clients) -> None:
    assert _get(emu, "/acr/v1/_catalog") == (200, {"repositories": []})
    _import(clients, f"{LANGFUSE}:3", f"{LANGFUSE}:3")
    _import(clients, "python:3.11-slim", "smoke/python:3.11-slim")
    posts = [r for r in emu.controls.requests() if r["path"].endswith("/importImage")]
    assert posts
    assert all(r["status"] == 202 for r in posts)
    status, catalog = _get(emu, "/acr/v1/_catalog")
    assert status == 200
    assert catalog["repositories"] == [LANGFUSE, "smoke/python"]
    status, tags = _get(emu, f"/acr/v1/{LANGFUSE}/_tags")
    assert status == 200
    assert tags["tags"] == [{"name": "3", "digest": public_digest(LANGFUSE, "3"), "signed": False}]
    status, headers = _get(emu, f"/v2/{LANGFUSE}/manifests/3", method="HEAD")
    assert status == 200
    assert headers["Docker-Content-Digest"] == public_digest(LANGFUSE, "3")
    status, _ = _get(emu, f"/v2/{LANGFUSE}/manifests/4", method="HEAD")
    assert status == 404
    status, headers = _get(emu, "/acr/v1/_catalog", token=False)
    assert status == 401
    assert "oauth2/token" in headers["WWW-Authenticate"]


def test_import_by_digest_and_the_tag_conflict(emu: Emulator, clients: Clients) -> None:
    digest = public_digest("valkey/valkey", "8")
    _import(clients, f"valkey/valkey@{digest}", "valkey/valkey:8")
    _import(clients, "valkey/valkey:8", "valkey/valkey:8")  # the same image again: no change
    with pytest.raises(HttpResponseError) as conflict:
        _import(clients, "valkey/valkey:8.0", "valkey/valkey:8")
    assert "already exists" in str(conflict.value.message)
    _import(clients, "valkey/valkey:8.0", "valkey/valkey:8", mode="Force")
    _, tags = _get(emu, "/acr/v1/valkey/valkey/_tags")
    assert tags["tags"][0]["digest"] == public_digest("valkey/valkey", "8.0")


@pytest.mark.parametrize(
    "source", ["langfuse/langfuse:99", "nobody/unknown:1", "library/python@sha256:" + "0" * 64]
)
def test_unknown_source_fails_the_operation(emu: Emulator, clients: Clients, source: str) -> None:
    with pytest.raises(HttpResponseError) as failed:
        _import(clients, source)
    assert failed.value.status_code == 400
    assert "not found" in str(failed.value.message)
    assert _get(emu, "/acr/v1/_catalog") == (200, {"repositories": []})


def test_reset_forgets_imports(emu: Emulator, clients: Clients, ctl: Any) -> None:
    _import(clients, "minio/minio:latest")
    assert _get(emu, "/acr/v1/_catalog")[1]["repositories"] == ["minio/minio"]
    ctl("POST", "reset")
    assert _get(emu, "/acr/v1/_catalog")[1]["repositories"] == []


def test_pinned_tags_answer_their_published_digests(emu: Emulator, clients: Clients) -> None:
    """The tags the desired state pins import and answer the digests published for them
    (public pins, Docker Hub); the manifest body served is synthetic and does not hash to a
    recorded digest (docs/emulator.md): only HEAD and the tag list carry it."""
    clickhouse = "sha256:cd450891db46cc6ffe313ca2b0fb7dbfb897a6873ca74a724cbe050a2cf62621"
    minio = "sha256:a1ea29fa28355559ef137d71fc570e508a214ec84ff8083e39bc5428980b015e"
    assert public_digest("clickhouse/clickhouse-server", "24.12-alpine") == clickhouse
    assert public_digest("minio/minio", "RELEASE.2025-04-22T22-12-26Z") == minio
    _import(
        clients,
        f"clickhouse/clickhouse-server@{clickhouse}",
        "clickhouse/clickhouse-server:24.12-alpine",
    )
    _import(clients, "minio/minio:RELEASE.2025-04-22T22-12-26Z")
    status, headers = _get(emu, "/v2/clickhouse/clickhouse-server/manifests/24.12-alpine", "HEAD")
    assert (status, headers["Docker-Content-Digest"]) == (200, clickhouse)
    _, tags = _get(emu, "/acr/v1/minio/minio/_tags")
    assert tags["tags"] == [
        {"name": "RELEASE.2025-04-22T22-12-26Z", "digest": minio, "signed": False}
    ]
    status, manifest = _get(emu, f"/v2/minio/minio/manifests/{minio}")
    assert status == 200
    assert manifest["schemaVersion"] == 2
    body = json.dumps(manifest, separators=(",", ":")).encode()
    assert "sha256:" + hashlib.sha256(body).hexdigest() != minio
    # a tag without a recorded digest keeps its synthetic one, which its body hashes to
    other = public_digest("minio/minio", "latest")
    assert other == "sha256:" + hashlib.sha256(public_manifest("minio/minio", "latest")).hexdigest()
