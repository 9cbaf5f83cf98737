"""Azure NSG evaluation of one TCP flow, as Azure does it (pure computation, no I/O).

Each place that filters the flow (the source subnet's NSG outbound, the destination subnet's
NSG inbound, the destination NIC's NSG inbound) is a ``Layer``; in each, rules (custom and
default) are tried by priority and the first match decides. A source is a set of addresses (a
subnet, "the Internet"): it is split into parts on which every rule decides the same way, so a
verdict says which rule decides for which addresses. What cannot be known here (application
security groups, service tags other than VirtualNetwork / Internet / AzureLoadBalancer on a
public address) makes the verdict undecided, naming the rule, never a guess.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Interval = tuple[int, int]  # inclusive IPv4 address (or port) bounds

ALL_ADDRESSES: Interval = (0, 2**32 - 1)
ALL_PORTS: Interval = (0, 65535)
# A client's source port is an ephemeral one (Linux 32768-60999, Windows 49152-65535, both
# inside this range); well-known ports below 1024 are never a client's.
CLIENT_PORTS: Interval = (1024, 65535)
# The platform's host address: Azure's AzureLoadBalancer tag, and part of the VirtualNetwork
# tag ("the virtual IP address of the host"); a virtual public IP, never the Internet's.
AZURE_LOAD_BALANCER = "168.63.129.16/32"
# Not reachable from the public internet: "this network", RFC 1918, shared (CGNAT) space,
# loopback, link-local, multicast and reserved. The Internet tag is everything else outside
# the VirtualNetwork tag ("the IP address space outside the virtual network and reachable by
# the public internet", Microsoft's service tags documentation).
NOT_INTERNET = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
)  # fmt: skip
# Other service tags (AzureCloud, Storage.<region>, AzureDatabricks, ...) list Microsoft's
# public ranges, published in the "Azure IP Ranges and Service Tags" file; none holds RFC 1918
# space, so they never match a private address. On a public address they are unknown here.
RFC1918 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
KNOWN_TAGS = ("VirtualNetwork", "Internet", "AzureLoadBalancer")

# Azure's defaults (the same in every NSG, shown in ``defaultSecurityRules``).
DEFAULT_RULES: tuple[tuple[str, str, str, int, str, str], ...] = (
    ("AllowVnetInBound", "Inbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", "Inbound", "Allow", 65001, "AzureLoadBalancer", "*"),
    ("DenyAllInBound", "Inbound", "Deny", 65500, "*", "*"),
    ("AllowVnetOutBound", "Outbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork"),
    ("AllowInternetOutBound", "Outbound", "Allow", 65001, "*", "Internet"),
    ("DenyAllOutBound", "Outbound", "Deny", 65500, "*", "*"),
)


# ----------------------------------------------------------------------------- address sets
def _interval(prefix: str) -> Interval | None:
    """An IPv4 CIDR or address as an interval; None for IPv6 or anything else."""
    try:
        net = ipaddress.ip_network(prefix.strip(), strict=False)
    except ValueError:
        return None
    if net.version != 4:
        return None
    return int(net.network_address), int(net.broadcast_address)


def _merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _complement(
    intervals: Iterable[Interval], within: Interval = ALL_ADDRESSES
) -> tuple[Interval, ...]:
    out: list[Interval] = []
    cursor = within[0]
    for lo, hi in _merge(intervals):
        if hi < cursor or lo > within[1]:
            continue
        if lo > cursor:
            out.append((cursor, lo - 1))
        cursor = max(cursor, hi + 1)
    if cursor <= within[1]:
        out.append((cursor, within[1]))
    return tuple(out)


def _contains(intervals: Iterable[Interval], value: int) -> bool:
    return any(lo <= value <= hi for lo, hi in intervals)


def _prefixes(texts: Iterable[str]) -> tuple[Interval, ...]:
    return _merge(i for i in (_interval(t) for t in texts) if i is not None)


@dataclass(frozen=True)
class AddressSet:
    """Addresses a rule entry stands for: ``known`` match; ``unknown`` may or may not."""

    known: tuple[Interval, ...] = ()
    unknown: tuple[Interval, ...] = ()
    note: str = ""  # why ``unknown`` is unknown

    def member(self, address: int) -> bool | None:
        if _contains(self.known, address):
            return True
        if _contains(self.unknown, address):
            return None
        return False

    def cuts(self) -> list[int]:
        """Where membership may change: the first address of each piece and the one after."""
        return [edge for lo, hi in (*self.known, *self.unknown) for edge in (lo, hi + 1)]


@dataclass(frozen=True)
class Tags:
    """What the service tags stand for where the rules are evaluated.

    ``virtual_network``: the VirtualNetwork tag as read: the VNet's address space(s) and those
    of its connected peerings (the host address 168.63.129.16 is added). Azure's tag also holds
    on-premises prefixes behind a VPN or ExpressRoute gateway and user-defined route prefixes;
    ``covers`` says what was read."""

    virtual_network: tuple[str, ...]
    covers: str = ""

    def resolve(self, entry: str) -> AddressSet:
        """One source/destination entry (CIDR, address, ``*`` or a service tag)."""
        text = entry.strip()
        if text in ("*", "Any", "any", "0.0.0.0/0"):
            return AddressSet(known=(ALL_ADDRESSES,))
        single = _interval(text)
        if single is not None:
            return AddressSet(known=(single,))
        if ":" in text:  # IPv6: never an IPv4 flow's address
            return AddressSet()
        vnet = _prefixes([*self.virtual_network, AZURE_LOAD_BALANCER])
        tag = text.lower()
        if tag == "virtualnetwork":
            return AddressSet(known=vnet)
        if tag == "azureloadbalancer":
            return AddressSet(known=_prefixes([AZURE_LOAD_BALANCER]))
        if tag == "internet":
            return AddressSet(known=_complement([*vnet, *_prefixes(NOT_INTERNET)]))
        return AddressSet(
            unknown=_complement(_prefixes(RFC1918)),
            note=f"service tag {text} (its public address ranges are not known here; "
            "no service tag holds RFC 1918 space)",
        )


# ----------------------------------------------------------------------------------- rules
def _port_range(text: str) -> Interval | None:
    value = text.strip()
    if value in ("*", "Any", "any"):
        return ALL_PORTS
    low, _, high = value.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        return None
    return int(low), int(high or low)


@dataclass(frozen=True)
class Rule:
    """One security rule as Azure holds it (custom or default)."""

    name: str
    priority: int
    direction: str  # Inbound | Outbound
    access: str  # Allow | Deny
    protocol: str  # Tcp | Udp | Icmp | Esp | Ah | *
    sources: tuple[str, ...]
    source_ports: tuple[str, ...]
    destinations: tuple[str, ...]
    destination_ports: tuple[str, ...]
    nsg: str = ""  # the NSG it belongs to
    default: bool = False
    source_groups: tuple[str, ...] = ()  # application security groups (not evaluated here)
    destination_groups: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return "default" if self.default else "custom"

    def label(self) -> str:
        """``name priority (custom rule of nsg)``: how evidence names the rule."""
        of = f" of {self.nsg}" if self.nsg else ""
        return f"{self.name} {self.priority} ({self.where} rule{of})"

    def allows(self) -> bool:
        return self.access.lower() == "allow"


def _either(props: dict[str, Any], single: str, plural: str) -> tuple[str, ...]:
    """Azure holds one form at a time: the single value, else the list."""
    one = props.get(single)
    if one not in (None, ""):
        return (str(one),)
    return tuple(str(x) for x in props.get(plural) or [])


def _groups(props: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(str((g or {}).get("id") or "?") for g in props.get(key) or [])


def rule_from_wire(rule: dict[str, Any], nsg: str = "", default: bool = False) -> Rule:
    """A rule from its ARM JSON (``securityRules[]`` / ``defaultSecurityRules[]`` item)."""
    props = dict(rule.get("properties") or {})
    return Rule(
        name=str(rule.get("name") or "?"),
        priority=int(props.get("priority") or 0),
        direction=str(props.get("direction") or ""),
        access=str(props.get("access") or ""),
        protocol=str(props.get("protocol") or "*"),
        sources=_either(props, "sourceAddressPrefix", "sourceAddressPrefixes"),
        source_ports=_either(props, "sourcePortRange", "sourcePortRanges"),
        destinations=_either(props, "destinationAddressPrefix", "destinationAddressPrefixes"),
        destination_ports=_either(props, "destinationPortRange", "destinationPortRanges"),
        nsg=nsg,
        default=default,
        source_groups=_groups(props, "sourceApplicationSecurityGroups"),
        destination_groups=_groups(props, "destinationApplicationSecurityGroups"),
    )


def default_rules(nsg: str = "") -> list[Rule]:
    """Azure's six default rules (what ``defaultSecurityRules`` shows)."""
    return [
        Rule(name, priority, direction, access, "*", (source,), ("*",), (dest,), ("*",), nsg, True)
        for name, direction, access, priority, source, dest in DEFAULT_RULES
    ]


