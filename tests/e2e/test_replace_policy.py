"""`--allow-replace` means one thing: each kind declares its replace policy and the plan shows
it. `automated` (a private endpoint: no data) is done with --allow-replace; `manual` (an OpenAI
account) is never done, the plan gives the steps; `data-loss` (a Log Analytics table) needs the
address confirmed too (--confirm-data-loss, or typed at the prompt). CLI against the emulator.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile.emulator.app import Emulator
from tests.conftest import run_cli
from tests.e2e.test_approved_plan import _read_until
from tests.paths import DESIRED_STATE

ACCOUNT = "openai_account/nsc-aoai-dev"
TABLE = "log_analytics_table/nsc-law-dev/NscAgentEvents_CL"
ENDPOINT = "private_endpoint/nsc-pe-openai"
WRITES = {"PUT", "PATCH", "DELETE"}


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = DESIRED_STATE.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    (tmp_path / "envs").mkdir(exist_ok=True)
    path = tmp_path / "desired_state.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def _writes(ctl: Callable[..., Any], part: str) -> list[str]:
    return [
        f"{r['method']} {r['path']}"
        for r in ctl("GET", "requests")
        if r["method"] in WRITES and part in r["path"]
    ]


@pytest.fixture
def arm(emu: Emulator, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> str:
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    arm = str(emu.info["arm"])
    code, out, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes")
    assert code == 0, out + err
    return arm


def _change_table_column(emu: Emulator, ctl: Callable[..., Any]) -> None:
    table_id = (
        f"/subscriptions/{emu.info['subscription_id']}/resourceGroups/2dt-final-team4/providers/"
        "Microsoft.OperationalInsights/workspaces/nsc-law-dev/tables/NscAgentEvents_CL"
    )
    stored = ctl("GET", f"state?id={table_id}")
    for column in stored["properties"]["schema"]["columns"]:
        if column["name"] == "Severity":
            column["type"] = "int"
    ctl("PUT", f"state?id={table_id}", stored)


def test_the_plan_shows_each_replacements_policy(
    arm: str,
    emu: Emulator,
    ctl: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _change_table_column(emu, ctl)
    path = _variant(tmp_path, "custom_subdomain: nsc-aoai-${env}", "custom_subdomain: nsc-ai-x")
    text = path.read_text(encoding="utf-8").replace(
        "subnet: nsc-vnet-${env}/snet-data\n    dns_zone_group: {zones: [privatelink.openai",
        "subnet: nsc-vnet-${env}/snet-aks\n    dns_zone_group: {zones: [privatelink.openai",
    )
    path.write_text(text, encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", str(path), "--emulator", arm)
    assert code == 0, out
    assert f"! replace   {ACCOUNT}  (replace policy: manual)" in out
    assert "apply never does it; replacing nsc-aoai-dev would lose its keys" in out
    assert f"! replace   {ENDPOINT}  (replace policy: automated)" in out
    assert f"! replace   {TABLE}  (replace policy: data-loss)" in out
    assert f"--confirm-data-loss {TABLE}" in out

    code, out, _ = run_cli(capsys, "plan", str(path), "--emulator", arm, "--format", "json")
    policies = {
        r["address"]: r["replace_policy"]
        for r in json.loads(out)["resources"]
        if r["action"] == "replace"
    }
    assert policies == {ACCOUNT: "manual", ENDPOINT: "automated", TABLE: "data-loss"}
    code, out, _ = run_cli(capsys, "plan", str(path), "--emulator", arm, "--format", "markdown")
    assert f"| replace (manual) | `{ACCOUNT}` |" in out

    # A manual one is never done, even with --allow-replace.
    ctl("DELETE", "requests")
    code, out, _ = run_cli(
        capsys, "apply", str(path), "--emulator", arm, "--yes", "--allow-replace",
        "--target", ACCOUNT,
    )  # fmt: skip
    assert code == 1
    assert re.search(rf"{ACCOUNT} +blocked .*replace policy manual", out), out
    assert _writes(ctl, "accounts/nsc-aoai-dev") == []


def test_a_data_losing_replacement_needs_its_address_confirmed(
    arm: str, emu: Emulator, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _change_table_column(emu, ctl)
    ctl("DELETE", "requests")
    code, out, _ = run_cli(
        capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes", "--allow-replace"
    )
    assert code == 1
    assert "replace policy data-loss" in out
    assert f"--confirm-data-loss {TABLE}" in out
    assert _writes(ctl, "tables/") == []

    code, out, err = run_cli(
        capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes", "--allow-replace",
        "--confirm-data-loss", TABLE,
    )  # fmt: skip
    assert code == 0, out + err
    assert [w.split()[0] for w in _writes(ctl, "tables/NscAgentEvents_CL")] == ["DELETE", "PUT"]


def test_a_data_losing_replacement_is_confirmed_by_typing_its_address(
    arm: str, emu: Emulator, ctl: Callable[..., Any]
) -> None:
    _change_table_column(emu, ctl)
    ctl("DELETE", "requests")
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "nsc_reconcile", "apply", str(DESIRED_STATE),
         "--emulator", arm, "--allow-replace", "--target", TABLE],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    os.close(terminal)
    assert process.stdout is not None
    try:
        _read_until(process.stdout.fileno(), "Apply these changes?")
        os.write(controller, b"yes\n")
        _read_until(process.stdout.fileno(), "Type its address to confirm")
        os.write(controller, f"{TABLE}\n".encode())
        rest, _ = process.communicate(timeout=60)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, rest.decode(errors="replace")
    assert [w.split()[0] for w in _writes(ctl, "tables/NscAgentEvents_CL")] == ["DELETE", "PUT"]
