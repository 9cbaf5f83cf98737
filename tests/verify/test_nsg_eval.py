"""NSG evaluation as Azure does it (pure, data-driven): priority order, first match wins, the
default rules, service tags (VirtualNetwork with peerings, Internet, AzureLoadBalancer, unknown
ones), port ranges and lists, protocols, destinations, partial matches named by source
addresses or ports, several layers (source outbound, destination inbound), and an NSG that is
not applied to private endpoint traffic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from nsc_reconcile.verification.nsg_eval import (
    Flow,
    Layer,
    Tags,
    Verdict,
    default_rules,
    evaluate,
    rules_of,
)

PE = "10.10.1.5"  # a private endpoint's NIC IP in snet-data 10.10.1.0/24
AKS = "10.10.2.0/24"
DATA = "10.10.1.0/24"
PEERED = "10.20.0.0/16"
TAGS = Tags(("10.10.0.0/16", PEERED))


def rule(name: str, priority: int, access: str = "Allow", source: Any = "*", dest: Any = PE,
         ports: Any = "443", **props: Any) -> dict[str, Any]:  # fmt: skip
    """A security rule as ARM returns it; a list value goes to the plural form."""
    body: dict[str, Any] = {
        "priority": priority,
        "direction": props.pop("direction", "Inbound"),
        "access": access,
        "protocol": props.pop("protocol", "Tcp"),
        "sourcePortRange": props.pop("source_ports", "*"),
    }
    for single, value in (
        ("sourceAddressPrefix", source),
        ("destinationAddressPrefix", dest),
        ("destinationPortRange", ports),
    ):
        if isinstance(value, list):
            body[single.replace("Prefix", "Prefixes").replace("Range", "Ranges")] = value
        else:
            body[single] = value
    body.update(props)
    return {"name": name, "properties": body}


def nsg(*rules: dict[str, Any]) -> dict[str, Any]:
    """An NSG body without ``defaultSecurityRules``: Azure's defaults are used."""
    return {"name": "nsg-data", "properties": {"securityRules": list(rules)}}


@dataclass(frozen=True)
class Case:
    id: str
    rules: tuple[dict[str, Any], ...]
    source: str
    expect: bool | None  # allowed?
    said: str  # fragment of the verdict's description
    port: int = 443
    dest: str = PE
    outbound: tuple[dict[str, Any], ...] | None = None  # the source subnet's NSG, if any
    bypass: str = ""
    absent: tuple[str, ...] = field(default=())  # fragments that must NOT be in it


