"""Which failures are worth retrying, in one table, and the retry loop (tenacity).

azure-core already retries 408/429/500/502/503/504 at the transport level, honouring
Retry-After; this layer catches what is left: those statuses once azure-core gives up, ARM
codes that mean "try again shortly" (another operation in progress, request conflict,
eventual consistency right after a parent's creation) and dropped connections.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT_CODES = frozenset(
    {
        "AnotherOperationInProgress",
        "RequestConflict",
        "RetryableError",
        "RetryableErrorDueToAnotherOperation",
        "ParentResourceNotFound",  # eventual consistency right after the parent's creation
        "Conflict",  # generic 409s of in-flight operations
        "TooManyRequests",
        "ServerTimeout",
        "InternalServerError",
        "ServiceUnavailable",
        "OperationPreempted",
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry transient failures (on top of azure-core's own retries)."""

    attempts: int = 5
    initial_wait_s: float = 1.0
    max_wait_s: float = 30.0


def error_code(exc: BaseException) -> str | None:
    """The ARM error code of an SDK exception, if it has one."""
    if isinstance(exc, HttpResponseError):
        error = getattr(exc, "error", None)
        code = getattr(error, "code", None)
        if isinstance(code, str):
            return code
    return None


def status_of(exc: BaseException) -> int | None:
    if isinstance(exc, HttpResponseError):
        return exc.status_code
    return None


def is_transient(exc: BaseException) -> bool:
    """True for failures that may succeed if tried again shortly."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError | ConnectionError):
        return True
    if isinstance(exc, HttpResponseError):
        if exc.status_code in TRANSIENT_STATUS:
            return True
        return error_code(exc) in TRANSIENT_CODES
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
    on_retry: Callable[[str, BaseException, float], None] | None = None,
) -> T:
    """Run ``fn``; retry transient failures per ``policy``; re-raise the last failure."""
    backoff = wait_exponential_jitter(
        multiplier=policy.initial_wait_s, max=policy.max_wait_s, jitter=policy.initial_wait_s
    )

    def wait(state: RetryCallState) -> float:
        return max(_retry_after(state), backoff(state))

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        if exc is not None:
            log.info("retrying %s in %.1fs after %s", what, delay, describe_error(exc))
            if on_retry is not None:
                on_retry(what, exc, delay)

    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)


def describe_error(exc: BaseException) -> str:
    """One line: status, ARM code and message — never a request body."""
    if isinstance(exc, HttpResponseError):
        code = error_code(exc)
        message = getattr(getattr(exc, "error", None), "message", None) or exc.reason or ""
        parts = [str(exc.status_code) if exc.status_code else None, code, message]
        return " ".join(p for p in parts if p)
    return f"{type(exc).__name__}: {exc}"
