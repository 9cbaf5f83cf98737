"""The README and the format documents against the tool's real output (issue 12 item 7): the
README's plan excerpt, its emulator walk-through (each command's documented exit code), its
`validate` example, its library examples, and the JSON/JUnit examples of docs/plan-format.md
and docs/verify-format.md (same fields, same elements) all match what the commands print on
the emulator today. A change of output without its documentation fails here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile.cli import cli
from nsc_reconcile.emulator.app import Emulator
from tests.conftest import run_cli
from tests.paths import DESIRED_STATE, ROOT

README = ROOT / "README.md"
CLI = ".venv/bin/python -m nsc_reconcile "


def blocks(path: Path, after: str = "") -> list[tuple[str, str]]:
    """The fenced blocks of a Markdown file (language, text), from the heading ``after``."""
    text = path.read_text(encoding="utf-8")
    if after:
        text = text[text.index(after) :]
    return [(m[1], m[2]) for m in re.finditer(r"```(\w*)\n(.*?)```", text, re.DOTALL)]


def block(path: Path, after: str, language: str = "") -> str:
    return next(text for lang, text in blocks(path, after) if lang == language)


def appears_in_order(documented: str, real: str) -> list[str]:
    """The documented lines (``...`` skips lines; a line ending in ``...`` is a prefix) that
    the real output does not have, in that order, from where the previous one matched."""
    lines = real.splitlines()
    at = 0
    missing = []
    for wanted in documented.splitlines():
        if wanted.strip() in ("", "...") or not wanted.strip():
            continue
        prefix = wanted.endswith("...")
        wanted_text = wanted[:-3].rstrip() if prefix else wanted.rstrip()
        found = next(
            (
                i
                for i in range(at, len(lines))
                if (
                    lines[i].startswith(wanted_text) if prefix else lines[i].rstrip() == wanted_text
                )
            ),
            None,
        )
        if found is None:
            missing.append(wanted)
        else:
            at = found + 1
    return missing


def shape(value: Any) -> Any:
    """The keys of a JSON value, recursively (lists: the shape of their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "..."}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


def same_keys(documented: Any, real: Any, where: str = "") -> list[str]:
    """Where the documented example's keys differ from the real document's."""
    problems = []
    if isinstance(documented, dict) and isinstance(real, dict):
        if set(documented) != set(real):
            problems.append(f"{where or '/'}: documented {sorted(documented)}, real {sorted(real)}")
        for key in set(documented) & set(real):
            problems += same_keys(documented[key], real[key], f"{where}/{key}")
    elif isinstance(documented, list) and isinstance(real, list) and documented and real:
        problems += same_keys(documented[0], real[0], f"{where}[0]")
    return problems


@pytest.fixture
def fast(ctl: Callable[..., Any]) -> None:
    ctl("POST", "config", {"lro_seconds": {"*": 0}})


