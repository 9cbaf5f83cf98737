"""The emulator's starting worlds: ``baseline`` (the seed plan's existing resources, §2) and
``empty``. Every name lives here as a constant so tests and docs import them, never retype them.

Resources are created through the engine's own PUT path, so they look as ARM returns them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nsc_reconcile.emulator.arm import World
from nsc_reconcile.emulator.arm.ids import normalize_location

__all__ = [
    "ACR_NAME",
    "AKS_NAME",
    "DATABRICKS_TOKEN_SECRET",
    "KEY_VAULT_NAME",
    "LOCATION",
    "LOG_ANALYTICS_NAME",
    "NSG_DATA_NAME",
    "PG_PRIVATE_ENDPOINT_NAME",
    "PG_SERVER_NAME",
    "PG_ZONE_NAME",
    "PG_ZONE_VNET_LINK_NAME",
    "RESOURCE_GROUP",
    "SUBNETS",
    "SUBNET_AKS",
    "SUBNET_DATA",
    "SUBNET_DATABRICKS_PRIVATE",
    "SUBNET_DATABRICKS_PUBLIC",
    "SUBSCRIPTION_ID",
    "VNET_NAME",
    "VNET_PREFIX",
    "WORLDS",
    "ZONE_GROUP_NAME",
    "baseline_ids",
    "build_world",
]

SUBSCRIPTION_ID = "00000000-0000-0000-0000-00000000a1b2"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
LOCATION = "koreacentral"
RESOURCE_GROUP = "2dt-final-team4"
VNET_NAME = "nsc-vnet-dev"
VNET_PREFIX = "10.10.0.0/16"
SUBNET_DATA = "snet-data"
SUBNET_AKS = "snet-aks"
SUBNET_DATABRICKS_PRIVATE = "snet-databricks-private"
SUBNET_DATABRICKS_PUBLIC = "snet-databricks-public"
SUBNETS = {
    SUBNET_DATA: "10.10.1.0/24",
    SUBNET_AKS: "10.10.2.0/24",
    SUBNET_DATABRICKS_PRIVATE: "10.10.3.0/24",
    SUBNET_DATABRICKS_PUBLIC: "10.10.4.0/24",
}
NSG_DATA_NAME = "nsc-nsg-data-dev"
AKS_NAME = "nsc-aks-dev"
ACR_NAME = "nscacrdev"
KEY_VAULT_NAME = "nsc-kv-dev"
LOG_ANALYTICS_NAME = "nsc-law-dev"
PG_SERVER_NAME = "nsc-pg-dev"
PG_PRIVATE_ENDPOINT_NAME = "nsc-pe-pg-dev"
PG_ZONE_NAME = "privatelink.postgres.database.azure.com"
PG_ZONE_VNET_LINK_NAME = "link-nsc-vnet-dev"
ZONE_GROUP_NAME = "default"
DATABRICKS_TOKEN_SECRET = "databricks-agent-token"
# A fake value: the emulator holds no real credential.
DATABRICKS_TOKEN_VALUE = "dapi-emulator-0000000000000000"


def baseline_ids(subscription_id: str = SUBSCRIPTION_ID) -> dict[str, str]:
    """ARM ids of the baseline's resources, by short name (``rg``, ``vnet``, ``pg``, ...)."""
    rg = f"/subscriptions/{subscription_id}/resourceGroups/{RESOURCE_GROUP}"
    net = f"{rg}/providers/Microsoft.Network"
    vnet = f"{net}/virtualNetworks/{VNET_NAME}"
    zone = f"{net}/privateDnsZones/{PG_ZONE_NAME}"
    pe = f"{net}/privateEndpoints/{PG_PRIVATE_ENDPOINT_NAME}"
    ids = {
        "rg": rg,
        "vnet": vnet,
        "nsg_data": f"{net}/networkSecurityGroups/{NSG_DATA_NAME}",
        "aks": f"{rg}/providers/Microsoft.ContainerService/managedClusters/{AKS_NAME}",
        "acr": f"{rg}/providers/Microsoft.ContainerRegistry/registries/{ACR_NAME}",
        "key_vault": f"{rg}/providers/Microsoft.KeyVault/vaults/{KEY_VAULT_NAME}",
        "log_analytics": (
            f"{rg}/providers/Microsoft.OperationalInsights/workspaces/{LOG_ANALYTICS_NAME}"
        ),
        "pg": f"{rg}/providers/Microsoft.DBforPostgreSQL/flexibleServers/{PG_SERVER_NAME}",
        "pg_private_endpoint": pe,
        "pg_zone_group": f"{pe}/privateDnsZoneGroups/{ZONE_GROUP_NAME}",
        "pg_zone": zone,
        "pg_zone_vnet_link": f"{zone}/virtualNetworkLinks/{PG_ZONE_VNET_LINK_NAME}",
        "pg_a_record": f"{zone}/A/{PG_SERVER_NAME}",
    }
    for subnet in SUBNETS:
        ids[f"subnet_{subnet.removeprefix('snet-').replace('-', '_')}"] = f"{vnet}/subnets/{subnet}"
    return ids


