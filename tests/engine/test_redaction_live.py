"""Secret values never appear in results, plans or logs, even when an SDK error message
carries them (the emulator's fault injection makes Azure echo the value back)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile import apply, load_desired_state, plan
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.plans import Outcome

VALUE = "Zx9-webhook-token-7Q2mKp4LrT8vWn3s"  # what an operator exports; must never be shown


def test_an_error_message_echoing_a_secret_is_redacted(
    emu: Emulator,
    ctl: Callable[..., Any],
    seed_text: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("NSC_TEST_TOKEN", VALUE)
    text = seed_text.replace(
        "    - name: databricks-agent-token\n      source: {external: true}",
        "    - name: databricks-agent-token\n      source: {external: true}\n"
        "    - name: teams-webhook-token\n      source: {env: NSC_TEST_TOKEN}",
    )
    path = tmp_path / "desired_state.yaml"
    path.write_text(text, encoding="utf-8")
    state = load_desired_state(path)
    ctl(
        "POST",
        "faults",
        [{"method": "PUT", "path": "teams-webhook-token", "status": 400, "code": "BadParameter",
          "message": f"The value '{VALUE}' is not allowed here.", "count": 100}],
    )  # fmt: skip
    clients = Clients(AzureTarget.for_emulator(str(emu.info["arm"]), retry_total=0))
    address = "key_vault_secret/teams-webhook-token"
    planned = plan(state, clients, targets=[address])
    result = apply(planned, state, clients)
    failed = result.get(address)
    assert failed.outcome is Outcome.FAILED
    assert "(sensitive)" in (failed.detail or "")  # the message is kept, the value is not
    outputs = [
        result.render("text"),
        result.render("json"),
        planned.render("json"),
        planned.render("markdown"),
        *(record.getMessage() for record in caplog.records),
    ]
    assert all(VALUE not in output for output in outputs)
