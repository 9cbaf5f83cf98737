"""Real PostgreSQL servers behind the emulated flexible servers (Debian's binaries).

One server per flexible server, started on first use (the first route asked for it), on
127.0.0.1 only, TLS with the emulator's certificate, ``hostssl`` + SCRAM as the only way in
(Azure requires TLS by default). The admin role and the databases follow ARM: the kinds call
``password_set`` / ``database_created`` / ``database_deleted`` / ``server_deleted`` through
``kinds.postgres.attach_data_plane``. Only the password's SCRAM verifier is kept, never the
password. Each server copies a template initialized once per process (``pgprocess.py``).
Touches the processes and directories it creates; imports nothing from the product.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nsc_reconcile.emulator.kinds.postgres import DATABASE_TYPE
from nsc_reconcile.emulator.pgprocess import (
    ADMIN_GROUP,
    PREFIX,
    SUPERUSER,
    SUPERUSER_PASSWORD,
    PostgresUnavailable,
    find_bin_dir,
    free_port,
    own,
    remove_templates,
    run_as,
    scram_verifier,
    spawn,
    stop_process,
    template_for,
    version_of,
    wait_ready,
    work_root,
)

if TYPE_CHECKING:
    import psycopg

    from nsc_reconcile.emulator.server import TlsFiles

__all__ = ["PostgresServers", "PostgresUnavailable", "RealServer"]

log = logging.getLogger(__name__)

# Present on every Azure server (ARM lists them too); made once in the template.
SYSTEM_DATABASES = ("postgres", "azure_maintenance", "azure_sys", "template0", "template1")


class WorldView(Protocol):
    lock: Any

    def get(self, rid: str) -> dict[str, Any] | None: ...

    def children(self, parent_rid: str, arm_type: str) -> list[dict[str, Any]]: ...


def _server_conf(port: int, sockets: Path) -> str:
    return f"""
