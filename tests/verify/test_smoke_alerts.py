"""The ``alerts`` smoke against the emulator with the real clients: after applying the
repository's desired state, the smoke's test events make each declared log alert rule fire
(read back through azure-mgmt-alertsmanagement) and notify the action group's receivers; a rule
disabled out of band, or whose query cannot run, FAILs exactly its own check within the bound,
with evidence naming the cause; the CLI shows progress while it waits."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

import nsc_reconcile
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.cli import main
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import KEY_VAULT_NAME
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.verification import Check, Status, VerifyReport, run_checks
from nsc_reconcile.verification.smoke_alerts import default_wait_s, skip_reason
from tests.paths import DESIRED_STATE

RULES = {
    "nsc-alert-triage-ready-dev": ("TRIAGE_READY", "Sev3"),
    "nsc-alert-approval-timeout-dev": ("APPROVAL_TIMEOUT", "Sev2"),
    "nsc-alert-execution-failed-dev": ("EXECUTION_FAILED", "Sev1"),
}
RULE_TYPE = "Microsoft.Insights/scheduledQueryRules"


def _clients(emu: Emulator) -> Clients:
    return Clients(AzureTarget.for_emulator(emu.info["arm"]))


def _fired_checks(report: VerifyReport) -> dict[str, Any]:
    prefix = "smoke-alert-fired/"
    return {c.id[len(prefix) :]: c for c in report.checks if c.id.startswith(prefix)}


def _rule_id(emu: Emulator, name: str) -> str:
    return next(str(r["id"]) for r in emu.world.list_by_type(RULE_TYPE) if r["name"] == name)


def _drift(ctl: Callable[..., Any], rule_id: str, **props: Any) -> None:
    """Change the rule out of band (the portal, another tool): no validation."""
    rule = ctl("GET", f"state?id={rule_id}")
    rule["properties"].update(props)
    ctl("PUT", f"state?id={rule_id}", rule)


def test_each_declared_rule_fires_on_its_event_and_notifies(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any]
) -> None:
    clients = _clients(emu)
    messages: list[str] = []
    report = run_checks(Engine(applied, clients), smoke=["alerts"], progress=messages.append)
    assert report.ok, report.render()
    checks = _fired_checks(report)
    assert sorted(checks) == sorted(RULES)
    notifications = ctl("GET", "notifications")
    for name, (event, severity) in RULES.items():
        check = checks[name]
        assert check.status is Status.PASS, check.detail
        alert_id = re.search(r"alert (\S+);", check.evidence)
        assert alert_id is not None, check.evidence
        # The evidence names a real alert of that rule, readable through the real client.
        alert: Any = clients.alertsmanagement.alerts.get_by_id(alert_id.group(1).rsplit("/", 1)[1])
        essentials = alert.properties.essentials
        assert essentials.alert_rule == _rule_id(emu, name)
        assert essentials.severity == severity
        assert f"severity {severity}" in check.evidence
        assert event in alert.properties.context["condition"]["allOf"][0]["searchQuery"]
        assert "action groups: nsc-ag-agent-dev" in check.evidence
        assert "email nsc-platform-oncall <nsc-platform-oncall@example.com>" in check.evidence
        assert [n["receiver"] for n in notifications if n["alertId"] == alert.id] == [
            "nsc-platform-oncall"
        ]
    # While it waited, it said so.
    assert any(re.fullmatch(r"alerts: waiting for [1-3]/3 rules to fire \(\d+ s left\)", m)
               for m in messages), messages  # fmt: skip
    # The smoke read alerts and wrote nothing but the one ingestion upload.
    writes = [r for r in ctl("GET", "requests") if r["method"] in ("PUT", "PATCH", "DELETE")]
    assert writes == []
    # No secret value in any rendering.
    assert applied.secrets is not None
    sensitive = [i.name for i in applied.secrets.items if i.sensitive]
    values = [str(emu.world.secrets.get(KEY_VAULT_NAME, n)["value"]) for n in sensitive]
    rendered = "\n".join(report.render(f) for f in ("text", "json", "markdown", "junit"))
    assert len(values) >= 10
    assert not [v for v in values if v in rendered]


def test_a_rule_disabled_out_of_band_fails_exactly_its_check_despite_an_old_alert(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any]
) -> None:
    disabled = "nsc-alert-approval-timeout-dev"
    # It fired for an earlier smoke; that alert is no evidence for the next one.
    first = nsc_reconcile.verify(applied, _clients(emu), smoke=["alerts"])
    assert _fired_checks(first)[disabled].status is Status.PASS
    _drift(ctl, _rule_id(emu, disabled), enabled=False)
    started = time.monotonic()
    report = nsc_reconcile.verify(applied, _clients(emu), smoke=["alerts"], alert_wait_s=20)
    took = time.monotonic() - started
    checks = _fired_checks(report)
    failed = sorted(c.id for c in report.failed)
    # The read-only checks see the drift too; among the smoke's checks only that rule fails.
    assert [f for f in failed if f.startswith("smoke-")] == [f"smoke-alert-fired/{disabled}"]
    assert checks[disabled].status is Status.FAIL
    assert f"{disabled} is disabled (enabled=false)" in checks[disabled].detail
    assert "skipped while disabled" in checks[disabled].evidence
    assert _rule_id(emu, disabled) in checks[disabled].evidence
    for name in set(RULES) - {disabled}:
        assert checks[name].status is Status.PASS, checks[name].detail
    assert report.get("smoke-alert-ingest/nsc-dcr-agent-events-dev").status is Status.PASS
    assert report.get("smoke-alert-landed/NscAgentEvents_CL").status is Status.PASS
    # A disabled rule never fires: the wait ends when the enabled ones did, well within 20 s.
    assert took < 20


@pytest.mark.usefixtures("applied")
def test_a_rule_that_cannot_run_fails_at_the_bound_and_the_cli_shows_progress(
    emu: Emulator, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = "nsc-alert-execution-failed-dev"
    rule_id = _rule_id(emu, broken)
    rule = ctl("GET", f"state?id={rule_id}")
    condition = rule["properties"]["criteria"]["allOf"][0]
    condition["query"] = 'NscAgentEvents_CL | extend E = EventType | where E == "EXECUTION_FAILED"'
    _drift(ctl, rule_id, criteria=rule["properties"]["criteria"])
    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", str(DESIRED_STATE), "--emulator", emu.info["arm"], "--smoke=alerts",
              "--alert-wait", "4", "--format", "json"])  # fmt: skip
    took = time.monotonic() - started
    captured = capsys.readouterr()
    assert exit_info.value.code == 3
    assert re.search(r"alerts: waiting for [1-3]/3 rules to fire \(\d+ s left\)", captured.err)
    assert 4 <= took < 30
    checks = {c["id"]: c for c in json.loads(captured.out)["checks"]}
    smoke = {i: c["status"] for i, c in checks.items() if i.startswith("smoke-")}
    assert smoke == {
        "smoke-alert-ingest/nsc-dcr-agent-events-dev": "PASS",
        "smoke-alert-landed/NscAgentEvents_CL": "PASS",
        "smoke-alert-fired/nsc-alert-triage-ready-dev": "PASS",
        "smoke-alert-fired/nsc-alert-approval-timeout-dev": "PASS",
        f"smoke-alert-fired/{broken}": "FAIL",
    }
    detail = checks[f"smoke-alert-fired/{broken}"]["detail"]
    assert f"no alert of {broken} fired within 4 s" in detail
    assert "emulator evaluation error: unsupported KQL: operator 'extend'" in detail


def test_the_wait_is_skipped_only_when_the_events_failed_and_defaults_to_the_schedule() -> None:
    ingest = Check("smoke-alert-ingest/d", "t", Status.PASS, "")
    landed_on_azure = Check("smoke-alert-landed/t", "t", Status.SKIP, "", "needs a query client")
    refused = Check("smoke-alert-ingest/d", "t", Status.FAIL, "", "upload refused")
    assert skip_reason([ingest, landed_on_azure]) is None  # on Azure it still waits
    assert skip_reason([refused, landed_on_azure]) is not None
    missing = Check("smoke-alert-landed/t", "t", Status.FAIL, "", "not found: TRIAGE_READY")
    assert skip_reason([ingest, missing]) is not None
    assert default_wait_s([300.0, 300.0], None) == 600.0  # Azure: PT5M + 5 min of latency
    assert default_wait_s([300.0, 60.0], 0.01) == pytest.approx(9.0)  # emulator, default scale
