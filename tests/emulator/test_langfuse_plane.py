"""The emulated LangFuse on the emulated AKS, through the real ``langfuse`` SDK and plain HTTP
(httpx), reached as a pod reaches it: the Service's cluster DNS name, its cluster IP routed to
loopback. Health, a trace written over OTLP by the SDK and read back (after LangFuse's
asynchronous-ingestion delay), the ingestion batch API's 207, 401 with LangFuse's bodies for
wrong keys, project keys taken at the pods' first start and kept when the Secret changes (as
LangFuse's headless init does), and no route/name once the Service or the pods are gone."""

from __future__ import annotations

import base64
import secrets
import time
import urllib.error
from collections.abc import Callable, Iterator
from typing import Any

import dns.message
import dns.query
import dns.rcode
import httpx
import pytest
from kubernetes import client as k8s
from langfuse import Langfuse
from langfuse.api import UnauthorizedError
from opentelemetry.sdk.trace import TracerProvider

from nsc_reconcile.emulator.app import Emulator

NS = "lf"
IMAGE = "nscacrdev.azurecr.io/langfuse/langfuse:3"
LABELS = {"app.kubernetes.io/name": "langfuse-web"}
INIT_ENV = ("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "LANGFUSE_INIT_PROJECT_SECRET_KEY")
BAD_CREDENTIALS = "Invalid credentials. Confirm that you've configured the correct host."


def _keys() -> tuple[str, str]:
    return f"pk-lf-{secrets.token_hex(8)}", f"sk-lf-{secrets.token_hex(8)}"


def _secret(public_key: str, secret_key: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "langfuse-secrets"},
        "stringData": dict(zip(INIT_ENV, (public_key, secret_key), strict=True)),
    }


def _deployment(annotation: str = "1") -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "LANGFUSE_INIT_ORG_ID", "value": "nsc"},
        {"name": "LANGFUSE_INIT_PROJECT_ID", "value": "nsc-ai-agent-dev"},
    ]
    env += [
        {"name": n, "valueFrom": {"secretKeyRef": {"name": "langfuse-secrets", "key": n}}}
        for n in INIT_ENV
    ]
    return {
        "metadata": {"name": "langfuse"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS, "annotations": {"restartedAt": annotation}},
                "spec": {
                    "containers": [
                        {
                            "name": "langfuse",
                            "image": IMAGE,
                            "ports": [{"name": "http", "containerPort": 3000}],
                            "env": env,
                        }
                    ]
                },
            },
        },
    }


def _service(target: int | str = "http") -> dict[str, Any]:
    return {
        "metadata": {"name": "langfuse-internal"},
        "spec": {
            "type": "ClusterIP",
            "selector": LABELS,
            "ports": [{"name": "http", "port": 3000, "targetPort": target}],
        },
    }


class Cluster:
    """The test's namespace on the emulated cluster, through the kubernetes client."""

    def __init__(self, kube: k8s.ApiClient, ctl: Callable[..., Any], emu: Emulator) -> None:
        # Bodies are plain dicts (the client sends them as they are): typed Any.
        self.core: Any = k8s.CoreV1Api(kube)
        self.apps: Any = k8s.AppsV1Api(kube)
        self.ctl = ctl
        self.emu = emu
        self.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NS)))

    def cluster_ip(self) -> str:
        return str(self.core.read_namespaced_service("langfuse-internal", NS).spec.cluster_ip)

    def route(self, address: str | None = None, port: int = 3000) -> str | None:
        """The loopback base URL the Service's cluster IP:port is routed to, None if none."""
        try:
            found = self.ctl("GET", f"route?address={address or self.cluster_ip()}&port={port}")
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            return None
        return f"http://{found['to']}"

    def resolve(self, name: str) -> tuple[str, list[str]]:
        host, port = self.emu.info["dns"].split(":")
        answer = dns.query.udp(dns.message.make_query(name, "A"), host, port=int(port), timeout=3)
        found = [str(item.address) for rrset in answer.answer for item in rrset]
        return dns.rcode.to_text(answer.rcode()), found