def rules_of(nsg: dict[str, Any]) -> list[Rule]:
    """Every rule of an NSG as ARM returns it: its custom rules and its default rules (Azure's
    defaults when the body does not show them; they cannot be removed)."""
    props = dict(nsg.get("properties") or {})
    name = str(nsg.get("name") or "")
    custom = [rule_from_wire(r, name) for r in props.get("securityRules") or []]
    shown = [rule_from_wire(r, name, default=True) for r in props.get("defaultSecurityRules") or []]
    return [*custom, *(shown or default_rules(name))]


# ------------------------------------------------------------------------------ evaluation
@dataclass(frozen=True)
class Flow:
    """TCP traffic from ``sources`` (any of these addresses, from a client port) to one
    address and port."""

    sources: tuple[str, ...]  # CIDRs, addresses, or service tags (e.g. ("Internet",))
    destination: str
    port: int
    protocol: str = "Tcp"
    source_ports: Interval = CLIENT_PORTS


@dataclass(frozen=True)
class Layer:
    """One place that filters the flow: an NSG's rules in one direction. ``rules`` None: no
    NSG there (Azure then filters nothing); ``bypass``: the NSG is not applied, and why."""

    where: str  # e.g. "subnet snet-data NSG nsc-nsg-data-dev"
    direction: str  # Inbound | Outbound
    rules: tuple[Rule, ...] | None = None
    bypass: str = ""


