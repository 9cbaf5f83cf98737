"""The real PostgreSQL behind an emulated flexible server, through the real clients (the
PostgreSQL management SDK for ARM, psycopg for the server): reached through the world's
network only, TLS required and verified against the server's FQDN with the emulator's CA, the
admin password (PUT or PATCH) taking effect at once, databases following their ARM resources,
nothing listening beyond loopback, no process left after reset, stop, exit or a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path
from typing import Any

import psycopg
import pytest
from azure.mgmt.postgresqlflexibleservers import models as pg

from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.dns import public_address
from nsc_reconcile.emulator.kinds.postgres import data_plane
from nsc_reconcile.emulator.pgprocess import BIN_ENV, reap_orphans
from nsc_reconcile.emulator.worlds import RESOURCE_GROUP, build_world
from tests.conftest import control
from tests.realpg import pg_connect, requires_postgres

RG = RESOURCE_GROUP
LOGIN = "dpadmin"
FIRST = "First-Passw0rd-4dataplane"
SECOND = "Ünïcode Pässwort-2 ✓"  # SASLprep'd by the server: the verifier must agree


def _server(password: str, public: str = "Enabled") -> pg.Server:
    return pg.Server(
        location="koreacentral",
        sku=pg.Sku(name="Standard_B2s", tier="Burstable"),
        properties=pg.ServerProperties(
            version="15",
            administrator_login=LOGIN,
            administrator_login_password=password,
            network=pg.Network(public_network_access=public),
        ),
    )


def _create(emu: Emulator, clients: Clients, name: str, public: str = "Enabled") -> str:
    control(emu, "POST", "config", {"lro_seconds": {"*": 0}})
    server: Any = clients.postgres.servers.begin_create_or_update(
        RG, name, _server(FIRST, public)
    ).result()
    return str(server.properties.fully_qualified_domain_name)


def _route(emu: Emulator, fqdn: str) -> tuple[str, int]:
    """Where the server's public address is served (the route a client asks for)."""
    label = fqdn.split(".")[0]
    address = public_address(f"{label}.privatelink.postgres.database.azure.com")
    found = control(emu, "GET", f"route?address={address}&port=5432")
    host, _, port = str(found["to"]).rpartition(":")
    return host, int(port)


def _connect(emu: Emulator, fqdn: str, password: str, **options: Any) -> psycopg.Connection[Any]:
    return pg_connect(fqdn, _route(emu, fqdn), emu.info["ca_cert"], LOGIN, password, **options)


def _refusal(emu: Emulator, fqdn: str, password: str, **options: Any) -> str:
    with pytest.raises(psycopg.OperationalError) as refused:
        _connect(emu, fqdn, password, **options).close()
    return str(refused.value)


@requires_postgres
def test_tls_is_required_and_verified_against_the_servers_name(
    emu: Emulator, clients: Clients
) -> None:
    fqdn = _create(emu, clients, "dp-tls")
    host, _ = _route(emu, fqdn)
    assert host == "127.0.0.1"
    with _connect(emu, fqdn, FIRST) as conn:
        row = conn.execute(
            "SELECT s.ssl, s.version, r.rolsuper, r.rolcreatedb, r.rolcreaterole, "
            "pg_has_role('azure_pg_admin', 'MEMBER'), current_setting('server_version_num') "
            "FROM pg_stat_ssl s, pg_roles r "
            "WHERE s.pid = pg_backend_pid() AND r.rolname = current_user"
        ).fetchone()
    assert row is not None
    ssl_on, protocol, superuser, createdb, createrole, in_admin_group, version = row
    assert ssl_on is True
    assert protocol in ("TLSv1.2", "TLSv1.3")
    # The admin as on Azure: CREATEDB, CREATEROLE, member of azure_pg_admin, no superuser.
    assert (superuser, createdb, createrole, in_admin_group) == (False, True, True, True)
    assert int(version) // 10000 == 15
    assert "no encryption" in _refusal(emu, fqdn, FIRST, sslmode="disable")
    # The certificate names the Azure service, not any name: verify-full refuses another host.
    assert "does not match host name" in _refusal(emu, fqdn, FIRST, host="db.example.com")
    # Without the emulator's CA the certificate is not trusted.
    assert "certificate verify failed" in _refusal(emu, fqdn, FIRST, sslrootcert="system")


