"""Per-kind validation and server defaults (names, secrets, services with cluster IPs and node
ports, deployments and statefulsets with generation, revision and an always-ready status,
persistent volume claims bound at once; ingresses in ``ingress``). Reads the stored objects only
to allocate free addresses and ports; never writes them.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import uuid
from typing import Any

from nsc_reconcile.emulator.kubernetes.csi import prepare_provider_class
from nsc_reconcile.emulator.kubernetes.errors import KubeError, invalid, utc_now
from nsc_reconcile.emulator.kubernetes.ingress import prepare_ingress
from nsc_reconcile.emulator.kubernetes.quantities import canonical_map
from nsc_reconcile.emulator.kubernetes.resources import Obj, ResourceType

Objects = dict[tuple[str, str, str], Obj]

SERVICE_CIDR = ipaddress.ip_network("10.0.0.0/16")

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def prepare(objects: Objects, rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> Obj:
    """Validate and fill server defaults; returns the object to store."""
    pattern = {"services": _DNS1035_LABEL, "namespaces": _DNS1123_LABEL}.get(
        rt.plural, _DNS1123_SUBDOMAIN
    )
    limit = 63 if rt.plural in ("services", "namespaces") else 253
    if not pattern.match(name) or len(name) > limit:
        raise invalid(rt, name, "metadata.name", f'Invalid value: "{name}": must be a valid name')
    obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
    for field in ("labels", "annotations"):
        values = obj["metadata"].get(field)
        if values is not None and (
            not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
        ):
            raise invalid(rt, name, f"metadata.{field}", "Invalid value: must map to strings")
    if rt.plural == "namespaces":
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    elif rt.plural == "secrets":
        _prepare_secrets(rt, name, obj, old)
    elif rt.plural == "services":
        _prepare_services(objects, rt, name, obj, old)
    elif rt.plural == "deployments":
        _prepare_deployments(rt, name, obj, old)
    elif rt.plural == "statefulsets":
        _prepare_statefulsets(rt, name, obj, old)
    elif rt.plural == "secretproviderclasses":
        prepare_provider_class(rt, name, obj)
    elif rt.plural == "persistentvolumeclaims":
        _prepare_claims(rt, name, obj, old)
    elif rt.plural == "ingresses":
        prepare_ingress(rt, name, obj, old)
    elif rt.plural in ("jobs", "pods"):
        from nsc_reconcile.emulator.kubernetes import jobs  # jobs.py builds on this module

        (jobs.prepare_job if rt.plural == "jobs" else jobs.prepare_pod)(rt, name, obj, old)
    return obj


def _prepare_secrets(rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> None:
    obj.setdefault("type", "Opaque")
    if old is not None and obj["type"] != old.get("type"):
        raise invalid(rt, name, "type", "Invalid value: field is immutable")
    data = obj.get("data") or {}
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise invalid(rt, name, f"data[{key}]", "Invalid value: illegal base64") from exc
    string_data = obj.pop("stringData", None) or {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    if data:
        obj["data"] = data


def _prepare_services(
    objects: Objects, rt: ResourceType, name: str, obj: Obj, old: Obj | None
) -> None:
    spec = obj.setdefault("spec", {})
    old_spec = (old or {}).get("spec", {})
    kind = spec.setdefault("type", "ClusterIP")
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        raise invalid(rt, name, "spec.type", f'Unsupported value: "{kind}"')
    ports = spec.get("ports") or []
    if kind != "ExternalName" and not ports:
        raise invalid(rt, name, "spec.ports", "Required value")
    used_node_ports = _node_ports(objects)
    for index, port in enumerate(ports):
        if not isinstance(port, dict) or not isinstance(port.get("port"), int):
            raise invalid(rt, name, f"spec.ports[{index}].port", "Required value")
        if len(ports) > 1 and not port.get("name"):
            raise invalid(rt, name, f"spec.ports[{index}].name", "Required value")
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
        if kind in ("NodePort", "LoadBalancer") and "nodePort" not in port:
            previous = [
                p.get("nodePort")
                for p in old_spec.get("ports") or []
                if p.get("port") == port["port"] and p.get("nodePort")
            ]
            port["nodePort"] = previous[0] if previous else _free_node_port(used_node_ports)
            used_node_ports.add(port["nodePort"])
    if kind == "ExternalName":
        return
    _cluster_ip(objects, rt, name, spec, old_spec)
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    status: Obj = {"loadBalancer": {}}
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
        internal = (obj["metadata"].get("annotations") or {}).get(
            "service.beta.kubernetes.io/azure-load-balancer-internal"
        ) == "true"
        # Data only: AKS gives a public frontend unless the internal annotation is set.
        octet = int(uuid.UUID(obj["metadata"]["uid"]).int % 250) + 2
        address = f"10.10.2.{octet}" if internal else f"20.249.{octet}.{(octet * 7) % 250 + 2}"
        status = {"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}}
    obj["status"] = status


def _cluster_ip(objects: Objects, rt: ResourceType, name: str, spec: Obj, old_spec: Obj) -> None:
    wanted, previous = spec.get("clusterIP"), old_spec.get("clusterIP")
    if previous is not None:
        if wanted not in (None, "", previous):
            raise invalid(
                rt, name, "spec.clusterIPs[0]", f'Invalid value: "{wanted}": field is immutable'
            )
        wanted = previous
    elif wanted in (None, ""):
        wanted = _free_cluster_ip(objects)
    elif wanted != "None":
        try:
            address = ipaddress.ip_address(wanted)
        except ValueError as exc:
            raise invalid(
                rt, name, "spec.clusterIPs[0]", f'Invalid value: "{wanted}": not an IP'
            ) from exc
        if address not in SERVICE_CIDR:
            raise invalid(
                rt,
                name,
                "spec.clusterIPs[0]",
                f'Invalid value: "{wanted}": provided IP is not in the valid range. '
                f"The range of valid IPs is {SERVICE_CIDR}",
            )
        if wanted in _cluster_ips(objects):
            raise invalid(
                rt,
                name,
                "spec.clusterIPs",
                f'Invalid value: []string{{"{wanted}"}}: failed to allocate IP {wanted}: '
                "provided IP is already allocated",
            )
    spec["clusterIP"] = wanted
    spec["clusterIPs"] = [wanted]


def _cluster_ips(objects: Objects) -> set[str]:
    return {
        str(obj["spec"].get("clusterIP"))
        for (plural, _, _), obj in objects.items()
        if plural == "services" and obj.get("spec", {}).get("clusterIP")
    }


def _free_cluster_ip(objects: Objects) -> str:
    used = _cluster_ips(objects)
    for address in SERVICE_CIDR.hosts():
        text = str(address)
        if int(address) - int(SERVICE_CIDR.network_address) < 16:
            continue  # leave the low block to the system services, as AKS does
        if text not in used:
            return text
    raise KubeError(500, "InternalError", "the service IP range is exhausted")


def _node_ports(objects: Objects) -> set[int]:
    return {
        int(port["nodePort"])
        for (plural, _, _), obj in objects.items()
        if plural == "services"
        for port in obj.get("spec", {}).get("ports") or []
        if port.get("nodePort")
    }


def _prepare_deployments(rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise invalid(rt, name, "spec", "Required value")
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        raise invalid(rt, name, "spec.selector", "Required value")
    if old is not None and selector != old["spec"].get("selector"):
        raise invalid(
            rt,
            name,
            "spec.selector",
            f"Invalid value: {json.dumps(selector)}: field is immutable",
        )
    _prepare_template(rt, name, spec, selector)
    replicas = spec.setdefault("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        raise invalid(rt, name, "spec.replicas", "Invalid value: must be >= 0")
    spec.setdefault(
        "strategy",
        {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
        },
    )
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    metadata = obj["metadata"]
    annotations = metadata.setdefault("annotations", {})
    if old is None:
        metadata["generation"] = 1
        revision = 1
    else:
        old_generation = int(old["metadata"].get("generation", 1))
        metadata["generation"] = old_generation + (spec != old["spec"])
        old_revision = int(
            (old["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "1")
        )
        revision = old_revision + (spec["template"] != old["spec"].get("template"))
    annotations["deployment.kubernetes.io/revision"] = str(revision)
    now = utc_now()
    status: Obj = {"observedGeneration": metadata["generation"], "replicas": replicas}
    if replicas:
        status.update(updatedReplicas=replicas, readyReplicas=replicas)
        status["availableReplicas"] = replicas
    status["conditions"] = [
        {
            "type": "Available",
            "status": "True",
            "lastUpdateTime": now,
            "lastTransitionTime": now,
            "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability.",
        },
        {
            "type": "Progressing",
            "status": "True",
            "lastUpdateTime": now,
            "lastTransitionTime": now,
            "reason": "NewReplicaSetAvailable",
            "message": f'ReplicaSet "{name}-{_hash(spec["template"])}" has successfully '
            "progressed.",
        },
    ]
    if (
        old is not None
        and old.get("status", {}).get("observedGeneration") == status["observedGeneration"]
    ):
        status["conditions"] = old["status"]["conditions"]
    obj["status"] = status


def _prepare_template(rt: ResourceType, name: str, spec: Obj, selector: Obj) -> None:
    """Validate a workload's pod template against its selector and fill the pod defaults."""
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        raise invalid(
            rt,
            name,
            "spec.template.metadata.labels",
            f"Invalid value: {json.dumps(labels)}: `selector` does not match template `labels`",
        )
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    if not containers:
        raise invalid(rt, name, "spec.template.spec.containers", "Required value")
    for index, container in enumerate(containers):
        if not isinstance(container, dict) or not container.get("name"):
            raise invalid(
                rt, name, f"spec.template.spec.containers[{index}].name", "Required value"
            )
        if not container.get("image"):
            raise invalid(
                rt, name, f"spec.template.spec.containers[{index}].image", "Required value"
            )
        image = str(container["image"])
        tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
        container.setdefault(
            "imagePullPolicy",
            "Always" if tagless or image.endswith(":latest") else "IfNotPresent",
        )
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        resources = container.setdefault("resources", {})
        where = f"spec.template.spec.containers[{index}].resources"
        _canonical_resources(rt, name, resources, where)
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("securityContext", {})
    pod.setdefault("schedulerName", "default-scheduler")
    template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    spec["template"] = {**template, "spec": pod}


