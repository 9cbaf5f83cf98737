"""`scan-docs` through the real CLI: credentials in a document (a Key Vault value written with
the real SecretClient to the emulator, a postgres:// URL with a password, a Databricks token,
a JWT, a LangFuse key) are flagged with file:line:column and kind, exit 1, and no value ever
reaches stdout, stderr or JSON; clean documents (the repository's own included) exit 0; the
baseline accepts a false positive, follows a moved line, and still fails a new finding."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient

import nsc_reconcile
from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.cli import main
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.model.secrets import Generate
from nsc_reconcile.resources.vault_writer import generate
from tests.paths import DESIRED_STATE, ROOT

PG_PASSWORD = "Xq7-rT2v9LmW4kZp"  # in a URL only, not in Key Vault: the detectors find it
DAPI = "dapi" + "0f" * 16 + "-3"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJuc2MtYWdlbnQiLCJpYXQiOjE3MDAwMDAwMDB9."
    "Qm9ndXNTaWduYXR1cmVGb3JUZXN0c09ubHlYWFhYWFhYWA"
)
LANGFUSE = "sk-lf-" + "3c9e" * 8


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["scan-docs", *args])
    code = exit_info.value.code
    captured = capsys.readouterr()
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def assert_not_leaked(text: str, *values: str) -> None:
    """No value, nor any 8-character piece of one, appears in ``text``."""
    for value in values:
        for start in range(len(value) - 7):
            assert value[start : start + 8] not in text, "part of a value was printed"


def test_credentials_are_flagged_by_place_and_kind_never_by_value(
    emu: Emulator, vault_client: SecretClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password = generate(Generate(length=40))  # as apply generates langfuse-pg-admin-password
    nextauth = "n3xt/auth+Secret=" + generate(Generate(length=16))
    vault_client.set_secret("langfuse-pg-admin-password", password)
    vault_client.set_secret("langfuse-nextauth-secret", nextauth)
    doc = tmp_path / "TEAM_NOTES.md"
    doc.write_text(
        "# Team notes\n"
        f"The LangFuse database admin logs in with {password} for now.\n"
        f"Business DB: postgres://analyst:{PG_PASSWORD}@nsc-pg-dev.postgres.database.azure.com/app\n"
        f"    databricks token `{DAPI}`\n"
        f"Authorization: Bearer {JWT}\n"
        f"LANGFUSE_SECRET_KEY={LANGFUSE}\n"
        f"NEXTAUTH_URL_SECRET={urllib.parse.quote(nextauth, safe='')}\n",
        encoding="utf-8",
    )
    encoded = urllib.parse.quote(nextauth, safe="")
    values = (password, nextauth, encoded, PG_PASSWORD, DAPI, JWT, LANGFUSE)
    state = ["--desired-state", str(DESIRED_STATE), "--emulator", emu.info["arm"]]

    code, out, err = run(capsys, str(doc), *state)

    assert code == 1
    assert out.splitlines() == [
        f"{doc}:2:42: Key Vault secret value (Key Vault key langfuse-pg-admin-password)",
        f"{doc}:3:33: Basic Auth Credentials",
        f"{doc}:4:23: Databricks Personal Access Token",
        f"{doc}:5:23: JSON Web Token",
        f"{doc}:6:21: LangFuse API Key",
        f"{doc}:7:21: Key Vault secret value (URL-encoded) (Key Vault key langfuse-nextauth-secret)",
    ]
    assert "6 finding(s)" in err
    assert_not_leaked(out + err, *values)

    code, out, err = run(capsys, str(doc), *state, "--format", "json")
    assert code == 1
    findings = json.loads(out)["findings"]
    assert [(f["line"], f["column"], f["type"], f.get("key")) for f in findings] == [
        (2, 42, "Key Vault secret value", "langfuse-pg-admin-password"),
        (3, 33, "Basic Auth Credentials", None),
        (4, 23, "Databricks Personal Access Token", None),
        (5, 23, "JSON Web Token", None),
        (6, 21, "LangFuse API Key", None),
        (7, 21, "Key Vault secret value (URL-encoded)", "langfuse-nextauth-secret"),
    ]
    assert_not_leaked(out + err, *values)

    # A Key Vault value is never accepted: it must be removed (and rotated).
    baseline = tmp_path / ".nsc-scan-baseline.json"
    code, out, err = run(capsys, str(doc), *state, "--baseline", str(baseline), "--update-baseline")
    assert code == 1
    assert [line.split(": ", 1)[1] for line in out.splitlines()] == [
        "Key Vault secret value (Key Vault key langfuse-pg-admin-password)",
        "Key Vault secret value (URL-encoded) (Key Vault key langfuse-nextauth-secret)",
    ]
    assert_not_leaked(out + err + baseline.read_text(encoding="utf-8"), *values)


def test_clean_documents_and_the_repository_docs_scan_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = tmp_path / "clean.md"
    clean.write_text(
        "# Credentials\n"
        "The admin password: kept in Key Vault as `langfuse-pg-admin-password`.\n"
        "secret: langfuse-secret-key\n"
        "Connect with postgres://langfuseadmin@nsc-pg-langfuse-dev.postgres.database.azure.com\n"
        'password = "${LANGFUSE_PG_PASSWORD}"\n'
        '"state_digest": "9c1f0a3b5d7e2f41"\n'
        "Endpoint IP 10.10.1.4, public 20.41.7.9, id 2f1c9a57-8d3e-4b6a-9f0e-1c2d3e4f5a6b.\n",
        encoding="utf-8",
    )
    paths = [str(clean), str(ROOT / "docs"), str(ROOT / "README.md")]

    code, out, err = run(capsys, *paths)

    assert (code, out) == (0, ""), out
    assert "0 finding(s)" in err


def test_generated_documents_scan_clean_against_every_key_vault_value(
    emu: Emulator,
    clients: Clients,
    ctl: Callable[..., Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After apply (every generated and output secret in Key Vault), the documents `docs`
    renders (Infra_Manual sections, TEAM_CREDENTIALS.md) hold no value and no credential."""
    from nsc_reconcile.documents import render_documents
    from nsc_reconcile.engine import Engine

    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    state = load_desired_state(DESIRED_STATE)
    applied = nsc_reconcile.apply(nsc_reconcile.plan(state, clients), state, clients)
    assert applied.ok, applied.render()
    _, sections = render_documents(Engine(state, clients))
    for name, text in sections.items():
        (tmp_path / f"{name}.md").write_text(text, encoding="utf-8")
    state_args = ["--desired-state", str(DESIRED_STATE), "--emulator", emu.info["arm"]]

    code, out, err = run(capsys, str(tmp_path), *state_args)

    assert (code, out) == (0, ""), out
    assert f"scanned {len(sections)} file(s): 0 finding(s)" in err
    assert "not compared" not in err  # every sensitive key had a value to look for


