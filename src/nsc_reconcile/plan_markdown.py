"""Markdown plans for pull-request comments: one table row per change, its details folded in
``<details>``, the whole cut to fit one comment (GitHub refuses bodies over 65 536 characters).

Rendering only: the lines come from report.py, as redacted as the text plan. No SDK, no I/O.
"""

from __future__ import annotations

from nsc_reconcile.changes import Action
from nsc_reconcile.plans import Plan, ResourcePlan
from nsc_reconcile.report import detail_lines, hidden_line, orphan_markdown, summary_line

# GitHub's maximum body of an issue or pull-request comment, in characters.
GITHUB_COMMENT_LIMIT = 65_536
# What a plan may take, leaving room for a CI job's own header and footer around it.
BUDGET = 60_000
QUIET = (Action.UNCHANGED, Action.READ)


def _text(text: str) -> str:
    """Plain text for a table cell: no column break, no line break, no HTML tag (a note's
    ``https://<rule>.<region>...`` would otherwise vanish as an unknown tag)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("|", "\\|").replace("\n", "<br>")


def _code(text: str) -> str:
    """A code span for a table cell (``|`` still needs its backslash inside one)."""
    body = text.replace("|", "\\|").replace("\n", " ")
    return f"`` {body} ``" if "`" in body else f"`{body}`"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _row(resource: ResourcePlan, verbose: bool, room: int | None = None) -> str:
    """One table row: action, address, then the description (a grant's who, role and what:
    its ids stay folded below), the reason and the folded details. With ``room``,
    detail lines are dropped from the end (saying how many) until the row fits in it."""
    action = resource.action.value
    if resource.replace_policy:
        action += f" ({resource.replace_policy})"
    head = f"| {action} | `{resource.address}` | "
    details, summarised = detail_lines(resource, verbose)
    said = [_text(t) for t in (resource.description, resource.reason) if t]
    if said:
        head += "<br>".join(said) + ("<br>" if details else "")
    if not details:
        return head + " |"
    if summarised:
        fields = _count(len(resource.changes), "field")
        title = f"{_count(len(details), 'object')}, {fields}"
    else:
        title = _count(len(details), "field")
    cells = [_code(line) for line in details]
    shown = len(cells)
    while True:
        more = len(cells) - shown
        folded = "<br>".join(cells[:shown] + ([f"… {more} more (truncated)"] if more else []))
        row = f"{head}<details><summary>{title}</summary>{folded}</details> |"
        if room is None or len(row) <= room or shown == 0:
            return row
        shown -= max(1, (len(row) - room) // 200)  # a detail line is rarely shorter
        shown = max(shown, 0)


def _size(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def plan_markdown(
    plan: Plan, *, verbose: bool = False, show_unchanged: bool = False, budget: int = BUDGET
) -> str:
    """The plan for a review: summary, one row per change (create, update, replace, blocked)
    with its details folded, notes, and the unchanged and existing resources folded. Past
    ``budget`` characters the rows that do not fit are left out and a last line says so."""
    head = [
        f"## nsc-reconcile plan: `{plan.environment}`",
        "",
        f"Subscription `{plan.subscription_id}`, resource group `{plan.resource_group}`.",
        "",
        f"**{summary_line(plan)}**",
        "",
        "| action | resource | details |",
        "|---|---|---|",
    ]
    changing = [r for r in plan.resources if r.action not in QUIET]
    rows = [_row(r, verbose) for r in changing]
    notes = [f"- `{r.address}`: {_text(n)}" for r in plan.resources for n in r.notes]
    notes_block = ["", "**Notes**", "", *notes] if notes else []
    notes_block += orphan_markdown(plan)  # kept with the notes when cut
    quiet = [r for r in plan.resources if r.action in QUIET]
    listed = [r for r in quiet if show_unchanged or r.action is not Action.UNCHANGED]
    quiet_block: list[str] = []
    if quiet:
        quiet_block = ["", "<details><summary>Unchanged and existing</summary>", ""]
        quiet_block += [f"- `{r.address}` ({r.action.value})" for r in listed]
        if len(listed) < len(quiet):
            quiet_block += ["", hidden_line(len(quiet) - len(listed))]
        quiet_block += ["", "</details>"]
    lines = head + rows + notes_block + quiet_block
    if _size(lines) <= budget:
        return "\n".join(lines)
    return _truncated(head, changing, rows, notes_block, quiet_block, verbose, budget)


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def _truncated(
    head: list[str],
    changing: list[ResourcePlan],
    rows: list[str],
    notes_block: list[str],
    quiet_block: list[str],
    verbose: bool,
    budget: int,
) -> str:
    """Head and notes first, then as many rows as fit (the last one cut), the folded list of
    unchanged resources if it still fits, and a last line saying what was left out."""
    room = budget - 400 - _size(head)  # 400: the last line
    notes_kept: list[str] = []
    for line in notes_block:
        if len(line) + 1 > room:
            break
        notes_kept.append(line)
        room -= len(line) + 1
    kept: list[str] = []
    for resource, row in zip(changing, rows, strict=True):
        if len(row) + 1 > room:
            cut = _row(resource, verbose, room - 1)  # the resource and what of it fits
            if len(cut) + 1 <= room:
                kept.append(cut)
                room -= len(cut) + 1
            break
        kept.append(row)
        room -= len(row) + 1
    whole = sum(1 for row, full in zip(kept, rows, strict=False) if row == full)
    quiet_kept = quiet_block if _size(quiet_block) <= room else []
    what = [f"{len(rows) - whole} of {len(rows)} changes"] if whole < len(rows) else []
    if len(notes_kept) < len(notes_block):
        what.append("some notes")
    if quiet_block and not quiet_kept:
        what.append("the list of unchanged and existing resources")
    closing = (
        f"**Truncated:** {' and '.join(what) or 'part of the plan'} not shown in full, to keep "
        f"this comment under {_thousands(budget)} characters (GitHub allows "
        f"{_thousands(GITHUB_COMMENT_LIMIT)}). `plan` (text) or `plan --format json` shows the "
        "whole plan."
    )
    return "\n".join([*head, *kept, *notes_kept, *quiet_kept, "", closing])
