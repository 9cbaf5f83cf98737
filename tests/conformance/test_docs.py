"""The documentation of the recordings is generated from them and kept current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conformance.replay import fidelity_table, load_recordings, sources_table
from tests.paths import ROOT

RECORDINGS = load_recordings()
DOCS = [
    (ROOT / "docs" / "emulator.md", "fidelity", fidelity_table(RECORDINGS)),
    (ROOT / "tests" / "conformance" / "README.md", "sources", sources_table(RECORDINGS)),
]


def section(path: Path, name: str) -> str:
    text = path.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {name}:begin[^>]*-->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert found, f"{path} has no {name} markers"
    return found.group(1)


@pytest.mark.parametrize(("path", "name", "expected"), DOCS, ids=[d[1] for d in DOCS])
def test_generated_section_is_current(path: Path, name: str, expected: str) -> None:
    assert section(path, name) == expected, (
        f"{path.name} is stale: run `python -m tests.conformance.replay --write`"
    )


def test_every_product_type_is_recorded_or_named() -> None:
    table = fidelity_table(RECORDINGS)
    assert "with no recording" in table
    assert "`Microsoft.Network/privateEndpoints`" not in table.split("with no recording")[1]
