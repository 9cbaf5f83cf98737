"""The dependency graph of a desired state: nodes are addresses, edges come from references.

Finds dangling references (naming both ends), duplicate addresses and cycles, and gives the
order in which resources can be written (stages of independent resources). No I/O.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field

from nsc_reconcile import kinds
from nsc_reconcile.model.base import FieldPath, Resource
from nsc_reconcile.model.state import DesiredState


@dataclass(frozen=True)
class Edge:
    """``source`` depends on ``target``; ``field`` is where ``source`` says so."""

    source: str
    target: str
    field: FieldPath


@dataclass(frozen=True)
class GraphIssue:
    """A problem of the graph, at ``field`` (a path in the file)."""

    field: FieldPath
    message: str


@dataclass
class Graph:
    """Addresses, where each is declared, and its dependencies."""

    nodes: dict[str, Resource] = field(default_factory=dict)
    paths: dict[str, FieldPath] = field(default_factory=dict)
    depends_on: dict[str, set[str]] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    # (source, target) edges that only order: ``source`` waits for ``target`` but is neither
    # blocked nor skipped when ``target`` is (a kind's derived ``edges``, e.g. a secret after
    # the deployer's grant: on a vault with access policies the grant is blocked, and the
    # secret is still written with the access the policies give).
    order_only: set[tuple[str, str]] = field(default_factory=set)

    def needs(self, address: str) -> set[str]:
        """What ``address`` uses: its dependencies without the order-only ones."""
        return {d for d in self.depends_on[address] if (address, d) not in self.order_only}

    def stages(self) -> list[list[str]]:
        """Addresses in dependency order, grouped: each stage needs only earlier stages.

        Raises graphlib.CycleError when there is a cycle (``check`` reports it first)."""
        sorter = graphlib.TopologicalSorter(self.depends_on)
        sorter.prepare()
        stages: list[list[str]] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            stages.append(ready)
            sorter.done(*ready)
        return stages

    def order(self) -> list[str]:
        return [address for stage in self.stages() for address in stage]


def build_graph(
    state: DesiredState, also_declared: dict[str, set[str]] | None = None
) -> tuple[Graph, list[GraphIssue]]:
    """The graph of ``state`` and every issue found (duplicates, dangling refs, cycles).

    ``also_declared`` names resources left out of ``state`` (invalid ones), only so that
    messages about dangling references list them among the declared names."""
    graph = Graph()
    issues: list[GraphIssue] = []
    for path, resource in state.resources():
        address = resource.address
        if address in graph.nodes:
            first = ".".join(str(p) for p in graph.paths[address])
            issues.append(
                GraphIssue((*path, "name"), f"{address} is declared twice (first at {first})")
            )
            continue
        graph.nodes[address] = resource
        graph.paths[address] = path
        graph.depends_on[address] = set()
    subnets: dict[str, FieldPath] = {}
    for vnet_path, vnet in ((p, r) for p, r in state.resources() if r.kind == "virtual_network"):
        for index, subnet in enumerate(getattr(vnet, "subnets", [])):
            subnets[f"subnet/{vnet.name}/{subnet.name}"] = (*vnet_path, "subnets", index)

    def add(path: FieldPath, source: str, target: str, at: FieldPath) -> None:
        if target.startswith("subnet/"):
            if target not in subnets:
                vnet = target.split("/")[1]
                known = ", ".join(s.removeprefix("subnet/") for s in sorted(subnets)) or "none"
                issues.append(
                    GraphIssue(
                        (*path, *at),
                        f"{source} refers to {target}, which is not declared "
                        f"(declare subnet in existing.virtual_networks[{vnet}]; declared: {known})",
                    )
                )
            return  # subnets are part of their (existing) VNet node
        if target not in graph.nodes:
            kind = target.split("/", 1)[0]
            same_kind = sorted(
                {a.split("/", 1)[1] for a in graph.nodes if a.startswith(kind + "/")}
                | (also_declared or {}).get(kind, set())
            )
            hint = (
                f"declared {kind}: {', '.join(same_kind)}"
                if same_kind
                else f"no {kind} is declared"
            )
            issues.append(
                GraphIssue(
                    (*path, *at), f"{source} refers to {target}, which is not declared ({hint})"
                )
            )
            return
        graph.depends_on[source].add(target)
        graph.edges.append(Edge(source, target, (*path, *at)))

    for address, resource in graph.nodes.items():
        path = graph.paths[address]
        for reference in resource.references():
            add(path, address, reference.address, reference.field)
        # The edge to a parent that references() does not give: the kind's registered parent.
        spec = kinds.spec(resource.kind)
        parent = spec.parent if spec is not None and not resource.existing else None
        if parent is not None and not parent.held_by:
            add(path, address, f"{parent.kind}/{getattr(resource, parent.field)}", ())
        elif parent is not None:
            holder: object = state
            for part in parent.held_by:
                holder = getattr(holder, part, None)
            if holder is not None:
                target = f"{parent.kind}/{getattr(holder, parent.field)}"
                add(parent.held_by, address, target, (parent.field,))

    if state.smoke is not None:  # not a resource: its references are checked, not edges
        for reference in state.smoke.references():
            if reference.address not in graph.nodes:
                add(("smoke",), "smoke", reference.address, reference.field)

    for found in kinds.specs().values():  # edges a kind derives from the whole state
        for source, target in found.edges(state) if found.edges is not None else ():
            if source in graph.nodes:
                add(graph.paths[source], source, target, ())
                graph.order_only.add((source, target))

    try:
        graph.stages()
    except graphlib.CycleError as exc:
        cycle: list[str] = list(exc.args[1])
        first = cycle[0]
        issues.append(
            GraphIssue(
                graph.paths[first],
                "dependency cycle (each depends on the next): " + " -> ".join(reversed(cycle)),
            )
        )
    return graph, issues
