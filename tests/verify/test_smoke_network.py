"""`verify --smoke=network` against the emulator with the real SDK clients: after applying the
repository's desired state each endpoint's check passes, naming the rule that allows each
declared path and the rule that denies every other source; out-of-band changes fail exactly
the endpoint they open or close, naming the path and the rule: a declared rule removed, the
Deny of the rest of the VNet removed, an Allow from the Internet added, and the subnet's
private endpoint network policies switched off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.mgmt.network.models import SecurityRule

import nsc_reconcile
from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import (
    KEY_VAULT_NAME,
    NSG_DATA_NAME,
    RESOURCE_GROUP,
    SUBNET_DATA,
    baseline_ids,
)
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.verification import Status, VerifyReport

IDS = baseline_ids()
NSG_ID = IDS["nsg_data"]
OPENAI = "smoke-network/nsc-pe-openai"
PG = "smoke-network/nsc-pe-pg-langfuse"
WRITES = ("PUT", "PATCH", "DELETE", "POST")
LIST_ACTION = ("/listkeys", "/listclusterusercredential")


def _verify(state: DesiredState, clients: Clients) -> VerifyReport:
    return nsc_reconcile.verify(state, clients, smoke=["network"])


def _failed(report: VerifyReport) -> list[str]:
    return sorted(c.id for c in report.failed)


def _ip(clients: Clients, endpoint: str) -> str:
    pe = clients.network.private_endpoints.get(RESOURCE_GROUP, endpoint)
    nic_id = str(pe.network_interfaces[0].id)
    nic = clients.network.network_interfaces.get(RESOURCE_GROUP, nic_id.rsplit("/", 1)[-1])
    return str(nic.ip_configurations[0].private_ip_address)


def _remove_rule(ctl: Callable[..., Any], name: str) -> None:
    """Out of band: the rule resource deleted and dropped from the NSG's body."""
    ctl("DELETE", f"state?id={NSG_ID}/securityRules/{name}")
    nsg = ctl("GET", f"state?id={NSG_ID}")
    rules = nsg["properties"]["securityRules"]
    nsg["properties"]["securityRules"] = [r for r in rules if r["name"] != name]
    assert len(nsg["properties"]["securityRules"]) == len(rules) - 1
    ctl("PUT", f"state?id={NSG_ID}", nsg)


def test_applied_state_passes_naming_the_allowing_and_denying_rules(
    applied: DesiredState, clients: Clients, ctl: Callable[..., Any], emu: Emulator
) -> None:
    report = _verify(applied, clients)
    assert report.ok, report.render()
    assert report.get(OPENAI).status is Status.PASS
    assert report.get(PG).status is Status.PASS
    openai, pg = _ip(clients, "nsc-pe-openai"), _ip(clients, "nsc-pe-pg-langfuse")
    evidence = report.get(OPENAI).evidence
    assert (
        f"declared snet-aks (10.10.2.0/24) -> nsc-pe-openai {openai}:443 "
        "(allow-aks-to-openai-443): ALLOWED, allowed by allow-aks-to-openai-443 200 (custom "
        f"rule of {NSG_DATA_NAME})"
    ) in evidence
    assert "declared snet-databricks-public (10.10.4.0/24) -> nsc-pe-openai" in evidence
    assert "privateEndpointNetworkPolicies=Enabled (NSG rules apply)" in evidence
    assert "VirtualNetwork tag = 10.10.0.0/16" in evidence
    evidence = report.get(PG).evidence
    assert (
        f"declared snet-databricks-private (10.10.3.0/24) -> nsc-pe-pg-langfuse {pg}:5432 "
        "(allow-databricks-to-pg-langfuse-5432): ALLOWED, allowed by "
        "allow-databricks-to-pg-langfuse-5432 230"
    ) in evidence
    # Every other source is denied, and by which rule: the rest of the VNet by the declared
    # Deny (AllowVnetInBound would let it in), the Internet by Azure's default.
    assert (
        f"undeclared snet-data (10.10.1.0/24) -> nsc-pe-pg-langfuse {pg}:5432: DENIED, denied "
        f"by deny-vnet-to-private-endpoints 4000 (custom rule of {NSG_DATA_NAME})"
    ) in evidence
    assert (
        f"undeclared Internet (every public address) -> nsc-pe-pg-langfuse {pg}:5432: DENIED, "
        f"denied by DenyAllInBound 65500 (default rule of {NSG_DATA_NAME})"
    ) in evidence
    assert "snet-aks (10.10.2.0/24) -> nsc-pe-pg-langfuse" in evidence
    assert "undeclared snet-aks" not in evidence
    # Reads only; no secret value in any rendering.
    log = ctl("GET", "requests")
    writes = [r for r in log if r["method"] in WRITES
              and not str(r["path"]).lower().endswith(LIST_ACTION)]  # fmt: skip
    assert writes == []
    assert applied.secrets is not None
    sensitive = [i.name for i in applied.secrets.items if i.sensitive]
    values = [str(emu.world.secrets.get(KEY_VAULT_NAME, n)["value"]) for n in sensitive]
    rendered = "\n".join(report.render(f) for f in ("text", "json", "markdown", "junit"))
    assert OPENAI in rendered
    assert not [v for v in values if v in rendered]


