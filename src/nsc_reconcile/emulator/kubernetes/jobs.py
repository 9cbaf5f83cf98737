"""batch/v1 Jobs and the Pods they run: Job validation and defaults; the Job controller (pods one
at a time up to ``completions``, a new pod per failure up to ``backoffLimit``,
``activeDeadlineSeconds``, ``ttlSecondsAfterFinished``); the kubelet's part (env from values,
``secretKeyRef``, ``configMapKeyRef``, ``fieldRef``, ``envFrom``; configMap, secret and emptyDir
volumes; ``runAsNonRoot``; ``CreateContainerConfigError`` for a missing Secret/ConfigMap or key);
pod logs; garbage collection of dependents through ``ownerReferences``.

A container is not run by a container runtime: its command runs as a local Python subprocess
in the sandbox (``emulator/sandbox.py``) with the pod's environment and the VNet's network view.
Only ``python``/``python3`` commands run (the image is not pulled); one container per pod.
Called by ``plane.KubernetesPlane`` under its lock; the sandbox calls back from its threads.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import copy
import json
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsc_reconcile.emulator.kubernetes.errors import bad_request, invalid
from nsc_reconcile.emulator.kubernetes.resources import BY_ROUTE, Obj, ResourceType
from nsc_reconcile.emulator.kubernetes.store import Store
from nsc_reconcile.emulator.protocol import Request, Response
from nsc_reconcile.emulator.sandbox import Handle, Outcome, Sandbox

__all__ = ["JobController", "prepare_job", "prepare_pod", "propagation_of"]

PODS = BY_ROUTE[("", "v1", "pods")]
JOBS = BY_ROUTE[("batch", "v1", "jobs")]
SECRETS = BY_ROUTE[("", "v1", "secrets")]
CONFIGMAPS = BY_ROUTE[("", "v1", "configmaps")]
CONTROLLER = "kube-controller-manager"
NODE_NAME = "aks-nodepool1-27419873-vmss000000"
NODE_IP = "10.10.2.4"  # a node of the baseline cluster, in snet-aks
POD_CIDR_PREFIX = "10.244.0."
DEFAULT_RUN_SECONDS = 3600.0  # a Job without activeDeadlineSeconds: the emulator's own limit
_RESTART_POLICIES = ('"OnFailure"', '"Never"')
_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
_WAITING_REASONS_RETRIED = ("CreateContainerConfigError", "ContainerCreating")


def _stamp(epoch: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if epoch is None else epoch))


def _epoch(stamp: Any) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


# --------------------------------------------------------------------------- validation
def prepare_job(rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> None:
    """Validate a Job and fill what the API server fills (selector, labels, defaults)."""
    from nsc_reconcile.emulator.kubernetes.defaults import _prepare_template

    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise invalid(rt, name, "spec", "Required value")
    template = spec.get("template")
    if not isinstance(template, dict):
        raise invalid(rt, name, "spec.template", "Required value")
    found = template.get("spec")
    pod: Obj = found if isinstance(found, dict) else {}
    restart = pod.get("restartPolicy")
    supported = ", ".join(_RESTART_POLICIES)
    if restart is None:
        where = "spec.template.spec.restartPolicy"
        raise invalid(rt, name, where, f"Required value: valid values: {supported}")
    if restart not in ("OnFailure", "Never"):
        raise invalid(
            rt,
            name,
            "spec.template.spec.restartPolicy",
            f'Unsupported value: "{restart}": supported values: {supported}',
        )
    for field, least in (
        ("backoffLimit", 0),
        ("completions", 0),
        ("parallelism", 0),
        ("activeDeadlineSeconds", 1),
        ("ttlSecondsAfterFinished", 0),
    ):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < least):
            problem = "must be greater than 0" if least else "must be greater than or equal to 0"
            raise invalid(rt, name, f"spec.{field}", f"Invalid value: {value}: {problem}")
    if spec.get("manualSelector"):
        raise invalid(
            rt,
            name,
            "spec.manualSelector",
            "Unsupported value: the emulator generates the selector",
        )
    uid = str(obj["metadata"]["uid"])
    selector = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    if old is None and spec.get("selector") not in (None, selector):
        raise invalid(rt, name, "spec.selector", "Invalid value: `selector` will be auto-generated")
    spec["selector"] = selector
    template.setdefault("metadata", {})
    labels = template["metadata"].setdefault("labels", {})
    labels.update(
        {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
    )
    _prepare_template(rt, name, spec, selector)
    for field, default in (
        ("backoffLimit", 6),
        ("completions", 1),
        ("parallelism", 1),
        ("completionMode", "NonIndexed"),
        ("suspend", False),
        ("podReplacementPolicy", "TerminatingOrFailed"),
    ):
        spec.setdefault(field, default)
    if not obj["metadata"].get("labels"):
        obj["metadata"]["labels"] = dict(labels)
    if old is None:
        obj["metadata"]["generation"] = 1
        obj["status"] = {}
        return
    for field in ("template", "completions", "completionMode"):
        if spec.get(field) != old["spec"].get(field):
            raise invalid(rt, name, f"spec.{field}", "Invalid value: field is immutable")
    generation = int(old["metadata"].get("generation", 1))
    obj["metadata"]["generation"] = generation + (spec != old["spec"])


def prepare_pod(rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> None:
    """A pod's spec cannot change once it exists (only metadata may)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict) or not spec.get("containers"):
        raise invalid(rt, name, "spec.containers", "Required value")
    if old is not None and spec != old.get("spec"):
        raise invalid(
            rt, name, "spec", "Forbidden: pod updates may not change fields other than metadata"
        )


