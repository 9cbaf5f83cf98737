"""The engine against the emulator with the real SDK clients: ordering, idempotency, failure
isolation, saved plans, ownership. Uses the private DNS kinds (zone + VNet links)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.engine import Engine, PlanBlockedError, PlanStaleError
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome
from nsc_reconcile.retry import RetryPolicy
from tests.paths import DESIRED_STATE

ZONE = "private_dns_zone/privatelink.openai.azure.com"
LINK = "private_dns_zone_link/privatelink.openai.azure.com/link-nsc-vnet-dev"
PG_LINK = "private_dns_zone_link/privatelink.postgres.database.azure.com/link-nsc-vnet-dev"
TARGETS = [LINK, PG_LINK]
FAST = RetryPolicy(attempts=2, initial_wait_s=0.01, max_wait_s=0.05)
WRITES = {"PUT", "PATCH", "DELETE"}


@pytest.fixture
def state() -> DesiredState:
    return load_desired_state(DESIRED_STATE)


def engine_for(state: DesiredState, clients: Clients) -> Engine:
    return Engine(state, clients, retry=FAST, parallelism=4)


def arm_requests(ctl: Callable[..., Any]) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = ctl("GET", "requests")
    return [r for r in log if r["path"].startswith("/subscriptions/")]


def test_plan_apply_then_nothing_to_do(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    plan = engine_for(state, clients).plan(TARGETS)
    assert plan.get(ZONE).action is Action.CREATE
    assert plan.get(LINK).action is Action.CREATE
    assert plan.get(PG_LINK).action is Action.UPDATE  # adopted: gets our tags
    assert plan.get("virtual_network/nsc-vnet-dev").action is Action.READ
    assert not [r for r in arm_requests(ctl) if r["method"] in WRITES], "plan wrote"

    result = engine_for(state, clients).apply(plan)
    assert result.ok, result.render()
    assert result.get(ZONE).outcome is Outcome.CREATED
    assert result.get(LINK).outcome is Outcome.CREATED
    assert result.get(PG_LINK).outcome is Outcome.UPDATED

    ctl("DELETE", "requests")
    again = engine_for(state, clients).plan(TARGETS)
    assert not again.has_changes, again.render()
    requests = arm_requests(ctl)
    assert [r for r in requests if r["method"] in WRITES] == []
    assert len(requests) <= len(again.resources)  # one read per resource

    ctl("DELETE", "requests")
    second = engine_for(state, clients).apply(again)
    assert second.writes == []
    assert [r for r in arm_requests(ctl) if r["method"] in WRITES] == []


def test_drift_shows_as_exactly_that_field_and_apply_repairs_it(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any], emu: Emulator
) -> None:
    engine_for(state, clients).apply(engine_for(state, clients).plan(TARGETS))
    link_id = engine_for(state, clients).plan(TARGETS).get(LINK).id
    assert link_id is not None
    live = ctl("GET", f"state?id={link_id}")
    live["properties"]["registrationEnabled"] = True
    live["tags"]["owner"] = "someone-else"  # not ours: never a change
    ctl("PUT", f"state?id={link_id}", live)

    plan = engine_for(state, clients).plan(TARGETS)
    link = plan.get(LINK)
    assert link.action is Action.UPDATE
    assert [(c.path, c.before, c.after) for c in link.changes] == [
        ("properties.registrationEnabled", True, False)
    ]
    assert [r.address for r in plan.changes] == [LINK]

    result = engine_for(state, clients).apply(plan)
    assert result.get(LINK).outcome is Outcome.UPDATED
    repaired = ctl("GET", f"state?id={link_id}")
    assert repaired["properties"]["registrationEnabled"] is False
    assert repaired["tags"]["owner"] == "someone-else"  # what others set survives
    _ = emu


def test_a_failure_skips_its_dependents_and_the_rest_finishes(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    ctl(
        "POST",
        "faults",
        [{"method": "PUT", "path": "privateDnsZones/privatelink.openai.azure.com$",
          "status": 503, "code": "ServiceUnavailable", "retry_after": 0, "count": 1000}],
    )  # fmt: skip
    engine = Engine(state, clients, retry=FAST, parallelism=4)
    result = engine.apply(engine.plan(TARGETS))
    assert not result.ok
    assert result.get(ZONE).outcome is Outcome.FAILED
    assert "503" in (result.get(ZONE).detail or "")
    assert result.get(LINK).outcome is Outcome.SKIPPED
    assert ZONE in (result.get(LINK).detail or "")
    assert result.get(PG_LINK).outcome is Outcome.UPDATED  # independent branch finished

    ctl("DELETE", "faults")
    rerun = engine_for(state, clients).apply(engine_for(state, clients).plan(TARGETS))
    assert rerun.ok, rerun.render()
    assert rerun.get(ZONE).outcome is Outcome.CREATED
    assert rerun.get(PG_LINK).outcome is Outcome.UNCHANGED
    assert not engine_for(state, clients).plan(TARGETS).has_changes


def test_transient_conflicts_are_retried(
    state: DesiredState, make_clients: Callable[..., Clients], ctl: Callable[..., Any]
) -> None:
    ctl(
        "POST",
        "faults",
        [{"method": "PUT", "path": "virtualNetworkLinks/link-nsc-vnet-dev$", "status": 409,
          "code": "AnotherOperationInProgress", "retry_after": 0, "count": 1}],
    )  # fmt: skip
    clients = make_clients(retry_total=0)
    engine = Engine(state, clients, retry=FAST, parallelism=1)
    result = engine.apply(engine.plan([LINK]))
    assert result.ok, result.render()


def test_permanent_errors_fail_fast_with_the_arm_code(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    ctl(
        "POST",
        "faults",
        [{"method": "PUT", "path": "privateDnsZones/privatelink.openai.azure.com$",
          "status": 400, "code": "InvalidParameter", "count": 5}],
    )  # fmt: skip
    result = engine_for(state, clients).apply(engine_for(state, clients).plan([ZONE]))
    zone = result.get(ZONE)
    assert zone.outcome is Outcome.FAILED
    assert "InvalidParameter" in (zone.detail or "")
    puts = [r for r in arm_requests(ctl) if r["method"] == "PUT"]
    assert len(puts) == 1  # no retry of a permanent error


def test_saved_plan_is_refused_when_live_state_moved(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    plan = engine_for(state, clients).plan(TARGETS)
    pg_link_id = plan.get(PG_LINK).id
    assert pg_link_id is not None
    live = ctl("GET", f"state?id={pg_link_id}")
    live["properties"]["registrationEnabled"] = True
    ctl("PUT", f"state?id={pg_link_id}", live)
    ctl("DELETE", "requests")
    with pytest.raises(PlanStaleError, match="live state moved"):
        engine_for(state, clients).apply(plan, saved=True)
    assert [r for r in arm_requests(ctl) if r["method"] in WRITES] == []


def test_foreign_resource_is_blocked_without_adopt(state: DesiredState, clients: Clients) -> None:
    data = state.model_dump()
    for link in data["private_dns_zone_links"]:
        link["adopt"] = False
    strict = DesiredState.model_validate(data)
    plan = engine_for(strict, clients).plan([PG_LINK])
    blocked = plan.get(PG_LINK)
    assert blocked.action is Action.BLOCKED
    assert "not created by nsc-reconcile" in (blocked.reason or "")


def test_missing_existing_reference_blocks_only_its_dependents(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any], emu: Emulator
) -> None:
    sub = emu.info["subscription_id"]
    nsg_id = (
        f"/subscriptions/{sub}/resourceGroups/2dt-final-team4/providers/"
        "Microsoft.Network/networkSecurityGroups/nsc-nsg-data-dev"
    )
    ctl("DELETE", f"state?id={nsg_id}")
    rule = "nsg_rule/nsc-nsg-data-dev/allow-aks-to-openai-443"
    plan = engine_for(state, clients).plan([rule, LINK])
    nsg = plan.get("network_security_group/nsc-nsg-data-dev")
    assert nsg.action is Action.BLOCKED
    assert "existing resource not found" in (nsg.reason or "")
    assert plan.get(rule).action is Action.BLOCKED
    assert "network_security_group/nsc-nsg-data-dev" in (plan.get(rule).reason or "")
    assert plan.get(LINK).action is Action.CREATE  # unrelated: still planned

    # A plan with a blocked item is not applied (as Terraform refuses a plan with errors)...
    ctl("DELETE", "requests")
    with pytest.raises(PlanBlockedError, match="blocked resource"):
        engine_for(state, clients).apply(plan)
    assert [r for r in arm_requests(ctl) if r["method"] in WRITES] == []
    # ... unless the targets leave the blocked ones out.
    result = engine_for(state, clients).apply(engine_for(state, clients).plan([LINK]))
    assert result.get(LINK).outcome is Outcome.CREATED
    assert not [
        r for r in arm_requests(ctl) if r["method"] == "PUT" and "securityRules" in r["path"]
    ]


def test_reuse_mode_never_creates_a_missing_account(state: DesiredState, clients: Clients) -> None:
    data = state.model_dump()
    data["openai_accounts"][0]["mode"] = "reuse"
    reuse = DesiredState.model_validate(data)
    deployment = "openai_deployment/nsc-aoai-dev/gpt-4o-mini"
    plan = engine_for(reuse, clients).plan([deployment])
    account = plan.get("openai_account/nsc-aoai-dev")
    assert account.action is Action.BLOCKED
    assert "reuse" in (account.reason or "")
    assert plan.get(deployment).action is Action.BLOCKED
