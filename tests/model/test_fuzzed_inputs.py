"""Fuzzed desired states (hypothesis): whatever the file holds, loading either succeeds or
raises DesiredStateError whose every problem is located (file:line:column) and says what is
expected; never another exception.

Two generators: structural mutations of the repository's desired_state.yaml (keys deleted,
renamed, duplicated; values of other types; deep nesting; YAML tags, anchors, aliases and
merge keys injected), with and without an environment overlay; and raw bytes (the seed's bytes
spliced, flipped and truncated, or arbitrary). The suite runs a bounded number of examples;
set NSC_FUZZ_EXAMPLES to run more by hand.
"""

from __future__ import annotations

import copy
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from nsc_reconcile import DesiredStateError, load_desired_state
from nsc_reconcile.graph import build_graph
from nsc_reconcile.summary import summarize
from tests.paths import DESIRED_STATE, ROOT

# Examples per test: the suite's bounded run (~10 s), or NSC_FUZZ_EXAMPLES by hand (random).
BY_HAND = os.environ.get("NSC_FUZZ_EXAMPLES")


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=int(BY_HAND) if BY_HAND else examples,
        deadline=None,
        database=None,  # nothing written into the repository
        derandomize=not BY_HAND,  # the suite's run is reproducible
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


SEED_TEXT = DESIRED_STATE.read_text(encoding="utf-8")
SEED: dict[str, Any] = YAML(typ="safe").load(SEED_TEXT)

TAGS = ["!!omap", "!!python/object:os.system", "!!python/name:os.system", "!!binary", "!!set",
        "!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!custom", "!", "!!str",
        "!!pairs", "!!map", "!!seq"]  # fmt: skip
SNIPPETS = [
    "x: &a {k: 1}\ny:\n  <<: *a\n  owner: me\n",  # merge key
    "m: &m\n  <<: *m\n",  # self merge
    "r: &r [1, *r]\n",  # recursive alias
    "n: " + "9" * 5000 + "\n",  # integer over 4300 digits
    "h: 0x" + "f" * 4000 + "\n",
    "d: " + "[" * 400 + "]" * 400 + "\n",  # deep nesting
    "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n",
    "u: *undefined\n",
    "<<: [1, 2]\n",
    "<<: {owner: x}\n",
    "? [a, b]\n: c\n",
    "--- \n...\n---\nx: 1\n",
    "%YAML 1.1\n---\nx: 1:2:3\n",
    "t: 2024-07-18 10:00:00\n",
    "f: 1e99999\n",
    's: "\\ud800"\n',
]

TRICKY_STRINGS = [
    "${env}", "${nope}", "${", "openai_account/nsc-aoai-dev.primary_key", "openai_account/x.y",
    "kind/a/b/c.output", "sk-lf-abcdef1234567890", "2024-07-18", "0x1F", "yes", "~", "live",
    "dry-run", "Enabled", "Allow", "LoadBalancer", "a" * 300,
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    st.sampled_from(TRICKY_STRINGS),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(data: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*at, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, (*at, index))


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def structural(draw: st.DrawFn) -> str:
    """The seed with 1-5 structural mutations, dumped, then maybe edited as text."""
    data = copy.deepcopy(SEED)
    for _ in range(draw(st.integers(1, 5))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _parent(data, path), path[-1]
        operation = draw(st.sampled_from(["delete", "replace", "rename", "duplicate", "nest"]))
        if operation == "delete":
            del parent[last]
        elif operation == "replace":
            parent[last] = draw(values)
        elif operation == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(last)
        elif operation == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        elif operation == "nest":
            depth = draw(st.integers(1, 8) | st.integers(9, 120))  # mostly under the limit
            wrapped = parent[last]
            for _ in range(depth):
                wrapped = [wrapped] if draw(st.booleans()) else {"k": wrapped}
            parent[last] = wrapped
    stream = io.StringIO()
    YAML(typ="safe").dump(data, stream)
    lines = stream.getvalue().splitlines(keepends=True)
    for _ in range(draw(st.integers(0, 3))):
        index = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["duplicate-line", "tag", "anchor-alias", "snippet"]))
        if edit == "duplicate-line":  # duplicate keys
            lines.insert(index, lines[index])
        elif edit == "tag" and ": " in lines[index]:
            head, tail = lines[index].split(": ", 1)
            lines[index] = f"{head}: {draw(st.sampled_from(TAGS))} {tail}"
        elif edit == "anchor-alias" and ": " in lines[index]:
            head, tail = lines[index].split(": ", 1)
            lines[index] = f"{head}: &a {tail}"
            later = draw(st.integers(index, len(lines) - 1))
            if ": " in lines[later]:
                head, _ = lines[later].split(": ", 1)
                lines[later] = f"{head}: *a\n"
        elif edit == "snippet":
            lines.append(draw(st.sampled_from(SNIPPETS)))
    return "".join(lines)


@st.composite
def raw_bytes(draw: st.DrawFn) -> bytes:
    """The seed's bytes spliced, flipped or truncated; or arbitrary bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=2000))
    data = bytearray(SEED_TEXT.encode())
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if operation == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=40))
        elif operation == "delete":
            del data[at : at + draw(st.integers(1, 200))]
        elif operation == "truncate":
            del data[at:]
    return bytes(data)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        shutil.copytree(ROOT / "envs", folder / "envs")
        yield folder


def load_error(path: Path, env: str | None) -> DesiredStateError | None:
    """None when the file loads (and `validate`'s summary renders); the DesiredStateError
    when not. Any other exception propagates and fails the test."""
    try:
        state = load_desired_state(path, env=env)
    except DesiredStateError as error:
        return error
    graph, _ = build_graph(state)
    assert summarize(state, graph)
    return None


def assert_loads_or_located_error(path: Path, env: str | None) -> None:
    """Either a DesiredState, or a DesiredStateError whose problems are all located in the
    files read (file:line:column), each with a message."""
    error = load_error(path, env)
    if error is None:
        return
    files = {path, path.parent / "envs" / f"{env}.yaml"}
    assert error.problems
    assert str(error).splitlines()[0].endswith("in the desired state:")
    for problem in error.problems:
        location = problem.location
        assert location is not None, str(problem)
        assert location.file in files, str(problem)
        assert location.line >= 1, str(problem)
        assert location.column >= 1, str(problem)
        assert problem.message.strip(), str(problem)


@fuzz(80)
@given(text=structural(), env=st.sampled_from([None, None, "staging", "prod"]))
def test_structurally_mutated_states_get_located_errors(
    workdir: Path, text: str, env: str | None
) -> None:
    path = workdir / "desired_state.yaml"
    path.write_text(text, encoding="utf-8")
    assert_loads_or_located_error(path, env)


@fuzz(200)
@given(data=raw_bytes())
def test_raw_bytes_get_located_errors(workdir: Path, data: bytes) -> None:
    path = workdir / "desired_state.yaml"
    path.write_bytes(data)
    assert_loads_or_located_error(path, None)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=range(len(SNIPPETS)))
def test_each_hostile_snippet_gets_a_located_error(workdir: Path, snippet: str) -> None:
    """Every known-bad construct, appended to the seed (no randomness)."""
    path = workdir / "desired_state.yaml"
    path.write_text(SEED_TEXT + snippet, encoding="utf-8")
    assert load_error(path, None) is not None
    assert_loads_or_located_error(path, None)
