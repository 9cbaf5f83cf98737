"""The check ``secrets-delivery/<workload>``: how the LangFuse pods get their Key Vault values
when the workload declares a workload identity (``langfuse.identity``) and, with
``secrets_delivery: csi``, the Secrets Store CSI driver. Reads the cluster (GET/LIST only) and
the identity as read from ARM; never a secret value (only the Secret's key names).
"""

from __future__ import annotations

from typing import Any

from nsc_reconcile.resources.langfuse_manifests import (
    CLIENT_ID_ANNOTATION,
    CSI_DRIVER,
    DEPENDENCIES,
    USE_LABEL,
    dependency_name,
    provider_class_name,
    secret_keys,
    secret_name,
    uses_csi,
)
from nsc_reconcile.verification.context import Run, make_check
from nsc_reconcile.verification.results import Check
from nsc_reconcile.verification.workload import kube_of, list_in

SPC_GROUP = "secrets-store.csi.x-k8s.io"
SPC_PLURAL = "secretproviderclasses"
MANAGED_LABEL = "secrets-store.csi.k8s.io/managed"  # on a Secret the driver synced


def check_secrets_delivery(run: Run) -> Check:
    """The ServiceAccount names the identity's client id and every pod template carries the
    workload identity label; with ``csi``: the SecretProviderClass is as declared, the synced
    Secret holds every key the pods reference, and the pods that mount it are ready (else the
    mount's failure: the ``Available`` condition and the last ``FailedMount`` Event)."""
    langfuse = run.state.langfuse
    assert langfuse is not None
    evidence: list[str] = []
    problems: list[str] = []
    api = kube_of(run)
    workloads = _workloads(api, langfuse, problems)
    client_id = _client_id(run, str(langfuse.identity), evidence, problems)
    _check_identity(api, langfuse, workloads, client_id, evidence, problems)
    if uses_csi(langfuse):
        _check_provider_class(run, api, langfuse, client_id, evidence, problems)
        _check_synced_secret(api, langfuse, workloads, evidence, problems)
        _check_mounts(api, langfuse, workloads, evidence, problems)
    mode = langfuse.secrets_delivery
    title = f"LangFuse gets its Key Vault values ({mode}) as its workload identity"
    return make_check(f"secrets-delivery/{langfuse.name}", title, evidence, problems)


def _workloads(api: Any, langfuse: Any, problems: list[str]) -> dict[tuple[str, str], Any]:
    """(kind, name) -> the live Deployment or StatefulSet, for each the workload declares."""
    from kubernetes import client as k8s

    apps = k8s.AppsV1Api(api)
    ns = langfuse.namespace
    found = {("Deployment", d.metadata.name): d
             for d in list_in(apps.list_namespaced_deployment, ns) or []}  # fmt: skip
    found.update({("StatefulSet", s.metadata.name): s
                  for s in list_in(apps.list_namespaced_stateful_set, ns) or []})  # fmt: skip
    wanted = [("Deployment", langfuse.web.name), ("Deployment", langfuse.worker.name)]
    wanted += [("StatefulSet", dependency_name(langfuse, d)) for d in DEPENDENCIES]
    out = {}
    for key in wanted:
        if key in found:
            out[key] = found[key]
        else:
            problems.append(f"{key[0]} {ns}/{key[1]} does not exist")
    return out


def _client_id(run: Run, identity: str, evidence: list[str], problems: list[str]) -> str | None:
    address = f"user_assigned_identity/{identity}"
    live = run.live(address)
    client_id = live.fields.get("properties.clientId") if live is not None else None
    if not client_id:
        problems.append(f"{address} does not exist (its client id is what the pods sign in as)")
        return None
    evidence.append(f"{address} clientId={client_id}")
    return str(client_id)


