"""The DNS resolver ``verify`` queries: parsing ``--resolver``, choosing the default (the
emulator's DNS server), and one A query sent to that resolver only. Reads nothing else.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nsc_reconcile.azure import Clients


DNS_TIMEOUT_S = 3.0


def parse_resolver(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``HOST`` alone: port 53; IPv6 as ``[::1]:53``) -> (IP, port). The host
    must be an IP address or ``localhost``: the resolver is queried directly, never looked up.
    Raises ValueError."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, "53"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError:
        raise ValueError(
            f"--resolver {text!r}: expected IP:PORT (e.g. 10.10.0.4:53 or 127.0.0.1:53535)"
        ) from None
    if not 0 < port < 65536:
        raise ValueError(f"--resolver {text!r}: port out of range")
    return host, port


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_resolver(clients: Clients, resolver: str | None) -> tuple[str, int] | None:
    """The resolver to query: ``resolver`` if given, else the emulator's DNS server (when the
    target is an emulator), else None (DNS checks SKIP). For an emulator target only a
    loopback resolver is accepted. Raises ValueError."""
    emulator = clients.target.arm_url is not None
    if resolver is None:
        if emulator and clients.target.dns_address:
            return parse_resolver(clients.target.dns_address)
        return None
    parsed = parse_resolver(resolver)
    if emulator and not is_loopback(parsed[0]):
        raise ValueError(
            f"--resolver {resolver}: the emulator is only ever reached on loopback; use its "
            "`dns` address (the default with --emulator)"
        )
    return parsed


def resolve_a(name: str, resolver: tuple[str, int]) -> tuple[str, list[str], list[str]]:
    """Query ``resolver`` (and only it) for ``name`` A: (rcode, CNAME chain, addresses)."""
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    query = dns.message.make_query(name, dns.rdatatype.A)
    response, _ = dns.query.udp_with_fallback(
        query, resolver[0], timeout=DNS_TIMEOUT_S, port=resolver[1]
    )
    chain: list[str] = []
    addresses: list[str] = []
    for rrset in response.answer:
        for item in rrset:
            if rrset.rdtype == dns.rdatatype.CNAME:
                chain.append(str(item.target).rstrip("."))
            elif rrset.rdtype == dns.rdatatype.A:
                addresses.append(str(item.address))
    return dns.rcode.to_text(response.rcode()), chain, addresses
