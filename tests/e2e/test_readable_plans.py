"""Readable plans (issue 12 item 4) through the real CLI against the emulator: Kubernetes
objects summarised (every field with --verbose), unchanged resources counted instead of
listed (--show-unchanged lists them), colour only on a terminal without NO_COLOR (run in a
pseudo-terminal), and Markdown plans that fit a pull-request comment."""

from __future__ import annotations

import copy
import json
import os
import pty
import re
import subprocess
import sys
from typing import Any

import pytest
from kubernetes import client as k8s

from nsc_reconcile import colour
from nsc_reconcile.cli import main
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.plan_markdown import GITHUB_COMMENT_LIMIT
from nsc_reconcile.plans import Plan
from tests.paths import DESIRED_STATE

WORKLOAD = "kubernetes_workload/langfuse"
OBJECT_LINE = re.compile(
    r"^      ([+~!]) ([A-Z]\w*/[a-z0-9-]+) +(create|update|replace) +(\d+) fields?"
)
ANSI = "\x1b["
GREEN_CREATE = "\x1b[32m+ create"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().out


def plan_cli(capsys: pytest.CaptureFixture[str], emu: Emulator, *args: str) -> str:
    code, out = run(capsys, "plan", str(DESIRED_STATE), "--emulator", str(emu.info["arm"]), *args)
    assert code == 0, out
    return out


def section(out: str, address: str) -> list[str]:
    """The lines under ``address`` in a text plan, up to the next resource."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith(f" {address}"))
    rest = lines[start + 1 :]
    return rest[: next((i for i, line in enumerate(rest) if not line.startswith(" ")), len(rest))]


def objects_of(plan: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The workload's changes by object (``Kind/name``), from the JSON plan."""
    workload = next(r for r in plan["resources"] if r["address"] == WORKLOAD)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for change in workload["changes"]:
        grouped.setdefault(change["path"].split(".", 1)[0], []).append(change)
    return grouped


