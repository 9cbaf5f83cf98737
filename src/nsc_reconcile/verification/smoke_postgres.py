"""Smoke test "postgres" (seed §5 phase 4): a client inside the VNet reaches each LangFuse
PostgreSQL server at its private endpoint, over TLS verified against the server's name, logs in
as its admin with the password kept in Key Vault, finds the LangFuse database and the declared
major version. Never connects to the business server. Sends one SELECT per login; writes
nothing. Evidence never holds the password (every message is scrubbed of it).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import psycopg

from nsc_reconcile import kinds
from nsc_reconcile.model.postgres import PostgresqlServer
from nsc_reconcile.verification.context import Run, make_check, props_of, same_id
from nsc_reconcile.verification.endpoints import endpoint_facts
from nsc_reconcile.verification.results import Check


def _link() -> kinds.PrivateLink:
    """The server kind's private-link facts (port, privatelink zone): nsc_reconcile.kinds."""
    link = kinds.private_link(PostgresqlServer.kind)
    if link is None:
        raise RuntimeError(f"{PostgresqlServer.kind} registers no private link")
    return link


PORT = _link().port
CONNECT_TIMEOUT = 10  # seconds, per connection
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL's SSLRequest message
# Where libpq looks for a password when none is given: a path that never exists, so the
# probe without TLS can never send one (no ~/.pgpass, no PGPASSWORD: the option is set).
_NO_PASSFILE = "/nonexistent/nsc-reconcile/pgpass"


@dataclass
class _Target:
    """One LangFuse server as the smoke reaches it."""

    server: PostgresqlServer
    fqdn: str
    login: str
    database: str | None
    arm_version: str
    ip: str = ""
    host: str = ""  # where to connect: the IP itself, or its loopback route on the emulator
    port: int = PORT

    def ids(self, what: str) -> str:
        return f"smoke-postgres-{what}/{self.server.name}"


def smoke_postgres(run: Run) -> list[Check]:
    """The ``postgres`` smoke: five checks per LangFuse server (connect, tls, login, database,
    version); a failed step skips the steps that need it."""
    servers = [s for s in run.state.postgresql_servers if s.role == "langfuse"]
    if not servers:
        return [
            make_check(
                "smoke-postgres",
                "Smoke: postgres",
                [],
                [],
                skip="no postgresql_servers entry with role langfuse",
            )
        ]
    checks: list[Check] = []
    for server in servers:
        checks += _smoke_server(run, server)
    return checks


def _skipped(run_ids: list[tuple[str, str]], reason: str) -> list[Check]:
    return [make_check(cid, title, [], [], skip=reason) for cid, title in run_ids]


def _smoke_server(run: Run, server: PostgresqlServer) -> list[Check]:
    name = server.name
    later = [
        (f"smoke-postgres-tls/{name}", f"{name}: TLS required and verified"),
        (f"smoke-postgres-login/{name}", f"{name}: admin login with the Key Vault password"),
        (f"smoke-postgres-database/{name}", f"{name}: the LangFuse database exists"),
        (f"smoke-postgres-version/{name}", f"{name}: the declared major version runs"),
    ]
    target, connect = _connect_check(run, server)
    if target is None:
        return [connect, *_skipped(later, f"needs smoke-postgres-connect/{name} to pass")]
    tls, handshake_ok = _tls_check(run, target)
    if not handshake_ok:
        return [connect, tls, *_skipped(later[1:], f"needs a verified TLS handshake with {name}")]
    return [connect, tls, *_login_checks(run, target)]


