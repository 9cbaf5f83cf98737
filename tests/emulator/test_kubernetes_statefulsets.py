"""StatefulSets and PersistentVolumeClaims of the Kubernetes plane, driven by the real
``kubernetes`` client: healthy status, the controller's claims (bound at once, kept on delete
and scale-down), the spec fields Kubernetes refuses to change, claim validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

NAMESPACE = "langfuse"
APPLY = "application/apply-patch+yaml"


@pytest.fixture(autouse=True)
def namespace(kube: k8s.ApiClient) -> None:
    """Every test here works in the ``langfuse`` namespace."""
    core: Any = k8s.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": NAMESPACE}})


def _statefulset(replicas: int = 1, storage: str = "16Gi") -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "clickhouse"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "clickhouse", "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "serviceName": "clickhouse",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "clickhouse", "image": "ch:24.12"}]},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": storage}},
                    },
                }
            ],
        },
    }


def _apply(apps: Any, body: dict[str, Any]) -> Any:
    return apps.patch_namespaced_stateful_set(
        body["metadata"]["name"],
        NAMESPACE,
        body,
        field_manager="test",
        force=True,
        _content_type=APPLY,
    )


def _claims(core: Any) -> dict[str, Any]:
    items = core.list_namespaced_persistent_volume_claim(NAMESPACE).items
    return {c.metadata.name: c for c in items}


def test_statefulset_is_healthy_and_its_claims_are_bound(kube: k8s.ApiClient) -> None:
    apps: Any = k8s.AppsV1Api(kube)
    core: Any = k8s.CoreV1Api(kube)
    created = _apply(apps, _statefulset(replicas=2))
    assert created.status.ready_replicas == 2
    assert created.status.available_replicas == 2
    assert created.status.current_revision == created.status.update_revision
    assert created.spec.pod_management_policy == "OrderedReady"
    assert created.spec.update_strategy.type == "RollingUpdate"
    template = created.spec.volume_claim_templates[0]
    assert template.spec.volume_mode == "Filesystem"
    claims = _claims(core)
    assert set(claims) == {"data-clickhouse-0", "data-clickhouse-1"}
    claim = claims["data-clickhouse-0"]
    assert claim.status.phase == "Bound"
    assert claim.status.capacity == {"storage": "16Gi"}
    assert claim.spec.storage_class_name == "default"
    assert claim.spec.volume_name.startswith("pvc-")
    assert claim.metadata.labels == {"app.kubernetes.io/name": "clickhouse"}

    scaled = _apply(apps, _statefulset(replicas=3))
    assert scaled.metadata.generation == 2
    assert "data-clickhouse-2" in _claims(core)
    _apply(apps, _statefulset(replicas=1))
    apps.delete_namespaced_stateful_set("clickhouse", NAMESPACE)
    assert set(_claims(core)) == {f"data-clickhouse-{i}" for i in range(3)}  # Retain


def test_claim_templates_cannot_change(kube: k8s.ApiClient) -> None:
    apps: Any = k8s.AppsV1Api(kube)
    _apply(apps, _statefulset())
    with pytest.raises(ApiException) as raised:
        _apply(apps, _statefulset(storage="32Gi"))
    assert raised.value.status == 422
    body = json.loads(raised.value.body or "")
    assert body["reason"] == "Invalid"
    assert "updates to statefulset spec for fields other than 'replicas'" in body["message"]
    unchanged = apps.read_namespaced_stateful_set("clickhouse", NAMESPACE)
    storage = unchanged.spec.volume_claim_templates[0].spec.resources.requests["storage"]
    assert storage == "16Gi"


def test_a_claim_needs_access_modes_and_a_size(kube: k8s.ApiClient) -> None:
    core: Any = k8s.CoreV1Api(kube)
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_persistent_volume_claim(
            NAMESPACE, {"metadata": {"name": "bad"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
        )
    assert raised.value.status == 422
    made = core.create_namespaced_persistent_volume_claim(
        NAMESPACE,
        {
            "metadata": {"name": "scratch"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    assert made.status.phase == "Bound"
    assert "kubernetes.io/pvc-protection" in made.metadata.finalizers