# --------------------------------------------------------------------------- README
@pytest.mark.usefixtures("fast")
def test_readme_plan_excerpt_and_walkthrough_match_the_emulator(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    arm = str(emu.info["arm"])
    port = arm.rsplit(":", 1)[1]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", arm)  # the ready line's `arm`, as shown
    walkthrough = block(README, "Run it against a long-lived emulator", "sh")
    commands = [line for line in walkthrough.splitlines() if line.startswith(CLI)]
    assert commands[0].startswith(CLI + "emulator &")
    excerpt = block(README, "## What you see")
    ran = 0
    for line in commands[1:]:
        command, _, comment = line.partition("#")
        args = command.removeprefix(CLI).replace("PORT", port).split()
        code, out, err = run_cli(capsys, *args)
        documented = re.match(r"\s*exit (\d+)", comment)
        assert code == (int(documented[1]) if documented else 0), f"{line}\n{err}"
        if args[0] == "plan" and code == 2:  # the first plan: the README's excerpt
            assert appears_in_order(excerpt, out) == [], out
            summary = [line for line in excerpt.splitlines() if line.startswith("Plan: ")]
            assert summary[0] in out.splitlines()
        if '"No changes."' in comment:
            assert "No changes." in out
        if "every Definition-of-Done check PASS" in comment:
            assert " 0 failed" in out
            assert "FAIL " not in out
        ran += 1
    assert ran == 4
    # the library example, on the same (now applied) emulator
    example = block(README, "## As a library (runbooks)", "python")
    assert 'AzureTarget.for_azure("<subscription id>")' in example
    code_text = example.replace(
        'AzureTarget.for_azure("<subscription id>")', f'AzureTarget.for_emulator("{arm}")'
    )
    exec(compile(code_text, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "nsc-reconcile plan" in printed  # the Markdown plan
    assert "<testsuites" in printed  # the JUnit report
    loading = blocks(README, "Loading errors:")[0][1]
    exec(compile(loading, "README.md", "exec"), {})
    assert "nsc-aoai-staging" in capsys.readouterr().out


def test_readme_validate_example_is_what_validate_prints(tmp_path: Path) -> None:
    documented = block(README, "`validate` checks a file without any network call")
    lines = DESIRED_STATE.read_text(encoding="utf-8").splitlines(keepends=True)
    problems = re.findall(r"desired_state\.yaml:(\d+):\d+: ([^:]+):", documented)
    assert len(problems) == 3
    # the three mistakes the example shows, made at the lines it names
    edits = {
        "public_network_access": ("Disabled", "Enabled"),
        "target": ("openai_account/nsc-aoai-${env}", "openai_account/nsc-aoai-x"),
        "value": ("dry-run", "live"),
    }
    for number, field in problems:
        old, new = edits[field.rsplit(".", 1)[-1]]
        index = int(number) - 1
        assert old in lines[index], (number, lines[index])
        lines[index] = lines[index].replace(old, new)
    (tmp_path / "desired_state.yaml").write_text("".join(lines), encoding="utf-8")
    done = subprocess.run(  # a process of its own, as a user runs it (a fresh redactor)
        [sys.executable, "-m", "nsc_reconcile", "validate", "desired_state.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == documented.strip()


def test_readme_names_every_command_and_its_documents_exist() -> None:
    text = README.read_text(encoding="utf-8")
    table = set(re.findall(r"\| `python -m nsc_reconcile ([a-z-]+)", text))
    assert table == set(cli.commands)
    for linked in re.findall(r"`(docs/[a-z-]+\.md)`", text):
        assert (ROOT / linked).is_file(), linked
    assert (ROOT / "examples" / "drift_check.py").is_file()


# --------------------------------------------------------------------------- formats
@pytest.mark.usefixtures("fast")
def test_plan_and_verify_format_documents_match_real_output(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    arm = f"--emulator={emu.info['arm']}"
    code, out, err = run_cli(capsys, "plan", str(DESIRED_STATE), arm, "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    documented_plan = json.loads(block(ROOT / "docs" / "plan-format.md", "## Plan", "json"))
    assert same_keys(shape(documented_plan), shape(plan)) == []
    assert documented_plan["format"] == plan["format"]

    code, out, err = run_cli(capsys, "verify", str(DESIRED_STATE), arm, "--format", "json")
    assert code == 3, err  # nothing applied yet: checks fail
    report = json.loads(out)
    verify_doc = ROOT / "docs" / "verify-format.md"
    documented = json.loads(block(verify_doc, "## JSON", "json"))
    assert same_keys(shape(documented), shape(report)) == []
    assert (documented["format"], documented["tool"]) == (report["format"], report["tool"])
    assert {c["status"] for c in report["checks"]} <= {"PASS", "FAIL", "SKIP"}
    assert report["gate"]["status"] in ("OPEN", "CLOSED")
    families = {c["id"].split("/", 1)[0] for c in report["checks"]}
    text = verify_doc.read_text(encoding="utf-8")
    assert [f for f in families if f"`{f}" not in text] == []

    code, out, err = run_cli(capsys, "verify", str(DESIRED_STATE), arm, "--format", "junit")
    real = ET.fromstring(out.split("\n", 1)[1])
    example = ET.fromstring(block(verify_doc, "## JUnit", "xml").split("\n", 1)[1])
    assert _elements(example) <= _elements(real) | {("skipped", ("message",))}
    assert _elements(real) <= _elements(example) | {("skipped", ("message",))}


def _elements(root: ET.Element) -> set[tuple[str, tuple[str, ...]]]:
    """Each element name with its attribute names, as a set."""
    return {(e.tag, tuple(sorted(e.attrib))) for e in root.iter()}


def test_verify_format_names_every_smoke_check_family() -> None:
    """The smoke ids the code makes (`smoke-...`) are all documented."""
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for p in (ROOT / "src" / "nsc_reconcile" / "verification").glob("*.py")
    )
    made = set(re.findall(r'f?"(smoke-[a-z-]+)[/"]', source))
    text = (ROOT / "docs" / "verify-format.md").read_text(encoding="utf-8")
    assert made
    assert sorted(f for f in made if f"`{f}" not in text) == []