# ---- nsc-reconcile emulator (Azure flexible server defaults where they matter) ----
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
unix_socket_permissions = 0700
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
timezone = 'UTC'
log_timezone = 'UTC'
max_connections = 50
shared_buffers = 16MB
# Throwaway data: no durability work.
fsync = off
synchronous_commit = off
full_page_writes = off
"""


# Only TLS from loopback with a SCRAM password: a connection without TLS finds no entry and is
# refused, as Azure refuses it while require_secure_connection is on (the default).
_HBA = "hostssl all all 127.0.0.1/32 scram-sha-256\n"


@dataclass
class RealServer:
    """One running PostgreSQL server behind flexible server ``server_id``."""

    server_id: str
    directory: Path
    data: Path
    port: int
    process: subprocess.Popen[bytes]
    bin_dir: Path
    version: str  # e.g. "15.14"
    started_seconds: float

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None


class PostgresServers:
    """The real servers of one emulator (thread-safe). ``listener`` is what the network
    calls for ``Microsoft.DBforPostgreSQL/flexibleServers`` on port 5432; the other public
    methods are the data-plane hooks the kinds call (with the world's lock held)."""

    def __init__(self, world: WorldView, tls: Callable[[], TlsFiles | None]) -> None:
        self.world = world
        self._tls = tls
        self._lock = threading.RLock()
        self._servers: dict[str, RealServer] = {}  # lower-cased server id
        self._admins: dict[str, tuple[str, str]] = {}  # lower-cased server id -> login, verifier
        self._base: Path | None = None
        self._count = 0
        _MANAGERS.add(self)

    # ---- what the network asks --------------------------------------------------------------
    def listener(self, server_id: str, entrance: str) -> tuple[str, int] | None:
        """The loopback address of the server's real PostgreSQL (started now if needed); None
        when nothing answers there: a public entrance while public network access is not
        Enabled (as on Azure), or a server that does not exist."""
        with self.world.lock:  # no ARM change (database, password) slips in while starting
            server = self.world.get(server_id)
            if server is None:
                return None
            network = (server.get("properties") or {}).get("network") or {}
            if entrance == "public" and network.get("publicNetworkAccess") != "Enabled":
                return None
            return self.ensure(str(server["id"])).address

    def ensure(self, server_id: str) -> RealServer:
        """The running server for ``server_id``, started from the world's state if needed.
        Raises PostgresUnavailable."""
        with self.world.lock, self._lock:
            key = server_id.lower()
            found = self._servers.get(key)
            if found is not None and found.running():
                return found
            if found is not None:  # died under us: start afresh from the ARM state
                self._stop_one(key)
            resource = self.world.get(server_id)
            if resource is None:
                raise PostgresUnavailable(f"no flexible server {server_id}")
            databases = [
                str(db.get("name"))
                for db in self.world.children(str(resource["id"]), DATABASE_TYPE)
                if str(db.get("name")) not in SYSTEM_DATABASES
            ]
            server = self._start(resource)
            self._servers[key] = server
            try:
                with self._superuser(server) as conn:
                    admin = self._admins.get(key)
                    if admin is not None:
                        _set_admin(conn, *admin)
                    for name in databases:
                        _create_database(conn, name)
            except BaseException:
                self._stop_one(key)
                raise
            return server

    def running(self) -> dict[str, RealServer]:
        """The servers running now, by lower-cased flexible server id."""
        with self._lock:
            return {k: s for k, s in self._servers.items() if s.running()}

    # ---- hooks the kinds call (the world's lock is held) -------------------------------------
    def password_set(self, server_id: str, login: str | None, password: str) -> None:
        """A PUT/PATCH set the admin password: keep its verifier; a running server gets it at
        once (ALTER ROLE), so it accepts only the new one."""
        if not login:
            return
        key = server_id.lower()
        verifier = scram_verifier(password)
        with self._lock:
            self._admins[key] = (login, verifier)
            server = self._servers.get(key)
            if server is None:
                return
            self._apply(key, lambda conn: _set_admin(conn, login, verifier))

    def database_created(self, database_id: str) -> None:
        server_id, _, name = database_id.rpartition("/databases/")
        if name in SYSTEM_DATABASES:
            return
        with self._lock:
            if server_id.lower() in self._servers:
                self._apply(server_id.lower(), lambda conn: _create_database(conn, name))

    def database_deleted(self, database_id: str) -> None:
        server_id, _, name = database_id.rpartition("/databases/")
        if name in SYSTEM_DATABASES:
            return
        with self._lock:
            if server_id.lower() in self._servers:
                self._apply(server_id.lower(), lambda conn: _drop_database(conn, name))

    def server_deleted(self, server_id: str) -> None:
        with self._lock:
            self._admins.pop(server_id.lower(), None)
            self._stop_one(server_id.lower())

    # ---- lifecycle ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to nothing: every server stopped, every admin password forgotten."""
        with self._lock:
            self._admins.clear()
            for key in list(self._servers):
                self._stop_one(key)

    def stop(self) -> None:
        """Stop every server (immediate shutdown) and remove their directories. Idempotent."""
        with self._lock:
            self.reset()
            if self._base is not None:
                shutil.rmtree(self._base, ignore_errors=True)
                self._base = None

    # ---- internals ---------------------------------------------------------------------------
    def _apply(self, key: str, change: Callable[[psycopg.Connection[Any]], None]) -> None:
        """Run ``change`` on a running server; when it fails the server is stopped, so the
        next use starts it again from the ARM state (never a stale password or database)."""
        server = self._servers[key]
        try:
            with self._superuser(server) as conn:
                change(conn)
        except Exception as error:
            log.warning("PostgreSQL behind %s: %s; stopping it", server.server_id, error)
            self._stop_one(key)

    def _directory(self, user: pwd.struct_passwd | None) -> Path:
        if self._base is None or not self._base.is_dir():
            self._base = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=work_root()))
            own(self._base, user)
        self._count += 1
        return self._base / f"server-{self._count}"

    def _start(self, resource: dict[str, Any]) -> RealServer:
        started = time.monotonic()
        tls = self._tls()
        if tls is None:
            raise PostgresUnavailable("the emulator is not started (no TLS certificate)")
        declared = str((resource.get("properties") or {}).get("version") or "")
        bin_dir = find_bin_dir(declared)
        template = template_for(bin_dir)
        user = run_as()
        directory = self._directory(user)
        directory.mkdir()
        own(directory, user)
        data, sockets = directory / "data", directory / "sockets"
        sockets.mkdir()
        own(sockets, user)
        subprocess.run(["cp", "-a", "--reflink=auto", str(template), str(data)], check=True)
        for source, target in ((tls.leaf_cert, "server.crt"), (tls.leaf_key, "server.key")):
            shutil.copyfile(source, data / target)
            own(data / target, user, 0o600)
        (data / "pg_hba.conf").write_text(_HBA)
        base_conf = (data / "postgresql.conf").read_text()
        for _attempt in range(3):  # a free port can be taken before the server binds it
            port = free_port()
            (data / "postgresql.conf").write_text(base_conf + _server_conf(port, sockets))
            process = spawn(bin_dir, data, directory / "postgres.log", user)
            if wait_ready(process, data):
                version = version_of(bin_dir)
                return RealServer(
                    server_id=str(resource["id"]),
                    directory=directory,
                    data=data,
                    port=port,
                    process=process,
                    bin_dir=bin_dir,
                    version=version,
                    started_seconds=time.monotonic() - started,
                )
            stop_process(process)
            text = (directory / "postgres.log").read_text(errors="replace")
            if "could not bind" not in text and "already in use" not in text:
                shutil.rmtree(directory, ignore_errors=True)
                tail = " | ".join(text.strip().splitlines()[-3:])
                raise PostgresUnavailable(f"PostgreSQL did not start: {tail}")
        shutil.rmtree(directory, ignore_errors=True)
        raise PostgresUnavailable("PostgreSQL found no free loopback port")

    @contextlib.contextmanager
    def _superuser(self, server: RealServer) -> Iterator[psycopg.Connection[Any]]:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1",
            port=server.port,
            user=SUPERUSER,
            password=SUPERUSER_PASSWORD,
            dbname="postgres",
            sslmode="require",
            connect_timeout=10,
            autocommit=True,
        ) as conn:
            yield conn

    def _stop_one(self, key: str) -> None:
        server = self._servers.pop(key, None)
        if server is not None:
            stop_process(server.process)
            shutil.rmtree(server.directory, ignore_errors=True)


