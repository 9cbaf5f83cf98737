"""AKS managed clusters and container registries, enough for reads and credentials.

A cluster reports its FQDNs, versions, pools and network profile, and ``listClusterUserCredential``
returns a kubeconfig pointing at the emulator's Kubernetes plane (``world.urls["kubernetes"]``).
A cluster also shows its kubelet identity (a user-assigned identity AKS makes in the node resource
group), its OIDC issuer, workload identity and Key Vault CSI add-on profiles.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from nsc_reconcile.emulator.kinds.base import BOTH, LOCATION, Kind, Reply, Resource
from nsc_reconcile.emulator.kinds.identity import TENANT_ID as IDENTITY_TENANT_ID
from nsc_reconcile.emulator.protocol import ArmError, Request, Response
from nsc_reconcile.emulator.registry import import_image

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
REGISTRY_TYPE = "Microsoft.ContainerRegistry/registries"
DEFAULT_KUBERNETES_VERSION = "1.32.6"
_REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
_REGISTRY_SKUS = {"basic", "standard", "premium"}


def _region(location: str) -> str:
    return location.replace(" ", "").lower()


def _resource_group(rid: str) -> str:
    return rid.split("/")[4]


def _subnet_exists(world: World, subnet_id: str) -> bool:
    """Whether the subnet exists, as its own resource or inline in its virtual network."""
    if world.get(subnet_id) is not None:
        return True
    vnet_id, _, name = subnet_id.rstrip("/").rpartition("/subnets/")
    vnet = world.get(vnet_id) if vnet_id else None
    subnets = (vnet or {}).get("properties", {}).get("subnets") or []
    return any(str(s.get("name", "")).lower() == name.lower() for s in subnets)


class ManagedCluster(Kind):
    """``Microsoft.ContainerService/managedClusters``: an AKS cluster (private or public)."""

    type = CLUSTER_TYPE
    etag_field = False  # not in the type's REST schema (oav: OBJECT_ADDITIONAL_PROPERTIES)
    on_create = Reply(201, BOTH)
    on_update = Reply(200, BOTH)
    on_delete = Reply(202, BOTH)

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties") or {}
        pools = props.get("agentPoolProfiles") or (existing or {}).get("properties", {}).get(
            "agentPoolProfiles"
        )
        if not pools:
            raise ArmError(
                400,
                "InvalidParameter",
                "The value of parameter agentPoolProfiles is invalid: at least one agent pool "
                "is required.",
            )
        if not any(str(p.get("mode", "System")) == "System" for p in pools):
            raise ArmError(
                400,
                "InvalidParameter",
                "A cluster must have at least one agent pool with mode 'System'.",
            )
        for pool in pools:
            subnet = pool.get("vnetSubnetID")
            if subnet and not _subnet_exists(world, str(subnet)):
                raise ArmError(
                    400, "InvalidParameter", f"The subnet '{subnet}' of pool was not found."
                )
        oidc = props.get("oidcIssuerProfile") or (existing or {}).get("properties", {}).get(
            "oidcIssuerProfile"
        )
        security = props.get("securityProfile") or (existing or {}).get("properties", {}).get(
            "securityProfile"
        )
        workload = ((security or {}).get("workloadIdentity") or {}).get("enabled")
        if workload and not (oidc or {}).get("enabled"):
            raise ArmError(
                400,
                "InvalidParameter",  # AKS refuses workload identity without the OIDC issuer
                "Enabling workload identity requires enabling OIDC issuer profile.",
            )
        old_private = (
            (existing or {}).get("properties", {}).get("apiServerAccessProfile") or {}
        ).get("enablePrivateCluster")
        new_private = (props.get("apiServerAccessProfile") or {}).get("enablePrivateCluster")
        if (
            existing is not None
            and new_private is not None
            and bool(new_private) != bool(old_private)
        ):
            raise ArmError(
                400,
                "PropertyChangeNotAllowed",
                "Changing property 'apiServerAccessProfile.enablePrivateCluster' is not allowed.",
            )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        name = rid.rsplit("/", 1)[1]
        region = _region(str(resource.get("location", "")))
        props = resource.setdefault("properties", {})
        old = (existing or {}).get("properties", {})
        version = str(props.get("kubernetesVersion") or old.get("kubernetesVersion") or "")
        version = version or DEFAULT_KUBERNETES_VERSION
        props["kubernetesVersion"] = version
        props["currentKubernetesVersion"] = version
        prefix = str(props.get("dnsPrefix") or old.get("dnsPrefix") or f"{name}-dns")
        props["dnsPrefix"] = prefix
        suffix = hashlib.sha256(rid.lower().encode()).hexdigest()[:8]
        access = props.setdefault("apiServerAccessProfile", {})
        private = bool(access.get("enablePrivateCluster", False))
        access["enablePrivateCluster"] = private
        if private:
            access.setdefault("privateDNSZone", "system")
            access.setdefault("enablePrivateClusterPublicFQDN", True)
            guid = str(uuid.UUID(hashlib.md5(rid.lower().encode()).hexdigest()))
            props["privateFQDN"] = f"{prefix}-{suffix}.{guid}.privatelink.{region}.azmk8s.io"
            if access["enablePrivateClusterPublicFQDN"]:
                props["fqdn"] = f"{prefix}-{suffix}.{guid}.privatelink.{region}.azmk8s.io"
            props["azurePortalFQDN"] = f"{prefix}-{suffix}.portal.hcp.{region}.azmk8s.io"
        else:
            props.pop("privateFQDN", None)
            props["fqdn"] = f"{prefix}-{suffix}.hcp.{region}.azmk8s.io"
            props["azurePortalFQDN"] = f"{prefix}-{suffix}.portal.hcp.{region}.azmk8s.io"
        for pool in props.get("agentPoolProfiles") or []:
            pool.setdefault("count", 1)
            pool.setdefault("vmSize", "Standard_D4ds_v5")
            pool.setdefault("osType", "Linux")
            pool.setdefault("osSKU", "Ubuntu")
            pool.setdefault("mode", "System")
            pool.setdefault("type", "VirtualMachineScaleSets")
            pool.setdefault("osDiskSizeGB", 128)
            pool.setdefault("maxPods", 250)
            pool["orchestratorVersion"] = pool.get("orchestratorVersion") or version
            pool["currentOrchestratorVersion"] = pool["orchestratorVersion"]
            pool["provisioningState"] = "Succeeded"
            pool["powerState"] = {"code": "Running"}
            pool["nodeImageVersion"] = "AKSUbuntu-2204gen2containerd-202507.21.0"
        network = props.setdefault("networkProfile", {})
        network.setdefault("networkPlugin", "azure")
        if network["networkPlugin"] == "azure":
            network.setdefault("networkPluginMode", "overlay")
            network.setdefault("podCidr", "10.244.0.0/16")
        network.setdefault("serviceCidr", "10.0.0.0/16")
        network.setdefault("dnsServiceIP", "10.0.0.10")
        network.setdefault("loadBalancerSku", "standard")
        network.setdefault("outboundType", "loadBalancer")
        network.setdefault("ipFamilies", ["IPv4"])
        props.setdefault("nodeResourceGroup", f"MC_{_resource_group(rid)}_{name}_{region}")
        props.setdefault("enableRBAC", True)
        props["powerState"] = {"code": "Running"}
        props["maxAgentPools"] = 100
        props.setdefault("supportPlan", "KubernetesOfficial")
        # Recorded GETs always carry a sku (Test_AKS_ManagedCluster_*); without one asked for,
        # AKS gives the Free tier of Base.
        resource["sku"] = (
            resource.get("sku") or (existing or {}).get("sku") or {"name": "Base", "tier": "Free"}
        )
        identity = resource.get("identity")
        if isinstance(identity, dict) and identity.get("type") == "SystemAssigned":
            old_identity = (existing or {}).get("identity") or {}
            identity["principalId"] = old_identity.get("principalId") or str(uuid.uuid4())
            identity["tenantId"] = old_identity.get("tenantId") or str(uuid.uuid4())
        _identity_profiles(world, rid, props, old, region)

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        props = resource.get("properties") or {}
        identities = [(props.get("identityProfile") or {}).get("kubeletidentity")]
        for addon in (props.get("addonProfiles") or {}).values():
            identities.append((addon or {}).get("identity"))
        node_group = f"/subscriptions/{world.subscription_id}/resourceGroups/" + str(
            props.get("nodeResourceGroup", "")
        )
        for entry in identities:
            if not isinstance(entry, dict) or not entry.get("resourceId"):
                continue
            identity_id = str(entry["resourceId"])
            if world.get(identity_id) is not None:
                continue
            # AKS makes its managed identities in the node resource group (MC_...).
            if world.get(node_group) is None:
                world.put(node_group, {"location": resource.get("location"), "properties": {}})
            world.put(
                identity_id,
                {
                    "location": resource.get("location"),
                    "tags": {},
                    "properties": {
                        "tenantId": IDENTITY_TENANT_ID,
                        "principalId": entry["objectId"],
                        "clientId": entry["clientId"],
                    },
                },
            )

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        group = str((resource.get("properties") or {}).get("nodeResourceGroup", ""))
        if group:  # AKS deletes the node resource group with the cluster
            world.delete(f"/subscriptions/{world.subscription_id}/resourceGroups/{group}")

    def action(self, world: World, rid: str, name: str, body: Any) -> Any:
        lowered = name.lower()
        if lowered in ("listclusterusercredential", "listclusteradmincredential"):
            cluster = world.get(rid) or {}
            user = "clusterUser" if lowered == "listclusterusercredential" else "clusterAdmin"
            kubeconfig = _kubeconfig(world, rid, cluster, user)
            return {"kubeconfigs": [{"name": user, "value": kubeconfig}]}
        return super().action(world, rid, name, body)


def _made_identity(world: World, group: str, name: str) -> dict[str, str]:
    """A user-assigned identity AKS makes in its node resource group (``UserAssignedIdentity``
    of the AKS spec: resourceId, clientId, objectId); created by ``after_write``."""
    return {
        "resourceId": f"/subscriptions/{world.subscription_id}/resourcegroups/{group}/providers/"
        f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        "clientId": world.new_guid(),
        "objectId": world.new_guid(),
    }


def _identity_profiles(world: World, rid: str, props: Resource, old: Resource, region: str) -> None:
    """The kubelet identity, OIDC issuer, workload identity and Key Vault CSI add-on as AKS
    shows them: ``identityProfile.kubeletidentity`` is ``{cluster}-agentpool`` in the node
    resource group unless one was given; the issuer URL is
    ``https://{region}.oic.prod-aks.azure.com/{tenant}/{guid}/`` once enabled (never removed);
    the add-on's identity is ``azurekeyvaultsecretsprovider-{cluster}``."""
    name = rid.rsplit("/", 1)[1]
    group = str(props["nodeResourceGroup"])
    profile = props.get("identityProfile") or old.get("identityProfile") or {}
    kubelet = profile.get("kubeletidentity")
    if not isinstance(kubelet, dict) or not kubelet.get("objectId"):
        given = world.get(str(kubelet.get("resourceId"))) if isinstance(kubelet, dict) else None
        if given is not None:  # a user-assigned kubelet identity named by the request
            given_props = given.get("properties") or {}
            kubelet = {
                "resourceId": str(given["id"]),
                "clientId": str(given_props.get("clientId", "")),
                "objectId": str(given_props.get("principalId", "")),
            }
        else:
            kubelet = _made_identity(world, group, f"{name}-agentpool")
    props["identityProfile"] = {**profile, "kubeletidentity": kubelet}
    oidc = {**(old.get("oidcIssuerProfile") or {}), **(props.get("oidcIssuerProfile") or {})}
    oidc["enabled"] = bool(oidc.get("enabled", False))
    if oidc["enabled"] and not oidc.get("issuerURL"):
        guid = str(uuid.UUID(hashlib.md5(f"oidc:{rid.lower()}".encode()).hexdigest()))
        oidc["issuerURL"] = f"https://{region}.oic.prod-aks.azure.com/{IDENTITY_TENANT_ID}/{guid}/"
    props["oidcIssuerProfile"] = oidc
    security = props.get("securityProfile") or old.get("securityProfile") or {}
    if security:
        props["securityProfile"] = security
    addons = {**(old.get("addonProfiles") or {}), **(props.get("addonProfiles") or {})}
    csi = addons.get("azureKeyvaultSecretsProvider")
    if isinstance(csi, dict):
        csi.setdefault("config", {"enableSecretRotation": "false", "rotationPollInterval": "2m"})
        previous = ((old.get("addonProfiles") or {}).get("azureKeyvaultSecretsProvider")) or {}
        if csi.get("enabled"):
            csi["identity"] = previous.get("identity") or _made_identity(
                world, group, f"azurekeyvaultsecretsprovider-{name}"
            )
        else:
            csi.pop("identity", None)
    if addons:
        props["addonProfiles"] = addons


