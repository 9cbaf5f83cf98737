"""The Secrets Store CSI driver with the Azure Key Vault provider, as the cluster runs it when
the AKS add-on ``azure-keyvault-secrets-provider`` is enabled: SecretProviderClass validation,
and the mount of an inline ``secrets-store.csi.k8s.io`` volume by the pods of a Deployment or
StatefulSet. Reads the ARM world (identities, federated credentials, vaults, role assignments,
Key Vault secrets); writes only the synced Secrets, the workloads' status and Events.

A mount happens once per pod template (a new revision mounts again, as new pods do); it fetches
every object of the class's ``objects`` as the workload identity: the class's ``clientID`` names
a user-assigned identity, whose federated credential must trust the pod's ServiceAccount token
(the world's cluster OIDC issuer, subject ``system:serviceaccount:<ns>:<sa>``); with the world
flag ``enforce_vault_rbac`` the identity needs a Key Vault data role on each secret. Then
``secretObjects`` are synced into Secrets (label ``secrets-store.csi.k8s.io/managed``). A mount
that fails leaves the workload with no ready replica, an ``Available=False`` condition and a
``FailedMount`` Event naming the cause; the kubelet's retry is every sweep (each request).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nsc_reconcile.emulator import vaultrbac
from nsc_reconcile.emulator.kinds.authorization import ASSIGNMENT_TYPE
from nsc_reconcile.emulator.kinds.identity import CREDENTIAL_TYPE, IDENTITY_TYPE
from nsc_reconcile.emulator.kubernetes.errors import invalid, utc_now
from nsc_reconcile.emulator.kubernetes.resources import BY_ROUTE, Obj, ResourceType
from nsc_reconcile.emulator.secrets import SecretError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World
    from nsc_reconcile.emulator.kubernetes.store import Store

DRIVER = "secrets-store.csi.k8s.io"
GROUP = "secrets-store.csi.x-k8s.io"
MANAGER = "secrets-store-csi-driver"
MANAGED_LABEL = "secrets-store.csi.k8s.io/managed"
TOKEN_AUDIENCE = "api://AzureADTokenExchange"
CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
VAULT_TYPE = "Microsoft.KeyVault/vaults"
_WORKLOADS = ("deployments.apps", "statefulsets.apps")


def prepare_provider_class(rt: ResourceType, name: str, obj: Obj) -> None:
    """The CRD's schema: ``spec.provider`` a string, ``parameters`` strings, ``secretObjects``
    a list of ``{secretName, type, data: [{objectName, key}]}``."""
    spec = obj.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("provider"), str):
        raise invalid(rt, name, "spec.provider", "Required value")
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict) or not all(isinstance(v, str) for v in parameters.values()):
        raise invalid(rt, name, "spec.parameters", "Invalid value: must map to strings")
    for index, item in enumerate(spec.get("secretObjects") or []):
        data = item.get("data") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not item.get("secretName") or not isinstance(data, list):
            raise invalid(rt, name, f"spec.secretObjects[{index}]", "Invalid value")


class MountFailed(Exception):
    """A mount the driver could not complete; the message is what the kubelet reports."""


@dataclass
class _Mount:
    ok: bool
    message: str = ""


class CsiDriver:
    """The driver of one cluster; ``world`` None: no Azure behind it (every mount fails)."""

    def __init__(self, world: World | None) -> None:
        self.world = world
        # (plural, namespace, name, uid, template digest) -> the last mount of those pods
        self._mounts: dict[tuple[str, str, str, str, str], _Mount] = {}
        # (plural, namespace, name) of workloads whose status a failed mount made unready
        self._degraded: set[tuple[str, str, str]] = set()

    def reset(self) -> None:
        self._mounts.clear()
        self._degraded.clear()

    # -- the sweep ------------------------------------------------------------------------------
    def sweep(self, store: Store) -> None:
        """Mount what has not been mounted, retry failed mounts, keep each workload's status in
        step with its mount. Idempotent; writes only on a change."""
        current: set[tuple[str, str, str, str, str]] = set()
        for (plural, namespace, name), obj in list(store.objects.items()):
            if plural not in _WORKLOADS or not int(obj["spec"].get("replicas") or 0):
                continue
            template = obj["spec"].get("template") or {}
            classes = _provider_classes(template)
            if not classes:
                continue
            digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
            key = (plural, namespace, name, str(obj["metadata"].get("uid")), digest[:16])
            current.add(key)
            mount = self._mounts.get(key)
            if mount is None or not mount.ok:
                mount = self._mount(store, namespace, name, template, classes)
                if not mount.ok and (self._mounts.get(key) or _Mount(True)).message != (
                    mount.message
                ):
                    _event(store, namespace, obj, mount.message)
                self._mounts[key] = mount
            workload = (plural, namespace, name)
            rt = BY_ROUTE[("apps", "v1", plural.split(".")[0])]
            _keep_status(store, rt, namespace, name, mount, workload in self._degraded)
            if mount.ok:
                self._degraded.discard(workload)
            else:
                self._degraded.add(workload)
        for gone in set(self._mounts) - current:
            del self._mounts[gone]

    # -- one mount ------------------------------------------------------------------------------
    def _mount(
        self, store: Store, namespace: str, workload: str, template: Obj, classes: list[str]
    ) -> _Mount:
        pod = template.get("spec") or {}
        account = str(pod.get("serviceAccountName") or "default")
        try:
            for class_name in classes:
                spc = store.objects.get((f"secretproviderclasses.{GROUP}", namespace, class_name))
                if spc is None:
                    raise MountFailed(
                        f"failed to get secretproviderclass {namespace}/{class_name}, error: "
                        f'secretproviderclasses.{GROUP} "{class_name}" not found'
                    )
                values = self._fetch(namespace, account, spc)
                for synced in spc["spec"].get("secretObjects") or []:
                    _sync(store, namespace, synced, values)
        except MountFailed as failure:
            return _Mount(
                False,
                f'MountVolume.SetUp failed for volume "{_volume(pod)}" : rpc error: code = '
                f"Unknown desc = failed to mount secrets store objects for pod {namespace}/"
                f"{workload}-{_pod_suffix(template)}, "
                f"err: {failure}",
            )
        return _Mount(True)

    def _fetch(self, namespace: str, account: str, spc: Obj) -> dict[str, str]:
        """Every object of ``spc`` by name, read as the workload identity."""
        world = self.world
        if world is None or not any(
            (((c.get("properties") or {}).get("addonProfiles") or {}).get(
                "azureKeyvaultSecretsProvider"
            ) or {}).get("enabled")
            for c in world.list_by_type(CLUSTER_TYPE)
        ):  # fmt: skip
            raise MountFailed(
                f"kubernetes.io/csi: attacher.MountDevice failed to create newCsiDriverClient: "
                f"driver name {DRIVER} not found in the list of registered CSI drivers"
            )
        spec = spc["spec"]
        params = spec.get("parameters") or {}
        if spec.get("provider") != "azure":
            raise MountFailed(f"provider {spec.get('provider')!r} is not installed")
        client_id = str(params.get("clientID") or "")
        caller = self._sign_in(world, client_id, namespace, account)
        vault = next(
            (v for v in world.list_by_type(VAULT_TYPE)
             if str(v.get("name", "")).lower() == str(params.get("keyvaultName", "")).lower()),
            None,
        )  # fmt: skip
        if vault is None:
            raise MountFailed(f"key vault {params.get('keyvaultName')!r} not found")
        tenant = str((vault.get("properties") or {}).get("tenantId") or "")
        if tenant and str(params.get("tenantId") or "").lower() != tenant.lower():
            raise MountFailed(
                f"tenantId {params.get('tenantId')!r} is not the tenant of key vault "
                f"{vault.get('name')} ({tenant})"
            )
        values: dict[str, str] = {}
        for name in _object_names(str(params.get("objects") or "")):
            if world.enforce_vault_rbac:
                refused = vaultrbac.denial(
                    world.list_by_type(ASSIGNMENT_TYPE), vault, caller, "GET", ["secrets", name]
                )
                if refused is not None:
                    raise MountFailed(
                        f"failed to get objectType:secret, objectName:{name}, objectVersion:: "
                        f"GET {vault['name']}/secrets/{name}: StatusCode=403 Code=Forbidden "
                        f"InnerError={{code: {refused[1]}}} Message=" + " ".join(refused[0].split())
                    )
            try:
                record = world.secrets.get(str(vault["name"]), name)
            except SecretError as error:
                raise MountFailed(
                    f"failed to get objectType:secret, objectName:{name}, objectVersion:: "
                    f"StatusCode={error.status} Code={error.body()['error']['code']}"
                ) from None
            values[name] = str(record.get("value") or "")
        return values

    def _sign_in(
        self, world: World, client_id: str, namespace: str, account: str
    ) -> vaultrbac.Caller:
        """Entra ID's token exchange for the pod's ServiceAccount token: the identity with
        ``client_id`` must hold a federated credential for a cluster issuer of the world and
        this subject (AADSTS70021 otherwise)."""
        identity = next(
            (i for i in world.list_by_type(IDENTITY_TYPE)
             if str((i.get("properties") or {}).get("clientId", "")).lower()
             == client_id.lower() and client_id),
            None,
        )  # fmt: skip
        if identity is None:
            raise MountFailed(
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
                "directory"
            )
        issuers = {
            str(((c.get("properties") or {}).get("oidcIssuerProfile") or {}).get("issuerURL"))
            for c in world.list_by_type(CLUSTER_TYPE)
        }
        subject = f"system:serviceaccount:{namespace}:{account}"
        for credential in world.children(str(identity["id"]), CREDENTIAL_TYPE):
            props = credential.get("properties") or {}
            if (
                props.get("subject") == subject
                and props.get("issuer") in issuers
                and TOKEN_AUDIENCE in (props.get("audiences") or [])
            ):
                break
        else:
            raise MountFailed(
                "AADSTS70021: No matching federated identity record found for presented "
                f"assertion. Assertion Subject: '{subject}'. Assertion Audience: "
                f"'{TOKEN_AUDIENCE}' (identity {identity.get('name')})"
            )
        props = identity.get("properties") or {}
        return vaultrbac.Caller(
            str(props.get("principalId", "")), client_id, str(props.get("tenantId", ""))
        )


# --------------------------------------------------------------------------- helpers
def _provider_classes(template: Obj) -> list[str]:
    """The SecretProviderClasses the pod template's CSI volumes of this driver name."""
    found = []
    for volume in (template.get("spec") or {}).get("volumes") or []:
        csi = volume.get("csi") if isinstance(volume, dict) else None
        if isinstance(csi, dict) and csi.get("driver") == DRIVER:
            found.append(str((csi.get("volumeAttributes") or {}).get("secretProviderClass")))
    return found


