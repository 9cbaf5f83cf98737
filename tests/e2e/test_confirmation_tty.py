"""Interactive apply on a real terminal (a pseudo-terminal): only "yes" applies."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from nsc_reconcile.emulator.app import Emulator
from tests.paths import DESIRED_STATE


def _apply_answering(arm: str, answer: str) -> tuple[int, str]:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "nsc_reconcile", "apply", str(DESIRED_STATE), "--emulator", arm],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.close(terminal)
    # The terminal carries only the keystrokes (the prompt goes to stdout); typed ahead,
    # they wait in the terminal until the prompt reads them.
    os.write(controller, f"{answer}\n".encode())
    out, _ = process.communicate(timeout=60)
    os.close(controller)
    return process.returncode, out


def test_only_yes_applies(emu: Emulator, ctl: Callable[..., Any]) -> None:
    arm = str(emu.info["arm"])
    code, out = _apply_answering(arm, "no")
    assert code == 1, out
    assert "nothing was written" in out
    assert not [r for r in ctl("GET", "requests") if r["method"] == "PUT"]

    code, out = _apply_answering(arm, "yes")
    assert code == 0, out
    assert "Apply complete" in out
    assert [r for r in ctl("GET", "requests") if r["method"] == "PUT"]
