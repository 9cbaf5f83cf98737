"""batch/v1 Jobs on the emulated cluster through the real ``kubernetes`` client: a Job's pod runs
its ConfigMap-mounted Python script with env from values, Secrets and ConfigMaps; status,
conditions, pods by ``job-name``/``controller-uid``, logs; retries up to ``backoffLimit``;
``CreateContainerConfigError`` for a missing key (retried once it exists); the deadline kills;
TTL and delete propagation clean up; the pod sees the VNet (DNS, routes, CA)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from nsc_reconcile.emulator.app import Emulator

NS = "jobs"
SECRET_VALUE = "s3cr3t-value-for-the-pod"


@pytest.fixture
def core(kube: k8s.ApiClient) -> Any:
    api: Any = k8s.CoreV1Api(kube)
    api.create_namespace({"metadata": {"name": NS}})
    return api


@pytest.fixture
def batch(kube: k8s.ApiClient, core: Any) -> Any:
    del core  # only needed for its namespace
    return k8s.BatchV1Api(kube)


def _script(core: Any, name: str, code: str) -> None:
    core.create_namespaced_config_map(NS, {"metadata": {"name": name}, "data": {"run.py": code}})


def _job(name: str, script: str, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": "nscacrdev.azurecr.io/library/python:3.12-slim",
        "command": ["python", "/opt/script/run.py"],
        "volumeMounts": [{"name": "script", "mountPath": "/opt/script"}],
    }
    container.update(spec.pop("container", {}))
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
        "containers": [container],
        "volumes": [{"name": "script", "configMap": {"name": script}}],
    }
    pod_spec.update(spec.pop("pod", {}))
    return {"metadata": {"name": name}, "spec": {"backoffLimit": 0, **spec,
                                                 "template": {"spec": pod_spec}}}  # fmt: skip


def _finished(batch: Any, name: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = batch.read_namespaced_job_status(name, NS)
        if any(c.status == "True" for c in job.status.conditions or []):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {name} did not finish in {timeout} s")


def _pods(core: Any, selector: str) -> list[Any]:
    found = core.list_namespaced_pod(NS, label_selector=selector).items
    return sorted(found, key=lambda p: p.metadata.creation_timestamp)


def _conditions(job: Any) -> list[tuple[str, str | None]]:
    return [(c.type, c.reason) for c in job.status.conditions or []]


def _gone(read: Any) -> bool:
    try:
        read()
    except ApiException as error:
        return bool(error.status == 404)
    return False


def _error(caught: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(caught.value.body or "{}")
    return body


# ------------------------------------------------------------------------------ lifecycle
ENV_SCRIPT = """
import hashlib, json, os, sys
print(json.dumps({
    "plain": os.environ["PLAIN"],
    "secret_sha": hashlib.sha256(os.environ["FROM_SECRET"].encode()).hexdigest(),
    "cm": os.environ["FROM_CM"], "pod": os.environ["POD"], "mode": os.environ["MODE"],
    "dns": os.environ.get("NSC_SMOKE_DNS"), "ca": os.environ.get("SSL_CERT_FILE"),
    "routes": os.environ.get("NSC_SMOKE_ROUTES"), "home_inherited": "VIRTUAL_ENV" in os.environ,
}))
print("to stderr", file=sys.stderr)
"""


def test_a_job_runs_its_script_with_env_from_secrets_and_config_maps(
    emu: Emulator, core: Any, batch: Any
) -> None:
    _script(core, "env-script", ENV_SCRIPT)
    core.create_namespaced_secret(NS, {"metadata": {"name": "creds"},
                                       "stringData": {"password": SECRET_VALUE}})  # fmt: skip
    core.create_namespaced_config_map(NS, {"metadata": {"name": "settings"},
                                           "data": {"region": "koreacentral", "MODE": "dry-run"}})  # fmt: skip
    env = [
        {"name": "PLAIN", "value": "hello"},
        {
            "name": "FROM_SECRET",
            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
        },
        {
            "name": "FROM_CM",
            "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "region"}},
        },
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    container = {"env": env, "envFrom": [{"configMapRef": {"name": "settings"}}]}
    created = batch.create_namespaced_job(NS, _job("env", "env-script", container=container))
    uid = created.metadata.uid
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    assert created.spec.template.metadata.labels["job-name"] == "env"

    job = _finished(batch, "env")
    assert _conditions(job) == [("Complete", None)]
    assert (job.status.succeeded, job.status.failed, job.status.active) == (1, None, None)
    assert job.status.start_time is not None
    assert job.status.completion_time is not None
    (pod,) = _pods(core, f"controller-uid={uid}")
    assert [p.metadata.name for p in _pods(core, "job-name=env")] == [pod.metadata.name]
    assert pod.metadata.owner_references[0].uid == uid
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")

    log = core.read_namespaced_pod_log(pod.metadata.name, NS)
    printed = json.loads(log.splitlines()[0])
    assert printed["plain"] == "hello"
    assert printed["secret_sha"] == hashlib.sha256(SECRET_VALUE.encode()).hexdigest()
    assert (printed["cm"], printed["pod"], printed["mode"]) == ("koreacentral", pod.metadata.name,
                                                                 "dry-run")  # fmt: skip
    # The VNet's view, never the emulator's own environment.
    assert printed["dns"] == emu.info["dns"]
    assert printed["ca"] == emu.info["ca_cert"]
    assert json.loads(str(printed["routes"])) == {}
    assert printed["home_inherited"] is False
    assert "to stderr" in log  # kubectl logs shows both streams
    assert core.read_namespaced_pod_log(pod.metadata.name, NS, tail_lines=1) == "to stderr\n"


def test_a_failing_script_is_retried_up_to_the_backoff_limit(core: Any, batch: Any) -> None:
    _script(core, "fail", "import sys\nprint('attempt')\nsys.exit(3)\n")
    batch.create_namespaced_job(NS, _job("fail", "fail", backoffLimit=1))
    job = _finished(batch, "fail")
    assert _conditions(job) == [("Failed", "BackoffLimitExceeded")]
    assert job.status.failed == 2
    pods = _pods(core, "job-name=fail")
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Failed"
        state = pod.status.container_statuses[0].state.terminated
        assert (state.exit_code, state.reason) == (3, "Error")
        assert core.read_namespaced_pod_log(pod.metadata.name, NS) == "attempt\n"


def test_only_python_commands_run(core: Any, batch: Any) -> None:
    _script(core, "sh", "")
    batch.create_namespaced_job(NS, _job("sh", "sh", container={"command": ["sh", "-c", "id"]}))
    job = _finished(batch, "sh")
    assert _conditions(job) == [("Failed", "BackoffLimitExceeded")]
    (pod,) = _pods(core, "job-name=sh")
    state = pod.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (128, "StartError")
    assert "only python commands" in state.message


# ------------------------------------------------------------------------------ config errors
def test_a_missing_secret_key_waits_as_create_container_config_error_until_it_exists(
    core: Any, batch: Any
) -> None:
    _script(core, "print", "import os\nprint(len(os.environ['PASSWORD']))\n")
    core.create_namespaced_secret(NS, {"metadata": {"name": "creds"}, "stringData": {"user": "x"}})
    env = [
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}
    ]
    batch.create_namespaced_job(NS, _job("wait", "print", container={"env": env}))
    (pod,) = _pods(core, "job-name=wait")
    assert pod.status.phase == "Pending"
    waiting = pod.status.container_statuses[0].state.waiting
    assert waiting.reason == "CreateContainerConfigError"
    assert waiting.message == f"couldn't find key password in Secret {NS}/creds"
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod_log(pod.metadata.name, NS)
    assert caught.value.status == 400
    assert _error(caught)["message"] == (
        f'container "main" in pod "{pod.metadata.name}" is waiting to start: '
        "CreateContainerConfigError"
    )
    assert not batch.read_namespaced_job_status("wait", NS).status.conditions
    # The kubelet retries: once the key exists the same pod starts.
    core.patch_namespaced_secret("creds", NS, {"stringData": {"password": SECRET_VALUE}})
    job = _finished(batch, "wait")
    assert _conditions(job) == [("Complete", None)]
    assert core.read_namespaced_pod_log(pod.metadata.name, NS) == f"{len(SECRET_VALUE)}\n"


def test_a_missing_secret_and_a_root_image_are_refused_by_the_kubelet(
    core: Any, batch: Any
) -> None:
    _script(core, "noop", "pass\n")
    env = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    batch.create_namespaced_job(NS, _job("nosecret", "noop", container={"env": env}))
    (pod,) = _pods(core, "job-name=nosecret")
    assert pod.status.container_statuses[0].state.waiting.message == 'secret "absent" not found'
    batch.create_namespaced_job(
        NS, _job("root", "noop", pod={"securityContext": {"runAsNonRoot": True}})
    )
    (pod,) = _pods(core, "job-name=root")
    waiting = pod.status.container_statuses[0].state.waiting
    assert waiting.reason == "CreateContainerConfigError"
    assert waiting.message.startswith("container has runAsNonRoot and image will run as root")


def test_the_api_server_validates_jobs_and_refuses_bare_pods(core: Any, batch: Any) -> None:
    body = _job("always", "noop", pod={"restartPolicy": "Always"})
    with pytest.raises(ApiException) as caught:
        batch.create_namespaced_job(NS, body)
    assert caught.value.status == 422
    assert _error(caught)["message"] == (
        'Job.batch "always" is invalid: spec.template.spec.restartPolicy: Unsupported value: '
        '"Always": supported values: "OnFailure", "Never"'
    )
    with pytest.raises(ApiException) as caught:
        batch.create_namespaced_job(NS, _job("bad", "noop", activeDeadlineSeconds=0))
    assert caught.value.status == 422
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod(NS, pod)
    assert caught.value.status == 403


# ------------------------------------------------------------------------------ ending
def test_the_deadline_kills_the_script_and_fails_the_job(core: Any, batch: Any) -> None:
    _script(core, "sleep", "import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    started = time.monotonic()
    batch.create_namespaced_job(NS, _job("slow", "sleep", activeDeadlineSeconds=1))
    job = _finished(batch, "slow")
    assert time.monotonic() - started < 10
    assert _conditions(job) == [("Failed", "DeadlineExceeded")]
    assert job.status.conditions[0].message == "Job was active longer than specified deadline"
    assert _pods(core, "job-name=slow") == []  # the controller deleted the running pod


def test_ttl_removes_the_finished_job_its_pods_and_what_it_owns(core: Any, batch: Any) -> None:
    _script(core, "quick", "print('done')\n")
    created = batch.create_namespaced_job(NS, _job("quick", "quick", ttlSecondsAfterFinished=0))
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "quick", "uid": created.metadata.uid}
    core.patch_namespaced_config_map("quick", NS, {"metadata": {"ownerReferences": [owner]}})
    deadline = time.monotonic() + 20
    while not _gone(lambda: batch.read_namespaced_job("quick", NS)):
        assert time.monotonic() < deadline, "the finished Job was not removed"
        time.sleep(0.05)
    assert _pods(core, "job-name=quick") == []
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("quick", NS)
    assert caught.value.status == 404


def test_deleting_a_job_orphans_its_pods_unless_propagation_is_given(core: Any, batch: Any) -> None:
    _script(core, "quick", "print('done')\n")
    for name in ("kept", "gone"):
        batch.create_namespaced_job(NS, _job(name, "quick"))
        _finished(batch, name)
    batch.delete_namespaced_job("kept", NS)  # batch/v1's default: Orphan
    (orphan,) = _pods(core, "job-name=kept")
    assert not orphan.metadata.owner_references
    batch.delete_namespaced_job("gone", NS, propagation_policy="Background")
    assert _pods(core, "job-name=gone") == []


# ------------------------------------------------------------------------------ network view
@pytest.fixture
def web() -> Iterator[int]:
    """A loopback HTTP server standing for a Service's pods."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello from the service"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