REMOVALS = [
    # A declared rule gone: that path is now closed by the Deny of the rest of the VNet.
    ("allow-aks-to-pg-langfuse-5432", [PG],
     "declared path snet-aks (10.10.2.0/24) -> nsc-pe-pg-langfuse {pg}:5432 "
     "(allow-aks-to-pg-langfuse-5432) is not allowed: denied by deny-vnet-to-private-endpoints "
     f"4000 (custom rule of {NSG_DATA_NAME})"),
    # The Deny gone: Azure's AllowVnetInBound lets every other subnet of the VNet in (snet-data
    # is filtered twice by its NSG: outbound from the sender, inbound to the endpoint).
    ("deny-vnet-to-private-endpoints", [OPENAI, PG],
     "snet-data (10.10.1.0/24) is not a declared source but reaches nsc-pe-pg-langfuse "
     f"{{pg}}:5432: allowed by AllowVnetOutBound 65000 (default rule of {NSG_DATA_NAME}) and "
     f"allowed by AllowVnetInBound 65000 (default rule of {NSG_DATA_NAME})"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "failing", "detail"), REMOVALS, ids=[r[0] for r in REMOVALS])
def test_a_rule_removed_out_of_band_fails_naming_the_path_and_the_rule(
    applied: DesiredState,
    clients: Clients,
    ctl: Callable[..., Any],
    rule: str,
    failing: list[str],
    detail: str,
) -> None:
    _remove_rule(ctl, rule)
    report = _verify(applied, clients)
    # plan-clean: the rule is ours, so the plan creates it again.
    assert _failed(report) == sorted([*failing, "plan-clean"])
    assert f"create nsg_rule/{NSG_DATA_NAME}/{rule}" in report.get("plan-clean").detail
    pg = _ip(clients, "nsc-pe-pg-langfuse")
    assert detail.format(pg=pg) in report.get(PG).detail
    for other in {OPENAI, PG} - set(failing):
        assert report.get(other).status is Status.PASS


def test_an_internet_allow_added_out_of_band_fails_naming_internet_and_the_rule(
    applied: DesiredState, clients: Clients
) -> None:
    """Someone else's rule (not ours: the plan does not see it) opens PostgreSQL publicly."""
    rule = SecurityRule({"properties": {
        "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
        "sourceAddressPrefix": "Internet", "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "destinationPortRange": "5432",
    }})  # fmt: skip
    clients.network.security_rules.begin_create_or_update(
        RESOURCE_GROUP, NSG_DATA_NAME, "allow-internet-5432", rule
    ).result()
    report = _verify(applied, clients)
    assert _failed(report) == [PG]
    pg = _ip(clients, "nsc-pe-pg-langfuse")
    check = report.get(PG)
    assert (
        f"Internet (every public address) is not a declared source but reaches "
        f"nsc-pe-pg-langfuse {pg}:5432: allowed by allow-internet-5432 100 (custom rule of "
        f"{NSG_DATA_NAME})"
    ) in check.detail
    assert "undeclared Internet (every public address)" in check.evidence
    # The declared paths still pass, and OpenAI (443) is not opened by a 5432 rule.
    assert "snet-aks (10.10.2.0/24) -> nsc-pe-pg-langfuse" not in check.detail
    assert report.get(OPENAI).status is Status.PASS