@dataclass(frozen=True)
class Step:
    """What one layer decided for one part of the flow."""

    layer: Layer
    allowed: bool | None  # None: undecided
    rule: Rule | None  # the deciding rule (None: no NSG, bypassed, or undecided)
    reason: str

    def text(self) -> str:
        if self.rule is not None:
            word = "allowed" if self.allowed else "denied"
            return f"{word} by {self.rule.label()}"
        return self.reason


@dataclass(frozen=True)
class Part:
    """Some of the flow's source addresses and ports, and the layers' decisions on them."""

    addresses: tuple[Interval, ...]
    ports: Interval
    steps: tuple[Step, ...]

    @property
    def allowed(self) -> bool | None:
        """False when a layer denies; None when one is undecided (and none denies)."""
        values = [s.allowed for s in self.steps]
        if False in values:
            return False
        return None if None in values else True

    @property
    def deciding(self) -> Step | None:
        """The layer that decides: the first denying (else undecided) one; when every layer
        allows, the last layer that allowed through a rule (the destination's)."""
        for wanted in (False, None):
            for step in self.steps:
                if step.allowed is wanted:
                    return step
        with_rule = [s for s in self.steps if s.rule is not None]
        return with_rule[-1] if with_rule else (self.steps[-1] if self.steps else None)

    def explain(self) -> str:
        """Why this part is allowed (each layer's rule or reason) or denied/undecided (the
        deciding layer's rule or reason)."""
        if self.allowed is True:
            said = [s.text() for s in self.steps if s.rule is not None or s.layer.bypass]
            return " and ".join(said or [s.text() for s in self.steps]) or "no layer filters"
        step = self.deciding
        return step.text() if step is not None else "no layer"

    def source_text(self, whole: bool) -> str:
        if whole:
            return ""
        nets = [
            str(n)
            for lo, hi in self.addresses
            for n in ipaddress.summarize_address_range(
                ipaddress.IPv4Address(lo), ipaddress.IPv4Address(hi)
            )
        ]
        shown = ", ".join(nets[:4]) + (f" (+{len(nets) - 4} more)" if len(nets) > 4 else "")
        return f"from {shown}"


