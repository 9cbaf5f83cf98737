"""Microsoft's oav checks the emulator's answers: a representative scenario through the real SDKs
is exported as exchanges and validated against the REST specs of the spec pack.

Skipped without a spec pack (see tests/oav.py). With one, needs node and oav 4.0.3 outside the
repo (see ``OAV_INSTALL``); fails, never skips, without them.
"""

# The SDK overloads type bodies as models or IO; the clients accept JSON dicts at runtime.
# mypy: disable-error-code="call-overload"

from __future__ import annotations

from pathlib import Path

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import (
    ACR_NAME,
    AKS_NAME,
    KEY_VAULT_NAME,
    LOCATION,
    LOG_ANALYTICS_NAME,
    NSG_DATA_NAME,
    PG_PRIVATE_ENDPOINT_NAME,
    PG_SERVER_NAME,
    PG_ZONE_NAME,
    PG_ZONE_VNET_LINK_NAME,
    RESOURCE_GROUP,
    SUBNET_DATA,
    VNET_NAME,
    ZONE_GROUP_NAME,
    baseline_ids,
)
from tests.emulator.test_ingestion_plane import make_dcr
from tests.oav import SpecPack, validate_requests

IDS = baseline_ids()
OPENAI_ZONE = "privatelink.openai.azure.com"


