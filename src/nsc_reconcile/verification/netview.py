"""How the smoke tests reach private addresses: the network as seen from inside the VNet.

On Azure the runner is inside the VNet (a self-hosted agent, or the in-cluster Job): names
resolve through the given DNS server (``--resolver``) or the system's, and connections go to
the addresses DNS gives. On the emulator the world's addresses (``10.x`` private endpoint IPs,
``20.x`` public service addresses) are data, never destinations: names resolve through the
emulator's DNS and every connection goes to the loopback address the emulator routes that
address to (``GET {arm}/_emulator/route``), curl ``--resolve`` style. TLS is always verified
against the service's real host name (the emulator's CA on the emulator).
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nsc_reconcile.verification.resolver import is_loopback, resolve_a

if TYPE_CHECKING:
    from nsc_reconcile.azure import Clients


class NoRouteError(ConnectionError):
    """Nothing answers at that address from here (the emulator has no route to it)."""


@dataclass(frozen=True)
class Resolution:
    """What DNS said of one name: rcode, the CNAME chain followed and the addresses."""

    name: str
    rcode: str
    chain: tuple[str, ...]
    addresses: tuple[str, ...]

    def describe(self) -> str:
        hops = " -> ".join([self.name, *self.chain])
        got = ", ".join(self.addresses) or self.rcode
        return f"{hops} = {got}"


@dataclass
class NetworkView:
    """Resolve names and pick the address to connect to, as a client inside the VNet.

    ``resolver``: the DNS server asked (None: the system resolver). ``emulator_arm``: the
    emulator's ARM URL (loopback) when the world is emulated, else None. ``ca_cert``: the CA
    bundle TLS is verified against (None: the system's trust store).
    """

    resolver: tuple[str, int] | None = None
    emulator_arm: str | None = None
    ca_cert: str | None = None
    _routes: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)

    @classmethod
    def for_clients(cls, clients: Clients, resolver: tuple[str, int] | None) -> NetworkView:
        target = clients.target
        emulated = target.arm_url is not None
        return cls(
            resolver=resolver,
            emulator_arm=target.arm_url if emulated else None,
            ca_cert=target.ca_cert,
        )

    @property
    def emulated(self) -> bool:
        return self.emulator_arm is not None

    def resolve(self, name: str) -> Resolution:
        """A records of ``name`` (CNAMEs followed)."""
        if self.resolver is not None:
            rcode, chain, addresses = resolve_a(name, self.resolver)
            return Resolution(name, rcode, tuple(chain), tuple(addresses))
        if self.emulated:
            raise NoRouteError(f"no DNS server of the emulated world to resolve {name}")
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror as error:
            return Resolution(name, f"NXDOMAIN ({error.strerror})", (), ())
        found = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
        return Resolution(name, "NOERROR", (), found)

    def dial(self, address: str, port: int) -> tuple[str, int]:
        """The (host, port) to connect to for ``address:port``: itself on Azure; on the
        emulator its loopback route (NoRouteError when nothing listens there)."""
        if not self.emulated:
            return address, port
        key = (address, port)
        if key not in self._routes:
            self._routes[key] = self._ask_route(address, port)
        return self._routes[key]

    def _ask_route(self, address: str, port: int) -> tuple[str, int]:
        assert self.emulator_arm is not None
        host = urllib.parse.urlsplit(self.emulator_arm).hostname or ""
        if host != "localhost" and not is_loopback(host):
            raise ValueError(f"not a loopback emulator URL: {self.emulator_arm}")
        query = urllib.parse.urlencode({"address": address, "port": port})
        url = f"{self.emulator_arm.rstrip('/')}/_emulator/route?{query}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=30) as answer:
                found = json.load(answer)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                raise NoRouteError(f"nothing answers at {address}:{port}") from None
            raise
        to_host, _, to_port = str(found["to"]).rpartition(":")
        if not is_loopback(to_host):
            raise ValueError(f"the emulator routed {address}:{port} off loopback: {found['to']}")
        return to_host, int(to_port)

    def connect(self, host_name: str, port: int, timeout: float = 10.0) -> socket.socket:
        """A TCP connection to ``host_name:port`` as a VNet client makes it: DNS, then the
        first address (through its route on the emulator). Raises OSError."""
        resolution = self.resolve(host_name)
        if not resolution.addresses:
            raise NoRouteError(f"{host_name} does not resolve ({resolution.rcode})")
        host, real_port = self.dial(resolution.addresses[0], port)
        return socket.create_connection((host, real_port), timeout=timeout)

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context verifying certificates (the emulator's CA there)."""
        return (
            ssl.create_default_context(cafile=self.ca_cert)
            if self.ca_cert
            else (ssl.create_default_context())
        )
