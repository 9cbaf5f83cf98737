"""``verify --smoke --from aks``: the in-network script as a Kubernetes Job on the LangFuse
cluster. In the smoke namespace it creates a ConfigMap holding the script, a short-lived Secret
for the credentials no Secret of the namespace holds yet (the OpenAI key), and a Job (no retry,
a deadline, a TTL, non-root, read-only, bounded resources, the image from the ACR); it waits,
bounded, reads the pod's log, and deletes all three (the Job with its pods). The ConfigMap and
Secret are owned by the Job, so its TTL removes them too if this process dies midway.
Credentials reach the pod only through ``secretKeyRef``: never in the Job, never in evidence.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from nsc_reconcile.model.images import declared_images
from nsc_reconcile.verification.context import Run, rg_of
from nsc_reconcile.verification.results import Check, Status
from nsc_reconcile.verification.smoke_from import SmokePlan, checks_from_output, script_text

SCRIPT_KEY = "smoke_job.py"
MOUNT = "/opt/nsc-smoke"
CONTAINER = "smoke"
TTL_SECONDS = 600  # the Job (and what it owns) is removed by Kubernetes after this at the latest
WAIT_GRACE_SECONDS = 60  # beyond activeDeadlineSeconds: scheduling, reading the status
RUN_AS = 65532  # any non-root user: the script needs no file of its own
# Pod states that will not get better by waiting (the kubelet retries them forever).
STUCK = (
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
)
LABELS = {"app.kubernetes.io/name": "nsc-smoke", "app.kubernetes.io/managed-by": "nsc-reconcile"}


class JobFailed(Exception):
    """The Job did not give results (one line, no secret)."""


def job_manifest(
    name: str,
    image: str,
    plan: SmokePlan,
    refs: dict[str, tuple[str, str]],
    timeout: int,
    run_label: str,
) -> dict[str, Any]:
    """The Job: plain settings as values, each credential as a ``secretKeyRef``."""
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(plan.env.items())]
    env += [
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for variable, (secret, key) in sorted(refs.items())
    ]
    env.append({"name": "NSC_SMOKE_TIMEOUT", "value": "10"})
    labels = {**LABELS, "nsc-reconcile/smoke-run": run_label}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": timeout,
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": CONTAINER,
                            "image": image,
                            "command": ["python", f"{MOUNT}/{SCRIPT_KEY}"],
                            "env": env,
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "script", "mountPath": MOUNT, "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [{"name": "script", "configMap": {"name": name}}],
                },
            },
        },
    }


def _credential_refs(
    run: Run, plan: SmokePlan, namespace: str
) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Where each credential comes from: a key of the LangFuse Secret when it holds that Key
    Vault secret in this namespace (what LangFuse itself uses), else the temporary Secret
    (variable -> value read from Key Vault now)."""
    from nsc_reconcile.resources.langfuse_manifests import secret_keys, secret_name

    held: dict[str, tuple[str, str]] = {}
    langfuse = run.state.langfuse
    if langfuse is not None and langfuse.namespace == namespace:
        for key, vault_secret in secret_keys(langfuse).items():
            held.setdefault(vault_secret, (secret_name(langfuse), key))
    refs: dict[str, tuple[str, str]] = {}
    temporary: dict[str, str] = {}
    for variable, vault_secret in plan.credentials.items():
        if vault_secret in held:
            refs[variable] = held[vault_secret]
            continue
        try:
            temporary[variable] = run.secret_value(vault_secret)
        except Exception as error:
            if variable not in plan.arm_keys:
                raise
            temporary[variable] = _arm_key(run, plan, variable, vault_secret, error)
    return refs, temporary


def _arm_key(run: Run, plan: SmokePlan, variable: str, vault_secret: str, error: Exception) -> str:
    """The OpenAI key through ARM (``listKeys``: the control plane, reachable from outside the
    VNet) when Key Vault's data plane is not; the check says so."""
    from nsc_reconcile.retry import describe_error

    address, output = plan.arm_keys[variable]
    live = run.live(address)
    if live is None:
        raise error
    keys = run.clients.cognitive.accounts.list_keys(rg_of(live.id), live.id.rsplit("/", 1)[-1])
    value = keys.key1 if output == "primary_key" else keys.key2
    if not value:
        raise error
    run.engine.redactor.add(value)
    plan.notes["openai"] = (
        f"note: Key Vault secret {vault_secret} is not readable from here "
        f"({describe_error(error)}); the key of {address} was read through ARM (listKeys)"
    )
    return str(value)


