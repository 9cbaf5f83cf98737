"""DNS server (UDP and TCP on 127.0.0.1, ``dnslib``) answering as Azure DNS does for a client
inside a VNet: public service names CNAME to their ``privatelink`` name, which resolves from
the world's private DNS zones when a zone is linked to the client's VNet. Reads ARM only,
plus an optional hook (``Resolver.cluster_dns``) that answers the AKS cluster domain first
(``<service>.<namespace>.svc.cluster.local``, as a pod's CoreDNS does).

Resolution of a query name (``Resolver.resolve``), as Azure-provided DNS (168.63.129.16) does:
1. The name lies in a private DNS zone linked to the client VNet: answered from that zone
   (A/AAAA/CNAME/TXT/SOA record sets; a CNAME is followed). A name missing from the zone is
   NXDOMAIN (the private zone hides public DNS), unless the link's ``resolutionPolicy`` is
   ``NxDomainRedirect``, which falls back to step 2.
2. Otherwise public DNS: ``<label>.<service suffix>`` (table ``PRIVATE_LINK_ZONES``) answers a
   CNAME to ``<label>.<privatelink zone>`` when the resource exists in ARM (OpenAI/Cognitive
   account by custom subdomain or name, PostgreSQL flexible server, Key Vault, container
   registry), then that name is resolved again: from the private zone when linked (step 1),
   else as public DNS would, with a PUBLIC-looking address from 20.0.0.0/8 (derived from the
   name, stable). So "resolves to the private IP" holds only with zone + link + record, and a
   missing link visibly yields a 20.x address. Anything else is NXDOMAIN.
The client VNet: ``vnet`` (a VNet name or ARM id); None means "inside every VNet of the world"
(the baseline has one, ``nsc-vnet-dev``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, SOA, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

__all__ = ["PRIVATE_LINK_ZONES", "DnsServer", "Resolver"]

ZONE_TYPE = "Microsoft.Network/privateDnsZones"
LINK_TYPE = f"{ZONE_TYPE}/virtualNetworkLinks"
VNET_TYPE = "Microsoft.Network/virtualNetworks"
PUBLIC_TTL = 60
CLUSTER_TTL = 30  # AKS CoreDNS: `kubernetes cluster.local ... { ttl 30 }`
MAX_CHAIN = 8

# Public service suffix -> (private link zone, ARM type of the resource behind ``<label>``).
PRIVATE_LINK_ZONES: dict[str, tuple[str, str]] = {
    "openai.azure.com": ("privatelink.openai.azure.com", "Microsoft.CognitiveServices/accounts"),
    "cognitiveservices.azure.com": (
        "privatelink.cognitiveservices.azure.com",
        "Microsoft.CognitiveServices/accounts",
    ),
    "postgres.database.azure.com": (
        "privatelink.postgres.database.azure.com",
        "Microsoft.DBforPostgreSQL/flexibleServers",
    ),
    "vault.azure.net": ("privatelink.vaultcore.azure.net", "Microsoft.KeyVault/vaults"),
    "azurecr.io": ("privatelink.azurecr.io", "Microsoft.ContainerRegistry/registries"),
}
_RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT", "SOA")


class WorldView(Protocol):
    """What the DNS server reads (``arm.World`` satisfies it)."""

    def list_by_type(self, arm_type: str) -> list[dict[str, Any]]: ...


@dataclass
class Answer:
    """The outcome of one query: rcode, answer records and (for NXDOMAIN) the zone's SOA."""

    rcode: str = "NOERROR"  # or "NXDOMAIN"
    records: list[tuple[str, str, int, Any]] = field(default_factory=list)  # name, type, ttl, data
    authority: tuple[str, int, dict[str, Any]] | None = None  # zone, ttl, soaRecord


def public_address(name: str) -> str:
    """A stable public-looking IPv4 (20.0.0.0/8) for ``name``: never a private address."""
    digest = hashlib.sha256(name.lower().encode()).digest()
    return f"20.{digest[0]}.{digest[1]}.{max(digest[2], 1)}"


