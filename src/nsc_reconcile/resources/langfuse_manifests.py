"""The Kubernetes manifests of the LangFuse workload (kind ``kubernetes_workload``): every
object as it is applied, built as pure functions of the resource and its inputs.
No I/O here; reading, comparing and writing live in ``workload``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from nsc_reconcile.changes import Unknown
from nsc_reconcile.model.images import ContainerImage, Image
from nsc_reconcile.model.workload import Component, InClusterDependency, Langfuse

FIELD_MANAGER = "nsc-reconcile"
MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
DIGEST_ANNOTATION = "nsc-reconcile/values-sha256"
# The Key Vault version of every value in the Secret (JSON: vault secret -> version id): what
# a plan compares, so it needs no value (a private vault's values are readable only inside).
VERSIONS_ANNOTATION = "nsc-reconcile/key-vault-versions"
# Workload identity (azure-workload-identity docs, "Service Account Labels and Annotations"):
# the ServiceAccount names the identity's client id; only pods labelled `use: "true"` get the
# projected token and AZURE_* environment injected by the webhook.
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
USE_LABEL = "azure.workload.identity/use"
# The Secrets Store CSI driver (secrets-store-csi-driver-provider-azure docs, "Workload
# Identity"): a SecretProviderClass with provider `azure`, and a read-only inline CSI volume.
CSI_DRIVER = "secrets-store.csi.k8s.io"
CSI_VOLUME = "key-vault"
CSI_MOUNT_PATH = "/mnt/secrets-store"

Obj = dict[str, Any]

# kind -> apiVersion of every kind we declare
API_VERSIONS = {
    "Namespace": "v1",
    "ServiceAccount": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "SecretProviderClass": "secrets-store.csi.x-k8s.io/v1",
}

_CLICKHOUSE_USER = "langfuse"
_MINIO_USER = "langfuse"
_BUCKET = "langfuse"


@dataclass(frozen=True)
class Dependency:
    """One in-cluster dependency: its StatefulSet/Service name, port and data directory."""

    part: str  # clickhouse | redis | blob_storage
    suffix: str
    port: int
    data_path: str


DEPENDENCIES = (
    Dependency("clickhouse", "clickhouse", 8123, "/var/lib/clickhouse"),
    Dependency("redis", "redis", 6379, "/data"),
    Dependency("blob_storage", "minio", 9000, "/data"),
)
_CLICKHOUSE_NATIVE_PORT = 9000


@dataclass
class Inputs:
    """What the manifests need from other resources (Unknown until they exist)."""

    login_servers: dict[str, Any]
    db_host: Any
    db_user: Any
    secret_values: dict[str, Any] | None  # Secret key -> value; None: data not written
    secret_versions: Any = None  # VERSIONS_ANNOTATION's value (Unknown until all exist)
    client_id: Any = None  # the workload identity's client id (Unknown until it exists)
    tenant_id: Any = None  # the Key Vault's tenant (for the SecretProviderClass)
    # The state's `container_images` by label: what `{container_image: <label>}` runs.
    images: dict[str, ContainerImage] = field(default_factory=dict)


# --------------------------------------------------------------------------- names
def secret_name(resource: Langfuse) -> str:
    return f"{resource.name}-secrets"


def provider_class_name(resource: Langfuse) -> str:
    """The SecretProviderClass of ``secrets_delivery: csi``."""
    return f"{resource.name}-key-vault"


def uses_csi(resource: Langfuse) -> bool:
    return resource.secrets_delivery == "csi"


def dependency_name(resource: Langfuse, dependency: Dependency) -> str:
    return f"{resource.name}-{dependency.suffix}"


def secret_keys(resource: Langfuse) -> dict[str, str]:
    """Key of the Kubernetes Secret -> Key Vault secret it is filled from."""
    keys = {"DATABASE_PASSWORD": resource.database.password_secret}
    if resource.database.username_secret:
        keys["DATABASE_USERNAME"] = resource.database.username_secret
    if resource.clickhouse.password_secret:
        keys["CLICKHOUSE_PASSWORD"] = resource.clickhouse.password_secret
    if resource.redis.password_secret:
        keys["REDIS_AUTH"] = resource.redis.password_secret
    if resource.blob_storage.password_secret:
        keys["LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY"] = resource.blob_storage.password_secret
    keys.update(resource.secret_env)
    return keys


def secret_consumers(resource: Langfuse, vault_secret: str) -> list[tuple[str, str]]:
    """(kind, name) of the Deployments and StatefulSets whose containers read Key Vault secret
    ``vault_secret`` through the Secret (they must restart to see a new value)."""
    keys = {key for key, source in secret_keys(resource).items() if source == vault_secret}
    unknown = Unknown("login server")
    inputs = Inputs(dict.fromkeys(_registries(resource), unknown), None, None, None)
    found = []
    for manifest in manifests(resource, inputs):
        if manifest["kind"] not in ("Deployment", "StatefulSet"):
            continue
        containers = manifest["spec"]["template"]["spec"]["containers"]
        refs = {
            ((item.get("valueFrom") or {}).get("secretKeyRef") or {}).get("key")
            for container in containers
            for item in container.get("env") or []
        }
        if refs & keys:
            found.append((str(manifest["kind"]), str(manifest["metadata"]["name"])))
    return found


def _registries(resource: Langfuse) -> set[str]:
    parts = (resource.web, resource.worker, *(getattr(resource, d.part) for d in DEPENDENCIES))
    return {part.image.registry for part in parts if part.image.registry is not None}


def declared_objects(resource: Langfuse) -> list[tuple[str, str]]:
    """(kind, name) of every object we declare, in write order."""
    # With the CSI driver the Secret is the driver's (synced from the SecretProviderClass).
    values = (
        ("SecretProviderClass", provider_class_name(resource))
        if uses_csi(resource)
        else ("Secret", secret_name(resource))
    )
    objects = [
        ("Namespace", resource.namespace),
        ("ServiceAccount", resource.name),
        values,
        ("Service", resource.service.name),
    ]
    objects += [("Service", dependency_name(resource, d)) for d in DEPENDENCIES]
    objects += [("StatefulSet", dependency_name(resource, d)) for d in DEPENDENCIES]
    objects += [("Deployment", resource.web.name), ("Deployment", resource.worker.name)]
    return objects


def values_digest(secret_name: str, values: dict[str, str]) -> str:
    """The ``nsc-reconcile/values-sha256`` annotation of Secret ``secret_name`` holding
    ``values`` (salted with the name, so equal values in two Secrets do not look equal)."""
    text = json.dumps(values, sort_keys=True)
    return hashlib.sha256(f"nsc-reconcile:{secret_name}:{text}".encode()).hexdigest()


def base_object(kind: str, name: str, namespace: str, labels: dict[str, str] | None) -> Obj:
    """apiVersion, kind and metadata of one object (no spec)."""
    metadata: Obj = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if labels is not None:
        metadata["labels"] = dict(labels)
    return {"apiVersion": API_VERSIONS[kind], "kind": kind, "metadata": metadata}


# --------------------------------------------------------------------------- manifests
def manifests(resource: Langfuse, inputs: Inputs) -> list[Obj]:
    """Every object as it is applied, in write order. With ``inputs.secret_values`` the
    Secret holds its data and their digest (for writing); without, only the Key Vault
    versions they come from (for comparing)."""
    ns = resource.namespace
    out: list[Obj] = [
        base_object("Namespace", ns, "", _labels(resource)),
        _service_account(resource, inputs),
        _provider_class(resource, inputs) if uses_csi(resource) else _secret(resource, inputs),
        _service(resource, resource.service.name, resource.web.name, {
            "http": (resource.service.port, resource.web.port),
        }),
    ]  # fmt: skip
    for dep in DEPENDENCIES:
        name = dependency_name(resource, dep)
        ports = {"http": (dep.port, dep.port)}
        if dep.part == "clickhouse":
            ports["native"] = (_CLICKHOUSE_NATIVE_PORT, _CLICKHOUSE_NATIVE_PORT)
        out.append(_service(resource, name, name, ports))
    for dep in DEPENDENCIES:
        out.append(_statefulset(resource, dep, inputs))
    out.append(_deployment(resource, resource.web, "/api/public/health", inputs))
    out.append(_deployment(resource, resource.worker, "/api/health", inputs))
    return out


def _labels(resource: Langfuse, component: str | None = None) -> dict[str, str]:
    labels = {MANAGED_BY: FIELD_MANAGER, PART_OF: resource.name}
    if component is not None:
        labels |= _selector(resource, component)
    return labels


def _selector(resource: Langfuse, component: str) -> dict[str, str]:
    return {NAME_LABEL: component, INSTANCE_LABEL: resource.name}


def _service_account(resource: Langfuse, inputs: Inputs) -> Obj:
    account = {
        **base_object("ServiceAccount", resource.name, resource.namespace, _labels(resource)),
        "automountServiceAccountToken": False,
    }
    if resource.identity is not None:
        account["metadata"]["annotations"] = {CLIENT_ID_ANNOTATION: inputs.client_id}
    return account


def _provider_class(resource: Langfuse, inputs: Inputs) -> Obj:
    """The SecretProviderClass: every Key Vault secret the pods read, fetched as the workload
    identity (`clientID`) and synced into the Secret their env references (`secretObjects`)."""
    keys = secret_keys(resource)
    objects = "array:\n" + "".join(
        f"  - |\n    objectName: {name}\n    objectType: secret\n"
        for name in sorted(set(keys.values()))
    )
    spc = base_object(
        "SecretProviderClass", provider_class_name(resource), resource.namespace,
        _labels(resource),
    )  # fmt: skip
    spc["spec"] = {
        "provider": "azure",
        "parameters": {
            "usePodIdentity": "false",
            "clientID": inputs.client_id,
            "keyvaultName": resource.key_vault,
            "tenantId": inputs.tenant_id,
            "objects": objects,
        },
        "secretObjects": [
            {
                "secretName": secret_name(resource),
                "type": "Opaque",
                "data": [
                    {"objectName": vault_secret, "key": key}
                    for key, vault_secret in sorted(keys.items())
                ],
            }
        ],
    }
    return spc


def _secret(resource: Langfuse, inputs: Inputs) -> Obj:
    name = secret_name(resource)
    secret = {**base_object("Secret", name, resource.namespace, _labels(resource))}
    secret["type"] = "Opaque"
    annotations: Obj = {}
    if inputs.secret_versions is not None:
        annotations[VERSIONS_ANNOTATION] = inputs.secret_versions
        secret["metadata"]["annotations"] = annotations
    values = inputs.secret_values
    if values is None:
        return secret
    unknown = [v for v in values.values() if isinstance(v, Unknown)]
    annotations[DIGEST_ANNOTATION] = unknown[0] if unknown else values_digest(name, values)
    secret["metadata"]["annotations"] = annotations
    if not unknown:
        secret["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    return secret


def _service(
    resource: Langfuse, name: str, component: str, ports: dict[str, tuple[int, int]]
) -> Obj:
    service = base_object("Service", name, resource.namespace, _labels(resource, component))
    service["spec"] = {
        "type": "ClusterIP",
        "selector": _selector(resource, component),
        "ports": [
            {"name": port_name, "port": port, "targetPort": target, "protocol": "TCP"}
            for port_name, (port, target) in ports.items()
        ],
    }
    return service


def _image(image: Image, inputs: Inputs) -> Any:
    """``<login server>/<repository>:<tag>``, and ``@<digest>`` for a declared image (the
    registry's copy, pinned: a moved tag changes nothing that runs)."""
    found = image.resolve(inputs.images)
    if found is None:
        return Unknown(f"container_image/{image.container_image}")
    server = inputs.login_servers.get(found.registry)
    if server is None or isinstance(server, Unknown):
        return server or Unknown(f"container_registry/{found.registry}.login_server")
    return found.on(str(server))


def _secret_ref(resource: Langfuse, variable: str, key: str | None = None) -> Obj:
    ref = {"name": secret_name(resource), "key": key or variable}
    return {"name": variable, "valueFrom": {"secretKeyRef": ref}}


def _app_env(resource: Langfuse, inputs: Inputs) -> list[Obj]:
    """The environment of web and worker: plain values, then references to the Secret."""
    plain: dict[str, Any] = {
        "DATABASE_HOST": inputs.db_host,
        "DATABASE_NAME": resource.database.database,
        "CLICKHOUSE_URL": f"http://{_dep_host(resource, 'clickhouse')}:8123",
        "CLICKHOUSE_MIGRATION_URL": (
            f"clickhouse://{_dep_host(resource, 'clickhouse')}:{_CLICKHOUSE_NATIVE_PORT}"
        ),
        "CLICKHOUSE_USER": _CLICKHOUSE_USER,
        "CLICKHOUSE_CLUSTER_ENABLED": "false",
        "REDIS_HOST": _dep_host(resource, "redis"),
        "REDIS_PORT": "6379",
        "LANGFUSE_S3_EVENT_UPLOAD_BUCKET": _BUCKET,
        "LANGFUSE_S3_EVENT_UPLOAD_REGION": "auto",
        "LANGFUSE_S3_EVENT_UPLOAD_ENDPOINT": f"http://{_dep_host(resource, 'minio')}:9000",
        "LANGFUSE_S3_EVENT_UPLOAD_ACCESS_KEY_ID": _MINIO_USER,
        "LANGFUSE_S3_EVENT_UPLOAD_FORCE_PATH_STYLE": "true",
    }
    if inputs.db_user is not None:
        plain["DATABASE_USERNAME"] = inputs.db_user
    plain.update(resource.env)
    env = [{"name": k, "value": v} for k, v in plain.items()]
    env += [_secret_ref(resource, key) for key in secret_keys(resource)]
    return env


def _dep_host(resource: Langfuse, suffix: str) -> str:
    return f"{resource.name}-{suffix}"


def _resources(component: Component) -> Obj:
    return {
        "requests": {"cpu": component.cpu, "memory": component.memory},
        "limits": {"memory": component.memory},
    }


def _pod(resource: Langfuse, component: str, container: Obj) -> Obj:
    labels = _labels(resource, component)
    if resource.identity is not None:
        labels[USE_LABEL] = "true"
    spec: Obj = {
        "serviceAccountName": resource.name,
        "automountServiceAccountToken": False,
        "containers": [container],
    }
    if uses_csi(resource):  # the driver syncs the Secret only while a pod mounts the volume
        mount = {"name": CSI_VOLUME, "mountPath": CSI_MOUNT_PATH, "readOnly": True}
        container["volumeMounts"] = [*container.get("volumeMounts", []), mount]
        spec["volumes"] = [
            {
                "name": CSI_VOLUME,
                "csi": {
                    "driver": CSI_DRIVER,
                    "readOnly": True,
                    "volumeAttributes": {"secretProviderClass": provider_class_name(resource)},
                },
            }
        ]
    return {"metadata": {"labels": labels}, "spec": spec}


def _deployment(resource: Langfuse, component: Component, health: str, inputs: Inputs) -> Obj:
    container = {
        "name": component.name,
        "image": _image(component.image, inputs),
        "ports": [{"name": "http", "containerPort": component.port, "protocol": "TCP"}],
        "env": _app_env(resource, inputs),
        "resources": _resources(component),
        "readinessProbe": {
            "httpGet": {"path": health, "port": component.port},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
        },
    }
    deployment = base_object(
        "Deployment",
        component.name,
        resource.namespace,
        _labels(resource, component.name),
    )
    deployment["spec"] = {
        "replicas": component.replicas,
        "selector": {"matchLabels": _selector(resource, component.name)},
        "template": _pod(resource, component.name, container),
    }
    return deployment


def _statefulset(resource: Langfuse, dep: Dependency, inputs: Inputs) -> Obj:
    spec: InClusterDependency = getattr(resource, dep.part)
    name = dependency_name(resource, dep)
    container: Obj = {
        "name": dep.suffix,
        "image": _image(spec.image, inputs),
        "ports": [{"name": "http", "containerPort": dep.port, "protocol": "TCP"}],
        "volumeMounts": [{"name": "data", "mountPath": dep.data_path}],
    }
    env: list[Obj] = []
    if dep.part == "clickhouse":
        container["ports"].append(
            {"name": "native", "containerPort": _CLICKHOUSE_NATIVE_PORT, "protocol": "TCP"}
        )
        env = [{"name": "CLICKHOUSE_USER", "value": _CLICKHOUSE_USER}]
        if spec.password_secret:
            env.append(_secret_ref(resource, "CLICKHOUSE_PASSWORD"))
    elif dep.part == "redis":
        args = ["--appendonly", "yes", "--maxmemory-policy", "noeviction"]
        if spec.password_secret:
            env = [_secret_ref(resource, "REDIS_PASSWORD", "REDIS_AUTH")]
            args += ["--requirepass", "$(REDIS_PASSWORD)"]
        container["args"] = args
    else:  # MinIO; the bucket is a directory of its data volume
        env = [{"name": "MINIO_ROOT_USER", "value": _MINIO_USER}]
        if spec.password_secret:
            env.append(
                _secret_ref(
                    resource,
                    "MINIO_ROOT_PASSWORD",
                    "LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY",
                )
            )
        container["command"] = [
            "sh",
            "-c",
            f"mkdir -p {dep.data_path}/{_BUCKET} && minio server --address :9000 {dep.data_path}",
        ]
    if env:
        container["env"] = env
    statefulset = base_object("StatefulSet", name, resource.namespace, _labels(resource, name))
    statefulset["spec"] = {
        "replicas": 1,
        "serviceName": name,
        "selector": {"matchLabels": _selector(resource, name)},
        "template": _pod(resource, name, container),
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{spec.storage_gb}Gi"}},
                },
            }
        ],
    }
    return statefulset