def propagation_of(request: Request, rt: ResourceType) -> str:
    """The delete's propagation policy (query or DeleteOptions body); the API's defaults:
    ``Orphan`` for batch/v1 Jobs (kept for compatibility), ``Background`` otherwise."""
    policy = request.query.get("propagationPolicy", "")
    if request.body:
        try:
            options = json.loads(request.body)
        except ValueError as exc:
            raise bad_request(f"the body of the request is not valid JSON: {exc}") from exc
        if isinstance(options, dict):
            policy = str(options.get("propagationPolicy") or policy)
            if options.get("orphanDependents") is True:
                policy = "Orphan"
    if policy and policy not in ("Orphan", "Background", "Foreground"):
        raise bad_request(
            f"Unsupported value: {policy!r}: supported values: Orphan, Background, Foreground"
        )
    return policy or ("Orphan" if rt is JOBS else "Background")


# --------------------------------------------------------------------------- pod status
def _qos(container: Obj) -> str:
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    if not requests and not limits:
        return "BestEffort"
    if all(limits.get(k) and requests.get(k, limits[k]) == limits[k] for k in ("cpu", "memory")):
        return "Guaranteed"
    return "Burstable"


def _container_status(container: Obj, state: Obj, ready: bool = False) -> Obj:
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "ready": ready,
        "restartCount": 0,
        "started": "running" in state,
        "state": state,
    }


class _Config:
    """What the kubelet works out before starting a container."""

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.plain: list[str] = []  # values that are not secret (the network view scans them)
        self.files: dict[str, bytes] = {}
        self.mounts: list[tuple[str, str]] = []  # (mount path, directory under the workdir)
        self.problem: tuple[str, str] | None = None  # (waiting reason, message)


