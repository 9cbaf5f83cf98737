"""The ``postgres`` smoke against the emulator's real PostgreSQL, with the real clients (the
SDKs for ARM and Key Vault, psycopg for the server, the emulator's DNS): after applying the
repository's desired state it connects to the LangFuse server through its private endpoint
and passes with evidence; a wrong password in Key Vault, a dropped LangFuse database and a
version mismatch each fail exactly their check, naming the cause, never showing a secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.verification import Status, VerifyReport
from tests.conftest import verify_on
from tests.paths import DESIRED_STATE
from tests.realpg import pg_connect, requires_postgres

RG = "2dt-final-team4"
SERVER = "nsc-pg-langfuse-dev"
FQDN = f"{SERVER}.postgres.database.azure.com"
SECRET = "langfuse-pg-admin-password"
STEPS = ("connect", "tls", "login", "database", "version")
IDS = [f"smoke-postgres-{step}/{SERVER}" for step in STEPS]


def _smoke(state: DesiredState, emu: Emulator) -> VerifyReport:
    return verify_on(state, emu, smoke=["postgres"])


def _statuses(report: VerifyReport) -> dict[str, Status]:
    return {c.id: c.status for c in report.checks if c.id.startswith("smoke-postgres")}


def _assert_secret_free(report: VerifyReport, *secrets: str) -> None:
    for fmt in ("text", "json", "markdown", "junit"):
        rendered = report.render(fmt)
        for secret in secrets:
            assert secret not in rendered, f"a secret reached the {fmt} report"


@requires_postgres
def test_after_apply_the_postgres_smoke_passes_with_evidence(
    applied: DesiredState, emu: Emulator, vault_client: SecretClient
) -> None:
    report = _smoke(applied, emu)
    assert report.ok, report.render()
    assert _statuses(report) == dict.fromkeys(IDS, Status.PASS)
    connect = report.get(IDS[0]).evidence
    # The private path: the FQDN's CNAME into the privatelink zone, the endpoint's NIC IP.
    assert f"{FQDN} -> {SERVER}.privatelink.postgres.database.azure.com = 10.10.1." in connect
    assert ":5432 answers (emulator route 127.0.0.1:" in connect
    tls = report.get(IDS[1]).evidence
    assert "TLSv1.3" in tls or "TLSv1.2" in tls
    assert "certificate for *.postgres.database.azure.com issued by" in tls
    assert f"verified for {FQDN} against the emulator's CA" in tls
    assert "a connection without TLS is refused" in tls
    login = report.get(IDS[2]).evidence
    assert f"logged in as langfuseadmin to langfuse at {FQDN}" in login
    assert f"Key Vault {SECRET}" in login
    assert "SELECT 1 -> 1" in login
    database = report.get(IDS[3]).evidence
    assert "connected to database langfuse (owner azure_pg_admin)" in database
    assert "may create tables in its schema public" in database
    version = report.get(IDS[4]).evidence
    assert "server_version 15." in version
    assert "declared 15" in version
    password = vault_client.get_secret(SECRET).value
    assert password
    _assert_secret_free(report, password)


@requires_postgres
def test_a_wrong_password_in_key_vault_fails_the_login_naming_the_secret(
    applied: DesiredState, emu: Emulator, vault_client: SecretClient
) -> None:
    right = vault_client.get_secret(SECRET).value
    wrong = "Wrong-but-plausible-Passw0rd-1234567890"
    vault_client.set_secret(SECRET, wrong)  # a new version, as a careless rotation would
    report = _smoke(applied, emu)
    statuses = _statuses(report)
    assert statuses == {
        IDS[0]: Status.PASS,
        IDS[1]: Status.PASS,
        IDS[2]: Status.FAIL,
        IDS[3]: Status.SKIP,
        IDS[4]: Status.SKIP,
    }
    login = report.get(IDS[2])
    assert login.detail == (
        f"password authentication failed for user langfuseadmin: the value in Key Vault "
        f"{SECRET} is not the server's"
    )
    assert right
    _assert_secret_free(report, right, wrong)


@requires_postgres
def test_a_dropped_langfuse_database_fails_the_database_check(
    applied: DesiredState, emu: Emulator, clients: Clients, vault_client: SecretClient
) -> None:
    password = vault_client.get_secret(SECRET).value
    assert password
    # Dropped on the real server by its admin, out of band: ARM still lists the database, the
    # smoke sees what the server has.
    server_id = str(clients.postgres.servers.get(RG, SERVER).id)
    to = emu.postgres.ensure(server_id).address
    with pg_connect(FQDN, to, emu.info["ca_cert"], "langfuseadmin", password) as conn:
        conn.execute("DROP DATABASE langfuse WITH (FORCE)")
    assert clients.postgres.databases.get(RG, SERVER, "langfuse").name == "langfuse"
    report = _smoke(applied, emu)
    assert _statuses(report) == {
        IDS[0]: Status.PASS,
        IDS[1]: Status.PASS,
        IDS[2]: Status.PASS,
        IDS[3]: Status.FAIL,
        IDS[4]: Status.PASS,
    }
    database = report.get(IDS[3])
    assert database.detail == f'database "langfuse" does not exist on {SERVER}'
    assert "databases: azure_maintenance, azure_sys, postgres" in database.evidence
    assert "logged in as langfuseadmin to postgres" in report.get(IDS[2]).evidence
    _assert_secret_free(report, password)


@requires_postgres
@pytest.mark.usefixtures("applied")
def test_a_declared_version_the_server_does_not_run_fails_the_version_check(
    emu: Emulator, tmp_path: Path
) -> None:
    text = DESIRED_STATE.read_text(encoding="utf-8").replace('version: "15"', 'version: "16"')
    (tmp_path / "desired_state.yaml").write_text(text, encoding="utf-8")
    declared_16 = load_desired_state(tmp_path / "desired_state.yaml")
    report = _smoke(declared_16, emu)
    statuses = _statuses(report)
    assert statuses[IDS[4]] is Status.FAIL
    assert report.get(IDS[4]).detail == "the server runs PostgreSQL 15, declared 16"
    assert {statuses[i] for i in IDS[:4]} == {Status.PASS}


def test_before_apply_the_connect_check_fails_and_the_rest_is_skipped(
    emu: Emulator, ctl: Callable[..., Any]
) -> None:
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    report = _smoke(load_desired_state(DESIRED_STATE), emu)
    assert _statuses(report) == {IDS[0]: Status.FAIL, **dict.fromkeys(IDS[1:], Status.SKIP)}
    assert report.get(IDS[0]).detail == "the server does not exist"
    assert emu.postgres.running() == {}  # the business server was never started, nor touched
