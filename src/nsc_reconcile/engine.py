"""The reconcile engine: read live state, plan, and apply in dependency order.

Owns ordering, parallelism (bounded; single-writer scopes serialized), re-read before write,
retries (retry.py), skipping the dependents of a failure and reporting. Resource kinds only
implement the Reconciler protocol (resources/base.py).
"""

from __future__ import annotations

import difflib
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from nsc_reconcile import kinds
from nsc_reconcile.changes import Action, FieldChange, ReplacePolicy, Unknown, unapproved
from nsc_reconcile.graph import Graph, build_graph
from nsc_reconcile.model.base import Resource
from nsc_reconcile.plans import (
    ApplyResult,
    Outcome,
    Plan,
    ResourcePlan,
    ResourceResult,
)
from nsc_reconcile.redaction import Redactor
from nsc_reconcile.resources import has_reconciler, reconciler_for
from nsc_reconcile.resources.base import (
    ENVIRONMENT_TAG,
    SHARED,
    Context,
    Live,
    Reconciler,
    has_unknown,
    if_match,
)
from nsc_reconcile.retry import (
    RetryPolicy,
    call_with_retry,
    describe_error,
    operation_deadline,
)

if TYPE_CHECKING:
    from nsc_reconcile.azure import Clients
    from nsc_reconcile.model.state import DesiredState

DEFAULT_PARALLELISM = 8
# Reads at the same time (a plan's, and apply's fresh reads): more than writes, so that a
# no-op plan of a whole environment costs a few round trips, and far below ARM's read
# throttling (a bucket of 250 reads per subscription and principal, refilled at 25 per second).
READ_PARALLELISM = 32
# provisioningState values that end an operation; any other (Creating, Updating, Accepted,
# RegisteringDns, ...) means the resource is still being worked on by Azure.
TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled"})


class Progress(Protocol):
    """Receives apply progress (the CLI shows it; runbooks may log it)."""

    def started(self, address: str, action: str) -> None: ...

    def finished(self, address: str, outcome: str, seconds: float) -> None: ...

    def retrying(self, address: str, error: str, delay: float) -> None: ...


@dataclass(frozen=True)
class InFlight:
    """A write apply has sent and not yet seen end (its long-running operation included)."""

    address: str
    action: str  # create, update or replace
    since: float  # time.monotonic() when the write began

    def expect(self) -> str:
        """What happens to it in Azure (or the cluster) if this process stops waiting."""
        if self.address.startswith("kubernetes_"):
            return "objects already sent stay applied; the next apply sends the rest"
        if self.action == "replace":
            return "Azure finishes the step under way (delete or create) even if we stop waiting"
        return "Azure finishes it even if we stop waiting"

    def describe(self, now: float | None = None) -> str:
        """One line for an operator, e.g. ``postgresql_server/x: create in progress (4s);
        Azure finishes it even if we stop waiting``."""
        elapsed = (time.monotonic() if now is None else now) - self.since
        return f"{self.address}: {self.action} in progress ({elapsed:.0f}s); {self.expect()}"


class UnknownTargetError(ValueError):
    """A --target address that the desired state does not declare."""


def unknown_target(address: str, known: Iterable[str]) -> str:
    """The message for an unknown --target: the closest declared address (difflib), or all."""
    names = sorted(known)
    close = difflib.get_close_matches(address, names, n=1, cutoff=0.6)
    if close:
        return f"--target {address}: no such resource; did you mean {close[0]}?"
    return f"--target {address}: no such resource; declared: {', '.join(names)}"


class PlanRefusedError(Exception):
    """Apply refused the plan as a whole; nothing was written."""


class PlanStaleError(PlanRefusedError):
    """A plan no longer matches live state or the desired state; nothing was written."""


class PlanBlockedError(PlanRefusedError):
    """The plan has blocked resources (as Terraform refuses a plan with errors)."""


class WrongSubscriptionError(PlanRefusedError):
    """The plan was made for another subscription than the one this run targets."""


class _Failure(Exception):
    """A resource could not be reconciled; ``detail`` says why (already redacted)."""

    def __init__(self, detail: str, outcome: Outcome = Outcome.FAILED) -> None:
        super().__init__(detail)
        self.detail = detail
        self.outcome = outcome