def drive_scenario(emu: Emulator, clients: Clients) -> None:
    """What the product does against a baseline world, one call per kind and verb."""
    net = clients.network
    net.virtual_networks.get(RESOURCE_GROUP, VNET_NAME)
    net.subnets.get(RESOURCE_GROUP, VNET_NAME, SUBNET_DATA)
    net.subnets.begin_create_or_update(
        RESOURCE_GROUP, VNET_NAME, "snet-extra", {"properties": {"addressPrefix": "10.10.9.0/24"}}
    ).result()
    net.network_security_groups.get(RESOURCE_GROUP, NSG_DATA_NAME)
    net.security_rules.begin_create_or_update(
        RESOURCE_GROUP,
        NSG_DATA_NAME,
        "allow-aks-to-pe-443",
        {
            "properties": {
                "protocol": "Tcp",
                "access": "Allow",
                "direction": "Inbound",
                "priority": 300,
                "sourceAddressPrefix": "10.10.2.0/24",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "10.10.1.0/24",
                "destinationPortRanges": ["443", "5432"],
            }
        },
    ).result()
    net.security_rules.get(RESOURCE_GROUP, NSG_DATA_NAME, "allow-aks-to-pe-443")
    pe = net.private_endpoints.get(RESOURCE_GROUP, PG_PRIVATE_ENDPOINT_NAME)
    assert pe.network_interfaces
    net.network_interfaces.get(RESOURCE_GROUP, str(pe.network_interfaces[0].id).rsplit("/", 1)[-1])
    net.private_dns_zone_groups.get(RESOURCE_GROUP, PG_PRIVATE_ENDPOINT_NAME, ZONE_GROUP_NAME)

    dns = clients.privatedns
    dns.private_zones.get(RESOURCE_GROUP, PG_ZONE_NAME)
    dns.virtual_network_links.get(RESOURCE_GROUP, PG_ZONE_NAME, PG_ZONE_VNET_LINK_NAME)
    dns.record_sets.get(RESOURCE_GROUP, PG_ZONE_NAME, "A", PG_SERVER_NAME)
    dns.private_zones.begin_create_or_update(
        RESOURCE_GROUP, OPENAI_ZONE, {"location": "global"}
    ).result()
    dns.virtual_network_links.begin_create_or_update(
        RESOURCE_GROUP,
        OPENAI_ZONE,
        PG_ZONE_VNET_LINK_NAME,
        {
            "location": "global",
            "properties": {"virtualNetwork": {"id": IDS["vnet"]}, "registrationEnabled": False},
        },
    ).result()

    cog = clients.cognitive
    account = cog.accounts.begin_create(
        RESOURCE_GROUP,
        "nsc-aoai-dev",
        {
            "location": LOCATION,
            "kind": "OpenAI",
            "sku": {"name": "S0"},
            "properties": {
                "customSubDomainName": "nsc-aoai-dev",
                "publicNetworkAccess": "Disabled",
                "networkAcls": {"defaultAction": "Deny"},
            },
        },
    ).result()
    cog.accounts.get(RESOURCE_GROUP, "nsc-aoai-dev")
    cog.accounts.list_keys(RESOURCE_GROUP, "nsc-aoai-dev")
    cog.deployments.begin_create_or_update(
        RESOURCE_GROUP,
        "nsc-aoai-dev",
        "gpt-4o",
        {
            "sku": {"name": "Standard", "capacity": 10},
            "properties": {
                "model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"}
            },
        },
    ).result()
    cog.deployments.get(RESOURCE_GROUP, "nsc-aoai-dev", "gpt-4o")

    openai_pe = net.private_endpoints.begin_create_or_update(
        RESOURCE_GROUP,
        "nsc-pe-openai",
        {
            "location": LOCATION,
            "properties": {
                "subnet": {"id": IDS["subnet_data"]},
                "privateLinkServiceConnections": [
                    {
                        "name": "nsc-pe-openai",
                        "properties": {"privateLinkServiceId": account.id, "groupIds": ["account"]},
                    }
                ],
            },
        },
    ).result()
    assert openai_pe.id is not None
    net.private_dns_zone_groups.begin_create_or_update(
        RESOURCE_GROUP,
        "nsc-pe-openai",
        ZONE_GROUP_NAME,
        {
            "properties": {
                "privateDnsZoneConfigs": [
                    {
                        "name": "openai",
                        "properties": {
                            "privateDnsZoneId": f"{IDS['rg']}/providers/Microsoft.Network/"
                            f"privateDnsZones/{OPENAI_ZONE}"
                        },
                    }
                ]
            }
        },
    ).result()
    dns.record_sets.get(RESOURCE_GROUP, OPENAI_ZONE, "A", "nsc-aoai-dev")
    list(dns.record_sets.list(RESOURCE_GROUP, OPENAI_ZONE))
    list(dns.record_sets.list_by_type(RESOURCE_GROUP, OPENAI_ZONE, "A"))

    pg = clients.postgres
    pg.servers.get(RESOURCE_GROUP, PG_SERVER_NAME)
    pg.servers.begin_create_or_update(
        RESOURCE_GROUP,
        "nsc-pg-langfuse-dev",
        {
            "location": LOCATION,
            "sku": {"name": "Standard_B2s", "tier": "Burstable"},
            "properties": {
                "version": "16",
                "administratorLogin": "langfuse",
                "administratorLoginPassword": "emulator-only-Passw0rd!",
                "storage": {"storageSizeGB": 32},
                "network": {"publicNetworkAccess": "Disabled"},
                "createMode": "Create",
            },
        },
    ).result()
    pg.databases.begin_create(
        RESOURCE_GROUP,
        "nsc-pg-langfuse-dev",
        "langfuse",
        {"properties": {"charset": "UTF8", "collation": "en_US.utf8"}},
    ).result()
    pg.configurations.get(RESOURCE_GROUP, "nsc-pg-langfuse-dev", "require_secure_connection")

    mon = clients.monitor
    group = mon.action_groups.create_or_update(
        RESOURCE_GROUP,
        "nsc-ag-agent-dev",
        {
            "location": "Global",
            "properties": {
                "groupShortName": "nscagent",
                "enabled": True,
                "webhookReceivers": [
                    {
                        "name": "teams",
                        "serviceUri": "https://example.invalid/hook",
                        "useCommonAlertSchema": True,
                    }
                ],
            },
        },
    )
    mon.action_groups.get(RESOURCE_GROUP, "nsc-ag-agent-dev")
    mon.scheduled_query_rules.create_or_update(
        RESOURCE_GROUP,
        "nsc-alert-triage-ready-dev",
        {
            "location": LOCATION,
            "kind": "LogAlert",
            "properties": {
                "severity": 3,
                "enabled": True,
                "evaluationFrequency": "PT5M",
                "windowSize": "PT5M",
                "scopes": [IDS["log_analytics"]],
                "criteria": {
                    "allOf": [
                        {
                            "query": "AgentEvents_CL | where EventType == 'TRIAGE_READY'",
                            "timeAggregation": "Count",
                            "operator": "GreaterThan",
                            "threshold": 0,
                            "failingPeriods": {
                                "numberOfEvaluationPeriods": 1,
                                "minFailingPeriodsToAlert": 1,
                            },
                        }
                    ]
                },
                "actions": {"actionGroups": [group.id]},
                "skipQueryValidation": True,
            },
        },
    )
    mon.scheduled_query_rules.get(RESOURCE_GROUP, "nsc-alert-triage-ready-dev")

    clients.loganalytics.workspaces.get(RESOURCE_GROUP, LOG_ANALYTICS_NAME)
    clients.keyvault_mgmt.vaults.get(RESOURCE_GROUP, KEY_VAULT_NAME)
    clients.keyvault_mgmt.secrets.create_or_update(
        RESOURCE_GROUP,
        KEY_VAULT_NAME,
        "agent-execute-mode",
        {"properties": {"value": "dry-run"}},
    )
    clients.keyvault_mgmt.secrets.get(RESOURCE_GROUP, KEY_VAULT_NAME, "agent-execute-mode")

    vault_uri = clients.keyvault_mgmt.vaults.get(
        RESOURCE_GROUP, KEY_VAULT_NAME
    ).properties.vault_uri
    secrets = clients.secret_client(str(vault_uri))
    secrets.set_secret("langfuse-public-key", "pk-lf-emulator")
    secrets.get_secret("langfuse-public-key")
    secrets.begin_delete_secret("langfuse-public-key").result()
    secrets.get_deleted_secret("langfuse-public-key")
    secrets.begin_recover_deleted_secret("langfuse-public-key").result()
    clients.resource.resource_groups.get(RESOURCE_GROUP)
    drive_access_and_images(clients)
    # Logs Ingestion API (no specification in the pack: listed as such)
    make_dcr(emu, clients)
    rule = mon.data_collection_rules.get(RESOURCE_GROUP, "dcr-agent-events")
    assert rule.endpoints is not None
    clients.logs_ingestion_client(str(rule.endpoints.logs_ingestion)).upload(
        rule_id=str(rule.immutable_id),
        stream_name="Custom-AgentEvents_CL",
        logs=[{"TimeGenerated": "2026-11-26T05:00:00Z", "EventType": "TRIAGE_READY"}],
    )
    _ = emu


