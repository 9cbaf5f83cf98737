"""The emulated Azure world: every ARM resource, keyed by id, plus Key Vault secrets.

Kinds and the engine read and write resources through this store (ids case-insensitive, stored
with canonical casing); it also allocates private IPs and remembers the starting world for reset.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import hmac
import importlib
import inspect
import ipaddress
import os
import pkgutil
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nsc_reconcile.emulator.arm.ids import parse_path
from nsc_reconcile.emulator.kinds.base import LOCATION, Kind, Reply, Resource
from nsc_reconcile.emulator.protocol import Request, Response
from nsc_reconcile.emulator.secrets import SecretStore

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm.engine import ArmEngine

__all__ = ["DEFAULT_SUBSCRIPTION_ID", "Operation", "World", "discover_kinds"]

DEFAULT_SUBSCRIPTION_ID = "00000000-0000-0000-0000-00000000a1b2"
# Seconds a new user-assigned identity's principal stays unknown to role assignments (Entra ID
# replication delay; recorded ~20 s in Azure, short here so tests meet it without waiting long).
DEFAULT_PRINCIPAL_REPLICATION_SECONDS = 0.5
# Operations take this long unless configured (POST config lro_seconds): long enough that
# clients meet real Azure's intermediate states (Creating, RegisteringDns, customDnsConfigs
# still empty), short enough for tests. Set {"*": 0} for instant operations.
DEFAULT_LRO_SECONDS = 0.3
RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"


class ResourceGroupKind(Kind):
    """Resource groups: built into the engine (not an ARM provider resource)."""

    type = RESOURCE_GROUP_TYPE
    on_delete = Reply(202, LOCATION)
    patch_supported = True
    etag_field = False
    system_data = False


_KIND_CLASSES: dict[str, type[Kind]] | None = None
_KIND_LOCK = threading.Lock()


def discover_kinds() -> dict[str, type[Kind]]:
    """Every ``Kind`` subclass with a ``type`` in the modules of ``emulator.kinds`` (pkgutil).

    Keyed by lower-cased type. Raises ImportError/ValueError naming the faulty module or a
    type defined twice. Cached after the first call.
    """
    global _KIND_CLASSES
    with _KIND_LOCK:
        if _KIND_CLASSES is not None:
            return _KIND_CLASSES
        package = importlib.import_module("nsc_reconcile.emulator.kinds")
        found: dict[str, type[Kind]] = {RESOURCE_GROUP_TYPE.lower(): ResourceGroupKind}
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if info.name == "base":
                continue
            module_name = f"{package.__name__}.{info.name}"
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise ImportError(f"emulator kind module {module_name} failed: {exc}") from exc
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if not issubclass(cls, Kind) or cls.__module__ != module.__name__:
                    continue
                arm_type = getattr(cls, "type", None)
                if not isinstance(arm_type, str):
                    continue
                key = arm_type.lower()
                if key in found and found[key] is not cls:
                    raise ValueError(
                        f"resource type {arm_type} is defined twice: "
                        f"{found[key].__module__} and {module_name}"
                    )
                found[key] = cls
        _KIND_CLASSES = found
        return found


@dataclass
class Operation:
    """One long-running operation (PUT/PATCH/DELETE) and when it finishes."""

    id: str
    rid: str
    verb: str  # "put" or "delete"
    due: float  # monotonic time when it completes
    namespace: str
    location: str
    started: str
    status: str = "InProgress"
    ended: str | None = None
    error: dict[str, Any] | None = None  # set when it must fail (fail_lro) or failed
    running: str = "InProgress"  # the status its URL reports while it runs
    base: str = ""  # the ARM URL its polling URLs start with
    api_version: str = "2024-01-01"  # the api-version of the request that started it


class World:
    """The ARM resource store and plane. Thread-safe (one re-entrant lock for everything).

    Kinds use: ``subscription_id``, ``get``, ``put``, ``delete``, ``list_by_type``,
    ``children``, ``allocate_ip``, ``urls``, ``secrets``, ``new_etag``, ``now``,
    ``remember_password``/``password_matches``.
    """

    def __init__(
        self,
        subscription_id: str = DEFAULT_SUBSCRIPTION_ID,
        location: str = "koreacentral",
        seed: Callable[[World], None] | None = None,
        name: str = "custom",
    ) -> None:
        from nsc_reconcile.emulator.arm.engine import ArmEngine

        self.subscription_id = subscription_id
        self.location = location
        self.name = name
        self.urls: dict[str, str] = {"arm": "", "keyvault": "", "kubernetes": ""}
        self.secrets = SecretStore()
        self.lock = threading.RLock()
        self.kinds: dict[str, Kind] = {k: cls() for k, cls in discover_kinds().items()}
        self.lro_seconds: dict[str, float] = {}
        # When set, a vault with publicNetworkAccess Disabled refuses data-plane calls with
        # 403 ForbiddenByConnection, as Azure does for a caller outside the VNet.
        self.enforce_vault_network = False
        # When set, the Key Vault data plane authorizes the token's identity (vaultrbac.py).
        self.enforce_vault_rbac = False
        # Entra ID: principals that exist besides the world's managed identities (object id,
        # lower-cased -> User/Group/ServicePrincipal), and the replication delay of new ones.
        self.directory_principals: dict[str, str] = {}
        self.principal_replication_seconds = DEFAULT_PRINCIPAL_REPLICATION_SECONDS
        # Images imported into container registries (registry.py): registry id (lower-cased)
        # -> repository -> tag -> manifest digest.
        self.images: dict[str, dict[str, dict[str, str]]] = {}
        # Rows accepted by the Logs Ingestion API, per destination table (ingestion.py).
        self.logs: dict[str, list[dict[str, Any]]] = {}
        # Write-only passwords as a salted hash (PostgreSQL admin passwords), by lower-cased
        # id: GET never shows them; the control call check-password compares one.
        self.password_hashes: dict[str, tuple[bytes, bytes]] = {}
        self.operations: dict[str, Operation] = {}
        # Ids (lower-cased) of resources deleted since the start: a GET of one may answer
        # another 404 code than a name never used (Kind.gone_code).
        self.deleted: set[str] = set()
        self._resources: dict[str, Resource] = {}
        self._reserved_ips: dict[str, set[str]] = {}
        self._rng = random.Random(0)
        self.engine: ArmEngine = ArmEngine(self)
        self._seed = seed
        self._start: tuple[dict[str, Resource], dict[str, set[str]], object] = ({}, {}, None)
        self.reseed()

    def reseed(self) -> None:
        """Build the starting world again from its seed and make that the reset point.

        The app calls it once every plane is listening, so server-populated URLs (a vault's
        ``vaultUri``) point at the real ports."""
        with self.lock:
            self._resources = {}
            self._reserved_ips = {}
            self.operations.clear()
            self.deleted.clear()
            self.password_hashes.clear()
            self.engine._finals.clear()
            self.secrets.reset()
            self._rng = random.Random(0)
            if self._seed is not None:
                self._seed(self)
            self._start = (
                copy.deepcopy(self._resources),
                copy.deepcopy(self._reserved_ips),
                self.secrets.snapshot(),
            )

    # ---- the API kinds use ---------------------------------------------------------------
    def get(self, rid: str) -> Resource | None:
        """The stored resource as ARM returns it (a copy), or None."""
        with self.lock:
            found = self._resources.get(rid.lower())
            return copy.deepcopy(found) if found is not None else None

    def put(self, rid: str, resource: Resource) -> Resource:
        """Store ``resource`` as-is (platform side effects, drift). Fills id/name/type/etag if
        missing; no validation, no LRO. Returns a copy of what is stored."""
        with self.lock:
            stored = copy.deepcopy(resource)
            canonical = self.canonical_id(rid)
            stored.setdefault("id", canonical)
            stored.setdefault("name", canonical.rsplit("/", 1)[-1])
            stored.setdefault("type", self.canonical_type(rid))
            kind = self.kind_for(stored["type"])
            if kind is None or kind.etag_field:
                stored.setdefault("etag", self.etag_for(stored["type"]))
            self._resources[rid.lower()] = stored
            return copy.deepcopy(stored)

    def delete(self, rid: str) -> None:
        """Remove the resource and everything nested under it (no side-effect hooks)."""
        with self.lock:
            key = rid.lower()
            self._resources.pop(key, None)
            prefix = key + "/"
            for other in [k for k in self._resources if k.startswith(prefix)]:
                del self._resources[other]

    def list_by_type(self, arm_type: str) -> list[Resource]:
        """Every stored resource of ``arm_type`` (case-insensitive), oldest first (copies)."""
        wanted = arm_type.lower()
        with self.lock:
            return [
                copy.deepcopy(r)
                for r in self._resources.values()
                if str(r.get("type", "")).lower() == wanted
            ]

    def children(self, parent_rid: str, arm_type: str) -> list[Resource]:
        """Resources of ``arm_type`` whose parent is ``parent_rid`` (an RG or a resource)."""
        parent = parent_rid.lower().rstrip("/")
        out = []
        for resource in self.list_by_type(arm_type):
            parsed = parse_path(str(resource["id"]), "PUT")
            if parsed.what == "resource" and parsed.parent_id.lower() == parent:
                out.append(resource)
        return out

    def all_resources(self) -> list[Resource]:
        with self.lock:
            return [copy.deepcopy(r) for r in self._resources.values()]

    def allocate_ip(self, subnet_rid: str) -> str:
        """The next free IP of the subnet's addressPrefix, skipping Azure's reserved ones
        (network, .1-.3, broadcast). Raises ValueError when the subnet is unknown or full."""
        with self.lock:
            subnet = self._resources.get(subnet_rid.lower())
            if subnet is None:
                raise ValueError(f"subnet {subnet_rid} does not exist")
            props = subnet.get("properties", {})
            prefix = props.get("addressPrefix") or (props.get("addressPrefixes") or [None])[0]
            if not prefix:
                raise ValueError(f"subnet {subnet_rid} has no addressPrefix")
            network = ipaddress.ip_network(prefix, strict=False)
            used = self._reserved_ips.setdefault(subnet_rid.lower(), set())
            used_now = used | self._ips_in_subnet(subnet_rid)
            hosts = list(network.hosts())  # excludes network and broadcast addresses
            for host in hosts[3:]:  # .1 gateway, .2/.3 Azure DNS
                if str(host) not in used_now:
                    used.add(str(host))
                    return str(host)
            raise ValueError(f"subnet {subnet_rid} ({prefix}) has no free address")

    def _ips_in_subnet(self, subnet_rid: str) -> set[str]:
        wanted = subnet_rid.lower()
        ips: set[str] = set()
        for resource in self._resources.values():
            if str(resource.get("type", "")).lower() != NIC_TYPE.lower():
                continue
            for config in resource.get("properties", {}).get("ipConfigurations", []):
                cprops = config.get("properties", {})
                if str(cprops.get("subnet", {}).get("id", "")).lower() == wanted:
                    ip = cprops.get("privateIPAddress")
                    if ip:
                        ips.add(str(ip))
        return ips

    def new_etag(self) -> str:
        """A fresh quoted ETag value, e.g. ``"3f2b..."``."""
        return f'"{self.new_guid()}"'

    def etag_for(self, arm_type: str) -> str:
        """An ETag in the style of the type's provider (Microsoft.Network uses weak ETags)."""
        tag = self.new_etag()
        return f"W/{tag}" if arm_type.lower().startswith("microsoft.network/") else tag

    def new_guid(self) -> str:
        """A GUID from the world's seeded generator (same sequence after every reset)."""
        with self.lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def now(self) -> str:
        """The current time, ISO 8601 UTC (``2026-03-01T12:00:00.123456Z``)."""
        stamp = datetime.datetime.now(datetime.UTC).isoformat()
        return stamp.replace("+00:00", "Z")

    # ---- engine helpers ------------------------------------------------------------------
    def kind_for(self, arm_type: str) -> Kind | None:
        return self.kinds.get(arm_type.lower())

    def canonical_type(self, rid: str) -> str:
        parsed = parse_path(rid, "PUT")
        if parsed.what == "resource_group":
            return RESOURCE_GROUP_TYPE
        if parsed.what != "resource":
            raise ValueError(f"not an ARM resource id: {rid!r}")
        kind = self.kind_for(parsed.arm_type)
        return kind.type if kind is not None else parsed.arm_type

    def canonical_id(self, rid: str) -> str:
        """The id with stored casing: existing resource's id, else built from the stored
        parent's id plus the registered type's spelling and the name as given."""
        with self.lock:
            found = self._resources.get(rid.lower())
            if found is not None and "id" in found:
                return str(found["id"])
            parsed = parse_path(rid, "PUT")
            if parsed.what == "resource_group":
                return (
                    f"/subscriptions/{self.subscription_id}/resourceGroups/{parsed.resource_group}"
                )
            if parsed.what != "resource":
                raise ValueError(f"not an ARM resource id: {rid!r}")
            canonical_type = self.canonical_type(rid).split("/")
            namespace, type_segments = canonical_type[0], canonical_type[1:]
            if len(type_segments) != len(parsed.types):  # unregistered spelling; keep it
                namespace, type_segments = parsed.namespace or "", list(parsed.types)
            if len(parsed.types) == 1:
                scope = parsed.scope
                if parse_path(scope, "PUT").what in ("resource_group", "resource"):
                    scope = self.canonical_id(scope)
                return f"{scope}/providers/{namespace}/{type_segments[0]}/{parsed.names[0]}"
            parent = self.canonical_id(parsed.parent_id)
            return f"{parent}/{type_segments[-1]}/{parsed.names[-1]}"

    def lro_duration(self, arm_type: str) -> float:
        """How long an operation on ``arm_type`` runs (and a transitional state lasts)."""
        default = self.lro_seconds.get("*", DEFAULT_LRO_SECONDS)
        return self.lro_seconds.get(arm_type.lower(), default)

    def configure(self, lro_seconds: dict[str, float]) -> None:
        with self.lock:
            for arm_type, seconds in lro_seconds.items():
                self.lro_seconds[arm_type.lower()] = float(seconds)

    def create(self, rid: str, body: Resource) -> Resource:
        """Create or update through the full engine path (validate, populate, side effects)
        and finish any LRO at once. For building worlds; raises ArmError like a PUT would."""
        return self.engine.put_now(rid, body)

    def reset(self) -> None:
        """Back to the starting world: resources, secrets, IP reservations, LROs and config."""
        with self.lock:
            resources, reserved, secrets = self._start
            self._resources = copy.deepcopy(resources)
            self._reserved_ips = copy.deepcopy(reserved)
            self.secrets.restore(secrets)
            self.operations.clear()
            self.deleted.clear()
            self.password_hashes.clear()
            self.engine._finals.clear()
            self.lro_seconds.clear()
            self.enforce_vault_network = False
            self.enforce_vault_rbac = False
            self.images.clear()
            self.directory_principals.clear()
            self.principal_replication_seconds = DEFAULT_PRINCIPAL_REPLICATION_SECONDS
            self.logs.clear()
            self._rng = random.Random(1)

    def handle(self, request: Request) -> Response:
        """The ARM plane: answer one request (see ``ArmEngine``)."""
        return self.engine.handle(request)

    def remember_password(self, rid: str, password: str) -> None:
        """Keep a salted hash of a write-only password (never the password itself)."""
        salt = os.urandom(16)
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 10_000)
        with self.lock:
            self.password_hashes[rid.lower()] = (salt, digest)

    def password_matches(self, rid: str, password: str) -> bool | None:
        """Whether ``password`` is the one last set on ``rid``; None when none was set."""
        with self.lock:
            kept = self.password_hashes.get(rid.lower())
        if kept is None:
            return None
        salt, digest = kept
        tried = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 10_000)
        return hmac.compare_digest(tried, digest)

    # ---- raw access for the engine -------------------------------------------------------
    def _store(self, resource: Resource) -> None:
        self._resources[str(resource["id"]).lower()] = resource

    def _raw(self, rid: str) -> Resource | None:
        return self._resources.get(rid.lower())