@requires_postgres
def test_a_wrong_password_is_refused_and_a_new_one_takes_effect_at_once(
    emu: Emulator, clients: Clients
) -> None:
    fqdn = _create(emu, clients, "dp-pw")
    rid = f"{clients.postgres.servers.get(RG, 'dp-pw').id}"
    _connect(emu, fqdn, FIRST).close()
    refused = _refusal(emu, fqdn, "Not-The-Passw0rd")
    assert f'password authentication failed for user "{LOGIN}"' in refused
    # PATCH (what a rotation sends): the running server accepts only the new password.
    clients.postgres.servers.begin_update(
        RG,
        "dp-pw",
        pg.ServerForPatch(
            properties=pg.ServerPropertiesForPatch(administrator_login_password=SECOND)
        ),
    ).result()
    assert "password authentication failed" in _refusal(emu, fqdn, FIRST)
    _connect(emu, fqdn, SECOND).close()
    assert control(emu, "POST", "check-password", {"id": rid, "password": SECOND}) == {
        "match": True
    }
    # PUT with the first password again: the same, at once.
    clients.postgres.servers.begin_create_or_update(RG, "dp-pw", _server(FIRST)).result()
    _connect(emu, fqdn, FIRST).close()
    assert "password authentication failed" in _refusal(emu, fqdn, SECOND)
    # Neither password is in the server's files (only SCRAM verifiers reach it).
    server = emu.postgres.running()[rid.lower()]
    log_text = (server.directory / "postgres.log").read_text(errors="replace")
    conf_text = (server.data / "postgresql.conf").read_text()
    for secret in (FIRST, SECOND):
        assert secret not in log_text
        assert secret not in conf_text


@requires_postgres
def test_databases_follow_their_arm_resources(emu: Emulator, clients: Clients) -> None:
    _create(emu, clients, "dp-db")
    databases = clients.postgres.databases
    databases.begin_create(RG, "dp-db", "early", pg.Database()).result()
    fqdn = "dp-db.postgres.database.azure.com"
    with _connect(emu, fqdn, FIRST) as conn:  # starts the server: "early" exists already
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert {"postgres", "azure_maintenance", "azure_sys", "early"} <= names
    assert "langfuse" not in names
    databases.begin_create(RG, "dp-db", "langfuse", pg.Database()).result()
    with _connect(emu, fqdn, FIRST, dbname="langfuse") as conn:
        # What LangFuse's migrations do: create tables in schema public.
        conn.execute("CREATE TABLE migration_probe (id int)")
        conn.execute("INSERT INTO migration_probe VALUES (1)")
        assert conn.execute("SELECT count(*) FROM migration_probe").fetchone() == (1,)
    databases.begin_delete(RG, "dp-db", "langfuse").result()
    assert 'database "langfuse" does not exist' in _refusal(emu, fqdn, FIRST, dbname="langfuse")
    _connect(emu, fqdn, FIRST, dbname="early").close()


@requires_postgres
def test_the_public_entrance_answers_only_while_public_access_is_enabled(
    emu: Emulator, clients: Clients
) -> None:
    fqdn = _create(emu, clients, "dp-private", public="Disabled")
    with pytest.raises(urllib.error.HTTPError) as no_route:
        _route(emu, fqdn)
    assert no_route.value.code == 404
    assert emu.postgres.running() == {}  # nothing was started for it
    clients.postgres.servers.begin_update(
        RG,
        "dp-private",
        pg.ServerForPatch(
            properties=pg.ServerPropertiesForPatch(
                network=pg.Network(public_network_access="Enabled")
            )
        ),
    ).result()
    _connect(emu, fqdn, FIRST).close()


