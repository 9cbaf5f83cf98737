"""Rendering of plans and apply results: text for terminals, JSON, Markdown for reviews.

The only place that turns change values into text. Imports no SDK. Values are already
redacted at the source ("(sensitive)"); nothing here can add a secret.
"""

from __future__ import annotations

import json
from typing import Any

from nsc_reconcile.changes import SENSITIVE, Action, FieldChange, Unknown
from nsc_reconcile.kube_summary import object_changes, object_lines
from nsc_reconcile.plans import ApplyResult, Outcome, Plan, ResourcePlan

FORMATS = ("text", "json", "markdown")
RERUN_INTERRUPTED = "re-run apply to continue"

_SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "!",
    Action.BLOCKED: "x",
    Action.UNCHANGED: "=",
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


SUMMARISED_HINT = "(one line per Kubernetes object: plan --verbose shows every field)"
DESCRIBED_HINT = (
    "Role assignments are shown as who gets which role on what; plan --verbose shows their ids."
)


def described_only(resource: ResourcePlan, verbose: bool = False) -> bool:
    """Whether a text plan shows a resource by its description alone: one to create that has
    one (a grant: its fields are the ids the description names), unless ``verbose``. An
    update or a replacement keeps its field lines: they say what changes. (Markdown keeps
    them all, folded under the description.)"""
    return bool(resource.description) and resource.action is Action.CREATE and not verbose


def detail_lines(resource: ResourcePlan, verbose: bool = False) -> tuple[list[str], bool]:
    """The lines under a resource: one per field changed or, for the Kubernetes objects of a
    workload unless ``verbose``, one per object (kube_summary.py). The flag says whether they
    were summarised."""
    objects = None if verbose else object_changes(resource)
    if objects is not None:
        return object_lines(objects), True
    return [_change_line(c, resource.action) for c in resource.changes], False


def hidden_line(count: int) -> str:
    """Says how many unchanged resources a plan does not list."""
    if count == 1:
        return "1 unchanged resource not shown (plan --show-unchanged lists it)."
    return f"{count} unchanged resources not shown (plan --show-unchanged lists them)."


def summary_line(plan: Plan) -> str:
    counts = plan.counts()
    return (
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['replace']} to replace, {counts['blocked']} blocked, "
        f"{counts['unchanged']} unchanged, {counts['read']} existing read."
    )


def render_plan(
    plan: Plan, fmt: str = "text", *, verbose: bool = False, show_unchanged: bool = False
) -> str:
    """The plan in ``fmt``. Text and Markdown summarise Kubernetes objects (one line per
    object) unless ``verbose``, and leave out unchanged resources, saying how many, unless
    ``show_unchanged``; JSON always has everything."""
    if fmt == "json":
        return json.dumps(plan.to_json(), indent=2)
    if fmt == "markdown":
        from nsc_reconcile.plan_markdown import plan_markdown

        return plan_markdown(plan, verbose=verbose, show_unchanged=show_unchanged)
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    lines = [
        f"Plan for environment {plan.environment}: subscription {plan.subscription_id}, "
        f"resource group {plan.resource_group}",
        "",
    ]
    quiet: list[ResourcePlan] = []
    for resource in plan.resources:
        if resource.action in (Action.UNCHANGED, Action.READ):
            quiet.append(resource)
            continue
        policy = f"  (replace policy: {resource.replace_policy})" if resource.replace_policy else ""
        lines.append(
            f"{_SYMBOL[resource.action]} {resource.action.value:<9} {resource.address}{policy}"
        )
        if resource.description:
            lines.append(f"      {resource.description}")
        if resource.reason:
            lines.append(f"      {resource.reason}")
        details, summarised = detail_lines(resource, verbose)
        if described_only(resource, verbose):
            details = []
        lines += [f"      {line}" for line in details]
        if summarised:
            lines.append(f"      {SUMMARISED_HINT}")
    if any(described_only(r, verbose) for r in plan.resources):
        lines += ["", DESCRIBED_HINT]
    notes = [(r.address, n) for r in plan.resources for n in r.notes]
    if notes:
        lines += ["", "Notes:"]
        lines += [f"  ! {address}: {note}" for address, note in notes]
    shown = [r for r in quiet if show_unchanged or r.action is not Action.UNCHANGED]
    if quiet:
        lines.append("")
        lines.append("No change:")
        lines += [f"{_SYMBOL[r.action]} {r.action.value:<9} {r.address}" for r in shown]
        if len(shown) < len(quiet):
            lines.append(hidden_line(len(quiet) - len(shown)))
    if plan.unsupported:
        lines += ["", "Not reconciled by this version (left out): " + ", ".join(plan.unsupported)]
    lines += orphan_lines(plan)
    lines += ["", summary_line(plan)]
    if not plan.has_changes and not plan.blocked and plan.orphans:
        lines.append(
            f"No changes. Declared resources match the desired state; {len(plan.orphans)} not "
            "declared, left in place (see above)."
        )
    elif not plan.has_changes and not plan.blocked:
        lines.append("No changes. Live state matches the desired state.")
    return "\n".join(lines)


