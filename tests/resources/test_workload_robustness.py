"""The LangFuse workload under Kubernetes API trouble and honest diffs, on the emulator with the
real kubernetes client: an apply interrupted between its Kubernetes writes completes on the next
run; 429/5xx/409/dropped answers are retried and a permanent error is one readable line;
quantities compare canonically; server-side apply does not take fields from another manager
unless told to (and names it); exposure by objects we do not own is reported, not rewritten,
unless adopted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

import nsc_reconcile
from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.cli import main
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import ApplyResult, Outcome, Plan, ResourcePlan
from nsc_reconcile.retry import RetryPolicy
from nsc_reconcile.verification.results import Status
from tests.paths import DESIRED_STATE

WORKLOAD = "kubernetes_workload/langfuse"
NS = "langfuse"
DEPLOYMENT_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/langfuse$"
WEB = "    replicas: 1\n    port: 3000\n"  # the web component (the worker listens on 3030)
WORKLOAD_ANCHOR = "  namespace: langfuse\n"
FAST = RetryPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.05)


@pytest.fixture(autouse=True)
def _instant_lros(ctl: Callable[..., Any]) -> None:
    ctl("POST", "config", {"lro_seconds": {"*": 0}})


def _state_file(tmp_path: Path, seed_text: str, *edits: tuple[str, str]) -> Path:
    text = seed_text
    for anchor, added in edits:
        assert text.count(anchor) == 1, anchor
        text = text.replace(anchor, anchor + added)
    path = tmp_path / "desired_state.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _workload(plan: Plan) -> ResourcePlan:
    return next(r for r in plan.resources if r.address == WORKLOAD)


def _apply(state: DesiredState, clients: Clients, **kwargs: Any) -> ApplyResult:
    return nsc_reconcile.apply(nsc_reconcile.plan(state, clients), state, clients, **kwargs)


def _workload_result(result: ApplyResult) -> Any:
    return next(r for r in result.resources if r.address == WORKLOAD)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out + captured.err


def _kube_log(ctl: Callable[..., Any]) -> list[dict[str, Any]]:
    return [e for e in ctl("GET", "requests") if e["plane"] == "kubernetes"]


# --------------------------------------------------------------------------- interrupted apply
def test_a_workload_interrupted_between_its_kubernetes_writes_completes_on_the_next_run(
    emu: Emulator,
    ctl: Callable[..., Any],
    make_clients: Callable[..., Clients],
    kube: k8s.ApiClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = load_desired_state(DESIRED_STATE)
    # The web Deployment's apply fails for good in this run (403: say, RBAC not granted yet),
    # after the namespace, Secret, Services and StatefulSets were written. (A 503 there is
    # retried and the run completes: test_transient_kubernetes_api_errors_are_retried.)
    ctl("POST", "faults", {"method": "PATCH", "path": DEPLOYMENT_PATH, "status": 403,
                           "code": "Forbidden", "count": 1})  # fmt: skip
    first = _workload_result(_apply(state, make_clients(retry_total=0)))
    assert first.outcome is Outcome.FAILED
    assert "403" in first.detail
    assert "Deployment langfuse/langfuse" in first.detail
    apps: Any = k8s.AppsV1Api(kube)
    assert [d.metadata.name for d in apps.list_namespaced_deployment(NS).items] == []
    assert len(apps.list_namespaced_stateful_set(NS).items) == 3

    arm = str(emu.info["arm"])
    code, out = _cli(capsys, "plan", str(DESIRED_STATE), "--emulator", arm)
    assert code == 0, out
    # The missing Deployments are created, not "replaced" (their selectors are new, not
    # changed): nothing blocks the rerun.
    line = next(x for x in out.splitlines() if x.rstrip().endswith(WORKLOAD))
    assert line.split()[:2] == ["~", "update"], out
    assert "requires replacement" not in out
    assert "in place" not in out
    code, out = _cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes")
    assert code == 0, out
    assert "in place" not in out
    names = {d.metadata.name for d in apps.list_namespaced_deployment(NS).items}
    assert names == {"langfuse", "langfuse-worker"}
    code, out = _cli(capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--detailed-exitcode")
    assert code == 0, out


# --------------------------------------------------------------------------- retries, errors
# Two layers, as for ARM: the kubernetes client's transport (429/5xx, dropped connections), then
# the engine, which re-reads and writes again (what the transport gave up on, and 409s).
TRANSPORT = {"transport_retries": None, "engine": RetryPolicy(attempts=1)}
ENGINE = {"transport_retries": 0, "engine": FAST}


@pytest.mark.parametrize(
    ("fault", "layers"),
    [
        ({"status": 429, "code": "TooManyRequests", "retry_after": 1}, TRANSPORT),
        ({"status": 500, "code": "InternalError"}, TRANSPORT),
        ({"status": 503, "code": "ServiceUnavailable"}, TRANSPORT),
        ({"action": "drop"}, TRANSPORT),
        ({"status": 503, "code": "ServiceUnavailable"}, ENGINE),
        ({"action": "drop"}, ENGINE),
        ({"status": 409, "code": "Conflict", "message": "the object has been modified"}, ENGINE),
    ],
    ids=["429", "500", "503", "dropped", "503-engine", "dropped-engine", "409-engine"],
)
def test_transient_kubernetes_api_errors_are_retried(
    fault: dict[str, Any],
    layers: dict[str, Any],
    ctl: Callable[..., Any],
    make_clients: Callable[..., Clients],
    kube: k8s.ApiClient,
) -> None:
    state = load_desired_state(DESIRED_STATE)
    ctl("POST", "faults", {"method": "PATCH", "path": DEPLOYMENT_PATH, "count": 1, **fault})
    engine = Engine(state, make_clients(retry_total=layers["transport_retries"]),
                    retry=layers["engine"])  # fmt: skip
    result = engine.apply(engine.plan())
    assert result.ok, result.render()
    patches = [e for e in _kube_log(ctl) if e["method"] == "PATCH" and
               e["path"].endswith("/deployments/langfuse")]  # fmt: skip
    assert [e["fault"] for e in patches] == [fault.get("action", "respond"), None]
    web: Any = k8s.AppsV1Api(kube).read_namespaced_deployment("langfuse", NS)
    assert web.metadata.labels["app.kubernetes.io/managed-by"] == "nsc-reconcile"


def test_a_transient_error_on_a_read_is_retried(ctl: Callable[..., Any], clients: Clients) -> None:
    state = load_desired_state(DESIRED_STATE)
    ctl("POST", "faults", {"method": "GET", "path": f"/api/v1/namespaces/{NS}$", "status": 503,
                           "count": 2})  # fmt: skip
    plan = nsc_reconcile.plan(state, clients)
    assert _workload(plan).action is Action.CREATE
    reads = [e["fault"] for e in _kube_log(ctl) if e["path"] == f"/api/v1/namespaces/{NS}"]
    assert reads == ["respond", "respond", None]


@pytest.mark.parametrize(
    "fault",
    [
        {
            "status": 403,
            "code": "Forbidden",
            "message": 'deployments.apps "langfuse" is '
            'forbidden: User "nsc" cannot patch resource "deployments"\nin API group "apps"',
        },
        {"status": 503, "code": "ServiceUnavailable"},
    ],
    ids=["403", "503-for-good"],
)
def test_a_permanent_kubernetes_error_is_reported_in_one_readable_line(
    fault: dict[str, Any],
    ctl: Callable[..., Any],
    make_clients: Callable[..., Clients],
) -> None:
    state = load_desired_state(DESIRED_STATE)
    ctl("POST", "faults", {"method": "PATCH", "path": DEPLOYMENT_PATH, "count": None, **fault})
    engine = Engine(state, make_clients(retry_total=1), retry=FAST)
    result = _workload_result(engine.apply(engine.plan()))
    assert result.outcome is Outcome.FAILED
    detail = result.detail
    assert "\n" not in detail
    assert "HTTP response headers" not in detail
    assert "Reason:" not in detail
    assert f"Kubernetes API apply of Deployment {NS}/langfuse: {fault['status']}" in detail
    assert fault["code"] in detail
    if fault["status"] == 403:
        assert 'cannot patch resource "deployments" in API group "apps"' in detail


# --------------------------------------------------------------------------- quantities
def test_quantities_compare_canonically(
    clients: Clients,
    kube: k8s.ApiClient,
    ctl: Callable[..., Any],
    tmp_path: Path,
    seed_text: str,
) -> None:
    path = _state_file(tmp_path, seed_text, (WEB, '    cpu: "0.5"\n    memory: 1024Mi\n'))
    state = load_desired_state(path)
    assert _apply(state, clients).ok
    web: Any = k8s.AppsV1Api(kube).read_namespaced_deployment("langfuse", NS)
    # The API server answers the canonical form of what it was given.
    assert web.spec.template.spec.containers[0].resources.requests == {
        "cpu": "500m",
        "memory": "1Gi",
    }
    ctl("DELETE", "requests")
    plan = nsc_reconcile.plan(state, clients)
    assert _workload(plan).action is Action.UNCHANGED, _workload(plan).changes
    assert _workload_result(nsc_reconcile.apply(plan, state, clients)).outcome is (
        Outcome.UNCHANGED
    )
    assert [e for e in _kube_log(ctl) if e["method"] != "GET"] == []


def test_a_quantity_that_is_not_one_is_a_located_error(tmp_path: Path, seed_text: str) -> None:
    path = _state_file(tmp_path, seed_text, (WEB, "    cpu: half-a-core\n"))
    with pytest.raises(nsc_reconcile.DesiredStateError) as raised:
        load_desired_state(path)
    problems = [p for p in raised.value.problems if p.field.endswith("web.cpu")]
    assert problems
    assert problems[0].location is not None
    assert problems[0].location.line > 0


# --------------------------------------------------------------------------- field managers
def test_a_field_another_manager_owns_is_not_taken_over_and_the_manager_is_named(
    clients: Clients, kube: k8s.ApiClient, tmp_path: Path, seed_text: str
) -> None:
    state = load_desired_state(DESIRED_STATE)
    assert _apply(state, clients).ok
    apps: Any = k8s.AppsV1Api(kube)
    apps.patch_namespaced_deployment(
        "langfuse", NS, {"spec": {"replicas": 3}}, field_manager="kubectl-scale"
    )

    plan = nsc_reconcile.plan(state, clients)
    workload = _workload(plan)
    assert [(c.path, c.before, c.after) for c in workload.changes] == [
        ("Deployment/langfuse.spec.replicas", 3, 1)
    ]
    assert any("kubectl-scale" in n and "spec.replicas" in n for n in workload.notes)
    result = _workload_result(nsc_reconcile.apply(plan, state, clients))
    assert result.outcome is Outcome.FAILED
    assert "FieldConflictError" in result.detail
    assert 'field manager "kubectl-scale" owns .spec.replicas' in result.detail
    assert "force_conflicts" in result.detail
    assert apps.read_namespaced_deployment("langfuse", NS).spec.replicas == 3

    forced = load_desired_state(
        _state_file(tmp_path, seed_text, (WORKLOAD_ANCHOR, "  force_conflicts: true\n"))
    )
    assert _apply(forced, clients).ok
    assert apps.read_namespaced_deployment("langfuse", NS).spec.replicas == 1
    assert _workload(nsc_reconcile.plan(state, clients)).action is Action.UNCHANGED


def test_the_emulator_refuses_an_unforced_apply_over_another_managers_field(
    kube: k8s.ApiClient,
) -> None:
    core: Any = k8s.CoreV1Api(kube)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"a": "1"}}  # fmt: skip
    core.create_namespaced_config_map("default", body, field_manager="helm")
    body["data"] = {"a": "2"}
    with pytest.raises(k8s.ApiException) as raised:
        core.patch_namespaced_config_map(
            "c", "default", body, field_manager="nsc-reconcile", _content_type=APPLY_TYPE
        )
    assert raised.value.status == 409
    status = json.loads(raised.value.body or "{}")
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "helm"', "field": ".data.a"}
    ]


APPLY_TYPE = "application/apply-patch+yaml"


# --------------------------------------------------------------------------- foreign exposure
def _expose(kube: k8s.ApiClient) -> None:
    core: Any = k8s.CoreV1Api(kube)
    core.create_namespaced_service(
        NS,
        {
            "metadata": {"name": "langfuse-public"},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app.kubernetes.io/name": "langfuse"},
                "ports": [{"port": 80, "targetPort": 3000}],
            },
        },
        field_manager="platform-team",
    )
    networking: Any = k8s.NetworkingV1Api(kube)
    networking.create_namespaced_ingress(
        NS,
        {
            "metadata": {"name": "langfuse-web"},
            "spec": {
                "rules": [
                    {
                        "host": "langfuse.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {
                                            "name": "langfuse-internal",
                                            "port": {"number": 3000},
                                        }
                                    },
                                }
                            ]
                        },
                    }
                ]
            },
        },
    )


def test_foreign_exposure_is_a_plan_note_and_a_verify_failure_and_is_left_alone(
    clients: Clients, kube: k8s.ApiClient, ctl: Callable[..., Any]
) -> None:
    state = load_desired_state(DESIRED_STATE)
    assert _apply(state, clients).ok
    _expose(kube)

    plan = nsc_reconcile.plan(state, clients)
    workload = _workload(plan)
    assert workload.action is Action.UNCHANGED, workload.changes
    notes = " | ".join(workload.notes)
    assert f"Service {NS}/langfuse-public (LoadBalancer)" in notes
    assert "adopt_services" in notes
    assert f"Ingress {NS}/langfuse-web routes to Service langfuse-internal" in notes
    assert "langfuse-public" in plan.render("text")

    report = nsc_reconcile.verify(state, clients)
    check = next(c for c in report.checks if c.id == "langfuse-internal/langfuse")
    assert check.status is Status.FAIL
    assert "langfuse-public=LoadBalancer" in check.detail
    assert "langfuse-web" in check.detail

    ctl("DELETE", "requests")
    result = nsc_reconcile.apply(plan, state, clients)
    assert result.ok, result.render()
    assert [e for e in _kube_log(ctl) if e["method"] != "GET"] == []
    core: Any = k8s.CoreV1Api(kube)
    assert core.read_namespaced_service("langfuse-public", NS).spec.type == "LoadBalancer"
    assert k8s.NetworkingV1Api(kube).read_namespaced_ingress("langfuse-web", NS)


def test_an_adopted_exposed_service_is_switched_to_cluster_ip(
    clients: Clients, kube: k8s.ApiClient, tmp_path: Path, seed_text: str
) -> None:
    state = load_desired_state(
        _state_file(tmp_path, seed_text, (WORKLOAD_ANCHOR, "  adopt_services: [langfuse-public]\n"))
    )
    assert _apply(state, clients).ok
    _expose(kube)
    plan = nsc_reconcile.plan(state, clients)
    workload = _workload(plan)
    assert [(c.path, c.before, c.after) for c in workload.changes] == [
        ("Service/langfuse-public.spec.type", "LoadBalancer", "ClusterIP")
    ]
    assert not any("langfuse-public" in n for n in workload.notes)
    assert nsc_reconcile.apply(plan, state, clients).ok
    core: Any = k8s.CoreV1Api(kube)
    assert core.read_namespaced_service("langfuse-public", NS).spec.type == "ClusterIP"
    assert _workload(nsc_reconcile.plan(state, clients)).changes == []