def _pod_suffix(template: Obj) -> str:
    """A stable pod name suffix for messages (pods are not objects here)."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:5]


def _volume(pod: Obj) -> str:
    for volume in pod.get("volumes") or []:
        if ((volume or {}).get("csi") or {}).get("driver") == DRIVER:
            return str(volume.get("name"))
    return ""


def _object_names(objects: str) -> list[str]:
    """``objectName``s of the provider's ``objects`` parameter (``array:`` of YAML strings)."""
    from ruamel.yaml import YAML

    try:
        loaded = YAML(typ="safe", pure=True).load(objects) or {}
        names = []
        for entry in loaded.get("array") or []:
            item = YAML(typ="safe", pure=True).load(entry) if isinstance(entry, str) else entry
            if str(item.get("objectType") or "secret") == "secret":
                names.append(str(item["objectName"]))
        return names
    except Exception as exc:  # the provider reports any malformed objects parameter
        raise MountFailed(f"failed to unmarshal objects: {type(exc).__name__}") from None


def _sync(store: Store, namespace: str, synced: Obj, values: dict[str, str]) -> None:
    """Create or update the Secret ``synced`` describes (only when its data differ)."""
    secrets = BY_ROUTE[("", "v1", "secrets")]
    data = {}
    for item in synced.get("data") or []:
        name = str(item.get("objectName"))
        if name not in values:
            raise MountFailed(f"file matching objectName {name} not found in the pod")
        data[str(item.get("key"))] = base64.b64encode(values[name].encode()).decode()
    name = str(synced["secretName"])
    body: Obj = {
        "metadata": {
            "name": name,
            "labels": {**(synced.get("labels") or {}), MANAGED_LABEL: "true"},
        },
        "type": synced.get("type") or "Opaque",
        "data": data,
    }
    old = store.objects.get(store.key(secrets, namespace, name))
    if old is None:
        store.create(secrets, namespace, body, MANAGER, False)
    elif old.get("data") != data:
        new = copy.deepcopy(old)
        new["data"] = data
        new["metadata"].setdefault("labels", {})[MANAGED_LABEL] = "true"
        store.replace(secrets, namespace, name, new, MANAGER, False)