def state_digest(state: DesiredState) -> str:
    """A fingerprint of the desired state (it holds no secret values)."""
    return hashlib.sha256(state.model_dump_json().encode()).hexdigest()[:16]


@dataclass
class Engine:
    """Plans and applies one desired state against one target (Azure or the emulator)."""

    state: DesiredState
    clients: Clients
    parallelism: int = DEFAULT_PARALLELISM
    read_parallelism: int = READ_PARALLELISM
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    redactor: Redactor = field(default_factory=Redactor)
    progress: Progress | None = None
    state_file: str | None = None
    # How long apply waits for a resource Azure is still working on (e.g. a Key Vault that
    # says RegisteringDns right after its create) before using or writing it.
    ready_timeout_s: float = 600.0
    # Also report every read to ``progress`` (started "read"; finished "read" or "failed"):
    # the JSON event stream shows each read's time; the console keeps to writes.
    report_reads: bool = False
    # Set it (or call cancel()) to stop apply: no write starts after it is set, the writes
    # in flight run to their end, and what had not begun is reported not-started.
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        graph, issues = build_graph(self.state)
        if issues:
            raise ValueError("; ".join(i.message for i in issues))
        self.graph: Graph = graph
        self._live: dict[str, Live | None] = {}
        self._read_errors: dict[str, str] = {}
        self._outputs: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()
        self._write_locks: dict[str, threading.Lock] = {}
        self._confirmed: frozenset[str] = frozenset()  # data-loss replacements confirmed
        self._written: set[str] = set()  # resources written in this apply
        self._read_locks: dict[str, threading.Lock] = {}
        self._writing: dict[str, InFlight] = {}  # writes sent and not yet ended
        self._writing_lock = threading.RLock()  # RLock: cancel() may run in a signal handler
        self.context = Context(
            self.state, self.clients, self._output_of, self._live_of, self.redactor.add
        )

    # ------------------------------------------------------------------ reading
    def _resource(self, address: str) -> Resource:
        return self.graph.nodes[address]

    def _read(self, address: str) -> Live | None:
        resource = self._resource(address)
        reconciler = reconciler_for(resource)
        progress = self.progress if self.report_reads else None
        start = time.monotonic()
        if progress is not None:
            progress.started(address, "read")
        try:
            live = call_with_retry(
                lambda: reconciler.read(self.context, resource),
                policy=self.retry,
                what=f"read {address}",
                on_retry=self._on_retry(address),
            )
        except BaseException:
            if progress is not None:
                progress.finished(address, Outcome.FAILED.value, time.monotonic() - start)
            raise
        if progress is not None:
            progress.finished(address, Outcome.READ.value, time.monotonic() - start)
        with self._lock:
            self._live[address] = live
            for key in [k for k in self._outputs if k[0] == address]:
                del self._outputs[key]
        return live

    def _read_once(self, address: str) -> Live | None:
        """The live state as read in this run: read it unless already read (or being read,
        in which case wait for that read). One read per resource per plan: a failed read is
        kept (as absent, its error for the plan) and raised to the caller that made it."""
        with self._lock:
            lock = self._read_locks.setdefault(address, threading.Lock())
        with lock:
            with self._lock:
                if address in self._live:
                    return self._live[address]
            try:
                return self._read(address)
            except Exception as error:
                with self._lock:
                    self._read_errors[address] = self.redactor.redact(describe_error(error))
                    self._live[address] = None
                raise

    def _read_kept(self, address: str) -> None:
        """``_read_once`` for a pool: the failure is kept for the plan, not raised."""
        try:
            self._read_once(address)
        except Exception:  # kept in _read_errors by _read_once
            return

    def _forget(self, addresses: list[str]) -> None:
        with self._lock:
            for address in addresses:
                self._live.pop(address, None)
                self._read_errors.pop(address, None)

    def _prepare_clients(self, addresses: Iterable[str]) -> None:
        """Build the SDK clients these resources use, before worker threads start."""
        names = {
            name
            for address in addresses
            if has_reconciler(self._resource(address))
            for name in reconciler_for(self._resource(address)).sdk_clients
        }
        self.clients.prepare(names)

    def read_all(self, addresses: Iterable[str], *, fresh: bool = False) -> None:
        """Read every address in parallel (bounded); failures are kept per address."""
        todo = list(addresses)
        if fresh:
            self._forget(todo)
        self._prepare_clients(todo)
        with _reading_pool(self.read_parallelism) as pool:
            for future in [pool.submit(self._read_kept, a) for a in todo]:
                future.result()

    def _live_of(self, address: str) -> Live | None:
        return self._read_once(address)

    def _output_of(self, address: str, name: str) -> Any:
        live = self._live_of(address)
        if live is None:
            return Unknown(f"{address}.{name}")
        key = (address, name)
        with self._lock:
            if key in self._outputs:
                return self._outputs[key]
        resource = self._resource(address)
        reconciler = reconciler_for(resource)
        value = call_with_retry(
            lambda: reconciler.output(self.context, resource, live, name),
            policy=self.retry,
            what=f"read output {name} of {address}",
        )
        # A sensitive output (its kind's spec says so) is registered with the redactor.
        if isinstance(value, str) and name in kinds.sensitive_outputs(resource.kind):
            self.redactor.add(value)
        with self._lock:
            self._outputs[key] = value
        return value

    def _on_retry(self, address: str) -> Callable[[str, BaseException, float], None]:
        def report(_what: str, error: BaseException, delay: float) -> None:
            if self.progress is not None:
                self.progress.retrying(address, self.redactor.redact(describe_error(error)), delay)

        return report

    # ----------------------------------------------------------------- planning
    @property
    def unsupported(self) -> list[str]:
        """Resources of kinds this version cannot reconcile (left out of plans)."""
        return [a for a in self.graph.order() if not has_reconciler(self.graph.nodes[a])]

    def _scope(self, targets: list[str] | None) -> list[str]:
        left_out = set(self.unsupported)
        order = [a for a in self.graph.order() if a not in left_out]
        if not targets:
            return order
        wanted: set[str] = set()
        stack = list(targets)
        while stack:
            address = stack.pop()
            if address not in self.graph.nodes:
                raise UnknownTargetError(unknown_target(address, self.graph.nodes))
            if address not in wanted:
                wanted.add(address)
                stack.extend(self.graph.depends_on[address])
        return [a for a in order if a in wanted and a not in left_out]

    def plan(self, targets: list[str] | None = None) -> Plan:
        """Read live state and compare. Never writes. One read per resource (plus outputs
        other resources need, e.g. the OpenAI key for a Key Vault secret), and one list call
        per kind and resource group or declared parent, alongside the reads, to find orphans
        (pruning.py; not with ``targets``)."""
        from nsc_reconcile.pruning import OrphanSearch

        scope = self._scope(targets)
        self._prepare_clients(scope)  # before any thread starts: no SDK import in a worker
        with OrphanSearch(self, enabled=not targets) as search:
            plans = self._plan_all(scope)
            orphans, not_searched = search.result()
        return Plan(
            environment=self.state.environment,
            subscription_id=self.context.subscription_id,
            resource_group=self.state.resource_group,
            resources=[plans[a] for a in scope],
            state_file=self.state_file,
            state_digest=state_digest(self.state),
            targets=list(targets or []),
            unsupported=[a for a in self.unsupported if not targets or a in targets],
            orphans=orphans,
            orphans_not_searched=not_searched,
        )

    def prune(self, plan: Plan, *, allow_data_loss: bool = False) -> list[ResourceResult]:
        """Delete the orphans ``plan`` lists (`apply --prune`, after its own confirmation):
        each one a fresh search still finds, in reverse dependency order; never a shared one,
        nor a data-holding one without ``allow_data_loss`` (those are KEPT). One result per
        orphan (DELETED, KEPT or FAILED)."""
        from nsc_reconcile.pruning import prune

        return prune(self, plan.orphans, allow_data_loss=allow_data_loss)

    def _plan_all(self, scope: list[str]) -> dict[str, ResourcePlan]:
        """Fresh reads of every resource, all started at once (bounded by read_parallelism);
        each resource is planned, in the same pool, as soon as its dependencies are planned.
        A read waits only for the reads it needs (e.g. a secret's GET for its vault's id), a
        plan for the outputs it needs (the OpenAI key: listKeys), so the depth of dependent
        requests sets a plan's duration, not the number of resources."""
        self._forget(scope)
        self._prepare_clients(scope)
        in_scope = set(scope)
        plans: dict[str, ResourcePlan] = {}
        waiting = list(scope)
        running: dict[Future[ResourcePlan], str] = {}
        with _reading_pool(self.read_parallelism) as pool:
            for address in scope:
                pool.submit(self._read_kept, address)
            while waiting or running:
                for address in list(waiting):
                    deps = self.graph.depends_on[address] & in_scope
                    if deps <= plans.keys():
                        waiting.remove(address)
                        planned = {d: plans[d] for d in deps}
                        running[pool.submit(self._read_and_plan, address, planned)] = address
                if not running:  # the graph is acyclic (build_graph): never happens
                    raise RuntimeError(f"cannot order the plan of {', '.join(waiting)}")
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    plans[running.pop(future)] = future.result()
        return plans

    def _read_and_plan(self, address: str, planned: dict[str, ResourcePlan]) -> ResourcePlan:
        self._read_kept(address)  # usually read already, or being read: waits for it
        plan = self._plan_one(address, planned)
        resource = self._resource(address)  # in the file's words (a grant: who, role, what)
        described = reconciler_for(resource).describe(self.context, resource)
        plan.description = self.redactor.redact(described) if described else None
        return plan

    def _plan_one(self, address: str, plans: dict[str, ResourcePlan]) -> ResourcePlan:
        resource = self._resource(address)
        reconciler = reconciler_for(resource)
        resource_id = reconciler.resource_id(self.context, resource)
        if address in self._read_errors:
            return ResourcePlan(
                address, Action.BLOCKED, reason=f"read failed: {self._read_errors[address]}",
                id=resource_id,
            )  # fmt: skip
        live = self._live.get(address)
        if resource.existing:
            if live is None:
                return ResourcePlan(
                    address, Action.BLOCKED, id=resource_id,
                    reason="existing resource not found; it must exist (this tool never "
                    "creates or changes existing references)",
                )  # fmt: skip
            return ResourcePlan(address, Action.READ, id=resource_id, fingerprint=live.fingerprint)
        blocked = sorted(
            d for d in self.graph.needs(address)
            if d in plans and plans[d].action is Action.BLOCKED
        )  # fmt: skip
        if blocked:
            return ResourcePlan(
                address, Action.BLOCKED, id=resource_id,
                reason=f"depends on {', '.join(blocked)}, which is blocked",
            )  # fmt: skip
        refusal = self._refusal(resource, live)
        if refusal is not None:
            return ResourcePlan(
                address, Action.BLOCKED, id=resource_id, reason=refusal,
                fingerprint=live.fingerprint if live else None,
            )  # fmt: skip
        try:
            desired = reconciler.desired(self.context, resource)
        except Exception as error:
            detail = self.redactor.redact(describe_error(error))
            return ResourcePlan(
                address, Action.BLOCKED, id=resource_id, reason=f"cannot compute: {detail}"
            )
        changes = reconciler.changes(desired, live)
        if live is None:
            action = Action.CREATE
        elif any(c.requires_replacement for c in changes):
            action = Action.REPLACE
        elif changes:
            action = Action.UPDATE
        else:
            action = Action.UNCHANGED
        reason = None
        policy = None
        broken = reconciler.health(live) if live is not None else []
        if action is Action.REPLACE:
            fields = ", ".join(c.path for c in changes if c.requires_replacement)
            policy = reconciler.replace_policy
            reason = (
                f"{fields} cannot change in place: the resource must be replaced; "
                + _replace_text(reconciler, resource)
            )
        elif broken:
            found = ", ".join(f"{c.path} is {c.before}" for c in broken)
            reason = f"Azure reports {found}: apply writes it again to repair it"
        notes = [self.redactor.redact(n) for n in reconciler.notes(self.context, resource)]
        replaced = sorted(
            d for d in self.graph.depends_on[address]
            if d in plans and plans[d].action is Action.REPLACE
        )  # fmt: skip
        if replaced:
            notes.append(
                f"uses values of {', '.join(replaced)}, which is replaced: they are known only "
                "after apply, and apply updates this resource to match"
            )
        return ResourcePlan(
            address,
            action,
            changes,
            reason=reason,
            id=resource_id,
            fingerprint=live.fingerprint if live else None,
            notes=notes,
            replace_policy=policy,
        )

    def _refusal(self, resource: Resource, live: Live | None) -> str | None:
        if live is not None and live.managed is False and not resource.adopt:
            return (
                "exists but was not created by nsc-reconcile (no managed-by tag); "
                "set `adopt: true` on it to take it over"
            )
        if live is None and resource.must_exist:
            return "mode is `reuse` but the resource does not exist (it is never created)"
        reconciler = reconciler_for(resource)
        if live is not None and live.managed and reconciler.tagged:
            owner = self._owner_refusal(resource, live)
            if owner is not None:
                return owner
        return reconciler.refusal(self.context, resource, live)

    def _owner_refusal(self, resource: Resource, live: Live) -> str | None:
        """Environments never touch each other's resources: one owned (nsc-environment tag)
        by another environment is refused unless declared shared."""
        env, owner = self.state.environment, live.environment
        shareable = "shared" in type(resource).model_fields
        if getattr(resource, "shared", False) or owner == env:
            return None
        if owner is None:
            if resource.adopt:
                return None
            return (
                f"was created by nsc-reconcile without an {ENVIRONMENT_TAG} tag (an earlier "
                f"version), so its environment is unknown; set `adopt: true` on it to claim it "
                f"for {env}"
            )
        if owner == SHARED:
            return (
                f"is shared between environments ({ENVIRONMENT_TAG}={SHARED}); declare "
                f"`shared: true` on it in {env} too, or give {env} its own"
            )
        hint = (
            "; if it is meant to serve several environments, declare `shared: true` on it in "
            "each of them"
            if shareable
            else ""
        )
        return (
            f"belongs to environment {owner} ({ENVIRONMENT_TAG}={owner}); environments never "
            f"touch each other's resources: give {env} its own (its own resource group or a "
            f"name with ${{env}}){hint}"
        )

    # ------------------------------------------------------------------ applying
    def cancel(self) -> list[InFlight]:
        """Stop apply: no write starts from now on (queued resources end not-started); the
        writes in flight, returned, run to their end. Safe from any thread or a signal
        handler (the library installs none: the CLI's Ctrl-C handler calls this)."""
        with self._writing_lock:
            self.cancel_event.set()
            return self.in_flight()

    def in_flight(self) -> list[InFlight]:
        """The writes sent and not yet ended, oldest first."""
        with self._writing_lock:
            return sorted(self._writing.values(), key=lambda op: op.since)

    def apply(
        self,
        plan: Plan,
        *,
        allow_replace: bool = False,
        saved: bool = False,
        confirm_data_loss: Iterable[str] = (),
    ) -> ApplyResult:
        """Make live state match ``plan``, the approved plan: each resource re-read before
        its write, in dependency order, independent branches in parallel; a resource whose
        changes now differ from the approved ones is not written. A failure skips its
        dependents; the rest finishes. Replacements follow each kind's replace policy
        (``allow_replace``; data-losing ones also need their address in
        ``confirm_data_loss``). Raises PlanRefusedError, writing nothing, when the plan has
        blocked resources or was made for another subscription, and, with ``saved``, when
        live state or the desired state moved since ``plan`` was made. Once
        ``cancel_event`` is set (cancel()) no write starts: the result is ``interrupted``."""
        start = time.monotonic()
        scope = [r.address for r in plan.resources]
        self.check_applicable(plan)
        self._confirmed = frozenset(confirm_data_loss)
        self._written = set()
        if saved:
            self._check_not_stale(plan)
        planned = {r.address: r for r in plan.resources}
        results: dict[str, ResourceResult] = {}
        pending = list(scope)
        running: dict[Future[ResourceResult], str] = {}
        with ThreadPoolExecutor(max_workers=max(1, self.parallelism)) as pool:
            while pending or running:
                if self.cancel_event.is_set():  # no new write: the queue ends not-started
                    for address in pending:
                        results[address] = ResourceResult(
                            address, Outcome.NOT_STARTED, detail=_NOT_STARTED
                        )
                    pending.clear()
                for address in list(pending):
                    deps = self.graph.depends_on[address] & set(scope)
                    if not deps <= results.keys():
                        continue
                    pending.remove(address)
                    bad = sorted(
                        d for d in deps & self.graph.needs(address)
                        if results[d].outcome in _STOPPING
                    )  # fmt: skip
                    if bad:
                        results[address] = ResourceResult(
                            address, Outcome.SKIPPED, detail=f"skipped: {', '.join(bad)} did not "
                            "complete",
                        )  # fmt: skip
                        continue
                    future = pool.submit(self._apply_one, address, planned[address], allow_replace)
                    running[future] = address
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    address = running.pop(future)
                    results[address] = future.result()
        ordered = [results[a] for a in scope]
        return ApplyResult(
            ordered, seconds=time.monotonic() - start, interrupted=self.cancel_event.is_set()
        )

    def check_applicable(self, plan: Plan) -> None:
        """Raise PlanRefusedError when ``plan`` cannot be applied here at all: made for
        another subscription, or with blocked resources. Never writes."""
        if plan.subscription_id.lower() != self.context.subscription_id.lower():
            raise WrongSubscriptionError(
                f"the plan was made for subscription {plan.subscription_id}, this run targets "
                f"{self.context.subscription_id}; nothing was written"
            )
        if plan.blocked:
            names = ", ".join(r.address for r in plan.blocked)
            raise PlanBlockedError(
                f"the plan has {len(plan.blocked)} blocked resource(s) ({names}); nothing was "
                "written: resolve them, or leave them out with --target"
            )

    def changed_since(self, approved: Plan) -> list[str]:
        """Plan again (fresh reads) and say, one line per resource, where the changes apply
        would make now differ from ``approved``; empty when none does. Never writes."""
        now = self.plan(approved.targets or None)
        was = {r.address: r for r in approved.resources}
        out = []
        for resource in now.resources:
            before = was.get(resource.address)
            if before is None:
                out.append(f"{resource.address}: not in the approved plan")
            elif resource.action is Action.BLOCKED and before.action is not Action.BLOCKED:
                out.append(f"{resource.address}: blocked now ({resource.reason})")
            else:
                exists = resource.fingerprint is not None
                problem = _not_approved(before, exists, resource.changes)
                if problem is not None:
                    out.append(f"{resource.address}: {problem}")
        return out

    def _check_not_stale(self, plan: Plan) -> None:
        if plan.state_digest is not None and plan.state_digest != state_digest(self.state):
            raise PlanStaleError(
                "the desired state changed since this plan was made; run plan again"
            )
        self.read_all((r.address for r in plan.resources), fresh=True)
        moved = []
        for planned in plan.resources:
            live = self._live.get(planned.address)
            now = live.fingerprint if live is not None else None
            if now != planned.fingerprint:
                moved.append(planned.address)
        if moved:
            raise PlanStaleError(
                "live state moved since this plan was made (" + ", ".join(moved) + "); "
                "nothing was written: run plan again"
            )

    def _apply_one(
        self, address: str, planned: ResourcePlan, allow_replace: bool
    ) -> ResourceResult:
        start = time.monotonic()
        if self.cancel_event.is_set():
            return ResourceResult(address, Outcome.NOT_STARTED, detail=_NOT_STARTED)
        # Existing references are only re-read: no progress lines for them.
        progress = None if self._resource(address).existing else self.progress
        if progress is not None:
            progress.started(address, planned.action.value)
        try:
            outcome, changes, detail = self._reconcile(address, planned, allow_replace)
        except _Failure as failure:
            outcome, changes, detail = failure.outcome, [], failure.detail
        except Exception as error:
            outcome, changes = Outcome.FAILED, []
            detail = self.redactor.redact(describe_error(error))
        seconds = time.monotonic() - start
        if outcome in (Outcome.CREATED, Outcome.UPDATED, Outcome.REPLACED):
            with self._lock:
                self._written.add(address)
        if progress is not None:
            progress.finished(address, outcome.value, seconds)
        return ResourceResult(address, outcome, changes, detail, seconds)

    def _reconcile(
        self, address: str, planned: ResourcePlan, allow_replace: bool
    ) -> tuple[Outcome, list[FieldChange], str | None]:
        resource = self._resource(address)
        reconciler = reconciler_for(resource)
        if planned.action is Action.BLOCKED and not resource.existing:
            raise _Failure(planned.reason or "blocked", Outcome.BLOCKED)
        live = self._read(address)  # re-read before write: the plan is only a preview
        live = self._wait_until_settled(address, live)
        if resource.existing:
            if live is None:
                raise _Failure("existing resource not found", Outcome.FAILED)
            return Outcome.READ, [], None
        refusal = self._refusal(resource, live)
        if refusal is not None:
            raise _Failure(refusal, Outcome.BLOCKED)
        desired = reconciler.desired(self.context, resource)
        if has_unknown(desired):
            missing = ", ".join(str(v) for v in desired.values() if isinstance(v, Unknown))
            raise _Failure(f"inputs not available: {missing}")
        changes = reconciler.changes(desired, live)
        if live is not None and not changes:
            return Outcome.UNCHANGED, [], None
        # Values taken from a resource written in this apply (a replaced endpoint's new IP)
        # may differ from the plan's: those changes follow approved ones.
        follows = bool(self.graph.depends_on[address] & self._written)
        moved = _not_approved(planned, live is not None, changes, follows_writes=follows)
        if moved is not None:
            raise _Failure(
                f"not written: {moved} (the approved plan did not say so); run plan again",
                Outcome.BLOCKED,
            )
        if any(c.requires_replacement for c in changes):
            refused = self._replace_refusal(reconciler, resource, changes, allow_replace)
            if refused is not None:
                raise _Failure(refused, Outcome.BLOCKED)
        lock = self._write_lock(reconciler.lock_key(resource))
        replacing = any(c.requires_replacement for c in changes)
        action = "create" if live is None else "replace" if replacing else "update"
        # Right after this apply wrote what the resource needs (an identity, a grant), Azure
        # may not know it everywhere yet: its kind's propagation codes get minutes, not tries.
        spec = kinds.spec(resource.kind)
        with lock:
            call_with_retry(
                self._fresh_write(address, live, allow_replace, action),
                policy=self.retry,
                what=f"write {address}",
                kind=resource.kind,
                on_retry=self._on_retry(address),
                patient=spec.propagation_codes if follows and spec is not None else frozenset(),
            )
        after = self._read(address)
        broken = reconciler.health(after) if after is not None else []
        if broken:
            found = ", ".join(f"{c.path} is {c.before}" for c in broken)
            raise _Failure(f"written, but Azure still reports {found}")
        if live is None:
            return Outcome.CREATED, changes, None
        if any(c.requires_replacement for c in changes):
            return Outcome.REPLACED, changes, None
        return Outcome.UPDATED, changes, None

    def _replace_refusal(
        self,
        reconciler: Reconciler[Any],
        resource: Resource,
        changes: list[FieldChange],
        allow_replace: bool,
    ) -> str | None:
        """Why a needed replacement is not done in this run (per the kind's policy)."""
        fields = ", ".join(c.path for c in changes if c.requires_replacement)
        policy = reconciler.replace_policy
        allowed = allow_replace and (
            policy is ReplacePolicy.AUTOMATED
            or (policy is ReplacePolicy.DATA_LOSS and resource.address in self._confirmed)
        )
        if allowed:
            return None
        return f"requires replacement ({fields}); " + _replace_text(reconciler, resource)

    def _fresh_write(
        self, address: str, live: Live | None, allow_replace: bool, action: str
    ) -> Callable[[], None]:
        """The write of ``address`` as a call that is safe to retry: the first try writes
        over ``live`` (just read); each retry re-reads and re-plans first (the failed try may
        have landed after all, or someone wrote meanwhile: a 412 on If-Match), so no retry
        writes from a stale snapshot, and one whose work is done writes nothing. Every try
        has the kind's operation timeout (RetryPolicy.operation_timeout). No try starts
        once apply is cancelled; a try under way is listed by in_flight()."""
        resource = self._resource(address)
        reconciler = reconciler_for(resource)
        rid = reconciler.resource_id(self.context, resource)
        tries = 0

        def write() -> None:
            nonlocal tries, live, action
            tries += 1
            if tries > 1 and self.cancel_event.is_set():
                raise _Failure("its write failed and apply was interrupted before a retry; "
                               "re-run apply")  # fmt: skip
            if tries > 1:
                live = self._wait_until_settled(address, self._read(address))
                refusal = self._refusal(resource, live)
                if refusal is not None:
                    raise _Failure(refusal, Outcome.BLOCKED)
                changes = reconciler.changes(reconciler.desired(self.context, resource), live)
                if live is not None and not changes:
                    return
                if any(c.requires_replacement for c in changes):
                    refused = self._replace_refusal(reconciler, resource, changes, allow_replace)
                    if refused is not None:
                        raise _Failure(refused, Outcome.BLOCKED)
                replacing = any(c.requires_replacement for c in changes)
                action = "create" if live is None else "replace" if replacing else "update"
            with self._writing_lock:  # with cancel(): a write either starts and is listed,
                if self.cancel_event.is_set():  # or does not start at all
                    raise _Failure(_NOT_STARTED, Outcome.NOT_STARTED)
                self._writing[address] = InFlight(address, action, time.monotonic())
            timeout = self.retry.operation_timeout(resource.kind)
            try:
                with operation_deadline(timeout, f"write {address}"), if_match(rid, live):
                    reconciler.write(self.context, resource, live)
            finally:
                with self._writing_lock:
                    self._writing.pop(address, None)

        return write

    def _wait_until_settled(self, address: str, live: Live | None) -> Live | None:
        """Re-read while ``live`` is in a transitional provisioningState (Azure answers some
        creates at once and finishes later: a vault says RegisteringDns, and writes to it can
        fail until it says Succeeded). Raises _Failure when it does not settle in time."""
        deadline = time.monotonic() + self.ready_timeout_s
        delay = 0.1
        while live is not None:
            state = live.fields.get("properties.provisioningState")
            if not isinstance(state, str) or state.lower() in TERMINAL_STATES:
                return live
            if time.monotonic() + delay > deadline:
                raise _Failure(
                    f"still {state} after {self.ready_timeout_s:.0f} s: Azure has not finished "
                    "working on it; re-run apply later"
                )
            if self.progress is not None:
                self.progress.retrying(address, f"Azure reports it {state}; waiting", delay)
            if self.cancel_event.wait(delay):
                raise _Failure(
                    f"{_NOT_STARTED} (Azure still reported it {state})", Outcome.NOT_STARTED
                )
            delay = min(delay * 2, 10.0)
            live = self._read(address)
        return live

    def _write_lock(self, key: str | None) -> threading.Lock:
        if key is None:
            return threading.Lock()
        with self._lock:
            return self._write_locks.setdefault(key, threading.Lock())