class Resolver:
    """Pure resolution over the world's ARM resources (see the module docstring)."""

    def __init__(self, world: WorldView, vnet: str | None = None) -> None:
        self.world = world
        self.vnet = vnet
        # Optional hook (set by the app): the cluster DNS of the emulated AKS, as a pod sees
        # it. name -> its addresses ([] = NXDOMAIN), or None when the name is not the cluster's.
        self.cluster_dns: Callable[[str], list[str] | None] | None = None

    # -- world lookups ------------------------------------------------------------------------
    def _client_in(self, vnet_id: str) -> bool:
        if self.vnet is None:
            return True
        wanted = self.vnet.lower().rstrip("/")
        vnet_id = vnet_id.lower()
        return vnet_id == wanted or ("/" not in wanted and vnet_id.endswith("/" + wanted))

    def _linked_zones(self) -> dict[str, tuple[dict[str, Any], str]]:
        """Linked zone name -> (zone resource, resolution policy of the link)."""
        zones = {str(z["id"]).lower(): z for z in self.world.list_by_type(ZONE_TYPE)}
        vnets = {str(v["id"]).lower() for v in self.world.list_by_type(VNET_TYPE)}
        linked: dict[str, tuple[dict[str, Any], str]] = {}
        for link in self.world.list_by_type(LINK_TYPE):
            props = link.get("properties") or {}
            vnet_id = str((props.get("virtualNetwork") or {}).get("id", ""))
            state = props.get("provisioningState", "Succeeded")
            if state != "Succeeded" or vnet_id.lower() not in vnets:
                continue
            if not self._client_in(vnet_id):
                continue
            zone = zones.get(str(link["id"]).lower().rsplit("/virtualnetworklinks/", 1)[0])
            if zone is not None:
                name = str(zone["name"]).lower().rstrip(".")
                linked.setdefault(name, (zone, str(props.get("resolutionPolicy") or "Default")))
        return linked

    def _record_sets(self, zone: dict[str, Any], relative: str) -> dict[str, dict[str, Any]]:
        """Record type -> properties of the record sets named ``relative`` in ``zone``."""
        prefix = str(zone["id"]).lower() + "/"
        found: dict[str, dict[str, Any]] = {}
        for record_type in _RECORD_TYPES:
            for record_set in self.world.list_by_type(f"{ZONE_TYPE}/{record_type}"):
                rid = str(record_set["id"]).lower()
                if rid == f"{prefix}{record_type.lower()}/{relative.lower()}":
                    found[record_type] = record_set.get("properties") or {}
        return found

    def _resource_exists(self, arm_type: str, label: str) -> bool:
        for resource in self.world.list_by_type(arm_type):
            props = resource.get("properties") or {}
            names = {str(resource.get("name", "")).lower()}
            if props.get("customSubDomainName"):
                names.add(str(props["customSubDomainName"]).lower())
            if label in names:
                return True
        return False

    # -- resolution ---------------------------------------------------------------------------
    def resolve(self, name: str, qtype: str = "A") -> Answer:
        """Resolve ``name`` for ``qtype`` (A, AAAA, CNAME, TXT, SOA, ANY); never raises."""
        answer = Answer()
        current = name.lower().rstrip(".")
        found = self.cluster_dns(current) if self.cluster_dns is not None else None
        if found is not None:  # CoreDNS answers the cluster domain itself
            if qtype in ("A", "ANY"):
                answer.records += [(current, "A", CLUSTER_TTL, address) for address in found]
            if not found:
                answer.rcode = "NXDOMAIN"
            return answer
        for _ in range(MAX_CHAIN):
            step = self._step(current, qtype, answer)
            if step is None:
                return answer
            current = step
        return answer

    def _step(self, name: str, qtype: str, answer: Answer) -> str | None:
        """Answer what ``name`` holds; returns a CNAME target still to follow, else None."""
        linked = self._linked_zones()
        zone_name = next(
            (
                z
                for z in sorted(linked, key=len, reverse=True)
                if name == z or name.endswith("." + z)
            ),
            None,
        )
        if zone_name is not None:
            zone, policy = linked[zone_name]
            relative = "@" if name == zone_name else name[: -len(zone_name) - 1]
            sets = self._record_sets(zone, relative)
            if sets:
                return self._from_zone(name, qtype, sets, answer)
            if policy != "NxDomainRedirect":
                soa = self._record_sets(zone, "@").get("SOA", {})
                answer.rcode = "NXDOMAIN"
                answer.authority = (zone_name, 3600, soa.get("soaRecord") or {})
                return None
        return self._public(name, qtype, answer)

    def _from_zone(
        self, name: str, qtype: str, sets: dict[str, dict[str, Any]], answer: Answer
    ) -> str | None:
        if "CNAME" in sets:
            target = str((sets["CNAME"].get("cnameRecord") or {}).get("cname", "")).rstrip(".")
            if target:
                answer.records.append((name, "CNAME", _ttl(sets["CNAME"]), target))
                return None if qtype == "CNAME" else target.lower()
        wanted = _RECORD_TYPES if qtype == "ANY" else (qtype,)
        for record_type in wanted:
            props = sets.get(record_type)
            if props is None:
                continue
            ttl = _ttl(props)
            if record_type == "A":
                for record in props.get("aRecords") or []:
                    answer.records.append((name, "A", ttl, record.get("ipv4Address")))
            elif record_type == "AAAA":
                for record in props.get("aaaaRecords") or []:
                    answer.records.append((name, "AAAA", ttl, record.get("ipv6Address")))
            elif record_type == "TXT":
                for record in props.get("txtRecords") or []:
                    answer.records.append((name, "TXT", ttl, list(record.get("value") or [])))
            elif record_type == "SOA":
                answer.records.append((name, "SOA", ttl, props.get("soaRecord") or {}))
        return None

    def _public(self, name: str, qtype: str, answer: Answer) -> str | None:
        """Public DNS for the Azure service names this emulator knows; NXDOMAIN otherwise."""
        for suffix, (zone, arm_type) in PRIVATE_LINK_ZONES.items():
            for domain, is_private in ((suffix, False), (zone, True)):
                if not name.endswith("." + domain):
                    continue
                label = name[: -len(domain) - 1]
                if "." in label or not self._resource_exists(arm_type, label):
                    continue
                if not is_private:
                    target = f"{label}.{zone}"
                    answer.records.append((name, "CNAME", PUBLIC_TTL, target))
                    return None if qtype == "CNAME" else target
                if qtype in ("A", "ANY"):
                    answer.records.append((name, "A", PUBLIC_TTL, public_address(name)))
                return None
        answer.rcode = "NXDOMAIN"
        return None