def _prepare_statefulsets(rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise invalid(rt, name, "spec", "Required value")
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        raise invalid(rt, name, "spec.selector", "Required value")
    _prepare_template(rt, name, spec, selector)
    replicas = spec.setdefault("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        raise invalid(rt, name, "spec.replicas", "Invalid value: must be >= 0")
    spec.setdefault("serviceName", "")
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault(
        "persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"}
    )
    for index, claim in enumerate(spec.get("volumeClaimTemplates") or []):
        if not isinstance(claim, dict) or not (claim.get("metadata") or {}).get("name"):
            raise invalid(
                rt, name, f"spec.volumeClaimTemplates[{index}].metadata.name", "Required value"
            )
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        claim_spec = claim.setdefault("spec", {})
        claim_spec.setdefault("volumeMode", "Filesystem")
        where = f"spec.volumeClaimTemplates[{index}].spec.resources"
        _canonical_resources(rt, name, claim_spec.get("resources"), where)
        claim.setdefault("status", {"phase": "Pending"})
    if old is not None:
        mutable = (
            "replicas", "ordinals", "template", "updateStrategy",
            "persistentVolumeClaimRetentionPolicy", "minReadySeconds",
        )  # fmt: skip
        fixed = {k: v for k, v in spec.items() if k not in mutable}
        before = {k: v for k, v in old["spec"].items() if k not in mutable}
        if fixed != before:
            raise invalid(
                rt,
                name,
                "spec",
                "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
                "and 'minReadySeconds' are forbidden",
            )
    metadata = obj["metadata"]
    if old is None:
        metadata["generation"] = 1
    else:
        metadata["generation"] = int(old["metadata"].get("generation", 1)) + (spec != old["spec"])
    revision = f"{name}-{_hash(spec['template'])}"
    status: Obj = {
        "observedGeneration": metadata["generation"],
        "replicas": replicas,
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    }
    if replicas:
        status.update(
            readyReplicas=replicas,
            currentReplicas=replicas,
            updatedReplicas=replicas,
            availableReplicas=replicas,
        )
    obj["status"] = status


def _prepare_claims(rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> None:
    """A claim is bound at once to a dynamically provisioned volume (AKS ``default`` class)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict) or not spec.get("accessModes"):
        raise invalid(rt, name, "spec.accessModes", "Required value")
    _canonical_resources(rt, name, spec.get("resources"), "spec.resources")
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if not storage:
        raise invalid(rt, name, "spec.resources[storage]", "Required value")
    spec.setdefault("storageClassName", "default")
    spec.setdefault("volumeMode", "Filesystem")
    if old is not None:
        for field in ("storageClassName", "volumeMode", "accessModes"):
            if spec.get(field) != old["spec"].get(field):
                raise invalid(
                    rt,
                    name,
                    "spec",
                    "Forbidden: spec is immutable after creation except resources.requests and "
                    "volumeAttributesClassName for bound claims",
                )
        spec["volumeName"] = old["spec"].get("volumeName")
    else:
        spec["volumeName"] = f"pvc-{obj['metadata']['uid']}"
    annotations = obj["metadata"].setdefault("annotations", {})
    annotations.setdefault("pv.kubernetes.io/bind-completed", "yes")
    annotations.setdefault("pv.kubernetes.io/bound-by-controller", "yes")
    annotations.setdefault("volume.beta.kubernetes.io/storage-provisioner", "disk.csi.azure.com")
    annotations.setdefault("volume.kubernetes.io/storage-provisioner", "disk.csi.azure.com")
    obj["metadata"].setdefault("finalizers", ["kubernetes.io/pvc-protection"])
    obj["status"] = {
        "phase": "Bound",
        "accessModes": list(spec["accessModes"]),
        "capacity": {"storage": storage},
    }


def _canonical_resources(rt: ResourceType, name: str, resources: Any, where: str) -> None:
    """Requests and limits in canonical quantity form, in place (``0.5`` -> ``500m``), as
    the API server stores them; 422 for a value that is not a quantity."""
    if not isinstance(resources, dict):
        return
    for part in ("requests", "limits"):
        if part in resources:
            try:
                resources[part] = canonical_map(resources[part])
            except ValueError as exc:
                raise invalid(rt, name, f"{where}.{part}", f"Invalid value: {exc}") from exc


def _hash(value: Any) -> str:
    digest = uuid.uuid5(uuid.NAMESPACE_OID, json.dumps(value, sort_keys=True)).hex
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))


def _free_node_port(used: set[int]) -> int:
    for port in range(30000, 32768):
        if port not in used:
            return port
    raise KubeError(500, "InternalError", "the node port range is exhausted")