def test_private_endpoint_network_policies_disabled_fails_every_endpoint_with_the_reason(
    applied: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    """The subnet is not ours: the smoke says what its owner must change."""
    subnet_id = IDS["subnet_data"]
    subnet = ctl("GET", f"state?id={subnet_id}")
    subnet["properties"]["privateEndpointNetworkPolicies"] = "Disabled"
    ctl("PUT", f"state?id={subnet_id}", subnet)
    vnet = ctl("GET", f"state?id={IDS['vnet']}")
    for inline in vnet["properties"]["subnets"]:
        if inline["name"] == SUBNET_DATA:
            inline["properties"]["privateEndpointNetworkPolicies"] = "Disabled"
    ctl("PUT", f"state?id={IDS['vnet']}", vnet)
    report = _verify(applied, clients)
    assert _failed(report) == [OPENAI, PG]
    openai = _ip(clients, "nsc-pe-openai")
    check = report.get(OPENAI)
    assert (
        "subnet snet-data has privateEndpointNetworkPolicies=Disabled: Azure applies no NSG rule "
        "to the private endpoints in it"
    ) in check.detail
    assert "NetworkSecurityGroupEnabled" in check.detail
    assert (
        f"snet-data (10.10.1.0/24) is not a declared source but reaches nsc-pe-openai "
        f"{openai}:443: allowed by AllowVnetOutBound 65000 (default rule of {NSG_DATA_NAME}) "
        "and NSG not applied: subnet snet-data has privateEndpointNetworkPolicies=Disabled, so "
        "private endpoint traffic bypasses its NSG rules"
    ) in check.detail
    assert "Internet (every public address) is not a declared source but reaches" in check.detail
    assert "NSG rules NOT applied" in check.evidence


def test_a_peered_vnet_is_a_source_too(
    applied: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    """VirtualNetwork covers connected peerings: the Deny closes them; without it Azure's
    AllowVnetInBound lets the peered VNet in."""
    vnet = ctl("GET", f"state?id={IDS['vnet']}")
    hub = IDS["vnet"].rsplit("/", 1)[0] + "/nsc-vnet-hub"
    vnet["properties"]["virtualNetworkPeerings"] = [{
        "name": "to-hub", "id": f"{IDS['vnet']}/virtualNetworkPeerings/to-hub",
        "properties": {"peeringState": "Connected", "remoteVirtualNetwork": {"id": hub},
                       "remoteAddressSpace": {"addressPrefixes": ["10.20.0.0/16"]}},
    }]  # fmt: skip
    ctl("PUT", f"state?id={IDS['vnet']}", vnet)
    report = _verify(applied, clients)
    assert report.get(OPENAI).status is Status.PASS, report.get(OPENAI).detail
    openai = _ip(clients, "nsc-pe-openai")
    evidence = report.get(OPENAI).evidence
    assert "VirtualNetwork tag = 10.10.0.0/16, 10.20.0.0/16" in evidence
    assert (
        f"undeclared peered VNet nsc-vnet-hub (10.20.0.0/16) -> nsc-pe-openai {openai}:443: "
        "DENIED, denied by deny-vnet-to-private-endpoints 4000"
    ) in evidence
    _remove_rule(ctl, "deny-vnet-to-private-endpoints")
    report = _verify(applied, clients)
    assert (
        f"peered VNet nsc-vnet-hub (10.20.0.0/16) is not a declared source but reaches "
        f"nsc-pe-openai {openai}:443: allowed by AllowVnetInBound 65000 (default rule of "
        f"{NSG_DATA_NAME})"
    ) in report.get(OPENAI).detail