def _create(world: World, rid: str, body: dict[str, Any]) -> None:
    """Create through the engine; a type with no registered kind yet is stored as ARM shows it."""
    if world.kind_for(world.canonical_type(rid)) is not None:
        world.create(rid, body)
        return
    stored = dict(body)
    if "location" in stored:
        stored["location"] = normalize_location(str(stored["location"]))
    stored.setdefault("properties", {})["provisioningState"] = "Succeeded"
    world.put(rid, stored)


def _baseline(world: World) -> None:
    ids = baseline_ids(world.subscription_id)
    _create(world, ids["rg"], {"location": LOCATION})
    _create(
        world,
        ids["nsg_data"],
        {"location": LOCATION, "properties": {"securityRules": []}},
    )
    subnets = []
    for name, prefix in SUBNETS.items():
        props: dict[str, Any] = {"addressPrefix": prefix}
        if name == SUBNET_DATA:
            props["privateEndpointNetworkPolicies"] = "Enabled"
            props["networkSecurityGroup"] = {"id": ids["nsg_data"]}
        subnets.append({"name": name, "properties": props})
    _create(
        world,
        ids["vnet"],
        {
            "location": LOCATION,
            "properties": {"addressSpace": {"addressPrefixes": [VNET_PREFIX]}, "subnets": subnets},
        },
    )
    _create(
        world,
        ids["log_analytics"],
        {
            "location": LOCATION,
            "properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30},
        },
    )
    _create(
        world,
        ids["aks"],
        {
            "location": LOCATION,
            "identity": {"type": "SystemAssigned"},
            "sku": {"name": "Base", "tier": "Free"},
            "properties": {
                "kubernetesVersion": "1.32",
                "dnsPrefix": AKS_NAME,
                "agentPoolProfiles": [
                    {
                        "name": "system",
                        "count": 2,
                        "vmSize": "Standard_D4s_v5",
                        "osType": "Linux",
                        "mode": "System",
                        "type": "VirtualMachineScaleSets",
                        "vnetSubnetID": ids["subnet_aks"],
                    }
                ],
                "networkProfile": {
                    "networkPlugin": "azure",
                    "serviceCidr": "10.0.0.0/16",
                    "dnsServiceIP": "10.0.0.10",
                },
                "apiServerAccessProfile": {"enablePrivateCluster": True},
                "oidcIssuerProfile": {"enabled": True},
                "securityProfile": {"workloadIdentity": {"enabled": True}},
                "addonProfiles": {"azureKeyvaultSecretsProvider": {"enabled": True}},
            },
        },
    )
    _create(
        world,
        ids["acr"],
        {
            "location": LOCATION,
            "sku": {"name": "Premium"},
            "properties": {"adminUserEnabled": False, "publicNetworkAccess": "Disabled"},
        },
    )
    _create(
        world,
        ids["key_vault"],
        {
            "location": LOCATION,
            "properties": {
                "tenantId": TENANT_ID,
                "sku": {"family": "A", "name": "standard"},
                "enableRbacAuthorization": True,
                "enableSoftDelete": True,
                "softDeleteRetentionInDays": 90,
                "publicNetworkAccess": "Disabled",
                "networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices"},
            },
        },
    )
    world.secrets.set(KEY_VAULT_NAME, DATABRICKS_TOKEN_SECRET, DATABRICKS_TOKEN_VALUE)
    _create(
        world,
        ids["pg"],
        {
            "location": LOCATION,
            "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
            "properties": {
                "version": "16",
                "administratorLogin": "nscadmin",
                "administratorLoginPassword": "emulator-only-Passw0rd!",
                "storage": {"storageSizeGB": 128},
                "network": {"publicNetworkAccess": "Disabled"},
                "highAvailability": {"mode": "Disabled"},
                "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
            },
        },
    )
    _create(world, ids["pg_zone"], {"location": "global", "properties": {}})
    _create(
        world,
        ids["pg_zone_vnet_link"],
        {
            "location": "global",
            "properties": {"virtualNetwork": {"id": ids["vnet"]}, "registrationEnabled": False},
        },
    )
    _create(
        world,
        ids["pg_private_endpoint"],
        {
            "location": LOCATION,
            "properties": {
                "subnet": {"id": ids["subnet_data"]},
                "privateLinkServiceConnections": [
                    {
                        "name": PG_PRIVATE_ENDPOINT_NAME,
                        "properties": {
                            "privateLinkServiceId": ids["pg"],
                            "groupIds": ["postgresqlServer"],
                        },
                    }
                ],
            },
        },
    )
    _create(
        world,
        ids["pg_zone_group"],
        {
            "properties": {
                "privateDnsZoneConfigs": [
                    {
                        "name": PG_ZONE_NAME.replace(".", "-"),
                        "properties": {"privateDnsZoneId": ids["pg_zone"]},
                    }
                ]
            }
        },
    )


def _empty(world: World) -> None:
    del world  # nothing exists in the empty world, not even a resource group


WORLDS: dict[str, Callable[[World], None]] = {"baseline": _baseline, "empty": _empty}


def build_world(name: str = "baseline") -> World:
    """A fresh ``World`` seeded as ``name`` (``baseline`` or ``empty``); raises KeyError."""
    if name not in WORLDS:
        raise KeyError(f"unknown world {name!r}; choose one of {sorted(WORLDS)}")
    return World(subscription_id=SUBSCRIPTION_ID, location=LOCATION, seed=WORLDS[name], name=name)
