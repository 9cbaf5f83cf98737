"""nsc-reconcile: make an Azure environment match a declared desired state.

Public API (everything else is internal):

    from nsc_reconcile import load_desired_state, plan, apply
    from nsc_reconcile.azure import AzureTarget, Clients

    state = load_desired_state("desired_state.yaml", env="prod")
    clients = Clients(AzureTarget.for_azure(subscription_id))
    p = plan(state, clients)          # reads only; p.changes, p.render("markdown")
    result = apply(p, state, clients) # result.ok, result.writes, result.render()
    report = verify(state, clients)   # reads only; report.ok, report.render("junit")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nsc_reconcile.errors import DesiredStateError, Location, Problem
from nsc_reconcile.loader import load_desired_state
from nsc_reconcile.model.state import DesiredState

if TYPE_CHECKING:
    import threading
    from collections.abc import Sequence

    from nsc_reconcile.azure import Clients
    from nsc_reconcile.engine import Progress
    from nsc_reconcile.plans import ApplyResult, Plan
    from nsc_reconcile.retry import RetryPolicy
    from nsc_reconcile.verification import VerifyReport

__all__ = [
    "DesiredState",
    "DesiredStateError",
    "Location",
    "Problem",
    "apply",
    "load_desired_state",
    "plan",
    "verify",
]


def plan(
    state: DesiredState,
    clients: Clients,
    *,
    targets: list[str] | None = None,
    parallelism: int = 8,
) -> Plan:
    """Compare ``state`` with live state. Never writes. ``targets``: addresses (``kind/name``)
    to limit the plan to (their dependencies are included)."""
    from nsc_reconcile.engine import Engine

    return Engine(state, clients, parallelism=parallelism).plan(targets)


def apply(
    planned: Plan,
    state: DesiredState,
    clients: Clients,
    *,
    parallelism: int = 8,
    allow_replace: bool = False,
    saved: bool = False,
    progress: Progress | None = None,
    wait_lock_s: float = 0.0,
    retry: RetryPolicy | None = None,
    cancel: threading.Event | None = None,
) -> ApplyResult:
    """Apply ``planned`` (made from ``state``): each resource is re-read before it is written.
    With ``saved``, refuse (raising engine.PlanStaleError, writing nothing) if live state or
    the desired state moved since the plan was made. A plan with changes is applied holding
    the environment's apply lease (lease.py): raises lease.LeaseHeldError when another apply
    holds it for longer than ``wait_lock_s`` seconds, lease.LeaseLostError when it was lost
    during the run. ``retry``: how hard to retry transient failures (retry.RetryPolicy).
    ``cancel``: set it (from any thread) to stop: no write starts after it, the writes in
    flight end, the rest is not-started and the result says ``interrupted``."""
    from nsc_reconcile.engine import Engine
    from nsc_reconcile.lease import ApplyLease, LeaseLostError
    from nsc_reconcile.retry import RetryPolicy

    policy = retry or RetryPolicy()
    engine = Engine(state, clients, parallelism=parallelism, progress=progress, retry=policy)
    if cancel is not None:
        engine.cancel_event = cancel
    if not planned.has_changes:
        return engine.apply(planned, allow_replace=allow_replace, saved=saved)
    lease = ApplyLease(clients, state.resource_group, state.environment, retry=policy)
    lease.acquire(wait_lock_s)
    try:
        result = engine.apply(planned, allow_replace=allow_replace, saved=saved)
    finally:
        lease.release()
    if lease.lost:
        raise LeaseLostError(lease.lost)
    return result


def verify(
    state: DesiredState,
    clients: Clients,
    *,
    resolver: str | None = None,
    smoke: bool | Sequence[str] = False,
    parallelism: int = 8,
    origin: str = "runner",
    alert_wait_s: float | None = None,
) -> VerifyReport:
    """Walk the plan's Definition of Done against live state: one ``Check`` (PASS, FAIL or
    SKIP, with evidence) per item; ``report.ok`` is True when none failed. Reads only, except
    ``smoke`` (True: every smoke; or names from ``SMOKE_NAMES``): the smokes connect to the
    private endpoints, call OpenAI, write a LangFuse trace and post one test event per agent
    event type (alerts fire); ``origin`` (runner, aks, databricks) is where the connectivity
    smokes run. ``resolver`` (``IP:PORT``): DNS server inside the VNet for the
    name-resolution checks (default: the emulator's DNS server when ``clients`` target an
    emulator; otherwise those checks SKIP). ``alert_wait_s``: how long the alerts smoke
    waits for every rule to fire (default: from the rules' evaluation frequency)."""
    from nsc_reconcile.verification import verify as run_verify

    return run_verify(
        state,
        clients,
        resolver=resolver,
        smoke=smoke,
        parallelism=parallelism,
        origin=origin,
        alert_wait_s=alert_wait_s,
    )