@dataclass(frozen=True)
class Verdict:
    """The flow's outcome: ``allowed`` True when every part is allowed, False when every part
    is denied, None otherwise (partly allowed, or undecided); ``parts`` say which rule decides
    for which source addresses."""

    flow: Flow
    parts: tuple[Part, ...] = field(default=())

    @property
    def allowed(self) -> bool | None:
        values = {p.allowed for p in self.parts}
        if values == {True}:
            return True
        if values == {False}:
            return False
        return None

    def allowing(self) -> list[Part]:
        return [p for p in self.parts if p.allowed is True]

    def denying(self) -> list[Part]:
        return [p for p in self.parts if p.allowed is False]

    def undecided(self) -> list[Part]:
        return [p for p in self.parts if p.allowed is None]

    def describe(self, parts: Sequence[Part] | None = None) -> str:
        """Each part's deciding step, e.g. ``denied by DenyAllInBound 65500 (default rule of
        nsc-nsg-data-dev)``; for an allowed part, every layer's allowing rule (or why nothing
        filters there). The source addresses are named when only some of the flow's sources
        are concerned."""
        chosen = list(self.parts if parts is None else parts)
        every = _merge(a for p in self.parts for a in p.addresses)
        texts = []
        for part in chosen:
            said = part.explain()
            where = part.source_text(part.addresses == every)
            ports = "" if part.ports == self.flow.source_ports else (
                f" source ports {part.ports[0]}-{part.ports[1]}"
            )  # fmt: skip
            texts.append(f"{said}{' ' + where if where else ''}{ports}")
        return "; ".join(dict.fromkeys(texts))


def _any(values: Iterable[bool | None]) -> bool | None:
    """Three-valued OR."""
    found: bool | None = False
    for value in values:
        if value is True:
            return True
        if value is None:
            found = None
    return found


def _all(values: Iterable[bool | None]) -> bool | None:
    """Three-valued AND."""
    found: bool | None = True
    for value in values:
        if value is False:
            return False
        if value is None:
            found = None
    return found


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    sources: tuple[AddressSet, ...]
    destinations: tuple[AddressSet, ...]
    source_ports: tuple[Interval, ...]
    destination_ports: tuple[Interval, ...]

    def protocol_matches(self, protocol: str) -> bool:
        return self.rule.protocol.lower() in ("*", "any", protocol.lower())

    def matches(self, flow: Flow, address: int, port: int, destination: int) -> bool | None:
        """Does the rule match source ``address``:``port`` -> the flow's destination?"""
        source: bool | None = _any(s.member(address) for s in self.sources)
        if self.rule.source_groups:
            source = _any([source, None])  # membership of NICs in a group: not read here
        target: bool | None = _any(d.member(destination) for d in self.destinations)
        if self.rule.destination_groups:
            target = _any([target, None])
        return _all(
            [
                self.protocol_matches(flow.protocol),
                _contains(self.destination_ports, flow.port),
                _contains(self.source_ports, port),
                source,
                target,
            ]
        )

    def unknown_reason(self) -> str:
        notes = [s.note for s in (*self.sources, *self.destinations) if s.note]
        if self.rule.source_groups or self.rule.destination_groups:
            notes.append("application security groups (their members are not read here)")
        return ", ".join(dict.fromkeys(notes)) or "an entry that cannot be read"


