"""Smoke test "langfuse" (seed §5 phase 4 / §6: "LangFuse trace write/read"): with the project
keys from Key Vault, the ``langfuse`` SDK reaches LangFuse at its Service's in-cluster name,
checks health and the keys, writes one trace (``nsc-verify-smoke-<random>``) and reads it
back. Writes that one trace; never shows a key (the SDK's own logs are silenced meanwhile).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from nsc_reconcile.verification.context import Run, make_check
from nsc_reconcile.verification.netview import NoRouteError
from nsc_reconcile.verification.results import Check

if TYPE_CHECKING:
    import httpx
    from langfuse import Langfuse

    from nsc_reconcile.model.workload import Langfuse as LangfuseWorkload

INIT_PUBLIC_KEY = "LANGFUSE_INIT_PROJECT_PUBLIC_KEY"
INIT_SECRET_KEY = "LANGFUSE_INIT_PROJECT_SECRET_KEY"
SMOKE_PREFIX = "nsc-verify-smoke-"
# LangFuse ingests asynchronously: flush() means delivered, not readable; the SDK's docs give
# 15-30 s as typical, longer under load.
READ_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 10
# The SDK logs its public key at start and export failures with response bodies: silenced.
_SDK_LOGGERS = ("langfuse", "opentelemetry", "httpx", "httpcore", "urllib3")
_MISMATCH = "do not match LangFuse's project keys (LangFuse keeps the keys of its first start)"


class _Stop(Exception):
    """Ends the probe: a FAIL (``problem``) or a SKIP (``skip``)."""

    def __init__(self, problem: str = "", skip: str = "") -> None:
        super().__init__(problem or skip)
        self.problem = problem
        self.skip = skip


def smoke_langfuse(run: Run) -> list[Check]:
    """The ``langfuse`` smoke (``verify --smoke langfuse``): one check for the LangFuse
    Service: DNS, route, health, the Key Vault keys, one trace written and read back."""
    workload = run.state.langfuse
    if workload is None:
        title = "Smoke: langfuse"
        return [make_check("smoke-langfuse", title, [], [], skip="no LangFuse declared")]
    probe = _Probe(run, workload)
    try:
        probe.run()
    except _Stop as stop:
        problems = [stop.problem] if stop.problem else []
        return [make_check(probe.check_id, probe.title, probe.evidence, problems, skip=stop.skip)]
    return [make_check(probe.check_id, probe.title, probe.evidence, [])]


class _Probe:
    """One run of the smoke against ``workload``; ``evidence`` grows step by step."""

    def __init__(self, run: Run, workload: LangfuseWorkload) -> None:
        self.run_ = run
        self.workload = workload
        service = workload.service
        self.name = f"{service.name}.{workload.namespace}.svc.cluster.local"
        self.port = service.port
        self.check_id = f"smoke-langfuse/{service.name}"
        self.title = (
            f"LangFuse at {self.name}:{self.port} takes a trace and gives it back "
            "(langfuse SDK, Key Vault keys)"
        )
        self.evidence: list[str] = []
        # The Key Vault secrets LangFuse's headless init takes its project keys from.
        self.public_name = workload.secret_env.get(INIT_PUBLIC_KEY, "")
        self.secret_name = workload.secret_env.get(INIT_SECRET_KEY, "")

    def run(self) -> None:
        """Raises _Stop on the first failed (or impossible) step."""
        if not self.public_name or not self.secret_name:
            raise _Stop(
                skip=f"the desired state gives LangFuse no {INIT_PUBLIC_KEY}/{INIT_SECRET_KEY} "
                "from Key Vault (langfuse.secret_env): no project keys to test with"
            )
        base_url, loopback = self._reach()
        try:
            public_key = self.run_.secret_value(self.public_name)
            secret_key = self.run_.secret_value(self.secret_name)
        except Exception as error:
            from nsc_reconcile.retry import describe_error

            raise _Stop(
                f"cannot read the project keys from Key Vault ({self.public_name}, "
                f"{self.secret_name}): {describe_error(error)}"
            ) from None
        with _quiet_sdk_logs(), _http_client(loopback) as http:
            trace_id, trace_name = self._write(base_url, public_key, secret_key, http)
            self._read_back(base_url, (public_key, secret_key), http, trace_id, trace_name)

    # -- DNS and route ------------------------------------------------------------------------
    def _reach(self) -> tuple[str, bool]:
        """(base URL, is a loopback route): the Service's name resolved, its address dialled."""
        view = self.run_.network
        where = "system resolver"
        if view.resolver is not None:
            where = f"resolver {view.resolver[0]}:{view.resolver[1]}"
        try:
            resolution = view.resolve(self.name)
        except Exception as error:
            raise _Stop(f"{self.name}: DNS query failed ({where}): {error}") from None
        self.evidence.append(f"{resolution.describe()} ({where})")
        if not resolution.addresses:
            if not view.emulated and self.run_.origin != "aks":
                raise _Stop(
                    skip="cluster DNS name not resolvable from here; run verify --smoke --from aks"
                )
            raise _Stop(
                f"{self.name} does not resolve ({resolution.rcode}): no Service "
                f"{self.workload.service.name} in namespace {self.workload.namespace}"
            )
        address = resolution.addresses[0]
        try:
            host, port = view.dial(address, self.port)
        except NoRouteError:
            raise _Stop(
                f"nothing answers at {address}:{self.port}: no ready LangFuse web pod behind "
                f"Service {self.workload.service.name} on port {self.port}"
            ) from None
        route = f" (route {address}:{self.port} -> {host}:{port})" if view.emulated else ""
        self.evidence.append(f"http://{self.name}:{self.port} via {host}:{port}{route}")
        return f"http://{host}:{port}", view.emulated

    # -- the SDK ------------------------------------------------------------------------------
    def _write(
        self, base_url: str, public_key: str, secret_key: str, http: httpx.Client
    ) -> tuple[str, str]:
        """Health, the keys, one trace through the SDK; returns (trace id, trace name)."""
        from langfuse import propagate_attributes
        from langfuse.api import AccessDeniedError, UnauthorizedError

        with _langfuse_client(public_key, secret_key, base_url, http) as client:
            started = time.monotonic()
            try:
                health = client.api.health.health()
            except Exception as error:
                raise _Stop(f"health check failed: {_api_error(error)}") from None
            self.evidence.append(
                f"health {health.status} (LangFuse {health.version}, {_ms(started)} ms)"
            )
            if health.status != "OK":
                raise _Stop(f"health not OK: status {health.status!r}")
            try:
                projects = client.api.projects.get()
            except (UnauthorizedError, AccessDeniedError) as error:
                raise _Stop(
                    f"{_api_error(error)}: the keys in Key Vault ({self.public_name}, "
                    f"{self.secret_name}) {_MISMATCH}"
                ) from None
            except Exception as error:
                raise _Stop(f"key check failed: {_api_error(error)}") from None
            project = projects.data[0].id if projects.data else "(none)"
            self.evidence.append(
                f"keys {self.public_name}/{self.secret_name} from Key Vault accepted "
                f"(project {project})"
            )
            trace_name = SMOKE_PREFIX + uuid.uuid4().hex[:12]
            started = time.monotonic()
            with client.start_as_current_observation(
                name=trace_name,
                as_type="span",
                input={"check": "nsc-reconcile verify --smoke langfuse"},
            ) as span:
                with propagate_attributes(trace_name=trace_name, tags=["nsc-reconcile-verify"]):
                    span.update(output={"status": "ok"})
                trace_id = span.trace_id
            client.flush()
            self.evidence.append(
                f"trace {trace_id} ({trace_name}) sent over OTLP, flushed in {_ms(started)} ms"
            )
        return trace_id, trace_name

    def _read_back(
        self,
        base_url: str,
        auth: tuple[str, str],
        http: httpx.Client,
        trace_id: str,
        trace_name: str,
    ) -> None:
        """GET /api/public/traces/{id} until it answers 200, within READ_TIMEOUT_S (plain
        HTTP with the same Basic auth: SDK 5 has no call for one trace)."""
        started = time.monotonic()
        url = f"{base_url}/api/public/traces/{trace_id}"
        pause, reads = 0.1, 0
        while True:
            reads += 1
            try:
                answer = http.get(url, auth=auth)
            except Exception as error:
                raise _Stop(f"reading the trace back failed: {type(error).__name__}") from None
            if answer.status_code != 404:
                break
            if time.monotonic() - started + pause > READ_TIMEOUT_S:
                raise _Stop(
                    f"trace {trace_id} not readable after {READ_TIMEOUT_S:g} s "
                    f"({reads} reads, each HTTP 404)"
                )
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
        waited = time.monotonic() - started
        if answer.status_code == 401:
            raise _Stop(f"reading the trace back: HTTP 401: the keys in Key Vault {_MISMATCH}")
        if answer.status_code != 200:
            raise _Stop(f"reading the trace back: HTTP {answer.status_code}")
        body: Any = answer.json()
        names = [str(o.get("name")) for o in body.get("observations") or []]
        self.evidence.append(
            f"trace {trace_id} read back after {waited:.1f} s ({reads} reads): name "
            f"{body.get('name')}, {len(names)} observation(s)"
        )
        if body.get("id") != trace_id or body.get("name") != trace_name:
            found = f"{body.get('id')} ({body.get('name')})"
            raise _Stop(f"the trace read back is not the one written: {found}")
        if trace_name not in names:
            raise _Stop(f"the trace read back has no observation {trace_name}")


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _api_error(error: Exception) -> str:
    """One line from an SDK error: status and LangFuse's message, never headers."""
    from langfuse.api.core import ApiError

    if isinstance(error, ApiError):
        body = error.body
        message = body.get("message") if isinstance(body, dict) else None
        return f"HTTP {error.status_code} {message or type(error).__name__}"
    return f"{type(error).__name__}: {error}"