_STOPPING = (Outcome.FAILED, Outcome.SKIPPED, Outcome.BLOCKED, Outcome.NOT_STARTED)
_NOT_STARTED = "not started: apply was interrupted"


@contextmanager
def _reading_pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A pool for reads whose queued calls are dropped when the caller stops early (Ctrl-C
    raises KeyboardInterrupt in the main thread): only the calls under way are waited for."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _not_approved(
    approved: ResourcePlan,
    exists: bool,
    changes: list[FieldChange],
    *,
    follows_writes: bool = False,
) -> str | None:
    """How the changes found now differ from the approved ones; None when they do not
    (fewer changes are fine: they were approved). With ``follows_writes`` (a dependency was
    written in this apply) only the resource's existence must be as approved."""
    existed = approved.action is not Action.CREATE and approved.fingerprint is not None
    if exists and approved.action is Action.CREATE:
        return "it exists now, but was absent when the plan was made"
    if not exists and existed:
        return "it was deleted since the plan was made"
    paths = [] if follows_writes else unapproved(approved.changes, changes)
    if paths:
        return "changes not in the approved plan: " + ", ".join(paths)
    return None


def _replace_text(reconciler: Reconciler[Any], resource: Resource) -> str:
    """What the kind's replace policy means for this resource, for plans and refusals."""
    steps = reconciler.replace_steps.format(address=resource.address, name=resource.name)
    policy = reconciler.replace_policy
    if policy is ReplacePolicy.AUTOMATED:
        return "replace policy automated: apply --allow-replace deletes it and creates it again"
    if policy is ReplacePolicy.DATA_LOSS:
        return (
            f"replace policy data-loss: {steps}; apply needs --allow-replace and "
            f"--confirm-data-loss {resource.address}"
        )
    return f"replace policy manual: apply never does it; {steps}"