CASES = [
    # Priority order: the lowest number decides, whatever the list order.
    Case("priority-deny-first", (rule("allow-aks", 200, source=AKS),
                                 rule("deny-aks", 100, "Deny", source=AKS)),
         AKS, False, "denied by deny-aks 100 (custom rule of nsg-data)"),
    Case("priority-allow-first", (rule("deny-vnet", 4000, "Deny", source="VirtualNetwork"),
                                  rule("allow-aks", 200, source=AKS)),
         AKS, True, "allowed by allow-aks 200 (custom rule of nsg-data)"),
    # Default rules.
    Case("default-allow-vnet", (), AKS, True,
         "allowed by AllowVnetInBound 65000 (default rule of nsg-data)"),
    Case("default-deny-internet", (), "Internet", False,
         "denied by DenyAllInBound 65500 (default rule of nsg-data)"),
    # The host address 168.63.129.16 is AzureLoadBalancer and also in VirtualNetwork (Microsoft's
    # service tag list: "the virtual IP address of the host").
    Case("default-host-address", (), "168.63.129.16", True, "allowed by AllowVnetInBound 65000"),
    Case("vnet-deny-covers-host-address", (rule("deny-vnet", 4000, "Deny",
                                                source="VirtualNetwork"),),
         "168.63.129.16", False, "denied by deny-vnet 4000"),
    Case("default-load-balancer", (), "168.63.129.16", True,
         "allowed by AllowAzureLoadBalancerInBound 65001 (default rule of nsg-data)",
         dest="20.1.2.3"),  # to a public address: AllowVnetInBound's destination is the VNet
    Case("default-other-private-range", (), "192.168.7.0/24", False, "DenyAllInBound 65500"),
    # Service tags: VirtualNetwork includes the peered VNet; Internet excludes private space.
    Case("vnet-tag-covers-peering", (rule("deny-vnet", 4000, "Deny", source="VirtualNetwork"),),
         "10.20.3.0/24", False, "denied by deny-vnet 4000"),
    Case("default-allows-peering", (), "10.20.3.0/24", True, "AllowVnetInBound 65000"),
    Case("internet-allow", (rule("allow-internet-pg", 100, source="Internet", ports="5432"),),
         "Internet", True, "allowed by allow-internet-pg 100", port=5432),
    Case("internet-tag-is-not-the-vnet",
         (rule("allow-internet", 100, source="Internet"),
          rule("deny-vnet", 4000, "Deny", source="VirtualNetwork")),
         AKS, False, "denied by deny-vnet 4000"),
    Case("star-source", (rule("deny-all", 300, "Deny", source="*", ports="*"),), "Internet",
         False, "denied by deny-all 300"),
    Case("single-public-address", (rule("allow-one", 150, source="203.0.113.7"),), "203.0.113.7",
         True, "allowed by allow-one 150"),
    # Ports: ranges, lists, `*`.
    Case("port-range-inside", (rule("deny-pg", 100, "Deny", source=AKS, ports="5432-5433"),),
         AKS, False, "denied by deny-pg 100", port=5433),
    Case("port-range-outside", (rule("deny-pg", 100, "Deny", source=AKS, ports="5432-5433"),),
         AKS, True, "AllowVnetInBound 65000", port=5434),
    Case("port-list", (rule("deny-two", 100, "Deny", source=AKS, ports=["443", "5432"]),),
         AKS, False, "denied by deny-two 100", port=5432),
    Case("port-star", (rule("deny-any-port", 100, "Deny", source=AKS, ports="*"),),
         AKS, False, "denied by deny-any-port 100", port=8080),
    # Protocol: a UDP rule never matches TCP; `*` does.
    Case("protocol-udp-skipped", (rule("deny-udp", 100, "Deny", source=AKS, protocol="Udp"),),
         AKS, True, "AllowVnetInBound 65000"),
    Case("protocol-star", (rule("deny-star", 100, "Deny", source=AKS, protocol="*"),),
         AKS, False, "denied by deny-star 100"),
    # Destinations: the endpoint /32, another address, a list, VirtualNetwork, `*`.
    Case("dest-other-address", (rule("deny-other", 100, "Deny", source=AKS, dest="10.10.1.9"),),
         AKS, True, "AllowVnetInBound 65000"),
    Case("dest-list", (rule("deny-list", 100, "Deny", source=AKS,
                            dest=["10.10.1.9/32", f"{PE}/32"]),),
         AKS, False, "denied by deny-list 100"),
    Case("dest-vnet-tag", (rule("deny-to-vnet", 100, "Deny", source=AKS, dest="VirtualNetwork"),),
         AKS, False, "denied by deny-to-vnet 100"),
    Case("dest-star", (rule("deny-to-any", 100, "Deny", source=AKS, dest="*"),), AKS, False,
         "denied by deny-to-any 100"),
    Case("source-list", (rule("deny-some", 100, "Deny", source=["10.10.3.0/24", AKS]),), AKS,
         False, "denied by deny-some 100"),
    # Partial matches: the addresses or source ports concerned are named.
    Case("partial-source", (rule("allow-half", 200, source="10.10.2.0/25"),
                            rule("deny-vnet", 4000, "Deny", source="VirtualNetwork")),
         AKS, None, "allowed by allow-half 200 (custom rule of nsg-data) from 10.10.2.0/25; "
         "denied by deny-vnet 4000 (custom rule of nsg-data) from 10.10.2.128/25"),
    Case("source-port-never-a-client", (rule("deny-from-80", 100, "Deny", source=AKS,
                                             source_ports="80"),),
         AKS, True, "AllowVnetInBound 65000", absent=("deny-from-80",)),
    Case("source-ports-partial", (rule("deny-low", 100, "Deny", source=AKS,
                                       source_ports="1024-2000"),),
         AKS, None, "denied by deny-low 100 (custom rule of nsg-data) source ports 1024-2000"),
    # What cannot be read here is undecided, naming the rule and why.
    Case("unknown-tag-public", (rule("allow-cloud", 100, source="AzureCloud"),), "Internet", None,
         "undecided at allow-cloud 100 (custom rule of nsg-data): it uses service tag AzureCloud"),
    Case("unknown-tag-private", (rule("allow-cloud", 100, source="AzureCloud"),
                                 rule("deny-vnet", 4000, "Deny", source="VirtualNetwork")),
         AKS, False, "denied by deny-vnet 4000"),
    Case("asg-undecided", (rule("allow-asg", 100, source=[],
                                sourceApplicationSecurityGroups=[{"id": "/x/asg-web"}]),),
         AKS, None, "application security groups"),
    Case("asg-irrelevant-port", (rule("allow-asg", 100, source=[], ports="22",
                                      sourceApplicationSecurityGroups=[{"id": "/x/asg"}]),),
         AKS, True, "AllowVnetInBound 65000"),
    # Layers: the source subnet's NSG outbound, then the endpoint subnet's inbound.
    Case("source-outbound-deny", (rule("allow-aks", 200, source=AKS),), AKS, False,
         "denied by deny-out 100 (custom rule of nsg-aks)",
         outbound=(rule("deny-out", 100, "Deny", source="*", direction="Outbound"),)),
    Case("source-outbound-default", (rule("allow-aks", 200, source=AKS),), AKS, True,
         "allowed by AllowVnetOutBound 65000 (default rule of nsg-aks) and allowed by "
         "allow-aks 200", outbound=()),
    Case("inbound-rules-ignore-outbound", (rule("deny-out", 100, "Deny", source=AKS,
                                                direction="Outbound"),),
         AKS, True, "AllowVnetInBound 65000"),
    # privateEndpointNetworkPolicies Disabled: the NSG is not applied at all.
    Case("policies-disabled", (rule("deny-vnet", 100, "Deny", source="VirtualNetwork"),), AKS,
         True, "NSG not applied: privateEndpointNetworkPolicies=Disabled",
         bypass="NSG not applied: privateEndpointNetworkPolicies=Disabled"),
]  # fmt: skip


