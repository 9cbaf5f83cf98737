"""The apply lease: one apply at a time per environment, held in Azure itself.

The lease is the TXT record set ``<environment>`` of a private DNS zone the tool keeps in the
environment's resource group (``LEASE_ZONE``, linked to no VNet, so it resolves nowhere). See
docs/concurrency.md for why that object. Taking, renewing and releasing it are conditional
writes on its ETag, each retried on transient failures (retry.py) like any write; a 412 is
never retried: it means another run won. SDK modules are imported lazily.
"""

from __future__ import annotations

import datetime
import getpass
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from nsc_reconcile.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    from nsc_reconcile.azure import Clients

__all__ = ["LEASE_ZONE", "ApplyLease", "LeaseHeldError", "LeaseInfo", "LeaseLostError"]

log = logging.getLogger(__name__)

T = TypeVar("T")

LEASE_ZONE = "nsc-reconcile-lease.internal"
DEFAULT_TTL_S = 120.0
_TXT = "nsc-reconcile apply lease: while this record set exists, one apply runs (see metadata)"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp(moment: datetime.datetime) -> str:
    # Milliseconds: whole seconds would cut up to a second off a short lease's life.
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime.datetime | None:
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


@dataclass(frozen=True)
class LeaseInfo:
    """Who holds a lease, as its record set's metadata says."""

    holder: str  # user@host
    host: str
    pid: int
    run: str
    command: str
    since: datetime.datetime
    expires: datetime.datetime

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> LeaseInfo | None:
        """None when the metadata is not a lease's (then anyone may take it)."""
        since = _parse(metadata.get("since", ""))
        expires = _parse(metadata.get("expires", ""))
        if since is None or expires is None or not metadata.get("run"):
            return None
        try:
            pid = int(metadata.get("pid", "0"))
        except ValueError:
            pid = 0
        return cls(
            holder=metadata.get("holder", "?"),
            host=metadata.get("host", ""),
            pid=pid,
            run=metadata["run"],
            command=metadata.get("command", "apply"),
            since=since,
            expires=expires,
        )

    def describe(self) -> str:
        """``alice@build-7 (pid 4242, apply run 1f2e...) since 2025-01-01 10:00:00 UTC``."""
        since = self.since.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{self.holder} (pid {self.pid}, {self.command} run {self.run}) since {since}"

    def stale(self) -> str | None:
        """Why this lease may be taken over (expired, or its process is gone from this
        host), or None while it is live."""
        if _now() >= self.expires:
            return f"expired at {_stamp(self.expires)} (its holder stopped renewing it)"
        if self.host == socket.gethostname() and self.pid > 0 and not _alive(self.pid):
            return f"its process {self.pid} no longer runs on this host"
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class LeaseHeldError(Exception):
    """Another apply holds the environment's lease (and we did not wait, or not long
    enough)."""

    def __init__(self, environment: str, holder: LeaseInfo, waited_s: float) -> None:
        self.environment = environment
        self.holder = holder
        waited = f"waited {waited_s:.0f} s; " if waited_s >= 1 else ""
        super().__init__(
            f"another apply is running on environment {environment}: the lease is held by "
            f"{holder.describe()} and renewed until {_stamp(holder.expires)}; {waited}nothing "
            "was written. Wait for it to finish, or pass --wait-lock SECONDS to wait"
        )


class LeaseLostError(Exception):
    """The lease was lost during the run (it expired and another run took it over)."""


