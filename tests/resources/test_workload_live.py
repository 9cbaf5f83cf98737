"""The LangFuse workload on the emulated AKS cluster, through the product and the real SDK and
kubernetes clients: the whole desired state applied from the baseline makes the Kubernetes
objects (ACR images, Key Vault-backed Secret references, ClusterIP only); a second plan
changes nothing and writes nothing to the cluster; drift made through the Kubernetes API by
someone else is shown field by field and repaired (fields another manager took over only with
force_conflicts); no secret value reaches a render.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

import nsc_reconcile
from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.registry import public_digest
from nsc_reconcile.emulator.worlds import KEY_VAULT_NAME
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome, Plan, ResourcePlan
from nsc_reconcile.resources.langfuse_manifests import VERSIONS_ANNOTATION
from nsc_reconcile.resources.workload import CHANGED
from tests.paths import DESIRED_STATE

WORKLOAD = "kubernetes_workload/langfuse"
NS = "langfuse"
WRITES = {"PUT", "PATCH", "DELETE", "POST"}
SECRET_NAMES = [
    "langfuse-pg-admin-password",
    "langfuse-clickhouse-password",
    "langfuse-redis-password",
    "langfuse-minio-password",
    "langfuse-nextauth-secret",
    "langfuse-salt",
    "langfuse-encryption-key",
    "langfuse-public-key",
    "langfuse-secret-key",
]


@pytest.fixture
def state(ctl: Callable[..., Any]) -> DesiredState:
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    return load_desired_state(DESIRED_STATE)


def _clients(emu: Emulator) -> Clients:
    return Clients(AzureTarget.for_emulator(emu.info["arm"]))


def _plan(state: DesiredState, emu: Emulator) -> Plan:
    return nsc_reconcile.plan(state, _clients(emu), targets=[WORKLOAD])


def _workload(plan: Plan) -> ResourcePlan:
    return next(r for r in plan.resources if r.address == WORKLOAD)


def _applied(state: DesiredState, emu: Emulator) -> Plan:
    plan = nsc_reconcile.plan(state, _clients(emu))
    result = nsc_reconcile.apply(plan, state, _clients(emu))
    assert result.ok, result.render()
    return plan


def _kube_writes(ctl: Callable[..., Any]) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"])
        for r in ctl("GET", "requests")
        if r["plane"] == "kubernetes" and r["method"] in WRITES
    ]


def _vault_values(emu: Emulator) -> list[str]:
    return [str(emu.world.secrets.get(KEY_VAULT_NAME, n)["value"]) for n in SECRET_NAMES]


def _env(container: Any) -> dict[str, Any]:
    return {e.name: e for e in container.env}


def test_whole_state_creates_the_private_workload_then_changes_nothing(
    state: DesiredState, emu: Emulator, ctl: Callable[..., Any], kube: k8s.ApiClient
) -> None:
    first = _applied(state, emu)
    assert _workload(first).action is Action.CREATE
    assert WORKLOAD not in first.unsupported
    assert "Not reconciled by this version" not in first.render()
    apps: Any = k8s.AppsV1Api(kube)
    core: Any = k8s.CoreV1Api(kube)

    web = apps.read_namespaced_deployment("langfuse", NS)
    worker = apps.read_namespaced_deployment("langfuse-worker", NS)
    # the registry's copies, pinned by the digests desired_state.yaml declares
    assert web.spec.template.spec.containers[0].image == (
        f"nscacrdev.azurecr.io/langfuse/langfuse:3@{public_digest('langfuse/langfuse', '3')}"
    )
    assert worker.spec.template.spec.containers[0].image == (
        "nscacrdev.azurecr.io/langfuse/langfuse-worker:3"
        f"@{public_digest('langfuse/langfuse-worker', '3')}"
    )
    env = _env(web.spec.template.spec.containers[0])
    assert env["DATABASE_HOST"].value == "nsc-pg-langfuse-dev.postgres.database.azure.com"
    assert env["DATABASE_USERNAME"].value == "langfuseadmin"
    for variable in ("DATABASE_PASSWORD", "NEXTAUTH_SECRET", "SALT", "ENCRYPTION_KEY"):
        assert env[variable].value is None
        assert env[variable].value_from.secret_key_ref.name == "langfuse-secrets"
    assert env["CLICKHOUSE_URL"].value == "http://langfuse-clickhouse:8123"
    assert env["REDIS_HOST"].value == "langfuse-redis"
    probe = web.spec.template.spec.containers[0].readiness_probe.http_get
    assert (probe.path, probe.port) == ("/api/public/health", 3000)
    assert web.metadata.labels["app.kubernetes.io/managed-by"] == "nsc-reconcile"

    services = {s.metadata.name: s for s in core.list_namespaced_service(NS).items}
    assert set(services) == {
        "langfuse-internal", "langfuse-clickhouse", "langfuse-redis", "langfuse-minio",
    }  # fmt: skip
    assert {s.spec.type for s in services.values()} == {"ClusterIP"}
    internal = services["langfuse-internal"]
    assert [(p.port, p.target_port) for p in internal.spec.ports] == [(3000, 3000)]
    assert internal.spec.selector == web.spec.selector.match_labels

    sets = {s.metadata.name: s for s in apps.list_namespaced_stateful_set(NS).items}
    assert set(sets) == {"langfuse-clickhouse", "langfuse-redis", "langfuse-minio"}
    claims = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim(NS).items}
    assert claims["data-langfuse-clickhouse-0"].status.capacity == {"storage": "16Gi"}
    assert claims["data-langfuse-clickhouse-0"].status.phase == "Bound"

    # The Secret holds exactly the Key Vault values (decoded here, by the test only).
    secret = core.read_namespaced_secret("langfuse-secrets", NS)
    decoded = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    vault = emu.world.secrets
    assert decoded["SALT"] == vault.get(KEY_VAULT_NAME, "langfuse-salt")["value"]
    assert (
        decoded["DATABASE_PASSWORD"]
        == (vault.get(KEY_VAULT_NAME, "langfuse-pg-admin-password")["value"])
    )

    ctl("DELETE", "requests")
    second = _plan(state, emu)
    assert _workload(second).action is Action.UNCHANGED, _workload(second).changes
    assert _kube_writes(ctl) == []
    result = nsc_reconcile.apply(second, state, _clients(emu))
    assert result.ok
    assert {r.outcome for r in result.resources} <= {Outcome.UNCHANGED, Outcome.READ}
    assert _kube_writes(ctl) == []

    renders = [first.render(fmt) for fmt in ("text", "json", "markdown")]
    renders += [second.render("json"), result.render("json")]
    for value in _vault_values(emu):
        for text in renders:
            assert value not in text


def test_drift_made_through_the_kubernetes_api_is_shown_and_repaired(
    state: DesiredState, emu: Emulator, kube: k8s.ApiClient
) -> None:
    _applied(state, emu)
    core: Any = k8s.CoreV1Api(kube)
    apps: Any = k8s.AppsV1Api(kube)
    core.patch_namespaced_service(
        "langfuse-internal", NS, {"spec": {"type": "LoadBalancer"}}, field_manager="kubectl"
    )
    apps.patch_namespaced_deployment(
        "langfuse", NS, {"spec": {"replicas": 3}}, field_manager="kubectl"
    )

    plan = _plan(state, emu)
    workload = _workload(plan)
    assert workload.action is Action.UPDATE
    assert [(c.path, c.before, c.after) for c in workload.changes] == [
        ("Deployment/langfuse.spec.replicas", 3, 1),
        ("Service/langfuse-internal.spec.type", "LoadBalancer", "ClusterIP"),
    ]
    assert any("'kubectl' owns Deployment/langfuse.spec.replicas" in n for n in workload.notes)
    # The Service is ours and private-only wins: taken back. The replica count kubectl set
    # is its field now: server-side apply without force stops there, naming kubectl.
    result = nsc_reconcile.apply(plan, state, _clients(emu))
    assert not result.ok
    assert 'field manager "kubectl" owns .spec.replicas' in str(result.resources[-1].detail)
    assert core.read_namespaced_service("langfuse-internal", NS).spec.type == "ClusterIP"
    assert apps.read_namespaced_deployment("langfuse", NS).spec.replicas == 3
    assert state.langfuse is not None
    forced = state.model_copy(
        update={"langfuse": state.langfuse.model_copy(update={"force_conflicts": True})}
    )
    assert nsc_reconcile.apply(_plan(forced, emu), forced, _clients(emu)).ok
    assert apps.read_namespaced_deployment("langfuse", NS).spec.replicas == 1
    assert _workload(_plan(state, emu)).action is Action.UNCHANGED


def test_secret_values_edited_in_the_cluster_show_as_a_sensitive_change(
    state: DesiredState, emu: Emulator, kube: k8s.ApiClient
) -> None:
    _applied(state, emu)
    core: Any = k8s.CoreV1Api(kube)
    tampered = base64.b64encode(b"not-the-vault-value").decode()
    core.patch_namespaced_secret("langfuse-secrets", NS, {"data": {"SALT": tampered}})

    plan = _plan(state, emu)
    changes = _workload(plan).changes
    # The versions the Secret's values came from vouch for nothing once its data changed.
    assert [(c.path, c.before) for c in changes] == [
        (f"Secret/langfuse-secrets.metadata.annotations.{VERSIONS_ANNOTATION}", CHANGED)
    ]
    assert nsc_reconcile.apply(plan, state, _clients(emu)).ok
    salt = core.read_namespaced_secret("langfuse-secrets", NS).data["SALT"]
    assert (
        base64.b64decode(salt).decode()
        == (emu.world.secrets.get(KEY_VAULT_NAME, "langfuse-salt")["value"])
    )
    assert _workload(_plan(state, emu)).action is Action.UNCHANGED
    text = json.dumps(plan.to_json())
    for value in _vault_values(emu):
        assert value not in text


def _foreign_deployment(kube: k8s.ApiClient) -> None:
    core: Any = k8s.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": NS}})
    labels = {"app": "langfuse"}
    apps: Any = k8s.AppsV1Api(kube)
    apps.create_namespaced_deployment(
        NS,
        {
            "metadata": {"name": "langfuse", "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "langfuse/langfuse:2"}]},
                },
            },
        },
    )


def test_a_foreign_deployment_of_that_name_is_not_taken_over_silently(
    state: DesiredState, emu: Emulator, kube: k8s.ApiClient
) -> None:
    _foreign_deployment(kube)
    workload = _workload(_plan(state, emu))
    assert workload.action is Action.BLOCKED
    assert "adopt: true" in (workload.reason or "")


def test_adopt_takes_a_foreign_deployment_over(
    emu: Emulator, ctl: Callable[..., Any], kube: k8s.ApiClient, tmp_path: Path, seed_text: str
) -> None:
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    _foreign_deployment(kube)
    path = tmp_path / "desired_state.yaml"
    anchor = "  namespace: langfuse\n"
    assert seed_text.count(anchor) == 1
    path.write_text(seed_text.replace(anchor, anchor + "  adopt: true\n"), encoding="utf-8")
    state = load_desired_state(path)
    plan = nsc_reconcile.plan(state, _clients(emu))
    # Its selector differs, and a Deployment's selector cannot change in place: replaced.
    assert _workload(plan).action is Action.REPLACE
    assert "Deployment/langfuse.spec.selector.matchLabels.app.kubernetes.io/name" in {
        c.path for c in _workload(plan).changes if c.requires_replacement
    }
    result = nsc_reconcile.apply(plan, state, _clients(emu), allow_replace=True)
    assert result.ok, result.render()
    found: Any = k8s.AppsV1Api(kube).read_namespaced_deployment("langfuse", NS)
    assert found.metadata.labels["app.kubernetes.io/managed-by"] == "nsc-reconcile"
    assert found.spec.replicas == 1
