"""A private endpoint's connection state and its one DNS zone group, against the emulator with
the real SDK clients: a Rejected or Disconnected connection needs a new connection (a
replacement, shown in the plan), a Pending one is a note naming who must approve; a zone group
of another name (a platform policy's) is used as it is when it covers the declared zones, and
otherwise stops the endpoint with a clear message (Azure allows one per endpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.mgmt.network.models import PrivateDnsZoneGroup
from azure.mgmt.privatedns.models import PrivateZone

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.changes import Action, ReplacePolicy
from nsc_reconcile.emulator.worlds import RESOURCE_GROUP
from nsc_reconcile.engine import Engine, PlanBlockedError
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome, Plan
from tests.paths import DESIRED_STATE

PE = "private_endpoint/nsc-pe-openai"
ACCOUNT = "openai_account/nsc-aoai-dev"
ZONE = "privatelink.openai.azure.com"
STATUS = (
    "properties.privateLinkServiceConnections[nsc-pe-openai]"
    ".privateLinkServiceConnectionState.status"
)
WRITES = {"PUT", "PATCH", "DELETE"}


@pytest.fixture
def state(ctl: Callable[..., Any]) -> DesiredState:
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    return load_desired_state(DESIRED_STATE)


def _plan(state: DesiredState, clients: Clients) -> Plan:
    return Engine(state, clients).plan(targets=[PE])


def _created(state: DesiredState, clients: Clients) -> Plan:
    engine = Engine(state, clients)
    result = engine.apply(engine.plan(targets=[PE]))
    assert result.ok, result.render()
    return _plan(state, clients)


def _set_connection(ctl: Callable[..., Any], plan: Plan, status: str, description: str) -> None:
    """What the target's owner does: the state on the target side and on the endpoint."""
    endpoint_id, account_id = plan.get(PE).id, plan.get(ACCOUNT).id
    endpoint = ctl("GET", f"state?id={endpoint_id}")
    for connection in endpoint["properties"]["privateLinkServiceConnections"]:
        connection["properties"]["privateLinkServiceConnectionState"].update(
            status=status, description=description
        )
    ctl("PUT", f"state?id={endpoint_id}", endpoint)
    account = ctl("GET", f"state?id={account_id}")
    for connection in account["properties"]["privateEndpointConnections"]:
        connection["properties"]["privateLinkServiceConnectionState"].update(
            status=status, description=description
        )
    ctl("PUT", f"state?id={account_id}", account)


def _status(clients: Clients) -> str:
    endpoint = clients.network.private_endpoints.get(RESOURCE_GROUP, "nsc-pe-openai")
    state = endpoint.private_link_service_connections[0].private_link_service_connection_state
    return str(state.status)


