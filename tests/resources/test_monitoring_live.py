"""Alerting kinds end to end with the real SDK clients against the emulator: custom table ->
DCR -> action group -> log alerts, created from the baseline, then idempotent, drift repaired,
DCR immutable id kept, a 429 storm retried, webhook URIs compared without being shown."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.changes import SENSITIVE, Action, ReplacePolicy
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.monitoring import DataCollectionRule
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome, Plan
from nsc_reconcile.resources import reconciler_for
from nsc_reconcile.resources.monitoring import WEBHOOK_URIS, DataCollectionRuleReconciler
from nsc_reconcile.retry import RetryPolicy
from tests.conftest import state_with_webhook
from tests.paths import DESIRED_STATE

Ctl = Callable[..., Any]

TABLE = "log_analytics_table/nsc-law-dev/NscAgentEvents_CL"
DCR = "data_collection_rule/nsc-dcr-agent-events-dev"
GROUP = "action_group/nsc-ag-agent-dev"
ALERTS = [
    "log_alert/nsc-alert-triage-ready-dev",
    "log_alert/nsc-alert-approval-timeout-dev",
    "log_alert/nsc-alert-execution-failed-dev",
]
OURS = [TABLE, DCR, GROUP, *ALERTS]
TARGETS = [DCR, *ALERTS]  # dependencies (table, group, workspace) come along
WRITES = ("PUT", "PATCH", "DELETE", "POST")
FAST = RetryPolicy(attempts=5, initial_wait_s=0.01, max_wait_s=0.05)


def _state() -> DesiredState:
    return load_desired_state(DESIRED_STATE)


def _engine(emu: Emulator, state: DesiredState | None = None, **kwargs: Any) -> Engine:
    clients = Clients(AzureTarget.for_emulator(emu.info["arm"], **kwargs))
    return Engine(state or _state(), clients, retry=FAST)


def _actions(plan: Plan) -> dict[str, Action]:
    return {r.address: r.action for r in plan.resources if r.address in OURS}


def _writes(ctl: Ctl) -> list[tuple[str, str]]:
    return [(e["method"], e["path"]) for e in ctl("GET", "requests") if e["method"] in WRITES]


def _create_all(emu: Emulator, state: DesiredState | None = None) -> Engine:
    engine = _engine(emu, state)
    result = engine.apply(engine.plan(targets=TARGETS))
    outcomes = {r.address: r.outcome for r in result.resources if r.address in OURS}
    assert outcomes == dict.fromkeys(OURS, Outcome.CREATED), result.resources
    return engine


def _state_of(ctl: Ctl, arm_id: str) -> dict[str, Any]:
    stored: dict[str, Any] = ctl("GET", "state?id=" + urllib.parse.quote(arm_id, safe=""))
    return stored


def _put_state(ctl: Ctl, arm_id: str, body: dict[str, Any]) -> None:
    ctl("PUT", "state?id=" + urllib.parse.quote(arm_id, safe=""), body)


def test_create_from_baseline_then_second_plan_is_no_change_with_zero_writes(
    emu: Emulator, ctl: Ctl
) -> None:
    engine = _engine(emu)
    plan = engine.plan(targets=TARGETS)
    assert _actions(plan) == dict.fromkeys(OURS, Action.CREATE)
    result = engine.apply(plan)
    assert {r.address: r.outcome for r in result.resources if r.address in OURS} == dict.fromkeys(
        OURS, Outcome.CREATED
    )

    ctl("DELETE", "requests")
    again = _engine(emu)
    second = again.plan(targets=TARGETS)
    assert _actions(second) == dict.fromkeys(OURS, Action.UNCHANGED)
    assert [c for r in second.resources for c in r.changes] == []
    applied = again.apply(second)
    assert {r.outcome for r in applied.resources if r.address in OURS} == {Outcome.UNCHANGED}
    assert _writes(ctl) == []

    # What was built is what the plan asked for: wired together, the right shapes.
    alert_live, group_live = again.context.live(ALERTS[0]), again.context.live(GROUP)
    assert alert_live is not None
    assert group_live is not None
    alert = _state_of(ctl, alert_live.id)
    assert alert["properties"]["actions"]["actionGroups"] == [group_live.id]
    assert alert["properties"]["skipQueryValidation"] is True
    assert alert["properties"]["criteria"]["allOf"][0]["query"].endswith('== "TRIAGE_READY"')
    dcr_live = again.context.live(DCR)
    assert dcr_live is not None
    columns = dcr_live.fields["properties.streamDeclarations.Custom-NscAgentEvents_CL.columns"]
    assert {"name": "TimeGenerated", "type": "datetime"} in columns


def test_alert_severity_drift_shows_exactly_that_field_and_apply_repairs_it(
    emu: Emulator, ctl: Ctl
) -> None:
    engine = _create_all(emu)
    live = engine.context.live(ALERTS[1])
    assert live is not None
    stored = _state_of(ctl, live.id)
    stored["properties"]["severity"] = 4
    _put_state(ctl, live.id, stored)

    drifted = _engine(emu)
    plan = drifted.plan(targets=TARGETS)
    changed = {r.address: r for r in plan.resources if r.changes}
    assert list(changed) == [ALERTS[1]]
    assert [c.to_json() for c in changed[ALERTS[1]].changes] == [
        {"path": "properties.severity", "before": 4, "after": 2, "requires_replacement": False}
    ]
    result = drifted.apply(plan)
    assert {
        r.address: r.outcome for r in result.resources if r.outcome is not Outcome.UNCHANGED
    } == {
        ALERTS[1]: Outcome.UPDATED,
        "log_analytics_workspace/nsc-law-dev": Outcome.READ,
    }
    assert _state_of(ctl, live.id)["properties"]["severity"] == 2
    assert _actions(_engine(emu).plan(targets=TARGETS)) == dict.fromkeys(OURS, Action.UNCHANGED)


def test_dcr_immutable_id_survives_an_update(emu: Emulator, ctl: Ctl) -> None:
    engine = _create_all(emu)
    immutable_id = engine.context.output(DCR, "immutable_id")
    endpoint = engine.context.output(DCR, "logs_ingestion_endpoint")
    assert str(immutable_id).startswith("dcr-")
    assert str(endpoint).startswith("https://")

    live = engine.context.live(DCR)
    assert live is not None
    stored = _state_of(ctl, live.id)
    stored["properties"]["dataFlows"][0]["transformKql"] = "source | where false"
    _put_state(ctl, live.id, stored)

    repair = _engine(emu)
    plan = repair.plan(targets=[DCR])
    dcr_plan = next(r for r in plan.resources if r.address == DCR)
    assert [c.path for c in dcr_plan.changes] == ["properties.dataFlows"]
    repair.apply(plan)
    after = _state_of(ctl, live.id)["properties"]
    assert after["dataFlows"][0]["transformKql"] == "source"
    assert after["immutableId"] == immutable_id
    assert repair.context.output(DCR, "immutable_id") == immutable_id


def test_dcr_plan_says_its_ingestion_endpoint_is_public(emu: Emulator) -> None:
    engine = _create_all(emu)
    dcr = engine.graph.nodes[DCR]
    assert isinstance(dcr, DataCollectionRule)
    reconciler = reconciler_for(dcr)
    assert isinstance(reconciler, DataCollectionRuleReconciler)
    notes = reconciler.notes(engine.context, dcr)
    endpoint = engine.context.output(DCR, "logs_ingestion_endpoint")
    assert len(notes) == 1
    assert "public" in notes[0].lower()
    assert str(endpoint) in notes[0]
    assert "Private Link Scope" in notes[0]


def test_429_storm_on_the_action_group_put_is_retried_and_succeeds(emu: Emulator, ctl: Ctl) -> None:
    # retry_total=0: azure-core gives up at once, so the engine's own retry layer is what
    # rides out the storm (azure-core alone takes ~5 s here: it treats Retry-After: 0 as
    # "no hint" and backs off 0.8 s, 1.6 s, 3.2 s).
    engine = _engine(emu, retry_total=0)
    plan = engine.plan(targets=[GROUP])
    ctl(
        "POST",
        "faults",
        {
            "method": "PUT",
            "path": "/actionGroups/nsc-ag-agent-dev$",
            "status": 429,
            "code": "TooManyRequests",
            "message": "Too many requests",
            "retry_after": 0,
            "count": 3,
        },
    )
    result = engine.apply(plan)
    assert [r.outcome for r in result.resources if r.address == GROUP] == [Outcome.CREATED]
    puts = [e["status"] for e in ctl("GET", "requests") if e["method"] == "PUT"]
    assert puts == [429, 429, 429, 201]
    assert _actions(_engine(emu).plan(targets=[GROUP])) == {GROUP: Action.UNCHANGED}


def _set_secret(clients: Clients, name: str, value: str) -> None:
    """As an operator would, through ARM (the emulator's ARM view of secrets sees only
    secrets written through ARM; see the report)."""
    from azure.mgmt.keyvault.models import SecretCreateOrUpdateParameters, SecretProperties

    clients.keyvault_mgmt.secrets.create_or_update(
        "2dt-final-team4",
        "nsc-kv-dev",
        name,
        SecretCreateOrUpdateParameters(properties=SecretProperties(value=value)),
    )


def test_webhook_uri_comes_from_key_vault_is_compared_and_never_shown(
    emu: Emulator, ctl: Ctl, tmp_path: Path
) -> None:
    state = state_with_webhook(tmp_path)
    engine = _engine(emu, state)
    first = "https://prod-00.koreacentral.logic.azure.com/workflows/abc/triggers/manual?sig=S3cr3tT0kenAAAA1111"
    _set_secret(engine.clients, "teams-webhook-uri", first)

    plan = engine.plan(targets=[GROUP])
    assert _actions(plan) == {GROUP: Action.CREATE}
    assert first not in json.dumps(plan.to_json())
    engine.apply(plan)
    live = engine.context.live(GROUP)
    assert live is not None
    hooks = _state_of(ctl, live.id)["properties"]["webhookReceivers"]
    assert [(h["name"], h["serviceUri"]) for h in hooks] == [("teams-oncall", first)]
    assert first not in json.dumps(live.fields)
    assert _actions(_engine(emu, state).plan(targets=[GROUP])) == {GROUP: Action.UNCHANGED}

    rotated = first.replace("S3cr3tT0kenAAAA1111", "N3wT0kenBBBB2222xyz")
    _set_secret(engine.clients, "teams-webhook-uri", rotated)
    again = _engine(emu, state)
    plan = again.plan(targets=[GROUP])
    group_plan = next(r for r in plan.resources if r.address == GROUP)
    assert [c.to_json() for c in group_plan.changes] == [
        {
            "path": WEBHOOK_URIS,
            "before": SENSITIVE,
            "after": SENSITIVE,
            "requires_replacement": False,
        }
    ]
    text = json.dumps(plan.to_json())
    assert first not in text
    assert rotated not in text
    again.apply(plan)
    hooks = _state_of(ctl, live.id)["properties"]["webhookReceivers"]
    assert [h["serviceUri"] for h in hooks] == [rotated]


def test_table_column_type_change_is_a_replacement_never_done_silently(
    emu: Emulator, ctl: Ctl
) -> None:
    engine = _create_all(emu)
    live = engine.context.live(TABLE)
    assert live is not None
    stored = _state_of(ctl, live.id)
    for column in stored["properties"]["schema"]["columns"]:
        if column["name"] == "Severity":
            column["type"] = "int"
    stored["properties"]["schema"]["columns"].append({"name": "AddedByDataTeam", "type": "long"})
    _put_state(ctl, live.id, stored)

    again = _engine(emu)
    plan = again.plan(targets=[TABLE])
    table_plan = next(r for r in plan.resources if r.address == TABLE)
    assert table_plan.action is Action.REPLACE
    assert [c.to_json() for c in table_plan.changes] == [
        {
            "path": "properties.schema.columns[Severity].type",
            "before": "int",
            "after": "string",
            "requires_replacement": True,
        }
    ]
    ctl("DELETE", "requests")
    refused = again.apply(plan)
    assert [r.outcome for r in refused.resources if r.address == TABLE] == [Outcome.BLOCKED]
    assert _writes(ctl) == []

    # Its replace policy is data-loss: --allow-replace alone is not enough.
    assert table_plan.replace_policy is ReplacePolicy.DATA_LOSS
    unconfirmed = again.apply(plan, allow_replace=True)
    table = next(r for r in unconfirmed.resources if r.address == TABLE)
    assert table.outcome is Outcome.BLOCKED
    assert f"--confirm-data-loss {TABLE}" in (table.detail or "")
    assert _writes(ctl) == []

    replaced = again.apply(plan, allow_replace=True, confirm_data_loss=[TABLE])
    assert [r.outcome for r in replaced.resources if r.address == TABLE] == [Outcome.REPLACED]
    columns = {
        c["name"]: c["type"] for c in _state_of(ctl, live.id)["properties"]["schema"]["columns"]
    }
    assert columns["Severity"] == "string"
    assert _actions(_engine(emu).plan(targets=[TABLE])) == {TABLE: Action.UNCHANGED}


def test_table_update_keeps_a_column_someone_else_added(emu: Emulator, ctl: Ctl) -> None:
    engine = _create_all(emu)
    live = engine.context.live(TABLE)
    assert live is not None
    stored = _state_of(ctl, live.id)
    stored["properties"]["schema"]["columns"].append({"name": "AddedByDataTeam", "type": "long"})
    stored["properties"]["retentionInDays"] = 90
    _put_state(ctl, live.id, stored)

    again = _engine(emu)
    plan = again.plan(targets=[TABLE])
    table_plan = next(r for r in plan.resources if r.address == TABLE)
    assert [(c.path, c.before, c.after) for c in table_plan.changes] == [
        ("properties.retentionInDays", 90, 30)
    ]
    again.apply(plan)
    after = _state_of(ctl, live.id)["properties"]
    assert after["retentionInDays"] == 30
    assert {"name": "AddedByDataTeam", "type": "long"} in [
        {"name": c["name"], "type": c["type"]} for c in after["schema"]["columns"]
    ]
