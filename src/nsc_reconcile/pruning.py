"""Finding and deleting orphans (orphans.py): live resources carrying our ownership marks for
this environment (or `shared`) that the desired state no longer declares.

Finding never writes: each kind's ``list_owned`` hook (resources/base.py) makes one list call
per resource group, or per declared parent for a child kind, all started alongside the plan's
reads; kinds whose orphans come from their own reads (the LangFuse workload) are asked once
the reads are done, and the children of an orphan parent are listed after it is found.
Deleting (`apply --prune`) re-runs the search, then deletes, in reverse dependency order,
only what the approved plan listed and the search still finds.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nsc_reconcile.orphans import SHARED_ENVIRONMENT, Orphan, deletion_order
from nsc_reconcile.plans import Outcome, ResourceResult
from nsc_reconcile.resources import managed_reconcilers
from nsc_reconcile.resources.base import Owned, Reconciler
from nsc_reconcile.retry import call_with_retry, describe_error, operation_deadline

if TYPE_CHECKING:
    from nsc_reconcile.engine import Engine

# What a plan says when it did not look for orphans at all.
NOT_SEARCHED_TARGETS = "not looked for: --target plans only the targeted resources"

Scope = tuple[str, str] | None  # None: the state's resource group; else (group, parent name)


def _listing_parent(reconciler: Reconciler[Any]) -> tuple[str | None, bool]:
    """(parent kind, inherit_mark) of an ARM kind's listing; (None, False) otherwise."""
    listing = reconciler.listing
    return (None, False) if listing is None else (listing.parent, listing.inherit_mark)


class OrphanSearch:
    """The orphan search of one plan. As a context manager: entering submits the list
    calls (they run while the plan reads), ``result`` waits for them and says which listed
    resources are orphans, leaving stops what is left. Disabled (``enabled`` false, e.g.
    with --target), it finds nothing and says so."""

    def __init__(self, engine: Engine, *, enabled: bool = True) -> None:
        self.engine = engine
        self.enabled = enabled
        self.kinds = managed_reconcilers()
        self._pool: ThreadPoolExecutor | None = None
        self._running: list[tuple[str, Scope, Future[list[Owned]]]] = []
        self.calls = 0  # list calls submitted (16 for the seed: docs/plan-format.md)

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> OrphanSearch:
        if self.enabled:
            self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=error is None, cancel_futures=True)
            self._pool = None

    def start(self) -> None:
        """Submit one list call per kind and scope (never writes)."""
        engine = self.engine
        engine.clients.prepare({r.listing.client for r in self.kinds.values() if r.listing})
        self._pool = ThreadPoolExecutor(max_workers=max(1, engine.read_parallelism))
        for kind, reconciler in sorted(self.kinds.items()):
            if reconciler.lists_with_read or reconciler.listing is None:
                continue
            for scope in self._scopes(reconciler):
                self._submit(kind, scope)

    def _scopes(self, reconciler: Reconciler[Any]) -> list[Scope]:
        """Where a kind is listed: the state's resource group, or each declared parent (for
        children that carry no marks, only the parents we manage)."""
        parent, inherit = _listing_parent(reconciler)
        if parent is None:
            return [None]
        state = self.engine.state
        scopes: list[Scope] = []
        for _, resource in state.resources():
            if resource.kind != parent or (inherit and resource.existing):
                continue
            group = getattr(resource, "resource_group", None) or state.resource_group
            scopes.append((str(group), resource.name))
        return scopes

    def _submit(self, kind: str, scope: Scope) -> None:
        assert self._pool is not None
        reconciler, engine = self.kinds[kind], self.engine
        where = f" under {scope[1]}" if scope is not None else ""

        def listed() -> list[Owned]:
            return call_with_retry(
                lambda: reconciler.list_owned(engine.context, scope),
                policy=engine.retry,
                what=f"list {kind}{where}",
            )

        self.calls += 1
        self._running.append((kind, scope, self._pool.submit(listed)))

    # ----------------------------------------------------------------- results
    def result(self) -> tuple[list[Orphan], list[str]]:
        """(orphans by address, what could not be looked for and why). Call it once the
        plan's reads are done. Never writes."""
        if not self.enabled:
            return [], [NOT_SEARCHED_TARGETS]
        engine = self.engine
        owned: list[Owned] = []
        problems: list[str] = []
        for kind, reconciler in sorted(self.kinds.items()):
            if reconciler.lists_with_read:
                try:
                    owned += reconciler.list_owned(engine.context, None)
                except Exception as error:
                    problems.append(self._problem(kind, None, error))
        listed = self._collect(owned, problems)
        # Children of an orphan parent (a zone's VNet links go before the zone): list them too.
        orphans = self._orphans(owned)
        for kind, reconciler in sorted(self.kinds.items()):
            parent, _ = _listing_parent(reconciler)
            for orphan in (o for o in orphans if parent is not None and o.kind == parent):
                scope = (orphan.id.split("/")[4], orphan.id.rstrip("/").rsplit("/", 1)[-1])
                if (kind, scope) not in listed:
                    self._submit(kind, scope)
        self._collect(owned, problems)
        return sorted(self._orphans(owned), key=lambda o: o.address), problems

    def _collect(self, owned: list[Owned], problems: list[str]) -> set[tuple[str, Scope]]:
        """Wait for the submitted list calls; add what they found to ``owned``."""
        done: set[tuple[str, Scope]] = set()
        for kind, scope, future in self._running:
            try:
                owned += future.result()
            except Exception as error:
                problems.append(self._problem(kind, scope, error))
            done.add((kind, scope))
        self._running = []
        return done

    def _problem(self, kind: str, scope: Scope, error: BaseException) -> str:
        where = f" under {scope[1]}" if scope is not None else ""
        detail = self.engine.redactor.redact(describe_error(error))
        return f"{kind}{where}: not looked for (listing failed: {detail})"

    def _orphans(self, owned: list[Owned]) -> list[Orphan]:
        """What of ``owned`` nothing declares and whose marks (or, for a child that carries
        none, its parent's) name this environment or `shared`."""
        declared = {address.lower() for address in self.engine.graph.nodes}
        marks = {o.address.lower(): o for o in owned if o.marked}
        environment = self.engine.state.environment
        found: dict[str, Orphan] = {}
        for item in owned:
            if item.address.lower() in declared:
                continue
            owner = item if item.marked else marks.get((item.parent or "").lower())
            if owner is None or owner.environment not in (environment, SHARED_ENVIRONMENT):
                continue
            kind = item.address.split("/", 1)[0]
            holds_data = self.kinds[kind].holds_data if kind in self.kinds else False
            found[item.address.lower()] = Orphan(
                item.address, item.id, str(owner.environment), holds_data, item.details
            )
        return list(found.values())


