"""networking.k8s.io/v1 Ingresses of the Kubernetes plane, driven by the real ``kubernetes``
client (``NetworkingV1Api``): discovery, create/get/list (namespaced and all namespaces),
server-side apply, delete, and the API server's validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

NAMESPACE = "langfuse"
APPLY = "application/apply-patch+yaml"


@pytest.fixture
def net(kube: k8s.ApiClient) -> Any:
    """The client, with the ``langfuse`` namespace created (its models type fields Optional)."""
    core: Any = k8s.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    return k8s.NetworkingV1Api(kube)


def _ingress(name: str = "langfuse", port: int = 3000, path_type: Any = "Prefix") -> Any:
    path = {"path": "/", "backend": {"service": {"name": "langfuse-web", "port": {"number": port}}}}
    if path_type is not None:
        path["pathType"] = path_type
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "langfuse"}},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "langfuse.example.com", "http": {"paths": [path]}}],
        },
    }


def _invalid(error: ApiException) -> str:
    body: dict[str, Any] = json.loads(error.body or "")
    assert error.status == 422
    assert body["kind"] == "Status"
    assert body["reason"] == "Invalid"
    return str(body["message"])


def test_discovery_serves_networking_ingresses(kube: k8s.ApiClient) -> None:
    groups = {g.name for g in k8s.ApisApi(kube).get_api_versions().groups}
    assert "networking.k8s.io" in groups
    group: Any = k8s.NetworkingApi(kube).get_api_group()
    assert group.preferred_version.group_version == "networking.k8s.io/v1"
    resources = k8s.NetworkingV1Api(kube).get_api_resources()
    assert resources.group_version == "networking.k8s.io/v1"
    ingresses = [r for r in resources.resources if r.name == "ingresses"]
    assert [(r.kind, r.namespaced, r.short_names) for r in ingresses] == [
        ("Ingress", True, ["ing"])
    ]


def test_ingress_create_get_list_delete(net: Any) -> None:
    created = net.create_namespaced_ingress(NAMESPACE, _ingress())
    assert created.metadata.uid
    assert created.metadata.generation == 1
    assert created.status.load_balancer.ingress is None  # no controller gives it an address
    backend = created.spec.rules[0].http.paths[0].backend
    assert (backend.service.name, backend.service.port.number) == ("langfuse-web", 3000)

    read = net.read_namespaced_ingress("langfuse", NAMESPACE)
    assert read.metadata.uid == created.metadata.uid
    assert read.spec.ingress_class_name == "nginx"
    net.create_namespaced_ingress("default", {**_ingress("other"), "metadata": {"name": "other"}})
    listed = net.list_namespaced_ingress(NAMESPACE, label_selector="app=langfuse").items
    assert [i.metadata.name for i in listed] == ["langfuse"]
    everywhere = net.list_ingress_for_all_namespaces().items
    assert sorted((i.metadata.namespace, i.metadata.name) for i in everywhere) == [
        ("default", "other"),
        (NAMESPACE, "langfuse"),
    ]
    with pytest.raises(ApiException) as caught:
        net.create_namespaced_ingress(NAMESPACE, _ingress())
    assert caught.value.status == 409

    net.delete_namespaced_ingress("langfuse", NAMESPACE)
    with pytest.raises(ApiException) as caught:
        net.read_namespaced_ingress("langfuse", NAMESPACE)
    assert caught.value.status == 404
    assert json.loads(caught.value.body or "")["details"] == {
        "name": "langfuse",
        "group": "networking.k8s.io",
        "kind": "ingresses",
    }


def test_ingress_server_side_apply(net: Any) -> None:
    def apply(body: Any) -> Any:
        return net.patch_namespaced_ingress(
            "langfuse", NAMESPACE, body, field_manager="nsc-reconcile", _content_type=APPLY
        )

    created = apply(_ingress())
    assert created.metadata.generation == 1
    assert [(m.manager, m.operation) for m in created.metadata.managed_fields] == [
        ("nsc-reconcile", "Apply")
    ]
    again = apply(_ingress())  # the same configuration changes nothing
    assert again.metadata.resource_version == created.metadata.resource_version
    changed = apply(_ingress(port=3030))
    assert changed.spec.rules[0].http.paths[0].backend.service.port.number == 3030
    assert changed.metadata.generation == 2
    assert int(changed.metadata.resource_version) > int(created.metadata.resource_version)


def test_ingress_validation(net: Any) -> None:
    with pytest.raises(ApiException) as caught:  # the client's models require pathType: apply
        net.patch_namespaced_ingress(
            "langfuse", NAMESPACE, _ingress(path_type=None), field_manager="t", _content_type=APPLY
        )
    assert "spec.rules[0].http.paths[0].pathType: Required value" in _invalid(caught.value)
    with pytest.raises(ApiException) as caught:
        net.create_namespaced_ingress(NAMESPACE, _ingress(path_type="Regex"))
    assert 'pathType: Unsupported value: "Regex"' in _invalid(caught.value)
    with pytest.raises(ApiException) as caught:
        net.create_namespaced_ingress(NAMESPACE, _ingress(port=70000))
    assert "must be between 1 and 65535" in _invalid(caught.value)
    empty = _ingress()
    empty["spec"] = {"ingressClassName": "nginx"}
    with pytest.raises(ApiException) as caught:
        net.create_namespaced_ingress(NAMESPACE, empty)
    assert "either `defaultBackend` or `rules` must be specified" in _invalid(caught.value)
    assert net.list_namespaced_ingress(NAMESPACE).items == []