def test_baseline_accepts_a_finding_follows_a_moved_line_and_fails_a_new_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    example = docs / "example.md"
    accepted_line = f"Example (revoked) token: {DAPI}\n"
    example.write_text("# Example\n" + accepted_line, encoding="utf-8")
    baseline = tmp_path / ".nsc-scan-baseline.json"

    assert run(capsys, str(docs), "--baseline", str(baseline))[0] == 1
    code, _, err = run(capsys, str(docs), "--baseline", str(baseline), "--update-baseline")
    assert code == 0
    assert "1 accepted finding(s)" in err
    saved = json.loads(baseline.read_text(encoding="utf-8"))
    assert [(e["file"], e["type"]) for e in saved["accepted"]] == [
        ("docs/example.md", "Databricks Personal Access Token")
    ]
    assert_not_leaked(baseline.read_text(encoding="utf-8"), DAPI)

    example.write_text("# Example\n\nMoved down.\n\n" + accepted_line, encoding="utf-8")
    code, out, err = run(capsys, str(docs), "--baseline", str(baseline))
    assert (code, out) == (0, "")
    assert "1 accepted by the baseline" in err

    other = "dapi" + "a1" * 16
    example.write_text("# Example\n" + accepted_line + f"New: {other}\n", encoding="utf-8")
    code, out, _ = run(capsys, str(docs), "--baseline", str(baseline))
    assert code == 1
    assert out.splitlines() == [f"{example}:3:6: Databricks Personal Access Token"]


def test_a_missing_path_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.md"

    code, out, err = run(capsys, str(ROOT / "README.md"), str(missing))

    assert (code, out) == (1, "")
    assert f"no such file or directory: {missing}" in err
    assert "Traceback" not in err
