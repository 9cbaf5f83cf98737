"""Which failures are worth retrying (one table, per kind where Azure differs), the retry loop
(tenacity) and the time limit of one write operation.

azure-core already retries 408/429/500/502/503/504 at the transport level, honouring
Retry-After (the Kubernetes client's urllib3 transport likewise: kubeconfig.py); this layer
catches what is left: those statuses once the transport gives up, ARM codes that mean "try
again shortly" and dropped connections.
The engine re-reads a resource before it retries its write, so a retry never writes from a
stale snapshot (which is also what makes a 412 from If-Match safe to retry).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    wait_exponential_jitter,
)

from nsc_reconcile import kinds

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# ARM codes that mean "try again shortly", whatever the kind.
TRANSIENT_CODES = frozenset(
    {
        "AnotherOperationInProgress",
        "RequestConflict",
        "RetryableError",
        "RetryableErrorDueToAnotherOperation",
        "ParentResourceNotFound",  # eventual consistency right after the parent's creation
        "TooManyRequests",
        "ServerTimeout",
        "InternalServerError",
        "ServiceUnavailable",
        "OperationPreempted",
        "PreconditionFailed",  # 412 on If-Match: someone wrote meanwhile; re-read, re-plan
    }
)
# Codes transient only for some kinds are the kind's `transient_codes` (nsc_reconcile.kinds).
# Conditions that last minutes, not seconds: retried for up to RetryPolicy.patience_s.
SLOW_CODES = frozenset({"AccountProvisioningStateInvalid"})
# A generic 409 "Conflict" is usually another operation in flight (transient), but a name
# that is taken (here or in another subscription) never frees itself: permanent.
_NAME_CLASH = re.compile(
    r"already (exists|in use|taken|been taken|used)|(is|are) (already )?(in use|taken)|"
    r"not available|name .*(conflict|unavailable|reserved)|must be (globally )?unique",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry transient failures (on top of azure-core's own retries), and how
    long one write (its long-running operation included) may take."""

    attempts: int = 5
    initial_wait_s: float = 1.0
    max_wait_s: float = 30.0
    # For SLOW_CODES: keep retrying for this long (seconds since the first try).
    patience_s: float = 600.0
    # One write of a resource, polling included; scaled by the kind's `time_factor`.
    operation_timeout_s: float = 1800.0

    def operation_timeout(self, kind: str | None) -> float:
        """Seconds one write of ``kind`` may take before it is abandoned as timed out."""
        found = kinds.spec(kind) if kind else None
        return self.operation_timeout_s * (found.time_factor if found is not None else 1.0)


class OperationTimeoutError(Exception):
    """A write (with its long-running operation) did not finish in time. Azure may still be
    working on it: a rerun re-reads it first."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(
            f"{what} did not finish within {seconds:.0f} s (operation timeout); Azure may "
            "still be working on it: re-run apply later (it re-reads before writing)"
        )


@dataclass
class Deadline:
    """The time limit of one operation; checked on every HTTP request made for it."""

    what: str
    seconds: float
    at: float  # time.monotonic() value
    active: bool = True
    urls: set[str] = field(default_factory=set)

    def check(self) -> None:
        """Raise OperationTimeoutError once the limit has passed (while still active)."""
        if self.active and time.monotonic() > self.at:
            raise OperationTimeoutError(self.what, self.seconds)


_DEADLINE: ContextVar[Deadline | None] = ContextVar("nsc_reconcile_deadline", default=None)


@contextmanager
def operation_deadline(seconds: float | None, what: str) -> Iterator[Deadline | None]:
    """Within the block, every SDK request for the operation (including the long-running
    operation's polls, made on the poller's own thread: azure.py follows them by URL) raises
    OperationTimeoutError once ``seconds`` have passed. None: no limit."""
    if seconds is None:
        yield None
        return
    deadline = Deadline(what, seconds, time.monotonic() + seconds)
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        deadline.active = False
        _DEADLINE.reset(token)


def current_deadline() -> Deadline | None:
    """The deadline of the operation running in this context, if any."""
    return _DEADLINE.get()


def error_code(exc: BaseException) -> str | None:
    """The ARM error code of an SDK exception, if it has one."""
    if isinstance(exc, HttpResponseError):
        error = getattr(exc, "error", None)
        code = getattr(error, "code", None)
        if isinstance(code, str):
            return code
    return None


def _inner_code(exc: BaseException) -> str | None:
    """The ``innererror.code`` Key Vault's data plane answers under its error, if any."""
    inner = getattr(getattr(exc, "error", None), "innererror", None)
    if isinstance(inner, dict) and isinstance(inner.get("code"), str):
        return str(inner["code"])
    response = getattr(exc, "response", None)
    try:
        body = response.json() if response is not None else None
    except Exception:  # not JSON: no inner code
        return None
    found = ((body.get("error") or {}).get("innererror") or {}) if isinstance(body, dict) else {}
    return str(found["code"]) if isinstance(found, dict) and "code" in found else None