def _kubeconfig(world: World, rid: str, cluster: Resource, user: str) -> str:
    """A kubeconfig (base64, as ``CredentialResult.value``) for the emulator's API server:
    a static token, or for the user of an Entra ID cluster (``aadProfile.managed``) a
    kubelogin exec plugin. JSON is valid YAML, so any kubeconfig loader reads it.
    """
    name = rid.rsplit("/", 1)[1]
    user_name = f"{user}_{_resource_group(rid)}_{name}"
    server = world.urls.get("kubernetes") or "https://127.0.0.1:6443"
    cluster_entry: dict[str, Any] = {"server": server}
    # A static bearer token, as for a cluster with local accounts.
    credential: dict[str, Any] = {
        "token": hashlib.sha256(f"{rid.lower()}:{user}".encode()).hexdigest()
    }
    aad = (cluster.get("properties") or {}).get("aadProfile") or {}
    if user == "clusterUser" and aad.get("managed"):
        # An Entra ID cluster: the user credential is kubelogin's exec plugin (AKS "exec"
        # format), naming the AKS server application and the cluster's tenant.
        credential = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "kubelogin",
                "args": " ".join(
                    (
                        "get-token --environment AzurePublicCloud",
                        "--server-id 6dae42f8-4368-4678-94ff-3960e28e3630",
                        "--client-id 80faf920-1908-4b52-b5ef-a8e7bedfc67a",
                        f"--tenant-id {aad.get('tenantID') or ''} --login devicecode",
                    )
                ).split(),
                "env": None,
                "installHint": "kubelogin is not installed which is required to connect to "
                "AAD enabled cluster.",
                "interactiveMode": "IfAvailable",
                "provideClusterInfo": False,
            }
        }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster_entry}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user_name}}],
        "current-context": name,
        "preferences": {},
        "users": [
            {"name": user_name, "user": credential},
        ],
    }
    # The server address is the emulator's plane whatever the cluster's FQDN.
    return base64.b64encode(json.dumps(config, indent=2).encode()).decode()