@pytest.mark.parametrize("status", ["Rejected", "Disconnected"])
def test_a_dead_connection_is_a_replacement_for_a_new_connection(
    status: str, state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    plan = _created(state, clients)
    _set_connection(ctl, plan, status, "Not for this subscription")

    plan = _plan(state, clients)
    endpoint = plan.get(PE)
    assert endpoint.action is Action.REPLACE
    assert [(c.path, c.before, c.after, c.requires_replacement) for c in endpoint.changes] == [
        (STATUS, status, "Approved", True)
    ]
    assert endpoint.replace_policy is ReplacePolicy.AUTOMATED
    assert any("needs a new connection" in note for note in endpoint.notes), endpoint.notes
    text = plan.render("text")
    assert f"! replace   {PE}  (replace policy: automated)" in text
    assert f'{STATUS}: "{status}" -> "Approved" (requires replacement)' in text

    result = Engine(state, clients).apply(plan, allow_replace=True)
    assert result.get(PE).outcome is Outcome.REPLACED, result.render()
    assert _status(clients) == "Approved"
    assert _plan(state, clients).get(PE).action is Action.UNCHANGED


def test_a_pending_connection_is_a_note_naming_the_targets_owner(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    plan = _created(state, clients)
    account_id = plan.get(ACCOUNT).id
    _set_connection(ctl, plan, "Pending", "Awaiting Approval")

    plan = _plan(state, clients)
    endpoint = plan.get(PE)
    assert endpoint.action is Action.UNCHANGED  # nothing apply could do about it
    [note] = endpoint.notes
    assert "awaits approval (Pending" in note
    assert f"the owner of {ACCOUNT} ({account_id})" in note
    assert "private-endpoint-connection approve --id" in note
    assert f"! {PE}: connection awaits approval" in plan.render("text")


def _put_foreign_group(clients: Clients, zone_ids: list[str]) -> None:
    """What a platform's DeployIfNotExists policy does: its own zone group on the endpoint."""
    clients.network.private_dns_zone_groups.begin_delete(
        RESOURCE_GROUP, "nsc-pe-openai", "default"
    ).result()
    configs = [
        {"name": f"config-{i}", "properties": {"privateDnsZoneId": zone}}
        for i, zone in enumerate(zone_ids)
    ]
    clients.network.private_dns_zone_groups.begin_create_or_update(
        RESOURCE_GROUP,
        "nsc-pe-openai",
        "deployedByPolicy",
        PrivateDnsZoneGroup({"properties": {"privateDnsZoneConfigs": configs}}),
    ).result()


def _zone_groups(clients: Clients) -> list[str]:
    groups = clients.network.private_dns_zone_groups.list("nsc-pe-openai", RESOURCE_GROUP)
    return sorted(str(g.name) for g in groups)


def test_a_policy_zone_group_covering_the_zone_is_adopted(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    plan = _created(state, clients)
    zone_id = str(plan.get(f"private_dns_zone/{ZONE}").id)
    _put_foreign_group(clients, [zone_id])

    plan = _plan(state, clients)
    endpoint = plan.get(PE)
    assert endpoint.action is Action.UNCHANGED, endpoint.changes
    assert any("uses DNS zone group 'deployedByPolicy'" in n for n in endpoint.notes)

    # A deleted A record is repaired through that group (written back as it is): no second
    # group, which Azure would refuse.
    record = f"{zone_id}/A/nsc-aoai-dev"
    ctl("DELETE", f"state?id={record}")
    plan = _plan(state, clients)
    assert plan.get(PE).action is Action.UPDATE
    ctl("DELETE", "requests")
    result = Engine(state, clients).apply(plan)
    assert result.get(PE).outcome is Outcome.UPDATED, result.render()
    puts = [r["path"] for r in ctl("GET", "requests") if r["method"] in WRITES]
    assert [p.rsplit("/", 1)[-1] for p in puts] == ["deployedByPolicy"]
    assert _zone_groups(clients) == ["deployedByPolicy"]
    assert ctl("GET", f"state?id={record}")["properties"]["aRecords"]
    assert _plan(state, clients).get(PE).action is Action.UNCHANGED


def test_a_zone_group_of_another_zone_stops_the_endpoint_with_a_clear_message(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    _created(state, clients)
    hub = clients.privatedns.private_zones.begin_create_or_update(
        RESOURCE_GROUP, "privatelink.cognitiveservices.azure.com", PrivateZone(location="global")
    ).result()
    _put_foreign_group(clients, [str(hub.id)])

    plan = _plan(state, clients)
    endpoint = plan.get(PE)
    assert endpoint.action is Action.BLOCKED
    reason = endpoint.reason or ""
    assert "already has DNS zone group 'deployedByPolicy'" in reason
    assert "one zone group per endpoint" in reason
    assert "dns_zone_group.name: deployedByPolicy" in reason  # what to do about it
    ctl("DELETE", "requests")
    with pytest.raises(PlanBlockedError):
        Engine(state, clients).apply(plan)
    assert [r for r in ctl("GET", "requests") if r["method"] in WRITES] == []
    assert _zone_groups(clients) == ["deployedByPolicy"]