@pytest.fixture
def cluster(kube: k8s.ApiClient, ctl: Callable[..., Any], emu: Emulator) -> Cluster:
    return Cluster(kube, ctl, emu)


@pytest.fixture
def running(cluster: Cluster) -> tuple[Cluster, str, tuple[str, str]]:
    """LangFuse web running with fresh project keys: (cluster, base URL, keys)."""
    keys = _keys()
    cluster.core.create_namespaced_secret(NS, _secret(*keys))
    cluster.apps.create_namespaced_deployment(NS, _deployment())
    cluster.core.create_namespaced_service(NS, _service())
    base = cluster.route()
    assert base is not None
    return cluster, base, keys


@pytest.fixture
def sdk() -> Iterator[Callable[[str, str, str], Langfuse]]:
    """Build real SDK clients (each with its own tracer provider); shut down after the test."""
    made: list[tuple[Langfuse, TracerProvider, httpx.Client]] = []

    def build(public_key: str, secret_key: str, base: str) -> Langfuse:
        provider = TracerProvider()
        http = httpx.Client(trust_env=False, timeout=10)
        client = Langfuse(public_key=public_key, secret_key=secret_key, host=base,
                          tracer_provider=provider, httpx_client=http)  # fmt: skip
        made.append((client, provider, http))
        return client

    yield build
    for client, provider, http in made:
        client.shutdown()
        provider.shutdown()
        http.close()


def _get(base: str, path: str, keys: tuple[str, str] | None) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=10) as http:
        return http.get(base + path, auth=keys)


