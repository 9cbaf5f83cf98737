"""Checks of the private endpoints (seed §3.3 / §3.4 / §6): connection Approved with a private
NIC IP, the A record in the privatelink zone, the zone's VNet link. Reads ARM state only.
"""

from __future__ import annotations

import ipaddress

from nsc_reconcile import kinds
from nsc_reconcile.model.network import PrivateEndpoint
from nsc_reconcile.resources.base import to_wire
from nsc_reconcile.verification.context import (
    EndpointFacts,
    Run,
    make_check,
    name_of,
    props_of,
    rg_of,
    same_id,
)
from nsc_reconcile.verification.results import Check


def endpoint_facts(run: Run, endpoint: PrivateEndpoint) -> EndpointFacts:
    """Facts about one endpoint, read once: the endpoint, its NIC's IP, its VNet."""
    if endpoint.name in run.endpoints:
        return run.endpoints[endpoint.name]
    target_kind = endpoint.target.partition("/")[0]
    target_live = run.live(endpoint.target)
    # The public service suffix, the zone of the A record and the field of the target's
    # label: the target kind's private-link facts (nsc_reconcile.kinds).
    link = kinds.private_link(target_kind, endpoint.group_id) or kinds.private_link(target_kind)
    label: str | None = None
    if target_live is not None:
        sub = target_live.fields.get("properties.customSubDomainName")
        label = str(sub) if sub else name_of(target_live.id)
    elif link is not None:  # a target that does not exist yet: its declared label
        for _, declared in run.state.resources():
            if declared.address == endpoint.target:
                label = str(getattr(declared, link.label_field, declared.name))
    suffix = link.service_suffix if link is not None else ""
    zone = link.zones[0] if link is not None else endpoint.dns_zone_group.zones[0]
    live = run.live(endpoint.address)
    props = props_of(to_wire(live.raw)) if live is not None else {}
    nic_id: str | None = None
    ip: str | None = None
    for ref in props.get("networkInterfaces") or []:
        nic_id = str(ref.get("id") or "") or None
        if nic_id:
            read = run.clients.network.network_interfaces.get(rg_of(nic_id), name_of(nic_id))
            nic = to_wire(read)
            for config in props_of(nic).get("ipConfigurations") or []:
                found = (config.get("properties") or {}).get("privateIPAddress")
                if found:
                    ip = str(found)
                    break
            break
    subnet_id = str((props.get("subnet") or {}).get("id") or "")
    vnet_id = subnet_id.split("/subnets/")[0] if "/subnets/" in subnet_id else None
    facts = EndpointFacts(
        resource=endpoint,
        live=live,
        target_kind=target_kind,
        target_live=target_live,
        label=label,
        ip=ip,
        nic_id=nic_id,
        vnet_id=vnet_id,
        zone=zone,
        hostname=f"{label}.{suffix}" if label and suffix else None,
    )
    run.endpoints[endpoint.name] = facts
    return facts


def check_endpoint_connection(run: Run, endpoint: PrivateEndpoint) -> Check:
    """Seed §6: the private endpoint exists: connection Approved, NIC with a private IP."""
    title = f"Private endpoint {endpoint.name} exists, connection Approved, NIC private IP"
    facts = endpoint_facts(run, endpoint)
    check_id = f"pe-connection/{endpoint.name}"
    if facts.live is None:
        return make_check(check_id, title, [f"expected id={run.id_of(endpoint.address)}"],
                          ["the private endpoint does not exist"])  # fmt: skip
    wire = to_wire(facts.live.raw)
    props = props_of(wire)
    target_id = facts.target_live.id if facts.target_live is not None else None
    evidence = [f"id={wire.get('id')}", f"provisioningState={props.get('provisioningState')}"]
    problems = []
    connections = [
        *(props.get("privateLinkServiceConnections") or []),
        *(props.get("manualPrivateLinkServiceConnections") or []),
    ]
    ours = [
        c for c in connections
        if same_id((c.get("properties") or {}).get("privateLinkServiceId"), target_id)
    ]  # fmt: skip
    if not ours:
        problems.append(f"no connection to {endpoint.target} ({target_id or 'not found'})")
    for connection in ours:
        cprops = connection.get("properties") or {}
        state = cprops.get("privateLinkServiceConnectionState") or {}
        evidence.append(
            f"connection {connection.get('name')} -> {cprops.get('privateLinkServiceId')} "
            f"groupIds={','.join(cprops.get('groupIds') or [])}: {state.get('status')} "
            f"({state.get('description')})"
        )
        if state.get("status") != "Approved":
            problems.append(f"connection {connection.get('name')} is {state.get('status')} "
                            "(expected Approved)")  # fmt: skip
    if facts.nic_id is None:
        problems.append("no network interface")
    else:
        evidence.append(f"NIC {name_of(facts.nic_id)} private IP {facts.ip}")
        if facts.ip is None:
            problems.append("the NIC has no private IP")
        elif not ipaddress.ip_address(facts.ip).is_private:
            problems.append(f"the NIC's IP {facts.ip} is not a private address")
    evidence.append(f"subnet={(props.get('subnet') or {}).get('id')}")
    if props.get("provisioningState") not in (None, "Succeeded"):
        problems.append(f"provisioningState is {props.get('provisioningState')}")
    return make_check(check_id, title, evidence, problems)


