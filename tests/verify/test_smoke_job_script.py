"""The in-network smoke script (``verification/incluster/smoke_job.py``) piece by piece: SCRAM-
SHA-256 against RFC 7677's test vector, the stdlib DNS client against the emulator's DNS server
(the same answers dnspython gets), routes that never leave loopback, the JSON lines it prints
(SKIP naming what is missing, secrets masked), and that it stays standard library, Python 3.9.
The PostgreSQL/OpenAI/LangFuse exchanges run for real in tests/verify/test_smoke_from_aks.py."""

from __future__ import annotations

import ast
import base64
import io
import json
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import PG_SERVER_NAME
from nsc_reconcile.verification.incluster import smoke_job as sj
from nsc_reconcile.verification.resolver import resolve_a
from nsc_reconcile.verification.smoke_from import script_text

SCRIPT = Path(sj.__file__)

# RFC 7677 section 3 (SCRAM-SHA-256 test vector).
RFC_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = (
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
RFC_SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def _dns(emu: Emulator) -> tuple[str, int]:
    host, _, port = emu.info["dns"].rpartition(":")
    return host, int(port)


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------- SCRAM
def test_scram_matches_the_rfc_7677_test_vector() -> None:
    first, bare = sj.scram_client_first("user", RFC_NONCE)
    assert first == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final, server_signature = sj.scram_client_final("pencil", bare, RFC_SERVER_FIRST, RFC_NONCE)
    assert final == RFC_CLIENT_FINAL
    assert sj.scram_server_final_ok(RFC_SERVER_FINAL, server_signature)


def test_scram_refuses_a_server_that_does_not_know_the_password() -> None:
    _, bare = sj.scram_client_first("user", RFC_NONCE)
    _, expected = sj.scram_client_final("pencil", bare, RFC_SERVER_FIRST, RFC_NONCE)
    forged = "v=" + base64.b64encode(b"\x00" * 32).decode()
    assert not sj.scram_server_final_ok(forged, expected)
    with pytest.raises(sj.SmokeError, match="invalid-proof"):
        sj.scram_server_final_ok("e=invalid-proof", expected)
    # A server nonce that does not extend ours is a replay or a confused server.
    with pytest.raises(sj.SmokeError, match="server-first"):
        sj.scram_client_final(
            "pencil", bare, "r=someone-else,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", RFC_NONCE
        )


def test_scram_username_is_escaped_as_the_rfc_says() -> None:
    first, _ = sj.scram_client_first("a=b,c", "nonce")
    assert first == "n,,n=a=3Db=2Cc,r=nonce"


# ---------------------------------------------------------------------------------- DNS
def test_dns_client_follows_the_privatelink_cname_like_dnspython(emu: Emulator) -> None:
    name = f"{PG_SERVER_NAME}.postgres.database.azure.com"
    found = sj.resolve_with(name, _dns(emu), timeout=3)
    rcode, chain, addresses = resolve_a(name, _dns(emu))  # the product's dnspython query
    assert (found.rcode, found.chain, found.addresses) == (rcode, chain, addresses)
    assert found.chain == [f"{PG_SERVER_NAME}.privatelink.postgres.database.azure.com"]
    assert found.addresses == ["10.10.1.4"]
    assert found.describe() == (
        f"{name} -> CNAME {PG_SERVER_NAME}.privatelink.postgres.database.azure.com -> A 10.10.1.4"
    )


def test_dns_client_reports_nxdomain_and_the_public_answer(emu: Emulator) -> None:
    missing = sj.resolve_with("nope.privatelink.postgres.database.azure.com", _dns(emu), 3)
    assert (missing.rcode, missing.addresses) == ("NXDOMAIN", [])
    net = sj.Network(_dns(emu), None, 3, None)
    with pytest.raises(sj.SmokeError, match="does not resolve"):
        sj.check_dns_name("nope.privatelink.postgres.database.azure.com", None, net)
    # A name answered with an address other than the expected private IP is a FAIL.
    with pytest.raises(sj.SmokeError, match=r"expected 10\.10\.1\.9"):
        sj.check_dns_name(f"{PG_SERVER_NAME}.postgres.database.azure.com", "10.10.1.9", net)
    evidence, _ = sj.check_dns_name(f"{PG_SERVER_NAME}.postgres.database.azure.com", None, net)
    assert "A 10.10.1.4" in evidence
    assert f"DNS server {emu.info['dns']}" in evidence


def test_dns_client_rejects_compression_loops_and_foreign_answers() -> None:
    header = struct.pack("!HHHHHH", 7, 0x8180, 0, 1, 0, 0)
    looping = header + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x0a\x00\x00\x01"
    with pytest.raises(sj.SmokeError, match="loop"):
        sj.parse_response(looping, 7)
    with pytest.raises(sj.SmokeError, match="another query"):
        sj.parse_response(looping, 8)


# ---------------------------------------------------------------------------------- routes
def test_routes_are_the_only_way_out_when_given() -> None:
    net = sj.Network(None, {"10.10.1.5:443": "127.0.0.1:4443"}, 1, None)
    assert net.dial("10.10.1.5", 443) == ("127.0.0.1", 4443)
    with pytest.raises(sj.NoRouteError, match=r"10\.10\.1\.6:5432"):
        net.dial("10.10.1.6", 5432)  # never dialled directly
    leaking = sj.Network(None, {"10.10.1.5:443": "20.1.2.3:443"}, 1, None)
    with pytest.raises(sj.NoRouteError, match="leaves loopback"):
        leaking.dial("10.10.1.5", 443)
    # Without routes (a real cluster) the address itself is dialled.
    assert sj.Network(None, None, 1, None).dial("10.10.1.6", 5432) == ("10.10.1.6", 5432)


def test_a_connection_goes_to_the_route_of_the_resolved_address() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        net = sj.Network(None, {"10.10.1.7:5432": f"127.0.0.1:{port}"}, 2, None)
        sock, where = net.connect("10.10.1.7", 5432)
        sock.close()
    assert where == f"10.10.1.7:5432 via route 127.0.0.1:{port}"


# ---------------------------------------------------------------------------------- output
def test_unconfigured_checks_skip_naming_what_is_missing() -> None:
    out = io.StringIO()
    code = sj.main({"NSC_SMOKE_ROUTES": "{}"}, out)
    lines = _lines(out.getvalue())
    assert code == 0
    assert [(line["check"], line["status"]) for line in lines] == [
        ("dns", "SKIP"), ("postgres", "SKIP"), ("openai", "SKIP"), ("langfuse", "SKIP"),
    ]  # fmt: skip
    assert "NSC_SMOKE_PG_PASSWORD" in str(lines[1]["detail"])
    assert set(lines[0]) == {"check", "target", "status", "evidence", "detail", "ms"}


def test_bad_configuration_exits_2() -> None:
    out = io.StringIO()
    assert sj.main({"NSC_SMOKE_CHECKS": "dns,telnet"}, out) == 2
    assert "telnet" in str(_lines(out.getvalue())[0]["detail"])
    out = io.StringIO()
    assert sj.main({"NSC_SMOKE_ROUTES": "[1, 2]"}, out) == 2


def test_a_failure_is_a_fail_line_with_every_secret_masked() -> None:
    password = "pg-Secret-Value-123"
    env = {
        "NSC_SMOKE_CHECKS": "postgres",
        "NSC_SMOKE_PG_HOST": "10.10.1.6",
        "NSC_SMOKE_PG_USER": "langfuseadmin",
        "NSC_SMOKE_PG_DATABASE": "langfuse",
        "NSC_SMOKE_PG_PASSWORD": password,
        "NSC_SMOKE_ROUTES": "{}",  # nothing answers: never dialled
    }
    out = io.StringIO()
    assert sj.main(env, out) == 1
    (line,) = _lines(out.getvalue())
    assert line["status"] == "FAIL"
    assert "nothing answers at 10.10.1.6:5432" in str(line["detail"])
    reporter = sj.Reporter(env, io.StringIO())

    def leaky() -> tuple[str, str]:
        raise sj.SmokeError(f"server said: bad password {password!r}")

    reporter.run("postgres", "x", leaky)
    assert password not in reporter.out.getvalue()
    assert "***" in reporter.out.getvalue()


# ---------------------------------------------------------------------------------- portability
def test_the_script_is_python_3_9_and_standard_library_only() -> None:
    source = script_text()
    assert source == SCRIPT.read_text(encoding="utf-8")  # shipped as package data
    tree = ast.parse(source, feature_version=(3, 9))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        str(node.module).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_the_script_runs_as_a_file_in_a_clean_environment(tmp_path: Path) -> None:
    copy = tmp_path / "smoke_job.py"
    copy.write_text(script_text(), encoding="utf-8")
    env = {"NSC_SMOKE_CHECKS": "dns", "NSC_SMOKE_DNS_NAMES": "", "NSC_SMOKE_ROUTES": "{}"}
    done = subprocess.run(
        [sys.executable, "-I", str(copy)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _lines(done.stdout) == [
        {"check": "dns", "target": "", "status": "SKIP", "evidence": "",
         "detail": "not configured: NSC_SMOKE_DNS_NAMES", "ms": 0}
    ]  # fmt: skip
