"""Verification: walk the plan's Definition of Done (seed §5 phase 4, §6) against live state.

Each check is one small function returning a ``Check`` (PASS / FAIL / SKIP) with evidence a
reviewer can trust: ARM ids, IP addresses, states, counts; never a secret value (evidence is
also passed through the run's redactor). Verification reads only: one engine plan (which is
also check "plan-clean") plus a few GETs and LIST calls. The one exception is ``smoke=True``:
the alert smoke posts one test event per agent event type to the data collection rule through
the Logs Ingestion API (it writes log rows, nothing else).

Modules: ``results`` (Check, VerifyReport), ``context`` (what a run shares), one module per
area of checks (``services``, ``endpoints``, ``dns``, ``workload``, ``keyvault``, ``alerts``,
``smoke``), ``resolver`` (the DNS resolver to query) and ``runner`` (every check, in order).

The package is named ``verification`` (not ``verify``) so that the package attribute
``nsc_reconcile.verify`` stays the library function; no submodule may be named ``verify``.
"""

from __future__ import annotations

from nsc_reconcile.verification.alerts import SEED_EVENTS
from nsc_reconcile.verification.resolver import default_resolver, parse_resolver
from nsc_reconcile.verification.results import EXIT_FAILED, Check, Status, VerifyReport
from nsc_reconcile.verification.runner import run_checks, verify

__all__ = [
    "EXIT_FAILED",
    "SEED_EVENTS",
    "Check",
    "Status",
    "VerifyReport",
    "default_resolver",
    "parse_resolver",
    "run_checks",
    "verify",
]
