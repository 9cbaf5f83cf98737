"""The conventions Terraform and az CLI users carry (issue 12 item 6), through the real CLI:
--version, bare invocation, exit codes in every help, --debug/--verbose after the command, the
HTTP log with credentials redacted, --subscription and its precedence, authentication errors
that name their cause (real azure-identity credentials failing, loopback only), --emulator=URL,
a --target typo, any overlay for --env, shell completion."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient

from nsc_reconcile.cli import cli
from nsc_reconcile.cli_conventions import (
    EXIT_CODES,
    normalize_emulator,
    resolve_subscription,
)
from nsc_reconcile.emulator.app import Emulator
from tests.conftest import run_cli
from tests.paths import DESIRED_STATE, ROOT

SUB_FILE = "00000000-0000-0000-0000-0000000000f1"
SUB_FLAG = "00000000-0000-0000-0000-0000000000a1"
SUB_ENV = "00000000-0000-0000-0000-0000000000e1"
EMULATOR_SUB = "00000000-0000-0000-0000-00000000a1b2"
# Key Vault entries of the seed that hold plain settings, not secrets (names, URLs, ids).
SETTINGS = {"azure-openai-deployment", "azure-openai-endpoint", "log-analytics-dcr-id",
            "agent-execute-mode"}  # fmt: skip
# Variables that would give azure-identity a credential or a token cache to find.
CREDENTIAL_ENV = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_")


def free_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail any connection attempt in this process; returns where it tried to go."""
    tried: list[object] = []

    def refuse(_socket: socket.socket, address: object) -> None:
        tried.append(address)
        raise ConnectionRefusedError(f"test: no connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tried


# --------------------------------------------------------------------------- basics
def test_version_names_the_tool_and_its_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    assert out.startswith(f"nsc-reconcile {metadata.version('nsc-reconcile')} (Python ")
    assert f"azure-identity {metadata.version('azure-identity')}" in out


def test_bare_command_prints_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys)
    assert code == 0
    assert out.startswith("Usage: nsc-reconcile [OPTIONS] COMMAND [ARGS]...")
    assert "Commands:" in out
    assert "_NSC_RECONCILE_COMPLETE=bash_source nsc-reconcile" in out
    assert err == ""


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_help_lists_its_exit_codes(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    section = out.split("Exit codes:\n", 1)[1]
    for exit_code, _meaning in EXIT_CODES.get(command, [("0", ""), ("1", "")]):
        assert f"  {exit_code} " in section
    assert "130" in section  # Ctrl-C


def test_debug_and_verbose_are_accepted_after_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for flags in (["--debug"], ["--verbose"], ["--debug", "--verbose"]):
        code, out, err = run_cli(capsys, "validate", str(DESIRED_STATE), *flags)
        assert code == 0, err
        assert "valid: environment dev" in out
    code, _, _ = run_cli(capsys, "--verbose", "validate", str(DESIRED_STATE))
    assert code == 0


def test_debug_after_the_command_logs_everything(emu: Emulator) -> None:
    target = "private_dns_zone/privatelink.openai.azure.com"
    done = subprocess.run(
        [sys.executable, "-m", "nsc_reconcile", "plan", str(DESIRED_STATE),
         f"--emulator={emu.info['arm']}", "--target", target, "--debug"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "DEBUG urllib3.connectionpool" in done.stderr
    assert "emulator-token" not in done.stderr


# --------------------------------------------------------------------------- --verbose
def test_verbose_logs_http_with_authorization_redacted_and_no_vault_value(
    emu: Emulator,
    ctl: Callable[..., Any],
    vault_client: SecretClient,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    code, _, err = run_cli(
        capsys, "apply", str(DESIRED_STATE), f"--emulator={emu.info['arm']}", "--yes", "--verbose"
    )
    assert code == 0, err
    logged = caplog.text + err
    http = [r for r in caplog.records if r.name.endswith("http_logging_policy")]
    assert any("Request method: 'PUT'" in r.getMessage() for r in http)
    assert any("/vaults/" in r.getMessage() or "/secrets/" in r.getMessage() for r in http)
    assert "'Authorization': 'REDACTED'" in logged
    assert "emulator-token" not in logged  # the bearer token the clients sent
    names = [p.name or "" for p in vault_client.list_properties_of_secrets()]
    names = [n for n in names if n and n not in SETTINGS]
    values = [v for v in (vault_client.get_secret(n).value for n in names) if v and len(v) >= 8]
    assert len(values) >= 8  # generated passwords, the OpenAI key, ...
    assert [v for v in values if v in logged] == []
    # without --verbose, no HTTP log
    caplog.clear()
    code, _, _ = run_cli(capsys, "plan", str(DESIRED_STATE), f"--emulator={emu.info['arm']}")
    assert code == 0
    assert not [r for r in caplog.records if r.name.endswith("http_logging_policy")]


def test_azure_core_network_trace_would_log_the_token_so_verbose_does_not_use_it(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Why --verbose does not set `logging_enable`: azure-core's NetworkTraceLoggingPolicy
    (azure-core 1.41) logs the Authorization header and the body as they are."""
    from nsc_reconcile.azure import AzureTarget, Clients

    clients = Clients(AzureTarget.for_emulator(emu.info["arm"]))
    with caplog.at_level(logging.DEBUG, logger="azure.core.pipeline.policies"):
        clients.resource.resource_groups.get("2dt-final-team4", logging_enable=True)
    assert "Bearer emulator-token" in caplog.text


# --------------------------------------------------------------------------- subscription
def test_subscription_precedence_flag_then_file_then_environment() -> None:
    env = {"AZURE_SUBSCRIPTION_ID": SUB_ENV}
    assert resolve_subscription(SUB_FLAG, SUB_FILE, env)[:2] == (SUB_FLAG, "from --subscription")
    assert resolve_subscription(None, SUB_FILE, env)[:2] == (
        SUB_FILE,
        "from the file's subscription_id",
    )
    assert resolve_subscription(None, None, env)[:2] == (SUB_ENV, "from AZURE_SUBSCRIPTION_ID")
    overridden = resolve_subscription(SUB_FLAG, SUB_FILE, env)[2]
    assert (
        overridden == f"--subscription {SUB_FLAG} overrides subscription_id {SUB_FILE} of the file"
    )
    ignored = resolve_subscription(None, SUB_FILE, env)[2]
    assert ignored is not None
    assert ignored.startswith(f"AZURE_SUBSCRIPTION_ID ({SUB_ENV}) is ignored")


def test_subscription_flag_is_checked_against_the_emulator(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    arm = f"--emulator={emu.info['arm']}"
    target = ["--target", "private_dns_zone/privatelink.openai.azure.com"]
    code, _, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), arm, *target, "--subscription", SUB_FLAG
    )
    assert code == 1
    assert f"the emulator serves subscription {EMULATOR_SUB} only" in err
    code, _, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), arm, *target, "--subscription", "nope"
    )
    assert code == 1
    assert "'nope' is not a subscription id" in err
    code, _, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), arm, *target, "--subscription", EMULATOR_SUB
    )
    assert code == 0, err


def _without_credentials(tmp_path: Path) -> dict[str, str]:
    """An environment where azure-identity finds no credential, no CLI, no token cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CREDENTIAL_ENV)}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), PATH=str(home), NO_PROXY="*", PYTHONPATH=str(ROOT))
    return env


def test_subscription_sources_are_named_and_none_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_network(monkeypatch)
    for key in [k for k in os.environ if k.startswith(CREDENTIAL_ENV)]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PATH", str(tmp_path))  # no az, azd or pwsh to ask
    monkeypatch.setenv("HOME", str(tmp_path))  # no token cache
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "dev")  # developer tools only: no IMDS
    code, _, err = run_cli(capsys, "plan", str(DESIRED_STATE))
    assert code == 1
    assert "no subscription: pass --subscription, set subscription_id in the file, or set " \
        "AZURE_SUBSCRIPTION_ID" in err  # fmt: skip
    pinned = tmp_path / "desired_state.yaml"
    text = DESIRED_STATE.read_text(encoding="utf-8")
    pinned.write_text(text.replace("version: 1\n", f"version: 1\nsubscription_id: {SUB_FILE}\n"))
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB_ENV)
    code, _, err = run_cli(capsys, "plan", str(pinned))
    assert code == 1
    assert (
        f"AZURE_SUBSCRIPTION_ID ({SUB_ENV}) is ignored: the file names subscription {SUB_FILE}"
        in err
    )
    assert "cannot authenticate to Azure: no credential is configured" in err
    code, _, err = run_cli(capsys, "plan", str(pinned), "--subscription", SUB_FLAG)
    assert f"--subscription {SUB_FLAG} overrides subscription_id {SUB_FILE}" in err