# ---- connect -----------------------------------------------------------------------------------
def _connect_check(run: Run, server: PostgresqlServer) -> tuple[_Target | None, Check]:
    """DNS inside the VNet gives the private endpoint's IP (through the privatelink CNAME) and
    something answers at IP:PORT."""
    cid, title = f"smoke-postgres-connect/{server.name}", f"{server.name}: reachable on {PORT}"
    wire = run.wire(server.address)
    if wire is None:
        return None, make_check(
            cid, title, [f"expected id={run.id_of(server.address)}"], ["the server does not exist"]
        )
    for other in run.state.existing.postgresql_servers:
        if other.role == "business" and same_id(run.id_of(other.address), str(wire.get("id"))):
            return None, make_check(
                cid,
                title,
                [f"id={wire.get('id')}"],
                [f"it is the business server {other.name}: not connected to"],
            )
    props = props_of(wire)
    fqdn = str(props.get("fullyQualifiedDomainName") or "")
    login = str(props.get("administratorLogin") or "")
    if not fqdn or not login:
        return None, make_check(
            cid,
            title,
            [f"id={wire.get('id')}"],
            ["live state has no fullyQualifiedDomainName or administratorLogin"],
        )
    database = _langfuse_database(run, server)
    target = _Target(server, fqdn, login, database, str(props.get("version") or "?"))
    try:
        found = run.network.resolve(fqdn)
    except Exception as error:
        return None, make_check(cid, title, [fqdn], [f"DNS query failed: {_describe(error)}"])
    evidence = [found.describe()]
    problems = []
    expected = _endpoint_ip(run, server)
    if not found.addresses:
        problems.append(f"{fqdn} does not resolve ({found.rcode})")
    elif expected is None:
        problems.append("no private endpoint with a NIC IP is declared for the server")
    elif expected not in found.addresses:
        problems.append(
            f"{fqdn} resolves to {', '.join(found.addresses)}, not the private "
            f"endpoint's IP {expected}"
        )
    privatelink = f"{server.name}.{_link().zones[0]}"
    if found.chain and privatelink not in found.chain:
        problems.append(f"not resolved through the privatelink zone (no CNAME to {privatelink})")
    if problems:
        return None, make_check(cid, title, evidence, problems)
    target.ip = expected or found.addresses[0]
    try:
        target.host, target.port = run.network.dial(target.ip, PORT)
        socket.create_connection((target.host, target.port), timeout=CONNECT_TIMEOUT).close()
    except Exception as error:
        return None, make_check(
            cid, title, evidence, [f"nothing answers at {target.ip}:{PORT}: {_describe(error)}"]
        )
    via = f" (emulator route {target.host}:{target.port})" if run.network.emulated else ""
    evidence.append(f"{target.ip}:{PORT} answers{via}, from {run.origin}")
    return target, make_check(cid, title, evidence, [])


def _langfuse_database(run: Run, server: PostgresqlServer) -> str | None:
    """The database LangFuse uses on ``server``: the langfuse section's, else the first
    declared one."""
    langfuse = run.state.langfuse
    if langfuse is not None:
        wanted = langfuse.database.server.removeprefix("postgresql_server/")
        if wanted == server.name:
            return langfuse.database.database
    return server.databases[0].name if server.databases else None


def _endpoint_ip(run: Run, server: PostgresqlServer) -> str | None:
    for endpoint in run.state.private_endpoints:
        if endpoint.target == server.address:
            ip = endpoint_facts(run, endpoint).ip
            if ip:
                return ip
    return None


# ---- tls ---------------------------------------------------------------------------------------
def _tls_check(run: Run, target: _Target) -> tuple[Check, bool]:
    """The server speaks TLS with a certificate valid for its FQDN (verified against the
    emulator's CA, or the system trust store on Azure), and refuses a connection without
    TLS (probed with no password at all)."""
    cid, title = target.ids("tls"), f"{target.server.name}: TLS required and verified"
    trust = "the emulator's CA" if run.network.ca_cert else "the system trust store"
    try:
        version, cipher, names, issuer = _handshake(run, target)
    except ssl.SSLCertVerificationError as error:
        reason = error.verify_message or str(error)
        return make_check(
            cid,
            title,
            [f"verified against {trust}"],
            [f"the certificate is not valid for {target.fqdn}: {reason}"],
        ), False
    except Exception as error:
        return make_check(cid, title, [], [f"TLS handshake failed: {_describe(error)}"]), False
    evidence = [
        f"{version} {cipher}",
        f"certificate for {', '.join(names) or '(no matching name)'} issued by {issuer}, "
        f"verified for {target.fqdn} against {trust}",
    ]
    problems = []
    plain = _plaintext_probe(target)
    if plain is None:
        evidence.append("a connection without TLS is refused (no pg_hba.conf entry: no encryption)")
    else:
        problems.append(plain)
    return make_check(cid, title, evidence, problems), True