def run_in_cluster(run: Run, plan: SmokePlan) -> list[Check]:
    """Run ``plan`` as a Job on the cluster; its checks (every expected one FAILs, saying why,
    when the Job gives no results)."""
    smoke = run.state.smoke
    if smoke is None:
        return plan.settle(
            Status.SKIP,
            "declare `smoke.image` (a Python image in the ACR) to "
            "run the connectivity smokes from a Job on AKS",
        )
    langfuse = run.state.langfuse
    clusters = [c.name for c in run.state.existing.aks_clusters]
    cluster_name = langfuse.cluster if langfuse is not None else next(iter(clusters), None)
    if cluster_name is None:
        return plan.settle(Status.SKIP, "no AKS cluster declared")
    namespace = smoke.namespace or (langfuse.namespace if langfuse is not None else "default")
    cluster = run.live(f"aks_cluster/{cluster_name}")
    if cluster is None:
        return plan.settle(Status.FAIL, f"aks_cluster/{cluster_name} does not exist")
    found = smoke.image.resolve(declared_images(run.state.container_images))
    if found is None:  # the loader refuses such a file; a state built in code may not
        return plan.settle(
            Status.FAIL,
            f"smoke.image.container_image: container_image/{smoke.image.container_image} is "
            "not declared in container_images",
        )
    registry = run.live(f"container_registry/{found.registry}")
    server = registry.fields.get("properties.loginServer") if registry is not None else None
    if not server:
        return plan.settle(
            Status.FAIL,
            f"smoke.image: container_registry/{found.registry} is not declared "
            "in existing.container_registries, or does not exist (no loginServer)",
        )
    image = found.on(str(server))
    try:
        api = run.clients.kubernetes_api_client(rg_of(cluster.id), cluster_name)
    except Exception as error:
        from nsc_reconcile.retry import describe_error

        reason = f"no Kubernetes API client for {cluster_name}: {describe_error(error)}"
        return plan.settle(Status.FAIL, reason)
    job = _SmokeJob(api, namespace, image, smoke.timeout_seconds)
    where = f"Job {namespace}/{job.name} on {cluster_name} (image {image})"
    try:
        refs, temporary = _credential_refs(run, plan, namespace)
        output, pod = job.run(plan, refs, temporary)
        where += f", pod {pod}"
    except JobFailed as failed:
        checks = plan.settle(Status.FAIL, f"{where}: {failed}")
    except Exception as error:
        from nsc_reconcile.retry import describe_error

        checks = plan.settle(Status.FAIL, f"{where}: could not run: {describe_error(error)}")
    else:
        checks = checks_from_output(plan, output, where)
    finally:
        leftovers = job.clean_up()
    if leftovers:
        checks.append(
            Check(
                f"smoke-cleanup/{job.name}/from-aks",
                "Smoke Job cleaned up",
                Status.FAIL,
                where,
                "; ".join(leftovers),
            )
        )
    return checks


