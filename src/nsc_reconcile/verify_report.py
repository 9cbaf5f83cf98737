"""Rendering of verification reports: text for terminals, JSON, Markdown for reviews, JUnit XML
for CI (one testcase per check; FAIL is a ``<failure>``, SKIP a ``<skipped>``).

Imports no SDK. Evidence is already redacted at the source; nothing here can add a secret.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nsc_reconcile.verification import Check, VerifyReport

FORMATS = ("text", "json", "markdown", "junit")
SUITE = "nsc-reconcile verify"


def summary_line(report: VerifyReport) -> str:
    counts = report.counts()
    verdict = "all required checks passed" if report.ok else "FAILED"
    return (
        f"Verify: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped "
        f"({verdict})."
    )


def render_verify(report: VerifyReport, fmt: str = "text") -> str:
    if fmt == "text":
        return _text(report)
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2, ensure_ascii=False)
    if fmt == "markdown":
        return _markdown(report)
    if fmt == "junit":
        return junit_xml(report)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _header(report: VerifyReport) -> str:
    where = f" ({report.target})" if report.target else ""
    return (
        f"Verification for environment {report.environment}: subscription "
        f"{report.subscription_id}, resource group {report.resource_group}{where}"
    )


def _text(report: VerifyReport) -> str:
    lines = [_header(report), ""]
    for check in report.checks:
        lines.append(f"{check.status.value:<4}  {check.id}")
        lines.append(f"      {check.title}")
        if check.evidence:
            lines.append(f"      evidence: {check.evidence}")
        if check.detail:
            label = "why" if check.status.value == "FAIL" else "skipped"
            lines.append(f"      {label}: {check.detail}")
    lines += ["", summary_line(report)]
    if report.gate is not None:
        lines += ["", f"{report.gate.name} gate: {report.gate.status}"]
        for item in report.gate.items:
            lines.append(f"  {'DONE    ' if item.done else 'NOT DONE'}  {item.id}  {item.title}")
            if item.reason:
                lines.append(f"            why: {item.reason}")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_ICON = {"PASS": "PASS", "FAIL": "**FAIL**", "SKIP": "SKIP"}


def _markdown(report: VerifyReport) -> str:
    lines = [
        f"## nsc-reconcile verify: `{report.environment}`",
        "",
        f"Subscription `{report.subscription_id}`, resource group `{report.resource_group}`"
        + (f", {report.target}." if report.target else "."),
        "",
        f"**{summary_line(report)}**",
        "",
        "| status | check | evidence | why |",
        "|---|---|---|---|",
    ]
    for check in report.checks:
        lines.append(
            f"| {_ICON[check.status.value]} | `{_md(check.id)}`<br>{_md(check.title)} | "
            f"{_md(check.evidence)} | {_md(check.detail)} |"
        )
    if report.gate is not None:
        lines += [
            "",
            f"### {report.gate.name} gate: **{report.gate.status}**",
            "",
            "| item | status | evidence | why |",
            "|---|---|---|---|",
        ]
        for item in report.gate.items:
            status = "DONE" if item.done else "**NOT DONE**"
            lines.append(
                f"| `{_md(item.id)}` {_md(item.title)} | {status} | "
                f"{_md(', '.join(item.evidence))} | {_md(item.reason)} |"
            )
    return "\n".join(lines)


def _classname(check: Check) -> str:
    return "nsc_reconcile.verify." + check.id.split("/", 1)[0].replace("-", "_")


def junit_xml(report: VerifyReport) -> str:
    """JUnit XML: one ``<testsuite>``, one ``<testcase>`` per check."""
    counts = report.counts()
    suites = ET.Element(
        "testsuites",
        name=SUITE,
        tests=str(len(report.checks)),
        failures=str(counts["FAIL"]),
        errors="0",
        skipped=str(counts["SKIP"]),
        time=f"{report.seconds:.3f}",
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"{SUITE} ({report.environment})",
        tests=str(len(report.checks)),
        failures=str(counts["FAIL"]),
        errors="0",
        skipped=str(counts["SKIP"]),
        time=f"{report.seconds:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("environment", report.environment),
        ("subscription_id", report.subscription_id),
        ("resource_group", report.resource_group),
        ("target", report.target or ""),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    for check in report.checks:
        case = ET.SubElement(
            suite, "testcase", classname=_classname(check), name=f"{check.id}: {check.title}"
        )
        if check.status.value == "FAIL":
            failure = ET.SubElement(case, "failure", message=check.detail, type="VerifyFailure")
            failure.text = f"{check.detail}\nevidence: {check.evidence}"
        elif check.status.value == "SKIP":
            ET.SubElement(case, "skipped", message=check.detail)
        if check.evidence:
            ET.SubElement(case, "system-out").text = check.evidence
    if report.gate is not None:
        _gate_suite(suites, report)
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _gate_suite(suites: ET.Element, report: VerifyReport) -> None:
    """A second ``<testsuite>``: one testcase per gate item, a ``<failure>`` when not done."""
    assert report.gate is not None
    items = report.gate.items
    not_done = [item for item in items if not item.done]
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"{report.gate.name} gate ({report.environment}): {report.gate.status}",
        tests=str(len(items)),
        failures=str(len(not_done)),
        errors="0",
        skipped="0",
    )
    for item in items:
        case = ET.SubElement(
            suite, "testcase", classname="nsc_reconcile.gate", name=f"{item.id}: {item.title}"
        )
        if not item.done:
            failure = ET.SubElement(case, "failure", message=item.reason, type="GateNotDone")
            failure.text = item.reason
        ET.SubElement(case, "system-out").text = "\n".join(item.evidence)
