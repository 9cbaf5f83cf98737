"""Smoke test "network" (seed §3.4 / §6): the live NSG rules, evaluated as Azure does
(``nsg_eval``), let each declared source subnet reach its private endpoints on the declared
ports, and let nothing else (the Internet, the VNet's other subnets, peered VNets) reach an
endpoint on its service port. One check per endpoint. Reads only (ARM GETs).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nsc_reconcile import kinds
from nsc_reconcile.model.network import NsgRule, PrivateEndpoint
from nsc_reconcile.resources.base import to_wire
from nsc_reconcile.verification.context import Run, make_check, name_of, props_of, rg_of, same_id
from nsc_reconcile.verification.endpoints import endpoint_facts
from nsc_reconcile.verification.nsg_eval import Flow, Layer, Tags, Verdict, evaluate, rules_of
from nsc_reconcile.verification.results import Check

# privateEndpointNetworkPolicies values under which a subnet NSG filters private endpoint
# traffic (Microsoft: "Manage network policies for private endpoints"; Azure's default for a
# subnet is Disabled, and then NSG rules do not apply to the endpoints in it).
NSG_ENFORCED = frozenset({"enabled", "networksecuritygroupenabled"})
# What the Internet source means in evidence (every address the Internet tag holds).
INTERNET = "Internet (every public address)"


@dataclass
class Source:
    """Where traffic to an endpoint may come from: a subnet, peered space, or the Internet."""

    label: str  # e.g. "snet-aks (10.10.2.0/24)"
    prefixes: tuple[str, ...]  # CIDRs, or ("Internet",)
    layers: list[Layer] = field(default_factory=list)  # filtering on the source side


@dataclass
class Vnet:
    id: str
    wire: dict[str, Any]

    @property
    def name(self) -> str:
        return name_of(self.id)

    def subnets(self) -> list[dict[str, Any]]:
        return list(props_of(self.wire).get("subnets") or [])

    def subnet(self, subnet_id: str) -> dict[str, Any] | None:
        return next((s for s in self.subnets() if same_id(s.get("id"), subnet_id)), None)

    def space(self) -> list[str]:
        return [str(p) for p in (props_of(self.wire).get("addressSpace") or {}).get(
            "addressPrefixes") or []]  # fmt: skip

    def peerings(self) -> list[tuple[str, list[str]]]:
        """(remote VNet name, its address space) of each connected peering."""
        found = []
        for peering in props_of(self.wire).get("virtualNetworkPeerings") or []:
            props = props_of(peering)
            if str(props.get("peeringState") or "Connected").lower() != "connected":
                continue
            space = (props.get("remoteAddressSpace") or {}).get("addressPrefixes") or []
            remote = str((props.get("remoteVirtualNetwork") or {}).get("id") or peering.get("name"))
            found.append((name_of(remote), [str(p) for p in space]))
        return found


def _prefixes_of(subnet: dict[str, Any]) -> list[str]:
    props = props_of(subnet)
    if props.get("addressPrefix"):
        return [str(props["addressPrefix"])]
    return [str(p) for p in props.get("addressPrefixes") or []]


def _cache(run: Run) -> dict[str, Any]:
    cache: dict[str, Any] = run.cache.setdefault("smoke-network", {})
    return cache


def _read_existing(
    run: Run, arm_id: str, declared: Iterable[Any], get: Callable[[str, str], Any]
) -> dict[str, Any]:
    """An existing resource's wire JSON as the engine read it (one of ``declared``), else one
    GET through ``get(resource_group, name)``; cached for the run."""
    cache = _cache(run)
    key = f"wire:{arm_id.lower()}"
    if key not in cache:
        wire = None
        for resource in declared:
            live = run.wire(resource.address)
            if live is not None and same_id(live.get("id"), arm_id):
                wire = live
        cache[key] = wire if wire is not None else to_wire(get(rg_of(arm_id), name_of(arm_id)))
    found: dict[str, Any] = cache[key]
    return found


def _read_vnet(run: Run, vnet_id: str) -> Vnet:
    """The VNet as the engine read it (a declared existing VNet), else one GET."""
    networks = run.state.existing.virtual_networks
    get = run.clients.network.virtual_networks.get
    return Vnet(vnet_id, _read_existing(run, vnet_id, networks, get))


def _read_nsg(run: Run, nsg_id: str) -> dict[str, Any]:
    """The NSG as the engine read it (a declared existing NSG), else one GET."""
    groups = run.state.existing.network_security_groups
    return _read_existing(run, nsg_id, groups, run.clients.network.network_security_groups.get)


def _nsg_layer(run: Run, holder: str, nsg_ref: Any, direction: str, bypass: str = "") -> Layer:
    """The layer of the NSG ``nsg_ref`` (``{"id": ...}`` or None) on ``holder``."""
    nsg_id = str((nsg_ref or {}).get("id") or "")
    if not nsg_id:
        return Layer(holder, direction, None)
    rules = tuple(rules_of(_read_nsg(run, nsg_id)))
    return Layer(f"{holder} NSG {name_of(nsg_id)}", direction, rules, bypass)


def _subnet_source(run: Run, subnet: dict[str, Any]) -> Source:
    prefixes = tuple(_prefixes_of(subnet))
    name = str(subnet.get("name"))
    outbound = _nsg_layer(
        run, f"subnet {name}", props_of(subnet).get("networkSecurityGroup"), "Outbound"
    )
    return Source(f"{name} ({', '.join(prefixes)})", prefixes, [outbound])


def _declared_subnet(run: Run, ref: str) -> tuple[Vnet, dict[str, Any]] | None:
    """A declared ``<vnet>/<subnet>`` as ARM shows it, None when it cannot be found."""
    vnet_name, _, subnet_name = ref.partition("/")
    live = run.wire(f"virtual_network/{vnet_name}")
    if live is None:
        return None
    vnet = _read_vnet(run, str(live.get("id")))
    subnet = next(
        (s for s in vnet.subnets() if str(s.get("name")).lower() == subnet_name.lower()), None
    )
    return None if subnet is None else (vnet, subnet)


def _ports(texts: list[str], service_port: int) -> list[int]:
    """The ports to prove for a declared path: the endpoint's service port (the only one it
    serves: a path declared on other ports must still reach it), then each declared single
    port and both ends of each declared range."""
    ports = [service_port]
    for text in texts:
        if text == "*":
            continue
        low, _, high = text.partition("-")
        ports += [int(low)] + ([int(high)] if high and high != low else [])
    return list(dict.fromkeys(ports))


@dataclass
class Declared:
    """A declared Allow path into one endpoint: source -> ports, and the rules declaring it."""

    source: Source
    ports: list[int]
    rules: list[str]


def _declared_paths(run: Run, endpoint: PrivateEndpoint, service_port: int) -> tuple[
        list[Declared], list[str], set[str]]:  # fmt: skip
    """(declared paths into ``endpoint``, problems finding their sources, the subnet ids and
    address prefixes declared as sources)."""
    paths: dict[str, Declared] = {}
    problems: list[str] = []
    declared: set[str] = set()
    rules: list[NsgRule] = [
        r for r in run.state.nsg_rules
        if r.access == "Allow" and r.direction == "Inbound"
        and endpoint.name in (r.destination.private_endpoints or [])
    ]  # fmt: skip
    for rule in rules:
        ports = _ports(rule.destination_ports, service_port)
        sources: list[Source] = []
        for ref in rule.source.subnets or []:
            found = _declared_subnet(run, ref)
            if found is None:
                problems.append(f"source subnet {ref} of {rule.name} not found")
                continue
            _, subnet = found
            declared.add(str(subnet.get("id")).lower())
            sources.append(_subnet_source(run, subnet))
        for prefix in rule.source.address_prefixes or []:
            declared.add(prefix)
            sources.append(Source(prefix, (prefix,)))
        if rule.source.service_tag:
            declared.add(rule.source.service_tag)
            sources.append(Source(rule.source.service_tag, (rule.source.service_tag,)))
        for source in sources:
            path = paths.setdefault(source.label, Declared(source, [], []))
            path.ports += [p for p in ports if p not in path.ports]
            path.rules.append(rule.name)
    return list(paths.values()), problems, declared


def _is_declared(subnet: dict[str, Any], declared: set[str]) -> bool:
    """Named as a source, or wholly inside a declared prefix (or VirtualNetwork/``*``)."""
    if str(subnet.get("id")).lower() in declared:
        return True
    if declared & {"VirtualNetwork", "*"}:
        return True
    nets = [ipaddress.ip_network(p, strict=False) for p in _prefixes_of(subnet)]
    wider = []
    for text in declared:
        try:
            wider.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue
    return bool(nets) and all(
        any(n.version == w.version and n.subnet_of(w) for w in wider)  # type: ignore[arg-type]
        for n in nets
    )


@dataclass(frozen=True)
class Goal:
    """One endpoint to prove: its address, service port and the layers in front of it."""

    endpoint: str
    ip: str
    port: int
    layers: list[Layer]
    tags: Tags

    def verdict(self, source: Source, port: int) -> Verdict:
        flow = Flow(source.prefixes, self.ip, port)
        return evaluate(flow, [*source.layers, *self.layers], self.tags)


def _prove_open(goal: Goal, path: Declared, evidence: list[str], problems: list[str]) -> None:
    """A declared path must be allowed on each of its ports, for all of its sources."""
    for port in path.ports:
        verdict = goal.verdict(path.source, port)
        arrow = f"{path.source.label} -> {goal.endpoint} {goal.ip}:{port}"
        if verdict.allowed is True:
            evidence.append(f"declared {arrow} ({', '.join(path.rules)}): ALLOWED, "
                            f"{verdict.describe()}")  # fmt: skip
            continue
        closed = verdict.denying() + verdict.undecided()
        evidence.append(f"declared {arrow}: NOT ALLOWED, {verdict.describe()}")
        problems.append(f"declared path {arrow} ({', '.join(path.rules)}) is not allowed: "
                        f"{verdict.describe(closed)}")  # fmt: skip


def _prove_closed(goal: Goal, source: Source, evidence: list[str], problems: list[str]) -> None:
    """Any other source must be denied on the service port, for all of its addresses."""
    verdict = goal.verdict(source, goal.port)
    where = f"{goal.endpoint} {goal.ip}:{goal.port}"
    arrow = f"{source.label} -> {where}"
    if verdict.allowed is False:
        evidence.append(f"undeclared {arrow}: DENIED, {verdict.describe()}")
        return
    said = "REACHABLE" if verdict.allowing() else "UNDECIDED"
    if verdict.denying():
        said += " in part"
    evidence.append(f"undeclared {arrow}: {said}, {verdict.describe()}")
    open_parts = verdict.allowing() + verdict.undecided()
    problems.append(f"{source.label} is not a declared source but reaches {where}: "
                    f"{verdict.describe(open_parts)}")  # fmt: skip


def smoke_network(run: Run) -> list[Check]:
    """One check per declared private endpoint: ``smoke-network/<endpoint>``."""
    return [_check_endpoint(run, endpoint) for endpoint in run.state.private_endpoints]


def _check_endpoint(run: Run, endpoint: PrivateEndpoint) -> Check:
    check_id = f"smoke-network/{endpoint.name}"
    title = (
        f"Smoke: only the declared paths reach {endpoint.name} (NSG rules as Azure applies them)"
    )
    facts = endpoint_facts(run, endpoint)
    port = kinds.service_port(endpoint.group_id)  # the group's private-link facts
    if port is None:
        return make_check(check_id, title, [], [], skip=f"no service port known for group id "
                          f"{endpoint.group_id!r}")  # fmt: skip
    if facts.live is None:
        return make_check(check_id, title, [], [f"{endpoint.name} does not exist"])
    if facts.ip is None:
        return make_check(check_id, title, [], [f"{endpoint.name} has no NIC private IP"])
    subnet_id = str((props_of(to_wire(facts.live.raw)).get("subnet") or {}).get("id") or "")
    vnet = _read_vnet(run, subnet_id.split("/subnets/")[0])
    subnet = vnet.subnet(subnet_id)
    if subnet is None:
        return make_check(check_id, title, [], [f"subnet {subnet_id} not found in {vnet.name}"])
    where = f"{endpoint.name} {facts.ip}:{port}"
    tags, tag_text = _tags(vnet)
    target, target_text, bypass = _target_layers(run, facts.nic_id, subnet)
    evidence = [
        f"endpoint {where} (group {endpoint.group_id}) in subnet {subnet.get('name')} of "
        f"{vnet.name}",
        target_text,
        tag_text,
    ]
    problems = [bypass] if bypass else []
    paths, missing, declared = _declared_paths(run, endpoint, port)
    problems += missing
    if not paths:
        problems.append(f"no declared Allow rule names {endpoint.name}")
    others = [_subnet_source(run, s) for s in vnet.subnets() if not _is_declared(s, declared)]
    others += [
        Source(f"peered VNet {name} ({', '.join(space)})", tuple(space))
        for name, space in vnet.peerings()
    ]
    others.append(Source(INTERNET, ("Internet",)))
    goal = Goal(endpoint.name, facts.ip, port, target, tags)
    for path in paths:
        _prove_open(goal, path, evidence, problems)
    for source in others:
        _prove_closed(goal, source, evidence, problems)
    return make_check(check_id, title, evidence, problems)


def _tags(vnet: Vnet) -> tuple[Tags, str]:
    """The VirtualNetwork tag as read here: the VNet's space and its connected peerings'."""
    space = vnet.space()
    peered = vnet.peerings()
    prefixes = [*space, *(p for _, remote in peered for p in remote)]
    said = ", ".join(f"{name} {' '.join(remote)}" for name, remote in peered) or "none"
    text = (
        f"VirtualNetwork tag = {', '.join(prefixes)} (address space of {vnet.name}, connected "
        f"peerings: {said}, plus the host address 168.63.129.16, not read: on-premises "
        "prefixes behind gateways, user-defined route prefixes)"
    )
    return Tags(tuple(prefixes), text), text


def _target_layers(run: Run, nic_id: str | None, subnet: dict[str, Any]) -> tuple[
        list[Layer], str, str]:  # fmt: skip
    """(inbound layers at the endpoint, evidence, a problem when the subnet's NSG is not
    applied to private endpoints)."""
    props = props_of(subnet)
    name = str(subnet.get("name"))
    policies = str(props.get("privateEndpointNetworkPolicies") or "Disabled")
    nsg_ref = props.get("networkSecurityGroup")
    nsg_name = name_of(str((nsg_ref or {}).get("id") or "")) if nsg_ref else None
    bypass = ""
    problem = ""
    if policies.lower() not in NSG_ENFORCED:
        bypass = (
            f"NSG not applied: subnet {name} has privateEndpointNetworkPolicies={policies}, so "
            "private endpoint traffic bypasses its NSG rules"
        )
        problem = (
            f"subnet {name} has privateEndpointNetworkPolicies={policies}: Azure applies no NSG "
            "rule to the private endpoints in it, so every source in the VNet reaches them "
            "whatever the rules say; the subnet's owner must set it to Enabled or "
            "NetworkSecurityGroupEnabled (az network vnet subnet update "
            "--private-endpoint-network-policies NetworkSecurityGroupEnabled)"
        )
    layers = [_nsg_layer(run, f"subnet {name}", nsg_ref, "Inbound", bypass)]
    text = (
        f"inbound: subnet {name} NSG {nsg_name or '(none)'}, privateEndpointNetworkPolicies="
        f"{policies} ({'NSG rules apply' if not bypass else 'NSG rules NOT applied'})"
    )
    if nic_id:
        nic = to_wire(run.clients.network.network_interfaces.get(rg_of(nic_id), name_of(nic_id)))
        nic_nsg = props_of(nic).get("networkSecurityGroup")
        layers.append(_nsg_layer(run, f"NIC {name_of(nic_id)}", nic_nsg, "Inbound"))
        text += f", NIC {name_of(nic_id)} NSG " + (
            name_of(str(nic_nsg["id"])) if nic_nsg and nic_nsg.get("id") else "(none)"
        )
    return layers, text, problem