class _SmokeJob:
    """One smoke Job's objects: create, wait, read, delete."""

    def __init__(self, api: Any, namespace: str, image: str, timeout: int) -> None:
        from kubernetes import client as k8s

        # The client's models type every field Optional: read as the API returns them.
        self.core: Any = k8s.CoreV1Api(api)
        self.batch: Any = k8s.BatchV1Api(api)
        self.namespace, self.image, self.timeout = namespace, image, timeout
        self.run_label = secrets.token_hex(3)
        self.name = f"nsc-smoke-{self.run_label}"
        self.created: list[str] = []  # kinds created, in order

    def run(
        self, plan: SmokePlan, refs: dict[str, tuple[str, str]], temporary: dict[str, str]
    ) -> tuple[str, str]:
        """Create, wait, read: (the pod's log, the pod's name). Raises JobFailed."""
        labels = {**LABELS, "nsc-reconcile/smoke-run": self.run_label}
        metadata = {"name": self.name, "labels": labels}
        self.core.create_namespaced_config_map(
            self.namespace, {"metadata": metadata, "data": {SCRIPT_KEY: script_text()}}
        )
        self.created.append("ConfigMap")
        if temporary:
            self.core.create_namespaced_secret(
                self.namespace, {"metadata": metadata, "type": "Opaque", "stringData": temporary}
            )
            self.created.append("Secret")
            refs = {**refs, **{variable: (self.name, variable) for variable in temporary}}
        manifest = job_manifest(self.name, self.image, plan, refs, self.timeout, self.run_label)
        created = self.batch.create_namespaced_job(self.namespace, manifest)
        self.created.append("Job")
        uid = created.metadata.uid
        self._own(uid)
        pod = self._wait(uid)
        return self._log(pod), pod

    def _own(self, uid: str) -> None:
        """The Job owns the ConfigMap and Secret: its TTL (or its deletion) removes them."""
        owner = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": self.name,
            "uid": uid,
            "blockOwnerDeletion": False,
        }
        patch = {"metadata": {"ownerReferences": [owner]}}
        self.core.patch_namespaced_config_map(self.name, self.namespace, patch)
        if "Secret" in self.created:
            self.core.patch_namespaced_secret(self.name, self.namespace, patch)

    def _pods(self, uid: str) -> list[Any]:
        selector = f"controller-uid={uid}"
        found = self.core.list_namespaced_pod(self.namespace, label_selector=selector)
        return sorted(found.items or [], key=lambda p: str(p.metadata.creation_timestamp or ""))

    def _wait(self, uid: str) -> str:
        """Wait (bounded) for Complete/Failed; the name of the pod whose log holds results."""
        deadline = time.monotonic() + self.timeout + WAIT_GRACE_SECONDS
        delay = 0.2
        while True:
            status = self.batch.read_namespaced_job_status(self.name, self.namespace).status
            conditions = {c.type: c for c in (status.conditions or []) if c.status == "True"}
            pods = self._pods(uid)
            if "Failed" in conditions and conditions["Failed"].reason == "DeadlineExceeded":
                raise JobFailed(f"ran longer than activeDeadlineSeconds={self.timeout}")
            if "Complete" in conditions or "Failed" in conditions:
                if not pods:
                    reason = conditions.get("Failed")
                    raise JobFailed(f"no pod left to read ({reason.reason if reason else 'done'})")
                return str(pods[-1].metadata.name)
            for pod in pods:
                for container in pod.status.container_statuses or [] if pod.status else []:
                    waiting = container.state.waiting if container.state else None
                    if waiting is not None and waiting.reason in STUCK:
                        raise JobFailed(
                            f"pod {pod.metadata.name}: {waiting.reason}: "
                            f"{waiting.message or ''}".rstrip(": ")
                        )
            if time.monotonic() > deadline:
                raise JobFailed(f"not finished after {self.timeout + WAIT_GRACE_SECONDS} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def _log(self, pod: str) -> str:
        log = self.core.read_namespaced_pod_log(pod, self.namespace, container=CONTAINER)
        text = log if isinstance(log, str) else str(log or "")
        if text.strip():
            return text
        found = self.core.read_namespaced_pod(pod, self.namespace)
        for container in found.status.container_statuses or []:
            ended = container.state.terminated if container.state else None
            if ended is not None:
                raise JobFailed(
                    f"pod {pod} wrote nothing: exit code {ended.exit_code} "
                    f"{ended.reason or ''} {ended.message or ''}".rstrip()
                )
        raise JobFailed(f"pod {pod} wrote nothing")

    def clean_up(self) -> list[str]:
        """Delete what was created (the Job with its pods); what could not be deleted."""
        from kubernetes.client.exceptions import ApiException

        deletes = {
            "Job": lambda: self.batch.delete_namespaced_job(
                self.name, self.namespace, propagation_policy="Background"
            ),
            "ConfigMap": lambda: self.core.delete_namespaced_config_map(self.name, self.namespace),
            "Secret": lambda: self.core.delete_namespaced_secret(self.name, self.namespace),
        }
        left = []
        for kind in ("Job", "ConfigMap", "Secret"):
            if kind not in self.created:
                continue
            try:
                deletes[kind]()
            except ApiException as error:
                if error.status != 404:  # already gone (garbage-collected with the Job)
                    left.append(
                        f"{kind} {self.namespace}/{self.name}: {error.status} {error.reason}"
                    )
            except Exception as error:
                left.append(f"{kind} {self.namespace}/{self.name}: {type(error).__name__}")
        return left