class ContainerRegistry(Kind):
    """``Microsoft.ContainerRegistry/registries``: an Azure Container Registry."""

    type = REGISTRY_TYPE
    etag_field = False  # not in the type's REST schema (oav: OBJECT_ADDITIONAL_PROPERTIES)
    # Recorded (Test_ContainerRegistry_Registry_20230701_CRUD): create is a synchronous 200 that
    # says Succeeded; delete is 202 with Location only, its body the registry "Deleting".
    on_create = Reply(200)
    on_update = Reply(200)
    on_delete = Reply(202, LOCATION)
    delete_answer_shows_resource = True

    def action(self, world: World, rid: str, name: str, body: Any) -> Any:
        if name.lower() == "importimage":
            return {"importImage": body}  # run and answered (202) by ``answer``
        return super().action(world, rid, name, body)

    def answer(self, world: World, request: Request, response: Response) -> Response:
        if not (
            request.method == "POST"
            and request.path.lower().endswith("/importimage")
            and response.status == 200
            and isinstance(response.body, dict)
        ):
            return response
        return _start_import(world, request, response.body["importImage"])

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        world.images.pop(rid.lower(), None)

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        name = rid.rsplit("/", 1)[1]
        if existing is None and not _REGISTRY_NAME.match(name):
            raise ArmError(
                400,
                "InvalidRegistryName",
                f"The registry name '{name}' is invalid: it must be 5-50 alphanumeric characters.",
            )
        sku = str((body.get("sku") or {}).get("name", ""))
        if sku.lower() not in _REGISTRY_SKUS:
            raise ArmError(400, "InvalidSku", f"The sku '{sku}' is not valid.")
        if existing is None:
            for other in world.list_by_type(REGISTRY_TYPE):
                if other["name"].lower() == name.lower() and other["id"].lower() != rid.lower():
                    raise ArmError(
                        409,
                        "AlreadyInUse",
                        f"The registry DNS name {name.lower()}.azurecr.io is already in use. "
                        "You can check if the name is already claimed using following API: "
                        "https://docs.microsoft.com/en-us/rest/api/containerregistry/registries/"
                        "checknameavailability",
                    )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        name = rid.rsplit("/", 1)[1]
        props = resource.setdefault("properties", {})
        old = (existing or {}).get("properties", {})
        sku = resource.setdefault("sku", {})
        sku["tier"] = str(sku.get("name", "Basic")).capitalize()
        props["loginServer"] = f"{name.lower()}.azurecr.io"
        props["creationDate"] = old.get("creationDate") or world.now()
        props.setdefault("adminUserEnabled", False)
        props.setdefault("publicNetworkAccess", "Enabled")
        props.setdefault("networkRuleBypassOptions", "AzureServices")
        props.setdefault("zoneRedundancy", "Disabled")
        props.setdefault("anonymousPullEnabled", False)
        props.setdefault("dataEndpointEnabled", False)
        props["dataEndpointHostNames"] = []
        props.setdefault("encryption", {"status": "disabled"})
        props["privateEndpointConnections"] = old.get("privateEndpointConnections", [])
        props.setdefault(
            "policies",
            {
                "quarantinePolicy": {"status": "disabled"},
                "trustPolicy": {"type": "Notary", "status": "disabled"},
                "retentionPolicy": {"days": 7, "status": "disabled"},
                "exportPolicy": {"status": "enabled"},
            },
        )


