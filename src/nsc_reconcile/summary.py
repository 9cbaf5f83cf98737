"""Summary of a validated desired state: resources by kind and the dependency order, as text
for people and as the `validate --format json` document (problems or resources) for machines.

Rendering only: takes the state and its graph, returns text or data. No SDK, no I/O. One
resource per line and never wrapped, so names can be searched for in logs.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from nsc_reconcile.errors import Problem
from nsc_reconcile.graph import Graph
from nsc_reconcile.model.state import DesiredState


def summarize(state: DesiredState, graph: Graph) -> str:
    """Resources by kind (existing ones marked), counts, and the numbered write stages."""
    resources = sorted(
        (r for _, r in state.resources()), key=lambda r: (not r.existing, r.kind, r.key)
    )
    managed = [r for r in resources if not r.existing]
    counts = Counter(r.kind for r in managed)
    width = max((len(r.kind) for r in resources), default=len("KIND")) + 2
    lines = [
        f"valid: environment {state.environment}, resource group {state.resource_group}, "
        f"location {state.location}",
        f"{len(managed)} managed and {len(resources) - len(managed)} existing resources",
        "",
        f"{'KIND':<{width}}{'ROLE':<10}NAME",
    ]
    lines += [
        f"{r.kind:<{width}}{'existing' if r.existing else 'managed':<10}{r.key}"
        + (f"  [{r.details}]" if r.details else "")
        for r in resources
    ]
    lines += ["", "managed by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))]
    lines += ["", "dependency order (a stage needs only earlier stages; within one, in parallel):"]
    for number, stage in enumerate(graph.stages(), start=1):
        lines.append(f"  stage {number}:")
        lines += [f"    {address}" for address in stage]
    return "\n".join(lines)


def validation_document(
    file: str, state: DesiredState | None, graph: Graph | None, problems: list[Problem]
) -> dict[str, Any]:
    """The `validate --format json` document (docs/plan-format.md): ``ok``, every problem
    (file, line, column, field path, message) and, when valid, the resources and stages."""
    from nsc_reconcile.plans import PLAN_FORMAT, TOOL

    document: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "tool": TOOL,
        "kind": "validation",
        "file": file,
        "ok": not problems and state is not None,
        "problems": [p.to_json() for p in problems],
        "environment": state.environment if state is not None else None,
        "resource_group": state.resource_group if state is not None else None,
        "resources": [],
        "stages": [],
    }
    if state is not None and graph is not None:
        document["resources"] = [
            {"address": r.address, "existing": r.existing} for _, r in state.resources()
        ]
        document["stages"] = graph.stages()
    return document
