"""The spec pack on a fresh machine: where the tests find it, scripts/fetch-specs (without the
network: --dry-run, and a local server standing in for GitHub), and the lock file against the pack
when there is one."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import oav
from tests.oav import LOCK, VALIDATOR, SpecPack
from tests.paths import ROOT

FETCH = ROOT / "scripts" / "fetch-specs"
PINNED = re.compile(
    r"^https://raw\.githubusercontent\.com/Azure/azure-rest-api-specs/([0-9a-f]{40})/(\S+) -> "
)


def locked() -> list[tuple[str, int, str]]:
    lines = LOCK.read_text(encoding="utf-8").splitlines()
    entries = [line.split(maxsplit=2) for line in lines if line.strip() and line[0] != "#"]
    return [(commit, int(chars), path) for commit, chars, path in entries]


def run_fetch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "no_proxy": "*", "NO_PROXY": "*"}
    env.pop("NSC_AZURE_SPECS", None)
    return subprocess.run(
        [str(FETCH), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_fetch_specs_dry_run_lists_every_locked_file_at_its_pinned_commit(tmp_path: Path) -> None:
    run = run_fetch("--dry-run", str(tmp_path / "pack"))
    assert run.returncode == 0, run.stderr
    listed = [m.groups() for m in map(PINNED.match, run.stdout.splitlines()) if m]
    assert listed == [(commit, path) for commit, _, path in locked()]
    assert listed, "empty lock"
    assert all(path.startswith("specification/") for _, path in listed)
    assert f"{len(listed)} files (dry run: nothing fetched)" in run.stdout
    assert not (tmp_path / "pack").exists()


@pytest.fixture
def fake_github() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A local server answering ``/<commit>/<path>`` from a dict (404 otherwise)."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_specs_checks_characters_not_bytes_and_fails_on_any_bad_file(
    tmp_path: Path, fake_github: tuple[str, dict[str, bytes]]
) -> None:
    base_url, files = fake_github
    commit = "0" * 40
    good = json.dumps({"description": "naïve café ✓"}, ensure_ascii=False)
    files[f"/{commit}/specification/a/good.json"] = good.encode()
    files[f"/{commit}/specification/a/short.json"] = b'{"x": 1}'
    lock = tmp_path / "lock"
    lock.write_text(
        f"# comment\n{commit} {len(good)} specification/a/good.json\n"
        f"{commit} 99 specification/a/short.json\n"
        f"{commit} 5 specification/a/missing.json\n",
        encoding="utf-8",
    )
    target = tmp_path / "pack"
    run = run_fetch("--lock", str(lock), "--base-url", base_url, str(target))
    assert run.returncode == 1, run.stdout + run.stderr
    assert len(good.encode()) != len(good)  # the count is of characters
    assert (target / "specification/a/good.json").read_text(encoding="utf-8") == good
    assert not (target / "specification/a/short.json").exists()
    assert "FAILED  specification/a/short.json" in run.stdout
    assert "8 characters (8 bytes), locked: 99" in run.stdout
    assert "FAILED  specification/a/missing.json" in run.stdout
    assert "1 fetched, 0 already there, 2 failed" in run.stdout

    lock.write_text(f"{commit} {len(good)} specification/a/good.json\n", encoding="utf-8")
    again = run_fetch("--lock", str(lock), "--base-url", base_url, str(target))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 fetched, 1 already there, 0 failed" in again.stdout


def test_fetch_specs_refuses_a_lock_without_pinned_commits(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    lock.write_text("main 10 specification/a.json\n", encoding="utf-8")
    run = run_fetch("--dry-run", "--lock", str(lock))
    assert run.returncode == 2
    assert "is not 40 hex digits" in run.stderr


def test_the_pack_is_looked_for_in_order_and_its_absence_is_a_named_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared, cached = tmp_path / "shared", tmp_path / "cached"
    monkeypatch.setattr(oav, "SHARED_PACK", shared)
    monkeypatch.setattr(oav, "CACHED_PACK", cached)
    monkeypatch.delenv("NSC_AZURE_SPECS", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=r"spec pack not found at .*scripts/fetch-specs"
    ):
        oav.require_spec_pack()
    (cached / "specification").mkdir(parents=True)
    assert oav.find_spec_pack() == SpecPack(cached, VALIDATOR)  # fetched: our validator
    (shared / "specification").mkdir(parents=True)
    (shared / "validate_traffic.js").touch()
    assert oav.find_spec_pack() == SpecPack(shared, shared / "validate_traffic.js")
    monkeypatch.setenv("NSC_AZURE_SPECS", str(cached))
    assert oav.find_spec_pack() == SpecPack(cached, VALIDATOR)
    monkeypatch.setenv("NSC_AZURE_SPECS", str(tmp_path / "typo"))
    assert oav.find_spec_pack() is None  # no fallback past an explicit choice
    with pytest.raises(pytest.skip.Exception, match=r"NSC_AZURE_SPECS=.*typo \(no specification"):
        oav.require_spec_pack()


def test_the_lock_describes_the_pack(spec_pack: SpecPack) -> None:
    in_pack = {
        path.relative_to(spec_pack.root).as_posix()
        for path in (spec_pack.root / "specification").rglob("*")
        if path.is_file()
    }
    wrong = {
        path: chars
        for _, chars, path in locked()
        if path not in in_pack or len((spec_pack.root / path).read_text(encoding="utf-8")) != chars
    }
    assert not wrong, f"missing or not the locked character count: {wrong}"
    assert in_pack == {path for _, _, path in locked()}


def test_our_validator_is_the_packs(spec_pack: SpecPack) -> None:
    if spec_pack.validator == VALIDATOR:
        pytest.skip(f"the spec pack at {spec_pack.root} has no validate_traffic.js of its own")
    assert VALIDATOR.read_bytes() == spec_pack.validator.read_bytes(), (
        f"{VALIDATOR} differs from {spec_pack.validator}: copy the pack's into the repository"
    )