# --------------------------------------------------------------------------- the controller
class JobController:
    """The Job controller and kubelet of the emulated cluster (see the module docstring)."""

    def __init__(
        self,
        store: Callable[[], Store],
        lock: threading.RLock,
        sandbox: Sandbox | None = None,
    ) -> None:
        self._store = store
        self._lock = lock
        self.sandbox = sandbox or Sandbox()
        self._runs: dict[str, Handle] = {}  # pod uid -> its run
        self._logs: dict[str, bytearray] = {}  # pod uid -> output
        self._times: dict[str, float] = {}  # job uid -> start epoch; "<uid>/end" -> end epoch
        self._output_lock = threading.Lock()
        self._next_ip = 10

    # -- lifecycle ------------------------------------------------------------------------
    def reset(self) -> None:
        for handle in self._runs.values():
            handle.kill()
        self._runs.clear()
        with self._output_lock:
            self._logs.clear()
        self._times.clear()

    # -- events from the plane (under its lock) ---------------------------------------------
    def created(self, namespace: str, job: Obj) -> None:
        """A Job was created: start it (unless suspended)."""
        uid = job["metadata"]["uid"]
        self._times[uid] = time.time()
        status = {
            "startTime": _stamp(self._times[uid]),
            "active": 0,
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
        }
        stored = self._set_status(JOBS, namespace, job["metadata"]["name"], status)
        if stored is not None and not stored["spec"].get("suspend"):
            self._new_pod(namespace, stored)

    def collect(self, owner_uid: str, propagation: str) -> None:
        """Garbage collection after an owner was deleted: its dependents go too (Background,
        Foreground), or lose that owner reference (Orphan)."""
        store = self._store()
        for key, obj in list(store.objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if not any(ref.get("uid") == owner_uid for ref in refs):
                continue
            if propagation == "Orphan":
                kept = [ref for ref in refs if ref.get("uid") != owner_uid]
                if kept:
                    obj["metadata"]["ownerReferences"] = kept
                else:
                    obj["metadata"].pop("ownerReferences", None)
                obj["metadata"]["resourceVersion"] = store.next_version()
                continue
            del store.objects[key]
            store.owners.pop(key, None)
            self.collect(str(obj["metadata"]["uid"]), propagation)
        self._forget_missing_pods()

    def sweep(self) -> None:
        """What the controllers would have done by now: deadlines, TTLs, pods whose config
        was missing (retried), pods lost."""
        store = self._store()
        now = time.time()
        for (plural, namespace, name), job in list(store.objects.items()):
            if plural != JOBS.qualified:
                continue
            uid = job["metadata"]["uid"]
            status = job.get("status") or {}
            if _terminal(status):
                ttl = job["spec"].get("ttlSecondsAfterFinished")
                ended = self._times.get(f"{uid}/end") or _epoch(_terminal(status))
                if ttl is not None and ended is not None and now >= ended + ttl:
                    del store.objects[(plural, namespace, name)]
                    store.owners.pop((plural, namespace, name), None)
                    self.collect(uid, "Foreground")
                continue
            deadline = job["spec"].get("activeDeadlineSeconds")
            started = self._times.get(uid) or _epoch(status.get("startTime"))
            if deadline is not None and started is not None and now >= started + deadline:
                self._fail(
                    namespace,
                    job,
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                )
                continue
            if job["spec"].get("suspend") or "startTime" not in status:
                continue
            pods = self._pods_of(namespace, uid)
            active = [p for p in pods if p.get("status", {}).get("phase") in ("Pending", "Running")]
            for pod in active:
                if pod["metadata"]["uid"] not in self._runs and _waiting(pod):
                    self._start(namespace, pod)
            if not active:  # its pod was deleted: counted as failed, replaced within the limit
                self._pod_failed(namespace, job)
        self._forget_missing_pods()

    # -- pods -------------------------------------------------------------------------------
    def _pods_of(self, namespace: str, job_uid: str) -> list[Obj]:
        return [
            obj
            for (plural, ns, _), obj in self._store().objects.items()
            if plural == PODS.qualified
            and ns == namespace
            and any(r.get("uid") == job_uid for r in obj["metadata"].get("ownerReferences") or [])
        ]

    def _new_pod(self, namespace: str, job: Obj) -> None:
        name = job["metadata"]["name"]
        template = copy.deepcopy(job["spec"]["template"])
        metadata = template.get("metadata") or {}
        metadata.pop("creationTimestamp", None)
        metadata["generateName"] = f"{name}-"
        metadata["name"] = f"{name}-{secrets.token_hex(3)[:5]}"
        metadata["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": name,
                "uid": job["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        spec = template["spec"]
        spec.setdefault("serviceAccountName", "default")
        spec["nodeName"] = NODE_NAME
        pod = self._store().create(
            PODS, namespace, {"metadata": metadata, "spec": spec}, CONTROLLER, False
        )
        self._next_ip = self._next_ip % 250 + 1
        container = spec["containers"][0]
        now = _stamp()
        self._set_status(
            PODS,
            namespace,
            pod["metadata"]["name"],
            {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}
                ],
                "hostIP": NODE_IP,
                "podIP": f"{POD_CIDR_PREFIX}{self._next_ip}",
                "podIPs": [{"ip": f"{POD_CIDR_PREFIX}{self._next_ip}"}],
                "startTime": now,
                "qosClass": _qos(container),
                "containerStatuses": [
                    _container_status(container, {"waiting": {"reason": "ContainerCreating"}})
                ],
            },
        )
        status = dict(job["status"])
        status["active"] = int(status.get("active") or 0) + 1
        self._set_status(JOBS, namespace, name, status)
        self._start(namespace, self._store().get(PODS, namespace, pod["metadata"]["name"]))

    def _start(self, namespace: str, pod: Obj) -> None:
        """Start the pod's container, or leave it waiting with the kubelet's reason."""
        name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
        container = pod["spec"]["containers"][0]
        config = self._config(namespace, pod)
        if config.problem is not None:
            reason, message = config.problem
            status = copy.deepcopy(pod["status"])
            waiting = {"waiting": {"reason": reason, "message": message}}
            status["containerStatuses"] = [_container_status(container, waiting)]
            self._set_status(PODS, namespace, name, status)
            return
        job = self._owner_job(namespace, pod)
        remaining = DEFAULT_RUN_SECONDS
        if job is not None and job["spec"].get("activeDeadlineSeconds") is not None:
            started = self._times.get(job["metadata"]["uid"], time.time())
            remaining = max(0.1, started + job["spec"]["activeDeadlineSeconds"] - time.time())
        with self._output_lock:
            self._logs[uid] = bytearray()

        def on_output(chunk: bytes) -> None:
            with self._output_lock:
                log = self._logs.get(uid)
                if log is not None:
                    log.extend(chunk)

        self._runs[uid] = self.sandbox.launch(
            argv=lambda workdir: _argv(container, config, workdir),
            env=config.env,
            plain_values=config.plain,
            files=config.files,
            timeout=remaining,
            on_start=lambda: self._started(namespace, name, uid),
            on_exit=lambda outcome: self._exited(namespace, name, uid, outcome),
            on_output=on_output,
        )

    def _started(self, namespace: str, name: str, uid: str) -> None:
        with self._lock:
            pod = self._pod(namespace, name, uid)
            if pod is None:
                return
            container = pod["spec"]["containers"][0]
            status = copy.deepcopy(pod["status"])
            now = _stamp()
            status["phase"] = "Running"
            status["conditions"] = [
                {"type": kind, "status": "True", "lastTransitionTime": now}
                for kind in (
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                )
            ]
            running = {"running": {"startedAt": now}}
            status["containerStatuses"] = [_container_status(container, running, ready=True)]
            self._set_status(PODS, namespace, name, status)
            job = self._owner_job(namespace, pod)
            if job is not None:
                self._set_status(
                    JOBS, namespace, job["metadata"]["name"], {**job["status"], "ready": 1}
                )

    def _exited(self, namespace: str, name: str, uid: str, outcome: Outcome) -> None:
        with self._lock:
            self._runs.pop(uid, None)
            with self._output_lock:
                if uid in self._logs:
                    self._logs[uid] = bytearray(outcome.output)
            pod = self._pod(namespace, name, uid)
            if pod is None or outcome.killed:
                return
            job = self._owner_job(namespace, pod)
            if outcome.timed_out and job is not None:
                self._fail(
                    namespace,
                    job,
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                )
                return
            container = pod["spec"]["containers"][0]
            started = _stamp(outcome.started)
            if outcome.exit_code is None:
                text = outcome.output.decode("utf-8", "replace").strip() or (
                    "the emulator runs only python commands (python, python3 ...); "
                    f"not {json.dumps(container.get('command') or [])}"
                )
                code, reason, message = 128, "StartError", text
            else:
                code = outcome.exit_code
                reason, message = ("Completed" if code == 0 else "Error"), ""
            terminated: Obj = {
                "exitCode": code,
                "reason": reason,
                "startedAt": started,
                "finishedAt": _stamp(outcome.finished),
            }
            if message:
                terminated["message"] = message
            status = copy.deepcopy(pod["status"])
            status["phase"] = "Succeeded" if code == 0 else "Failed"
            for condition in status.get("conditions") or []:
                if condition["type"] in ("Ready", "ContainersReady"):
                    condition["status"] = "False"
                    condition["reason"] = "PodCompleted" if code == 0 else "PodFailed"
            state = {"terminated": terminated}
            status["containerStatuses"] = [_container_status(container, state)]
            self._set_status(PODS, namespace, name, status)
            if job is None:
                return
            job_status = {**job["status"], "ready": 0}
            job_status["active"] = max(0, int(job_status.get("active") or 0) - 1)
            job = self._set_status(JOBS, namespace, job["metadata"]["name"], job_status) or job
            if code == 0:
                self._pod_succeeded(namespace, job)
            else:
                self._pod_failed(namespace, job)

    def _pod_succeeded(self, namespace: str, job: Obj) -> None:
        status = dict(job["status"])
        status["succeeded"] = int(status.get("succeeded") or 0) + 1
        if status["succeeded"] < int(job["spec"].get("completions") or 1):
            self._set_status(JOBS, namespace, job["metadata"]["name"], status)
            self._new_pod(namespace, self._store().get(JOBS, namespace, job["metadata"]["name"]))
            return
        end = time.time()
        self._times[f"{job['metadata']['uid']}/end"] = end
        status.pop("active", None)
        status["completionTime"] = _stamp(end)
        status["conditions"] = [
            *(status.get("conditions") or []),
            {
                "type": "Complete",
                "status": "True",
                "lastProbeTime": _stamp(end),
                "lastTransitionTime": _stamp(end),
            },
        ]
        self._set_status(JOBS, namespace, job["metadata"]["name"], status)

    def _pod_failed(self, namespace: str, job: Obj) -> None:
        status = dict(job["status"])
        status["failed"] = int(status.get("failed") or 0) + 1
        status["active"] = 0
        self._set_status(JOBS, namespace, job["metadata"]["name"], status)
        job = self._store().get(JOBS, namespace, job["metadata"]["name"])
        if status["failed"] > int(job["spec"].get("backoffLimit", 6)):
            self._fail(
                namespace,
                job,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            )
        else:
            self._new_pod(namespace, job)

    def _fail(self, namespace: str, job: Obj, reason: str, message: str) -> None:
        """The Job failed: its running pods are stopped and deleted, the condition set."""
        uid = job["metadata"]["uid"]
        store = self._store()
        for pod in self._pods_of(namespace, uid):
            if pod.get("status", {}).get("phase") in ("Pending", "Running"):
                handle = self._runs.pop(pod["metadata"]["uid"], None)
                if handle is not None:
                    handle.kill()
                key = store.key(PODS, namespace, pod["metadata"]["name"])
                store.objects.pop(key, None)
                store.owners.pop(key, None)
        end = time.time()
        self._times[f"{uid}/end"] = end
        status = dict(store.get(JOBS, namespace, job["metadata"]["name"]).get("status") or {})
        status.pop("active", None)
        status["ready"] = 0
        if reason == "DeadlineExceeded":
            status["failed"] = int(status.get("failed") or 0) + 1
        status["conditions"] = [
            *(status.get("conditions") or []),
            {
                "type": "Failed",
                "status": "True",
                "reason": reason,
                "message": message,
                "lastProbeTime": _stamp(end),
                "lastTransitionTime": _stamp(end),
            },
        ]
        self._set_status(JOBS, namespace, job["metadata"]["name"], status)

    # -- the kubelet's config ---------------------------------------------------------------
    def _config(self, namespace: str, pod: Obj) -> _Config:
        config = _Config()
        spec = pod["spec"]
        pod_name = pod["metadata"]["name"]
        if len(spec.get("containers") or []) != 1 or spec.get("initContainers"):
            config.problem = (
                "CreateContainerConfigError",
                "the emulator runs pods with exactly one container and no init containers",
            )
            return config
        container = spec["containers"][0]
        security = {
            **(spec.get("securityContext") or {}),
            **(container.get("securityContext") or {}),
        }
        if security.get("runAsNonRoot") and not security.get("runAsUser"):
            where = f"pod: {json.dumps(pod_name)}, container: {container['name']}"
            reason = (
                "image will run as root"
                if "runAsUser" not in security
                else ("runAsUser breaks non-root policy")
            )
            config.problem = (
                "CreateContainerConfigError",
                f"container has runAsNonRoot and {reason} ({where})",
            )
            return config
        config.env.update(
            {
                "HOSTNAME": pod_name,
                "KUBERNETES_SERVICE_HOST": "10.0.0.1",
                "KUBERNETES_SERVICE_PORT": "443",
            }
        )
        for source in container.get("envFrom") or []:
            if not self._env_from(namespace, source, config):
                return config
        for item in container.get("env") or []:
            if not self._env_item(namespace, pod, item, config):
                return config
        self._volumes(namespace, spec, container, config)
        return config

    def _object(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        return self._store().objects.get(self._store().key(rt, namespace, name))

    def _env_from(self, namespace: str, source: Obj, config: _Config) -> bool:
        prefix = str(source.get("prefix") or "")
        for field, rt, label in (
            ("secretRef", SECRETS, "secret"),
            ("configMapRef", CONFIGMAPS, "configmap"),
        ):
            ref = source.get(field)
            if not isinstance(ref, dict):
                continue
            obj = self._object(rt, namespace, str(ref.get("name")))
            if obj is None:
                if ref.get("optional"):
                    continue
                config.problem = (
                    "CreateContainerConfigError",
                    f'{label} "{ref.get("name")}" not found',
                )
                return False
            for key, value in _data(obj).items():
                config.env[prefix + key] = value
                if rt is CONFIGMAPS:
                    config.plain.append(value)
        return True

    def _env_item(self, namespace: str, pod: Obj, item: Obj, config: _Config) -> bool:
        name = str(item.get("name") or "")
        if "valueFrom" not in item:
            value = str(item.get("value") or "")
            config.env[name] = value
            config.plain.append(value)
            return True
        source = item.get("valueFrom") or {}
        for field, rt, kind, label in (
            ("secretKeyRef", SECRETS, "Secret", "secret"),
            ("configMapKeyRef", CONFIGMAPS, "ConfigMap", "configmap"),
        ):
            ref = source.get(field)
            if not isinstance(ref, dict):
                continue
            obj = self._object(rt, namespace, str(ref.get("name")))
            data = _data(obj) if obj is not None else None
            key = str(ref.get("key"))
            if data is None or key not in data:
                if ref.get("optional"):
                    return True
                message = (
                    f'{label} "{ref.get("name")}" not found'
                    if data is None
                    else f"couldn't find key {key} in {kind} {namespace}/{ref.get('name')}"
                )
                config.problem = ("CreateContainerConfigError", message)
                return False
            config.env[name] = data[key]
            if rt is CONFIGMAPS:
                config.plain.append(data[key])
            return True
        field_ref = source.get("fieldRef")
        if isinstance(field_ref, dict):
            value = _field(pod, str(field_ref.get("fieldPath") or ""))
            config.env[name] = value
            config.plain.append(value)
        return True

    def _volumes(self, namespace: str, spec: Obj, container: Obj, config: _Config) -> None:
        volumes = {v.get("name"): v for v in spec.get("volumes") or [] if isinstance(v, dict)}
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount.get("name"))
            if volume is None:
                config.problem = (
                    "CreateContainerConfigError",
                    f'volume "{mount.get("name")}" not found',
                )
                return
            folder = f"volumes/{volume['name']}"
            for field, rt, label, ref_key in (
                ("configMap", CONFIGMAPS, "configmap", "name"),
                ("secret", SECRETS, "secret", "secretName"),
            ):
                source = volume.get(field)
                if not isinstance(source, dict):
                    continue
                obj = self._object(rt, namespace, str(source.get(ref_key)))
                if obj is None:
                    if not source.get("optional"):
                        config.problem = (
                            "ContainerCreating",
                            f"MountVolume.SetUp failed for volume "
                            f'"{volume["name"]}" : {label} '
                            f'"{source.get(ref_key)}" not found',
                        )
                        return
                    continue
                data = _data(obj)
                items = source.get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    if item.get("key") in data:
                        config.files[f"{folder}/{item['path']}"] = data[item["key"]].encode()
            config.files.setdefault(f"{folder}/.keep", b"")
            sub = str(mount.get("subPath") or "")
            config.mounts.append((str(mount.get("mountPath") or ""), f"{folder}/{sub}".rstrip("/")))

    # -- logs -------------------------------------------------------------------------------
    def log(self, namespace: str, name: str, query: dict[str, str]) -> Response:
        """``GET .../pods/{name}/log``: what the container wrote (stdout and stderr)."""
        pod = self._store().get(PODS, namespace, name)
        containers = [c["name"] for c in pod["spec"].get("containers") or []]
        wanted = query.get("container") or ""
        if not wanted:
            if len(containers) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(containers)}]"
                )
            wanted = containers[0]
        if wanted not in containers:
            raise bad_request(f"container {wanted} is not valid for pod {name}")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        state = next((s.get("state") or {} for s in statuses if s.get("name") == wanted), {})
        if "waiting" in state:
            reason = state["waiting"].get("reason", "")
            raise bad_request(f'container "{wanted}" in pod "{name}" is waiting to start: {reason}')
        with self._output_lock:
            text = bytes(self._logs.get(pod["metadata"]["uid"]) or b"")
        if query.get("tailLines", "").isdigit():
            lines = text.splitlines(keepends=True)
            text = b"".join(lines[-int(query["tailLines"]) :]) if int(query["tailLines"]) else b""
        if query.get("limitBytes", "").isdigit():
            text = text[: int(query["limitBytes"])]
        return Response(200, text, {"Content-Type": "text/plain"})

    # -- store helpers ----------------------------------------------------------------------
    def _set_status(self, rt: ResourceType, namespace: str, name: str, status: Obj) -> Obj | None:
        store = self._store()
        obj = store.objects.get(store.key(rt, namespace, name))
        if obj is None:
            return None
        obj["status"] = status
        obj["metadata"]["resourceVersion"] = store.next_version()
        return obj

    def _pod(self, namespace: str, name: str, uid: str) -> Obj | None:
        pod = self._object(PODS, namespace, name)
        return pod if pod is not None and pod["metadata"]["uid"] == uid else None

    def _owner_job(self, namespace: str, pod: Obj) -> Obj | None:
        for ref in pod["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Job":
                job = self._object(JOBS, namespace, str(ref.get("name")))
                if job is not None and job["metadata"]["uid"] == ref.get("uid"):
                    return job
        return None

    def _forget_missing_pods(self) -> None:
        present = {
            obj["metadata"]["uid"]
            for (plural, _, _), obj in self._store().objects.items()
            if plural == PODS.qualified
        }
        for uid in [u for u in self._runs if u not in present]:
            self._runs.pop(uid).kill()
        with self._output_lock:
            for uid in [u for u in self._logs if u not in present]:
                del self._logs[uid]


def _terminal(status: Obj) -> str | None:
    """The transition time of a Job's Complete/Failed condition, None while it runs."""
    for condition in status.get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition.get("lastTransitionTime") or "")
    return None


