"""Checks of LangFuse on AKS (seed §3.6 / §6): an internal ClusterIP Service with no external
exposure, and ready workloads. Reads the cluster through the kubernetes client (LIST only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nsc_reconcile.verification.context import Run, make_check, rg_of
from nsc_reconcile.verification.results import Check


def kube_of(run: Run) -> Any:
    """A kubernetes ApiClient for the LangFuse cluster (one per run)."""
    if "kube" not in run.cache:
        langfuse = run.state.langfuse
        assert langfuse is not None
        cluster = run.live(f"aks_cluster/{langfuse.cluster}")
        if cluster is None:
            raise LookupError(f"aks_cluster/{langfuse.cluster} does not exist")
        run.cache["kube"] = run.clients.kubernetes_api_client(rg_of(cluster.id), langfuse.cluster)
    return run.cache["kube"]


def list_in(call: Callable[..., Any], namespace: str) -> list[Any] | None:
    """Items of a namespaced LIST; None when the API answers 404 (not served)."""
    from kubernetes.client.exceptions import ApiException

    try:
        return list(call(namespace).items or [])
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def check_langfuse_internal(run: Run) -> Check:
    """Seed §3.6 / §6: LangFuse is an internal AKS service: ``langfuse-internal`` is ClusterIP,
    no LoadBalancer/NodePort Service, no external IPs and no Ingress in the namespace."""
    from kubernetes import client as k8s

    langfuse = run.state.langfuse
    assert langfuse is not None
    ns = langfuse.namespace
    check_id = f"langfuse-internal/{langfuse.name}"
    title = f"LangFuse Service {langfuse.service.name} is ClusterIP, no external exposure in {ns}"
    api = kube_of(run)
    services = list_in(k8s.CoreV1Api(api).list_namespaced_service, ns) or []
    problems = []
    evidence = []
    ours = next((s for s in services if s.metadata.name == langfuse.service.name), None)
    if ours is None:
        problems.append(f"Service {langfuse.service.name} does not exist in namespace {ns}")
    else:
        ports = ",".join(str(p.port) for p in ours.spec.ports or [])
        evidence.append(
            f"Service {ns}/{ours.metadata.name}: type={ours.spec.type} "
            f"clusterIP={ours.spec.cluster_ip} ports={ports}"
        )
        if ours.spec.type != "ClusterIP":
            problems.append(
                f"Service {ours.metadata.name} is {ours.spec.type} (expected ClusterIP)"
            )
    exposed = [
        f"{s.metadata.name}={s.spec.type}"
        for s in services
        if s.spec.type in ("LoadBalancer", "NodePort") and s.metadata.name != langfuse.service.name
    ]
    external = [f"{s.metadata.name}={_external_ips(s)}" for s in services if _external_ips(s)]
    listed = ", ".join(f"{s.metadata.name}={s.spec.type}" for s in services)
    evidence.append(f"Services in {ns}: {listed or 'none'}")
    if exposed:
        adopted = set(langfuse.adopt_services)
        left = [e for e in exposed if e.split("=", 1)[0] not in adopted]
        problems.append(
            "exposed Service(s): "
            + ", ".join(exposed)
            + (
                " (not declared by the workload, so apply leaves them alone: make them "
                "ClusterIP or remove them, or list them in adopt_services)"
                if left
                else " (adopted: apply switches them to ClusterIP)"
            )
        )
    if external:
        problems.append("Service(s) with external IPs: " + ", ".join(external))
    ingresses = list_in(k8s.NetworkingV1Api(api).list_namespaced_ingress, ns)
    if ingresses is None:
        evidence.append("Ingress: none (the Ingress API answers 404: not served)")
    elif ingresses:
        names = ", ".join(i.metadata.name for i in ingresses)
        evidence.append(f"Ingress: {names}")
        problems.append(
            f"Ingress present: {names} (nsc-reconcile never changes an Ingress: remove it)"
        )
    else:
        evidence.append("Ingress: none")
    return make_check(check_id, title, evidence, problems)


def _external_ips(service: Any) -> list[str]:
    spec = service.spec
    return list(getattr(spec, "external_ips", None) or getattr(spec, "external_i_ps", None) or [])


def check_langfuse_ready(run: Run) -> Check:
    """Seed §3.6: the LangFuse Deployments (and its in-cluster StatefulSets) are ready."""
    from kubernetes import client as k8s

    from nsc_reconcile.resources.langfuse_manifests import DEPENDENCIES, dependency_name

    langfuse = run.state.langfuse
    assert langfuse is not None
    ns = langfuse.namespace
    check_id = f"langfuse-ready/{langfuse.name}"
    title = f"LangFuse workloads in {ns} are ready (readyReplicas == replicas)"
    apps = k8s.AppsV1Api(kube_of(run))
    wanted = [
        ("Deployment", langfuse.web.name),
        ("Deployment", langfuse.worker.name),
        *(("StatefulSet", dependency_name(langfuse, d)) for d in DEPENDENCIES),
    ]
    found = {
        ("Deployment", d.metadata.name): d
        for d in list_in(apps.list_namespaced_deployment, ns) or []
    }
    found.update(
        {
            ("StatefulSet", s.metadata.name): s
            for s in list_in(apps.list_namespaced_stateful_set, ns) or []
        }
    )
    evidence = []
    problems = []
    for kind, name in wanted:
        obj = found.get((kind, name))
        if obj is None:
            problems.append(f"{kind} {name} does not exist")
            continue
        replicas = obj.spec.replicas if obj.spec.replicas is not None else 1
        ready = (obj.status.ready_replicas if obj.status is not None else None) or 0
        evidence.append(f"{kind} {name} {ready}/{replicas} ready")
        if ready != replicas:
            problems.append(f"{kind} {name}: {ready}/{replicas} ready")
    return make_check(check_id, title, evidence, problems)