# --------------------------------------------------------------------------- authentication
def test_authentication_errors_name_their_cause_in_one_line(tmp_path: Path) -> None:
    """Real azure-identity credentials failing for real, in processes that reach loopback
    only: a managed identity endpoint that refuses (IDENTITY_ENDPOINT, as Azure Automation
    and App Service set it), and a service principal whose login endpoint cannot be resolved."""
    env = _without_credentials(tmp_path)
    env["AZURE_SUBSCRIPTION_ID"] = SUB_ENV
    port = free_port()
    managed = {**env, "IDENTITY_ENDPOINT": f"http://127.0.0.1:{port}/msi/token",
               "IDENTITY_HEADER": "header-secret-1234"}  # fmt: skip
    principal = {**env, "AZURE_TENANT_ID": "00000000-0000-0000-0000-0000000000c1",
                 "AZURE_CLIENT_ID": "00000000-0000-0000-0000-0000000000c2",
                 "AZURE_CLIENT_SECRET": "client-secret-5678"}  # fmt: skip
    command = [sys.executable, "-m", "tests.e2e.loopback_only", "plan", str(DESIRED_STATE)]
    runs = [
        subprocess.Popen(
            command, env=e, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for e in (managed, principal)
    ]  # in parallel: azure-core retries an unreachable endpoint for about 5 s
    (m_out, m_err), (p_out, p_err) = (r.communicate(timeout=120) for r in runs)
    assert [r.returncode for r in runs] == [1, 1], m_err + p_err
    assert m_err.strip() == (
        f"error: cannot authenticate to Azure: managed identity endpoint unreachable: "
        f"127.0.0.1:{port} (connection refused) (ManagedIdentityCredential); check the "
        "managed identity endpoint of this machine (IDENTITY_ENDPOINT or IMDS)"
    )
    assert p_err.strip() == (
        "error: cannot authenticate to Azure: login endpoint unreachable: "
        "login.microsoftonline.com:443 (name not resolved) (EnvironmentCredential); check the "
        "network path to it (firewall, HTTPS_PROXY)"
    )
    assert m_out == p_out == ""
    for secret in ("header-secret-1234", "client-secret-5678"):
        assert secret not in m_err + p_err


def test_no_credential_at_all_says_so_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """DefaultAzureCredential with nothing configured (its IMDS probe refused locally)."""
    tried = no_network(monkeypatch)
    for key in [k for k in os.environ if k.startswith(CREDENTIAL_ENV)]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, err = run_cli(capsys, "plan", str(DESIRED_STATE), "--subscription", SUB_FLAG)
    assert code == 1
    assert out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(
        "error: cannot authenticate to Azure: no credential is configured (tried Environment, "
        "WorkloadIdentity, ManagedIdentity,"
    )
    assert line.endswith("sign in with `az login`, set AZURE_CLIENT_ID/AZURE_TENANT_ID/"
                         "AZURE_CLIENT_SECRET, run where a managed identity is available, or "
                         "use --emulator")  # fmt: skip
    assert all(str(address).startswith("('169.254.169.254'") for address in tried)


# --------------------------------------------------------------------------- --emulator
def test_emulator_takes_its_url_with_equals_and_names_a_missing_scheme(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tried = no_network(monkeypatch)
    for spelled in (["--emulator=127.0.0.1:8080"], ["--emulator", "127.0.0.1:8080"]):
        code, _, err = run_cli(capsys, "plan", str(DESIRED_STATE), *spelled)
        assert code == 1
        assert (
            "--emulator=127.0.0.1:8080: missing http:// (write --emulator=http://127.0.0.1:8080)"
            in err
        )
    code, _, err = run_cli(capsys, "plan", str(DESIRED_STATE), "--emulator=ftp://127.0.0.1:21")
    assert "must start with http:// or https://" in err
    assert tried == []
    # --emulator followed by FILE: the bundled emulator, FILE stays FILE
    assert normalize_emulator(["plan", "--emulator", "desired_state.yaml"]) == [
        "plan", "--emulator=<bundled>", "desired_state.yaml"
    ]  # fmt: skip
    assert normalize_emulator(["--emulator", "http://127.0.0.1:1", "f.yaml"]) == [
        "--emulator=http://127.0.0.1:1", "f.yaml"
    ]  # fmt: skip


def test_emulator_before_file_starts_the_bundled_one(capsys: pytest.CaptureFixture[str]) -> None:
    target = "private_dns_zone/privatelink.openai.azure.com"
    code, _, err = run_cli(capsys, "plan", "--emulator", str(DESIRED_STATE), "--target", target)
    assert code == 0, err
    assert "against bundled emulator at http://127.0.0.1:" in err


# --------------------------------------------------------------------------- --target
@pytest.mark.parametrize("command", ["plan", "apply"])
def test_unknown_target_suggests_the_closest_before_connecting(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tried = no_network(monkeypatch)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB_ENV)
    code, _, err = run_cli(
        capsys, command, str(DESIRED_STATE), "--target", "openai_acount/nsc-aoai-dev"
    )
    assert code == 1
    assert (
        "--target openai_acount/nsc-aoai-dev: no such resource; did you mean "
        "openai_account/nsc-aoai-dev?" in err
    )
    code, _, err = run_cli(capsys, command, str(DESIRED_STATE), "--target", "zzz")
    assert "--target zzz: no such resource; declared: action_group/nsc-ag-agent-dev, " in err
    assert tried == []  # refused before any sign-in or connection


# --------------------------------------------------------------------------- --env
def _with_overlay(tmp_path: Path, name: str) -> Path:
    base = tmp_path / "desired_state.yaml"
    base.write_text(DESIRED_STATE.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / f"{name}.yaml").write_text(
        f"environment: {name}\nresource_group: 2dt-final-team4-{name}\n", encoding="utf-8"
    )
    return base


def test_env_accepts_any_overlay_present(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _with_overlay(tmp_path, "qa")
    code, out, err = run_cli(capsys, "validate", str(base), "--env", "qa")
    assert code == 0, err
    assert "valid: environment qa, resource group 2dt-final-team4-qa" in out
    code, _, err = run_cli(capsys, "validate", str(base), "--env", "uat")
    assert code == 1
    assert "no overlay for 'uat'" in err
    assert "(overlays present: qa)" in err
    code, _, err = run_cli(capsys, "validate", str(base), "--env", "../qa")
    assert code == 1
    assert "'../qa' is not an environment name" in err


# --------------------------------------------------------------------------- completion
def test_shell_completion_script_commands_and_overlays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("_NSC_RECONCILE_COMPLETE", "bash_source")
    code, out, _ = run_cli(capsys)
    assert code == 0
    assert "_nsc_reconcile_completion()" in out
    assert "complete -o nosort -F _nsc_reconcile_completion nsc-reconcile" in out
    monkeypatch.setenv("_NSC_RECONCILE_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "nsc-reconcile pl")
    monkeypatch.setenv("COMP_CWORD", "1")
    code, out, _ = run_cli(capsys)
    assert out.split() == ["plain,plan"]
    base = _with_overlay(tmp_path, "qa")
    (tmp_path / "envs" / "perf.yaml").write_text("environment: perf\n", encoding="utf-8")
    monkeypatch.setenv("COMP_WORDS", f"nsc-reconcile plan {base} --env ")
    monkeypatch.setenv("COMP_CWORD", "4")
    code, out, _ = run_cli(capsys)
    assert out.split() == ["plain,perf", "plain,qa"]
