"""Checks of alerting (seed §3.4 / §6): a log alert rule per agent event type, enabled, scoped
and wired to its action groups; each action group enabled with receivers. Reads ARM only.
"""

from __future__ import annotations

from typing import Any

from nsc_reconcile.verification.context import Run, make_check, name_of, props_of, same_id
from nsc_reconcile.verification.results import Check

SEED_EVENTS = ("TRIAGE_READY", "APPROVAL_TIMEOUT", "EXECUTION_FAILED")  # seed §3.4 / §3.6


def check_alert_rules(run: Run) -> Check:
    """Seed §3.4 / §6: a log alert rule per agent event type (TRIAGE_READY, APPROVAL_TIMEOUT,
    EXECUTION_FAILED): exists, enabled, scoped to the workspace, wired to its action groups."""
    check_id = "alert-rules"
    title = "Alert rules for " + ", ".join(SEED_EVENTS) + " exist, enabled, wired"
    evidence = []
    problems = []
    covered = {a.event for a in run.state.log_alerts}
    for event in SEED_EVENTS:
        if event not in covered:
            problems.append(f"no log alert declared for {event}")
    for alert in run.state.log_alerts:
        wire = run.wire(alert.address)
        if wire is None:
            problems.append(f"{alert.name} does not exist")
            continue
        props = props_of(wire)
        workspace_id = run.id_of(f"log_analytics_workspace/{alert.workspace}")
        groups = [str(g) for g in (props.get("actions") or {}).get("actionGroups") or []]
        scopes = [str(s) for s in props.get("scopes") or []]
        query = " ".join(
            str(c.get("query") or "") for c in (props.get("criteria") or {}).get("allOf") or []
        )
        evidence.append(
            f"{alert.name}: {alert.event}, enabled={props.get('enabled')}, "
            f"severity={props.get('severity')}, scope={', '.join(name_of(s) for s in scopes)}, "
            f"actionGroups={', '.join(name_of(g) for g in groups)}"
        )
        if props.get("enabled") is not True:
            problems.append(f"{alert.name} is not enabled")
        if not any(same_id(s, workspace_id) for s in scopes):
            problems.append(f"{alert.name} is not scoped to {alert.workspace}")
        for name in alert.action_groups:
            group_id = run.id_of(f"action_group/{name}")
            if not any(same_id(g, group_id) for g in groups):
                problems.append(f"{alert.name} is not wired to action group {name}")
        if alert.event not in query:
            problems.append(f"{alert.name}'s query does not mention {alert.event}")
    return make_check(check_id, title, evidence, problems)


def check_action_group(run: Run, group: Any) -> Check:
    """Seed §3.4: the action group exists and is enabled, with its receivers."""
    check_id = f"action-group/{group.name}"
    title = f"Action group {group.name} exists and is enabled"
    wire = run.wire(group.address)
    if wire is None:
        return make_check(check_id, title, [f"expected id={run.id_of(group.address)}"],
                          ["the action group does not exist"])  # fmt: skip
    props = props_of(wire)
    receivers = [
        f"{kind}:{r.get('name')}"
        for kind, key in (("email", "emailReceivers"), ("webhook", "webhookReceivers"))
        for r in props.get(key) or []
    ]
    evidence = [
        f"id={wire.get('id')}",
        f"enabled={props.get('enabled')}",
        f"groupShortName={props.get('groupShortName')}",
        "receivers: " + (", ".join(receivers) or "none"),
    ]
    problems = []
    if props.get("enabled") is not True:
        problems.append("the action group is not enabled")
    if not receivers:
        problems.append("the action group has no receivers")
    return make_check(check_id, title, evidence, problems)
