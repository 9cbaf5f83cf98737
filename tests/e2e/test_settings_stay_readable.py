"""Values declared ``sensitive: false`` (the OpenAI endpoint URL, the deployment name, the
execute mode) are settings, not secrets: after ``apply`` writes them, a ``verify`` in the same
process (a runbook, the CLI's shared redactor) still shows them, while every sensitive value
stays redacted."""

from __future__ import annotations

import pytest
from azure.keyvault.secrets import SecretClient

from nsc_reconcile import load_desired_state
from nsc_reconcile.cli import main
from nsc_reconcile.emulator.app import Emulator
from tests.paths import DESIRED_STATE


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as ended:
        main(list(args))
    captured = capsys.readouterr()
    return int(ended.value.code or 0), captured.out + captured.err


def test_settings_written_by_apply_stay_readable_in_verify(
    emu: Emulator, vault_client: SecretClient, capsys: pytest.CaptureFixture[str]
) -> None:
    arm = f"--emulator={emu.info['arm']}"
    assert _run(capsys, "apply", str(DESIRED_STATE), arm, "--yes")[0] == 0
    code, out = _run(capsys, "verify", str(DESIRED_STATE), arm)
    assert code == 0, out
    assert "execute-mode/agent-execute-mode" in out
    assert "dry-run" in out  # the setting's value is evidence, not a secret
    assert "gpt-4o-mini" in out
    state = load_desired_state(DESIRED_STATE)
    assert state.secrets is not None
    for item in state.secrets.items:
        if item.sensitive and item.source is not None and item.source.external is None:
            value = vault_client.get_secret(item.name).value
            assert value
            assert value not in out, item.name
