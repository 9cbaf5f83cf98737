"""The network kinds: private endpoints, private DNS zones and their VNet links, NSG rules,
and the existing VNets and NSGs they live in."""

from __future__ import annotations

from nsc_reconcile.kinds import ExistingRead, KindSpec, Output, register
from nsc_reconcile.model.existing import (
    ExistingNetworkSecurityGroup,
    ExistingPrivateDnsZone,
    ExistingVirtualNetwork,
)
from nsc_reconcile.model.network import NsgRule, PrivateDnsZone, PrivateDnsZoneLink, PrivateEndpoint
from nsc_reconcile.naming import DNS_LABEL, NameRule, network_child

_NETWORK = "nsc_reconcile.resources.network"
_DNS = "nsc_reconcile.resources.privatedns"

register(
    KindSpec(
        kind="private_dns_zone",
        model=PrivateDnsZone,
        existing_model=ExistingPrivateDnsZone,
        reconciler=f"{_DNS}:PrivateDnsZoneReconciler",
        name_rule=NameRule(
            3,
            253,
            rf"(?:{DNS_LABEL}\.){{1,33}}{DNS_LABEL}",
            "a DNS name of 2-34 labels, each 1-63 letters, digits and hyphens",
        ),
        collection=("private_dns_zones",),
        phase=30,
        sdk_clients=("privatedns",),
        existing_read=ExistingRead(
            "Microsoft.Network/privateDnsZones", "privatedns", "private_zones"
        ),
    )
)
register(
    KindSpec(
        kind="private_dns_zone_link",
        model=PrivateDnsZoneLink,
        reconciler=f"{_DNS}:PrivateDnsZoneLinkReconciler",
        name_rule=network_child(80),
        collection=("private_dns_zone_links",),
        phase=31,
        sdk_clients=("privatedns",),
    )
)
register(
    KindSpec(
        kind="private_endpoint",
        model=PrivateEndpoint,
        reconciler=f"{_NETWORK}:PrivateEndpointReconciler",
        name_rule=network_child(64, 2),
        collection=("private_endpoints",),
        phase=40,
        sdk_clients=("network", "privatedns"),
        # The Network RP can still see a just-created OpenAI account as provisioning while the
        # Cognitive Services RP says Succeeded (terraform-provider-azurerm#31712): for minutes.
        transient_codes=frozenset({"AccountProvisioningStateInvalid"}),
        outputs=(Output("private_ip"),),
    )
)
register(
    KindSpec(
        kind="nsg_rule",
        model=NsgRule,
        reconciler=f"{_NETWORK}:NsgRuleReconciler",
        name_rule=network_child(80),
        collection=("nsg_rules",),
        phase=50,
        sdk_clients=("network",),
    )
)
register(
    KindSpec(
        kind="virtual_network",
        existing_model=ExistingVirtualNetwork,
        name_rule=network_child(64, 2),
        existing_read=ExistingRead(
            "Microsoft.Network/virtualNetworks", "network", "virtual_networks"
        ),
    )
)
register(
    KindSpec(
        kind="network_security_group",
        existing_model=ExistingNetworkSecurityGroup,
        name_rule=network_child(80),
        existing_read=ExistingRead(
            "Microsoft.Network/networkSecurityGroups", "network", "network_security_groups"
        ),
    )
)