def _ttl(props: dict[str, Any]) -> int:
    ttl = props.get("ttl")
    return int(ttl) if isinstance(ttl, int) else 3600


class _DnslibResolver(BaseResolver):  # type: ignore[misc]  # dnslib is untyped
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    def resolve(self, request: DNSRecord, _handler: DNSHandler) -> DNSRecord:
        reply = request.reply(ra=1, aa=0)
        qname = str(request.q.qname)
        qtype = QTYPE.get(request.q.qtype, "A")
        try:
            answer = self.resolver.resolve(qname, str(qtype))
        except Exception:  # a resolver bug answers SERVFAIL instead of killing the thread
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        for name, rtype, ttl, data in answer.records:
            rdata = _rdata(rtype, data)
            if rdata is not None:
                reply.add_answer(RR(name + ".", getattr(QTYPE, rtype), rdata=rdata, ttl=ttl))
        if answer.rcode == "NXDOMAIN":
            reply.header.rcode = RCODE.NXDOMAIN
        if answer.authority is not None:
            zone, ttl, soa = answer.authority
            reply.add_auth(RR(zone + ".", QTYPE.SOA, rdata=_soa(soa), ttl=ttl))
        return reply


def _rdata(rtype: str, data: Any) -> Any:
    try:
        if rtype == "A":
            return A(str(ipaddress.IPv4Address(str(data))))
        if rtype == "AAAA":
            return AAAA(str(ipaddress.IPv6Address(str(data))))
        if rtype == "CNAME":
            return CNAME(str(data).rstrip(".") + ".")
        if rtype == "TXT":
            return TXT([str(part) for part in data])
        if rtype == "SOA":
            return _soa(data)
    except ValueError:
        return None  # malformed stored data (drift) is skipped, not fatal
    return None


def _soa(soa: dict[str, Any]) -> Any:
    host = str(soa.get("host", "azureprivatedns.net")).rstrip(".") + "."
    email = str(soa.get("email", "azureprivatedns-host.microsoft.com")).rstrip(".") + "."
    times = (
        int(soa.get("serialNumber", 1)),
        int(soa.get("refreshTime", 3600)),
        int(soa.get("retryTime", 300)),
        int(soa.get("expireTime", 2419200)),
        int(soa.get("minimumTtl", 10)),
    )
    return SOA(host, email, times)


class _QuietLogger:
    """dnslib's logger interface, silent: the emulator never prints per query."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("log_"):
            return lambda *_args, **_kwargs: None
        raise AttributeError(name)


class DnsServer:
    """UDP + TCP DNS on ``host`` (port 0 = ephemeral; TCP shares the UDP port)."""

    def __init__(
        self,
        world: WorldView,
        host: str = "127.0.0.1",
        port: int = 0,
        vnet: str | None = None,
    ) -> None:
        self.resolver = Resolver(world, vnet)
        self._host = host
        self._port = port
        self._servers: list[Any] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) once started."""
        if not self._servers:
            raise RuntimeError("the DNS server is not started")
        host, port = self._servers[0].server.server_address[:2]
        return str(host), int(port)

    def start(self) -> DnsServer:
        """Bind and serve in daemon threads; idempotent. Returns self."""
        with self._lock:
            if self._servers:
                return self
            resolver = _DnslibResolver(self.resolver)
            # UDP and TCP share one port number. With an ephemeral port the kernel picks the
            # UDP one, and that number may be taken for TCP: then try another.
            attempts = 1 if self._port else 20
            for attempt in range(attempts):
                udp = DNSServer(
                    resolver, port=self._port, address=self._host, logger=_QuietLogger()
                )
                port = int(udp.server.server_address[1])
                try:
                    tcp = DNSServer(
                        resolver, port=port, address=self._host, logger=_QuietLogger(), tcp=True
                    )
                except OSError:
                    udp.server.server_close()
                    if attempt == attempts - 1:
                        raise
                    continue
                break
            self._servers = [udp, tcp]
            for server in self._servers:
                server.server.daemon_threads = True
                server.start_thread()
            return self

    def stop(self) -> None:
        """Stop serving and release the ports; idempotent."""
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            server.stop()
            server.server.server_close()
