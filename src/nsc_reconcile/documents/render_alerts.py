"""Rendering section 6.6, the alert flow: event types → DCR stream → table → rule (query,
frequency, window, severity) → action group → receivers, as a Mermaid flowchart and as
tables. Pure.
"""

from __future__ import annotations

from nsc_reconcile.documents.facts import AlertFlowFacts, RuleFact
from nsc_reconcile.documents.markdown import code, codes, finish, heading, table


def _label(*parts: str) -> str:
    """A Mermaid node label (quoted; lines joined with <br/>)."""
    text = "<br/>".join(parts)
    for raw, entity in (('"', "#quot;"), ("<br/>", "\0"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(raw, entity)
    return '"' + text.replace("\0", "<br/>") + '"'


class _Chart:
    """Nodes and edges of the flowchart, numbered in the order first seen (deterministic)."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[str, str]] = {}  # key -> (node id, label)
        self.edges: list[tuple[str, str]] = []

    def node(self, prefix: str, key: str, label: str) -> str:
        if key not in self.nodes:
            count = sum(1 for k in self.nodes if k.startswith(prefix + ":"))
            self.nodes[key] = (f"{prefix}{count + 1}", label)
        return self.nodes[key][0]

    def edge(self, a: str, b: str) -> None:
        if (a, b) not in self.edges:
            self.edges.append((a, b))

    def lines(self) -> list[str]:
        out = ["```mermaid", "flowchart LR"]
        out += [f"  {node_id}[{label}]" for node_id, label in self.nodes.values()]
        out += [f"  {a} --> {b}" for a, b in self.edges]
        return [*out, "```"]


def _chart(flow: AlertFlowFacts, w: dict[str, str]) -> list[str]:
    chart = _Chart()
    by_table = {c.table: c for c in flow.collections}
    for rule in flow.rules:
        event = chart.node("e", f"e:{rule.event}", _label(rule.event))
        table_node = chart.node("t", f"t:{rule.table}", _label(f"{w['table']} {rule.table}"))
        collection = by_table.get(rule.table)
        if collection is not None:
            streams = ", ".join(collection.streams) or w["missing"]
            stream = chart.node(
                "s", f"s:{collection.name}", _label(f"DCR {collection.name}", streams)
            )
            chart.edge(event, stream)
            chart.edge(stream, table_node)
        else:
            chart.edge(event, table_node)
        sev = str(rule.severity) if rule.severity is not None else w["missing"]
        timing = f"{rule.frequency or w['missing']} / {rule.window or w['missing']}"
        rule_node = chart.node(
            "r", f"r:{rule.name}", _label(rule.name, f"{w['severity']} {sev}, {timing}")
        )
        chart.edge(table_node, rule_node)
        for name in rule.action_groups:
            chart.edge(rule_node, chart.node("g", f"g:{name}", _label(name)))
    for group in flow.groups:
        group_node = chart.node("g", f"g:{group.name}", _label(group.name))
        for receiver in group.receivers:
            key = f"x:{group.name}/{receiver.kind}/{receiver.name}"
            chart.edge(
                group_node, chart.node("x", key, _label(f"{receiver.kind}: {receiver.name}"))
            )
    return chart.lines()


def _rule_row(rule: RuleFact, w: dict[str, str]) -> list[str]:
    m = w["missing"]
    name = code(rule.name, m) if rule.id else f"{code(rule.name, m)} {m}"
    enabled = m if rule.enabled is None else w["yes"] if rule.enabled else w["no"]
    return [
        name,
        code(rule.event, m),
        str(rule.severity) if rule.severity is not None else m,
        code(rule.frequency, m),
        code(rule.window, m),
        enabled,
        codes(rule.action_groups, m),
    ]


def render_alert_flow(flow: AlertFlowFacts, w: dict[str, str], intro: str) -> str:
    """6.6: the chain from agent event to receiver, as a flowchart and as tables."""
    m = w["missing"]
    lines = heading(w["6.6"], intro)
    if not flow.rules:
        return finish([*lines, w["no_alerts"]])
    lines += [f"#### {w['flow']}", "", *_chart(flow, w), ""]
    tables = sorted({r.table for r in flow.rules})
    lines.append("- " + w["events"].format(column="EventType", table=", ".join(tables)) + ": "
                 + codes(flow.events, m))  # fmt: skip
    for c in flow.collections:
        text = w["dcr"].format(
            name=c.name, streams=codes(c.streams, m), table=c.table, workspace=c.workspace
        )
        notes = []
        if c.id_key:
            notes.append(w["dcr_id_key"].format(key=c.id_key))
        if c.public_ingestion is not None:
            notes.append(w["public_ingestion"] if c.public_ingestion else w["private_ingestion"])
        lines.append(f"- {text}" + (f"; {'; '.join(notes)}" if notes else ""))
        lines.append(f"  - DCR: {code(c.id, m)}")
        lines.append(f"  - {w['table']}: {code(c.table_id, m)}")
    lines += ["", f"#### {w['rules']}", ""]
    headers = [w[k] for k in ("rule", "event", "severity", "frequency", "window", "enabled",
                              "action_groups")]  # fmt: skip
    lines += table(headers, [_rule_row(r, w) for r in flow.rules])
    lines += ["", f"{w['queries']}:", ""]
    for rule in flow.rules:
        lines.append(f"- {code(rule.name, m)}: {code(rule.id, m)}")
        if rule.query is None:
            lines.append(f"  {m}")
            continue
        lines += ["", "  ```kusto", *(f"  {q}" for q in rule.query.split("\n")), "  ```", ""]
    while lines[-1] == "":
        lines.pop()
    lines += ["", f"#### {w['groups']}", ""]
    headers = [w[k] for k in ("group", "short_name", "enabled", "receivers")]
    rows = []
    for g in flow.groups:
        receivers = [
            f"{r.kind} {code(r.name, m)}" + (f" ({code(r.address, m)})" if r.address else "")
            for r in g.receivers
        ]
        enabled = m if g.enabled is None else w["yes"] if g.enabled else w["no"]
        name = code(g.name, m) if g.id else f"{code(g.name, m)} {m}"
        rows.append([name, code(g.short_name, m), enabled, ", ".join(receivers) or w["none"]])
    lines += table(headers, rows)
    lines += [""] + [f"- {code(g.name, m)}: {code(g.id, m)}" for g in flow.groups]
    return finish(lines)
