"""Kubernetes API subset driven by the real ``kubernetes`` client: discovery, CRUD of every
served kind, server-side apply with field ownership, merge/strategic/JSON patches, Status errors."""

from __future__ import annotations

import base64
import ipaddress
import json
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from nsc_reconcile.emulator.app import Emulator

from .conftest import control

NAMESPACE = "langfuse"
APPLY = "application/apply-patch+yaml"


# The client's models type every field Optional; tests read them as the API returns them.
@pytest.fixture
def core(kube: k8s.ApiClient) -> Any:
    v1 = k8s.CoreV1Api(kube)
    v1.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE)))
    return v1


@pytest.fixture
def apps(kube: k8s.ApiClient, core: Any) -> Any:
    del core  # only needed for its namespace
    return k8s.AppsV1Api(kube)


def _status(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body or "")
    assert body["kind"] == "Status"
    assert body["status"] == "Failure"
    assert body["code"] == error.status
    return body


def _deployment(replicas: int = 2, image: str = "nscacrdev.azurecr.io/langfuse/web:3") -> Any:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "langfuse", "namespace": NAMESPACE, "labels": {"app": "langfuse"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "langfuse"}},
            "template": {
                "metadata": {"labels": {"app": "langfuse"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": image, "ports": [{"containerPort": 3000}]}
                    ]
                },
            },
        },
    }


def test_discovery_and_version(kube: k8s.ApiClient) -> None:
    assert k8s.VersionApi(kube).get_code().git_version.startswith("v1.")
    assert "v1" in k8s.CoreApi(kube).get_api_versions().versions
    groups = {g.name for g in k8s.ApisApi(kube).get_api_versions().groups}
    # secrets-store.csi.x-k8s.io: the CRD of the Key Vault CSI add-on (emulator/kubernetes/csi.py)
    assert groups == {"apps", "batch", "networking.k8s.io", "secrets-store.csi.x-k8s.io"}
    kinds = {r.kind for r in k8s.AppsV1Api(kube).get_api_resources().resources}
    assert kinds == {"Deployment", "StatefulSet"}


def test_namespace_lifecycle(kube: k8s.ApiClient) -> None:
    core: Any = k8s.CoreV1Api(kube)
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system"} <= names
    assert NAMESPACE not in names
    created = core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE)))
    assert created.status.phase == "Active"
    assert created.metadata.uid
    assert created.metadata.labels["kubernetes.io/metadata.name"] == NAMESPACE
    # The namespace controller gives every namespace its "default" service account.
    accounts = core.list_namespaced_service_account(NAMESPACE).items
    assert [a.metadata.name for a in accounts] == ["default"]
    with pytest.raises(ApiException) as caught:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE)))
    assert caught.value.status == 409
    assert _status(caught.value)["reason"] == "AlreadyExists"
    core.delete_namespace(NAMESPACE)
    with pytest.raises(ApiException) as caught:
        core.read_namespace(NAMESPACE)
    assert _status(caught.value)["reason"] == "NotFound"


def test_service_gets_a_cluster_ip_and_keeps_it(core: Any) -> None:
    body = k8s.V1Service(
        metadata=k8s.V1ObjectMeta(name="langfuse-internal", labels={"app": "langfuse"}),
        spec=k8s.V1ServiceSpec(
            selector={"app": "langfuse"}, ports=[k8s.V1ServicePort(port=80, target_port=3000)]
        ),
    )
    created = core.create_namespaced_service(NAMESPACE, body)
    ip = ipaddress.ip_address(created.spec.cluster_ip)
    assert ip in ipaddress.ip_network("10.0.0.0/16")
    assert created.spec.type == "ClusterIP"
    assert created.spec.ports[0].protocol == "TCP"
    assert created.status.load_balancer.ingress is None  # nothing exposed
    read = core.read_namespaced_service("langfuse-internal", NAMESPACE)
    assert read.metadata.uid == created.metadata.uid
    assert read.metadata.creation_timestamp is not None
    listed = core.list_namespaced_service(NAMESPACE, label_selector="app=langfuse").items
    assert [s.metadata.name for s in listed] == ["langfuse-internal"]

    read.spec.ports[0].target_port = 3030
    read.spec.cluster_ip = None  # omitted on update: the allocated address stays
    replaced = core.replace_namespaced_service("langfuse-internal", NAMESPACE, read)
    assert replaced.spec.cluster_ip == created.spec.cluster_ip
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)

    replaced.spec.cluster_ip = "10.0.200.200"
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_service("langfuse-internal", NAMESPACE, replaced)
    assert caught.value.status == 422
    assert _status(caught.value)["reason"] == "Invalid"

    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service(NAMESPACE, body)
    assert caught.value.status == 409
    assert _status(caught.value)["message"] == 'services "langfuse-internal" already exists'

    core.delete_namespaced_service("langfuse-internal", NAMESPACE)
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_service("langfuse-internal", NAMESPACE)
    assert caught.value.status == 404
    assert _status(caught.value)["message"] == 'services "langfuse-internal" not found'