def prune(engine: Engine, approved: list[Orphan], *, allow_data_loss: bool) -> list[ResourceResult]:
    """Delete the ``approved`` orphans (from the plan the user confirmed) that a fresh search
    still finds with the same id, in reverse dependency order (kinds.delete_order()); those it
    does not find any more, shared ones, and data-holding ones without ``allow_data_loss`` are
    kept. Each deletion is retried on transient errors; a failure is reported and the rest
    goes on; once the engine is cancelled none starts. Returns one result per approved
    orphan (DELETED, KEPT, FAILED or NOT_STARTED)."""
    with OrphanSearch(engine) as search:
        current, _ = search.result()
    still = {(o.address.lower(), o.id.lower()) for o in current}
    kinds = managed_reconcilers()
    results = []
    for orphan in deletion_order(list(approved)):
        refusal = orphan.refusal(allow_data_loss)
        if refusal is None and (orphan.address.lower(), orphan.id.lower()) not in still:
            refusal = "no longer an orphan (gone, declared again, or its marks changed): left alone"
        if refusal is not None:
            results.append(ResourceResult(orphan.address, Outcome.KEPT, detail=refusal))
            continue
        if engine.cancel_event.is_set():  # interrupted (Ctrl-C): no new deletion starts
            detail = "not deleted: apply was interrupted"
            results.append(ResourceResult(orphan.address, Outcome.NOT_STARTED, detail=detail))
            continue
        results.append(_delete(engine, kinds[orphan.kind], orphan))
    return results


def _delete(engine: Engine, reconciler: Reconciler[Any], orphan: Orphan) -> ResourceResult:
    start = time.monotonic()
    progress = engine.progress
    if progress is not None:
        progress.started(orphan.address, "delete")

    def delete() -> None:
        timeout = engine.retry.operation_timeout(orphan.kind)
        with operation_deadline(timeout, f"delete {orphan.address}"):
            reconciler.delete_orphan(engine.context, orphan.id)

    try:
        call_with_retry(delete, policy=engine.retry, what=f"delete {orphan.address}",
                        kind=orphan.kind)  # fmt: skip
        outcome, detail = Outcome.DELETED, None
    except Exception as error:
        outcome = Outcome.FAILED
        detail = "delete failed: " + engine.redactor.redact(describe_error(error))
    seconds = time.monotonic() - start
    if progress is not None:
        progress.finished(orphan.address, outcome.value, seconds)
    return ResourceResult(orphan.address, outcome, detail=detail, seconds=seconds)