def _get(call: Any, *args: Any) -> Any:
    """One GET; None when the API answers 404."""
    from kubernetes.client.exceptions import ApiException

    try:
        return call(*args)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _check_identity(
    api: Any,
    langfuse: Any,
    workloads: dict[tuple[str, str], Any],
    client_id: str | None,
    evidence: list[str],
    problems: list[str],
) -> None:
    """azure-workload-identity docs, "Service Account Labels and Annotations": the webhook
    injects the token and AZURE_* only into labelled pods of an annotated ServiceAccount."""
    from kubernetes import client as k8s

    ns, name = langfuse.namespace, langfuse.name
    account = _get(k8s.CoreV1Api(api).read_namespaced_service_account, name, ns)
    if account is None:
        problems.append(f"ServiceAccount {ns}/{name} does not exist")
    else:
        annotated = (account.metadata.annotations or {}).get(CLIENT_ID_ANNOTATION)
        evidence.append(f"ServiceAccount {ns}/{name} {CLIENT_ID_ANNOTATION}={annotated}")
        if client_id is not None and annotated != client_id:
            problems.append(
                f"ServiceAccount {ns}/{name} has {CLIENT_ID_ANNOTATION}={annotated}, not the "
                f"identity's client id {client_id}"
            )
    unlabelled, other_account = [], []
    for (kind, workload), obj in workloads.items():
        template = obj.spec.template
        labels = (template.metadata.labels if template.metadata else None) or {}
        if labels.get(USE_LABEL) != "true":
            unlabelled.append(f"{kind} {workload}")
        if (template.spec.service_account_name or "default") != name:
            other_account.append(f"{kind} {workload}={template.spec.service_account_name}")
    evidence.append(f'{len(workloads) - len(unlabelled)}/{len(workloads)} pod templates '
                    f'labelled {USE_LABEL}="true"')  # fmt: skip
    if unlabelled:
        problems.append(f'pod template(s) without {USE_LABEL}: "true" (no token injected): '
                        + ", ".join(unlabelled))  # fmt: skip
    if other_account:
        problems.append(f"pods not running as ServiceAccount {name}: " + ", ".join(other_account))


def _check_provider_class(
    run: Run,
    api: Any,
    langfuse: Any,
    client_id: str | None,
    evidence: list[str],
    problems: list[str],
) -> None:
    """secrets-store-csi-driver-provider-azure docs, "Workload Identity": provider ``azure``,
    ``clientID`` the identity, ``keyvaultName``, ``tenantId``, ``objects``, ``secretObjects``."""
    from kubernetes import client as k8s

    ns, name = langfuse.namespace, provider_class_name(langfuse)
    custom = k8s.CustomObjectsApi(api)
    spc = _get(custom.get_namespaced_custom_object, SPC_GROUP, "v1", ns, SPC_PLURAL, name)
    if spc is None:
        problems.append(f"SecretProviderClass {ns}/{name} does not exist")
        return
    spec = spc.get("spec") or {}
    params = spec.get("parameters") or {}
    vault = run.live(f"key_vault/{langfuse.key_vault}")
    tenant = vault.fields.get("properties.tenantId") if vault is not None else None
    expected = {
        "provider": ("azure", spec.get("provider")),
        "clientID": (client_id, params.get("clientID")),
        "keyvaultName": (langfuse.key_vault, params.get("keyvaultName")),
        "tenantId": (tenant, params.get("tenantId")),
    }
    wrong = [
        f"{field}={actual} (expected {wanted})"
        for field, (wanted, actual) in expected.items()
        if wanted is not None and str(actual or "").lower() != str(wanted).lower()
    ]
    names = _object_names(str(params.get("objects") or ""))
    wanted_names = sorted(set(secret_keys(langfuse).values()))
    evidence.append(
        f"SecretProviderClass {ns}/{name}: provider={spec.get('provider')} "
        f"clientID={params.get('clientID')} keyvaultName={params.get('keyvaultName')} "
        f"objects={','.join(names) if names is not None else 'unreadable'}"
    )
    if wrong:
        problems.append(f"SecretProviderClass {ns}/{name}: " + ", ".join(wrong))
    if names is None:
        problems.append(f"SecretProviderClass {ns}/{name}: parameters.objects is not readable")
    elif missing := [n for n in wanted_names if n not in names]:
        problems.append(f"SecretProviderClass {ns}/{name} does not fetch " + ", ".join(missing))
    synced = next((s for s in spec.get("secretObjects") or []
                   if s.get("secretName") == secret_name(langfuse)), None)  # fmt: skip
    mapped = {str(d.get("key")): str(d.get("objectName")) for d in (synced or {}).get("data") or []}
    unmapped = [
        f"{key} <- {source}"
        for key, source in sorted(secret_keys(langfuse).items())
        if mapped.get(key) != source
    ]
    if unmapped:
        problems.append(
            f"SecretProviderClass {ns}/{name} does not sync into Secret {secret_name(langfuse)}: "
            + ", ".join(unmapped)
        )


