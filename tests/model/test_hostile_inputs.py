"""Hostile desired-state files neither hang nor exhaust memory: `validate` runs in a child
process capped at 512 MiB of address space (a hang is caught by a generous timeout, not
timed) and must exit 1 with the located problem, no traceback.

Covers the issue's findings: "billion laughs" aliases, a 1 MB string, values that made the
credential and output-reference regexes quadratic, deep nesting, huge integers, recursive
aliases and merges, non-UTF-8 bytes and constructor tags.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from nsc_reconcile import DesiredStateError, load_desired_state
from nsc_reconcile.errors import Location
from nsc_reconcile.yamlsource import MAX_DEPTH

MEMORY_CAP = 512 * 1024 * 1024
HANG_GUARD_S = 120  # what counts as hanging; the cases take well under a second each


@dataclass(frozen=True)
class Hostile:
    id: str
    build: Callable[[str], bytes]  # the seed's text -> the file's bytes
    line: int | str  # expected line: a number, or text whose (first) line it is
    expect: str  # fragment of the problem's message
    field: str = ""  # expected field path, when the problem has one


def _laughs(_: str) -> bytes:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]")
    return ("\n".join(lines) + "\n").encode()


def _value(text: str, new: str, old: str = "      value: dry-run ") -> bytes:
    assert text.count(old) == 1
    return text.replace(old, f"      value: {new} ").encode()


AGENT_MODE = "  - name: agent-execute-mode"  # the item the value problem points at

CASES = [
    Hostile("billion-laughs", _laughs, 5, "expands to more than 100000 nodes"),
    Hostile("1mb-string", lambda t: _value(t, "a" * 1_000_000), 1, "larger than 512 KiB"),
    # Under the size limit, shaped to make backtracking regexes quadratic (minutes each).
    Hostile("credential-regex", lambda t: _value(t, "-eyJ" * 120_000), AGENT_MODE,
            "is not one of dry-run, live", "secrets.items[6]"),
    Hostile("url-regex", lambda t: _value(t, "a" * 400_000), AGENT_MODE,
            "is not one of dry-run, live", "secrets.items[6]"),
    Hostile("output-ref-regex",
            lambda t: _value(t, "x", "      source: {external: true}").replace(
                b"value: x ", b"source: {output: " + b"a/" * 200_000 + b"}"),
            "a/a/", "expected `kind/name.output`", "secrets.items[7].source.output"),
    Hostile("deep-nesting", lambda t: (t + "extra: " + "[" * 100_000 + "]" * 100_000 + "\n").encode(),
            "extra: [[[", f"nesting deeper than {MAX_DEPTH} levels"),
    Hostile("huge-integer", lambda t: t.replace("storage_gb: 32", "storage_gb: " + "9" * 5000).encode(),
            "storage_gb: 999", "integer of 5000 characters"),
    Hostile("recursive-alias", lambda t: (t + "extra: &r [1, *r]\n").encode(), "extra: &r",
            "refers to a node that contains it"),
    Hostile("self-merge", lambda t: (t + "extra: &m\n  <<: *m\n").encode(), "  <<: *m",
            "refers to a node that contains it"),
    Hostile("non-utf8", lambda t: t.encode().replace(b"koreacentral", b"korea\xffcentral"),
            "location: korea", "not UTF-8: byte 0xff"),
    Hostile("python-tag", lambda t: t.replace("location: koreacentral",
                                              "location: !!python/object/apply:os.system [ls]").encode(),
            "location: !!python", "YAML tag !!python/object/apply:os.system is not supported"),
]  # fmt: skip


# The CLI in a child process whose address space is capped (set in the child itself, not
# through preexec_fn, which is unsafe in a threaded parent).
CAPPED_CLI = (
    "import resource, sys\n"
    f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_CAP}, {MEMORY_CAP}))\n"
    "from nsc_reconcile.cli import main\n"
    "main(sys.argv[1:])\n"
)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_file_gets_a_located_error_within_bounds(
    case: Hostile, seed_text: str, tmp_path: Path
) -> None:
    path = tmp_path / "desired_state.yaml"
    data = case.build(seed_text)
    path.write_bytes(data)
    if isinstance(case.line, int):
        line = case.line
    else:
        marker = case.line.encode()
        line = data[: data.index(marker)].count(b"\n") + 1

    done = subprocess.run(
        [sys.executable, "-c", CAPPED_CLI, "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "MemoryError" not in done.stderr
    located = re.compile(rf"^  {re.escape(str(path))}:{line}:\d+: (.*)$")
    problems = [m.group(1) for m in map(located.match, done.stderr.splitlines()) if m]
    assert any(case.expect in p for p in problems), done.stderr[:2000]
    if case.field:
        assert any(p.startswith(f"{case.field}: ") for p in problems), done.stderr[:2000]
    assert len(done.stderr) < 5000  # the value is not echoed whole


def test_merge_keys_load_and_problems_point_into_the_merged_mapping(
    seed_text: str, tmp_path: Path
) -> None:
    """`<<: {...}` merges are plain YAML: they load, and a bad merged value is located where
    it is written (this used to be `KeyError: 'owner'`)."""
    old = "        sku: GlobalStandard\n        capacity: 30\n"
    assert seed_text.count(old) == 1
    path = tmp_path / "desired_state.yaml"
    path.write_text(seed_text.replace(old, "        <<: {sku: GlobalStandard, capacity: 30}\n"))
    (deployment,) = load_desired_state(path).openai_accounts[0].deployments
    assert (deployment.sku, deployment.capacity) == ("GlobalStandard", 30)

    path.write_text(
        seed_text.replace(old, "        <<: {capacity: 30,\n             sku: Global}\n")
    )
    with pytest.raises(DesiredStateError) as error:
        load_desired_state(path)
    (problem,) = error.value.problems
    assert problem.field == "openai_accounts[0].deployments[0].sku"
    line = seed_text.index(old)
    assert problem.location == Location(path, seed_text.count("\n", 0, line) + 2, 14)
