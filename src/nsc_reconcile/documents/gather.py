"""Reading the documents' facts from live state, once, through the engine's reads.

One engine plan reads every resource of the desired state (one GET each); the facts reuse
those reads through a verification ``Run`` (``endpoint_facts`` adds one GET per endpoint NIC).
Reads only; never a secret value (the plan's reads of sensitive outputs are redacted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nsc_reconcile.documents.facts import (
    ActionGroupFact,
    AlertFlowFacts,
    CollectionFact,
    EndpointFact,
    Facts,
    NetworkFacts,
    NsgRuleFact,
    ReceiverFact,
    RuleEndFact,
    RuleFact,
    SubnetFact,
)
from nsc_reconcile.documents.gather_security import gather_credentials, gather_security
from nsc_reconcile.model.network import RuleEnds
from nsc_reconcile.verification.context import Run, name_of, props_of
from nsc_reconcile.verification.endpoints import endpoint_facts

if TYPE_CHECKING:
    from nsc_reconcile.engine import Engine
    from nsc_reconcile.plans import Plan

# Action group receiver lists (REST names) -> the kind shown.
_RECEIVERS = (
    ("emailReceivers", "email"),
    ("smsReceivers", "sms"),
    ("voiceReceivers", "voice"),
    ("webhookReceivers", "webhook"),
    ("logicAppReceivers", "logic app"),
    ("azureFunctionReceivers", "function"),
    ("automationRunbookReceivers", "runbook"),
    ("eventHubReceivers", "event hub"),
    ("itsmReceivers", "itsm"),
    ("azureAppPushReceivers", "app push"),
    ("armRoleReceivers", "arm role"),
)


def gather_facts(engine: Engine, plan: Plan | None = None) -> Facts:
    """Every fact the documents show, from ``plan`` (made with ``engine``; planned here when
    None) and the reads it made. Reads only."""
    plan = engine.plan() if plan is None else plan
    run = Run(engine, plan, resolver=None, smoke=False)
    pending = [f"{r.action.value} {r.address}" for r in plan.changes]
    pending += [f"blocked {r.address}" for r in plan.blocked]
    return Facts(
        environment=engine.state.environment,
        endpoints=tuple(_endpoint(run, e) for e in engine.state.private_endpoints),
        alerts=_alert_flow(run),
        network=_network(run),
        security=gather_security(run),
        credentials=gather_credentials(run),
        pending=tuple(pending),
    )


def subnet_role(run: Run, ref: str) -> str:
    """The declared role of subnet ``<vnet>/<subnet>`` (its layer), "other" when undeclared."""
    vnet_name, _, subnet_name = ref.partition("/")
    for vnet in run.state.existing.virtual_networks:
        if vnet.name == vnet_name:
            for subnet in vnet.subnets:
                if subnet.name == subnet_name:
                    return subnet.role
    return "other"


# ----------------------------------------------------------------------- 4.3 endpoints
def _endpoint(run: Run, endpoint: Any) -> EndpointFact:
    facts = endpoint_facts(run, endpoint)
    wire = run.wire(endpoint.address) or {}
    record_ips: tuple[str, ...] | None = None
    if facts.live is not None:
        # The endpoint's read already looked up the A record in each declared zone.
        found = facts.live.fields.get(f"dnsRecords.{facts.zone}")
        record_ips = tuple(sorted(str(ip) for ip in found)) if found else None
    status = run.engine.context.output(endpoint.address, "connection_status")
    return EndpointFact(
        name=endpoint.name,
        id=facts.live.id if facts.live is not None else None,
        target=endpoint.target,
        target_id=facts.target_live.id if facts.target_live is not None else None,
        group_id=endpoint.group_id,
        subnet=endpoint.subnet,
        subnet_id=(props_of(wire).get("subnet") or {}).get("id"),
        layer=subnet_role(run, endpoint.subnet),
        nic_id=facts.nic_id,
        ip=facts.ip,
        zone=facts.zone,
        hostname=facts.hostname,
        record=f"{facts.label}.{facts.zone}" if facts.label else None,
        record_ips=record_ips,
        connection=status if isinstance(status, str) else None,
    )


# --------------------------------------------------------------------- 6.6 alert flow
def _alert_flow(run: Run) -> AlertFlowFacts:
    state = run.state
    events: list[str] = []
    for alert in state.log_alerts:
        if alert.event not in events:
            events.append(alert.event)
    collections = []
    for dcr in state.data_collection_rules:
        wire = run.wire(dcr.address)
        props = props_of(wire)
        flows = props.get("dataFlows") or []
        streams = sorted({str(s) for f in flows for s in f.get("streams") or []})
        table = run.live(f"log_analytics_table/{dcr.workspace}/{dcr.table}")
        collections.append(
            CollectionFact(
                name=dcr.name,
                id=str(wire.get("id")) if wire else None,
                streams=tuple(streams),
                table=dcr.table,
                table_id=table.id if table is not None else None,
                workspace=dcr.workspace,
                public_ingestion=None
                if wire is None
                else not props.get("dataCollectionEndpointId"),
                id_key=_holder(run, f"{dcr.address}.immutable_id"),
            )
        )
    rules = [_rule(run, alert) for alert in state.log_alerts]
    groups = [_group(run, group) for group in state.action_groups]
    return AlertFlowFacts(tuple(events), tuple(collections), tuple(rules), tuple(groups))


def _holder(run: Run, output: str) -> str | None:
    """The Key Vault key whose value is ``output`` (``kind/name.output``), if any."""
    items = run.state.secrets.items if run.state.secrets is not None else []
    return next((i.name for i in items if i.source and i.source.output == output), None)


def _rule(run: Run, alert: Any) -> RuleFact:
    wire = run.wire(alert.address)
    if wire is None:
        return RuleFact(alert.name, None, alert.event, alert.table, None, None, None, None, None,
                        tuple(alert.action_groups))  # fmt: skip
    props = props_of(wire)
    queries = [str(c.get("query")) for c in (props.get("criteria") or {}).get("allOf") or []]
    groups = [name_of(str(g)) for g in (props.get("actions") or {}).get("actionGroups") or []]
    severity = props.get("severity")
    return RuleFact(
        name=alert.name,
        id=str(wire.get("id")),
        event=alert.event,
        table=alert.table,
        query="\n".join(q for q in queries if q) or None,
        frequency=props.get("evaluationFrequency"),
        window=props.get("windowSize"),
        severity=int(severity) if isinstance(severity, int | float) else None,
        enabled=props.get("enabled"),
        action_groups=tuple(groups),
    )


def _group(run: Run, group: Any) -> ActionGroupFact:
    wire = run.wire(group.address)
    if wire is None:
        return ActionGroupFact(group.name, None, None, None, ())
    props = props_of(wire)
    receivers = [
        ReceiverFact(
            kind=kind,
            name=str(r.get("name")),
            # An e-mail address says who is told; a webhook URI embeds a token: never shown.
            address=str(r["emailAddress"]) if kind == "email" and r.get("emailAddress") else None,
        )
        for key, kind in _RECEIVERS
        for r in sorted(props.get(key) or [], key=lambda r: str(r.get("name")))
    ]
    return ActionGroupFact(
        name=group.name,
        id=str(wire.get("id")),
        enabled=props.get("enabled"),
        short_name=props.get("groupShortName"),
        receivers=tuple(receivers),
    )


# ------------------------------------------------------------------------ 7.2 network
def _network(run: Run) -> NetworkFacts:
    subnets = []
    for vnet in run.state.existing.virtual_networks:
        live = run.live(vnet.address)
        found: dict[str, Any] = dict(live.facts.get("subnets") or {}) if live is not None else {}
        for declared in vnet.subnets:
            subnet = found.get(declared.name)
            props = props_of(subnet)
            prefixes = [props["addressPrefix"]] if props.get("addressPrefix") else []
            prefixes += props.get("addressPrefixes") or []
            nsg = (props.get("networkSecurityGroup") or {}).get("id")
            endpoints = sorted(
                name_of(str(p.get("id"))) for p in props.get("privateEndpoints") or []
            )
            subnets.append(
                SubnetFact(
                    vnet=vnet.name,
                    name=declared.name,
                    id=str(subnet.get("id")) if subnet else None,
                    prefixes=tuple(str(p) for p in prefixes),
                    layer=declared.role,
                    nsg=name_of(str(nsg)) if nsg else None,
                    endpoints=tuple(endpoints),
                )
            )
    rules = [_nsg_rule(run, rule) for rule in run.state.nsg_rules]
    return NetworkFacts(tuple(subnets), tuple(rules))


def _end_names(ends: RuleEnds) -> tuple[str, ...]:
    if ends.subnets:
        return tuple(s.partition("/")[2] for s in ends.subnets)
    if ends.private_endpoints:
        return tuple(ends.private_endpoints)
    if ends.address_prefixes:
        return tuple(ends.address_prefixes)
    tag = getattr(ends, "service_tag", None)
    return (str(tag),) if tag else ()


def _forms(props: dict[str, Any], single: str, plural: str) -> tuple[str, ...]:
    """A rule field in Azure's single or plural form (``sourceAddressPrefix(es)``)."""
    if props.get(single):
        return (str(props[single]),)
    return tuple(str(v) for v in props.get(plural) or [])


def _nsg_rule(run: Run, rule: Any) -> NsgRuleFact:
    wire = run.wire(rule.address)
    props = props_of(wire)
    return NsgRuleFact(
        name=rule.name,
        nsg=rule.nsg,
        id=str(wire.get("id")) if wire else None,
        priority=props.get("priority"),
        direction=props.get("direction"),
        access=props.get("access"),
        protocol=props.get("protocol"),
        ports=_forms(props, "destinationPortRange", "destinationPortRanges"),
        source=RuleEndFact(
            _end_names(rule.source),
            _forms(props, "sourceAddressPrefix", "sourceAddressPrefixes"),
        ),
        destination=RuleEndFact(
            _end_names(rule.destination),
            _forms(props, "destinationAddressPrefix", "destinationAddressPrefixes"),
        ),
    )