def _listening(port: int) -> list[str]:
    """Local addresses listening on ``port`` (IPv4 and IPv6), from /proc/net."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def _gone(pid: int, wait: float = 0.0) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for init counts as ended)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@requires_postgres
def test_it_listens_on_loopback_only_and_reset_leaves_no_process(
    emu: Emulator, clients: Clients
) -> None:
    fqdn = _create(emu, clients, "dp-net")
    _, port = _route(emu, fqdn)
    (server,) = emu.postgres.running().values()
    assert _listening(port) == ["0100007F"]  # 127.0.0.1 only: no 0.0.0.0, no IPv6
    assert server.directory.is_dir()
    control(emu, "POST", "reset")
    assert _gone(server.pid)
    assert not server.directory.exists()
    assert _listening(port) == []


@requires_postgres
def test_stop_leaves_no_process_and_no_directory() -> None:
    with Emulator(world="baseline") as emu:
        clients = Clients(AzureTarget.for_emulator(emu.info["arm"]))
        fqdn = _create(emu, clients, "dp-stop")
        _connect(emu, fqdn, FIRST).close()
        (server,) = emu.postgres.running().values()
    assert _gone(server.pid)
    assert not server.directory.exists()
    assert not server.directory.parent.exists()


# A child emulator process that starts one real server, prints its pid and directory, then
# leaves without Emulator.stop(): "exit" returns normally (atexit must stop the server), "kill"
# dies by SIGKILL (nothing runs; the next process's reaper must stop the server).
_CHILD = """
import json, os, signal, sys
from nsc_reconcile.emulator.app import Emulator
emu = Emulator().start()
rid = (f"/subscriptions/{emu.world.subscription_id}/resourceGroups/2dt-final-team4/providers/"
       "Microsoft.DBforPostgreSQL/flexibleServers/dp-child")
emu.world.create(rid, {"location": "koreacentral", "properties": {"version": "15",
    "administratorLogin": "childadmin", "administratorLoginPassword": "Child-Passw0rd-1"}})
server = emu.postgres.ensure(rid)
print(json.dumps({"pid": server.pid, "dir": str(server.directory)}), flush=True)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _child(how: str) -> tuple[int, Path, int]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, how], capture_output=True, text=True, timeout=120
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return int(found["pid"]), Path(found["dir"]), done.returncode


@requires_postgres
def test_no_server_outlives_the_emulator_process_that_started_it() -> None:
    pid, directory, code = _child("exit")
    assert code == 0
    assert _gone(pid, wait=5)  # stopped at exit
    assert not directory.exists()
    pid, directory, code = _child("kill")
    assert code == -signal.SIGKILL
    try:
        assert not _gone(pid)  # orphaned: nothing ran in the killed process
        reap_orphans()  # what the next emulator process does before its first server
        assert _gone(pid, wait=10)
        assert not directory.parent.exists()
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_without_server_binaries_the_route_says_why(
    emu: Emulator, clients: Clients, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(BIN_ENV, str(tmp_path))  # a directory without postgres in it
    fqdn = _create(emu, clients, "dp-nobin")
    with pytest.raises(urllib.error.HTTPError) as failed:
        _route(emu, fqdn)
    assert failed.value.code == 500
    message = json.loads(failed.value.read())["error"]["message"]
    assert message == f"PostgresUnavailable: {BIN_ENV}={tmp_path} holds no postgres and initdb"


def test_the_arm_kinds_work_without_a_real_server() -> None:
    """A world with no emulator around it (pure ARM): servers and databases as before."""
    world = build_world("baseline")
    assert data_plane(world) is None
    rid = (
        f"/subscriptions/{world.subscription_id}/resourceGroups/{RG}/providers/"
        "Microsoft.DBforPostgreSQL/flexibleServers/arm-only"
    )
    world.create(rid, _server(FIRST).as_dict())
    world.create(f"{rid}/databases/langfuse", {"properties": {}})
    assert world.get(f"{rid}/databases/langfuse") is not None
    assert world.password_matches(rid, FIRST) is True