def _keep_status(
    store: Store, rt: ResourceType, namespace: str, name: str, mount: _Mount, degraded: bool
) -> None:
    """A failed mount: no ready replica, ``Available=False`` naming the cause (written only
    when it differs). A mount that worked leaves the status the controller computed, or, when
    this driver ``degraded`` it, makes every replica ready again."""
    obj = store.objects[store.key(rt, namespace, name)]
    status: Obj = obj.setdefault("status", {})
    replicas = int(obj["spec"].get("replicas") or 0)
    if mount.ok:
        if degraded and status.get("readyReplicas") != replicas:  # recovered
            status.update(readyReplicas=replicas, availableReplicas=replicas)
            status.pop("unavailableReplicas", None)
            status["conditions"] = [
                c for c in status.get("conditions") or [] if c.get("type") != "Available"
            ] + [_available(True, "MinimumReplicasAvailable", "Deployment has minimum "
                            "availability.")]  # fmt: skip
            obj["metadata"]["resourceVersion"] = store.next_version()
        return
    wanted = _available(False, "MinimumReplicasUnavailable", mount.message)
    conditions: list[Obj] = status.get("conditions") or []
    current: Obj = next((c for c in conditions if c.get("type") == "Available"), {})
    if status.get("readyReplicas") == 0 and current.get("message") == mount.message:
        return
    status["readyReplicas"] = 0
    status["availableReplicas"] = 0
    status["unavailableReplicas"] = replicas
    status["conditions"] = [
        c for c in status.get("conditions") or [] if c.get("type") != "Available"
    ] + [wanted]
    obj["metadata"]["resourceVersion"] = store.next_version()


def _available(ok: bool, reason: str, message: str) -> Obj:
    now = utc_now()
    return {
        "type": "Available",
        "status": "True" if ok else "False",
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def _event(store: Store, namespace: str, obj: Obj, message: str) -> None:
    """A ``FailedMount`` warning Event about the workload (pods are not objects here)."""
    events = BY_ROUTE[("", "v1", "events")]
    meta = obj["metadata"]
    now = utc_now()
    body: Obj = {
        "metadata": {"generateName": f"{meta['name']}."},
        "involvedObject": {
            "kind": obj.get("kind"),
            "namespace": namespace,
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": obj.get("apiVersion"),
        },
        "reason": "FailedMount",
        "message": message,
        "type": "Warning",
        "source": {"component": "kubelet"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    store.create(events, namespace, body, "kubelet", False)