ROUTE_SCRIPT = """
import json, os, urllib.request
routes = json.loads(os.environ["NSC_SMOKE_ROUTES"])
print(json.dumps(routes))
to = routes[os.environ["SERVICE_IP"] + ":80"]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
print(opener.open("http://" + to + "/", timeout=5).read().decode())
"""


def test_a_pod_reaches_a_cluster_service_through_the_vnet_view(
    emu: Emulator, core: Any, batch: Any, web: int
) -> None:
    service = core.create_namespaced_service(
        NS, {"metadata": {"name": "api"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
    )
    ip = service.spec.cluster_ip
    emu.network.add(ip, 80, lambda: ("127.0.0.1", web), "test service")
    try:
        _script(core, "route", ROUTE_SCRIPT)
        env = [
            {"name": "API_URL", "value": f"http://api.{NS}.svc.cluster.local:80/"},
            {"name": "SERVICE_IP", "value": ip},
        ]
        batch.create_namespaced_job(NS, _job("route", "route", container={"env": env}))
        job = _finished(batch, "route")
        (pod,) = _pods(core, "job-name=route")
        log = core.read_namespaced_pod_log(pod.metadata.name, NS)
    finally:
        emu.network.remove(ip, 80)
    assert _conditions(job) == [("Complete", None)], log
    routes, answer = log.splitlines()
    # The name in the pod's env resolved (cluster DNS) to the cluster IP, routed to loopback.
    assert json.loads(routes) == {f"{ip}:80": f"127.0.0.1:{web}"}
    assert answer == "hello from the service"


def test_the_network_view_finds_hosts_and_ports_in_plain_settings() -> None:
    from nsc_reconcile.emulator.sandbox import scan_endpoints

    hosts, ports = scan_endpoints(
        [
            "https://nsc-aoai-dev.openai.azure.com/",
            "nsc-pg-langfuse-dev.postgres.database.azure.com",
            "5432",
            "http://langfuse-internal.langfuse.svc.cluster.local:3000",
            '{"a.example.com": "10.10.1.5"}',
            "10.0.0.16:8080, not a host, 70000, /opt/script/run.py",
        ]
    )
    assert hosts == [
        "nsc-aoai-dev.openai.azure.com",
        "nsc-pg-langfuse-dev.postgres.database.azure.com",
        "langfuse-internal.langfuse.svc.cluster.local",
        "a.example.com",
        "10.10.1.5",
        "10.0.0.16",
    ]
    assert ports == [443, 5432, 3000, 8080]