# --------------------------------------------------------------------------- summaries
def test_kubernetes_objects_summarised_and_verbose_shows_every_field(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = json.loads(plan_cli(capsys, emu, "--format", "json"))
    expected = {key: len(changes) for key, changes in objects_of(planned).items()}
    assert len(expected) >= 10  # Namespace, Deployments, StatefulSets, Services, ...

    lines = section(plan_cli(capsys, emu), WORKLOAD)
    summarised = {m[2]: (m[1], m[3], int(m[4])) for m in map(OBJECT_LINE.match, lines) if m}
    assert summarised == {key: ("+", "create", n) for key, n in expected.items()}, lines
    assert not [line for line in lines if " = " in line], "a field line in the summary"
    assert "plan --verbose shows every field" in lines[-1]
    # Other resources keep one line per field.
    zone = section(plan_cli(capsys, emu), "private_dns_zone/privatelink.openai.azure.com")
    assert '      + tags.managed-by = "nsc-reconcile"' in zone

    verbose = section(plan_cli(capsys, emu, "--verbose"), WORKLOAD)
    assert len(verbose) == sum(expected.values())
    assert "      + Deployment/langfuse.spec.replicas = 1" in verbose
    assert not [line for line in verbose if OBJECT_LINE.match(line)]


@pytest.mark.usefixtures("applied")
def test_update_names_the_objects_and_fields_that_change(
    emu: Emulator, kube: k8s.ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # Someone else scales the web Deployment and deletes the Redis Service.
    k8s.AppsV1Api(kube).patch_namespaced_deployment(
        "langfuse", "langfuse", [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    )
    k8s.CoreV1Api(kube).delete_namespaced_service("langfuse-redis", "langfuse")

    code, out = run(capsys, "plan", str(DESIRED_STATE), "--emulator", str(emu.info["arm"]))
    assert code == 0, out
    lines = section(out, WORKLOAD)
    assert out.splitlines()[2] == f"~ update    {WORKLOAD}"
    assert re.match(r"      ~ Deployment/langfuse +update  1 field: spec\.replicas$", lines[0])
    assert re.match(r"      \+ Service/langfuse-redis +create  \d+ fields$", lines[1]), lines
    assert len(lines) == 3  # the two objects and the hint: unchanged objects are not listed


# --------------------------------------------------------------------------- unchanged
@pytest.mark.usefixtures("applied")
def test_noop_plan_counts_unchanged_and_show_unchanged_lists_them(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = json.loads(plan_cli(capsys, emu, "--format", "json"))
    unchanged = [r["address"] for r in planned["resources"] if r["action"] == "unchanged"]
    read = [r["address"] for r in planned["resources"] if r["action"] == "read"]
    assert len(unchanged) > 30
    assert read

    out = plan_cli(capsys, emu)
    assert "No changes. Live state matches the desired state." in out
    assert not [line for line in out.splitlines() if line.startswith("= ")]
    assert f"{len(unchanged)} unchanged resources not shown (plan --show-unchanged" in out
    assert all(f"< read      {address}" in out for address in read)

    listed = plan_cli(capsys, emu, "--show-unchanged")
    assert all(f"= unchanged {address}" in listed.splitlines() for address in unchanged)
    assert "not shown" not in listed


# --------------------------------------------------------------------------- colour
def _in_terminal(arm: str, *args: str, **env: str) -> str:
    """Run the CLI with stdout on a pseudo-terminal; what it printed there."""
    controller, terminal = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    process = subprocess.Popen(
        [sys.executable, "-m", "nsc_reconcile", *args, "--emulator", arm],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=subprocess.DEVNULL,
        env={**environ, "TERM": "xterm-256color", **env},
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=60) in (0, 3)
    return b"".join(chunks).decode()


def test_colour_in_a_terminal_only_and_never_with_no_color(emu: Emulator) -> None:
    arm = str(emu.info["arm"])
    plan = ("plan", str(DESIRED_STATE))

    coloured = _in_terminal(arm, *plan)
    assert GREEN_CREATE in coloured  # `+` green
    assert "\x1b[33m~ update" in coloured  # `~` yellow
    assert "\x1b[31m! data_collection_rule/" in coloured  # a note (`!`) red
    assert "\x1b[32m+ Deployment/langfuse " in coloured  # an object line

    assert ANSI not in _in_terminal(arm, *plan, NO_COLOR="1")
    controller, terminal = pty.openpty()  # no-color.org: an empty NO_COLOR is not set
    with os.fdopen(terminal, "w") as tty:
        assert colour.wanted(tty, {"NO_COLOR": ""})
        assert not colour.wanted(tty, {"NO_COLOR": "0"})
    os.close(controller)
    # A machine format stays plain even on a terminal.
    as_json = _in_terminal(arm, *plan, "--format", "json")
    assert ANSI not in as_json
    assert json.loads(as_json)["summary"]["create"] > 30

    piped = subprocess.run(
        [sys.executable, "-m", "nsc_reconcile", *plan, "--emulator", arm],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "NO_COLOR"},
    )
    assert "+ create" in piped.stdout
    assert ANSI not in piped.stdout


def test_verify_colours_pass_and_fail_in_a_terminal(emu: Emulator) -> None:
    # From the baseline some checks pass (the existing VNet) and many fail.
    coloured = _in_terminal(str(emu.info["arm"]), "verify", str(DESIRED_STATE))
    assert "\x1b[32mPASS\x1b[0m " in coloured
    assert "\x1b[31mFAIL\x1b[0m " in coloured


# --------------------------------------------------------------------------- markdown
def _rows(markdown: str) -> list[str]:
    lines = markdown.splitlines()
    start = lines.index("|---|---|---|") + 1
    return lines[start : next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))]


def test_markdown_one_row_per_change_with_details_folded(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = json.loads(plan_cli(capsys, emu, "--format", "json"))
    changes = [r for r in planned["resources"] if r["action"] not in ("unchanged", "read")]
    markdown = plan_cli(capsys, emu, "--format", "markdown")
    rows = _rows(markdown)
    assert [row.split(" | ")[1] for row in rows] == [f"`{r['address']}`" for r in changes]
    for row, resource in zip(rows, changes, strict=True):
        count = len(resource["changes"])
        assert row.count("<details>") == row.count("</details>") == 1, row[:200]
        if resource["address"] == WORKLOAD:
            assert f"objects, {count} fields</summary>" in row  # one line per object
        else:
            assert f"<summary>{count} field{'s' if count > 1 else ''}</summary>" in row
            # A grant's description comes first, its ids folded (tests/e2e/test_grant_readability.py).
            described = resource.get("description")
            assert row.count("<br>") == count - 1 + bool(described)
            assert not described or f"| {described}<br><details>" in row, row
    assert "&lt;rule&gt;" in markdown  # a note's <placeholder> survives as text
    assert len(markdown) < 60_000
    assert "Truncated" not in markdown


def test_large_markdown_plan_fits_a_comment(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = json.loads(plan_cli(capsys, emu, "--format", "json"))
    large = copy.deepcopy(planned)
    large["resources"] = [
        {**resource, "address": f"{resource['address']}-{n}"}
        for n in range(40)
        for resource in planned["resources"]
    ]
    plan = Plan.from_json(large)
    full_text = plan.render("text", verbose=True)
    assert len(full_text) > 4 * GITHUB_COMMENT_LIMIT

    for verbose in (False, True):
        markdown = plan.render("markdown", verbose=verbose)
        assert len(markdown) <= 60_000 < GITHUB_COMMENT_LIMIT
        rows = _rows(markdown)
        assert 10 < len(rows) < len(plan.changes)
        assert all(row.endswith(" |") and row.count("<details>") == 1 for row in rows)
        last = markdown.splitlines()[-1]
        assert last.startswith("**Truncated:**")
        assert "GitHub allows 65 536" in last
        left = int(re.search(r"(\d+) of (\d+) changes", last)[1])  # type: ignore[index]
        assert left >= len(plan.changes) - len(rows)
        assert "**Notes**" in markdown  # notes are kept ahead of the rows that do not fit


def test_markdown_cuts_a_single_huge_change(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = json.loads(plan_cli(capsys, emu, "--format", "json"))
    workload = next(r for r in planned["resources"] if r["address"] == WORKLOAD)
    workload["changes"] = workload["changes"] * 30  # one row far over the limit
    plan = Plan.from_json(planned)
    markdown = plan.render("markdown", verbose=True)
    assert len(markdown) <= 60_000
    row = next(r for r in _rows(markdown) if WORKLOAD in r)
    assert "more (truncated)</details> |" in row