def status_of(exc: BaseException) -> int | None:
    if isinstance(exc, HttpResponseError):
        return exc.status_code
    return None


def _message(exc: BaseException) -> str:
    return str(getattr(getattr(exc, "error", None), "message", None) or "")


def is_transient(exc: BaseException, kind: str | None = None) -> bool:
    """True for failures that may succeed if tried again shortly (``kind``: the resource
    kind written, for codes that are transient only there)."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError | ConnectionError):
        return True
    says = getattr(exc, "transient", None)
    if isinstance(says, bool):  # errors that classify themselves (resources/kubeapi.py)
        return says
    if isinstance(exc, HttpResponseError):
        code = error_code(exc)
        if code == "Conflict":
            return not _NAME_CLASH.search(_message(exc))
        found = kinds.spec(kind) if kind else None
        if code in TRANSIENT_CODES or (found is not None and code in found.transient_codes):
            return True
        if found is not None and _inner_code(exc) in found.transient_codes:
            return True  # e.g. Key Vault's 403 Forbidden / ForbiddenByRbac for a secret
        # A long-running operation that ended Failed raises with its poll's status (200):
        # then only its code counts, so one that failed for a permanent reason is not re-PUT.
        return exc.status_code in TRANSIENT_STATUS
    return False


def _retry_after(state: RetryCallState) -> float:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    response = getattr(exc, "response", None) if isinstance(exc, HttpResponseError) else None
    headers = getattr(response, "headers", None)
    if headers is not None:
        value = headers.get("Retry-After")
        if value is not None and value.isdigit():
            return float(value)
    return 0.0


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    what: str,
    kind: str | None = None,
    on_retry: Callable[[str, BaseException, float], None] | None = None,
    patient: frozenset[str] = frozenset(),
) -> T:
    """Run ``fn``; retry transient failures per ``policy`` (``kind``: the resource kind, for
    per-kind codes); re-raise the last failure. Codes in ``patient`` (and SLOW_CODES) are
    retried for ``policy.patience_s`` instead of ``policy.attempts``. ``fn`` must be safe to
    repeat (the engine's writes re-read before each retry)."""
    slow = SLOW_CODES | patient
    backoff = wait_exponential_jitter(
        multiplier=policy.initial_wait_s, max=policy.max_wait_s, jitter=policy.initial_wait_s
    )

    def wait(state: RetryCallState) -> float:
        return max(_retry_after(state), backoff(state))

    def stop(state: RetryCallState) -> bool:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if exc is not None and (error_code(exc) in slow or _inner_code(exc) in slow):
            return (state.seconds_since_start or 0.0) >= policy.patience_s
        return state.attempt_number >= policy.attempts

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        if exc is not None:
            log.info("retrying %s in %.1fs after %s", what, delay, describe_error(exc))
            if on_retry is not None:
                on_retry(what, exc, delay)

    retrying = Retrying(
        retry=retry_if_exception(lambda exc: is_transient(exc, kind)),
        stop=stop,
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)


_HOST = re.compile(r"host='([^']+)'(?:, port=(\d+))?")


def describe_error(exc: BaseException) -> str:
    """One line: status, ARM code (with Key Vault's inner code) and message — never a
    request body."""
    if isinstance(exc, HttpResponseError):
        code = error_code(exc)
        inner = _inner_code(exc)
        if inner and inner != code:
            code = f"{code} ({inner})" if code else inner
        message = _message(exc) or exc.reason or ""
        parts = [str(exc.status_code) if exc.status_code else None, code, message]
        return _one_line(" ".join(p for p in parts if p))
    if isinstance(exc, ServiceRequestTimeoutError | ServiceResponseTimeoutError):
        found = _HOST.search(str(exc))
        where = f"{found.group(1)}:{found.group(2) or 443}" if found else "the service"
        if isinstance(exc, ServiceRequestTimeoutError):
            return (
                f"connect timeout: {where} did not accept a connection in time (unreachable "
                "from here? e.g. a private endpoint seen from outside its VNet)"
            )
        return f"read timeout: {where} accepted the request but did not answer in time"
    return _one_line(f"{type(exc).__name__}: {exc}")


def _one_line(text: str) -> str:
    first = " ".join(text.split())
    return first if len(first) <= 500 else first[:497] + "..."