def drive_access_and_images(clients: Clients) -> None:
    """Issue 10's exchanges: role definitions and assignments, an identity, the cluster's
    identity profiles, an image import (a long-running POST)."""
    auth = clients.authorization
    reader = next(
        iter(
            auth.role_definitions.list(
                IDS["key_vault"], filter="roleName eq 'Key Vault Secrets User'"
            )
        )
    )
    identity = clients.msi.user_assigned_identities.create_or_update(
        RESOURCE_GROUP, "id-agent-dev", {"location": LOCATION}
    )
    auth.role_assignments.create(
        IDS["key_vault"],
        "0f1e2d3c-0000-4000-8000-000000000010",
        {
            "properties": {
                "roleDefinitionId": reader.id,
                "principalId": identity.principal_id,
                "principalType": "ServicePrincipal",
            }
        },
    )
    list(auth.role_assignments.list_for_scope(IDS["key_vault"], filter="atScope()"))
    cluster = clients.containerservice.managed_clusters.get(RESOURCE_GROUP, AKS_NAME)
    assert cluster.oidc_issuer_profile is not None
    clients.containerregistry.registries.begin_import_image(
        RESOURCE_GROUP,
        ACR_NAME,
        {
            "source": {"registryUri": "docker.io", "sourceImage": "langfuse/langfuse:3"},
            "targetTags": ["langfuse/langfuse:3"],
        },
    ).result()


def test_emulator_traffic_passes_oav(
    spec_pack: SpecPack, emu: Emulator, clients: Clients, tmp_path: Path
) -> None:
    drive_scenario(emu, clients)
    verdict = validate_requests(spec_pack, emu.controls.requests(), tmp_path / "traffic")
    assert not verdict.failed, "\n".join([*verdict.failed, *verdict.details[:40]])
    assert len(verdict.passed) >= 30, verdict.output