@contextmanager
def _quiet_sdk_logs() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _SDK_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def _http_client(loopback: bool) -> Iterator[httpx.Client]:
    import httpx

    # A loopback route is never reached through a proxy from the environment.
    with httpx.Client(timeout=REQUEST_TIMEOUT_S, trust_env=not loopback) as client:
        yield client


@contextmanager
def _langfuse_client(
    public_key: str, secret_key: str, base_url: str, http: httpx.Client
) -> Iterator[Langfuse]:
    """A LangFuse client of its own: its own tracer provider (the process's global one is
    left alone) and, since the SDK keeps ONE resource manager per public key for the whole
    process (``LangfuseResourceManager._instances``: a second ``Langfuse()`` with the same
    public key silently reuses the first one's secret key and URL), any other client's
    manager for that key is put aside meanwhile and restored after."""
    from langfuse import Langfuse
    from langfuse._client.resource_manager import LangfuseResourceManager
    from opentelemetry.sdk.trace import TracerProvider

    registry = LangfuseResourceManager
    provider = TracerProvider()
    with registry._lock:
        previous = registry._instances.pop(public_key, None)
    try:
        client = Langfuse(
            public_key=public_key,
            secret_key=secret_key,
            host=base_url,
            httpx_client=http,
            tracer_provider=provider,
            timeout=REQUEST_TIMEOUT_S,
            sample_rate=1.0,
            tracing_enabled=True,
        )
        try:
            yield client
        finally:
            client.shutdown()
    finally:
        provider.shutdown()
        with registry._lock:
            registry._instances.pop(public_key, None)
            if previous is not None:
                registry._instances[public_key] = previous
