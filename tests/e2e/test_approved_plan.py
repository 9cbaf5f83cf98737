"""The approved plan is the plan applied: a plan with a blocked item is not applied (unless
--target leaves it out), a change found at apply time that was not approved is not written, an
interactive apply stops when the changes differ from the ones approved at the prompt, and a
saved plan is refused against another subscription. CLI and library against the emulator.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.cli import main
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.engine import Engine, WrongSubscriptionError
from nsc_reconcile.plans import Outcome
from tests.paths import DESIRED_STATE

ZONE = "private_dns_zone/privatelink.openai.azure.com"
LINK = "private_dns_zone_link/privatelink.openai.azure.com/link-nsc-vnet-dev"
WRITES = {"PUT", "PATCH", "DELETE"}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out + captured.err


def _writes(ctl: Callable[..., Any]) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in ctl("GET", "requests") if r["method"] in WRITES]


def _drift(ctl: Callable[..., Any], rid: str, change: Callable[[dict[str, Any]], None]) -> None:
    body = ctl("GET", f"state?id={rid}")
    change(body)
    ctl("PUT", f"state?id={rid}", body)


def test_apply_refuses_a_plan_with_a_blocked_item_unless_targets_leave_it_out(
    emu: Emulator, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    arm = str(emu.info["arm"])
    nsg_id = (
        f"/subscriptions/{emu.info['subscription_id']}/resourceGroups/2dt-final-team4/providers/"
        "Microsoft.Network/networkSecurityGroups/nsc-nsg-data-dev"
    )
    ctl("DELETE", f"state?id={nsg_id}")  # an existing reference is missing: blocked
    code, out = _run(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes")
    assert code == 1
    assert "x blocked   network_security_group/nsc-nsg-data-dev" in out
    assert "not applied and nothing was written" in out
    assert _writes(ctl) == []

    code, out = _run(
        capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes", "--target", LINK
    )
    assert code == 0, out
    written = {w.rsplit("/", 1)[-1] for w in _writes(ctl)}
    assert {"privatelink.openai.azure.com", "link-nsc-vnet-dev"} <= written
    assert not [w for w in _writes(ctl) if "securityRules" in w]


def test_a_change_not_in_the_approved_plan_is_not_written(
    clients: Clients, ctl: Callable[..., Any]
) -> None:
    state = load_desired_state(DESIRED_STATE)
    engine = Engine(state, clients)
    assert engine.apply(engine.plan([LINK])).ok
    approved = Engine(state, clients).plan([LINK])
    assert approved.get(LINK).action is Action.UNCHANGED
    link_id = approved.get(LINK).id
    _drift(
        ctl, str(link_id), lambda b: b["properties"].__setitem__("registrationEnabled", True)
    )  # someone changes it after the plan was approved

    ctl("DELETE", "requests")
    result = Engine(state, clients).apply(approved)
    link = result.get(LINK)
    assert link.outcome is Outcome.BLOCKED
    assert "properties.registrationEnabled" in (link.detail or "")
    assert "not in the approved plan" in (link.detail or "")
    assert _writes(ctl) == []

    replanned = Engine(state, clients).plan([LINK])  # once reviewed, it is applied
    assert Engine(state, clients).apply(replanned).get(LINK).outcome is Outcome.UPDATED


def test_a_saved_plan_is_refused_against_another_subscription(
    emu: Emulator,
    clients: Clients,
    ctl: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    arm = str(emu.info["arm"])
    saved = tmp_path / "plan.json"
    code, out = _run(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--target", LINK, "--out", str(saved)
    )
    assert code == 0, out
    data = json.loads(saved.read_text())
    assert data["subscription_id"] == emu.info["subscription_id"]
    other = "11111111-2222-3333-4444-555555555555"
    data["subscription_id"] = other
    saved.write_text(json.dumps(data))

    code, out = _run(capsys, "apply", str(saved), "--emulator", arm, "--yes")
    assert code == 1
    assert f"made for subscription {other}" in out
    assert f"this run targets {emu.info['subscription_id']}" in out  # both named
    assert _writes(ctl) == []

    plan = Engine(load_desired_state(DESIRED_STATE), clients).plan([LINK])
    plan.subscription_id = other
    with pytest.raises(WrongSubscriptionError):
        Engine(load_desired_state(DESIRED_STATE), clients).apply(plan)
    assert _writes(ctl) == []


def _read_until(fd: int, marker: str, timeout: float = 60.0) -> str:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {seen.decode(errors='replace')}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, seen.decode(errors="replace")
            seen += chunk
    return seen.decode(errors="replace")


def test_interactive_apply_stops_when_the_changes_differ_from_the_approved_ones(
    emu: Emulator, clients: Clients, ctl: Callable[..., Any]
) -> None:
    state = load_desired_state(DESIRED_STATE)
    engine = Engine(state, clients)
    assert engine.apply(engine.plan([LINK])).ok
    plan = Engine(state, clients).plan([LINK])
    zone_id, link_id = str(plan.get(ZONE).id), str(plan.get(LINK).id)
    _drift(ctl, link_id, lambda b: b["properties"].__setitem__("registrationEnabled", True))

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "nsc_reconcile", "apply", str(DESIRED_STATE),
         "--emulator", str(emu.info["arm"]), "--target", LINK],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    os.close(terminal)
    assert process.stdout is not None
    try:
        shown = _read_until(process.stdout.fileno(), "Apply these changes?")
        assert f"~ update    {LINK}" in shown
        assert f"= unchanged {ZONE}" in shown
        # While the prompt waits, someone changes the zone the plan showed as unchanged.
        _drift(ctl, zone_id, lambda b: b["tags"].__setitem__("project", "someone-else"))
        ctl("DELETE", "requests")
        os.write(controller, b"yes\n")
        rest, _ = process.communicate(timeout=60)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    text = rest.decode(errors="replace")
    assert process.returncode == 1, text
    assert "differ from the ones you approved" in text
    assert f"{ZONE}: changes not in the approved plan: tags.project" in text
    assert _writes(ctl) == []
