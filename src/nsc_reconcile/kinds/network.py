"""The network kinds: private endpoints, private DNS zones and their VNet links, NSG rules,
and the existing VNets and NSGs they live in."""

from __future__ import annotations

from nsc_reconcile.kinds import KindSpec, Output, register
from nsc_reconcile.model.existing import (
    ExistingNetworkSecurityGroup,
    ExistingPrivateDnsZone,
    ExistingVirtualNetwork,
)
from nsc_reconcile.model.network import NsgRule, PrivateDnsZone, PrivateDnsZoneLink, PrivateEndpoint

register(
    KindSpec(
        kind="private_endpoint",
        model=PrivateEndpoint,
        reconciler="nsc_reconcile.resources.network",
        outputs=(Output("private_ip"),),
    )
)
register(KindSpec(kind="nsg_rule", model=NsgRule, reconciler="nsc_reconcile.resources.network"))
register(
    KindSpec(
        kind="private_dns_zone",
        model=PrivateDnsZone,
        existing_model=ExistingPrivateDnsZone,
        reconciler="nsc_reconcile.resources.privatedns",
    )
)
register(
    KindSpec(
        kind="private_dns_zone_link",
        model=PrivateDnsZoneLink,
        reconciler="nsc_reconcile.resources.privatedns",
    )
)
register(KindSpec(kind="virtual_network", existing_model=ExistingVirtualNetwork))
register(KindSpec(kind="network_security_group", existing_model=ExistingNetworkSecurityGroup))
