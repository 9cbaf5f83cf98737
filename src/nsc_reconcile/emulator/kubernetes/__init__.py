"""Kubernetes API subset (the AKS cluster's API server) for the real ``kubernetes`` client.

A pure ``Plane`` with its own state: namespaces, core/v1 services, serviceaccounts, secrets,
configmaps, persistentvolumeclaims, apps/v1 deployments and statefulsets and
networking.k8s.io/v1 ingresses (never given an address: no ingress controller runs);
GET/LIST/POST/PUT/DELETE and PATCH (JSON patch, merge patch, an approximation of strategic
merge, server-side apply) with Kubernetes ``Status`` errors.

Approximations (said plainly): strategic merge merges lists of objects only by the common merge
keys (containers/initContainers/volumes/env/envFrom-less by ``name``, service ports by ``port``,
volumeMounts by ``mountPath``, container ports by ``containerPort``) and honours ``null`` and
``$patch: delete`` in those lists; server-side apply tracks field ownership at leaf granularity
with every list atomic (real SSA merges keyed lists element-wise). The cluster is healthy:
a Deployment's or StatefulSet's pods are all ready at once, a StatefulSet's claims are
created (and bound) at once and kept when it is deleted or scaled down (those pods are not
objects). batch/v1 Jobs run for real: their pods are objects, a pod's container runs as a
local Python subprocess with the VNet's network view (``jobs``, ``../sandbox.py``), pod logs
are served. No watch, no authentication check.

Modules: ``plane`` (routing, ``KubernetesPlane``), ``store`` (objects, resourceVersion, uid),
``defaults`` (per-kind validation and defaults), ``ingress`` (Ingress validation and defaults),
``patches`` (JSON/merge/strategic patch), ``ownership`` (field managers, server-side apply),
``resources`` (served types, discovery), ``errors`` (``Status`` errors), ``bodies`` (request
bodies, field manager), ``jobs`` (Jobs, their pods, pod logs, garbage collection).
"""

from __future__ import annotations

from nsc_reconcile.emulator.kubernetes.defaults import SERVICE_CIDR
from nsc_reconcile.emulator.kubernetes.plane import KubernetesPlane
from nsc_reconcile.emulator.kubernetes.resources import ResourceType

__all__ = ["SERVICE_CIDR", "KubernetesPlane", "ResourceType"]