def _handshake(run: Run, target: _Target) -> tuple[str, str, list[str], str]:
    """SSLRequest, then a TLS handshake verified against the FQDN: (protocol, cipher, the
    certificate's names matching the FQDN, its issuer)."""
    context = run.network.ssl_context()
    with socket.create_connection((target.host, target.port), timeout=CONNECT_TIMEOUT) as raw:
        raw.sendall(_SSL_REQUEST)
        answer = raw.recv(1)
        if answer != b"S":
            raise ConnectionError(f"the server does not offer TLS (answered {answer!r})")
        with context.wrap_socket(raw, server_hostname=target.fqdn) as tls:
            cert: dict[str, Any] = tls.getpeercert() or {}
            cipher = (tls.cipher() or ("?",))[0]
            version = tls.version() or "?"
    names = [str(v) for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
    matching = [n for n in names if _name_matches(n, target.fqdn)]
    issuer = {k: v for part in cert.get("issuer", ()) for k, v in part}
    who = issuer.get("commonName") or issuer.get("organizationName") or "?"
    return version, cipher, matching, str(who)


def _name_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower(), host.lower()
    if pattern.startswith("*."):
        return host.partition(".")[2] == pattern[2:]
    return pattern == host


def _plaintext_probe(target: _Target) -> str | None:
    """None when a connection without TLS is refused; else the problem. Sends no password."""
    try:
        conn = psycopg.connect(
            host=target.fqdn,
            hostaddr=target.host,
            port=target.port,
            user=target.login,
            password="",  # none: libpq must not find one either (passfile)
            passfile=_NO_PASSFILE,
            dbname=target.database or "postgres",
            sslmode="disable",
            connect_timeout=CONNECT_TIMEOUT,
        )
    except psycopg.OperationalError as error:
        text = str(error)
        if "no encryption" in text or "SSL" in text:
            return None
        if "no password supplied" in text:
            return "the server accepts connections without TLS (it asked for a password)"
        return f"a connection without TLS was refused for another reason: {_one_line(text)}"
    conn.close()
    return "the server accepts connections without TLS and without a password"


# ---- login, database, version ------------------------------------------------------------------
def _login_checks(run: Run, target: _Target) -> list[Check]:
    name = target.server.name
    secret = target.server.admin_password.key_vault_secret
    login_id, login_title = target.ids("login"), f"{name}: admin login with the Key Vault password"
    db_id, db_title = target.ids("database"), f"{name}: the LangFuse database exists"
    version_id = target.ids("version")
    version_title = f"{name}: runs PostgreSQL {target.server.version}"
    try:
        password = run.secret_value(secret)
    except Exception as error:
        return [
            make_check(
                login_id,
                login_title,
                [f"Key Vault secret {secret}"],
                [f"could not read Key Vault secret {secret}: {_describe(error)}"],
            ),
            make_check(db_id, db_title, [], [], skip="needs the admin login"),
            make_check(version_id, version_title, [], [], skip="needs the admin login"),
        ]
    database = target.database
    missing_database = False
    try:
        with _session(run, target, database or "postgres", password) as conn:
            login, facts = _login_evidence(conn, target, secret)
            db_check = _database_check(conn, target, db_id, db_title)
            version = _version_check(conn, target, version_id, version_title)
    except psycopg.OperationalError as error:
        text = _scrub(str(error), password)
        if database is None or f'database "{database}" does not exist' not in text:
            problem = _login_problem(text, target, secret)
            return [
                make_check(
                    login_id, login_title, [f"user {target.login}, Key Vault {secret}"], [problem]
                ),
                make_check(db_id, db_title, [], [], skip="needs the admin login"),
                make_check(version_id, version_title, [], [], skip="needs the admin login"),
            ]
        missing_database = True
    if missing_database:  # the login worked (PostgreSQL checks the database after it)
        try:
            with _session(run, target, "postgres", password) as conn:
                login, facts = _login_evidence(conn, target, secret)
                names = [
                    r[0]
                    for r in conn.execute(
                        "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname"
                    )
                ]
                version = _version_check(conn, target, version_id, version_title)
        except psycopg.OperationalError as error:
            text = _scrub(str(error), password)
            return [
                make_check(login_id, login_title, [], [_login_problem(text, target, secret)]),
                make_check(db_id, db_title, [], [], skip="needs the admin login"),
                make_check(version_id, version_title, [], [], skip="needs the admin login"),
            ]
        db_check = make_check(
            db_id,
            db_title,
            [f"databases: {', '.join(names)}"],
            [f'database "{database}" does not exist on {name}'],
        )
    checks = [make_check(login_id, login_title, [login, facts], []), db_check, version]
    return [_scrubbed(c, password) for c in checks]


@contextlib.contextmanager
def _session(run: Run, target: _Target, dbname: str, password: str) -> Iterator[Any]:
    """A connection as LangFuse makes it: TLS verify-full against the FQDN, at the address
    DNS gave (``hostaddr``), never re-resolved by libpq."""
    with psycopg.connect(
        host=target.fqdn,
        hostaddr=target.host,
        port=target.port,
        user=target.login,
        password=password,
        dbname=dbname,
        sslmode="verify-full",
        sslrootcert=run.network.ca_cert or "system",
        connect_timeout=CONNECT_TIMEOUT,
        application_name="nsc-reconcile-verify",
        autocommit=True,
    ) as conn:
        yield conn


def _login_evidence(conn: Any, target: _Target, secret: str) -> tuple[str, str]:
    row = conn.execute(
        "SELECT 1, current_user, current_database(), s.version, s.cipher "
        "FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()"
    ).fetchone()
    one, user, database, protocol, cipher = row if row else (None, "?", "?", None, None)
    login = (
        f"logged in as {user} to {database} at {target.fqdn} with the password in Key "
        f"Vault {secret} (sslmode=verify-full)"
    )
    facts = f"SELECT 1 -> {one}; session TLS {protocol or 'off'} {cipher or ''}".strip()
    return login, facts


def _database_check(conn: Any, target: _Target, cid: str, title: str) -> Check:
    if target.database is None:
        return make_check(cid, title, [], [], skip="no LangFuse database declared")
    row = conn.execute(
        "SELECT current_database(), pg_get_userbyid(d.datdba), "
        "has_schema_privilege('public', 'CREATE') "
        "FROM pg_database d WHERE d.datname = current_database()"
    ).fetchone()
    name, owner, can_create = row if row else ("?", "?", False)
    evidence = [f"connected to database {name} (owner {owner})"]
    problems = []
    if can_create:
        evidence.append(f"{target.login} may create tables in its schema public")
    else:
        problems.append(
            f"{target.login} may not create tables in {name}'s schema public "
            "(LangFuse's migrations would fail)"
        )
    return make_check(cid, title, evidence, problems)


def _version_check(conn: Any, target: _Target, cid: str, title: str) -> Check:
    shown = str((conn.execute("SHOW server_version").fetchone() or ("?",))[0])
    major = conn.info.server_version // 10000
    declared = target.server.version
    evidence = [f"server_version {shown}", f"declared {declared}", f"ARM {target.arm_version}"]
    problems = []
    if str(major) != declared:
        problems.append(f"the server runs PostgreSQL {major}, declared {declared}")
    return make_check(cid, title, evidence, problems)


def _login_problem(text: str, target: _Target, secret: str) -> str:
    if "password authentication failed" in text:
        return (
            f"password authentication failed for user {target.login}: the value in Key "
            f"Vault {secret} is not the server's"
        )
    if "certificate" in text:
        return f"TLS verification failed for {target.fqdn}: {_one_line(text)}"
    return f"login failed: {_one_line(text)}"


# ---- text -------------------------------------------------------------------------------------
def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):  # the emulator's route call answered an error
        with contextlib.suppress(Exception):
            body = json.loads(error.read() or b"{}")
            message = (body.get("error") or {}).get("message")
            if message:
                return _one_line(f"{error.code} {message}")
    return _one_line(f"{type(error).__name__}: {error}")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line.removeprefix("connection failed: ")


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "(sensitive)") if secret else text


def _scrubbed(check: Check, secret: str) -> Check:
    return replace(
        check, evidence=_scrub(check.evidence, secret), detail=_scrub(check.detail, secret)
    )