def _waiting(pod: Obj) -> bool:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") in _WAITING_REASONS_RETRIED and waiting.get("message"):
            return True
    return False


def _data(obj: Obj) -> dict[str, str]:
    """A Secret's (decoded) or ConfigMap's data as text."""
    if obj.get("kind") == "Secret":
        out = {}
        for key, value in (obj.get("data") or {}).items():
            try:
                out[key] = base64.b64decode(str(value)).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                continue
        return out
    data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
    for key, value in (obj.get("binaryData") or {}).items():
        data[key] = base64.b64decode(str(value)).decode("utf-8", "replace")
    return data


def _field(pod: Obj, path: str) -> str:
    metadata, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace"),
        "metadata.uid": metadata.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    found = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if found:
        return str((metadata.get(found[1]) or {}).get(found[2], ""))
    return ""


def _argv(container: Obj, config: _Config, workdir: Path) -> list[str] | None:
    """The container's command as run here: ``python`` is this interpreter, paths under a
    volume mount point into the run's directory; None when it is not a python command."""
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if not command:
        image = str(container.get("image") or "")
        if "python" not in image.rsplit("/", 1)[-1]:
            return None
        command = ["python3"]  # the python images' CMD
    argv = [*command, *args]
    if not _PYTHON.match(argv[0].rsplit("/", 1)[-1]):
        return None
    mounts = sorted(config.mounts, key=lambda m: len(m[0]), reverse=True)

    def local(arg: str) -> str:
        for mount_path, folder in mounts:
            base = mount_path.rstrip("/")
            if base and (arg == base or arg.startswith(base + "/")):
                return str(workdir / folder) + arg[len(base) :]
        return arg

    return [sys.executable, *(local(a) for a in argv[1:])]