def _start_import(world: World, request: Request, body: Any) -> Response:
    """``importImage``: a long-running operation (spec: 202 with ``Location``, final state via
    location, 200 with no body), its outcome recorded in ``world.images`` at once; a refused
    import is a failed operation, as ``az acr import`` reports it."""
    from nsc_reconcile.emulator.arm.world import Operation

    registry_id = world.canonical_id(request.path.rsplit("/", 1)[0])
    error: dict[str, Any] | None = None
    try:
        with world.lock:
            import_image(world.images, registry_id, body)
    except ArmError as refused:
        error = {"code": refused.code, "message": refused.message}
    registry = world.get(registry_id) or {}
    op = Operation(
        id=world.new_guid(),
        rid=f"{registry_id}/importImage/{uuid.uuid4()}",  # no resource: ends with an empty 200
        verb="action",
        due=time.monotonic() + world.lro_duration(REGISTRY_TYPE),
        namespace="Microsoft.ContainerRegistry",
        location=_region(str(registry.get("location") or world.location)),
        started=world.now(),
        error=error,
        base=world.urls.get("arm") or f"http://{request.headers.get('host', '127.0.0.1')}",
        api_version=request.query.get("api-version", "2025-11-01"),
    )
    world.operations[op.id] = op
    location = (
        f"{op.base}/subscriptions/{world.subscription_id}/providers/{op.namespace}"
        f"/locations/{op.location}/operationResults/{op.id}?api-version={op.api_version}"
    )
    return Response(202, None, {"Location": location, "retry-after-ms": "10"})