def _set_admin(conn: psycopg.Connection[Any], login: str, verifier: str) -> None:
    """The admin as Azure makes it: LOGIN, CREATEDB, CREATEROLE, INHERIT, member of
    azure_pg_admin, not a superuser; its password set from the verifier."""
    from psycopg import sql

    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [login]).fetchone()
    verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
    conn.execute(
        sql.SQL("{} {} WITH LOGIN NOSUPERUSER INHERIT CREATEDB CREATEROLE PASSWORD {}").format(
            verb, sql.Identifier(login), sql.Literal(verifier)
        )
    )
    conn.execute(
        sql.SQL("GRANT {} TO {}").format(sql.Identifier(ADMIN_GROUP), sql.Identifier(login))
    )


def _create_database(conn: psycopg.Connection[Any], name: str) -> None:
    from psycopg import errors, sql

    with contextlib.suppress(errors.DuplicateDatabase):
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(ADMIN_GROUP)
            )
        )


def _drop_database(conn: psycopg.Connection[Any], name: str) -> None:
    from psycopg import sql

    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


_MANAGERS: weakref.WeakSet[PostgresServers] = weakref.WeakSet()


@atexit.register
def _stop_everything() -> None:
    """Never leave a server behind: every manager stopped, templates removed."""
    for manager in list(_MANAGERS):
        with contextlib.suppress(Exception):
            manager.stop()
    remove_templates()
