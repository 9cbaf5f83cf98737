"""The scheduled drift check of docs/runbooks.md (examples/drift_check.py) against the
emulator with the real SDK clients: no drift exits 0 and posts nothing; drift made out of band
exits 2, prints the Markdown report, writes it to --report and POSTs it to the webhook (a
loopback HTTP server); a webhook that refuses, or a file that does not load, exits 1 without
quoting the webhook URL."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from nsc_reconcile.emulator.app import Emulator
from tests.paths import DESIRED_STATE, ROOT

EXAMPLE = ROOT / "examples" / "drift_check.py"
ACCOUNT_ID = (
    "/subscriptions/00000000-0000-0000-0000-00000000a1b2/resourceGroups/2dt-final-team4/"
    "providers/Microsoft.CognitiveServices/accounts/nsc-aoai-dev"
)
HOOK_TOKEN = "sig-0123456789abcdef"  # the secret part of a webhook URL


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("drift_check", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


drift_check = _load_example()


class Webhook:
    """A loopback HTTP server standing in for a Teams/Slack incoming webhook."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[dict[str, Any]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(
                    {
                        "path": self.path,
                        "type": self.headers.get("Content-Type"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?sig={HOOK_TOKEN}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    monkeypatch.setenv("NO_PROXY", "*")  # the webhook is on loopback: never via a proxy
    with Webhook() as hook:
        monkeypatch.setenv(drift_check.WEBHOOK_ENV, hook.url)
        yield hook


@pytest.mark.usefixtures("applied")
def test_no_drift_exits_0_and_posts_nothing(
    emu: Emulator,
    webhook: Webhook,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = drift_check.main([str(DESIRED_STATE), "--emulator", emu.info["arm"]])
    assert code == 0
    assert webhook.posts == []
    assert "no drift in dev" in capsys.readouterr().out


@pytest.mark.usefixtures("applied")
def test_drift_exits_2_and_posts_the_markdown_report(
    emu: Emulator, ctl: Callable[..., Any], tmp_path: Path
) -> None:
    account = ctl("GET", f"state?id={ACCOUNT_ID}")
    account["properties"]["publicNetworkAccess"] = "Enabled"  # someone opened it in the portal
    ctl("PUT", f"state?id={ACCOUNT_ID}", account)
    report = tmp_path / "drift.md"
    with Webhook() as hook:
        env = {**os.environ, drift_check.WEBHOOK_ENV: hook.url, "NO_PROXY": "*"}
        done = subprocess.run(  # the script as a runbook runs it
            [sys.executable, str(EXAMPLE), str(DESIRED_STATE), "--emulator", emu.info["arm"],
             "--report", str(report)],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    markdown = report.read_text(encoding="utf-8")
    assert "openai_account/nsc-aoai-dev" in markdown
    assert "publicNetworkAccess" in markdown
    assert markdown.strip() in done.stdout
    (posted,) = hook.posts
    assert posted["type"] == "application/json"
    assert posted["body"]["text"] == markdown
    assert posted["body"]["environment"] == "dev"
    assert posted["body"]["summary"]["update"] == 1
    assert HOOK_TOKEN not in done.stdout + done.stderr


@pytest.mark.usefixtures("applied")
def test_a_webhook_that_refuses_is_an_error_without_its_url(
    emu: Emulator,
    ctl: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ctl("DELETE", f"state?id={ACCOUNT_ID}")  # the account is gone: drift
    monkeypatch.setenv("NO_PROXY", "*")
    with Webhook(status=500) as hook:
        monkeypatch.setenv(drift_check.WEBHOOK_ENV, hook.url)
        code = drift_check.main([str(DESIRED_STATE), "--emulator", emu.info["arm"]])
    err = capsys.readouterr().err
    assert code == 1
    assert len(hook.posts) == 1
    assert "webhook at 127.0.0.1 did not accept the report (500)" in err
    assert HOOK_TOKEN not in err


def test_a_desired_state_that_does_not_load_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "desired_state.yaml"
    broken.write_text("version: 1\nenvironment: dev\n", encoding="utf-8")
    assert drift_check.main([str(broken), "--emulator", "http://127.0.0.1:9"]) == 1
    assert "required field 'location' is missing" in capsys.readouterr().err
