"""Human summary of a validated desired state: resources by kind and the dependency order.

Rendering only: takes the state and its graph, returns text. No SDK, no I/O. One resource
per line and never wrapped, so names can be searched for in logs.
"""

from __future__ import annotations

from collections import Counter

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
