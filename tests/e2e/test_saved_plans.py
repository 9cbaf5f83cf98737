"""Saved plans through the real CLI against the emulator: a saved plan is the approval (no
--yes), is recognised by its content whatever its file name, records the desired state's
absolute path, digest, environment and subscription and refuses another environment or a
changed desired state, and `show` renders it in every format.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.plans import PLAN_FORMAT
from tests.conftest import run_cli
from tests.paths import DESIRED_STATE

LINK = "private_dns_zone_link/privatelink.openai.azure.com/link-nsc-vnet-dev"
ZONE = "private_dns_zone/privatelink.openai.azure.com"
WRITES = {"PUT", "PATCH", "DELETE"}


def writes(ctl: Callable[..., Any]) -> list[str]:
    """Write requests to Azure, except the apply lease's (lease.py)."""
    return [
        f"{r['method']} {r['path']}"
        for r in ctl("GET", "requests")
        if r["method"] in WRITES and "/privateDnsZones/nsc-reconcile-lease." not in r["path"]
    ]


@pytest.fixture
def arm(emu: Emulator) -> str:
    return str(emu.info["arm"])


def save_plan(capsys: pytest.CaptureFixture[str], arm: str, path: Path, *extra: str) -> str:
    """`plan --out path` for the link (and what it needs); returns what plan printed."""
    code, out, err = run_cli(capsys, "plan", *extra, "--emulator", arm, "--target", LINK,
                         "--out", str(path))  # fmt: skip
    assert code == 0, err
    return out


def test_a_saved_plan_renamed_to_txt_applies_without_yes_from_another_directory(
    arm: str,
    emu: Emulator,
    ctl: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(DESIRED_STATE.parent)
    saved = tmp_path / "plan.json"
    save_plan(capsys, arm, saved, "desired_state.yaml")  # a relative FILE
    recorded = json.loads(saved.read_text())
    assert recorded["kind"] == "plan"
    assert recorded["format"] == PLAN_FORMAT
    assert recorded["state_file"] == str(DESIRED_STATE)  # absolute, not as typed
    assert recorded["environment"] == "dev"
    assert recorded["subscription_id"] == emu.info["subscription_id"]
    assert len(recorded["state_digest"]) == 16

    renamed = saved.rename(tmp_path / "reviewed-plan.txt")  # the name says nothing
    monkeypatch.chdir(tmp_path)  # and it is applied from elsewhere
    ctl("DELETE", "requests")
    # No --yes, and stdin is not a terminal: a desired-state FILE would be refused here.
    code, out, err = run_cli(capsys, "apply", str(renamed), "--emulator", arm)
    assert code == 0, out + err
    assert "Apply complete" in out
    assert "--yes" not in err
    written = {w.rsplit("/", 1)[-1] for w in writes(ctl)}
    assert {"privatelink.openai.azure.com", "link-nsc-vnet-dev"} <= written

    code, out, _ = run_cli(capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--target", LINK,
                       "--detailed-exitcode")  # fmt: skip
    assert code == 0, out  # applied: nothing left to do

    code, _, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm)
    assert code == 1  # a desired state is no approval: it still needs --yes or a prompt
    assert "--yes" in err


def test_a_dev_plan_is_refused_with_env_staging_naming_both(
    arm: str, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    saved = tmp_path / "dev.plan"
    save_plan(capsys, arm, saved, str(DESIRED_STATE))
    ctl("DELETE", "requests")
    code, out, err = run_cli(capsys, "apply", str(saved), "--env", "staging", "--emulator", arm)
    assert code == 1
    assert "plan for environment dev, but --env asks for staging" in err
    assert "nothing was written" in err
    assert writes(ctl) == []
    assert out == ""

    code, out, err = run_cli(capsys, "apply", str(saved), "--env", "dev", "--emulator", arm)
    assert code == 0, out + err  # the same environment, named: fine


def test_a_saved_plan_is_refused_when_its_desired_state_changed(
    arm: str, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "desired_state.yaml"
    shutil.copy(DESIRED_STATE, state)
    saved = tmp_path / "plan"
    save_plan(capsys, arm, saved, str(state))
    text = state.read_text()
    state.write_text(text.replace("location: koreacentral", "location: koreasouth", 1))
    assert state.read_text() != text

    ctl("DELETE", "requests")
    code, _, err = run_cli(capsys, "apply", str(saved), "--emulator", arm)
    assert code == 1
    assert "the desired state changed since this plan was made" in err
    assert writes(ctl) == []

    state.unlink()
    code, _, err = run_cli(capsys, "apply", str(saved), "--emulator", arm)
    assert code == 1
    assert f"was made from {state}, which does not exist here" in err


def test_show_renders_a_saved_plan_in_each_format_like_plan(
    arm: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    saved = tmp_path / "plan.out"
    planned_text = save_plan(capsys, arm, saved, str(DESIRED_STATE))
    shown = {}
    for fmt in ("text", "json", "markdown"):
        code, out, err = run_cli(capsys, "show", str(saved), "--format", fmt)
        assert code == 0, err
        shown[fmt] = out
    assert shown["text"] == planned_text  # what plan showed when it was made
    assert f"+ create    {LINK}" in shown["text"]
    assert json.loads(shown["json"]) == json.loads(saved.read_text())
    assert shown["markdown"].startswith("## nsc-reconcile plan")
    assert LINK in shown["markdown"]
    assert f"saved plan of {DESIRED_STATE} (dev" in err

    code, _, err = run_cli(capsys, "show", str(DESIRED_STATE))
    assert code == 1
    assert "is not a saved plan" in err


def test_a_format_1_plan_is_still_read_in_the_new_words(
    arm: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes",
                       "--target", LINK)  # fmt: skip
    assert code == 0, err
    saved = tmp_path / "old.json"
    save_plan(capsys, arm, saved, str(DESIRED_STATE))
    data = json.loads(saved.read_text())
    data["format"] = 1  # as version 1 wrote it: no kind, action no-change
    del data["kind"]
    for resource in data["resources"]:
        if resource["action"] == "unchanged":
            resource["action"] = "no-change"
    saved.write_text(json.dumps(data))

    code, out, err = run_cli(capsys, "show", str(saved), "--format", "json")
    assert code == 0, err
    actions = {r["address"]: r["action"] for r in json.loads(out)["resources"]}
    assert actions[LINK] == actions[ZONE] == "unchanged"
    assert json.loads(out)["format"] == PLAN_FORMAT

    data["format"] = 99
    saved.write_text(json.dumps(data))
    code, _, err = run_cli(capsys, "apply", str(saved), "--emulator", arm)
    assert code == 1
    assert "plan format 99 is not one this version reads" in err