def _object_names(objects: str) -> list[str] | None:
    """``objectName``s of the provider's ``objects`` parameter (``array:`` of YAML strings, as
    the provider reads it); None when it is not that shape."""
    from ruamel.yaml import YAML

    try:
        loaded = YAML(typ="safe", pure=True).load(objects) or {}
        names = []
        for entry in loaded.get("array") or []:
            item = YAML(typ="safe", pure=True).load(entry) if isinstance(entry, str) else entry
            if str(item.get("objectType") or "secret") == "secret":
                names.append(str(item["objectName"]))
        return names
    except Exception:  # any malformed parameter: reported, never raised
        return None


def _check_synced_secret(
    api: Any,
    langfuse: Any,
    workloads: dict[tuple[str, str], Any],
    evidence: list[str],
    problems: list[str],
) -> None:
    """The Secret the driver syncs holds every key the pods' ``secretKeyRef``s name (key names
    only: its values are dropped as soon as it is read)."""
    from kubernetes import client as k8s

    ns, name = langfuse.namespace, secret_name(langfuse)
    secret = _get(k8s.CoreV1Api(api).read_namespaced_secret, name, ns)
    exists = secret is not None
    keys = set((secret.data or {}).keys()) if secret is not None else set()
    labels = (secret.metadata.labels or {}) if secret is not None else {}
    del secret  # never kept: only key names are used
    referenced: dict[str, list[str]] = {}
    for (kind, workload), obj in workloads.items():
        for container in obj.spec.template.spec.containers or []:
            for item in container.env or []:
                ref = item.value_from.secret_key_ref if item.value_from else None
                if ref is not None and ref.name == name and not ref.optional:
                    referenced.setdefault(ref.key, []).append(f"{kind} {workload}")
    if not exists:
        problems.append(
            f"Secret {ns}/{name} does not exist (the CSI driver syncs it when a pod mounts "
            "the volume)"
        )
        return
    by = "synced by the CSI driver" if labels.get(MANAGED_LABEL) == "true" else (
        f"not labelled {MANAGED_LABEL}: not synced by the CSI driver")  # fmt: skip
    evidence.append(f"Secret {ns}/{name} ({by}): {len(keys)} keys, "
                    f"{len(referenced)} referenced by the pods")  # fmt: skip
    missing = sorted(key for key in referenced if key not in keys)
    if missing:
        problems.append(
            f"Secret {ns}/{name} lacks key(s) the pods reference: "
            + ", ".join(f"{key} ({', '.join(sorted(set(referenced[key])))})" for key in missing)
        )


def _check_mounts(
    api: Any,
    langfuse: Any,
    workloads: dict[tuple[str, str], Any],
    evidence: list[str],
    problems: list[str],
) -> None:
    """Every pod template mounts the SecretProviderClass, and its pods are ready; a workload
    that is not ready says why (its ``Available`` condition, its last ``FailedMount``)."""
    from kubernetes import client as k8s

    ns, spc = langfuse.namespace, provider_class_name(langfuse)
    events = list_in(k8s.CoreV1Api(api).list_namespaced_event, ns) or []
    failed_mounts: dict[str, str] = {}
    for event in events:  # listed oldest first: the last one per object wins
        if event.reason == "FailedMount" and event.involved_object is not None:
            failed_mounts[str(event.involved_object.name)] = str(event.message or "")
    ready_count = 0
    for (kind, workload), obj in workloads.items():
        volumes = obj.spec.template.spec.volumes or []
        mounts = [
            v
            for v in volumes
            if v.csi is not None
            and v.csi.driver == CSI_DRIVER
            and (v.csi.volume_attributes or {}).get("secretProviderClass") == spc
        ]
        if not mounts:
            problems.append(f"{kind} {workload} does not mount SecretProviderClass {spc}")
        replicas = obj.spec.replicas if obj.spec.replicas is not None else 1
        ready = (obj.status.ready_replicas if obj.status is not None else None) or 0
        if ready >= replicas:
            ready_count += 1
            continue
        why = [f"{kind} {workload}: {ready}/{replicas} ready"]
        conditions = (obj.status.conditions if obj.status is not None else None) or []
        available = next((c for c in conditions if c.type == "Available"), None)
        if available is not None and available.status == "False" and available.message:
            why.append(f"Available=False: {available.message}")
        event = failed_mounts.get(workload)
        if event and (available is None or event != available.message):
            why.append(f"FailedMount: {event}")
        problems.append(" ".join(why))
    evidence.append(f"{ready_count}/{len(workloads)} workloads mounting {spc} ready")