def _read_trace(base: str, keys: tuple[str, str], trace_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        answer = _get(base, f"/api/public/traces/{trace_id}", keys)
        if answer.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_health_answers_without_keys_as_langfuse_does(
    running: tuple[Cluster, str, tuple[str, str]], sdk: Callable[..., Langfuse]
) -> None:
    _, base, keys = running
    answer = _get(base, "/api/public/health", None)
    assert answer.status_code == 200
    assert answer.json() == {"status": "OK", "version": "3.172.1"}
    health = sdk(*keys, base).api.health.health()
    assert health.status == "OK"


def test_sdk_trace_is_readable_after_the_ingestion_delay(
    running: tuple[Cluster, str, tuple[str, str]],
    sdk: Callable[..., Langfuse],
    emu: Emulator,
) -> None:
    cluster, base, keys = running
    assert emu.langfuse is not None
    emu.langfuse.visible_after_seconds = 0.5
    client = sdk(*keys, base)
    with client.start_as_current_observation(
        name="smoke-root", as_type="span", input={"question": 1}
    ) as root:
        with client.start_as_current_observation(name="llm", as_type="generation", model="gpt"):
            pass
        root.update(output="done", metadata={"who": "test"})
        trace_id = root.trace_id
    client.flush()
    early = _get(base, f"/api/public/traces/{trace_id}", keys)
    assert early.status_code == 404  # LangFuse ingests asynchronously
    assert early.json() == {
        "message": f"Trace {trace_id} not found within authorized project",
        "error": "LangfuseNotFoundError",
    }
    otlp = [r for r in cluster.ctl("GET", "requests") if r["path"] == "/api/public/otel/v1/traces"]
    assert otlp
    assert {(r["plane"], r["status"]) for r in otlp} == {("langfuse", 200)}
    time.sleep(0.5)
    trace = _read_trace(base, keys, trace_id)
    assert trace["id"] == trace_id
    assert trace["name"] == "smoke-root"
    assert trace["input"] == {"question": 1}
    assert trace["output"] == "done"
    assert trace["htmlPath"] == f"/project/nsc-ai-agent-dev/traces/{trace_id}"
    by_name = {o["name"]: o for o in trace["observations"]}
    assert by_name["smoke-root"]["type"] == "SPAN"
    assert by_name["smoke-root"]["metadata"]["who"] == "test"
    assert by_name["llm"]["type"] == "GENERATION"
    assert by_name["llm"]["model"] == "gpt"
    assert by_name["llm"]["parentObservationId"] == by_name["smoke-root"]["id"]


def test_ingestion_batch_answers_207_per_event(
    running: tuple[Cluster, str, tuple[str, str]],
) -> None:
    _, base, keys = running
    now = "2026-01-02T03:04:05.000Z"
    batch = [
        {"id": "e1", "type": "trace-create", "timestamp": now,
         "body": {"id": "t-1", "name": "batch-trace", "tags": ["a"]}},
        {"id": "e2", "type": "span-create", "timestamp": now,
         "body": {"id": "s-1", "traceId": "t-1", "name": "step", "startTime": now}},
        {"id": "e3", "type": "span-create", "body": {"id": "s-2", "traceId": "t-1"}},
        {"id": "e4", "type": "no-such-type", "timestamp": now, "body": {}},
    ]  # fmt: skip
    with httpx.Client(trust_env=False, timeout=10) as http:
        answer = http.post(f"{base}/api/public/ingestion", json={"batch": batch}, auth=keys)
        refused = http.post(f"{base}/api/public/ingestion", json={"nope": 1}, auth=keys)
    assert answer.status_code == 207
    result = answer.json()
    assert result["successes"] == [{"id": "e1", "status": 201}, {"id": "e2", "status": 201}]
    assert [(e["id"], e["status"], e["message"]) for e in result["errors"]] == [
        ("e3", 400, "Invalid request data"),
        ("e4", 400, "Invalid request data"),
    ]
    assert "timestamp" in result["errors"][0]["error"]
    assert refused.status_code == 400
    trace = _read_trace(base, keys, "t-1")
    assert trace["name"] == "batch-trace"
    assert trace["tags"] == ["a"]
    assert [o["name"] for o in trace["observations"]] == ["step"]


def test_wrong_keys_get_401_with_langfuse_bodies(
    running: tuple[Cluster, str, tuple[str, str]], sdk: Callable[..., Langfuse]
) -> None:
    cluster, base, (public_key, secret_key) = running
    wrong = sdk(public_key, "sk-lf-wrong", base)
    with pytest.raises(UnauthorizedError) as refused:
        wrong.api.projects.get()
    assert refused.value.body == {"message": BAD_CREDENTIALS}
    with wrong.start_as_current_observation(name="never-stored") as span:
        lost_id = span.trace_id
    wrong.flush()  # the OTLP exporter is refused too
    otlp = [r for r in cluster.ctl("GET", "requests") if r["path"] == "/api/public/otel/v1/traces"]
    assert otlp
    assert {r["status"] for r in otlp} == {401}
    assert _get(base, f"/api/public/traces/{lost_id}", (public_key, secret_key)).status_code == 404
    unknown = _get(base, "/api/public/projects", ("pk-lf-unknown", secret_key))
    assert unknown.status_code == 401
    assert unknown.json() == {
        "message": "Invalid public key. Confirm that you've configured the correct host."
    }
    missing = _get(base, "/api/public/projects", None)
    assert (missing.status_code, missing.json()) == (401, {"message": "No authorization header"})
    good = _get(base, "/api/public/projects", (public_key, secret_key))
    assert good.status_code == 200
    assert good.json()["data"][0]["id"] == "nsc-ai-agent-dev"


def test_project_keys_come_from_the_first_start_and_stay(
    running: tuple[Cluster, str, tuple[str, str]],
) -> None:
    cluster, base, first = running
    public_key, _ = first
    changed = (public_key, "sk-lf-rotated-" + secrets.token_hex(4))
    patch = {"data": {INIT_ENV[1]: base64.b64encode(changed[1].encode()).decode()}}
    cluster.core.patch_namespaced_secret("langfuse-secrets", NS, patch)

    def status(keys: tuple[str, str]) -> int:
        return _get(base, "/api/public/projects", keys).status_code

    # Running pods keep their environment; a restart runs the headless init again, which
    # adds a key only for a NEW public key: the changed secret key is never taken.
    assert (status(first), status(changed)) == (200, 401)
    cluster.apps.patch_namespaced_deployment("langfuse", NS, _deployment(annotation="2"))
    assert (status(first), status(changed)) == (200, 401)
    cluster.apps.delete_namespaced_deployment("langfuse", NS)
    cluster.apps.create_namespaced_deployment(NS, _deployment())
    assert (status(first), status(changed)) == (200, 401)
    # A new public key in the Secret and a restart: LangFuse adds that key, keeps the old one.
    fresh = _keys()
    cluster.core.replace_namespaced_secret("langfuse-secrets", NS, _secret(*fresh))
    cluster.apps.patch_namespaced_deployment("langfuse", NS, _deployment(annotation="3"))
    assert (status(first), status(fresh)) == (200, 200)


def test_no_route_and_no_name_without_the_service_or_the_pods(
    running: tuple[Cluster, str, tuple[str, str]],
) -> None:
    cluster, _, _ = running
    address = cluster.cluster_ip()
    assert cluster.resolve("langfuse-internal.lf.svc.cluster.local") == ("NOERROR", [address])
    assert cluster.resolve("langfuse-internal.lf.svc") == ("NOERROR", [address])
    assert cluster.resolve("nothing.lf.svc.cluster.local") == ("NXDOMAIN", [])
    assert cluster.route(address, 3001) is None  # the Service has no such port
    cluster.apps.patch_namespaced_deployment("langfuse", NS, {"spec": {"replicas": 0}})
    assert cluster.route(address) is None
    cluster.apps.patch_namespaced_deployment("langfuse", NS, {"spec": {"replicas": 1}})
    assert cluster.route(address) is not None
    cluster.core.patch_namespaced_service("langfuse-internal", NS, _service(target=8080))
    assert cluster.route(address) is None  # nothing listens on that target port
    cluster.core.delete_namespaced_service("langfuse-internal", NS)
    assert cluster.route(address) is None
    assert cluster.resolve("langfuse-internal.lf.svc.cluster.local") == ("NXDOMAIN", [])


def test_pods_wait_for_their_secret(cluster: Cluster) -> None:
    """A Deployment written before its Secret starts no pod (the kubelet waits for the
    Secret); once the Secret exists the pod starts with those keys."""
    cluster.apps.create_namespaced_deployment(NS, _deployment())
    cluster.core.create_namespaced_service(NS, _service())
    assert cluster.route() is None
    keys = _keys()
    cluster.core.create_namespaced_secret(NS, _secret(*keys))
    base = cluster.route()
    assert base is not None
    assert _get(base, "/api/public/projects", keys).status_code == 200


def test_otlp_json_is_accepted_and_bad_bodies_get_langfuse_errors(
    running: tuple[Cluster, str, tuple[str, str]],
) -> None:
    _, base, keys = running
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    now = time.time_ns()
    attribute = {"key": "langfuse.observation.input", "value": {"stringValue": '{"q": "hi"}'}}
    body = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{
        "scope": {"name": "hand-made"},
        "spans": [{"traceId": trace_id, "spanId": span_id, "name": "json-root",
                   "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 10**6),
                   "attributes": [attribute]}],
    }]}]}  # fmt: skip
    url = f"{base}/api/public/otel/v1/traces"
    with httpx.Client(trust_env=False, timeout=10) as http:
        sent = http.post(url, json=body, auth=keys)
        garbage = http.post(url, content=b"\x00\xff", auth=keys,
                            headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
        untyped = http.post(url, content=b"{}", auth=keys, headers={"Content-Type": "text/plain"})
    assert (sent.status_code, sent.json()) == (200, {})
    assert (garbage.status_code, garbage.json()) == (
        400,
        {"error": "Failed to parse OTel Protobuf Trace"},
    )
    assert (untyped.status_code, untyped.json()) == (400, {"error": "Invalid content type"})
    trace = _read_trace(base, keys, trace_id)
    assert trace["name"] == "json-root"
    assert trace["input"] == {"q": "hi"}
    assert [o["id"] for o in trace["observations"]] == [span_id]
