"""Rendering of plans and apply results: text for terminals, JSON, Markdown for reviews.

The only place that turns change values into text. Imports no SDK. Values are already
redacted at the source ("(sensitive)"); nothing here can add a secret.
"""

from __future__ import annotations

import json
from typing import Any

from nsc_reconcile.changes import SENSITIVE, Action, FieldChange, Unknown
from nsc_reconcile.plans import ApplyResult, Outcome, Plan, ResourcePlan

FORMATS = ("text", "json", "markdown")

_SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "!",
    Action.BLOCKED: "x",
    Action.NO_CHANGE: "=",
    Action.READ: "<",
}


def show(value: Any) -> str:
    """A change value for humans."""
    if value is None:
        return "(absent)"
    if isinstance(value, Unknown):
        return str(value)
    if value == SENSITIVE:
        return SENSITIVE
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _change_line(change: FieldChange, action: Action) -> str:
    mark = " (requires replacement)" if change.requires_replacement else ""
    if action is Action.CREATE or change.before is None:
        return f"+ {change.path} = {show(change.after)}"
    return f"~ {change.path}: {show(change.before)} -> {show(change.after)}{mark}"


def summary_line(plan: Plan) -> str:
    counts = plan.counts()
    return (
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['replace']} to replace, {counts['blocked']} blocked, "
        f"{counts['no-change']} unchanged, {counts['read']} existing read."
    )


def render_plan(plan: Plan, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(plan.to_json(), indent=2)
    if fmt == "markdown":
        return _plan_markdown(plan)
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    lines = [
        f"Plan for environment {plan.environment}: subscription {plan.subscription_id}, "
        f"resource group {plan.resource_group}",
        "",
    ]
    quiet: list[ResourcePlan] = []
    for resource in plan.resources:
        if resource.action in (Action.NO_CHANGE, Action.READ):
            quiet.append(resource)
            continue
        policy = f"  (replace policy: {resource.replace_policy})" if resource.replace_policy else ""
        lines.append(
            f"{_SYMBOL[resource.action]} {resource.action.value:<9} {resource.address}{policy}"
        )
        if resource.reason:
            lines.append(f"      {resource.reason}")
        lines += [f"      {_change_line(c, resource.action)}" for c in resource.changes]
    notes = [(r.address, n) for r in plan.resources for n in r.notes]
    if notes:
        lines += ["", "Notes:"]
        lines += [f"  ! {address}: {note}" for address, note in notes]
    if quiet:
        lines.append("")
        lines.append("No change:")
        lines += [f"{_SYMBOL[r.action]} {r.action.value:<9} {r.address}" for r in quiet]
    if plan.unsupported:
        lines += ["", "Not reconciled by this version (left out): " + ", ".join(plan.unsupported)]
    lines += ["", summary_line(plan)]
    if not plan.has_changes and not plan.blocked:
        lines.append("No changes. Live state matches the desired state.")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _plan_markdown(plan: Plan) -> str:
    lines = [
        f"## nsc-reconcile plan: `{plan.environment}`",
        "",
        f"Subscription `{plan.subscription_id}`, resource group `{plan.resource_group}`.",
        "",
        f"**{summary_line(plan)}**",
        "",
        "| action | resource | details |",
        "|---|---|---|",
    ]
    for resource in plan.resources:
        if resource.action in (Action.NO_CHANGE, Action.READ):
            continue
        details = "<br>".join(
            _md(f"`{_change_line(c, resource.action)}`") for c in resource.changes
        )
        if resource.reason:
            details = _md(resource.reason) + ("<br>" + details if details else "")
        action = resource.action.value
        if resource.replace_policy:
            action += f" ({resource.replace_policy})"
        lines.append(f"| {action} | `{resource.address}` | {details} |")
    notes = [(r.address, n) for r in plan.resources for n in r.notes]
    if notes:
        lines += ["", "**Notes**", ""]
        lines += [f"- `{address}`: {_md(note)}" for address, note in notes]
    unchanged = [r.address for r in plan.resources if r.action in (Action.NO_CHANGE, Action.READ)]
    if unchanged:
        lines += ["", "<details><summary>Unchanged and existing</summary>", ""]
        lines += [f"- `{a}`" for a in unchanged]
        lines += ["", "</details>"]
    return "\n".join(lines)


def render_result(result: ApplyResult, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(result.to_json(), indent=2)
    counts = result.counts()
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    if fmt == "markdown":
        lines = ["| resource | outcome | seconds | detail |", "|---|---|---|---|"]
        lines += [
            f"| `{r.address}` | {r.outcome.value} | {r.seconds:.1f} | {_md(r.detail or '')} |"
            for r in result.resources
        ]
        return "\n".join([*lines, "", f"**Apply: {summary}.**"])
    width = max((len(r.address) for r in result.resources), default=10) + 2
    lines = [f"{'RESOURCE':<{width}}{'OUTCOME':<11}{'SECONDS':>8}  DETAIL"]
    for r in result.resources:
        detail = r.detail or ""
        lines.append(f"{r.address:<{width}}{r.outcome.value:<11}{r.seconds:>8.1f}  {detail}")
    verdict = "Apply complete" if result.ok else "Apply incomplete"
    lines += ["", f"{verdict} in {result.seconds:.1f}s: {summary}."]
    failed = [r for r in result.resources if r.outcome is Outcome.FAILED]
    if failed:
        lines.append("Re-run apply once the cause is fixed: it continues from where it stopped.")
    return "\n".join(lines)
