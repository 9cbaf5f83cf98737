"""What one verification run shares: the engine, its plan, reads cached across checks, facts
about private endpoints; and the small helpers every check uses to read wire JSON and
build a ``Check``. Reads only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nsc_reconcile.model.network import PrivateEndpoint
from nsc_reconcile.resources.base import Live, to_wire
from nsc_reconcile.verification.netview import NetworkView
from nsc_reconcile.verification.results import Check, Status

if TYPE_CHECKING:
    from nsc_reconcile.azure import Clients
    from nsc_reconcile.engine import Engine
    from nsc_reconcile.model.state import DesiredState
    from nsc_reconcile.plans import Plan


@dataclass
class EndpointFacts:
    """What the endpoint checks share about one private endpoint (read once)."""

    resource: PrivateEndpoint
    live: Live | None
    target_kind: str
    target_live: Live | None
    label: str | None  # the A record name: the target's custom subdomain, else its name
    ip: str | None
    nic_id: str | None
    vnet_id: str | None
    zone: str  # the privatelink zone its service name resolves through
    hostname: str | None  # the public service name, e.g. nsc-aoai-dev.openai.azure.com


@dataclass
class Run:
    engine: Engine
    plan: Plan
    resolver: tuple[str, int] | None
    smoke: bool
    origin: str = "runner"  # where connectivity smokes run from: runner | aks | databricks
    # Long waits say what they wait for (the CLI prints to stderr); by default nothing.
    progress: Callable[[str], None] = field(default=lambda _message: None)
    # Seconds the alert smoke waits for every rule to fire (None: from the rules' schedule).
    alert_wait_s: float | None = None
    endpoints: dict[str, EndpointFacts] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def network(self) -> NetworkView:
        """The network as a client inside the VNet sees it (smoke tests connect through it)."""
        if "network" not in self.cache:
            self.cache["network"] = NetworkView.for_clients(self.clients, self.resolver)
        view: NetworkView = self.cache["network"]
        return view

    def secret_value(self, name: str) -> str:
        """The current value of Key Vault secret ``name`` in the desired state's vault, read
        through the data plane (a smoke's credential). Never put it in evidence: the report
        redacts known values, but a check must not rely on that. Raises when unreadable."""
        values: dict[str, str] = self.cache.setdefault("secret-values", {})
        if name not in values:
            if self.state.secrets is None:
                raise LookupError(f"no Key Vault declared to read {name} from")
            vault = self.state.secrets.vault
            live = self.live(f"key_vault/{vault}")
            uri = live.fields.get("properties.vaultUri") if live is not None else None
            if not uri:
                raise LookupError(f"Key Vault {vault} does not exist or has no vaultUri")
            secret = self.clients.secret_client(str(uri)).get_secret(name)
            if secret.value is None:
                raise LookupError(f"Key Vault secret {name} has no value")
            values[name] = secret.value
            declared = next((i for i in self.state.secrets.items if i.name == name), None)
            if declared is None or declared.sensitive:  # a setting (a URL, a name) stays shown
                self.engine.redactor.add(secret.value)
        return values[name]

    @property
    def state(self) -> DesiredState:
        return self.engine.state

    @property
    def clients(self) -> Clients:
        return self.engine.clients

    def live(self, address: str) -> Live | None:
        return self.engine.context.live(address)

    def wire(self, address: str) -> dict[str, Any] | None:
        live = self.live(address)
        return to_wire(live.raw) if live is not None else None

    def id_of(self, address: str) -> str:
        live = self.live(address)
        if live is not None:
            return live.id
        resource = self.engine.graph.nodes.get(address)
        if resource is None:
            return address
        from nsc_reconcile.resources import reconciler_for

        return reconciler_for(resource).resource_id(self.engine.context, resource)


def props_of(wire: dict[str, Any] | None) -> dict[str, Any]:
    return dict((wire or {}).get("properties") or {})


def name_of(arm_id: str) -> str:
    return arm_id.rstrip("/").rsplit("/", 1)[-1]


def rg_of(arm_id: str) -> str:
    return arm_id.split("/")[4]


def same_id(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and str(a).rstrip("/").lower() == str(b).rstrip("/").lower()


def make_check(
    check_id: str, title: str, evidence: list[str], problems: list[str], *, skip: str = ""
) -> Check:
    text = "; ".join(e for e in evidence if e)
    if skip:
        return Check(check_id, title, Status.SKIP, text, skip)
    if problems:
        return Check(check_id, title, Status.FAIL, text, "; ".join(problems))
    return Check(check_id, title, Status.PASS, text)