class ApplyLease:
    """The apply lease of one environment (``with lease:`` or ``acquire``/``release``).

    Acquire creates the record set with ``If-None-Match: *`` or takes over a stale one with
    ``If-Match``; a background thread renews it every ``ttl_s / 4`` (If-Match); release
    deletes it (If-Match). A 412 at any step means another run won the race."""

    def __init__(
        self,
        clients: Clients,
        resource_group: str,
        environment: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        command: str = "apply",
        poll_s: float = 2.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.clients = clients
        self.resource_group = resource_group
        self.environment = environment
        self.ttl_s = ttl_s
        self.command = command
        self.poll_s = poll_s
        self.retry = retry or RetryPolicy()
        self.run = uuid.uuid4().hex[:12]
        self.since = _now()
        self.etag: str | None = None
        self.took_over: str | None = None  # why a stale lease was taken over, if one was
        self.lost: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # ------------------------------------------------------------------ public
    def acquire(
        self, wait_s: float = 0.0, on_wait: Callable[[LeaseInfo], None] | None = None
    ) -> None:
        """Take the lease, waiting up to ``wait_s`` seconds for its holder to release it
        (``on_wait`` is told once who we wait for). Raises LeaseHeldError when it is still
        held by a live run after that."""
        start = time.monotonic()
        self._ensure_zone()
        told = False
        while True:
            found = self._read()
            if found is None:
                if self._write(None):
                    break
                continue
            etag, info = found
            stale = info.stale() if info is not None else "not a lease record"
            if info is None or info.run == self.run or stale is not None:
                if self._write(etag):
                    if info is not None and info.run != self.run:
                        self.took_over = f"took over the lease of {info.describe()}: {stale}"
                        log.warning("%s", self.took_over)
                    break
                continue
            waited = time.monotonic() - start
            if waited >= wait_s:
                raise LeaseHeldError(self.environment, info, waited)
            if on_wait is not None and not told:
                on_wait(info)
                told = True
            time.sleep(max(0.05, min(self.poll_s, wait_s - waited)))
        self._stop.clear()
        self._heartbeat = threading.Thread(
            target=self._renew_until_stopped, name=f"lease-{self.environment}", daemon=True
        )
        self._heartbeat.start()

    def release(self) -> None:
        """Stop renewing and delete the lease, unless another run took it over meanwhile.
        Never raises: a lease left behind expires by itself."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=30)
            self._heartbeat = None
        if self.etag is None or self.lost is not None:
            return
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError

        etag = self.etag

        def delete() -> None:
            try:
                self._records().delete(
                    self.resource_group,
                    LEASE_ZONE,
                    "TXT",
                    self.environment,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except HttpResponseError as error:
                if error.status_code != 412:  # 412: no longer ours, leave it
                    raise

        try:
            self._call("release", delete)
        except Exception as error:  # it expires by itself
            log.warning("apply lease of %s not released: %s", self.environment, error)
        self.etag = None

    def __enter__(self) -> ApplyLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ------------------------------------------------------------------ Azure
    def _records(self) -> Any:
        return self.clients.privatedns.record_sets

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return call_with_retry(fn, policy=self.retry, what=f"{what} the apply lease")

    def _ensure_zone(self) -> None:
        """Create the lease zone once (long-running on Azure: tens of seconds, first time
        only), or again when its creation failed; one created meanwhile by another run is
        fine (412 on If-None-Match)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
        from azure.mgmt.privatedns.models import PrivateZone

        zones = self.clients.privatedns.private_zones

        def state() -> str | None:
            """None when absent, else the zone's provisioningState."""
            try:
                zone = zones.get(self.resource_group, LEASE_ZONE)
            except ResourceNotFoundError:
                return None
            found = zone.properties.provisioning_state if zone.properties else None
            return str(getattr(found, "value", found) or "")  # an enum member or a string

        found = self._call("read the zone of", state)
        if found is not None and found.lower() != "failed":
            return
        body = PrivateZone(
            location="global", tags={"managed-by": "nsc-reconcile", "purpose": "apply-lease"}
        )
        condition = MatchConditions.IfMissing if found is None else None

        def create() -> None:
            try:
                zones.begin_create_or_update(
                    self.resource_group, LEASE_ZONE, body, match_condition=condition
                ).result()
            except HttpResponseError as error:
                if error.status_code != 412:  # 412: made meanwhile by another run
                    raise

        self._call("create the zone of", create)

    def _read(self) -> tuple[str, LeaseInfo | None] | None:
        from azure.core.exceptions import ResourceNotFoundError

        def get() -> Any:
            try:
                return self._records().get(self.resource_group, LEASE_ZONE, "TXT", self.environment)
            except ResourceNotFoundError:
                return None

        found = self._call("read", get)
        if found is None:
            return None
        metadata = dict((found.properties.metadata if found.properties else None) or {})
        return str(found.etag or ""), LeaseInfo.from_metadata(metadata)

    def _write(self, etag: str | None) -> bool:
        """Create (etag None: If-None-Match *) or replace (If-Match etag) the lease with us
        as holder; False when another run changed it first (412)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError

        expires = _now() + datetime.timedelta(seconds=self.ttl_s)
        metadata = {
            "holder": f"{_user()}@{socket.gethostname()}",
            "host": socket.gethostname(),
            "pid": str(os.getpid()),
            "run": self.run,
            "command": self.command,
            "since": _stamp(self.since),
            "expires": _stamp(expires),
        }
        body = {"properties": {"ttl": 60, "metadata": metadata, "txtRecords": [{"value": [_TXT]}]}}
        condition = MatchConditions.IfMissing if etag is None else MatchConditions.IfNotModified

        def put() -> Any:
            try:
                return self._records().create_or_update(
                    self.resource_group,
                    LEASE_ZONE,
                    "TXT",
                    self.environment,
                    body,
                    etag=etag,
                    match_condition=condition,
                )
            except HttpResponseError as error:
                if error.status_code == 412:  # another run changed it first: not retried
                    return None
                raise

        made = self._call("write", put)
        if made is None:
            return False
        self.etag = str(made.etag or "")
        return True

    def _renew_until_stopped(self) -> None:
        interval = max(0.05, self.ttl_s / 4)
        deadline = time.monotonic() + self.ttl_s
        while not self._stop.wait(interval):
            try:
                renewed = self._write(self.etag)
            except Exception as error:  # a blip: try again until the lease would expire
                if time.monotonic() < deadline:
                    log.warning("renewing the apply lease failed (will retry): %s", error)
                    continue
                renewed = False
            if not renewed:
                self.lost = (
                    f"the apply lease of {self.environment} was lost during the run (it "
                    "could not be renewed in time, or another run took it over)"
                )
                log.error("%s", self.lost)
                return
            deadline = time.monotonic() + self.ttl_s


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (containers)
        return f"uid{os.getuid()}"
