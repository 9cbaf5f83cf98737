"""The library API a runbook uses: load, plan, render, apply, without the CLI."""

from __future__ import annotations

import json

import nsc_reconcile
from nsc_reconcile.azure import Clients
from nsc_reconcile.changes import Action
from tests.paths import DESIRED_STATE


def test_runbook_flow(clients: Clients) -> None:
    state = nsc_reconcile.load_desired_state(DESIRED_STATE)
    planned = nsc_reconcile.plan(
        state, clients, targets=["private_dns_zone/privatelink.openai.azure.com"]
    )
    assert [r.address for r in planned.changes] == ["private_dns_zone/privatelink.openai.azure.com"]
    assert planned.changes[0].action is Action.CREATE
    assert json.loads(planned.render("json"))["summary"]["create"] == 1
    assert "| create |" in planned.render("markdown")
    result = nsc_reconcile.apply(planned, state, clients)
    assert result.ok
    assert [r.address for r in result.writes] == ["private_dns_zone/privatelink.openai.azure.com"]
    again = nsc_reconcile.plan(
        state, clients, targets=["private_dns_zone/privatelink.openai.azure.com"]
    )
    assert not again.has_changes