def _evaluate(case: Case) -> Verdict:
    layers = []
    if case.outbound is not None:
        source_nsg = {"name": "nsg-aks", "properties": {"securityRules": list(case.outbound)}}
        layers.append(Layer("subnet snet-aks", "Outbound", tuple(rules_of(source_nsg))))
    inbound = tuple(rules_of(nsg(*case.rules)))
    layers.append(Layer("subnet snet-data NSG nsg-data", "Inbound", inbound, case.bypass))
    return evaluate(Flow((case.source,), case.dest, case.port), layers, TAGS)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_verdict_and_deciding_rule(case: Case) -> None:
    verdict = _evaluate(case)
    text = verdict.describe()
    assert verdict.allowed is case.expect, text
    assert case.said in text
    for fragment in case.absent:
        assert fragment not in text


def test_whole_internet_is_one_part_and_excludes_private_and_vnet_space() -> None:
    """An Allow from 203.0.113.0/24 is caught: the Internet source is every public address."""
    inbound = tuple(rules_of(nsg(rule("allow-partner", 120, source="203.0.113.0/24"))))
    verdict = evaluate(Flow(("Internet",), PE, 443), [Layer("x", "Inbound", inbound)], TAGS)
    assert verdict.allowed is None
    (opened,) = verdict.allowing()
    assert verdict.describe([opened]) == (
        "allowed by allow-partner 120 (custom rule of nsg-data) from 203.0.113.0/24"
    )
    addresses = [a for part in verdict.parts for a in part.addresses]
    private = [(10 << 24, (11 << 24) - 1), (168 << 24 | 63 << 16 | 129 << 8 | 16,) * 2]
    assert not [a for a in addresses for p in private if a[0] <= p[1] and p[0] <= a[1]]


def test_no_nsg_filters_nothing_and_an_nsg_shown_with_defaults_uses_them() -> None:
    verdict = evaluate(Flow(("Internet",), PE, 5432), [Layer("subnet snet-x", "Inbound")], TAGS)
    assert verdict.allowed is True
    assert "no NSG on subnet snet-x" in verdict.describe()
    # As ARM returns an NSG: defaultSecurityRules listed (here a changed one, to prove they
    # are read rather than assumed).
    shown = nsg()
    shown["properties"]["defaultSecurityRules"] = [
        rule("DenyAllInBound", 65500, "Deny", ports="*", dest="*")
    ]
    rules = rules_of(shown)
    assert [(r.name, r.default) for r in rules] == [("DenyAllInBound", True)]
    verdict = evaluate(Flow((AKS,), PE, 443), [Layer("x", "Inbound", tuple(rules))], TAGS)
    assert verdict.describe() == "denied by DenyAllInBound 65500 (default rule of nsg-data)"


def test_default_rules_are_azures() -> None:
    inbound = [(r.name, r.priority, r.access, r.sources, r.destinations)
               for r in default_rules() if r.direction == "Inbound"]  # fmt: skip
    assert inbound == [
        ("AllowVnetInBound", 65000, "Allow", ("VirtualNetwork",), ("VirtualNetwork",)),
        ("AllowAzureLoadBalancerInBound", 65001, "Allow", ("AzureLoadBalancer",), ("*",)),
        ("DenyAllInBound", 65500, "Deny", ("*",), ("*",)),
    ]


def test_destination_must_be_one_address() -> None:
    with pytest.raises(ValueError, match="one IPv4 address"):
        evaluate(Flow((AKS,), "10.10.1.0/24", 443), [], TAGS)