ORPHANS_TITLE = "Not declared; left in place"


def _orphans_intro(plan: Plan, they: str = "they") -> str:
    return (
        f"{they} carry nsc-reconcile's marks for {plan.environment} (or `shared`), but the "
        "desired state no longer declares them; `apply --prune` deletes them after a separate "
        "confirmation"
    )


def orphan_lines(plan: Plan) -> list[str]:
    """The plan's orphans (pruning.py), each with why `apply --prune` alone would keep it,
    and what was not looked for."""
    lines: list[str] = []
    if plan.orphans:
        lines += ["", f"{ORPHANS_TITLE} ({len(plan.orphans)}): {_orphans_intro(plan)}:"]
        for orphan in plan.orphans:
            why = orphan.refusal(allow_data_loss=False)
            line = f"  - {orphan.address}" + (f"  {orphan.details}" if orphan.details else "")
            lines.append(line + (f"  ({why})" if why else ""))
    if plan.orphans_not_searched:
        lines += [""] + [f"Orphans: {note}" for note in plan.orphans_not_searched]
    return lines


def orphan_markdown(plan: Plan) -> list[str]:
    """The orphans section of a Markdown plan (one bullet each)."""
    if not plan.orphans and not plan.orphans_not_searched:
        return []
    lines = ["", f"**{ORPHANS_TITLE}** ({len(plan.orphans)})", ""]
    if plan.orphans:
        lines += [_md(_orphans_intro(plan, "They")) + ".", ""]
    for orphan in plan.orphans:
        said = [_md(t) for t in (orphan.details, orphan.refusal(allow_data_loss=False)) if t]
        lines.append(f"- `{orphan.address}`" + (f": {'; '.join(said)}" if said else ""))
    lines += [f"- orphans {_md(note)}" for note in plan.orphans_not_searched]
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|")


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
        if result.interrupted:
            summary += f"; {RERUN_INTERRUPTED}"
        return "\n".join([*lines, "", f"**Apply: {summary}.**"])
    width = max((len(r.address) for r in result.resources), default=10) + 2
    lines = [f"{'RESOURCE':<{width}}{'OUTCOME':<11}{'SECONDS':>8}  DETAIL"]
    for r in result.resources:
        detail = r.detail or ""
        lines.append(f"{r.address:<{width}}{r.outcome.value:<11}{r.seconds:>8.1f}  {detail}")
    verdict = "Apply complete" if result.ok else "Apply incomplete"
    if result.interrupted:
        verdict = "Apply interrupted"
    lines += ["", f"{verdict} in {result.seconds:.1f}s: {summary}."]
    failed = [r for r in result.resources if r.outcome is Outcome.FAILED]
    if result.interrupted:
        lines.append(f"Interrupted: {RERUN_INTERRUPTED} (it re-reads live state first).")
    elif failed:
        lines.append("Re-run apply once the cause is fixed: it continues from where it stopped.")
    return "\n".join(lines)
