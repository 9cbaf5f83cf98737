"""Where an address of the emulated world is served on loopback (curl ``--resolve`` style).

The world's addresses are data: a private endpoint's NIC IP (``10.x``), the public address
public DNS gives a service (``20.x``, see ``dns.public_address``), a Kubernetes Service's
cluster IP. Nothing ever connects to them. A client that wants to reach one asks for its
route (``GET {arm}/_emulator/route?address=IP&port=N``) and connects to the loopback address
it gets, verifying TLS against the service's real host name.

Data planes register what they serve:
- ``serve(arm_type, port, listener)``: the resources of an ARM type answer on ``port`` (5432
  for PostgreSQL, 443 for OpenAI); ``listener(resource_id, entrance)`` returns the loopback
  address, or None when nothing answers there (a public entrance of a server whose public
  access is off). ``entrance`` is ``"private"`` (reached through an Approved private endpoint
  connection, at the endpoint's NIC IP) or ``"public"`` (at the service's public address).
- ``add(address, port, listener, what)``: one fixed address (a Service's cluster IP).
Listeners may start a server on first use (the real PostgreSQL), so routes are computed per
request, never all at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from nsc_reconcile.emulator.arm.ids import resource_type_of
from nsc_reconcile.emulator.dns import PRIVATE_LINK_ZONES, public_address
from nsc_reconcile.emulator.kinds.endpoints import endpoint_connections, nic_ip

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

__all__ = ["Entrance", "Listener", "Network", "Route"]

Entrance = Literal["private", "public"]
Listener = Callable[[str, Entrance], "tuple[str, int] | None"]
PE_TYPE = "Microsoft.Network/privateEndpoints"


@dataclass(frozen=True)
class Route:
    """``address:port`` of the emulated world is served at ``to`` (loopback)."""

    address: str
    port: int
    to: tuple[str, int]
    what: str  # e.g. "private endpoint nsc-pe-openai -> <ARM id>"

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "port": self.port,
            "to": f"{self.to[0]}:{self.to[1]}",
            "what": self.what,
        }


class Network:
    """The routes of the emulated world (see the module docstring). Thread-safe."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._lock = threading.Lock()
        self._services: dict[str, tuple[int, Listener]] = {}  # lower-case ARM type
        self._fixed: dict[tuple[str, int], tuple[Callable[[], tuple[str, int] | None], str]] = {}

    def serve(self, arm_type: str, port: int, listener: Listener) -> None:
        with self._lock:
            self._services[arm_type.lower()] = (port, listener)

    def add(
        self, address: str, port: int, listener: Callable[[], tuple[str, int] | None], what: str
    ) -> None:
        with self._lock:
            self._fixed[(address, port)] = (listener, what)

    def remove(self, address: str, port: int) -> None:
        with self._lock:
            self._fixed.pop((address, port), None)

    def route(self, address: str, port: int) -> Route | None:
        """The loopback address serving ``address:port``, or None (nothing listens there)."""
        with self._lock:
            fixed = self._fixed.get((address, port))
            services = dict(self._services)
        if fixed is not None:
            to = fixed[0]()
            return Route(address, port, to, fixed[1]) if to else None
        found = self._private(address, port, services) or self._public(address, port, services)
        if found is None:
            return None
        rid, entrance, what, listener = found
        to = listener(rid, entrance)
        return Route(address, port, to, what) if to else None

    def _private(
        self, address: str, port: int, services: dict[str, tuple[int, Listener]]
    ) -> tuple[str, Entrance, str, Listener] | None:
        for pe in self.world.list_by_type(PE_TYPE):
            if nic_ip(self.world, pe) != address:
                continue
            for _, connection in endpoint_connections(pe.get("properties") or {}):
                cprops = connection.get("properties") or {}
                state = (cprops.get("privateLinkServiceConnectionState") or {}).get("status")
                target = str(cprops.get("privateLinkServiceId") or "")
                service = services.get(_type_of(target).lower())
                if state != "Approved" or service is None or service[0] != port:
                    continue
                what = f"private endpoint {pe.get('name')} -> {target}"
                return target, "private", what, service[1]
        return None

    def _public(
        self, address: str, port: int, services: dict[str, tuple[int, Listener]]
    ) -> tuple[str, Entrance, str, Listener] | None:
        for suffix, (zone, arm_type) in PRIVATE_LINK_ZONES.items():
            service = services.get(arm_type.lower())
            if service is None or service[0] != port:
                continue
            for resource in self.world.list_by_type(arm_type):
                props = resource.get("properties") or {}
                label = str(props.get("customSubDomainName") or resource.get("name", "")).lower()
                if public_address(f"{label}.{zone}") == address:
                    what = f"public endpoint {label}.{suffix} -> {resource.get('id')}"
                    return str(resource.get("id")), "public", what, service[1]
        return None


def _type_of(resource_id: str) -> str:
    try:
        return resource_type_of(resource_id)
    except ValueError:  # not a resource id: nothing serves it
        return ""
