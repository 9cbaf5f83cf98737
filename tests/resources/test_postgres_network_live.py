"""PostgreSQL server + database, private endpoints (+ zone groups, A records) and NSG rules
against the emulator with the real SDK clients: create from the baseline, a second plan that
writes nothing, out-of-band drift shown field by field and repaired, replacement planned.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.network.models import SecurityRule

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.changes import Action, ReplacePolicy
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import (
    NSG_DATA_NAME,
    PG_ZONE_NAME,
    RESOURCE_GROUP,
    SUBNETS,
    baseline_ids,
)
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import ApplyResult, Outcome, Plan
from nsc_reconcile.resources.base import to_wire
from tests.paths import DESIRED_STATE

PG = "postgresql_server/nsc-pg-langfuse-dev"
DB = "postgresql_database/nsc-pg-langfuse-dev/langfuse"
PE_PG = "private_endpoint/nsc-pe-pg-langfuse"
PE_OPENAI = "private_endpoint/nsc-pe-openai"
RULES = [
    f"nsg_rule/{NSG_DATA_NAME}/allow-aks-to-openai-443",
    f"nsg_rule/{NSG_DATA_NAME}/allow-databricks-to-openai-443",
    f"nsg_rule/{NSG_DATA_NAME}/allow-aks-to-pg-langfuse-5432",
    f"nsg_rule/{NSG_DATA_NAME}/allow-databricks-to-pg-langfuse-5432",
]
TARGETS = [DB, PE_PG, PE_OPENAI, *RULES]
WRITES = {"PUT", "PATCH", "DELETE", "POST"}
ZONE_RECORDS = f"dnsRecords.{PG_ZONE_NAME}"


@pytest.fixture
def state(ctl: Callable[..., Any]) -> DesiredState:
    # Azure takes minutes to create a server; the engine just waits on the LRO. Keep it 0 here.
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    return load_desired_state(DESIRED_STATE)


def _variant(tmp_path: Path, seed_text: str, old: str, new: str) -> DesiredState:
    assert seed_text.count(old) == 1, old
    path = tmp_path / "desired_state.yaml"
    path.write_text(seed_text.replace(old, new), encoding="utf-8")
    return load_desired_state(path)


def _apply(state: DesiredState, clients: Clients, **kwargs: Any) -> tuple[Plan, ApplyResult]:
    engine = Engine(state, clients)
    plan = engine.plan(targets=TARGETS)
    result = engine.apply(plan, **kwargs)
    assert result.ok, result.render()
    return plan, result


def _plan(state: DesiredState, clients: Clients) -> Plan:
    return Engine(state, clients).plan(targets=TARGETS)


def _writes(ctl: Callable[..., Any]) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"])
        for r in ctl("GET", "requests")
        if r["method"] in WRITES and r["plane"] == "arm"
    ]


def _state_url(arm_id: str) -> str:
    return "state?id=" + urllib.parse.quote(arm_id, safe="")


def _pe_ip(clients: Clients, name: str) -> str:
    """The endpoint's private IP as its NIC holds it (the Definition of Done's reference)."""
    pe = to_wire(clients.network.private_endpoints.get(RESOURCE_GROUP, name))
    nic_id = pe["properties"]["networkInterfaces"][0]["id"]
    nic = to_wire(clients.network.network_interfaces.get(RESOURCE_GROUP, nic_id.rsplit("/", 1)[1]))
    return str(nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"])


def _a_record(clients: Clients, zone: str, name: str) -> list[str]:
    record = to_wire(clients.privatedns.record_sets.get(RESOURCE_GROUP, zone, "A", name))
    return [a["ipv4Address"] for a in record["properties"]["aRecords"]]


def _rule(clients: Clients, name: str) -> dict[str, Any]:
    rule = to_wire(clients.network.security_rules.get(RESOURCE_GROUP, NSG_DATA_NAME, name))
    properties: dict[str, Any] = rule["properties"]
    return properties


def _rule_id(name: str) -> str:
    return f"{baseline_ids()['nsg_data']}/securityRules/{name}"


def test_create_from_baseline_then_nothing_to_do(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    # A rule someone else put on the NSG must survive our rules.
    foreign = {
        "properties": {
            "priority": 300, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
            "sourceAddressPrefix": "10.10.9.0/24", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "22",
        }
    }  # fmt: skip
    clients.network.security_rules.begin_create_or_update(
        RESOURCE_GROUP, NSG_DATA_NAME, "allow-ops-ssh", SecurityRule(foreign)
    ).result()
    plan, result = _apply(state, clients)
    for address in (PG, DB, PE_PG, PE_OPENAI, *RULES):
        assert plan.get(address).action is Action.CREATE, address
        assert result.get(address).outcome is Outcome.CREATED, address

    # No secret value anywhere in the plan, and the server's create carried no VNet injection.
    vault = to_wire(clients.keyvault_mgmt.vaults.get(RESOURCE_GROUP, "nsc-kv-dev"))
    secrets = clients.secret_client(vault["properties"]["vaultUri"])
    password = secrets.get_secret("langfuse-pg-admin-password").value
    assert password
    assert password not in json.dumps(plan.to_json())
    assert password not in plan.render()
    assert password not in result.render()
    server = to_wire(clients.postgres.servers.get(RESOURCE_GROUP, "nsc-pg-langfuse-dev"))
    assert server["properties"]["network"] == {"publicNetworkAccess": "Disabled"}

    # The platform wrote the A records with the endpoints' NIC IPs; the rules use them.
    pg_ip = _pe_ip(clients, "nsc-pe-pg-langfuse")
    openai_ip = _pe_ip(clients, "nsc-pe-openai")
    assert _a_record(clients, PG_ZONE_NAME, "nsc-pg-langfuse-dev") == [pg_ip]
    assert _a_record(clients, "privatelink.openai.azure.com", "nsc-aoai-dev") == [openai_ip]
    rule = _rule(clients, "allow-databricks-to-pg-langfuse-5432")
    assert rule["destinationAddressPrefix"] == f"{pg_ip}/32"
    assert sorted(rule["sourceAddressPrefixes"]) == [
        SUBNETS["snet-databricks-private"],
        SUBNETS["snet-databricks-public"],
    ]
    assert rule["destinationPortRange"] == "5432"
    names = {r.name for r in clients.network.security_rules.list(RESOURCE_GROUP, NSG_DATA_NAME)}
    assert {"allow-ops-ssh", *(r.rsplit("/", 1)[1] for r in RULES)} <= names
    pe = to_wire(clients.network.private_endpoints.get(RESOURCE_GROUP, "nsc-pe-pg-langfuse"))
    connection = pe["properties"]["privateLinkServiceConnections"][0]["properties"]
    assert connection["privateLinkServiceConnectionState"]["status"] == "Approved"

    # Second run: only reads.
    ctl("DELETE", "requests")
    again = _plan(state, clients)
    mine = [r for r in again.resources if r.address in (PG, DB, PE_PG, PE_OPENAI, *RULES)]
    assert len(mine) == 8
    assert [(r.address, r.changes) for r in mine if r.action is not Action.UNCHANGED] == []
    assert _writes(ctl) == []


def test_nsg_rule_port_drift_shows_that_field_and_is_repaired(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    _apply(state, clients)
    rule_id = _rule_id("allow-aks-to-pg-langfuse-5432")
    stored = ctl("GET", _state_url(rule_id))
    stored["properties"]["destinationPortRange"] = "15432"
    ctl("PUT", _state_url(rule_id), stored)

    plan = _plan(state, clients)
    drifted = plan.get(RULES[2])
    assert drifted.action is Action.UPDATE
    assert [(c.path, c.before, c.after) for c in drifted.changes] == [
        ("properties.destinationPortRange", "15432", "5432")
    ]
    others = [r for r in plan.resources if r.address != RULES[2] and r.action is Action.UPDATE]
    assert others == []

    ctl("DELETE", "requests")
    result = Engine(state, clients).apply(plan)
    assert result.get(RULES[2]).outcome is Outcome.UPDATED
    assert _writes(ctl) == [("PUT", rule_id)]
    assert ctl("GET", _state_url(rule_id))["properties"]["destinationPortRange"] == "5432"
    assert _plan(state, clients).get(RULES[2]).action is Action.UNCHANGED


def test_deleted_a_record_is_drift_of_the_endpoint_and_rewritten(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    _apply(state, clients)
    ip = _pe_ip(clients, "nsc-pe-pg-langfuse")
    ids = baseline_ids()
    record_id = f"{ids['pg_zone']}/A/nsc-pg-langfuse-dev"
    ctl("DELETE", _state_url(record_id))
    # A zone group added by platform policy (another name) must survive the repair.
    pe_id = f"{ids['rg']}/providers/Microsoft.Network/privateEndpoints/nsc-pe-pg-langfuse"
    policy_group = f"{pe_id}/privateDnsZoneGroups/deployedByPolicy"
    ctl("PUT", _state_url(policy_group), {"properties": {"privateDnsZoneConfigs": []}})

    plan = _plan(state, clients)
    endpoint = plan.get(PE_PG)
    assert endpoint.action is Action.UPDATE
    assert [(c.path, c.before, c.after) for c in endpoint.changes] == [(ZONE_RECORDS, None, [ip])]
    assert plan.get(PE_OPENAI).action is Action.UNCHANGED

    ctl("DELETE", "requests")
    result = Engine(state, clients).apply(plan)
    assert result.get(PE_PG).outcome is Outcome.UPDATED
    # Only the zone group is written again (not the endpoint); Azure rewrites the record.
    assert _writes(ctl) == [("PUT", f"{pe_id}/privateDnsZoneGroups/default")]
    assert _a_record(clients, PG_ZONE_NAME, "nsc-pg-langfuse-dev") == [ip]
    assert ctl("GET", _state_url(policy_group)) is not None
    assert _plan(state, clients).get(PE_PG).action is Action.UNCHANGED


def test_subnet_change_requires_replacement(
    tmp_path: Path,
    seed_text: str,
    state: DesiredState,
    clients: Clients,
    ctl: Callable[..., Any],
) -> None:
    _apply(state, clients)
    moved = _variant(
        tmp_path,
        seed_text,
        "subnet: nsc-vnet-${env}/snet-data\n    dns_zone_group: {zones: "
        "[privatelink.postgres.database.azure.com]}",
        "subnet: nsc-vnet-${env}/snet-aks\n    dns_zone_group: {zones: "
        "[privatelink.postgres.database.azure.com]}",
    )
    plan = _plan(moved, clients)
    endpoint = plan.get(PE_PG)
    assert endpoint.action is Action.REPLACE
    assert [(c.path, c.requires_replacement) for c in endpoint.changes] == [
        ("properties.subnet.id", True)
    ]
    assert endpoint.changes[0].after.endswith("/subnets/snet-aks")

    ctl("DELETE", "requests")
    refused = Engine(moved, clients).apply(plan)
    assert refused.get(PE_PG).outcome is Outcome.BLOCKED
    assert _writes(ctl) == []

    # With --allow-replace: deleted and created in the new subnet; the A record and the NSG
    # rules follow the new IP in the same apply.
    result = Engine(moved, clients).apply(plan, allow_replace=True)
    assert result.get(PE_PG).outcome is Outcome.REPLACED
    ip = _pe_ip(clients, "nsc-pe-pg-langfuse")
    assert ip.startswith("10.10.2.")
    assert _a_record(clients, PG_ZONE_NAME, "nsc-pg-langfuse-dev") == [ip]
    assert _rule(clients, "allow-aks-to-pg-langfuse-5432")["destinationAddressPrefix"] == f"{ip}/32"
    after = _plan(moved, clients)
    assert [r.address for r in after.resources if r.address in TARGETS and r.changes] == []


def test_server_update_is_a_patch_of_the_changed_field_without_password(
    tmp_path: Path,
    seed_text: str,
    state: DesiredState,
    clients: Clients,
    ctl: Callable[..., Any],
) -> None:
    _apply(state, clients)
    bigger = _variant(tmp_path, seed_text, "storage_gb: 32", "storage_gb: 64")
    plan = _plan(bigger, clients)
    server = plan.get(PG)
    assert [(c.path, c.before, c.after) for c in server.changes] == [
        ("properties.storage.storageSizeGB", 32, 64)
    ]
    ctl("DELETE", "requests")
    result = Engine(bigger, clients).apply(plan)
    assert result.get(PG).outcome is Outcome.UPDATED
    sent = [r for r in ctl("GET", "requests") if r["method"] in WRITES and r["plane"] == "arm"]
    assert [(r["method"], r["request_body"]) for r in sent] == [
        ("PATCH", {"properties": {"storage": {"storageSizeGB": 64}}})
    ]


def test_admin_login_change_is_a_replacement_never_automated(
    tmp_path: Path,
    seed_text: str,
    state: DesiredState,
    clients: Clients,
    ctl: Callable[..., Any],
) -> None:
    _apply(state, clients)
    changed = _variant(
        tmp_path, seed_text, "admin_login: langfuseadmin", "admin_login: langfuseowner"
    )
    plan = _plan(changed, clients)
    assert plan.get(PG).action is Action.REPLACE
    assert [(c.path, c.requires_replacement) for c in plan.get(PG).changes] == [
        ("properties.administratorLogin", True)
    ]
    ctl("DELETE", "requests")
    assert plan.get(PG).replace_policy is ReplacePolicy.MANUAL
    result = Engine(changed, clients).apply(plan, allow_replace=True)
    assert result.get(PG).outcome is Outcome.BLOCKED  # refused by the kind's replace policy
    assert "replace policy manual" in (result.get(PG).detail or "")
    assert "migrate" in (result.get(PG).detail or "")  # the manual steps
    assert _writes(ctl) == []


def test_private_vault_generated_password_is_used_without_reading_it_back(
    emu: Emulator, state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    # Outside the vault's VNet the data plane answers 403: the password is generated and
    # written through the ARM control plane, and the server is created with it in the same
    # run without reading it back. No value in any output.
    ctl("POST", "config", {"enforce_vault_network": True})
    engine = Engine(state, clients)
    result = engine.apply(engine.plan(targets=[PG]))
    assert result.get(PG).outcome is Outcome.CREATED, result.render()
    password = str(emu.world.secrets.get("nsc-kv-dev", "langfuse-pg-admin-password")["value"])
    assert password
    puts = [
        r for r in ctl("GET", "requests") if r["method"] == "PUT" and "flexibleServers" in r["path"]
    ]
    assert puts
    assert password not in result.render()
    assert password not in json.dumps(engine.plan(targets=[PG]).to_json())


def test_private_vault_password_from_an_earlier_run_cannot_be_read_and_nothing_is_created(
    emu: Emulator, state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    # The secret exists from an earlier run and the server does not (deleted by hand): from
    # outside the VNet the password cannot be read, so the server is not created, and the
    # error says why without any value.
    secret_only = Engine(state, clients)
    secret_only.apply(secret_only.plan(targets=["key_vault_secret/langfuse-pg-admin-password"]))
    ctl("POST", "config", {"enforce_vault_network": True})
    ctl("DELETE", "requests")
    engine = Engine(state, clients)
    result = engine.apply(engine.plan(targets=[PG]))
    failed = result.get(PG)
    assert failed.outcome is Outcome.FAILED
    assert "cannot read secret langfuse-pg-admin-password" in (failed.detail or "")
    assert "HTTP 403" in (failed.detail or "")
    assert not [w for w in _writes(ctl) if "flexibleServers" in w[1]]
    password = str(emu.world.secrets.get("nsc-kv-dev", "langfuse-pg-admin-password")["value"])
    assert password not in (failed.detail or "")
    assert password not in result.render()
