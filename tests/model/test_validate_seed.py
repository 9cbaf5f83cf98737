"""`validate` on the repository's desired state: every seed name is there, no network."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any

import pytest

from nsc_reconcile import DesiredState, load_desired_state
from nsc_reconcile.cli import main
from tests.paths import DESIRED_STATE, ROOT

# Seed §3.6 (dev names) and §3.5 (Key Vault keys).
SEED_NAMES = [
    "nsc-aoai-dev",
    "nsc-pg-langfuse-dev",
    "nsc-pe-openai",
    "nsc-pe-pg-langfuse",
    "privatelink.openai.azure.com",
    "privatelink.postgres.database.azure.com",
    "nsc-ag-agent-dev",
    "nsc-alert-triage-ready-dev",
    "nsc-alert-approval-timeout-dev",
    "nsc-alert-execution-failed-dev",
    "langfuse",
    "langfuse-internal",
]
SEED_KEYS = [
    "azure-openai-api-key",
    "azure-openai-endpoint",
    "azure-openai-deployment",
    "langfuse-public-key",
    "langfuse-secret-key",
    "log-analytics-dcr-id",
    "agent-execute-mode",
    "databricks-agent-token",
]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def test_validate_lists_every_seed_name_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["validate", str(DESIRED_STATE)], capsys)
    assert code == 0, err
    for name in SEED_NAMES + SEED_KEYS:
        assert name in out, f"{name} missing from validate output"
    assert "stage 1:" in out


def test_validate_makes_no_network_connection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    attempts: list[Any] = []

    def refuse(_socket: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    code, _, err = run_cli(["validate", str(DESIRED_STATE)], capsys)
    assert code == 0, err
    assert attempts == []


def test_seed_state_covers_the_plan() -> None:
    state = load_desired_state(DESIRED_STATE)
    assert isinstance(state, DesiredState)
    assert state.environment == "dev"
    assert {a.name for a in state.openai_accounts} == {"nsc-aoai-dev"}
    account = state.openai_accounts[0]
    assert account.public_network_access == "Disabled"
    assert account.network_acls.default_action == "Deny"
    assert {e.target for e in state.private_endpoints} == {
        "openai_account/nsc-aoai-dev",
        "postgresql_server/nsc-pg-langfuse-dev",
    }
    assert {a.event for a in state.log_alerts} == {
        "TRIAGE_READY",
        "APPROVAL_TIMEOUT",
        "EXECUTION_FAILED",
    }
    assert state.secrets is not None
    assert set(SEED_KEYS) <= {s.name for s in state.secrets.items}
    assert state.langfuse is not None
    assert state.langfuse.service.type == "ClusterIP"
    assert state.langfuse.database.server == "nsc-pg-langfuse-dev"


@pytest.mark.parametrize(
    ("env", "mode", "suffix"),
    [("dev", "dry-run", "dev"), ("staging", "dry-run", "staging"), ("prod", "live", "prod")],
)
def test_environment_overlays_derive_names_and_execute_mode(
    env: str, mode: str, suffix: str
) -> None:
    state = load_desired_state(DESIRED_STATE, env=env)
    assert state.environment == env
    assert state.openai_accounts[0].name == f"nsc-aoai-{suffix}"
    assert state.openai_accounts[0].custom_subdomain == f"nsc-aoai-{suffix}"
    assert {a.name for a in state.log_alerts} == {
        f"nsc-alert-triage-ready-{suffix}",
        f"nsc-alert-approval-timeout-{suffix}",
        f"nsc-alert-execution-failed-{suffix}",
    }
    assert state.secrets is not None
    execute = next(s for s in state.secrets.items if s.name == "agent-execute-mode")
    assert execute.value == mode
    # the business DB name follows the environment too, and is never the LangFuse one
    assert state.existing.postgresql_servers[0].name == f"nsc-pg-{suffix}"


def test_prod_overlay_changes_only_what_it_says() -> None:
    dev = load_desired_state(DESIRED_STATE)
    prod = load_desired_state(DESIRED_STATE, env="prod")
    assert prod.openai_accounts[0].deployments[0].capacity == 100
    assert dev.openai_accounts[0].deployments[0].capacity == 30
    # fields the overlay does not mention keep the base values
    assert (
        prod.openai_accounts[0].deployments[0].model == dev.openai_accounts[0].deployments[0].model
    )
    assert len(prod.log_alerts) == 3
    severities = {a.event: a.severity for a in prod.log_alerts}
    assert severities["EXECUTION_FAILED"] == 0
    assert severities["TRIAGE_READY"] == 3
    assert prod.postgresql_servers[0].high_availability == "ZoneRedundant"


def test_schema_command_prints_a_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["schema"], capsys)
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"openai_accounts", "private_endpoints", "secrets", "langfuse"} <= set(
        schema["properties"]
    )
    assert schema["additionalProperties"] is False


def test_reference_docs_are_up_to_date() -> None:
    from nsc_reconcile.reference import render

    committed = (ROOT / "docs" / "desired-state.md").read_text(encoding="utf-8")
    assert committed == render(), (
        "docs/desired-state.md is stale: run python -m nsc_reconcile.reference "
        "> docs/desired-state.md"
    )


def test_every_model_field_is_documented() -> None:
    from nsc_reconcile.reference import render

    undocumented = [line for line in render().splitlines() if line.endswith("|  |")]
    assert undocumented == []


def test_module_entry_point_runs_as_a_subprocess() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nsc_reconcile", "validate", str(DESIRED_STATE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "nsc-pe-pg-langfuse" in result.stdout
