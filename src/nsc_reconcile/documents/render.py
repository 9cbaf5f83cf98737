"""Rendering the documents' sections from the facts: 4.3 private endpoint mapping and 7.2
network settings here, 6.6 in ``render_alerts``, 7.3 and the credentials in
``render_security``. Pure: the same facts always give the same bytes (no timestamps).
"""

from __future__ import annotations

from nsc_reconcile.documents.facts import EndpointFact, Facts, NetworkFacts, RuleEndFact
from nsc_reconcile.documents.markdown import code, codes, finish, heading, table
from nsc_reconcile.documents.render_alerts import render_alert_flow
from nsc_reconcile.documents.render_security import render_credentials, render_security
from nsc_reconcile.documents.words import words

# Section id -> the document it belongs in (by default; markers may put it anywhere).
INFRA_SECTIONS = ("4.3", "6.6", "7.2", "7.3")
CREDENTIAL_SECTIONS = ("credentials",)
SECTIONS = INFRA_SECTIONS + CREDENTIAL_SECTIONS


def render_sections(facts: Facts, language: str) -> dict[str, str]:
    """Section id -> its Markdown (heading included, one final newline), in SECTIONS order."""
    w = words(language)
    intro = w["generated"].format(env=facts.environment)
    return {
        "4.3": render_endpoints(facts.endpoints, w, intro),
        "6.6": render_alert_flow(facts.alerts, w, intro),
        "7.2": render_network(facts.network, facts.endpoints, w, intro),
        "7.3": render_security(facts.security, w, intro),
        "credentials": render_credentials(facts.credentials, w, intro),
    }


def layer(role: str, w: dict[str, str]) -> str:
    return w.get(f"layer.{role}", role)


def _record(endpoint: EndpointFact, m: str) -> str:
    """``public name → privatelink name A ip`` as the zone holds it."""
    if endpoint.record is None:
        return m
    answer = f"A {codes(endpoint.record_ips or (), m)}" if endpoint.record_ips else m
    if endpoint.hostname:
        return f"{code(endpoint.hostname, m)} → {code(endpoint.record, m)} {answer}"
    return f"{code(endpoint.record, m)} {answer}"


def render_endpoints(endpoints: tuple[EndpointFact, ...], w: dict[str, str], intro: str) -> str:
    """4.3: endpoint, target, group id, subnet and layer, NIC IP, zone, FQDN → A, state."""
    m = w["missing"]
    lines = heading(w["4.3"], intro)
    if not endpoints:
        return finish([*lines, w["no_endpoints"]])
    headers = [w[k] for k in ("endpoint", "target", "group_id", "subnet_layer", "nic_ip",
                              "zone", "fqdn_record", "connection")]  # fmt: skip
    rows = [
        [
            code(e.name, m),
            code(e.target, m),
            code(e.group_id, m),
            f"{code(e.subnet, m)} ({layer(e.layer, w)})",
            code(e.ip, m),
            code(e.zone, m),
            _record(e, m),
            e.connection or m,
        ]
        for e in endpoints
    ]
    lines += table(headers, rows)
    lines += ["", f"{w['ids']}:", ""]
    for e in endpoints:
        lines.append(f"- {code(e.name, m)}: {code(e.id, m)}")
        lines.append(f"  - {w['nic']}: {code(e.nic_id, m)}")
        lines.append(f"  - {w['target']}: {code(e.target_id, m)}")
    return finish(lines)


def _live_subnet(endpoint: EndpointFact) -> str | None:
    """``<vnet>/<subnet>`` the endpoint is in, as live; None when it does not exist."""
    parts = (endpoint.subnet_id or "").split("/")
    if "virtualNetworks" in parts and "subnets" in parts:
        return f"{parts[parts.index('virtualNetworks') + 1]}/{parts[parts.index('subnets') + 1]}"
    return None


def _end(end: RuleEndFact, m: str) -> str:
    names = codes(end.names, m)
    return f"{names} → {codes(end.addresses, m)}"


def render_network(
    network: NetworkFacts, endpoints: tuple[EndpointFact, ...], w: dict[str, str], intro: str
) -> str:
    """7.2: subnets, the NSG rules added (addresses as live), private endpoint placement."""
    m = w["missing"]
    lines = heading(w["7.2"], intro)
    lines += [f"#### {w['subnets']}", ""]
    rows = [
        [
            code(f"{s.vnet}/{s.name}", m),
            codes(s.prefixes, m) if s.id else m,
            layer(s.layer, w),
            code(s.nsg, w["none"]),
            codes(s.endpoints, w["none"]) if s.id else m,
        ]
        for s in network.subnets
    ]
    headers = [w[k] for k in ("vnet_subnet", "prefixes", "layer", "nsg", "endpoints_in")]
    lines += [*table(headers, rows), ""]
    lines += [f"#### {w['nsg_rules']}", ""]
    if not network.rules:
        lines += [w["no_rules"], ""]
    else:
        headers = [w[k] for k in ("rule", "nsg", "priority", "direction", "access", "protocol",
                                  "ports", "sources", "destinations")]  # fmt: skip
        rows = [
            [
                code(r.name, m) if r.id else f"{code(r.name, m)} {m}",
                code(r.nsg, m),
                str(r.priority) if r.priority is not None else m,
                r.direction or m,
                r.access or m,
                r.protocol or m,
                codes(r.ports, m),
                _end(r.source, m),
                _end(r.destination, m),
            ]
            for r in network.rules
        ]
        lines += [*table(headers, rows), ""]
    lines += [f"#### {w['placement']}", ""]
    if not endpoints:
        lines.append(w["no_endpoints"])
    else:
        headers = [w[k] for k in ("endpoint", "vnet_subnet", "layer", "nic_ip")]
        rows = [
            [code(e.name, m), code(_live_subnet(e), m), layer(e.layer, w), code(e.ip, m)]
            for e in endpoints
        ]
        lines += table(headers, rows)
    return finish(lines)