def _compile(rule: Rule, tags: Tags) -> _Compiled:
    def ports(texts: tuple[str, ...]) -> tuple[Interval, ...]:
        return _merge(p for p in (_port_range(t) for t in texts) if p is not None)

    return _Compiled(
        rule,
        tuple(tags.resolve(s) for s in rule.sources),
        tuple(tags.resolve(d) for d in rule.destinations),
        ports(rule.source_ports),
        ports(rule.destination_ports),
    )


def _decide(layer: Layer, compiled: list[_Compiled], flow: Flow, address: int, port: int,
            destination: int) -> Step:  # fmt: skip
    if layer.bypass:
        return Step(layer, True, None, layer.bypass)
    if layer.rules is None:
        return Step(layer, True, None, f"no NSG on {layer.where}: nothing filters there")
    for item in compiled:
        match = item.matches(flow, address, port, destination)
        if match is None:
            return Step(layer, None, None, f"undecided at {item.rule.label()}: it uses "
                        f"{item.unknown_reason()}")  # fmt: skip
        if match:
            return Step(layer, item.rule.allows(), item.rule, "")
    # Azure's DenyAll rules make this unreachable on a real NSG.
    return Step(layer, False, None, f"no rule of {layer.where} matches")


def _cuts(points: Iterable[int], bounds: Interval) -> list[Interval]:
    """``bounds`` cut at ``points`` (each point starts a new piece)."""
    lo, hi = bounds
    inner = sorted({p for p in points if lo < p <= hi})
    starts = [lo, *inner]
    ends = [p - 1 for p in inner] + [hi]
    return list(zip(starts, ends, strict=True))


def _layer_rules(layer: Layer, tags: Tags) -> list[_Compiled]:
    """The layer's rules of its direction, by priority (lowest number first)."""
    mine = [r for r in layer.rules or () if r.direction.lower() == layer.direction.lower()]
    return [_compile(r, tags) for r in sorted(mine, key=lambda r: r.priority)]


def evaluate(flow: Flow, layers: Sequence[Layer], tags: Tags) -> Verdict:
    """The flow's verdict through ``layers`` (in the order traffic meets them): in each layer
    the rules of its direction by priority, first match wins; the flow passes only where
    every layer allows. Pure: reads nothing."""
    destination = _interval(flow.destination)
    if destination is None or destination[0] != destination[1]:
        raise ValueError(f"the destination must be one IPv4 address, got {flow.destination!r}")
    target = destination[0]
    compiled = [_layer_rules(layer, tags) for layer in layers]
    sources = _merge(i for s in flow.sources for i in tags.resolve(s).known)
    address_cuts: list[int] = []
    port_cuts: list[int] = []
    for items in compiled:
        for item in items:
            for entry in item.sources:
                address_cuts += entry.cuts()
            port_cuts += [edge for lo, hi in item.source_ports for edge in (lo, hi + 1)]
    ports = _cuts(port_cuts, flow.source_ports)
    pieces: list[tuple[Interval, Interval, tuple[Step, ...]]] = []
    for span in sources:
        for addresses in _cuts(address_cuts, span):
            for port_span in ports:
                steps = tuple(
                    _decide(layer, items, flow, addresses[0], port_span[0], target)
                    for layer, items in zip(layers, compiled, strict=True)
                )
                pieces.append((addresses, port_span, steps))
    return Verdict(flow, _group(pieces))


def _group(pieces: list[tuple[Interval, Interval, tuple[Step, ...]]]) -> tuple[Part, ...]:
    """Pieces with the same decisions (and source ports) become one part."""
    grouped: dict[tuple[Interval, tuple[Step, ...]], list[Interval]] = {}
    for addresses, ports, steps in pieces:
        grouped.setdefault((ports, steps), []).append(addresses)
    return tuple(
        Part(_merge(addresses), ports, steps) for (ports, steps), addresses in grouped.items()
    )
