"""Operational errors of the CLI: one clear line, exit 1, never a traceback, no connection to
anything but loopback."""

from __future__ import annotations

import socket

import pytest

from nsc_reconcile.cli import main
from tests.paths import DESIRED_STATE


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


def test_unreachable_emulator_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, err = run(capsys, "plan", str(DESIRED_STATE), "--emulator", f"http://127.0.0.1:{port}")
    assert code == 1
    assert "cannot reach the emulator" in err
    assert "Traceback" not in err


def test_non_loopback_emulator_url_is_refused_before_any_connection(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_socket: socket.socket, address: object) -> None:
        raise AssertionError(f"connected to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    code, err = run(capsys, "plan", str(DESIRED_STATE), "--emulator", "http://10.10.1.4:443")
    assert code == 1
    assert "not a loopback address" in err
    assert "Traceback" not in err
