"""Pieces of `verify` that need no emulator: resolver parsing, report rendering, layering."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from nsc_reconcile.verification import Check, Status, VerifyReport, parse_resolver
from tests.test_boundaries import PACKAGE, imports_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:53535", ("127.0.0.1", 53535)),
        ("10.10.0.4", ("10.10.0.4", 53)),
        ("localhost:5353", ("127.0.0.1", 5353)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 53)),
    ],
)
def test_resolver_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_resolver(text) == expected


@pytest.mark.parametrize("text", ["dns.example.com:53", "127.0.0.1:x", "127.0.0.1:0", ""])
def test_bad_resolver_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--resolver"):
        parse_resolver(text)


def _report() -> VerifyReport:
    return VerifyReport(
        checks=[
            Check("a/1", "first <&> item", Status.PASS, "id=/x; ip=10.0.0.1"),
            Check("b/2", "second", Status.FAIL, "value | piped", 'it is "Enabled" & open'),
            Check("c/3", "third", Status.SKIP, "", "needs a resolver"),
        ],
        environment="dev",
        subscription_id="sub",
        resource_group="rg",
        target="emulator",
        seconds=0.25,
    )


def test_renderings() -> None:
    report = _report()
    assert report.exit_code == 3
    assert not report.ok
    assert report.counts() == {"PASS": 1, "FAIL": 1, "SKIP": 1}
    text = report.render("text")
    assert "FAIL  b/2" in text
    assert "why: it is" in text
    assert "skipped: needs a resolver" in text
    assert text.endswith("Verify: 1 passed, 1 failed, 1 skipped (FAILED).")
    assert json.loads(report.render("json"))["checks"][1]["status"] == "FAIL"
    assert "value \\| piped" in report.render("markdown")
    root = ET.fromstring(report.render("junit"))
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["a/1: first <&> item", "b/2: second", "c/3: third"]
    assert cases[1].find("failure") is not None
    assert cases[2].find("skipped") is not None
    assert cases[0].find("failure") is None
    assert cases[0].find("skipped") is None
    with pytest.raises(ValueError, match="unknown format"):
        report.render("yaml")


def test_skips_alone_still_pass() -> None:
    report = VerifyReport([Check("c", "t", Status.SKIP, "", "why")], "dev", "s", "rg")
    assert report.ok
    assert report.exit_code == 0


def test_the_package_attribute_stays_the_library_function() -> None:
    import nsc_reconcile.verification

    assert callable(nsc_reconcile.verify)
    assert nsc_reconcile.verify.__module__ == "nsc_reconcile"


def test_rendering_imports_no_sdk() -> None:
    found = imports_of(PACKAGE / "verify_report.py")
    assert {n for n in found if n.startswith(("azure", "kubernetes", "dns"))} == set()