def test_secret_configmap_serviceaccount_crud(core: Any) -> None:
    core.create_namespaced_secret(
        NAMESPACE,
        k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="langfuse-env"), string_data={"SALT": "s1"}),
    )
    secret = core.read_namespaced_secret("langfuse-env", NAMESPACE)
    assert secret.type == "Opaque"
    assert base64.b64decode(secret.data["SALT"]) == b"s1"
    assert secret.string_data is None  # write-only, folded into data

    core.create_namespaced_config_map(
        NAMESPACE,
        k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="langfuse-cfg"), data={"PORT": "3000"}),
    )
    patched = core.patch_namespaced_config_map(
        "langfuse-cfg",
        NAMESPACE,
        {"data": {"PORT": None, "HOST": "0.0.0.0"}},
        _content_type="application/merge-patch+json",
    )
    assert patched.data == {"HOST": "0.0.0.0"}

    core.create_namespaced_service_account(
        NAMESPACE, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="langfuse"))
    )
    names = {a.metadata.name for a in core.list_namespaced_service_account(NAMESPACE).items}
    assert names == {"default", "langfuse"}

    for delete, name in (
        (core.delete_namespaced_secret, "langfuse-env"),
        (core.delete_namespaced_config_map, "langfuse-cfg"),
        (core.delete_namespaced_service_account, "langfuse"),
    ):
        delete(name, NAMESPACE)
        with pytest.raises(ApiException) as caught:
            delete(name, NAMESPACE)
        assert caught.value.status == 404


def test_create_in_missing_namespace_is_404(kube: k8s.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        k8s.CoreV1Api(kube).create_namespaced_config_map(
            "nowhere", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="x"))
        )
    assert caught.value.status == 404
    assert _status(caught.value)["message"] == 'namespaces "nowhere" not found'


def test_server_side_apply_owns_fields_and_reports_conflicts(apps: Any) -> None:
    created = apps.patch_namespaced_deployment(
        "langfuse", NAMESPACE, _deployment(), field_manager="nsc-reconcile", _content_type=APPLY
    )
    assert created.metadata.generation == 1
    assert created.status.ready_replicas == 2
    assert created.status.observed_generation == 1
    assert [(m.manager, m.operation) for m in created.metadata.managed_fields] == [
        ("nsc-reconcile", "Apply")
    ]
    # Re-applying the same configuration changes nothing.
    again = apps.patch_namespaced_deployment(
        "langfuse", NAMESPACE, _deployment(), field_manager="nsc-reconcile", _content_type=APPLY
    )
    assert again.metadata.resource_version == created.metadata.resource_version

    # Someone scales by hand: they now own spec.replicas.
    apps.patch_namespaced_deployment(
        "langfuse",
        NAMESPACE,
        {"spec": {"replicas": 5}},
        field_manager="kubectl",
        _content_type="application/merge-patch+json",
    )
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment(
            "langfuse", NAMESPACE, _deployment(), field_manager="nsc-reconcile", _content_type=APPLY
        )
    status = _status(caught.value)
    assert caught.value.status == 409
    assert status["reason"] == "Conflict"
    assert status["details"]["causes"][0]["field"] == ".spec.replicas"
    assert 'conflict with "kubectl"' in status["message"]

    forced = apps.patch_namespaced_deployment(
        "langfuse",
        NAMESPACE,
        _deployment(),
        field_manager="nsc-reconcile",
        force=True,
        _content_type=APPLY,
    )
    assert forced.spec.replicas == 2
    assert forced.metadata.generation == 3  # two spec changes since creation

    # A field the applier stops declaring is removed (labels here).
    smaller = _deployment()
    del smaller["metadata"]["labels"]
    pruned = apps.patch_namespaced_deployment(
        "langfuse", NAMESPACE, smaller, field_manager="nsc-reconcile", _content_type=APPLY
    )
    assert pruned.metadata.labels is None


def test_deployment_replace_patch_and_errors(apps: Any) -> None:
    created = apps.create_namespaced_deployment(NAMESPACE, _deployment(replicas=1))
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert created.metadata.annotations["deployment.kubernetes.io/revision"] == "1"

    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(NAMESPACE, _deployment())
    assert caught.value.status == 409
    assert _status(caught.value)["reason"] == "AlreadyExists"

    patched = apps.patch_namespaced_deployment(
        "langfuse",
        NAMESPACE,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:4"}]}}}},
        _content_type="application/strategic-merge-patch+json",
    )
    container = patched.spec.template.spec.containers[0]
    assert container.image == "web:4"
    assert container.ports[0].container_port == 3000  # merged by name, not replaced
    assert patched.metadata.annotations["deployment.kubernetes.io/revision"] == "2"

    json_patched = apps.patch_namespaced_deployment(
        "langfuse",
        NAMESPACE,
        [{"op": "replace", "path": "/spec/replicas", "value": 3}],
    )
    assert json_patched.spec.replicas == 3
    assert json_patched.status.available_replicas == 3

    stale = apps.read_namespaced_deployment("langfuse", NAMESPACE)
    stale.metadata.resource_version = created.metadata.resource_version
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment("langfuse", NAMESPACE, stale)
    assert caught.value.status == 409
    assert _status(caught.value)["reason"] == "Conflict"

    bad = _deployment()
    bad["metadata"]["name"] = "broken"
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(NAMESPACE, bad)
    assert caught.value.status == 422
    assert _status(caught.value)["reason"] == "Invalid"

    listed = apps.list_deployment_for_all_namespaces().items
    assert [d.metadata.name for d in listed] == ["langfuse"]
    apps.delete_namespaced_deployment("langfuse", NAMESPACE)
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment("langfuse", NAMESPACE)
    assert caught.value.status == 404
    assert _status(caught.value)["details"] == {
        "name": "langfuse",
        "group": "apps",
        "kind": "deployments",
    }


def test_reset_forgets_workloads(emu: Emulator, apps: Any) -> None:
    apps.create_namespaced_deployment(NAMESPACE, _deployment())
    control(emu, "POST", "reset")
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment("langfuse", NAMESPACE)
    assert caught.value.status == 404