def _zone_group(run: Run, zone: str) -> str | None:
    """Resource group of the private DNS zone (new or existing), None when absent."""
    live = run.live(f"private_dns_zone/{zone}")
    return rg_of(live.id) if live is not None else None


def check_endpoint_a_record(run: Run, endpoint: PrivateEndpoint) -> Check:
    """Seed §3.3 / §6: the A record in the right privatelink zone equals the NIC's IP."""
    facts = endpoint_facts(run, endpoint)
    check_id = f"pe-a-record/{endpoint.name}"
    title = f"A record of {endpoint.name} in {facts.zone} equals the endpoint's NIC IP"
    problems = []
    if facts.zone not in endpoint.dns_zone_group.zones:
        problems.append(f"the zone group does not include {facts.zone}")
    group = _zone_group(run, facts.zone)
    if group is None:
        return make_check(check_id, title, [], [*problems, f"zone {facts.zone} does not exist"])
    if facts.label is None:
        return make_check(check_id, title, [], [*problems, f"{endpoint.target} does not exist"])
    from azure.core.exceptions import ResourceNotFoundError

    fqdn = f"{facts.label}.{facts.zone}"
    try:
        record = to_wire(
            run.clients.privatedns.record_sets.get(group, facts.zone, "A", facts.label)
        )
    except ResourceNotFoundError:
        return make_check(
            check_id,
            title,
            [f"zone {facts.zone} (resource group {group})", f"NIC IP {facts.ip}"],
            [*problems, f"no A record {facts.label} in {facts.zone}"],
        )
    props = props_of(record)
    ips = sorted(str(a.get("ipv4Address")) for a in props.get("aRecords") or [])
    evidence = [
        f"A {fqdn} = {', '.join(ips) or '(no address)'} (ttl {props.get('ttl')})",
        f"NIC IP {facts.ip}",
        f"record id={record.get('id')}",
    ]
    if facts.ip is None:
        problems.append("the endpoint's NIC IP is unknown (endpoint or NIC missing)")
    elif ips != [facts.ip]:
        problems.append(f"the A record holds {ips or 'nothing'}, expected [{facts.ip}]")
    return make_check(check_id, title, evidence, problems)


def check_endpoint_zone_link(run: Run, endpoint: PrivateEndpoint) -> Check:
    """Seed §3.4: the zone is linked to the endpoint's VNet (link Completed)."""
    facts = endpoint_facts(run, endpoint)
    check_id = f"pe-zone-link/{endpoint.name}"
    title = f"Zone {facts.zone} is linked to the VNet of {endpoint.name}"
    group = _zone_group(run, facts.zone)
    if group is None:
        return make_check(check_id, title, [], [f"zone {facts.zone} does not exist"])
    vnet_id = facts.vnet_id or _declared_vnet_id(run, endpoint)
    listing = run.clients.privatedns.virtual_network_links.list(group, facts.zone)
    links = [to_wire(x) for x in listing]
    ours = [x for x in links if same_id(props_of(x).get("virtualNetwork", {}).get("id"), vnet_id)]
    evidence = [f"zone {facts.zone} (resource group {group})", f"VNet {vnet_id}"]
    if not ours:
        others = ", ".join(str(x.get("name")) for x in links) or "none"
        return make_check(check_id, title, evidence, [f"no link to the VNet (links: {others})"])
    link = ours[0]
    props = props_of(link)
    evidence.append(
        f"link {link.get('name')}: virtualNetworkLinkState={props.get('virtualNetworkLinkState')}"
        f", provisioningState={props.get('provisioningState')}, "
        f"registrationEnabled={props.get('registrationEnabled')}"
    )
    problems = []
    if props.get("virtualNetworkLinkState") not in (None, "Completed"):
        problems.append(f"link state is {props.get('virtualNetworkLinkState')}")
    if props.get("provisioningState") not in (None, "Succeeded"):
        problems.append(f"link provisioningState is {props.get('provisioningState')}")
    return make_check(check_id, title, evidence, problems)


def _declared_vnet_id(run: Run, endpoint: PrivateEndpoint) -> str:
    vnet = endpoint.subnet.partition("/")[0]
    return run.id_of(f"virtual_network/{vnet}")
